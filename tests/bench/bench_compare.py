"""Benchmark: warm and cold polling of 1,000 local feeds, monitor vs rss2email vs reader. I/O.

Does network I/O (127.0.0.1 only), runs subprocesses and writes temporary state directories;
on first use it creates two venvs and pip-installs rss2email and reader into them.

A separate process (not counted in a client's CPU time, not sharing its GIL) runs an asyncio
HTTP/1.1 keep-alive server serving `--feeds` small RSS feeds. Every feed has 5 items, published
minutes ago, whose links are real article pages from ../shared/corpus (the
article-extraction-benchmark pages, loaded by bench_ingest.load_pages: 181 pages, so most of the
5,000 items repeat a page, and monitor stores them as duplicates after fetching and extracting
them all the same). Every response waits `--latency` seconds (50 ms) first; feeds and pages
carry an ETag and a Last-Modified and get a 304 for a matching If-None-Match (or, without one,
If-Modified-Since). The server counts requests, statuses, TCP connections and bytes (status
line, headers and body written; request heads read) per run, reset and read through /_ctl/.

Each round runs every tool in turn (monitor, rss2email, reader with each `--reader-workers`),
each in a fresh state directory:

- cold: the first poll of the feeds (`--cold-feeds`, default all): every feed answers 200
  with 5 new items. `monitor poll` also fetches and extracts every article page (5 per feed);
  rss2email and reader only fetch the feeds.
- warm: a second poll of the same state: every feed answers 304. (When `--cold-feeds` is
  smaller than `--feeds` the warm state gets its own untimed first poll of all the feeds.)

Per run: wall time, CPU time (user+sys of the child process and its reaped children, from
os.wait4), bytes received per feed (server side). Medians over `--rounds` are printed as a
Markdown table with ratios to monitor and the targets (warm: monitor >= 10x faster than
rss2email, < 3 s, < 1 KB received per feed).

    .venv/bin/python tests/bench/bench_compare.py [--feeds 1000] [--cold-feeds N] [--rounds 3]
        [--latency 0.05] [--reader-workers 20,100] [--per-host 100] [--concurrency 100]
        [--parallel-sources N] [--tools monitor,rss2email,reader] [--venvs /tmp/bench-venvs]
        [--json PATH] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import html
import json
import multiprocessing
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[2]
MONITOR = ROOT / ".venv" / "bin" / "monitor"
TOPICS = ROOT / "config" / "topics.toml"
CORPUS = ROOT.parent / "shared" / "corpus"
ITEMS_PER_FEED = 5
RUN_TIMEOUT = 3600.0  # seconds one tool run may take before it is killed

# -- the server (its own process) ---------------------------------------------------------------


@dataclass(slots=True)
class Resource:
    body: bytes
    content_type: str
    etag: str
    last_modified: datetime
    kind: str  # "feed" | "article"


@dataclass(slots=True)
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # by kind
    statuses: Counter[str] = field(default_factory=Counter)  # "kind status"
    bytes_out: Counter[str] = field(default_factory=Counter)  # by kind: status + headers + body
    bytes_in: int = 0  # request heads read
    conditional: int = 0  # requests with If-None-Match or If-Modified-Since
    connections: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "statuses": dict(self.statuses),
            "bytes_out": dict(self.bytes_out),
            "bytes_in": self.bytes_in,
            "conditional": self.conditional,
            "connections": self.connections,
            "peak_in_flight": self.peak_in_flight,
        }


def _page_title(page: bytes, fallback: str) -> str:
    match = re.search(rb"<title[^>]*>(.*?)</title>", page, re.S | re.I)
    if not match:
        return fallback
    title = html.unescape(match.group(1).decode("utf-8", "replace"))
    return " ".join(title.split())[:150] or fallback


def build_site(base: str, feeds: int, pages: Sequence[bytes], now: datetime) -> dict[str, Resource]:
    """The feeds and their article pages, by path. Item k of feed i links to page
    (i * 5 + k) mod len(pages); items are 1 to 600 minutes old."""
    site: dict[str, Resource] = {}
    modified = now.replace(microsecond=0) - timedelta(hours=1)
    titles = [_page_title(p, f"Story {n}") for n, p in enumerate(pages)]
    for i in range(feeds):
        items = []
        for k in range(ITEMS_PER_FEED):
            n = (i * ITEMS_PER_FEED + k) % len(pages)
            path = f"/a/{i}/{k}.html"
            site[path] = Resource(
                pages[n],
                "text/html; charset=utf-8",
                f'"p{hashlib.sha1(pages[n]).hexdigest()[:16]}"',
                modified,
                "article",
            )
            published = now - timedelta(minutes=1 + (i * ITEMS_PER_FEED + k) % 600)
            items.append(
                f"<item><title>{escape(titles[n])}</title><link>{base}{path}</link>"
                f'<guid isPermaLink="false">bench-{i}-{k}</guid>'
                f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
                f"<description>{escape(titles[n])} (feed {i}, item {k})</description></item>"
            )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Bench feed {i}</title><link>{base}/</link>"
            f"<description>Local benchmark feed {i}</description>{''.join(items)}"
            "</channel></rss>\n"
        ).encode()
        site[f"/f/{i}.xml"] = Resource(
            body,
            "application/rss+xml; charset=utf-8",
            f'"f{hashlib.sha1(body).hexdigest()[:16]}"',
            modified,
            "feed",
        )
    return site


def _not_modified(resource: Resource, headers: dict[str, str]) -> bool:
    if "if-none-match" in headers:
        tags = {t.strip().removeprefix("W/") for t in headers["if-none-match"].split(",")}
        return resource.etag in tags or "*" in tags
    if "if-modified-since" in headers:
        try:
            since = parsedate_to_datetime(headers["if-modified-since"])
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return since >= resource.last_modified
    return False


class FeedServer:
    """asyncio HTTP/1.1 server: keep-alive, `latency` before every counted response."""

    def __init__(self, site: dict[str, Resource], latency: float) -> None:
        self.site = site
        self.latency = latency
        self.stats = Stats()

    def _control(self, path: str) -> bytes:
        if path == "/_ctl/reset":
            self.stats = Stats()
            return b'{"ok": true}'
        return json.dumps(self.stats.as_json()).encode()

    def _respond(self, method: str, path: str, headers: dict[str, str]) -> tuple[str, bytes]:
        """(kind, whole response without the Connection header's line end)."""
        resource = self.site.get(path.split("?", 1)[0])
        date = format_datetime(datetime.now(UTC), usegmt=True)
        common = f"Date: {date}\r\nServer: bench-compare\r\n"
        if resource is None:
            body = b"not found\n"
            head = (
                f"HTTP/1.1 404 Not Found\r\n{common}Content-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n"
            )
            return "other 404", head.encode() + b"\r\n" + body
        validators = (
            f"ETag: {resource.etag}\r\n"
            f"Last-Modified: {format_datetime(resource.last_modified, usegmt=True)}\r\n"
        )
        if _not_modified(resource, headers):
            return (
                f"{resource.kind} 304",
                f"HTTP/1.1 304 Not Modified\r\n{common}{validators}\r\n".encode(),
            )
        head = (
            f"HTTP/1.1 200 OK\r\n{common}Content-Type: {resource.content_type}\r\n"
            f"Content-Length: {len(resource.body)}\r\n{validators}\r\n"
        )
        body = b"" if method == "HEAD" else resource.body
        return f"{resource.kind} 200", head.encode() + body

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            while True:
                try:
                    raw = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = raw.decode("latin-1").split("\r\n")
                method, target, version = [*lines[0].split(" ", 2), "", ""][:3]
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                keep_alive = (
                    version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
                )
                if target.startswith("/_ctl/"):
                    body = self._control(target)
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                        + body
                    )
                    await writer.drain()
                    return
                stats = self.stats
                stats.bytes_in += len(raw)
                if "if-none-match" in headers or "if-modified-since" in headers:
                    stats.conditional += 1
                stats.in_flight += 1
                stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
                try:
                    await asyncio.sleep(self.latency)
                    key, response = self._respond(method, target, headers)
                finally:
                    stats.in_flight -= 1
                connection = b"keep-alive" if keep_alive else b"close"
                head_end = response.index(b"\r\n\r\n")
                response = (
                    response[:head_end] + b"\r\nConnection: " + connection + response[head_end:]
                )
                kind = key.split(" ")[0]
                stats.requests[kind] += 1
                stats.statuses[key] += 1
                stats.bytes_out[kind] += len(response)
                writer.write(response)
                await writer.drain()
                if not keep_alive:
                    return
        except ConnectionError:
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()


