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
import gzip
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trafilatura

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.config import Config, PollConfig  # noqa: E402
from monitor.models import HttpConfig, Source  # noqa: E402
from monitor.pipeline import poll_once  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.tag import parse_taxonomy  # noqa: E402

TOPICS = ROOT / "config" / "topics.toml"


def load_pages(corpus: Path, limit: int | None) -> list[bytes]:
    files = sorted((corpus / "article-extraction-benchmark" / "html").glob("*.html.gz"))
    return [gzip.decompress(f.read_bytes()) for f in files[:limit]]


def serve(pages: list[bytes]) -> tuple[ThreadingHTTPServer, str]:
    now = format_datetime(datetime.now(UTC))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path == "/feed.xml":
                items = "".join(
                    f"<item><title>Page {i}</title><link>{base}/page/{i}.html</link>"
                    f"<guid>p{i}</guid><pubDate>{now}</pubDate></item>"
                    for i in range(len(pages))
                )
                body = (
                    f'<rss version="2.0"><channel><title>b</title>{items}</channel></rss>'.encode()
                )
                kind = "application/rss+xml"
            else:
                body, kind = pages[int(self.path.split("/")[-1].split(".")[0])], "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/feed.xml"


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


def pipeline(feed: str, workers: int, expected: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = Config(
            path=Path(tmp) / "monitor.toml",
            storage_url=f"sqlite:///{tmp}/bench.db",
            sources_file=Path(tmp) / "sources.toml",
            sources=(Source("bench", feed),),
            topics_file=Path(tmp) / "topics.toml",
            corpus_dir=Path(tmp),
            data_dir=Path(tmp),
            taxonomy=parse_taxonomy(TOPICS.read_text("utf-8"), file=str(TOPICS)),
            poll=PollConfig(
                workers=workers, backfill=timedelta(days=36500), max_pages_per_poll=expected
            ),
            http=HttpConfig(per_host=8, concurrency=16, deadline=120.0),
        )
        store = Store.open(config.storage_url, now=datetime.now(UTC))
        store.sync_sources(config.sources, datetime.now(UTC))
        started = time.perf_counter()
        [outcome] = poll_once(config, store, config.sources, clock=lambda: datetime.now(UTC))
        elapsed = time.perf_counter() - started
        stored = store.count_items()
        store.close()
    if outcome.outcome != "ok" or stored != expected:
        raise SystemExit(f"pipeline stored {stored} of {expected}: {outcome}")
    return elapsed


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
    times: dict[str, list[float]] = {"bare": [], "pipeline-1": [], "pipeline-2": []}
    for r in range(args.rounds):
        times["bare"].append(bare(pages))
        times["pipeline-1"].append(pipeline(feed, 1, n))
        times["pipeline-2"].append(pipeline(feed, 2, n))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
    server.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    print()
    print("| run | median wall (s) | pages/s |")
    print("|---|---|---|")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} | {n / v:.1f} |")
    print()
    print(
        f"pipeline (1 worker) / bare extraction: {med['pipeline-1'] / med['bare']:.3f}x "
        "(target <= 1.15x)"
    )
    print(
        f"speed-up of 2 workers over 1: {med['pipeline-1'] / med['pipeline-2']:.2f}x "
        "(target >= 1.7x)"
    )


if __name__ == "__main__":
    main()
