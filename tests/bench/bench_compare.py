"""Benchmark: warm and cold polling of 1,000 local feeds, monitor vs rss2email vs reader. I/O.

Does network I/O (127.0.0.1-127.0.0.N only), runs subprocesses and writes temporary state
directories; on first use it creates two venvs and pip-installs rss2email and reader into them.

A separate process (not counted in a client's CPU time, not sharing its GIL) runs an asyncio
HTTP/1.1 keep-alive server listening on `--hosts` loopback addresses (127.0.0.1 to
127.0.0.50 by default, one port), serving `--feeds` small RSS feeds dealt round-robin over
the hosts. Every feed has `--items-per-feed` items (5), published minutes ago, whose links
(on the feed's host) are real article pages from ../shared/corpus (the
article-extraction-benchmark pages, loaded by bench_ingest.load_pages: 181 pages, so most
items repeat a page, and monitor stores them as duplicates after fetching and extracting them
all the same). Every response waits `--latency` milliseconds (20) first; feeds and pages
carry an ETag and a Last-Modified and get a 304 for a matching If-None-Match (or, without one,
If-Modified-Since). The server counts requests, statuses, TCP connections and bytes (status
line, headers and body written; request heads read) per run, reset and read through /_ctl/.

monitor runs with its default config (what a user gets) unless `--per-host`,
`--concurrency` or `--parallel-sources` are given. Each round runs every tool in turn, each
round starting with the next tool, each in a fresh state directory:

- cold: the first poll of the feeds (`--cold-feeds`, default all): every feed answers 200
  with its new items. `monitor poll` also fetches and extracts every article page;
  rss2email and reader only fetch the feeds. The bare-extraction baseline runs
  `trafilatura.bare_extraction(fast=True)` over the very pages the cold poll fetches, in
  memory, on `--bare-workers` processes (default: one per core, as monitor's workers).
- warm: a second poll of the same state: every feed answers 304. (When `--cold-feeds` is
  smaller than `--feeds` the warm state gets its own untimed first poll of all the feeds.)

Per run: wall time, CPU time (user+sys of the child process and its reaped children, from
os.wait4), bytes received per feed (server side). Medians over `--rounds` are printed as
Markdown tables with ratios to monitor, then the targets of issue 14 with the ratio of the
medians and the spread of the per-round ratios (warm: >= 2x faster than reader with 20
workers, >= 15x faster than rss2email, every feed 304, <= 1 ms CPU per feed, < 1 KB received
per feed; cold: <= 1.5x the bare extraction).

    .venv/bin/python tests/bench/bench_compare.py [--feeds 1000] [--cold-feeds N]
        [--items-per-feed 5] [--hosts 50] [--latency 20] [--rounds 3] [--reader-workers 20,100]
        [--per-host N] [--concurrency N] [--parallel-sources N] [--bare-workers N]
        [--monitor-variant NAME:KEY=VALUE[,KEY=VALUE]]... [--monitor-source NAME=PATH]...
        [--tools monitor,bare,rss2email,reader] [--venvs /tmp/bench-venvs] [--json PATH] [--keep]
        [--by-host]
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


def host_base(scheme_port: str, hosts: int, feed: int) -> str:
    """Base URL of feed `feed`'s host: feeds are dealt round-robin over 127.0.0.1 to
    127.0.0.`hosts` (one server process listening on all of them, on one port)."""
    return f"http://127.0.0.{feed % hosts + 1}:{scheme_port}"


def page_of(feed: int, item: int, items_per_feed: int, pages: int) -> int:
    """Which corpus page item `item` of feed `feed` links to."""
    return (feed * items_per_feed + item) % pages


def build_site(
    port: int,
    hosts: int,
    feeds: int,
    items_per_feed: int,
    pages: Sequence[bytes],
    now: datetime,
) -> dict[str, Resource]:
    """The feeds and their article pages, by path (every host serves every path; feed i is
    linked on its own host, as are its articles). Item k of feed i links to page
    (i * items_per_feed + k) mod len(pages); items are 1 to 600 minutes old."""
    site: dict[str, Resource] = {}
    modified = now.replace(microsecond=0) - timedelta(hours=1)
    titles = [_page_title(p, f"Story {n}") for n, p in enumerate(pages)]
    for i in range(feeds):
        base = host_base(str(port), hosts, i)
        items = []
        for k in range(items_per_feed):
            n = page_of(i, k, items_per_feed, len(pages))
            path = f"/a/{i}/{k}.html"
            site[path] = Resource(
                pages[n],
                "text/html; charset=utf-8",
                f'"p{hashlib.sha1(pages[n]).hexdigest()[:16]}"',
                modified,
                "article",
            )
            published = now - timedelta(minutes=1 + (i * items_per_feed + k) % 600)
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
    feeds: int,
    items_per_feed: int,
    hosts: int,
    corpus: str,
    latency: float,
    ready: multiprocessing.queues.Queue[Any],
) -> None:
    """Entry point of the server process: build the site, bind 127.0.0.1 to 127.0.0.`hosts`
    on one port, report the port, serve."""
    sys.path.insert(0, str(ROOT))
    from tests.bench.bench_ingest import load_pages

    pages = load_pages(Path(corpus), None)

    async def main() -> None:
        holder: dict[str, FeedServer] = {}

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await holder["server"].handle(reader, writer)

        for _attempt in range(20):  # another process may hold the port on some address
            first = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
            port = first.sockets[0].getsockname()[1]
            servers = [first]
            try:
                for h in range(2, hosts + 1):
                    servers.append(
                        await asyncio.start_server(handle, f"127.0.0.{h}", port, backlog=2048)
                    )
                break
            except OSError:
                for server in servers:
                    server.close()
        else:
            raise SystemExit(f"no free port on all of 127.0.0.1-127.0.0.{hosts}")
        site = build_site(port, hosts, feeds, items_per_feed, pages, datetime.now(UTC))
        holder["server"] = FeedServer(site, latency)
        ready.put((port, len(pages)))
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


class ServerProcess:
    def __init__(
        self, feeds: int, items_per_feed: int, hosts: int, corpus: Path, latency: float
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        ready: multiprocessing.queues.Queue[Any] = ctx.Queue()
        self.hosts = hosts
        self.process = ctx.Process(
            target=serve_main,
            args=(feeds, items_per_feed, hosts, str(corpus), latency, ready),
            daemon=True,
        )
        self.process.start()
        self.port, self.pages = ready.get(timeout=120)
        self.base = f"http://127.0.0.1:{self.port}"

    def feed_urls(self, count: int, *, by_host: bool = False) -> list[str]:
        """The first `count` feeds' URLs, in feed order (the hosts taking turns) or, with
        `by_host`, each host's feeds together, as a list that groups a site's feeds does."""
        order = sorted(range(count), key=lambda i: (i % self.hosts, i)) if by_host else range(count)
        return [f"{host_base(str(self.port), self.hosts, i)}/f/{i}.xml" for i in order]

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

    def __init__(
        self,
        per_host: int | None,
        concurrency: int | None,
        parallel_sources: int | None,
        *,
        variant: str | None = None,
        poll: dict[str, str] | None = None,
        pythonpath: str | None = None,
    ) -> None:
        """None leaves a key out of the config: monitor's default, what a user gets. A
        `variant` is the same monitor with more config keys (`poll`: `[poll]` keys, or
        `table.key` for another table), or another version of its code (`pythonpath`: a
        source tree exported from an earlier commit, imported first), in a row of its own: a
        before/after side by side in one run."""
        self.per_host = per_host
        self.concurrency = concurrency
        self.parallel_sources = parallel_sources
        self.poll = dict(poll or {})
        self.pythonpath = pythonpath
        if variant:
            self.name = f"monitor ({variant})"

    def prepare(self, state: Path, urls: Sequence[str]) -> None:
        (state / "corpus").mkdir(exist_ok=True)
        (state / "sources.toml").write_text(
            "".join(
                f'[[sources]]\nname = "bench-{i:04d}"\nurl = "{url}"\ninterval = "30m"\n\n'
                for i, url in enumerate(urls)
            ),
            "utf-8",
        )
        tables: dict[str, str] = {}
        for table, key, value in (
            ("http", "concurrency", self.concurrency),
            ("http", "per_host", self.per_host),
            ("poll", "parallel_sources", self.parallel_sources),
        ):
            if value is not None:
                tables[table] = tables.get(table, f"[{table}]\n") + f"{key} = {value}\n"
        for key, text in self.poll.items():
            table, _, name = key.rpartition(".")
            table = table or "poll"
            tables[table] = tables.get(table, f"[{table}]\n") + f"{name} = {text}\n"
        tuning = "".join(tables.values())
        (state / "monitor.toml").write_text(
            f"""[storage]
