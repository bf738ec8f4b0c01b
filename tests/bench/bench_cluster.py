"""Benchmark: a cold poll of the same pages by one `monitor run` node and by two (cluster mode on
PostgreSQL), the CPU the queue and the decision lock cost per article, the lock's hold time, and
how long a killed node's running job waits before another node takes it.

The real pages of the article-extraction benchmark (../shared/corpus), repeated under distinct
URLs up to `--pages`, are served by another process behind `--feeds` feeds. The feeds start
empty; once every node is up they switch to their full lists at one moment, and the clock runs
from then until every page is stored. Runs:

- `single`: one node, no [cluster] (the plain daemon on the same PostgreSQL), 2 workers;
- `cluster-1`: one node in cluster mode, 2 extraction workers;
- `cluster-2`: two nodes in cluster mode, 1 extraction worker each (the same 2 cores);
- `cluster-3`: three nodes in cluster mode, 1 extraction worker each (3 workers on 2 cores:
  for the lock's contention and the share of decisions looked up ahead and reused);
- `kill`: two nodes with the default heartbeat (10 s) and `stalled_after` (30 s); one is
  killed with -9 while it runs a poll; the time until the other logs `job_recovered`.

    MONITOR_TEST_POSTGRES_URL=postgresql+psycopg://... \\
        python tests/bench/bench_cluster.py [--pages 2000] [--feeds 20]

The database at MONITOR_TEST_POSTGRES_URL is emptied (schema public dropped) before each run.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import re
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.daemon_process import DaemonProcess, free_port, health  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def load_pages(corpus: Path) -> list[bytes]:
    files = sorted((corpus / "article-extraction-benchmark" / "html").glob("*.html.gz"))
    return [gzip.decompress(f.read_bytes()) for f in files]


def serve(pages: list[bytes], total: int, feeds: int, go: Any, delay: float) -> str:
    ready: multiprocessing.Queue[int] = multiprocessing.Queue()
    process = multiprocessing.Process(
        target=_serve, args=(pages, total, feeds, go, delay, ready), daemon=True
    )
    process.start()
    return f"http://127.0.0.1:{ready.get(timeout=30)}"


def _serve(
    pages: list[bytes],
    total: int,
    feeds: int,
    go: Any,
    delay: float,
    ready: multiprocessing.Queue[int],
) -> None:
    # Each repeat of the real pages is dated 40 days before the previous one: a repeat is the
    # same text (stored as a duplicate), but not a report of the same event (DESIGN §2).
    now = datetime.now(UTC)
    dates = [format_datetime(now - timedelta(days=40 * r)) for r in range(total // len(pages) + 1)]
    per_feed = total // feeds

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            match = re.fullmatch(r"/feed/(\d+)\.xml", self.path)
            tag = '"full"' if go.is_set() else '"empty"'
            if match and self.headers.get("If-None-Match") == tag:
                # Conditional GET, as real feeds answer: the re-polls of an unchanged feed
                # during the run cost a 304, not a pass over its entries.
                self.send_response(304)
                self.send_header("ETag", tag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if match:
                k = int(match.group(1))
                numbers = range(k * per_feed, (k + 1) * per_feed) if go.is_set() else ()
                items = "".join(
                    f"<item><title>Page {i}</title><link>{base}/page/{i}.html</link>"
                    f"<guid>p{i}</guid><pubDate>{dates[i // len(pages)]}</pubDate></item>"
                    for i in numbers
                )
                body = f'<rss version="2.0"><channel><title>b</title>{items}</channel></rss>'
                data, kind = body.encode(), "application/rss+xml"
            else:
                if delay:
                    time.sleep(delay)
                i = int(self.path.split("/")[-1].split(".")[0])
                data, kind = pages[i % len(pages)], "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            if match:
                self.send_header("ETag", tag)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ready.put(server.server_address[1])
    server.serve_forever()


def reset(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def stored(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM items")).scalar_one())
    except sa.exc.ProgrammingError:
        return 0
    finally:
        engine.dispose()


def write_config(
    tmp: Path, url: str, site: str, feeds: int, per_feed: int, *, workers: int, cluster: str
) -> Path:
    (tmp / "corpus").mkdir(exist_ok=True)
    (tmp / "sources.toml").write_text(
        "".join(
            f'[[sources]]\nname = "feed{k}"\nurl = "{site}/feed/{k}.xml"\ninterval = "5s"\n'
            for k in range(feeds)
        ),
        "utf-8",
    )
    config = tmp / "monitor.toml"
    config.write_text(
        f"""
