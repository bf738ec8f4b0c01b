"""Kill -9 `monitor run` at random times; check nothing is lost or sent twice. I/O: processes.

I/O: processes and signals, network (127.0.0.1 only: HTTP and SMTP servers), files (a
temporary work folder), /proc (to find leftover processes).

Not part of the default test run (pytest collects tests/test_*.py only). From the project
root:

    .venv/bin/python tests/data/crash_safety.py --kills 50

Options: `--kills N` (default 50), `--seed S` (default: random, printed so a run can be
repeated), `--workdir DIR` (default: a temporary folder, removed on success), `--keep` (keep
the temporary folder). 50 kills take three to five minutes.

What it does: a local HTTP server publishes two RSS feeds that grow while the daemon runs
(a new item every 0.3-1.5 s, a third of them with an article page that takes 0.5-3 s to
answer), and a local SMTP server takes the digest, which is due every second (a 6-field cron
schedule). The SMTP server waits up to 0.4 s after it has accepted a message before it
answers 250, so some kills land between "the server has the message" and "the daemon
recorded it as sent". Each run is killed with SIGKILL at a moment chosen by one of these
modes: `startup` (within 3 s of the process start: imports, database, index), `random` (0-6 s
after `daemon_started`), `mid-poll` (while a slow article page is being served), `mid-digest`
(0-80 ms after a whole second, when the digest job renders and stores a window),
`mid-delivery` (as the daemon connects to the SMTP server, or while the server handles
DATA). After the last kill the daemon is started once more, left to settle (every published
item stored, a digest window after the last item recorded, nothing pending), then stopped
with SIGTERM (exit code 0 expected). Then it checks and prints:

- every published item is stored exactly once (by URL), and nothing else is;
- the `digests` rows form a contiguous, non-overlapping chain of windows with none left
  `pending`, and every `sent` window's message arrived at the SMTP server;
- no window was mailed under two Message-IDs and every received Message-ID is a recorded
  digest; re-sends under the SAME Message-ID (a kill between the SMTP server's acceptance and
  the daemon recording it) are allowed and counted separately;
- each item was mailed in at most one digest (its title, in the plain-text part) and every
  new item in exactly one (the `digest_items` table agrees);
- `PRAGMA integrity_check` is ok (and `PRAGMA foreign_key_check` finds nothing);
- no process of a killed daemon outlived it (its extraction workers leave within a few
  seconds: they watch their parent) and no process with the test config path in its command
  line remains (those found are reported, then ended with SIGKILL by pid);
- no daemon log shows a traceback.

Exit status 0 when every check passes, 1 otherwise (the daemon logs are kept then).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import hashlib
import itertools
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiosmtpd.smtp import SMTP, Envelope, Session  # noqa: E402

from tests.daemon_process import DaemonProcess, query  # noqa: E402
from tests.servers import LocalServer, send_body  # noqa: E402
from tests.smtp_server import SmtpServer  # noqa: E402
from tests.test_daemon import write_config  # noqa: E402

DIGEST = "daily"
SCHEDULE = "* * * * * *"  # every second (seconds first)
FEEDS = ("/feeds/alpha.xml", "/feeds/beta.xml")
# Kill modes and their weights: startup kills are fewer, the daemon needs time to do things.
MODES = {"startup": 1, "random": 2, "mid-poll": 2, "mid-digest": 2, "mid-delivery": 2}
MODE_WAIT = 12.0  # seconds a targeted mode waits for its moment before killing anyway
SETTLE_TIMEOUT = 180.0
ORPHAN_GRACE = 10.0  # seconds a killed daemon's workers get to notice and leave
_CONSONANTS = "bcdfghjklmnprstvz"
_VOWELS = "aeiou"


# -- what the HTTP server publishes -------------------------------------------------------------


@dataclass
class Article:
    feed: str
    path: str
    url: str
    guid: str
    title: str
    paragraphs: list[str]
    published: datetime
    delay: float


class Newsroom:
    """Two RSS feeds on a LocalServer that grow as `publish` is called. Every article has a
    unique title and text made of pseudo-words, so no two are duplicates or one story; a
    slow article's page answers after `delay` seconds."""

    def __init__(self, server: LocalServer, rng: random.Random) -> None:
        self.server = server
        self.rng = rng
        self.lock = threading.Lock()
        self.articles: list[Article] = []
        self._in_flight: dict[int, float] = {}  # request number -> time.monotonic() it arrived
        self._requests = itertools.count()
        self._used: set[str] = set()
        for path in FEEDS:
            self._render(path)

    def _word(self, syllables: int) -> str:
        return "".join(
            self.rng.choice(_CONSONANTS) + self.rng.choice(_VOWELS) for _ in range(syllables)
        )

    def _unique_word(self) -> str:
        while True:
            word = self._word(self.rng.randint(3, 4))
            if word not in self._used:
                self._used.add(word)
                return word

    def publish(self, *, slow: bool) -> Article:
        with self.lock:
            n = len(self.articles) + 1
            feed = self.rng.choice(FEEDS)
            title = " ".join(self._unique_word() for _ in range(4)).capitalize()
            paragraphs = [
                " ".join(self._word(self.rng.randint(3, 4)) for _ in range(40)).capitalize() + "."
                for _ in range(4)
            ]
            path = f"/articles/{n:04d}.html"
            article = Article(
                feed=feed,
                path=path,
                url=self.server.url(path),
                guid=f"crash-{n:04d}",
                title=title,
                paragraphs=paragraphs,
                published=datetime.now(UTC),
                delay=self.rng.uniform(0.5, 3.0) if slow else 0.0,
            )
            self.server.add_handler(path, self._page_handler(article))
            self.articles.append(article)
            self._render(feed)
            return article

    def _page_handler(self, article: Article) -> Callable[[BaseHTTPRequestHandler], None]:
        body = (
            f"<!DOCTYPE html><html><head><title>{article.title}</title></head><body>"
            f"<article><h1>{article.title}</h1>"
            + "".join(f"<p>{p}</p>" for p in article.paragraphs)
            + "</article></body></html>"
        ).encode()

        def handle(handler: BaseHTTPRequestHandler) -> None:
            with self.lock:
                number = next(self._requests)
                self._in_flight[number] = time.monotonic()
            try:
                if article.delay and self.server.sleep(article.delay):
                    return  # the server is closing
                send_body(handler, 200, body, content_type="text/html; charset=utf-8")
            finally:
                with self.lock:
                    del self._in_flight[number]

        return handle

    def _render(self, feed: str) -> None:
        """Called with the lock held (or before any thread runs)."""
        items = "".join(
            f"<item><title>{a.title}</title><link>{a.url}</link>"
            f'<guid isPermaLink="false">{a.guid}</guid>'
            f"<pubDate>{format_datetime(a.published)}</pubDate>"
            f"<description>{a.paragraphs[0][:120]}</description></item>"
            for a in reversed(self.articles)
            if a.feed == feed
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Crash test {feed}</title><link>{self.server.base_url}/</link>"
            f"<description>grows while the daemon is killed</description>{items}"
            "</channel></rss>"
        ).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
        self.server.add(feed, body, etag=etag)

    def pages_in_flight(self, since: float) -> int:
        """Article pages being served that were requested after `since` (monotonic): a killed
        daemon's requests go on sleeping in the server, they do not count for the next run."""
        with self.lock:
            return sum(1 for at in self._in_flight.values() if at >= since)

    def snapshot(self) -> list[Article]:
        with self.lock:
            return list(self.articles)


