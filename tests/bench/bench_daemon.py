"""Benchmark (does I/O): `monitor run` RSS over 1,000 poll cycles (empty or prefilled db), idle CPU.

I/O: network (127.0.0.1 only), subprocesses, temporary files, SQLite files, /proc.

Run (not part of the default pytest run):

    .venv/bin/python tests/bench/bench_daemon.py [--cycles 1000] [--idle-seconds 60]
        [--feeds 50] [--items 5] [--sample-every 50] [--json out.json] [--keep]
        [--prefill [N]] [--prefill-db PATH] [--prefill-per-day 140] [--prefill-seed 7]

    # the DESIGN memory target: 100k stored items, the prefilled file cached between runs
    .venv/bin/python tests/bench/bench_daemon.py --prefill 100000 \
        --prefill-db /tmp/bench-prefill/prefill-100k.db

Prefill (`--prefill N`; `--prefill` alone is 100,000): before the daemon starts, its database
is a copy of a SQLite file holding N items, written through `Store.insert_item` (one
transaction each) as the poll pipeline stores them: `--prefill-per-day` items a day (140: 100k
items span ~2 years, ~12.6k within the 90-day near-duplicate window and ~4.2k within the
30-day story window), ending when the file was built, spread over the 50 bench feeds' source
names. Texts are related-but-not-duplicate variants of real texts from ../shared/corpus
(`bench_dedupe.load_pool` and `variant`), each with its own URL and text hash. The items
within the windows (plus a day) get their own language, tags, MinHash signature and story
features, and the near-duplicate and story decisions of a `DedupeIndex` fed in time order
(seeds included, evicted hourly), as the daemon would have made them. Older items, which
`DedupeIndex.load` never reads, reuse the signature, features and tags of a pool of 1,000
signed variants (with a story of their own and a "no match" decision); every fifth item older
than a year belongs to one of 10 sources no longer configured. The sources are marked as
polled before, so the daemon's first poll is not a first poll. `--prefill-db PATH` keeps the
file (and PATH.json, its parameters and counts) and reuses it when built with the same
options; it is copied into the work dir before each phase, so it stays pristine. Each phase
reports how many copied items fall within the windows at start, and the start-up time: from
the process start to the `daemon_started` log line, and the `index_loaded` figures.

Phase 1 (cycles): a separate process serves 50 RSS feeds of ~5 recent items each, whose
article pages are real pages from ../shared/corpus (the article-extraction benchmark set,
topped up from the Readability and trafilatura test pages). The daemon, started as
`.venv/bin/monitor --config <tmp>/monitor.toml run`, polls every feed about once a second
(`interval = "1s"`): the first poll fetches and extracts the pages, later ones get 304s.
Cycles are counted from `/metrics` (`monitor_polls_total`, ok + not_modified + failed, divided
by the number of feeds); at the first `/metrics` answer and every `--sample-every` cycles the
RSS, PSS, CPU time, threads and open files of the daemon and of its child processes (the
extraction workers) are read from /proc. The report gives RSS and PSS of the main process and
the workers at start, after `--warmup` cycles and at the end, and the growth in between.
After `--cycles` cycles it sends SIGTERM and checks the exit code is 0.

Phase 2 (idle): the same feeds with `interval = "30m"` (and the same prefill); once the first
round is done (all feeds polled, nothing in flight) it measures the CPU time the daemon and its
workers use over `--idle-seconds` seconds during which nothing is due, without scraping
`/metrics`.

The report prints to stdout; `--json PATH` also writes the figures. The machine is noisy: CPU
figures are indicative, RSS figures are the point. The report also gives a sha256 of monitor/
at the start and end: others may change the code while a run goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formatdate
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.config import Config, DedupeConfig, load_config  # noqa: E402
from monitor.dedupe.exact import canonical_url, text_fingerprint  # noqa: E402
from monitor.dedupe.near import sign_text, signature_from_bytes, signature_to_bytes  # noqa: E402
from monitor.dedupe.story import (  # noqa: E402
    STORY_THRESHOLD,
    StoryMatch,
    extract_features,
    features_from_json,
    features_to_json,
)
from monitor.extract import detect_language  # noqa: E402
from monitor.models import Article, Source  # noqa: E402
from monitor.pipeline.index import DedupeIndex, near_record, story_record  # noqa: E402
from monitor.store import SCHEMA_VERSION, DedupeRecord, ItemSignature, PollSuccess, Store  # noqa: E402
from monitor.tag import Tags, tag_article  # noqa: E402
from tests.bench.bench_dedupe import load_pool, variant  # noqa: E402
from tests.bench.bench_ingest import load_pages as load_benchmark_pages  # noqa: E402
from tests.daemon_process import free_port, http_get, metric  # noqa: E402
from tests.servers import LocalServer  # noqa: E402

TOPICS = ROOT / "config" / "topics.toml"
SEED_CORPUS = ROOT / "config" / "corpus"
REAL_OUTCOMES = ("ok", "not_modified", "failed")
ITEM_STATUSES = ("new", "known", "duplicate", "baseline", "updated")
CLK_TCK = os.sysconf("SC_CLK_TCK")
STALL_SECONDS = 90.0  # no new poll for this long: the daemon is stuck, give up
LOG_LINE = re.compile(r"^(\S+) (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) (\S+)")


# -- pages and the feed server (another process) --------------------------------------------------


def load_pages(corpus: Path, count: int) -> list[bytes]:
    """`count` real article pages: the extraction benchmark set first (as bench_ingest loads
    it), then Readability and trafilatura test pages; repeated only if there are too few."""
    pages = load_benchmark_pages(corpus, None)
    extra = sorted((corpus / "readability-test-pages").glob("*/source.html"))
    extra += sorted((corpus / "trafilatura-tests" / "eval-news-subset").rglob("*.html"))
    extra += sorted((corpus / "trafilatura-tests" / "cache").glob("*.html"))
    for path in extra:
        if len(pages) >= count:
            break
        pages.append(path.read_bytes())
    if not pages:
        raise SystemExit(f"no article pages found under {corpus}")
    return [pages[i % len(pages)] for i in range(count)]


def page_title(page: bytes, fallback: str) -> str:
    match = re.search(rb"<title[^>]*>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
    if match is None:
        return fallback
    title = " ".join(html.unescape(match.group(1).decode("utf-8", "replace")).split())
    return title[:200] or fallback


def build_feed(base_url: str, feed: int, pages: list[bytes], now: datetime) -> bytes:
    """An RSS feed whose items point at `pages`, published within the last few hours."""
    items = []
    for j, page in enumerate(pages):
        published = now - timedelta(minutes=feed * len(pages) + j + 1)
        link = f"{base_url}/articles/{feed:02d}/{j}.html"
        title = page_title(page, f"Article {feed}-{j}")
        items.append(
            f"<item><title>{escape(title)}</title><link>{link}</link>"
            f'<guid isPermaLink="false">bench-{feed:02d}-{j}</guid>'
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{escape(title)}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Bench feed {feed}</title><link>{base_url}/</link>"
        f"<description>Local feed {feed}</description>{''.join(items)}</channel></rss>"
    ).encode()


def _serve(
    pages: list[bytes],
    feeds: int,
    items: int,
    ready: multiprocessing.Queue[str],
    stop: EventType,
) -> None:
    """The server process: a LocalServer with `feeds` feeds and their pages, until `stop`."""
    now = datetime.now(UTC)
    last_modified = formatdate(now.timestamp() - 60, usegmt=True)
    with LocalServer() as server:
        for f in range(feeds):
            chunk = pages[f * items : (f + 1) * items]
            for j, page in enumerate(chunk):
                server.add(f"/articles/{f:02d}/{j}.html", page, content_type="text/html")
            server.add(
                f"/feeds/{f:02d}.xml",
                build_feed(server.base_url, f, chunk, now),
                content_type="application/rss+xml; charset=utf-8",
                etag=f'"bench-feed-{f}"',
                last_modified=last_modified,
            )
        ready.put(server.base_url)
        stop.wait()


@dataclass
class FeedServer:
    """The feeds, served by another process so that its work is not the daemon's."""

    process: multiprocessing.Process
    stop: EventType
    base_url: str

    @classmethod
    def start(cls, pages: list[bytes], feeds: int, items: int) -> FeedServer:
        ready: multiprocessing.Queue[str] = multiprocessing.Queue()
        stop = multiprocessing.Event()
        process = multiprocessing.Process(
            target=_serve, args=(pages, feeds, items, ready, stop), name="bench-feeds"
        )
        process.start()
        return cls(process, stop, ready.get(timeout=60))

    def feed_url(self, feed: int) -> str:
        return f"{self.base_url}/feeds/{feed:02d}.xml"

    def close(self) -> None:
        self.stop.set()
        self.process.join(15)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# -- /proc ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """One process at one moment, from /proc (sizes in KiB, CPU in seconds)."""

    pid: int
    rss_kb: int
    pss_kb: int | None
    hwm_kb: int
    cpu_s: float
    threads: int
    fds: int
    ctx_switches: int


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _status(path: str) -> dict[str, str]:
    out = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _kb(value: str) -> int:
    return int(value.split()[0])