[storage]
url = "{url}"
[sources]
file = "sources.toml"
[topics]
file = "{ROOT / "config" / "topics.toml"}"
[corpus]
dir = "corpus"
[poll]
min_interval = "1s"
workers = {workers}
backfill = "36500d"
max_pages_per_poll = {per_feed}
[http]
per_host = 8
concurrency = 16
deadline = 120.0
[daemon]
drain_timeout = "60s"
{cluster}
""",
        "utf-8",
    )
    return config


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children: the extraction workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def run_nodes(
    url: str,
    site: str,
    go: Any,
    args: argparse.Namespace,
    *,
    nodes: int,
    workers: int,
    cluster: str,
) -> dict[str, float]:
    reset(url)
    go.clear()
    per_feed = args.pages // args.feeds
    total = per_feed * args.feeds
    with tempfile.TemporaryDirectory() as d:
        config = write_config(
            Path(d), url, site, args.feeds, per_feed, workers=workers, cluster=cluster
        )
        ports = [free_port() for _ in range(nodes)]
        procs = [
            DaemonProcess(config, log_name=f"node{n}.log", MONITOR_SERVER_PORT=str(p))
            for n, p in enumerate(ports)
        ]
        try:
            for proc, port in zip(procs, ports, strict=True):
                proc.wait_for("healthz", lambda p=port: (health(p) or {}).get("status") == "ok", 90)
            time.sleep(12)  # every source polled once, empty (the start spread is 10 s)
            cpu0 = [cpu_seconds(p.pid) for p in procs]
            started = time.perf_counter()
            go.set()
            procs[0].wait_for("every page", lambda: stored(url) >= total, timeout=1800)
            wall = time.perf_counter() - started
            cpu = sum(cpu_seconds(p.pid) for p in procs) - sum(cpu0)
            for proc in procs:
                proc.signal(15)
            for proc in procs:
                proc.process.wait(120)
            holds = [m for p in procs for m in [HOLDS.search(p.log())] if m]
        finally:
            for proc in procs:
                proc.close()
    out = {"pages": float(total), "wall": wall, "cpu_ms_per_page": 1000 * cpu / total}
    if holds:
        out["lock_median_ms"] = max(float(h["median"]) for h in holds)
        out["lock_p99_ms"] = max(float(h["p99"]) for h in holds)
        loop = [h for h in holds if h["loop_median"]]
        if loop:  # since the hold is timed from the grant: also from the loop's resume
            out["loop_median_ms"] = max(float(h["loop_median"]) for h in loop)
            out["loop_p99_ms"] = max(float(h["loop_p99"]) for h in loop)
        counted = [h for h in holds if h["reused"]]
        if counted:
            reused = sum(int(h["reused"]) for h in counted)
            redone = sum(int(h["redone"]) for h in counted)
            out["reused_share"] = reused / max(1, reused + redone)
        tried = [h for h in holds if h["kept"]]
        if tried:  # stories decided ahead of the lock, and the share of them that stood
            kept = sum(int(h["kept"]) for h in tried)
            undone = sum(int(h["undone"]) for h in tried)
            out["kept_share"] = kept / max(1, kept + undone)
        retried = [h for h in holds if h["retried"]]
        if retried:  # holds let go of to decide ahead again, per article
            out["retries_per_page"] = sum(int(h["retried"]) for h in retried) / total
    return out


# The line each node logs at exit (older versions log only the first three figures).
HOLDS = re.compile(
    r"decision_lock holds=(?P<holds>\d+) median_ms=(?P<median>[\d.]+) p99_ms=(?P<p99>[\d.]+)"
    r"(?: max_ms=[\d.]+)?(?: loop_median_ms=(?P<loop_median>[\d.]+) "
    r"loop_p99_ms=(?P<loop_p99>[\d.]+))?(?: reused=(?P<reused>\d+) redone=(?P<redone>\d+))?"
    r"(?: kept=(?P<kept>\d+) undone=(?P<undone>\d+))?(?: retried=(?P<retried>\d+))?"
)


def kill_pickup(url: str, site: str, go: Any, args: argparse.Namespace) -> float:
    """Seconds from `kill -9` of a node running a poll to another node recovering that job."""
    reset(url)
    go.clear()
    with tempfile.TemporaryDirectory() as d:
        config = write_config(
            Path(d), url, site, args.feeds, 20, workers=1, cluster="[cluster]\nenabled = true"
        )
        ports = [free_port() for _ in range(2)]
        procs = [
            DaemonProcess(config, log_name=f"node{n}.log", MONITOR_SERVER_PORT=str(p))
            for n, p in enumerate(ports)
        ]
        try:
            for proc, port in zip(procs, ports, strict=True):
                proc.wait_for("healthz", lambda p=port: (health(p) or {}).get("status") == "ok", 90)
            go.set()
            procs[1].wait_for(
                "a poll running",
                lambda: "Starting job monitor.poll" in procs[1].log() and stored(url) > 0,
                120,
            )
            procs[1].kill9()
            killed = time.perf_counter()
            procs[0].wait_log("job_recovered", timeout=180)
            return time.perf_counter() - killed
        finally:
            for proc in procs:
                proc.signal(15) if proc.process.poll() is None else None
                proc.close()


def split_hold(url: str, site: str, go: Any, pages: int) -> dict[str, float]:
    """In one process: a Poller with the decision lock polls 2 feeds, and each step of the
    cluster decision is timed (wrapping the methods it calls). Milliseconds per article."""
    import asyncio
    import collections

    from monitor.cluster.gate import DecisionGate
    from monitor.config import DedupeConfig, PollConfig
    from monitor.dedupe.near import NearIndex
    from monitor.dedupe.story import StoryIndex
    from monitor.fetch import Fetcher, make_client
    from monitor.models import HttpConfig, Source
    from monitor.pipeline import Poller, make_pool
    from monitor.pipeline.index import DedupeIndex
    from monitor.store import Store
    from monitor.tag import parse_taxonomy

    spent: dict[str, float] = collections.defaultdict(float)

    def timed(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*a, **k)
            finally:
                spent[label] += time.perf_counter() - started

        setattr(owner, name, wrapper)

    inside = {
        (DecisionGate, "_acquire"): "in: begin, lock, log read",
        (DecisionGate, "_catch_up"): "in: catch-up replay, corrections",
        (StoryIndex, "assign"): "story assignment (ahead as a trial; inside when undated/undone)",
        (Store, "insert_items"): "in: insert",
        (DecisionGate, "_end"): "in: commit (lets go of the lock)",
        (Poller, "_foresee"): "out: looked up ahead (stored, exact, near)",
        (NearIndex, "query"): "near query (ahead, or inside when redone)",
    }
    for (owner, name), label in inside.items():
        timed(owner, name, label)
    reset(url)
    go.set()
    topics = ROOT / "config" / "topics.toml"
    taxonomy = parse_taxonomy(topics.read_text("utf-8"), file=str(topics))
    now = datetime.now(UTC)
    store = Store.open(url, now=now)
    sources = [Source(f"feed{k}", f"{site}/feed/{k}.xml") for k in range(2)]
    store.sync_sources(sources, now)
    store.log_decisions = True
    gate = DecisionGate(store)
    http = HttpConfig(per_host=8, concurrency=16, deadline=120.0)
    poll = PollConfig(workers=2, backfill=timedelta(days=36500), max_pages_per_poll=pages)

    async def run() -> None:
        with make_pool(2, taxonomy) as pool:
            async with make_client(http) as client:
                index = DedupeIndex.load(store, ROOT / "no-corpus", DedupeConfig(), now)
                poller = Poller(
                    store,
                    Fetcher(client, http),
                    pool,
                    poll,
                    index=index,
                    clock=lambda: datetime.now(UTC),
                    gate=gate,
                )
                await poller.poll_all(sources)

    asyncio.run(run())
    count = store.count_items()
    gate.close()
    store.close()
    out = {k: 1000 * v / count for k, v in spent.items()}
    out["hold median (from the grant)"] = 1000 * percentile(list(gate.held), 0.5)
    out["hold p99 (from the grant)"] = 1000 * percentile(list(gate.held), 0.99)
    out["reused share (%)"] = 100 * gate.reused / max(1, gate.reused + gate.redone)
    return out


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--only", default="single,cluster-1,cluster-2,cluster-3,kill")
    parser.add_argument(
        "--split", type=int, metavar="N", help="only time the steps inside the lock, N articles"
    )
    args = parser.parse_args()
    url = os.environ.get("MONITOR_TEST_POSTGRES_URL")
    if not url:
        raise SystemExit("set MONITOR_TEST_POSTGRES_URL to an empty PostgreSQL database")
    pages = load_pages(args.corpus)
    go = multiprocessing.Event()
    if args.split:
        site = serve(pages, 2 * args.split, 2, go, 0.0)
        for step, ms in sorted(split_hold(url, site, go, args.split).items(), key=lambda x: -x[1]):
            print(f"{step}: {ms:.1f} ms per article")
        return
    site = serve(pages, args.pages, args.feeds, go, 0.0)
    slow_go = multiprocessing.Event()
    slow_site = serve(pages, args.pages, args.feeds, slow_go, 0.5)
    cluster = "[cluster]\nenabled = true"
    runs = {
        "single": {"nodes": 1, "workers": 2, "cluster": ""},
        "cluster-1": {"nodes": 1, "workers": 2, "cluster": cluster},
        "cluster-2": {"nodes": 2, "workers": 1, "cluster": cluster},
        "cluster-3": {"nodes": 3, "workers": 1, "cluster": cluster},
    }
    wanted = args.only.split(",")
    results = {}
    print(f"{args.pages} pages ({len(pages)} real pages repeated), {args.feeds} feeds")
    for name, spec in runs.items():
        if name in wanted:
            results[name] = run_nodes(url, site, go, args, **spec)  # type: ignore[arg-type]
            print(name, {k: round(v, 2) for k, v in results[name].items()}, flush=True)
    print()
    print(
        "| run | wall (s) | pages/s | node CPU per page (ms) | lock median / p99 (ms) "
        "| from the loop's resume (ms) | reused | story kept |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        lock = (
            f"{r['lock_median_ms']:.2f} / {r['lock_p99_ms']:.2f}" if "lock_median_ms" in r else "-"
        )
        loop = (
            f"{r['loop_median_ms']:.2f} / {r['loop_p99_ms']:.2f}" if "loop_median_ms" in r else "-"
        )
        reused = f"{100 * r['reused_share']:.0f} %" if "reused_share" in r else "-"
        kept = f"{100 * r['kept_share']:.0f} %" if "kept_share" in r else "-"
        print(
            f"| {name} | {r['wall']:.1f} | {r['pages'] / r['wall']:.1f} | "
            f"{r['cpu_ms_per_page']:.1f} | {lock} | {loop} | {reused} | {kept} |"
        )
    if "single" in results and "cluster-1" in results:
        extra = results["cluster-1"]["cpu_ms_per_page"] - results["single"]["cpu_ms_per_page"]
        print(f"\nqueue + lock CPU per article (cluster-1 minus single, node side): {extra:.1f} ms")
    if "kill" in wanted:
        seconds = kill_pickup(url, slow_site, slow_go, args)
        print(f"killed node's job picked up after {seconds:.1f} s (defaults: 10 s, 30 s)")


if __name__ == "__main__":
    main()