url = "sqlite:///monitor.db"
[sources]
file = "sources.toml"
[topics]
file = "{TOPICS}"
[corpus]
dir = "corpus"
{tuning}""",
            "utf-8",
        )

    def command(self, state: Path) -> list[str]:
        return [str(MONITOR), "--config", str(state / "monitor.toml"), "poll"]

    def env(self, state: Path) -> dict[str, str] | None:
        env = {**os.environ, "MONITOR_DATA_DIR": str(state / "data")}
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        return env

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


class BareExtractionTool:
    """The cold poll's floor: `trafilatura.bare_extraction(fast=True)` of the very pages the
    cold poll fetches (in memory, no HTTP, no storage) on `workers` processes."""

    phases = ("cold",)

    def __init__(self, corpus: Path, items_per_feed: int, workers: int) -> None:
        self.corpus = corpus
        self.items_per_feed = items_per_feed
        self.workers = workers
        self.name = f"bare extraction ({workers} processes)"
        self.feeds = 0

    def prepare(self, state: Path, urls: Sequence[str]) -> None:
        self.feeds = len(urls)

    def command(self, state: Path) -> list[str]:
        return [
            sys.executable,
            str(Path(__file__).resolve()),
            "--bare-extract",
            f"{self.corpus},{self.feeds},{self.items_per_feed},{self.workers}",
        ]

    def env(self, state: Path) -> dict[str, str] | None:
        return None

    def summarize(self, output: str) -> str:
        lines = [ln for ln in output.splitlines() if ln.startswith("extracted")]
        return lines[-1] if lines else "no summary line"


_bare_pages: list[bytes] = []


def _bare_one(index: int) -> int:
    import trafilatura

    doc = trafilatura.bare_extraction(
        _bare_pages[index],
        url=f"http://127.0.0.1/page/{index}.html",
        fast=True,
        with_metadata=True,
        include_comments=False,
    )
    return 0 if doc is None else 1


def bare_extract_main(spec: str) -> None:
    """`--bare-extract CORPUS,FEEDS,ITEMS,WORKERS`: extract every page the cold poll would
    fetch, in that order, on WORKERS forked processes."""
    corpus, feeds, items, workers = spec.rsplit(",", 3)
    sys.path.insert(0, str(ROOT))
    from concurrent.futures import ProcessPoolExecutor

    from tests.bench.bench_ingest import load_pages

    _bare_pages.extend(load_pages(Path(corpus), None))
    order = [
        page_of(i, k, int(items), len(_bare_pages))
        for i in range(int(feeds))
        for k in range(int(items))
    ]
    with ProcessPoolExecutor(int(workers), mp_context=multiprocessing.get_context("fork")) as pool:
        done = sum(pool.map(_bare_one, order, chunksize=4))
    print(f"extracted {done} of {len(order)} pages", flush=True)


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


def expected_problems(run: Run, phase: str, tool: Tool, feeds: int, items: int) -> list[str]:
    """What the server saw that a correct run of this phase would not show."""
    if isinstance(tool, BareExtractionTool):
        return [f"exit code {run.returncode}"] if run.returncode else []
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
        if isinstance(tool, MonitorTool) and pages != feeds * items:
            problems.append(f"{pages} of {feeds * items} article pages fetched")
    if statuses.get("other 404", 0):
        problems.append(f"{statuses['other 404']} requests for unknown paths")
    return problems


def measure(
    server: ServerProcess, tool: Tool, state: Path, phase: str, rnd: int, feeds: int, items: int
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
    run.problems = expected_problems(run, phase, tool, feeds, items)
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


def _round_ratios(runs: Sequence[Run], phase: str, slow: str, fast: str) -> list[float]:
    """Per round, the wall time of tool `slow` over that of tool `fast` (same round)."""
    walls = {(r.tool, r.round): r.wall for r in runs if r.phase == phase}
    rounds = sorted({r.round for r in runs})
    return [
        walls[slow, n] / walls[fast, n] for n in rounds if (slow, n) in walls and (fast, n) in walls
    ]


def _verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def _spread(ratios: Sequence[float]) -> str:
    return f" (per round {min(ratios):.2f}–{max(ratios):.2f})" if ratios else ""


def targets(runs: Sequence[Run], warm: Sequence[Row], cold: Sequence[Row]) -> list[str]:
    """The issue's targets, each with the ratio of medians and the per-round ratios."""
    by_tool = {r.tool: r for r in warm}
    monitor = by_tool.get("monitor")
    out = []
    if monitor is not None:
        for name, floor in (("reader (workers=20)", 2.0), ("rss2email", 15.0)):
            other = by_tool.get(name)
            if other is None:
                continue
            ratio = other.median_wall / monitor.median_wall
            out.append(
                f"- warm: monitor ≥ {floor:g}× faster than {name}: {ratio:.2f}×"
                f"{_spread(_round_ratios(runs, 'warm', name, 'monitor'))} — "
                f"{_verdict(ratio >= floor)}"
            )
        mine = [r for r in runs if r.tool == "monitor" and r.phase == "warm"]
        not_304 = [r.round for r in mine if r.server["statuses"].get("feed 304", 0) != r.feeds]
        out.append(
            f"- warm: every feed answered 304 in every monitor run: "
            f"{'yes' if not not_304 else f'no (rounds {not_304})'} — {_verdict(not not_304)}"
        )
        per_feed_cpu = 1000 * monitor.median_cpu / mine[0].feeds
        out.append(
            f"- warm: monitor CPU per unchanged feed ≤ 1 ms (whole process, start-up included): "
            f"{per_feed_cpu:.2f} ms — {_verdict(per_feed_cpu <= 1.0)}"
        )
        out.append(
            f"- warm: monitor < 1 KB received per feed: {monitor.feed_bytes:.0f} B — "
            f"{_verdict(monitor.feed_bytes < 1000)}"
        )
    cold_by_tool = {r.tool: r for r in cold}
    bare = next((r for r in cold if r.tool.startswith("bare extraction")), None)
    if bare is not None and "monitor" in cold_by_tool:
        ratio = cold_by_tool["monitor"].median_wall / bare.median_wall
        out.append(
            f"- cold: monitor poll ≤ 1.5× {bare.tool} of the same pages (1.15× the aim): "
            f"{ratio:.2f}×{_spread(_round_ratios(runs, 'cold', 'monitor', bare.tool))} — "
            f"{_verdict(ratio <= 1.5)}"
        )
    return out


