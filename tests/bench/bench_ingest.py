"""Benchmark: the whole ingest pipeline vs bare trafilatura extraction of the same pages.

Serves the real pages of the article-extraction benchmark (../shared/corpus) from a local HTTP
server behind one feed, polls it with `monitor` (fetch, parse, extract in the process pool,
language, exact dedupe, store in SQLite) with 1 and with 2 workers, and times bare
`trafilatura.bare_extraction` over the same bytes in the same run. Rounds alternate the three
so that machine noise hits them alike; medians are reported.

    python tests/bench/bench_ingest.py [--corpus ../shared/corpus] [--rounds 3] [--pages N]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trafilatura

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.config import Config, PollConfig  # noqa: E402
from monitor.fetch import Fetcher, make_client  # noqa: E402
from monitor.models import HttpConfig, Source  # noqa: E402
from monitor.pipeline import Poller, PollOutcome, make_pool, poll_once  # noqa: E402
from monitor.pipeline.index import DedupeIndex  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.topics import TopicRules  # noqa: E402

TOPICS = ROOT / "config" / "topics.toml"
WARM_PAGES = 4


def load_pages(corpus: Path, limit: int | None) -> list[bytes]:
    files = sorted((corpus / "article-extraction-benchmark" / "html").glob("*.html.gz"))
    return [gzip.decompress(f.read_bytes()) for f in files[:limit]]


def serve(pages: list[bytes]) -> tuple[multiprocessing.Process, str]:
    """The pages and their feed, served by another process (a remote site, in effect), so the
    server's work is not counted as the monitor's."""
    ready: multiprocessing.Queue[int] = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(pages, ready), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{ready.get(timeout=30)}/feed.xml"


def _serve(pages: list[bytes], ready: multiprocessing.Queue[int]) -> None:
    now = format_datetime(datetime.now(UTC))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real sites do

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path in ("/feed.xml", "/warm.xml"):
                warm = self.path == "/warm.xml"
                items = "".join(
                    f"<item><title>Page {i}</title><link>{base}/page/{i}.html"
                    f"{'?warm' if warm else ''}</link>"
                    f"<guid>{'w' if warm else 'p'}{i}</guid><pubDate>{now}</pubDate></item>"
                    for i in range(WARM_PAGES if warm else len(pages))
                )
                body = (
                    f'<rss version="2.0"><channel><title>b</title>{items}</channel></rss>'.encode()
                )
                kind = "application/rss+xml"
            else:
                name = self.path.split("?")[0].split("/")[-1]
                body, kind = pages[int(name.split(".")[0])], "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ready.put(server.server_address[1])
    server.serve_forever()


def bare(pages: list[bytes]) -> float:
    started = time.perf_counter()
    for i, html in enumerate(pages):
        trafilatura.bare_extraction(
            html,
            url=f"http://127.0.0.1/page/{i}.html",
            fast=True,
            with_metadata=True,
            include_comments=False,
        )
    return time.perf_counter() - started


def make_config(tmp: str, feed: str, workers: int, expected: int) -> Config:
    return Config(
        path=Path(tmp) / "monitor.toml",
        storage_url=f"sqlite:///{tmp}/bench.db",
        sources_file=Path(tmp) / "sources.toml",
        sources=(Source("bench", feed),),
        topics_file=TOPICS,
        corpus_dir=Path(tmp),
        data_dir=Path(tmp),
        rules=TopicRules(TOPICS, TOPICS.read_text("utf-8")),
        poll=PollConfig(
            workers=workers, backfill=timedelta(days=36500), max_pages_per_poll=expected
        ),
        http=HttpConfig(per_host=8, concurrency=16, deadline=120.0),
    )


def cold(feed: str, workers: int, expected: int) -> tuple[float, float]:
    """One-shot `monitor poll` path: a new process pool, language model load included."""
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(tmp, feed, workers, expected)
        store = Store.open(config.storage_url, now=datetime.now(UTC))
        store.sync_sources(config.sources, datetime.now(UTC))
        started, cpu = time.perf_counter(), time.process_time()
        [outcome] = poll_once(config, store, config.sources, clock=lambda: datetime.now(UTC))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        stored = store.count_items()
        store.close()
    if outcome.outcome != "ok" or stored != expected:
        raise SystemExit(f"pipeline stored {stored} of {expected}: {outcome}")
    return elapsed, cpu


def steady(feed: str, workers: int, expected: int) -> tuple[float, float]:
    """The daemon's path: pool and language model already loaded (a short warm-up poll of
    other URLs first); times one poll of the feed. Returns wall and main-process CPU seconds."""
    warm_feed = feed.replace("/feed.xml", "/warm.xml")
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(tmp, feed, workers, expected)
        store = Store.open(config.storage_url, now=datetime.now(UTC))
        sources = [Source("warm", warm_feed), Source("bench", feed)]
        store.sync_sources(sources, datetime.now(UTC))

        async def go() -> tuple[float, float, PollOutcome]:
            with make_pool(workers, config.taxonomy) as pool:
                async with make_client(config.http) as client:
                    index = DedupeIndex.load(
                        store, config.corpus_dir, config.dedupe, datetime.now(UTC)
                    )
                    poller = Poller(
                        store,
                        Fetcher(client, config.http),
                        pool,
                        config.poll,
                        index=index,
                        clock=lambda: datetime.now(UTC),
                    )
                    await poller.poll_source(sources[0])
                    started, cpu = time.perf_counter(), time.process_time()
                    outcome = await poller.poll_source(sources[1])
                    return time.perf_counter() - started, time.process_time() - cpu, outcome

        elapsed, cpu, outcome = asyncio.run(go())
        stored = store.count_items() - WARM_PAGES
        store.close()
    if outcome.outcome != "ok" or stored != expected:
        raise SystemExit(f"pipeline stored {stored} of {expected}: {outcome}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=None)
    args = parser.parse_args()
    pages = load_pages(args.corpus, args.pages)
    server, feed = serve(pages)
    n = len(pages)
    print(f"{n} real pages, {sum(map(len, pages)) / 1e6:.1f} MB of HTML, {args.rounds} rounds")
    bare(pages[:5])  # warm imports and caches in this process
    runs = ("bare", "steady-1", "steady-2", "cold-1", "cold-2")
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(args.rounds):
        times["bare"].append(bare(pages))
        for workers in (1, 2):
            for kind, run in (("steady", steady), ("cold", cold)):
                wall, used = run(feed, workers, n)
                times[f"{kind}-{workers}"].append(wall)
                cpu[f"{kind}-{workers}"].append(used)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
    server.terminate()
    med = {k: statistics.median(v) for k, v in times.items()}
    print()
    print("| run | median wall (s) | pages/s | main-process CPU per page (ms) |")
    print("|---|---|---|---|")
    for k, v in med.items():
        per_page = f"{1000 * statistics.median(cpu[k]) / n:.1f}" if cpu[k] else "-"
        print(f"| {k} | {v:.2f} | {n / v:.1f} | {per_page} |")
    print()
    for kind in ("steady", "cold"):
        print(
            f"{kind}: pipeline (1 worker) / bare extraction {med[f'{kind}-1'] / med['bare']:.3f}x "
            f"(target <= 1.15x); 2 workers over 1: {med[f'{kind}-1'] / med[f'{kind}-2']:.2f}x "
            "(target >= 1.7x)"
        )


if __name__ == "__main__":
    main()