class Publisher(threading.Thread):
    """Publishes an article every 0.3-1.5 s until stopped; a third have slow pages."""

    def __init__(self, newsroom: Newsroom, rng: random.Random) -> None:
        super().__init__(name="publisher", daemon=True)
        self.newsroom = newsroom
        self.rng = rng
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.rng.uniform(0.3, 1.5)):
            self.newsroom.publish(slow=self.rng.random() < 1 / 3)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


# -- the SMTP server ----------------------------------------------------------------------------


class SlowAcceptSmtpServer(SmtpServer):
    """An SmtpServer that, after it has accepted a message (stored it), waits up to
    `max_delay` seconds before answering 250: a kill in that gap leaves a message that the
    server has and the daemon does not know it sent. Counts DATA commands in progress."""

    def __init__(self, *, seed: int, max_delay: float) -> None:
        self._delay_rng = random.Random(seed)
        self.max_delay = max_delay
        self.data_in_flight = 0
        self.accepted_unanswered = 0
        super().__init__()

    def __enter__(self) -> SlowAcceptSmtpServer:
        return self

    async def data(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_in_flight += 1
        try:
            status = await super().data(server, session, envelope)
            if status.startswith("250"):
                self.accepted_unanswered += 1
                try:
                    await asyncio.sleep(self._delay_rng.uniform(0, self.max_delay))
                finally:
                    self.accepted_unanswered -= 1
            return status
        finally:
            self.data_in_flight -= 1


# -- processes ----------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) of a live process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, starttime) of every descendant of `pid` that is alive now."""
    children: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _proc_stat(int(entry.name))
        if stat is not None and stat[0] != "Z":
            children[stat[1]].append((int(entry.name), stat[2]))
    out: list[tuple[int, int]] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def alive(pid: int, starttime: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z" and stat[2] == starttime


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live (not zombie) processes whose command line contains `text`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        stat = _proc_stat(int(entry.name))
        if text in cmdline and stat is not None and stat[0] != "Z":
            out.append((int(entry.name), cmdline.strip()))
    return out


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Kill:
    number: int
    mode: str
    phase: str  # what was going on when the SIGKILL landed
    after: float  # seconds since that run started
    children: list[tuple[int, int]]
    stored: int  # items in the database after the kill
    pending: int  # digests left pending by the kill (staged or mid-delivery)


@dataclass
class Result:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def wait_until(
    daemon: DaemonProcess, condition: Callable[[], bool], timeout: float, step: float = 0.02
) -> bool:
    """True when `condition` held before `timeout`; False on timeout or if the daemon died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if daemon.process.poll() is not None:
            return False
        time.sleep(step)
    return False


def count_items(db: Path) -> int:
    try:
        return int(query(db, "SELECT count(*) FROM items")[0][0])
    except Exception:  # no database or no schema yet
        return 0


def count_pending(db: Path) -> int:
    try:
        return int(query(db, "SELECT count(*) FROM digests WHERE status = 'pending'")[0][0])
    except Exception:  # no database or no schema yet
        return 0


def one_run(
    number: int,
    config: Path,
    newsroom: Newsroom,
    smtp: SlowAcceptSmtpServer,
    rng: random.Random,
    db: Path,
) -> Kill:
    mode = rng.choices(list(MODES), weights=list(MODES.values()))[0]
    daemon = DaemonProcess(config, log_name=f"logs/run-{number:02d}.log")
    started = time.monotonic()
    try:
        if mode == "startup":
            time.sleep(rng.uniform(0.05, 3.0))
        elif mode == "random":
            if wait_until(daemon, lambda: "daemon_started" in daemon.log(), MODE_WAIT):
                time.sleep(rng.uniform(0.0, 6.0))
        elif mode == "mid-poll":
            if wait_until(daemon, lambda: newsroom.pages_in_flight(started) > 0, MODE_WAIT):
                time.sleep(rng.uniform(0.0, 0.4))
        elif mode == "mid-digest":
            # The digest job fires on every whole second: kill 0-80 ms into one, after start.
            if wait_until(daemon, lambda: "daemon_started" in daemon.log(), MODE_WAIT):
                time.sleep(rng.uniform(0.5, 3.0))
                time.sleep(1.0 - time.time() % 1.0 + rng.uniform(0.0, 0.08))
        elif mode == "mid-delivery":
            if rng.random() < 0.5:  # as the SMTP connection opens
                opened = smtp.connections
                wait_until(daemon, lambda: smtp.connections > opened, MODE_WAIT, step=0.002)
            else:  # during DATA, mostly after the server has accepted the message
                wait_until(daemon, lambda: smtp.data_in_flight > 0, MODE_WAIT, step=0.002)
        if daemon.process.poll() is not None:
            phase = f"exited by itself ({daemon.process.returncode})"
        elif "daemon_started" not in daemon.log():
            phase = "startup"
        elif smtp.accepted_unanswered:
            phase = "smtp-accepted-unanswered"
        elif smtp.data_in_flight:
            phase = "smtp-data"
        elif mode == "mid-delivery":
            phase = "smtp-session"
        elif newsroom.pages_in_flight(started):
            phase = "mid-poll (page)"
        else:
            phase = "other"
        children = descendants(daemon.pid)
        after = time.monotonic() - started
        daemon.kill9()
    finally:
        daemon.close()
    return Kill(number, mode, phase, after, children, count_items(db), count_pending(db))


def settle(
    config: Path, newsroom: Newsroom, db: Path, result: Result
) -> tuple[int | None, DaemonProcess]:
    """The last start: wait for everything published to be stored and mailed, then SIGTERM."""
    published = {a.url for a in newsroom.snapshot()}
    daemon = DaemonProcess(config, log_name="logs/final.log")
    try:

        def all_stored() -> bool:
            try:
                rows = query(db, "SELECT url FROM items")
            except Exception:
                return False
            return published <= {r[0] for r in rows}

        stored = wait_until(daemon, all_stored, SETTLE_TIMEOUT, step=0.2)
        result.check(
            "settle: every published item stored within the settle timeout",
            stored,
            "" if stored else f"after {SETTLE_TIMEOUT:.0f}s; see {daemon.log_path}",
        )

        def final_window() -> bool:
            last_item = query(db, "SELECT max(fetched_at) FROM items")[0][0]
            rows = query(
                db,
                "SELECT count(*) FROM digests WHERE name = ? AND status = 'pending'",
                DIGEST,
            )
            covered = query(
                db,
                "SELECT count(*) FROM digests WHERE name = ? AND status != 'pending' "
                "AND window_end > ?",
                DIGEST,
                last_item,
            )
            return bool(rows[0][0] == 0 and covered[0][0] > 0)

        delivered = stored and wait_until(daemon, final_window, 60, step=0.2)
        result.check(
            "settle: a digest window after the last item recorded, nothing pending",
            delivered,
            "" if delivered else f"see {daemon.log_path}",
        )
        code = daemon.stop(60) if daemon.process.poll() is None else daemon.process.returncode
    finally:
        daemon.close()
    return code, daemon


# -- checks -------------------------------------------------------------------------------------


def _plain_text(raw: bytes) -> tuple[str, str, str]:
    """(Message-ID, subject, the plain-text part with whitespace collapsed)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("plain",))
    text = str(body.get_content()) if body is not None else ""
    return str(message["Message-ID"]), str(message["Subject"]), " ".join(text.split())


def check_everything(
    db: Path,
    newsroom: Newsroom,
    smtp: SmtpServer,
    kills: list[Kill],
    config: Path,
    logs: Path,
    result: Result,
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    articles = newsroom.snapshot()
    published = {a.url: a for a in articles}

    # Items: every published one stored exactly once, nothing else.
    rows = query(db, "SELECT id, url, title, status, baseline FROM items")
    by_url = Counter(r[1] for r in rows)
    missing = sorted(set(published) - set(by_url))
    twice = sorted(u for u, n in by_url.items() if n > 1)
    unknown = sorted(set(by_url) - set(published))
    figures["items_published"] = len(published)
    figures["items_slow_pages"] = sum(1 for a in articles if a.delay)
    figures["items_stored"] = len(rows)
    figures["item_statuses"] = dict(Counter(f"{r[3]}{' baseline' if r[4] else ''}" for r in rows))
    result.check(
        "every published item stored exactly once (by URL)",
        not missing and not twice and not unknown,
        f"missing={missing[:5]} ({len(missing)}) twice={twice[:5]} ({len(twice)}) "
        f"unexpected={unknown[:5]} ({len(unknown)})",
    )

    # Digest rows: a contiguous chain, none pending.
    digests = query(
        db,
        "SELECT id, window_start, window_end, status, message_id, attempts FROM digests "
        "WHERE name = ? ORDER BY window_start, window_end",
        DIGEST,
    )
    statuses = Counter(r[3] for r in digests)
    figures["digest_windows"] = len(digests)
    figures["digest_statuses"] = dict(statuses)
    gaps = [
        (a[2], b[1]) for a, b in itertools.pairwise(digests) if a[2] != b[1]
    ]  # end of one != start of the next: a gap or an overlap
    result.check(
        "digest windows form a contiguous, non-overlapping chain",
        bool(digests) and not gaps and all(r[1] < r[2] for r in digests),
        f"{len(gaps)} breaks, first: {gaps[:3]}",
    )
    result.check(
        "no digest left pending", statuses.get("pending", 0) == 0, f"{statuses.get('pending')}"
    )
    figures["digest_attempts_max"] = max((r[5] for r in digests), default=0)

    # Received messages: by Message-ID and by window.
    received = [_plain_text(m.data) for m in smtp.messages]
    figures["messages_received"] = len(received)
    per_id = Counter(mid for mid, _, _ in received)
    row_by_id = {r[4]: r for r in digests}
    sent_ids = {r[4] for r in digests if r[3] == "sent"}
    not_arrived = sorted(sent_ids - set(per_id))
    result.check(
        "every sent window's message arrived at the SMTP server",
        not not_arrived,
        f"not arrived: {not_arrived[:5]} ({len(not_arrived)})",
    )
    stray = sorted(set(per_id) - set(row_by_id))
    result.check(
        "every received Message-ID is a recorded digest window",
        not stray,
        f"unknown: {stray[:5]} ({len(stray)})",
    )
    unsent = sorted(mid for mid in per_id if mid in row_by_id and row_by_id[mid][3] != "sent")
    result.check(
        "every received Message-ID is recorded as sent",
        not unsent,
        f"received but not 'sent': {unsent[:5]} ({len(unsent)})",
    )
    ids_per_window: dict[tuple[Any, Any], set[str]] = defaultdict(set)
    for mid in per_id:
        if mid in row_by_id:
            ids_per_window[(row_by_id[mid][1], row_by_id[mid][2])].add(mid)
    two_ids = {w: ids for w, ids in ids_per_window.items() if len(ids) > 1}
    result.check("no window delivered under two different Message-IDs", not two_ids, f"{two_ids}")
    resends = {mid: n for mid, n in per_id.items() if n > 1}
    figures["duplicate_id_resends"] = sum(n - 1 for n in resends.values())
    figures["duplicate_id_resend_ids"] = len(resends)
    differing = [mid for mid in resends if len({(s, t) for m, s, t in received if m == mid}) > 1]
    result.check(
        "a same-Message-ID re-send carries the same subject and text",
        not differing,
        f"differing: {differing[:5]}",
    )

    # Items mailed: at most once each (by title), every new item once.
    texts = {mid: text for mid, _, text in received}  # one text per distinct Message-ID
    new_titles = {r[2] for r in rows if r[3] == "new" and not r[4]}
    mailed_in: dict[str, list[str]] = {}
    for article in articles:
        mailed_in[article.title] = [mid for mid, text in texts.items() if article.title in text]
    more_than_once = {t: ids for t, ids in mailed_in.items() if len(ids) > 1}
    never = sorted(t for t in new_titles if not mailed_in.get(t))
    figures["items_mailed"] = sum(1 for ids in mailed_in.values() if ids)
    result.check(
        "each item mailed in at most one digest (by title)",
        not more_than_once,
        f"{len(more_than_once)} items, e.g. {list(more_than_once.items())[:2]}",
    )
    result.check(
        "every new item mailed in a digest",
        bool(new_titles) and not never,
        f"never mailed: {never[:5]} ({len(never)}) of {len(new_titles)} new",
    )
    carried = query(
        db,
        "SELECT di.item_id, count(*) FROM digest_items di JOIN digests d ON d.id = di.digest_id "
        "WHERE d.name = ? AND d.status = 'sent' GROUP BY di.item_id",
        DIGEST,
    )
    in_two = [item for item, n in carried if n > 1]
    new_ids = {r[0] for r in rows if r[3] == "new" and not r[4]}
    result.check(
        "digest_items: each new item carried by exactly one sent digest",
        not in_two and new_ids == {item for item, _ in carried},
        f"in two: {in_two[:5]}; not carried: {sorted(new_ids - {i for i, _ in carried})[:5]}",
    )

    # The database itself.
    integrity = query(db, "PRAGMA integrity_check")
    result.check("PRAGMA integrity_check is ok", integrity == [("ok",)], f"{integrity[:5]}")
    fk = query(db, "PRAGMA foreign_key_check")
    result.check("PRAGMA foreign_key_check finds nothing", not fk, f"{fk[:5]}")

    # Processes: every child of a killed daemon gone, nothing running with the config path.
    deadline = time.monotonic() + ORPHAN_GRACE
    while True:
        survivors = [
            (k.number, pid) for k in kills for pid, start in k.children if alive(pid, start)
        ]
        leftovers = processes_mentioning(str(config))
        if (not survivors and not leftovers) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    figures["children_of_killed_daemons"] = sum(len(k.children) for k in kills)
    figures["orphans_left_running"] = len(leftovers)
    result.check(
        f"no child of a killed daemon still alive {ORPHAN_GRACE:.0f}s after the last run",
        not survivors,
        f"{len(survivors)} alive, as (kill number, pid): {survivors[:12]}",
    )
    result.check(
        "no process with the test config path in its command line remains",
        not leftovers,
        f"{len(leftovers)}, e.g. {leftovers[:2]}",
    )
    # Clean up after a failure: these processes are ours (the work folder's config path is
    # unique to this run). Each is ended by its pid.
    for pid, _cmdline in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    # The daemon logs.
    tracebacks = []
    events: Counter[str] = Counter()
    for log in sorted(logs.glob("*.log")):
        text = log.read_text("utf-8", errors="replace")
        if "Traceback" in text:
            tracebacks.append(log.name)
        for line in text.splitlines():
            match = re.match(r"\S+ (WARNING|ERROR|CRITICAL) \S+ (\S+)", line)
            if match:
                events[f"{match.group(1)} {match.group(2)}"] += 1
    figures["log_warnings_errors"] = dict(events)
    result.check("no traceback in any daemon log", not tracebacks, f"{tracebacks}")
    return figures


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50, help="how many kill -9 (default 50)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for config, db, logs")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    rng = random.Random(seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crash-safety-"))
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    db = workdir / "monitor.db"
    print(f"crash safety: {args.kills} kills, seed {seed}, work folder {workdir}", flush=True)

    began = time.monotonic()
    result = Result()
    with (
        LocalServer() as http,
        SlowAcceptSmtpServer(seed=rng.randrange(1 << 31), max_delay=0.4) as smtp,
    ):
        newsroom = Newsroom(http, random.Random(rng.randrange(1 << 31)))
        for _ in range(4):
            newsroom.publish(slow=False)
        config = write_config(
            workdir,
            {"Alpha": http.url(FEEDS[0]), "Beta": http.url(FEEDS[1])},
            smtp_port=smtp.port,
            schedule=SCHEDULE,
        )
        publisher = Publisher(newsroom, random.Random(rng.randrange(1 << 31)))
        publisher.start()
        kills: list[Kill] = []
        try:
            for number in range(1, args.kills + 1):
                kill = one_run(number, config, newsroom, smtp, rng, db)
                kills.append(kill)
                print(
                    f"  kill {number:2d}/{args.kills}: mode={kill.mode:<12} "
                    f"phase={kill.phase:<24} after={kill.after:5.2f}s "
                    f"children={len(kill.children)} items={kill.stored} pending={kill.pending} "
                    f"published={len(newsroom.articles)} mails={len(smtp.messages)}",
                    flush=True,
                )
        finally:
            publisher.stop()
        died = [k for k in kills if k.phase.startswith("exited")]
        result.check("no run exited by itself before its kill", not died, f"{died[:3]}")
        print("settling: last start, waiting for everything to be stored and mailed", flush=True)
        code, _ = settle(config, newsroom, db, result)
        result.check("SIGTERM after settling: exit code 0", code == 0, f"exit code {code}")
        figures = check_everything(db, newsroom, smtp, kills, config, logs, result)
        if http.errors:
            result.check("the HTTP server's handlers raised nothing", False, f"{http.errors[:3]}")
    took = time.monotonic() - began

    phases = Counter(k.phase for k in kills)
    modes = Counter(k.mode for k in kills)
    print()
    print("summary")
    print(f"  seed:                        {seed}")
    print(f"  kills:                       {len(kills)}")
    print(f"  kill modes:                  {dict(sorted(modes.items()))}")
    print(f"  what the kills interrupted:  {dict(sorted(phases.items()))}")
    print(f"  kills that left a digest pending: {sum(1 for k in kills if k.pending)}")
    for key, value in figures.items():
        print(f"  {key + ':':<28} {value}")
    print(f"  time taken:                  {took:.1f}s")
    print()
    for name, ok, detail in result.checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}" + ("" if ok else f": {detail}"))
    print()
    if result.ok:
        print("all checks passed")
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        return 0
    print(f"FAILED; daemon logs and database kept in {workdir}")
    return 1


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