# -- main ---------------------------------------------------------------------------------------


def _latency(text: str) -> float:
    """`--latency` in milliseconds; a value below 1 is read as seconds (older commands)."""
    value = float(text)
    return value if value < 1 else value / 1000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000, help="feeds in the warm poll")
    parser.add_argument(
        "--cold-feeds", type=int, default=None, help="feeds in the cold poll (default --feeds)"
    )
    parser.add_argument("--items-per-feed", type=int, default=ITEMS_PER_FEED)
    parser.add_argument("--hosts", type=int, default=50, help="loopback hosts 127.0.0.1-N")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--latency", type=_latency, default=0.02, help="milliseconds added to every response"
    )
    parser.add_argument("--reader-workers", default="20,100", help="comma list; one row each")
    parser.add_argument(
        "--per-host", type=int, default=None, help="monitor [http] per_host (default: its own)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="monitor [http] concurrency (default: its own)",
    )
    parser.add_argument(
        "--parallel-sources",
        type=int,
        default=None,
        help="monitor [poll] parallel_sources (default: its own)",
    )
    parser.add_argument(
        "--bare-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes of the bare-extraction baseline (default: one per core, as monitor)",
    )
    parser.add_argument(
        "--monitor-variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="also run monitor with these [poll] keys, as row 'monitor (NAME)' "
        "(e.g. one-by-one:decide_batch=1; the key pythonpath=DIR runs the code exported "
        "in DIR instead, e.g. by git archive of an earlier commit); repeatable",
    )
    parser.add_argument(
        "--monitor-source",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also run the monitor of the source tree PATH (e.g. `git archive` of an earlier "
        "commit, unpacked) with this venv's packages, as row 'monitor (NAME)'; repeatable",
    )
    parser.add_argument("--venvs", type=Path, default=Path("/tmp/bench-venvs"))
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--tools", default="monitor,bare,rss2email,reader", help="comma list (bare: the baseline)"
    )
    parser.add_argument("--json", type=Path, help="also write every run and the medians here")
    parser.add_argument("--keep", action="store_true", help="keep the state directories")
    parser.add_argument(
        "--by-host",
        action="store_true",
        help="list each host's feeds together in the tools' sources (default: hosts in turn)",
    )
    args = parser.parse_args(argv)
    if args.cold_feeds is None:
        args.cold_feeds = args.feeds
    if not 0 <= args.cold_feeds <= args.feeds:
        parser.error("--cold-feeds must be between 0 and --feeds")
    if not 1 <= args.hosts <= 254:
        parser.error("--hosts must be between 1 and 254")
    return args