def read_proc(pid: int) -> Proc | None:
    """None when the process has gone."""
    try:
        status = _status(f"/proc/{pid}/status")
        pss = None
        with contextlib.suppress(OSError):
            rollup = _status(f"/proc/{pid}/smaps_rollup")
            pss = _kb(rollup["Pss"]) if "Pss" in rollup else None
        switches = 0
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                task_status = _status(f"/proc/{pid}/task/{task}/status")
                switches += int(task_status["voluntary_ctxt_switches"])
                switches += int(task_status["nonvoluntary_ctxt_switches"])
        return Proc(
            pid=pid,
            rss_kb=_kb(status["VmRSS"]),
            pss_kb=pss,
            hwm_kb=_kb(status["VmHWM"]),
            cpu_s=cpu_seconds(pid),
            threads=int(status["Threads"]),
            fds=len(os.listdir(f"/proc/{pid}/fd")),
            ctx_switches=switches,
        )
    except (OSError, KeyError, ValueError, IndexError):
        return None


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: /proc/<pid>/task/*/children where the kernel has it,
    else a scan of the parent ids in /proc/*/stat."""
    if Path(f"/proc/{pid}/task/{pid}/children").exists():
        found: list[int] = []
        stack = [pid]
        while stack:
            parent = stack.pop()
            for task in Path(f"/proc/{parent}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    kids = [int(k) for k in task.read_text().split()]
                    found += kids
                    stack += kids
        return sorted(set(found))
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(
                    int(entry.name)
                )
    found, stack = [], [pid]
    while stack:
        kids = parents.get(stack.pop(), [])
        found += kids
        stack += kids
    return sorted(found)


# -- the daemon -----------------------------------------------------------------------------------


def write_config(tmp: Path, sources: list[str], interval: str, fast_poll: bool, port: int) -> Path:
    entries = "".join(
        f'[[sources]]\nname = "Bench feed {i:02d}"\nurl = "{url}"\ninterval = "{interval}"\n\n'
        for i, url in enumerate(sources)
    )
    (tmp / "sources.toml").write_text(entries, "utf-8")
    poll = '[poll]\nmin_interval = "1s"\n' if fast_poll else ""
    path = tmp / "monitor.toml"
    path.write_text(
        f"""[storage]