def serve_main(
    feeds: int, corpus: str, latency: float, ready: multiprocessing.queues.Queue[Any]
) -> None:
    """Entry point of the server process: build the site, bind, report the port, serve."""
    sys.path.insert(0, str(ROOT))
    from tests.bench.bench_ingest import load_pages

    pages = load_pages(Path(corpus), None)

    async def main() -> None:
        holder: dict[str, FeedServer] = {}

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await holder["server"].handle(reader, writer)

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
        port = server.sockets[0].getsockname()[1]
        site = build_site(f"http://127.0.0.1:{port}", feeds, pages, datetime.now(UTC))
        holder["server"] = FeedServer(site, latency)
        ready.put((port, len(pages)))
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class ServerProcess:
    def __init__(self, feeds: int, corpus: Path, latency: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        ready: multiprocessing.queues.Queue[Any] = ctx.Queue()
        self.process = ctx.Process(
            target=serve_main, args=(feeds, str(corpus), latency, ready), daemon=True
        )
        self.process.start()
        self.port, self.pages = ready.get(timeout=120)
        self.base = f"http://127.0.0.1:{self.port}"

    def feed_urls(self, count: int) -> list[str]:
        return [f"{self.base}/f/{i}.xml" for i in range(count)]

    def control(self, action: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}/_ctl/{action}", timeout=30) as response:
            return dict(json.loads(response.read()))

    def cpu_seconds(self) -> float:
        stat = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.process.terminate()
        self.process.join(10)


# -- running the tools --------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    tool: str
    phase: str  # "cold" | "warm"
    round: int
    feeds: int
    wall: float
    user: float
    sys: float
    returncode: int
    server: dict[str, Any]
    server_cpu: float
    summary: str
    problems: list[str]

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    def feed_bytes(self) -> int:
        return int(self.server["bytes_out"].get("feed", 0))

    def all_bytes(self) -> int:
        return sum(int(v) for v in self.server["bytes_out"].values())


def run_child(
    cmd: Sequence[str], cwd: Path, log: Path, env: dict[str, str] | None = None
) -> tuple[float, float, float, int]:
    """Run `cmd`; return wall seconds, user and system CPU seconds (the child and every
    descendant it reaped), exit code. Output goes to `log`."""
    with log.open("ab") as out:
        out.write(f"$ {shlex.join(cmd)}\n".encode())
        out.flush()
        started = time.perf_counter()
        process = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        timer = threading.Timer(RUN_TIMEOUT, lambda: process.send_signal(signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime, usage.ru_stime, process.returncode


class Tool(Protocol):
    name: str

    def prepare(self, state: Path, urls: Sequence[str]) -> None: ...

    def command(self, state: Path) -> list[str]: ...

    def env(self, state: Path) -> dict[str, str] | None: ...

    def summarize(self, output: str) -> str: ...


class MonitorTool:
    name = "monitor"

    def __init__(self, per_host: int, concurrency: int, parallel_sources: int | None) -> None:
        self.per_host = per_host
        self.concurrency = concurrency
        self.parallel_sources = parallel_sources

    def prepare(self, state: Path, urls: Sequence[str]) -> None:
        (state / "corpus").mkdir(exist_ok=True)
        poll = (
            ""
            if self.parallel_sources is None
            else f"[poll]\nparallel_sources = {self.parallel_sources}\n"
        )
        (state / "sources.toml").write_text(
            "".join(
                f'[[sources]]\nname = "bench-{i:04d}"\nurl = "{url}"\ninterval = "30m"\n\n'
                for i, url in enumerate(urls)
            ),
            "utf-8",
        )
        (state / "monitor.toml").write_text(
            f"""[storage]
url = "sqlite:///monitor.db"
[sources]
file = "sources.toml"
[topics]
file = "{TOPICS}"
[corpus]
dir = "corpus"
[http]
concurrency = {self.concurrency}
per_host = {self.per_host}
{poll}""",
            "utf-8",
        )

    def command(self, state: Path) -> list[str]:
        return [str(MONITOR), "--config", str(state / "monitor.toml"), "poll"]

    def env(self, state: Path) -> dict[str, str] | None:
        return {**os.environ, "MONITOR_DATA_DIR": str(state / "data")}

    def summarize(self, output: str) -> str:
        counts: Counter[str] = Counter()
        counts["304"] = output.count("unchanged (304 Not Modified)")
        for line in output.splitlines():
            if ": ok, " in line:
                counts["ok"] += 1
                for number, label in re.findall(
                    r"(\d+) ([a-z ]+?)(?:,|$)", line.split(": ok, ")[1]
                ):
                    counts[label] += int(number)
        total = re.search(r"^total: .*$", output, re.M)
        parts = [f"{k}={v}" for k, v in sorted(counts.items()) if v]
        return "; ".join(parts) + (f" | {total.group(0)}" if total else " | no total line")


R2E_OPML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<opml version="1.0"><head></head><body>\n'


class Rss2EmailTool:
    name = "rss2email"

    def __init__(self, venv: Path) -> None:
        self.r2e = venv / "bin" / "r2e"

    def _base(self, state: Path) -> list[str]:
        return [str(self.r2e), "-c", str(state / "r2e.cfg"), "-d", str(state / "r2e.json")]

    def prepare(self, state: Path, urls: Sequence[str]) -> None:
        log = state / "setup.log"
        opml = state / "feeds.opml"
        opml.write_text(
            R2E_OPML_HEAD
            + "".join(
                f"<outline text={quoteattr(f'bench-{i:04d}')} xmlUrl={quoteattr(url)}/>\n"
                for i, url in enumerate(urls)
            )
            + "</body></opml>\n",
            "utf-8",
        )
        for args in (["new", "bench@example.invalid"], ["opmlimport", str(opml)]):
            _, _, _, code = run_child([*self._base(state), *args], state, log)
            if code:
                raise SystemExit(f"r2e {args[0]} failed; see {log}")
        # Mail is never sent (`run --no-send`); should it be, it goes to /bin/true.
        cfg = state / "r2e.cfg"
        text = cfg.read_text("utf-8")
        text = re.sub(r"(?m)^email-protocol = .*$", "email-protocol = sendmail", text)
        text = re.sub(r"(?m)^sendmail = .*$", "sendmail = /bin/true", text)
        cfg.write_text(text, "utf-8")

    def command(self, state: Path) -> list[str]:
        return [*self._base(state), "run", "--no-send"]

    def env(self, state: Path) -> dict[str, str] | None:
        return None

    def summarize(self, output: str) -> str:
        lines = [ln for ln in output.splitlines() if ln and not ln.startswith("$ ")]
        return f"{len(lines)} output line(s)" + (f": {lines[-1][:120]}" if lines else "")


READER_DRIVER = '''"""reader driver for bench_compare: `add DB URLS_FILE` or `update DB WORKERS`."""
import json
import sys

from reader import make_reader


def main() -> None:
    mode, db = sys.argv[1], sys.argv[2]
    reader = make_reader(db)
    if mode == "add":
        with open(sys.argv[3], encoding="utf-8") as f:
            for url in f.read().split():
                reader.add_feed(url, exist_ok=True)
        reader.close()
        return
    counts = {"updated": 0, "not_modified": 0, "errors": 0, "new_entries": 0}
    # update_feeds_iter is update_feeds that also yields each feed's result.
    for result in reader.update_feeds_iter(workers=int(sys.argv[3]), scheduled=False):
        if result.value is None:
            counts["not_modified"] += 1
        elif isinstance(result.value, Exception):
            counts["errors"] += 1
            if counts["errors"] <= 3:
                print("error:", result.url, repr(result.value))
        else:
            counts["updated"] += 1
            counts["new_entries"] += result.value.new
    reader.close()
    print(json.dumps(counts))


main()
'''


class ReaderTool:
    def __init__(self, venv: Path, workers: int) -> None:
        self.python = venv / "bin" / "python"
        self.workers = workers
        self.name = f"reader (workers={workers})"

    def prepare(self, state: Path, urls: Sequence[str]) -> None:
        (state / "driver.py").write_text(READER_DRIVER, "utf-8")
        (state / "urls.txt").write_text("\n".join(urls) + "\n", "utf-8")
        cmd = [str(self.python), "driver.py", "add", "reader.sqlite", "urls.txt"]
        _, _, _, code = run_child(cmd, state, state / "setup.log")
        if code:
            raise SystemExit(f"reader add failed; see {state / 'setup.log'}")

    def command(self, state: Path) -> list[str]:
        return [str(self.python), "driver.py", "update", "reader.sqlite", str(self.workers)]

    def env(self, state: Path) -> dict[str, str] | None:
        return None

    def summarize(self, output: str) -> str:
        lines = [ln for ln in output.splitlines() if ln.startswith("{")]
        return lines[-1] if lines else "no summary line"


def ensure_venv(venv: Path, package: str, *extras: str) -> str:
    """Create `venv` with `package` (and `extras`) pip-installed unless they are there;
    return the package's version."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    show = [str(python), "-m", "pip", "show", package, *extras]
    if subprocess.run(show, capture_output=True).returncode:
        print(f"installing {package} {' '.join(extras)} into {venv} ...", file=sys.stderr)
        subprocess.run([str(python), "-m", "pip", "install", "-q", package, *extras], check=True)
    out = subprocess.run(show[:5], capture_output=True, text=True, check=True).stdout
    match = re.search(r"^Version: (.+)$", out, re.M)
    return match.group(1) if match else "?"


def expected_problems(run: Run, phase: str, tool: Tool, feeds: int) -> list[str]:
    """What the server saw that a correct run of this phase would not show."""
    statuses = run.server["statuses"]
    problems = []
    if run.returncode:
        problems.append(f"exit code {run.returncode}")
    if phase == "warm":
        if statuses.get("feed 304", 0) != feeds:
            problems.append(f"{statuses.get('feed 304', 0)} of {feeds} feeds answered 304")
        if run.server["requests"].get("article", 0):
            problems.append(f"{run.server['requests']['article']} article pages fetched")
    else:
        if statuses.get("feed 200", 0) != feeds:
            problems.append(f"{statuses.get('feed 200', 0)} of {feeds} feeds answered 200")
        pages = statuses.get("article 200", 0)
        if isinstance(tool, MonitorTool) and pages != feeds * ITEMS_PER_FEED:
            problems.append(f"{pages} of {feeds * ITEMS_PER_FEED} article pages fetched")
    if statuses.get("other 404", 0):
        problems.append(f"{statuses['other 404']} requests for unknown paths")
    return problems


def measure(
    server: ServerProcess, tool: Tool, state: Path, phase: str, rnd: int, feeds: int
) -> Run:
    log = state / f"{phase}.log"
    server.control("reset")
    server_cpu = server.cpu_seconds()
    wall, user, system, code = run_child(tool.command(state), state, log, tool.env(state))
    server_cpu = server.cpu_seconds() - server_cpu
    stats = server.control("stats")
    stats["connections"] -= 1  # the connection of this /_ctl/stats request
    output = log.read_text("utf-8", "replace")
    run = Run(
        tool.name, phase, rnd, feeds, wall, user, system, code, stats, server_cpu,
        tool.summarize(output), [],
    )  # fmt: skip
    run.problems = expected_problems(run, phase, tool, feeds)
    flag = f"  PROBLEM: {'; '.join(run.problems)} (log {log})" if run.problems else ""
    print(
        f"  round {rnd} {phase:4} {tool.name:22} wall {wall:7.2f} s  cpu {user + system:7.2f} s"
        f"  feed bytes/feed {run.feed_bytes() / feeds:7.0f}  [{run.summary}]{flag}",
        file=sys.stderr,
        flush=True,
    )
    return run


# -- the report ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    tool: str
    wall: list[float]
    cpu: list[float]
    feed_bytes: float  # per feed, median
    all_bytes: float
    request_bytes: float
    statuses: dict[str, int]  # of the last round
    peak_in_flight: int
    connections: float  # TCP connections accepted per run, median
    server_cpu: float

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def rows(runs: Sequence[Run], phase: str, tools: Sequence[Tool]) -> list[Row]:
    out = []
    for tool in tools:
        mine = [r for r in runs if r.tool == tool.name and r.phase == phase]
        if not mine:
            continue
        n = mine[0].feeds
        out.append(
            Row(
                tool.name,
                [r.wall for r in mine],
                [r.cpu for r in mine],
                statistics.median(r.feed_bytes() / n for r in mine),
                statistics.median(r.all_bytes() / n for r in mine),
                statistics.median(r.server["bytes_in"] / n for r in mine),
                dict(mine[-1].server["statuses"]),
                max(r.server["peak_in_flight"] for r in mine),
                statistics.median(r.server["connections"] for r in mine),
                statistics.median(r.server_cpu for r in mine),
            )
        )
    return out


def _ratio(value: float) -> str:
    return f"{value:.1f}×" if value >= 1 else f"{value:.2f}×"


def table(title: str, phase_rows: Sequence[Row]) -> str:
    base = phase_rows[0]
    lines = [
        f"### {title}",
        "",
        "| tool | wall s, median (min–max) | CPU s user+sys, median | wall ÷ monitor's "
        "(> 1: monitor faster) | CPU ÷ monitor's | B received/feed: feeds "
        "| B received/feed: all | B sent/feed "
        "| server statuses (last round) | peak concurrent requests | TCP connections |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in phase_rows:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(row.statuses.items()))
        lines.append(
            f"| {row.tool} | {row.median_wall:.2f} ({min(row.wall):.2f}–{max(row.wall):.2f}) "
            f"| {row.median_cpu:.2f} | {_ratio(row.median_wall / base.median_wall)} "
            f"| {_ratio(row.median_cpu / base.median_cpu)} | {row.feed_bytes:.0f} "
            f"| {row.all_bytes:.0f} | {row.request_bytes:.0f} | {statuses} "
            f"| {row.peak_in_flight} | {row.connections:.0f} |"
        )
    return "\n".join(lines)


def targets(warm: Sequence[Row]) -> list[str]:
    by_tool = {r.tool: r for r in warm}
    monitor = by_tool.get("monitor")
    r2e = by_tool.get("rss2email")
    out = []
    if monitor is None:
        return out

    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    if r2e is not None:
        ratio = r2e.median_wall / monitor.median_wall
        out.append(
            f"- monitor ≥ 10× faster than rss2email (warm wall): {ratio:.1f}× — "
            f"{verdict(ratio >= 10)}"
        )
    out.append(
        f"- monitor warm poll < 3 s: {monitor.median_wall:.2f} s median, "
        f"{max(monitor.wall):.2f} s worst — {verdict(monitor.median_wall < 3)}"
    )
    out.append(
        f"- monitor warm < 1 KB received per feed: {monitor.feed_bytes:.0f} B — "
        f"{verdict(monitor.feed_bytes < 1000)}"
    )
    return out


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000, help="feeds in the warm poll")
    parser.add_argument(
        "--cold-feeds", type=int, default=None, help="feeds in the cold poll (default --feeds)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per response")
    parser.add_argument("--reader-workers", default="20,100", help="comma list; one row each")
    parser.add_argument("--per-host", type=int, default=100, help="monitor [http] per_host")
    parser.add_argument("--concurrency", type=int, default=100, help="monitor [http] concurrency")
    parser.add_argument(
        "--parallel-sources",
        type=int,
        default=None,
        help="monitor [poll] parallel_sources (default: monitor's own default)",
    )
    parser.add_argument("--venvs", type=Path, default=Path("/tmp/bench-venvs"))
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--tools", default="monitor,rss2email,reader", help="comma list")
    parser.add_argument("--json", type=Path, help="also write every run and the medians here")
    parser.add_argument("--keep", action="store_true", help="keep the state directories")
    args = parser.parse_args(argv)
    if args.cold_feeds is None:
        args.cold_feeds = args.feeds
    if not 0 <= args.cold_feeds <= args.feeds:
        parser.error("--cold-feeds must be between 0 and --feeds")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    command = shlex.join(
        [os.path.relpath(sys.executable, Path.cwd()), *sys.argv]
        if argv is None
        else ["bench_compare.main", *argv]
    )
    wanted = set(args.tools.split(","))
    versions = {"monitor": subprocess.run(
        [str(MONITOR), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]}  # fmt: skip
    tools: list[Tool] = []
    if "monitor" in wanted:
        tools.append(MonitorTool(args.per_host, args.concurrency, args.parallel_sources))
    if "rss2email" in wanted:
        versions["rss2email"] = ensure_venv(args.venvs / "r2e", "rss2email")
        tools.append(Rss2EmailTool(args.venvs / "r2e"))
    if "reader" in wanted:
        versions["reader"] = ensure_venv(
            # reader's vendored feedparser imports `sgmllib`, which newer feedparser releases
            # no longer pull in (they depend on feedparser-sgmllib instead).
            args.venvs / "reader",
            "reader",
            "sgmllib3k",
        )
        tools += [ReaderTool(args.venvs / "reader", int(w)) for w in args.reader_workers.split(",")]

    load_before = os.getloadavg()
    server = ServerProcess(args.feeds, args.corpus, args.latency)
    print(
        f"server pid {server.process.pid} on {server.base}: {args.feeds} feeds, "
        f"{server.pages} corpus pages, {args.latency * 1000:.0f} ms per response",
        file=sys.stderr,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    runs: list[Run] = []
    started = time.perf_counter()
    try:
        for rnd in range(1, args.rounds + 1):
            for tool in tools:
                slug = re.sub(r"\W+", "-", tool.name).strip("-")
                state = workdir / f"r{rnd}-{slug}"
                state.mkdir()
                if args.cold_feeds:
                    tool.prepare(state, server.feed_urls(args.cold_feeds))
                    runs.append(measure(server, tool, state, "cold", rnd, args.cold_feeds))
                if args.cold_feeds != args.feeds:
                    state = workdir / f"r{rnd}-{slug}-warm"
                    state.mkdir()
                    tool.prepare(state, server.feed_urls(args.feeds))
                    run_child(tool.command(state), state, state / "first.log", tool.env(state))
                runs.append(measure(server, tool, state, "warm", rnd, args.feeds))
                if not args.keep:
                    shutil.rmtree(workdir / f"r{rnd}-{slug}", ignore_errors=True)
                    shutil.rmtree(workdir / f"r{rnd}-{slug}-warm", ignore_errors=True)
    finally:
        server.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    warm = rows(runs, "warm", tools)
    cold = rows(runs, "cold", tools)
    report = [
        f"## Polling benchmark: monitor vs rss2email vs reader ({args.rounds} rounds, "
        "tools alternating within each round)",
        "",
        f"Command: `{command}`",
        "",
        f"Versions: {', '.join(f'{k} {v}' for k, v in versions.items())}. "
        f"Server: separate process, asyncio HTTP/1.1 keep-alive on 127.0.0.1, "
        f"{args.latency * 1000:.0f} ms added to every response, no compression. "
        f"monitor `[http] per_host = {args.per_host}`, `concurrency = {args.concurrency}`, "
        + (
            "`[poll] parallel_sources` at its default"
            if args.parallel_sources is None
            else f"`[poll] parallel_sources = {args.parallel_sources}`"
        )
        + " "
        "(all feeds share the host 127.0.0.1; real feeds are spread over many hosts), "
        "`[poll] workers = 0` (one per core). rss2email `run --no-send` (sequential by design); "
        "reader `update_feeds_iter(workers=N, scheduled=False)`. CPU = user+sys of the tool's "
        "process and its reaped children (os.wait4). Bytes are counted by the server: status "
        "line + headers + body sent (received by the tool), request heads read (sent by it). "
        f"Load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{os.cpu_count()} cores; total {elapsed:.0f} s.",
        "",
        table(f"Warm poll: {args.feeds} feeds, every one answers 304", warm),
        "",
        "Targets (warm):",
        *targets(warm),
    ]
    if cold:
        report += [
            "",
            table(
                f"Cold poll: {args.cold_feeds} feeds × {ITEMS_PER_FEED} new items, fresh state "
                "(monitor also fetches and extracts every article page; the others fetch only "
                "the feeds)",
                cold,
            ),
        ]
    problems = [
        f"- {r.tool} {r.phase} round {r.round}: {'; '.join(r.problems)}" for r in runs if r.problems
    ]
    if problems:
        report += ["", "Problems:", *problems]
    print("\n".join(report))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "versions": versions,
                    "loadavg_before": load_before,
                    "loadavg_after": load_after,
                    "elapsed": elapsed,
                    "runs": [{**asdict(r), "cpu": r.cpu} for r in runs],
                    "warm": [
                        {**asdict(r), "median_wall": r.median_wall, "median_cpu": r.median_cpu}
                        for r in warm
                    ],
                    "cold": [
                        {**asdict(r), "median_wall": r.median_wall, "median_cpu": r.median_cpu}
                        for r in cold
                    ],
                },
                indent=2,
            ),
            "utf-8",
        )


if __name__ == "__main__":
    main()