def _phases(tool: Tool) -> tuple[str, ...]:
    return getattr(tool, "phases", ("cold", "warm"))


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--bare-extract":
        bare_extract_main(sys.argv[2])
        return
    args = parse_args(argv)
    command = shlex.join(
        [os.path.relpath(sys.executable, Path.cwd()), *sys.argv]
        if argv is None
        else ["bench_compare.main", *argv]
    )
    listing = "group each host's feeds" if args.by_host else "take the hosts in turn"
    wanted = set(args.tools.split(","))
    versions = {"monitor": subprocess.run(
        [str(MONITOR), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]}  # fmt: skip
    tools: list[Tool] = []
    if "monitor" in wanted:
        tools.append(MonitorTool(args.per_host, args.concurrency, args.parallel_sources))
        sources = (spec.partition("=") for spec in args.monitor_source)
        variants = [f"{name}:pythonpath={Path(path).resolve()}" for name, _, path in sources]
        for spec in [*args.monitor_variant, *variants]:
            name, _, keys = spec.partition(":")
            poll = dict(pair.split("=", 1) for pair in keys.split(",") if pair)
            pythonpath = poll.pop("pythonpath", None)
            tools.append(
                MonitorTool(
                    args.per_host,
                    args.concurrency,
                    args.parallel_sources,
                    variant=name,
                    poll=poll,
                    pythonpath=pythonpath,
                )
            )
    if "bare" in wanted and args.cold_feeds:
        import trafilatura

        versions["trafilatura"] = trafilatura.__version__
        tools.append(BareExtractionTool(args.corpus, args.items_per_feed, args.bare_workers))
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
    server = ServerProcess(args.feeds, args.items_per_feed, args.hosts, args.corpus, args.latency)
    print(
        f"server pid {server.process.pid} on 127.0.0.1-127.0.0.{args.hosts} port {server.port}: "
        f"{args.feeds} feeds, {server.pages} corpus pages, "
        f"{args.latency * 1000:.0f} ms per response",
        file=sys.stderr,
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    runs: list[Run] = []
    started = time.perf_counter()
    items = args.items_per_feed
    try:
        for rnd in range(1, args.rounds + 1):
            # Alternate: each round starts with the next tool, so a noisy stretch of the
            # shared machine does not always hit the same one.
            shift = (rnd - 1) % len(tools)
            for tool in tools[shift:] + tools[:shift]:
                slug = re.sub(r"\W+", "-", tool.name).strip("-")
                state = workdir / f"r{rnd}-{slug}"
                state.mkdir()
                if args.cold_feeds and "cold" in _phases(tool):
                    tool.prepare(state, server.feed_urls(args.cold_feeds, by_host=args.by_host))
                    runs.append(measure(server, tool, state, "cold", rnd, args.cold_feeds, items))
                if "warm" in _phases(tool):
                    if args.cold_feeds != args.feeds:
                        state = workdir / f"r{rnd}-{slug}-warm"
                        state.mkdir()
                        tool.prepare(state, server.feed_urls(args.feeds, by_host=args.by_host))
                        run_child(tool.command(state), state, state / "first.log", tool.env(state))
                    runs.append(measure(server, tool, state, "warm", rnd, args.feeds, items))
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

    def setting(key: str, value: int | None) -> str:
        return f"`{key} = {value}`" if value is not None else f"`{key}` at its default"

    report = [
        f"## Polling benchmark: monitor vs rss2email vs reader ({args.rounds} rounds, "
        "tools alternating within each round, each round starting with the next tool)",
        "",
        f"Command: `{command}`",
        "",
        f"Versions: {', '.join(f'{k} {v}' for k, v in versions.items())}. "
        f"Server: separate process, asyncio HTTP/1.1 keep-alive on 127.0.0.1–127.0.0.{args.hosts} "
        f"(feeds dealt round-robin, each feed's articles on its host; the tools' lists {listing}), "
        f"{args.latency * 1000:.0f} ms added to every response, no compression. monitor: "
        f"{setting('[http] per_host', args.per_host)}, "
        f"{setting('[http] concurrency', args.concurrency)}, "
        f"{setting('[poll] parallel_sources', args.parallel_sources)}, "
        "`[poll] workers` at its default (one per core). rss2email `run --no-send` "
        "(sequential by design); reader `update_feeds_iter(workers=N, scheduled=False)`. "
        "Bare extraction: `trafilatura.bare_extraction(fast=True)` of the same pages in memory. "
        "CPU = user+sys of the tool's "
        "process and its reaped children (os.wait4). Bytes are counted by the server: status "
        "line + headers + body sent (received by the tool), request heads read (sent by it). "
        f"Load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"{os.cpu_count()} cores; total {elapsed:.0f} s.",
        "",
        table(f"Warm poll: {args.feeds} feeds, every one answers 304", warm),
    ]
    if cold:
        report += [
            "",
            table(
                f"Cold poll: {args.cold_feeds} feeds × {items} new items, fresh state "
                "(monitor also fetches and extracts every article page; the others fetch only "
                "the feeds; bare extraction only extracts the pages)",
                cold,
            ),
        ]
    report += ["", "Targets:", *targets(runs, warm, cold)]
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
