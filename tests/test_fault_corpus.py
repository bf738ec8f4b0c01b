"""The fault corpus: hostile and broken sources polled together with healthy ones, plus every
file of feedparser's own test suite served as a feed. Real local HTTP server, real SQLite.

Links in the feedparser files point at hosts such as example.com. No request may leave the
machine, so HTTP(S)_PROXY points at a local server that answers 404 to everything, and
NO_PROXY keeps 127.0.0.1 direct: those article pages fail locally and the feed's own text
stands in, as it would for a page that is gone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import pytest

from monitor.config import DedupeConfig, PollConfig
from monitor.fetch import Fetcher, make_client
from monitor.models import HttpConfig, Source
from monitor.pipeline import Poller, PollOutcome, make_pool
from monitor.pipeline.index import DedupeIndex
from monitor.store import Store
from tests.servers import LocalServer, gzip_bomb
from tests.test_pipeline import NO_CORPUS, TAXONOMY, Clock, rss, three_articles

SUITE = Path(__file__).parent / "data" / "feedparser-tests"
SUITE_FILES = sorted(p for p in SUITE.rglob("*") if p.is_file() and p.suffix in (".xml", ".json"))
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>XXE</title>
<item><title>Leak &xxe; here</title><link>http://127.0.0.1:1/xxe</link><guid>xxe-1</guid>
<description>Does &xxe; expand?</description></item></channel></rss>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY a "lol">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
<!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
<!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
<!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<rss version="2.0"><channel><title>Laughs</title>
<item><title>&i;</title><link>http://127.0.0.1:1/laughs</link><guid>laughs-1</guid></item>
</channel></rss>"""

BAD_UTF8 = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bad \xff\xfe</title>'
    b"<item><title>Broken \xc3\x28 bytes \xed\xa0\x80</title><guid>bad-utf8</guid>"
    b"<description>text \x80\x81</description></item></channel></rss>"
)
UNKNOWN_CHARSET = (
    b'<?xml version="1.0" encoding="x-no-such-charset"?><rss version="2.0"><channel>'
    b"<title>Unknown</title><item><title>Caf\xe9</title><guid>unknown-1</guid></item>"
    b"</channel></rss>"
)


def same_guid(times: int, link: str) -> bytes:
    item = f"<item><title>Again</title><link>{link}</link><guid>same</guid></item>"
    return (f'<rss version="2.0"><channel><title>G</title>{item * times}</channel></rss>').encode()


@pytest.fixture
def black_hole(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """Every request for a host other than 127.0.0.1 goes here and gets a 404."""
    server = LocalServer(data_dir=SUITE)  # serves nothing useful under /data for other hosts
    proxy = server.url("")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    try:
        yield server
    finally:
        server.close()


def run_poll(
    store: Store, sources: list[Source], http: HttpConfig, clock: Clock
) -> dict[str, PollOutcome]:
    store.sync_sources(sources, clock())
    index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), clock())

    async def go() -> list[PollOutcome]:
        with make_pool(2, TAXONOMY) as pool:
            async with make_client(http) as client:
                poller = Poller(
                    store,
                    Fetcher(client, http),
                    pool,
                    PollConfig(max_pages_per_poll=5, backfill=timedelta(days=36500)),
                    index=index,
                    clock=clock,
                )
                return await poller.poll_all(sources)

    return {o.source: o for o in asyncio.run(go())}