url = "sqlite:///monitor.db"
[sources]
file = "sources.toml"
[topics]
file = {json.dumps(str(TOPICS))}
[corpus]
dir = {json.dumps(str(SEED_CORPUS))}
{poll}[server]
host = "127.0.0.1"
port = {port}
[daemon]
drain_timeout = "10s"
""",
        "utf-8",
    )
    return path


@dataclass(frozen=True)
class Scrape:
    polls: dict[str, float]
    items: dict[str, float]
    queue_depth: float
    page_failures: float

    @property
    def real_polls(self) -> float:
        return sum(self.polls[o] for o in REAL_OUTCOMES)


def parse_metrics(text: str) -> Scrape:
    return Scrape(
        polls={
            o: metric(text, "monitor_polls_total", outcome=o) for o in (*REAL_OUTCOMES, "skipped")
        },
        items={s: metric(text, "monitor_items_stored_total", status=s) for s in ITEM_STATUSES},
        queue_depth=metric(text, "monitor_queue_depth"),
        page_failures=metric(text, "monitor_page_failures_total"),
    )


class Daemon:
    """`.venv/bin/monitor --config CONFIG run`, stderr and stdout to `daemon.log`."""

    def __init__(self, config: Path, port: int) -> None:
        self.port = port
        self.log_path = config.parent / "daemon.log"
        script = Path(sys.executable).with_name("monitor")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]
        self.command = [*command, "--config", str(config), "run"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        env["MONITOR_DATA_DIR"] = str(config.parent / "data")
        self._log = self.log_path.open("ab")
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env=env,
            cwd=config.parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def fail(self, why: str) -> SystemExit:
        tail = "\n".join(self.log().splitlines()[-40:])
        return SystemExit(f"{why}\n--- last lines of {self.log_path} ---\n{tail}")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise self.fail(f"the daemon exited with code {self.process.returncode}")

    def scrape(self) -> Scrape | None:
        status, body = http_get(f"http://127.0.0.1:{self.port}/metrics")
        return parse_metrics(body.decode()) if status == 200 else None

    def wait_scrape(self, timeout: float = 60.0) -> Scrape:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            scraped = self.scrape()
            if scraped is not None:
                return scraped
            time.sleep(0.2)
        raise self.fail(f"/metrics did not answer within {timeout:.0f}s")

    def sample(self) -> tuple[Proc, list[Proc]]:
        main = read_proc(self.pid)
        if main is None:
            raise self.fail("the daemon process has gone")
        workers = [p for p in map(read_proc, descendants(self.pid)) if p is not None]
        return main, workers

    def stop(self, timeout: float = 40.0) -> tuple[int, float, list[int]]:
        """SIGTERM; (exit code, seconds to exit, child pids still alive afterwards)."""
        children = descendants(self.pid)
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise self.fail(f"no exit {timeout:.0f}s after SIGTERM") from None
        took = time.monotonic() - started
        time.sleep(0.5)
        alive = [pid for pid in children if read_proc(pid) is not None]
        return code, took, alive

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def log_summary(text: str) -> dict[str, Any]:
    """Lines per level, and the warnings and errors grouped by logger and event, with when
    each group first and last appeared (seconds after the daemon's first log line)."""
    levels: Counter[str] = Counter()
    problems: Counter[str] = Counter()
    examples: dict[str, str] = {}
    spans: dict[str, list[float]] = {}
    start: datetime | None = None
    for line in text.splitlines():
        match = LOG_LINE.match(line)
        if match is None:
            continue
        stamp, level, logger, event = match.groups()
        when = start
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            start = start or when
        levels[level] += 1
        if level in ("WARNING", "ERROR", "CRITICAL"):
            key = f"{level} {logger} {event}"
            problems[key] += 1
            examples.setdefault(key, line[:300])
            offset = (when - start).total_seconds() if start and when else 0.0
            spans.setdefault(key, [offset, offset])[1] = offset
    return {
        "lines": len(text.splitlines()),
        "levels": dict(levels),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "problems": dict(problems.most_common()),
        "examples": examples,
        "seconds_first_last": spans,
    }


# -- prefill: a database that already holds N items -----------------------------------------------

PREFILL_FORMAT = 1  # bump when what build_prefill writes changes: cached files are then rebuilt
PREFILL_HOST = "https://prefill.invalid"  # the stored items' URLs (a reserved TLD, never fetched)
PLACEHOLDER_FEED = "http://127.0.0.1:9/feeds/{:02d}.xml"  # the daemon's sync_sources replaces it
RETIRED_SOURCES = 10  # sources no longer configured, as a deployment of some age has
RETIRED_BEFORE = timedelta(days=365)  # items older than this: every fifth from a retired source
TEMPLATES = 1000  # signatures, features and tags shared by the items outside the windows
SIGNED_MARGIN = timedelta(days=1)  # items this much older than the windows are signed too
DEDUPE = DedupeConfig()  # the daemon's config sets no [dedupe]: these are its windows
STARTED_LINE = re.compile(r"^(\S+) INFO \S+ daemon_started ", re.MULTILINE)
INDEX_LINE = re.compile(r" index_loaded entries=(\d+) seconds=([\d.]+)")


@dataclass(frozen=True)
class Template:
    """What an item outside the retention windows reuses instead of signing its own text."""

    language: str | None
    tags: Tags
    signature: ItemSignature


@dataclass(frozen=True)
class Prefill:
    """A pristine prefilled database (the `--prefill-db` cache, or one in the work dir)."""

    path: Path
    meta: dict[str, Any]
    reused: bool


def prefill_params(args: argparse.Namespace) -> dict[str, Any]:
    """What a cached file must have been built with to be reused."""
    return {
        "format": PREFILL_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "items": args.prefill,
        "per_day": args.prefill_per_day,
        "feeds": args.feeds,
        "seed": args.prefill_seed,
        "templates": TEMPLATES,
        "retired_sources": RETIRED_SOURCES,
    }


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _stamp(at: datetime) -> str:
    """`at` as SQLAlchemy's SQLite DateTime stores it (naive UTC text), for comparisons."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def db_counts(path: Path, now: datetime) -> dict[str, Any]:
    """Items in all and within the dedupe windows as of `now`, read with sqlite3 (read-only)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:

        def one(sql: str, *params: object) -> int:
            return int(con.execute(sql, params).fetchone()[0])

        return {
            "items": one("SELECT count(*) FROM items"),
            "signatures": one("SELECT count(*) FROM signatures"),
            "near_window": one(
                "SELECT count(*) FROM items WHERE fetched_at >= ?", _stamp(now - DEDUPE.retention)
            ),
            "story_window": one(
                "SELECT count(*) FROM items WHERE fetched_at >= ?",
                _stamp(now - DEDUPE.story_retention),
            ),
            "seeds": one("SELECT count(*) FROM seeds"),
            "sources": one("SELECT count(*) FROM sources"),
            "by_status": dict(con.execute("SELECT status, count(*) FROM items GROUP BY status")),
            "file_mb": path.stat().st_size / 1e6,
        }


class Prefiller:
    """Writes items as the poll pipeline stores them, through `Store.insert_item`."""

    def __init__(self, config: Config, store: Store, corpus: Path, seed: int) -> None:
        self.config = config
        self.store = store
        self.rng = random.Random(seed)
        self.pool = load_pool(corpus)
        self.vocab = sorted({w for text in self.pool[:500] for w in text.split() if w.isalpha()})
        self.hashes: set[str] = set()
        self.statuses: Counter[str] = Counter()

    def article(self, i: int, source: str, at: datetime) -> Article:
        """A fresh variant of a real text (language still unset), with a URL and a text hash
        that no other item has."""
        while True:
            title, text = variant(self.rng.choice(self.pool), self.vocab, self.rng)
            text_hash = text_fingerprint(text)
            if text_hash and text_hash not in self.hashes:
                break
        self.hashes.add(text_hash)
        url = f"{PREFILL_HOST}/{i // 1000:03d}/{i}.html"
        return Article(
            source=source,
            url=url,
            canonical_url=canonical_url(url),
            guid=f"prefill-{i}",
            title=title,
            text=text,
            summary=" ".join(text.split()[:40]),
            published_at=at - timedelta(seconds=self.rng.uniform(0, 6 * 3600)),
            language=None,
            extraction="full_text",
            text_hash=text_hash,
        )

    def template(self) -> Template:
        title, text = variant(self.rng.choice(self.pool), self.vocab, self.rng)
        language = detect_language(text)
        signature, shingles = sign_text(text)
        features = extract_features(title, text, None, language)
        return Template(
            language,
            tag_article(self.config.taxonomy, title=title, text=text, language=language),
            ItemSignature(signature_to_bytes(signature), shingles, features_to_json(features)),
        )

    def insert_unsigned(
        self, i: int, source: str, at: datetime, template: Template, indexed: int
    ) -> None:
        """An item outside the windows (never loaded by the daemon): its own text, URL and
        hash, the template's signature, features and tags, a story of its own, no match."""
        article = replace(self.article(i, source, at), language=template.language)
        story_id = i + 1
        match = StoryMatch(
            story_id=story_id,
            is_new=True,
            score=0.0,
            threshold=STORY_THRESHOLD,
            matched_key=None,
            compared_with=None,
            reasons=(),
            seed_refs=(),
        )
        record = DedupeRecord(
            signature=template.signature,
            story_id=story_id,
            near=near_record(None, template.signature.shingles, indexed),
            story=story_record(match),
        )
        self.store.insert_item(
            article, fetched_at=at, status="new", baseline=False, tags=template.tags, dedupe=record
        )
        self.statuses["new"] += 1

    def insert_signed(self, i: int, source: str, at: datetime, index: DedupeIndex) -> None:
        """An item within the windows, as `Poller._article` stores it: its own language, tags,
        signature and features, the near and story layers' decisions, then `remember`."""
        article = self.article(i, source, at)
        language = detect_language(article.text)
        article = replace(article, language=language)
        tags = tag_article(
            self.config.taxonomy, title=article.title, text=article.text, language=language
        )
        sig, shingles = sign_text(article.text)
        features = extract_features(article.title, article.text, article.published_at, language)
        stored = ItemSignature(signature_to_bytes(sig), shingles, features_to_json(features))
        signature = signature_from_bytes(stored.signature)  # as the daemon gets it from a worker
        decision = index.decide(
            key=article.url,
            source=source,
            signature=signature,
            shingles=shingles,
            features=features_from_json(stored.features),
            exact=("new", None),  # the URL and the text hash are new: the exact layer passes
            at=at,
        )
        self.store.insert_item(
            article,
            fetched_at=at,
            status=decision.status,
            baseline=False,
            duplicate_of=decision.duplicate_of,
            tags=tags,
            dedupe=decision.record(stored),
        )
        index.remember(article.url, source=source, signature=signature, shingles=shingles, at=at)
        self.statuses[decision.status] += 1


def build_prefill(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Write `--prefill` items to a new SQLite file at `path`, one `insert_item` transaction
    each, `--prefill-per-day` items a day ending now; returns what the sidecar records."""
    count, per_day = args.prefill, args.prefill_per_day
    end = datetime.now(UTC)
    times = [end - timedelta(days=(count - 1 - i) / per_day) for i in range(count)]
    signed_from = end - max(DEDUPE.retention, DEDUPE.story_retention) - SIGNED_MARGIN
    unsigned = sum(1 for at in times if at < signed_from)
    window_items = round(per_day * DEDUPE.retention / timedelta(days=1))
    partial = path.with_name(path.name + ".partial")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-prefill-"))
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    print(
        f"prefill: {count} items at {per_day:g} a day ({count / per_day:.0f} days) into {path}; "
        f"the {count - unsigned} since {signed_from:%Y-%m-%d %H:%M} signed one by one",
        file=sys.stderr,
        flush=True,
    )
    try:
        feeds = [PLACEHOLDER_FEED.format(f) for f in range(args.feeds)]
        config_path = write_config(work, feeds, "1s", fast_poll=True, port=free_port())
        config = load_config(config_path, {"MONITOR_DATA_DIR": str(work / "data")})
        store = Store.open(f"sqlite:///{partial}", now=times[0])
        try:
            retired = [
                Source(name=f"Retired feed {r:02d}", url=f"{PREFILL_HOST}/retired/{r:02d}.xml")
                for r in range(RETIRED_SOURCES)
            ]
            store.sync_sources([*config.sources, *retired], times[0])
            names = [s.name for s in config.sources]
            prefiller = Prefiller(config, store, args.corpus, args.prefill_seed)
            mark = time.perf_counter()
            templates = [prefiller.template() for _ in range(min(TEMPLATES, unsigned))]
            seconds["templates"] = time.perf_counter() - mark
            mark = time.perf_counter()
            for i in range(unsigned):
                at = times[i]
                retire = end - at > RETIRED_BEFORE and i % 5 == 0
                source = retired[i % RETIRED_SOURCES].name if retire else names[i % len(names)]
                template = templates[i % len(templates)]
                prefiller.insert_unsigned(i, source, at, template, min(i, window_items))
                _prefill_progress(i + 1, count, started)
            seconds["unsigned_items"] = time.perf_counter() - mark
            mark = time.perf_counter()
            # Loaded as of `end`, the index holds none of the items above (all older than the
            # windows); it signs the seed corpus into the store as the first start would.
            index = DedupeIndex.load(store, config.corpus_dir, config.dedupe, end)
            seeds_signed = len(index.seeds_signed)
            seconds["seeds"] = time.perf_counter() - mark
            mark = time.perf_counter()
            last_hour = -1
            for i in range(unsigned, count):
                at = times[i]
                hour = int(at.timestamp() // 3600)
                if hour != last_hour:  # the daemon's maintenance job, hourly
                    index.evict(at)
                    last_hour = hour
                prefiller.insert_signed(i, names[i % len(names)], at, index)
                _prefill_progress(i + 1, count, started)
            seconds["signed_items"] = time.perf_counter() - mark
            for name in names:  # the sources have been polled before: not a first poll
                store.record_successes(
                    [
                        PollSuccess(
                            name,
                            now=end,
                            etag=None,
                            last_modified=None,
                            next_check_at=end,
                            outcome="ok",
                            http_status=200,
                            bytes_received=0,
                            elapsed_ms=0,
                            new_items=0,
                        )
                    ]
                )
        finally:
            store.close()
        with contextlib.closing(sqlite3.connect(partial)) as con:
            con.execute("PRAGMA journal_mode=DELETE")  # fold the WAL in: one self-contained file
        os.replace(partial, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds["total"] = time.perf_counter() - started
    return {
        "params": prefill_params(args),
        "end": end.isoformat(),
        "signed_from": signed_from.isoformat(),
        "unsigned_items": unsigned,
        "signed_items": count - unsigned,
        "seeds_signed": seeds_signed,
        "statuses": dict(prefiller.statuses),
        "build_seconds": seconds,
        "counts_at_build": db_counts(path, end),
    }


def _prefill_progress(done: int, count: int, started: float) -> None:
    if done % 10_000 == 0 or done == count:
        took = time.perf_counter() - started
        print(
            f"  prefill: {done}/{count} items, {took:.0f} s ({done / took:.0f} items/s)",
            file=sys.stderr,
            flush=True,
        )


def get_prefill(args: argparse.Namespace, tmp: Path) -> Prefill:
    """The `--prefill-db` cache when it was built with these parameters, else a new file
    (there, or in the work dir)."""
    path: Path = args.prefill_db or tmp / "prefill" / "monitor.db"
    sidecar = _sidecar(path)
    wanted = prefill_params(args)
    if path.exists() or sidecar.exists():
        if not sidecar.exists():
            raise SystemExit(
                f"{path} exists but this benchmark did not prefill it (no {sidecar.name}); "
                "name another --prefill-db"
            )
        meta = json.loads(sidecar.read_text("utf-8"))
        if path.exists() and meta.get("params") == wanted:
            print(f"prefill: reusing {path} (built {meta['end']})", file=sys.stderr)
            return Prefill(path, meta, reused=True)
        print(f"prefill: {path} was built with {meta.get('params')}: rebuilding", file=sys.stderr)
        sidecar.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = build_prefill(path, args)
    sidecar.write_text(json.dumps(meta, indent=2), "utf-8")
    return Prefill(path, meta, reused=False)


def install_prefill(prefill: Prefill, workdir: Path) -> dict[str, Any]:
    """Copy the pristine file to where the daemon's config points (`<workdir>/monitor.db`)."""
    started = time.perf_counter()
    dest = workdir / "monitor.db"
    shutil.copyfile(prefill.path, dest)
    took = time.perf_counter() - started
    now = datetime.now(UTC)
    age = now - datetime.fromisoformat(prefill.meta["end"])
    return {"copy_seconds": took, "age_hours": age / timedelta(hours=1), **db_counts(dest, now)}


def startup_figures(daemon: Daemon, first_answer: float, timeout: float = 10.0) -> dict[str, Any]:
    """Seconds from `Popen` to the `daemon_started` log line, and the `index_loaded` figures."""
    deadline = time.monotonic() + timeout
    while True:
        text = daemon.log()
        started = STARTED_LINE.search(text)
        if started is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    loaded = INDEX_LINE.search(text)
    at = None
    if started is not None:
        at = datetime.fromisoformat(started.group(1).replace("Z", "+00:00")).timestamp()
    return {
        "daemon_started_s": None if at is None else at - daemon.started_wall,
        "first_metrics_s": first_answer,
        "index_entries": int(loaded.group(1)) if loaded else None,
        "index_load_s": float(loaded.group(2)) if loaded else None,
        "seeds_signed": text.count(" seed_signed "),
    }


# -- phase 1: cycles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    elapsed: float
    cycles: float
    real_polls: float
    main: Proc
    workers: list[Proc]

    @property
    def workers_rss_kb(self) -> int:
        return sum(w.rss_kb for w in self.workers)

    @property
    def workers_pss_kb(self) -> int:
        return sum(w.pss_kb or 0 for w in self.workers)

    @property
    def workers_cpu_s(self) -> float:
        return sum(w.cpu_s for w in self.workers)


@dataclass
class CycleResult:
    feeds: int
    cycles_target: int
    start: Sample | None = None  # at the first /metrics answer, before the first cycle is done
    startup: dict[str, Any] = field(default_factory=dict)
    prefill: dict[str, Any] | None = None  # install_prefill's figures
    samples: list[Sample] = field(default_factory=list)
    final: Scrape | None = None
    exit_code: int | None = None
    stop_seconds: float | None = None
    children_left: list[int] = field(default_factory=list)
    log: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


def run_cycles(
    server: FeedServer, args: argparse.Namespace, tmp: Path, prefill: Prefill | None
) -> CycleResult:
    port = free_port()
    sources = [server.feed_url(f) for f in range(args.feeds)]
    config = write_config(tmp, sources, "1s", fast_poll=True, port=port)
    result = CycleResult(args.feeds, args.cycles)
    if prefill is not None:
        result.prefill = install_prefill(prefill, tmp)
    marks = sorted({1, *range(args.sample_every, args.cycles, args.sample_every), args.cycles})
    daemon = Daemon(config, port)
    try:
        first = daemon.wait_scrape(timeout=600)
        answered = time.monotonic() - daemon.started
        main, workers = daemon.sample()
        result.start = Sample(
            answered, first.real_polls / args.feeds, first.real_polls, main, workers
        )
        result.startup = startup_figures(daemon, answered)
        print(
            f"daemon pid {daemon.pid}: {' '.join(daemon.command)}; started after "
            f"{_fmt(result.startup['daemon_started_s'], '.2f')} s, main RSS "
            f"{main.rss_kb / 1024:.1f} MB",
            file=sys.stderr,
        )
        last_polls, last_change = -1.0, time.monotonic()
        while marks:
            daemon.check_alive()
            scraped = daemon.scrape()
            now = time.monotonic()
            if scraped is not None:
                cycles = scraped.real_polls / args.feeds
                if scraped.real_polls != last_polls:
                    last_polls, last_change = scraped.real_polls, now
                if marks[0] <= cycles:
                    while marks and marks[0] <= cycles:
                        marks.pop(0)
                    main, workers = daemon.sample()
                    sample = Sample(now - daemon.started, cycles, scraped.real_polls, main, workers)
                    result.samples.append(sample)
                    print(
                        f"  cycle {cycles:7.1f}  t={sample.elapsed:7.1f}s  "
                        f"main RSS {main.rss_kb / 1024:6.1f} MB  workers "
                        f"{sample.workers_rss_kb / 1024:6.1f} MB  cpu {main.cpu_s:7.1f}s  "
                        f"skipped {scraped.polls['skipped']:.0f} "
                        f"failed {scraped.polls['failed']:.0f}",
                        file=sys.stderr,
                        flush=True,
                    )
                result.final = scraped
            if now - last_change > STALL_SECONDS:
                raise daemon.fail(f"no poll finished in {STALL_SECONDS:.0f}s")
            time.sleep(args.scrape_interval)
        result.exit_code, result.stop_seconds, result.children_left = daemon.stop()
    finally:
        daemon.close()
        result.log = log_summary(daemon.log())
    result.figures = cycle_figures(result, args.warmup)
    return result


def _slope_kb_per_100(samples: list[Sample], value: str) -> float | None:
    if len(samples) < 3:
        return None
    xs = [s.cycles for s in samples]
    ys = [
        float(getattr(s.main, value)) if value != "workers" else s.workers_rss_kb for s in samples
    ]
    return statistics.linear_regression(xs, ys).slope * 100


def memory_mb(sample: Sample) -> dict[str, float]:
    """Main process and workers, RSS and PSS (a page shared by n processes counts 1/n in each
    PSS: main PSS + workers PSS is what the daemon occupies, shared pages counted once)."""
    main_pss = (sample.main.pss_kb or 0) / 1024
    return {
        "cycle": sample.cycles,
        "main_rss": sample.main.rss_kb / 1024,
        "main_pss": main_pss,
        "workers": len(sample.workers),
        "workers_rss": sample.workers_rss_kb / 1024,
        "workers_pss": sample.workers_pss_kb / 1024,
        "total_pss": main_pss + sample.workers_pss_kb / 1024,
    }


def cycle_figures(result: CycleResult, warmup: int) -> dict[str, Any]:
    samples = result.samples
    first, end = samples[0], samples[-1]
    warm = next((s for s in samples if s.cycles >= warmup), end)
    half = result.cycles_target / 2
    mid = min(samples, key=lambda s: abs(s.cycles - half))
    second_half = [s for s in samples if s.cycles >= half]
    after_warmup = [s for s in samples if s.cycles >= warm.cycles]
    growth = end.main.rss_kb - warm.main.rss_kb
    window_cycles = end.cycles - warm.cycles
    window_seconds = end.elapsed - warm.elapsed
    polls = result.final.polls if result.final else {}
    points = {"warm": memory_mb(warm), "end": memory_mb(end)}
    if result.start is not None:
        points = {"start": memory_mb(result.start), **points}
    return {
        "memory_mb": points,
        "memory_growth_mb": {
            k: points["end"][k] - points["warm"][k]
            for k in ("main_rss", "main_pss", "workers_rss", "workers_pss", "total_pss")
        },
        "main_rss_mb": {
            "first_cycle": first.main.rss_kb / 1024,
            "first_cycle_at": first.cycles,
            "warm": warm.main.rss_kb / 1024,
            "warm_cycle": warm.cycles,
            "mid": mid.main.rss_kb / 1024,
            "mid_cycle": mid.cycles,
            "end": end.main.rss_kb / 1024,
            "end_cycle": end.cycles,
            "peak_hwm": end.main.hwm_kb / 1024,
        },
        "main_pss_mb": {
            "warm": (warm.main.pss_kb or 0) / 1024,
            "end": (end.main.pss_kb or 0) / 1024,
        },
        "growth_mb": growth / 1024,
        "growth_pct": 100 * growth / warm.main.rss_kb,
        "slope_kb_per_100_cycles_second_half": _slope_kb_per_100(second_half, "rss_kb"),
        "slope_kb_per_100_cycles_after_warmup": _slope_kb_per_100(after_warmup, "rss_kb"),
        "workers": {
            "count_end": len(end.workers),
            "rss_mb_warm": warm.workers_rss_kb / 1024,
            "rss_mb_end": end.workers_rss_kb / 1024,
            "pss_mb_warm": warm.workers_pss_kb / 1024,
            "pss_mb_end": end.workers_pss_kb / 1024,
            "slope_kb_per_100_cycles_second_half": _slope_kb_per_100(second_half, "workers"),
            "per_worker_rss_mb_end": [w.rss_kb / 1024 for w in end.workers],
            "cpu_s_end": end.workers_cpu_s,
        },
        "threads": {"warm": warm.main.threads, "end": end.main.threads},
        "fds": {"warm": warm.main.fds, "end": end.main.fds},
        "polls_per_s": (end.real_polls - warm.real_polls) / window_seconds
        if window_seconds > 0
        else None,
        "polls_per_s_whole_run": end.real_polls / end.elapsed,
        "seconds_per_cycle": window_seconds / window_cycles if window_cycles > 0 else None,
        "cpu_s_per_cycle": (end.main.cpu_s - warm.main.cpu_s) / window_cycles
        if window_cycles > 0
        else None,
        "cpu_pct_main": 100 * (end.main.cpu_s - warm.main.cpu_s) / window_seconds
        if window_seconds > 0
        else None,
        "cpu_s_main_total": end.main.cpu_s,
        "polls": polls,
        "items_stored": result.final.items if result.final else {},
        "page_failures": result.final.page_failures if result.final else None,
        "exit_code": result.exit_code,
        "stop_seconds": result.stop_seconds,
        "children_left_after_exit": result.children_left,
    }


# -- phase 2: idle --------------------------------------------------------------------------------


def run_idle(
    server: FeedServer, args: argparse.Namespace, tmp: Path, prefill: Prefill | None
) -> dict[str, Any]:
    port = free_port()
    sources = [server.feed_url(f) for f in range(args.feeds)]
    config = write_config(tmp, sources, "30m", fast_poll=False, port=port)
    installed = install_prefill(prefill, tmp) if prefill is not None else None
    daemon = Daemon(config, port)
    try:
        daemon.wait_scrape(timeout=600)
        startup = startup_figures(daemon, time.monotonic() - daemon.started)
        deadline = time.monotonic() + 300
        while True:
            scraped = daemon.wait_scrape()
            if scraped.real_polls >= args.feeds and scraped.queue_depth == 0:
                break
            if time.monotonic() > deadline:
                raise daemon.fail("the first round of polls did not finish within 300s")
            time.sleep(0.5)
        first_round = time.monotonic() - daemon.started
        print(f"  idle: first round done after {first_round:.1f}s", file=sys.stderr, flush=True)
        time.sleep(args.settle)
        main0, workers0 = daemon.sample()
        t0 = time.monotonic()
        time.sleep(args.idle_seconds)
        main1, workers1 = daemon.sample()
        wall = time.monotonic() - t0
        after = daemon.wait_scrape()
        before_cpu = {w.pid: w.cpu_s for w in workers0}
        workers_cpu = sum(w.cpu_s - before_cpu.get(w.pid, 0.0) for w in workers1)
        code, took, left = daemon.stop()
    finally:
        daemon.close()
        summary = log_summary(daemon.log())
    return {
        "prefill": installed,
        "startup": startup,
        "first_round_seconds": first_round,
        "wall_seconds": wall,
        "main_cpu_s": main1.cpu_s - main0.cpu_s,
        "main_cpu_pct": 100 * (main1.cpu_s - main0.cpu_s) / wall,
        "workers_cpu_s": workers_cpu,
        "workers_cpu_pct": 100 * workers_cpu / wall,
        "main_ctx_switches_per_s": (main1.ctx_switches - main0.ctx_switches) / wall,
        "main_rss_mb": main1.rss_kb / 1024,
        "main_pss_mb": (main1.pss_kb or 0) / 1024,
        "main_threads": main1.threads,
        "workers_rss_mb": sum(w.rss_kb for w in workers1) / 1024,
        "workers_pss_mb": sum(w.pss_kb or 0 for w in workers1) / 1024,
        "workers_count": len(workers1),
        "polls_after_first_round": after.real_polls
        + after.polls["skipped"]
        - scraped.real_polls
        - scraped.polls["skipped"],
        "polls": after.polls,
        "items_stored": after.items,
        "exit_code": code,
        "stop_seconds": took,
        "children_left_after_exit": left,
        "log": summary,
    }


# -- report ---------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def report(
    args: argparse.Namespace,
    env: dict[str, Any],
    cyc: CycleResult | None,
    idle: dict[str, Any] | None,
) -> str:
    out = [
        "monitor run benchmark (tests/bench/bench_daemon.py)",
        f"  {env['feeds']} feeds x {env['items']} items, {env['pages_mb']:.1f} MB of real article "
        f"HTML; {env['cpus']} CPUs; load average at start {env['loadavg_start']}, "
        f"end {env.get('loadavg_end')}",
        f"  monitor/ sources sha256 {env['source_digest'][:12]} at start, "
        + (
            "unchanged at the end"
            if env.get("source_digest_end") == env["source_digest"]
            else f"{str(env.get('source_digest_end'))[:12]} at the end: CHANGED DURING THE RUN"
        ),
        *_prefill_lines(env.get("prefill")),
    ]
    if cyc is not None:
        f = cyc.figures
        rss = f["main_rss_mb"]
        w = f["workers"]
        polls = f["polls"]
        out += [
            "",
            f"Phase 1: {cyc.cycles_target} poll cycles, interval 1s "
            f"({len(cyc.samples)} samples, every {args.sample_every} cycles)",
            *_installed_lines(cyc.prefill, cyc.startup),
            *_memory_lines(f, env.get("prefill")),
            f"  main RSS: cycle {rss['first_cycle_at']:.0f} "
            f"{rss['first_cycle']:.1f} MB | cycle {rss['warm_cycle']:.0f} {rss['warm']:.1f} MB | "
            f"cycle {rss['mid_cycle']:.0f} {rss['mid']:.1f} MB | "
            f"cycle {rss['end_cycle']:.0f} {rss['end']:.1f} MB (peak {rss['peak_hwm']:.1f} MB)",
            f"  main PSS: {f['main_pss_mb']['warm']:.1f} MB -> {f['main_pss_mb']['end']:.1f} MB",
            f"  growth from cycle {rss['warm_cycle']:.0f} to the end: {f['growth_mb']:+.2f} MB "
            f"({f['growth_pct']:+.1f} %)",
            "  linear fit of main RSS, second half: "
            f"{_fmt(f['slope_kb_per_100_cycles_second_half'], '+.1f')} KB / 100 cycles "
            f"(after warm-up: {_fmt(f['slope_kb_per_100_cycles_after_warmup'], '+.1f')})",
            f"  workers ({w['count_end']}): RSS {w['rss_mb_warm']:.1f} -> {w['rss_mb_end']:.1f} MB "
            f"(PSS {w['pss_mb_warm']:.1f} -> {w['pss_mb_end']:.1f} MB; each at the end: "
            + ", ".join(f"{x:.1f}" for x in w["per_worker_rss_mb_end"])
            + f" MB; second-half slope {_fmt(w['slope_kb_per_100_cycles_second_half'], '+.1f')}"
            " KB / 100 cycles)",
            f"  main threads {f['threads']['warm']} -> {f['threads']['end']}, "
            f"open fds {f['fds']['warm']} -> {f['fds']['end']}",
            f"  polls/s after warm-up: {_fmt(f['polls_per_s'])} (target {cyc.feeds}/s; whole run "
            f"{f['polls_per_s_whole_run']:.1f}); {_fmt(f['seconds_per_cycle'], '.2f')} s per cycle",
            f"  main CPU: {_fmt(f['cpu_s_per_cycle'], '.3f')} s per cycle "
            f"({_fmt(f['cpu_pct_main'])} % of one core; {f['cpu_s_main_total']:.1f} s in all); "
            f"workers {w['cpu_s_end']:.1f} s in all",
            "  polls: "
            + ", ".join(f"{k} {v:.0f}" for k, v in polls.items())
            + f"; page failures {_fmt(f['page_failures'], '.0f')}",
            "  items stored: " + ", ".join(f"{k} {v:.0f}" for k, v in f["items_stored"].items()),
            f"  SIGTERM: exit code {f['exit_code']} after {_fmt(f['stop_seconds'], '.2f')} s; "
            f"children left: {f['children_left_after_exit'] or 'none'}",
            *_log_lines(cyc.log),
            "  samples (cycle, seconds, main RSS MB, main PSS MB, workers RSS MB, workers PSS MB, "
            "main CPU s):",
            *(
                f"    {s.cycles:7.1f} {s.elapsed:8.1f} {s.main.rss_kb / 1024:7.1f} "
                f"{(s.main.pss_kb or 0) / 1024:7.1f} {s.workers_rss_kb / 1024:7.1f} "
                f"{s.workers_pss_kb / 1024:7.1f} {s.main.cpu_s:8.1f}"
                for s in ([cyc.start] if cyc.start else []) + cyc.samples
            ),
        ]
    if idle is not None:
        out += [
            "",
            f"Phase 2: idle, interval 30m, {idle['wall_seconds']:.0f} s measured after the first "
            f"round ({idle['first_round_seconds']:.1f} s) and {args.settle:.0f} s of settling",
            *_installed_lines(idle["prefill"], idle["startup"]),
            f"  main CPU {idle['main_cpu_s']:.2f} s = {idle['main_cpu_pct']:.2f} % of one core; "
            f"workers {idle['workers_cpu_s']:.2f} s = {idle['workers_cpu_pct']:.2f} %; "
            f"{idle['main_ctx_switches_per_s']:.1f} context switches/s (main, all threads)",
            f"  main RSS {idle['main_rss_mb']:.1f} MB (PSS {idle['main_pss_mb']:.1f}), "
            f"{idle['main_threads']} threads; workers ({idle['workers_count']}) RSS "
            f"{idle['workers_rss_mb']:.1f} MB (PSS {idle['workers_pss_mb']:.1f})",
            f"  polls after the first round: {idle['polls_after_first_round']:.0f}; polls: "
            + ", ".join(f"{k} {v:.0f}" for k, v in idle["polls"].items()),
            "  items stored: " + ", ".join(f"{k} {v:.0f}" for k, v in idle["items_stored"].items()),
            f"  SIGTERM: exit code {idle['exit_code']} after {idle['stop_seconds']:.2f} s; "
            f"children left: {idle['children_left_after_exit'] or 'none'}",
            *_log_lines(idle["log"]),
        ]
    return "\n".join(out)


def _prefill_lines(meta: dict[str, Any] | None) -> list[str]:
    if meta is None:
        return ["  database: empty at start (no --prefill)"]
    p, built, counts = meta["params"], meta["build_seconds"], meta["counts_at_build"]
    how = (
        f"reused from {meta['path']}"
        if meta["reused"]
        else f"built in {built['total']:.0f} s (templates {built.get('templates', 0):.0f} s, "
        f"older items {built.get('unsigned_items', 0):.0f} s, seeds {built.get('seeds', 0):.0f} s, "
        f"signed items {built.get('signed_items', 0):.0f} s) at {meta['path']}"
    )
    return [
        f"  prefill: {p['items']} items, {p['per_day']:g} a day over "
        f"{p['items'] / p['per_day']:.0f} days ending {meta['end'][:16]}Z; {how}",
        f"    {meta['signed_items']} items since {meta['signed_from'][:10]} (the windows plus a "
        "day) each signed from its own text, tagged, and decided by a DedupeIndex as the "
        "daemon does: " + ", ".join(f"{k} {v}" for k, v in sorted(meta["statuses"].items())),
        f"    {meta['unsigned_items']} older items (never loaded at start): own text, URL, hash, "
        f"but signature, features and tags from a pool of {p['templates']}; every fifth item "
        f"older than {RETIRED_BEFORE.days} days from one of {p['retired_sources']} sources "
        "no longer configured",
        f"    file {counts['file_mb']:.0f} MB; {counts['signatures']} signatures, "
        f"{counts['seeds']} seeds, {counts['sources']} sources; through Store.insert_item, one "
        "transaction each",
    ]


def _installed_lines(installed: dict[str, Any] | None, startup: dict[str, Any]) -> list[str]:
    lines = []
    if installed is not None:
        lines.append(
            f"  database: prefilled copy ({installed['copy_seconds']:.1f} s to copy, built "
            f"{installed['age_hours']:.1f} h before): {installed['items']} items, "
            f"{installed['near_window']} first seen within {DEDUPE.retention.days} days, "
            f"{installed['story_window']} within {DEDUPE.story_retention.days} days"
        )
    lines.append(
        f"  start-up: daemon_started {_fmt(startup.get('daemon_started_s'), '.2f')} s after the "
        f"process started (index_loaded entries={startup.get('index_entries')} in "
        f"{_fmt(startup.get('index_load_s'), '.2f')} s; first /metrics answer after "
        f"{startup['first_metrics_s']:.2f} s; seeds signed at start: {startup['seeds_signed']})"
    )
    return lines


def _memory_lines(f: dict[str, Any], prefill: dict[str, Any] | None) -> list[str]:
    points, growth = f["memory_mb"], f["memory_growth_mb"]
    names = {"start": "start", "warm": "after warm-up", "end": "end"}
    rows = [
        ("main RSS", "main_rss"),
        ("main PSS", "main_pss"),
        ("workers RSS", "workers_rss"),
        ("workers PSS", "workers_pss"),
        ("main + workers PSS", "total_pss"),
    ]
    head = "".join(
        f"{names[k] + ' (c ' + format(v['cycle'], '.0f') + ')':>22}" for k, v in points.items()
    )
    lines = [f"  memory, MB{'':10}{head}{'growth warm->end':>20}"]
    for label, key in rows:
        cells = "".join(f"{v[key]:22.1f}" for v in points.values())
        lines.append(f"    {label:<18}{cells}{growth[key]:+20.2f}")
    lines.append(
        "    workers: " + " / ".join(f"{v['workers']} {names[k]}" for k, v in points.items())
    )
    end = points["end"]
    items = prefill["params"]["items"] if prefill else 0
    verdict = "met" if end["main_rss"] <= 250 else "MISSED"
    lines.append(
        f"  DESIGN target, RSS <= 250 MB after 100k items ({items} stored before the run): main "
        f"RSS at the end {end['main_rss']:.1f} MB ({verdict}); main + workers PSS "
        f"{end['total_pss']:.1f} MB; main RSS growth after warm-up {growth['main_rss']:+.2f} MB"
    )
    return lines


def _log_lines(summary: dict[str, Any]) -> list[str]:
    lines = [
        f"  daemon log: {summary['lines']} lines, "
        + ", ".join(f"{k} {v}" for k, v in sorted(summary["levels"].items()))
        + f", tracebacks {summary['tracebacks']}"
    ]
    for key, count in summary["problems"].items():
        first, last = summary["seconds_first_last"][key]
        lines.append(
            f"    {count} x {key}, from {first:.0f} s to {last:.0f} s after start; e.g. "
            + summary["examples"][key]
        )
    return lines


def source_digest() -> str:
    """sha256 of monitor/**/*.py: which code was measured (others may edit it meanwhile)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000, help="poll cycles (default 1000)")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--feeds", type=int, default=50)
    parser.add_argument("--items", type=int, default=5, help="items per feed")
    parser.add_argument("--sample-every", type=int, default=50, help="cycles between samples")
    parser.add_argument("--warmup", type=int, default=50, help="cycles before the baseline RSS")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before idle starts")
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--skip-cycles", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, db)")
    parser.add_argument(
        "--prefill",
        type=int,
        nargs="?",
        const=100_000,
        default=0,
        metavar="N",
        help="start the daemon with N stored items (--prefill alone: 100000; default: none)",
    )
    parser.add_argument(
        "--prefill-db",
        type=Path,
        metavar="PATH",
        help="build the prefilled SQLite file here, or reuse it if built with the same options "
        "(a PATH.json beside it says how); each run copies it, so it stays pristine",
    )
    parser.add_argument(
        "--prefill-per-day",
        type=float,
        default=140.0,
        help="prefilled items per day, ending now (default 140: 100k items span ~2 years)",
    )
    parser.add_argument("--prefill-seed", type=int, default=7, help="random seed of the prefill")
    args = parser.parse_args()
    if args.prefill_db is not None and args.prefill <= 0:
        parser.error("--prefill-db needs --prefill")
    if args.prefill_per_day <= 0:
        parser.error("--prefill-per-day must be positive")

    pages = load_pages(args.corpus, args.feeds * args.items)
    env: dict[str, Any] = {
        "feeds": args.feeds,
        "items": args.items,
        "pages_mb": sum(map(len, pages)) / 1e6,
        "cpus": os.cpu_count(),
        "loadavg_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "source_digest": source_digest(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-daemon-"))
    prefill: Prefill | None = None
    if args.prefill > 0:
        try:
            prefill = get_prefill(args, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        env["prefill"] = {**prefill.meta, "path": str(prefill.path), "reused": prefill.reused}
    server = FeedServer.start(pages, args.feeds, args.items)
    print(f"serving {args.feeds} feeds at {server.base_url}; work dir {tmp}", file=sys.stderr)
    cyc: CycleResult | None = None
    idle: dict[str, Any] | None = None
    try:
        if not args.skip_cycles:
            (tmp / "cycles").mkdir()
            cyc = run_cycles(server, args, tmp / "cycles", prefill)
        if not args.skip_idle:
            (tmp / "idle").mkdir()
            idle = run_idle(server, args, tmp / "idle", prefill)
        server_cpu = read_proc(server.process.pid) if server.process.pid else None
        env["feed_server_cpu_s"] = server_cpu.cpu_s if server_cpu else None
    finally:
        server.close()
        env["loadavg_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        env["source_digest_end"] = source_digest()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(report(args, env, cyc, idle))
    if args.json:
        payload = {
            "environment": env,
            "cycles": None
            if cyc is None
            else {
                "prefill": cyc.prefill,
                "startup": cyc.startup,
                "figures": cyc.figures,
                "log": cyc.log,
                "samples": [asdict(s) for s in ([cyc.start] if cyc.start else []) + cyc.samples],
            },
            "idle": idle,
        }
        args.json.write_text(json.dumps(payload, indent=2), "utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    failed = [
        name
        for name, code in (
            ("cycles", cyc.exit_code if cyc else 0),
            ("idle", idle["exit_code"] if idle else 0),
        )
        if code != 0
    ]
    if failed:
        raise SystemExit(f"non-zero daemon exit code in: {', '.join(failed)}")


if __name__ == "__main__":
    main()