def test_hostile_broken_and_suite_sources_polled_together_with_healthy_ones(
    http_server: LocalServer,
    black_hole: LocalServer,
    http_config: HttpConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Three hosts, as on the web: the healthy feed, the hostile endpoints, the suite files.
    hostile, good = LocalServer(), LocalServer()
    try:
        _run_fault_corpus(http_server, hostile, good, http_config, tmp_path, caplog)
    finally:
        hostile.close()
        good.close()


def _run_fault_corpus(
    server: LocalServer,
    hostile: LocalServer,
    good: LocalServer,
    http_config: HttpConfig,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gzip_bomb()  # built once per process: not while the poll runs, where it would be slow
    healthy = good.add("/healthy.xml", rss(three_articles(good)))
    twenty_mb = (
        b"<html><body><article>" + b"<p>word </p>" * (20 * 1024 * 1024 // 12) + b"</article>"
    )
    hostile.add("/huge.html", twenty_mb, content_type="text/html")
    date = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    expected = {
        # name: (url, outcome, error class)
        "Healthy": (healthy, "ok", None),
        "Gzip bomb": (hostile.url("/gzip-bomb"), "failed", "too_large"),
        "Oversized, no length": (hostile.url("/oversized?mb=3"), "failed", "too_large"),
        "Slow drip": (hostile.url("/slow-drip?bytes=600&interval=1&chunk=1"), "failed", "timeout"),
        "Never answers": (hostile.url("/hang"), "failed", "timeout"),
        "Redirect loop": (hostile.url("/redirect-loop"), "failed", "http"),
        "Redirect to file:": (
            hostile.url("/redirect?to=file:///etc/passwd"),
            "failed",
            "http",
        ),
        "429 seconds": (hostile.url("/retry-after/429?value=120"), "failed", "http"),
        "503 date": (hostile.url(f"/retry-after/503?value={date}"), "failed", "http"),
        "Challenge": (hostile.url("/html-as-feed"), "failed", "not_a_feed"),
        "XXE": (server.add("/xxe.xml", XXE), "ok", None),
        "Billion laughs": (server.add("/laughs.xml", LAUGHS), "ok", None),
        "Bad UTF-8": (server.add("/bad-utf8.xml", BAD_UTF8), "ok", None),
        "Unknown charset": (server.add("/charset.xml", UNKNOWN_CHARSET), "ok", None),
        "Same GUID x10000": (
            server.add("/same.xml", same_guid(10_000, server.url("/healthy-page"))),
            "ok",
            None,
        ),
        "20 MB page": (
            server.add(
                "/huge.xml",
                rss([{"title": "A huge page", "link": hostile.url("/huge.html"), "guid": "h"}]),
            ),
            "ok",
            None,
        ),
    }
    suite: dict[str, Path] = {}
    for path in SUITE_FILES:
        name = "suite:" + path.relative_to(SUITE).as_posix()
        suite[name] = path
    sources = [Source(name, url) for name, (url, _, _) in expected.items()]
    sources += [
        Source(
            name, server.url("/data/" + path.relative_to(Path(__file__).parent / "data").as_posix())
        )
        for name, path in suite.items()
    ]
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", now=NOW)
    caplog.set_level(logging.CRITICAL, logger="monitor")
    started = time.monotonic()
    try:
        outcomes = run_poll(store, sources, http_config, Clock())
        took = time.monotonic() - started
        items = store.list_items()
        health = {h.name: h for h in store.list_source_health()}
    finally:
        store.close()

    # Nothing crashed: no source hit an internal error.
    bugs = [r.getMessage() for r in caplog.records if r.levelno >= logging.CRITICAL]
    assert bugs == []
    assert not [o for o in outcomes.values() if o.error and "internal error" in o.error]

    # Each hostile source failed with the right class, within the deadline.
    for name, (_url, outcome, error_class) in expected.items():
        got = outcomes[name]
        assert (got.outcome, got.error_class) == (outcome, error_class), (name, got.error)
        if got.outcome == "failed":
            assert got.elapsed_ms <= http_config.deadline * 1000 + 1500, (name, got.elapsed_ms)
            assert health[name].last_error_class == error_class
    assert health["429 seconds"].retry_after_until is not None
    assert health["503 date"].retry_after_until is not None

    by_source: dict[str, list[str]] = {}
    for item in items:
        by_source.setdefault(item.source, []).append(item.text)
    # The healthy source is unaffected: its three pages stored with their full text.
    assert len(by_source["Healthy"]) == 3
    assert all(len(text) > 500 for text in by_source["Healthy"])
    # Hostile content stored safely: no entity expanded, no file read, one item per GUID.
    assert not any("root:" in text for texts in by_source.values() for text in texts)
    assert len(by_source["XXE"]) == 1
    assert len(by_source["Billion laughs"]) == 1
    assert len(by_source["Same GUID x10000"]) == 1
    assert len(by_source["Bad UTF-8"]) == 1
    assert len(by_source["20 MB page"]) == 1
    assert outcomes["20 MB page"].page_failures == 1  # cut at the cap, the summary stands in

    # Every suite file where feedparser yields entries: entries kept, stored (up to the page
    # budget of 5 per poll); the rest fail as parse or not_a_feed, never as a crash.
    kept = failed = 0
    for name, path in suite.items():
        want = len(feedparser.parse(path.read_bytes()).entries) if path.suffix == ".xml" else 1
        got = outcomes[name]
        if want:
            # Stored, or already stored from another file listing the same link.
            assert got.outcome == "ok", (name, got.error)
            assert got.stored + got.unchanged >= 1, name
            kept += 1
        elif got.outcome == "failed":
            assert got.error_class in ("parse", "not_a_feed"), (name, got.error)
            failed += 1
    # 2,107 files: 1,195 where feedparser yields entries (the others test feed-level fields).
    assert len(suite) == 2107
    assert kept == 1195
    assert took < 120
