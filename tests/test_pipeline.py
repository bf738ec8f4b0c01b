"""The poll pipeline end to end: a real local HTTP server, real pages, a real SQLite file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from monitor.cluster.gate import DecisionGate
from monitor.config import DedupeConfig, PollConfig
from monitor.fetch import Fetcher, make_client
from monitor.models import HttpConfig, Source
from monitor.pipeline import Poller, PollOutcome, init_worker
from monitor.pipeline.index import DedupeIndex
from monitor.store import Store
from monitor.tag import parse_taxonomy
from tests.servers import LocalServer

PAGES = Path(__file__).parent / "data" / "pages"
EXPECTED = json.loads((PAGES / "expected.json").read_text("utf-8"))
START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
TOPICS = Path(__file__).resolve().parents[1] / "config" / "topics.toml"
TAXONOMY = parse_taxonomy(TOPICS.read_text("utf-8"), file=str(TOPICS))
NO_CORPUS = Path(__file__).parent / "data" / "no-corpus"  # does not exist: no seeds


class Clock:
    """Injected time: starts at START, moves only when a test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def rss(entries: Sequence[dict[str, str]], *, title: str = "Local feed") -> bytes:
    items = []
    for e in entries:
        parts = [f"<title>{escape(e['title'])}</title>", f"<link>{escape(e['link'])}</link>"]
        if "guid" in e:
            parts.append(f'<guid isPermaLink="false">{escape(e["guid"])}</guid>')
        if "summary" in e:
            parts.append(f"<description>{escape(e['summary'])}</description>")
        parts.append(
            f"<pubDate>{e.get('date', format_datetime(START - timedelta(hours=1)))}</pubDate>"
        )
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>http://127.0.0.1/</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def page_url(server: LocalServer, name: str) -> str:
    return server.url(f"/data/pages/{name}")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", now=START)
    yield store
    store.close()


def poll(
    store: Store,
    sources: Sequence[Source],
    clock: Clock,
    http_config: HttpConfig,
    *,
    config: PollConfig | None = None,
    force: bool = False,
    due_only: bool = False,
    corpus: Path = NO_CORPUS,
    dedupe: DedupeConfig | None = None,
    executor: type[ThreadPoolExecutor] = ThreadPoolExecutor,
    index: DedupeIndex | None = None,
    gate: DecisionGate | None = None,
) -> dict[str, PollOutcome]:
    """One poll run, like `poll_once`: a fresh dedupe index from `corpus` and the store (or
    a live `index`, as a daemon or a cluster node with its decision `gate` holds one)."""
    store.sync_sources(sources, clock())
    if index is None:
        index = DedupeIndex.load(store, corpus, dedupe or DedupeConfig(), clock())

    async def go() -> list[PollOutcome]:
        with executor(2, initializer=init_worker, initargs=(TAXONOMY,)) as pool:
            async with make_client(http_config) as client:
                poller = Poller(
                    store,
                    Fetcher(client, http_config),
                    pool,
                    config or PollConfig(),
                    index=index,
                    clock=clock,
                    gate=gate,
                )
                return await poller.poll_all(sources, force=force, due_only=due_only)

    return {o.source: o for o in asyncio.run(go())}


def three_articles(server: LocalServer) -> list[dict[str, str]]:
    return [
        {
            "title": "US helicopter crash",
            "link": page_url(server, "aljazeera.com.helicopter.html"),
            "guid": "a-1",
            "summary": "Two service members killed.",
        },
        {
            "title": "Esper in Vietnam",
            "link": page_url(server, "chron.com.esper-vietnam.html"),
            "guid": "a-2",
        },
        {"title": "Morales", "link": page_url(server, "rt.com.morales.html"), "guid": "a-3"},
    ]


def test_poll_stores_full_text_and_a_second_poll_sends_validators(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    http_server.add("/feed.xml", rss(three_articles(http_server)), etag='"v1"')
    source = Source("Local", http_server.url("/feed.xml"), language="en")
    first = poll(db, [source], clock, http_config)["Local"]
    assert (first.outcome, first.new, first.duplicate) == ("ok", 3, 0)
    stored = {i.title: i for i in db.list_items()}
    assert sorted(stored) == ["Esper in Vietnam", "Morales", "US helicopter crash"]
    heli = stored["US helicopter crash"]
    assert heli.extraction == "full_text"
    assert heli.language == "en"
    assert "Logar province" in heli.text  # from the page, not the feed summary
    assert heli.text_chars == len(heli.text) > 1000

    clock.advance(timedelta(hours=1))
    second = poll(db, [source], clock, http_config)["Local"]
    assert second.outcome == "not_modified"
    feed_requests = http_server.requests_for("/feed.xml")
    assert feed_requests[-1].headers.get("if-none-match") == '"v1"'
    assert db.count_items() == 3
    # No article page was fetched again.
    assert len(http_server.requests_for("/data/pages/aljazeera.com.helicopter.html")) == 1


def test_a_changed_feed_stores_only_what_is_new(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    entries = three_articles(http_server)
    http_server.add("/feed.xml", rss(entries[:2]), etag='"v1"')
    source = Source("Local", http_server.url("/feed.xml"))
    poll(db, [source], clock, http_config)
    http_server.add("/feed.xml", rss(entries), etag='"v2"')
    clock.advance(timedelta(minutes=30))
    outcome = poll(db, [source], clock, http_config)["Local"]
    assert (outcome.new, outcome.unchanged) == (1, 2)
    assert db.count_items() == 3


def test_one_dead_source_does_not_stop_the_others(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    http_server.add("/feed.xml", rss(three_articles(http_server)[:1]))
    sources = [
        Source("Broken", http_server.url("/status/500")),
        Source("Refused", "http://127.0.0.1:9/feed.xml"),
        Source("Challenge", http_server.url("/html-as-feed")),
        Source("Local", http_server.url("/feed.xml")),
    ]
    outcomes = poll(db, sources, clock, http_config)
    assert outcomes["Local"].new == 1
    assert (outcomes["Broken"].outcome, outcomes["Broken"].error_class) == ("failed", "http")
    assert outcomes["Refused"].error_class == "connect"
    assert outcomes["Challenge"].error_class == "not_a_feed"
    health = {h.name: h for h in db.list_source_health()}
    assert health["Broken"].status == "failing"
    assert health["Broken"].consecutive_failures == 1
    assert "500" in (health["Broken"].last_error or "")
    assert health["Broken"].next_check_at is not None
    assert health["Broken"].next_check_at > clock()
    assert health["Local"].status == "ok"


class BuggyExecutor(ThreadPoolExecutor):
    """Extraction that fails the way a bug in our code would: a plain exception."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("extractor bug")


class DeadExecutor(ThreadPoolExecutor):
    """Extraction whose worker processes have died (the OOM killer)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise BrokenProcessPool("a child process terminated abruptly")


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        (BuggyExecutor, "internal error, please report it: RuntimeError: extractor bug"),
        (DeadExecutor, "the extraction workers died: a child process terminated abruptly"),
    ],
)
def test_a_bug_or_dead_workers_fail_only_the_sources_that_needed_them(
    http_server: LocalServer,
    db: Store,
    clock: Clock,
    http_config: HttpConfig,
    executor: type[ThreadPoolExecutor],
    message: str,
) -> None:
    http_server.add("/feed.xml", rss(three_articles(http_server)[:1]))
    http_server.add("/empty.xml", rss([]))
    sources = [
        Source("Buggy", http_server.url("/feed.xml")),
        Source("Quiet", http_server.url("/empty.xml")),
    ]
    outcomes = poll(db, sources, clock, http_config, executor=executor)
    feed = http_server.url("/feed.xml")
    assert (outcomes["Buggy"].outcome, outcomes["Buggy"].error) == ("failed", f"{feed}: {message}")
    assert outcomes["Quiet"].outcome == "ok"
    health = {h.name: h for h in db.list_source_health()}
    assert (health["Buggy"].status, health["Buggy"].consecutive_failures) == ("failing", 1)
    assert health["Buggy"].last_error == f"{feed}: {message}"
    assert health["Buggy"].etag is None  # nothing was stored, so the next poll refetches it all
    assert health["Quiet"].status == "ok"
    assert db.count_items() == 0


def test_slow_drip_is_cut_at_the_deadline_and_recorded_as_timeout(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    http_server.add("/feed.xml", rss(three_articles(http_server)[:1]))
    sources = [
        Source("Drip", http_server.url("/slow-drip?bytes=100000&interval=0.5&chunk=1")),
        Source("Local", http_server.url("/feed.xml")),
    ]
    outcomes = poll(db, sources, clock, http_config)
    assert outcomes["Drip"].error_class == "timeout"
    assert outcomes["Local"].new == 1


def test_failures_back_off_and_retry_after_is_honoured_unless_forced(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    limited = Source("Limited", http_server.url("/retry-after/429?value=3600"))
    first = poll(db, [limited], clock, http_config)["Limited"]
    assert first.error_class == "http"
    assert first.next_check_at == clock() + timedelta(hours=1)
    embargo = db.source_health("Limited").retry_after_until
    assert embargo == clock() + timedelta(hours=1)
    clock.advance(timedelta(minutes=5))
    skipped = poll(db, [limited], clock, http_config)["Limited"]
    assert skipped.outcome == "skipped"
    assert len(http_server.requests_for("/retry-after/429")) == 1
    forced = poll(db, [limited], clock, http_config, force=True)["Limited"]
    assert forced.outcome == "failed"
    assert len(http_server.requests_for("/retry-after/429")) == 2

    # Plain failures: the delay grows with each consecutive failure.
    broken = Source("Broken", http_server.url("/status/503"))
    delays = []
    for _ in range(4):
        outcome = poll(db, [broken], clock, http_config)["Broken"]
        assert outcome.next_check_at is not None
        delays.append(outcome.next_check_at - clock())
    assert delays[-1] > delays[0]
    assert db.source_health("Broken").consecutive_failures == 4


def test_due_only_respects_the_next_check_time(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    http_server.add("/feed.xml", rss([]))
    source = Source("Local", http_server.url("/feed.xml"), interval=timedelta(minutes=30))
    poll(db, [source], clock, http_config, due_only=True)
    clock.advance(timedelta(minutes=10))
    assert poll(db, [source], clock, http_config, due_only=True)["Local"].outcome == "skipped"
    clock.advance(timedelta(minutes=25))
    assert poll(db, [source], clock, http_config, due_only=True)["Local"].outcome == "ok"


def test_tracking_parameters_amp_twins_and_copied_text_are_duplicates(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    clean = page_url(http_server, "aljazeera.com.helicopter.html")
    http_server.add("/a.xml", rss([{"title": "Crash", "link": clean, "guid": "1"}]))
    poll(db, [Source("A", http_server.url("/a.xml"))], clock, http_config)

    copied = (PAGES / "aljazeera.com.helicopter.html").read_bytes()
    http_server.add("/copy/crash.html", copied, content_type="text/html")
    http_server.add(
        "/b.xml",
        rss(
            [
                {
                    "title": "Crash (tracked)",
                    "link": clean + "?utm_source=rss&utm_medium=feed",
                    "guid": "b1",
                },
                {
                    "title": "Crash (copied)",
                    "link": http_server.url("/copy/crash.html"),
                    "guid": "b2",
                },
            ]
        ),
    )
    clock.advance(timedelta(minutes=1))
    outcome = poll(db, [Source("B", http_server.url("/b.xml"))], clock, http_config)["B"]
    assert (outcome.new, outcome.duplicate) == (0, 2)
    dups = {i.title: i.duplicate_of for i in db.list_items(statuses=["duplicate"])}
    tracked = dups["Crash (tracked)"]
    assert tracked is not None
    assert (tracked.kind, tracked.ref, tracked.method) == ("item", clean, "canonical_url")
    copy = dups["Crash (copied)"]
    assert copy is not None
    assert (copy.ref, copy.method, copy.similarity) == (clean, "text_hash", 1.0)


def test_the_same_url_in_two_feeds_is_stored_once(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    entries = three_articles(http_server)[:2]
    http_server.add("/all.xml", rss(entries))
    http_server.add("/news.xml", rss(entries[:1]))
    sources = [
        Source("All", http_server.url("/all.xml")),
        Source("News", http_server.url("/news.xml")),
    ]
    poll(db, sources[:1], clock, http_config)
    outcome = poll(db, sources, clock, http_config)["News"]
    assert (outcome.new, outcome.unchanged) == (0, 1)
    assert db.count_items() == 2


def test_a_missing_page_falls_back_to_the_feed_summary(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    http_server.add(
        "/feed.xml",
        rss(
            [
                {
                    "title": "Gone",
                    "link": http_server.url("/status/404"),
                    "guid": "g1",
                    "summary": "ASEAN foreign ministers met in Vientiane on Friday.",
                },
                {
                    "title": "Gone without summary",
                    "link": http_server.url("/status/410"),
                    "guid": "g2",
                },
            ]
        ),
    )
    outcome = poll(db, [Source("Local", http_server.url("/feed.xml"))], clock, http_config)
    assert outcome["Local"].page_failures == 2
    items = {i.title: i for i in db.list_items()}
    assert items["Gone"].extraction == "summary_only"
    assert items["Gone"].text == "ASEAN foreign ministers met in Vientiane on Friday."
    assert items["Gone without summary"].extraction == "failed"


def test_first_poll_stores_old_entries_as_baseline(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    entries = three_articles(http_server)
    entries[0]["date"] = format_datetime(START - timedelta(days=30))
    http_server.add("/feed.xml", rss(entries), etag='"1"')
    source = Source("Local", http_server.url("/feed.xml"))
    outcome = poll(db, [source], clock, http_config)["Local"]
    assert (outcome.baseline, outcome.new) == (1, 2)
    baseline = [i.title for i in db.list_items() if i.baseline]
    assert baseline == ["US helicopter crash"]
    # Later polls never make baseline items: the source is no longer new.
    old = {
        "title": "Old but newly listed",
        "link": page_url(http_server, "dw.com.colonial.html"),
        "guid": "old",
        "date": format_datetime(START - timedelta(days=60)),
    }
    http_server.add("/feed.xml", rss([*entries, old]), etag='"2"')
    clock.advance(timedelta(hours=1))
    assert poll(db, [source], clock, http_config)["Local"].new == 1


def test_an_updated_entry_keeps_its_identity_and_records_the_change(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    link = http_server.url("/story.html")
    http_server.add(
        "/story.html", (PAGES / "dw.com.colonial.html").read_bytes(), content_type="text/html"
    )
    http_server.add(
        "/feed.xml", rss([{"title": "First title", "link": link, "guid": "s"}]), etag='"1"'
    )
    source = Source("Local", http_server.url("/feed.xml"))
    poll(db, [source], clock, http_config)
    [before] = db.list_items()
    http_server.add(
        "/story.html", (PAGES / "dw.com-elephants.html").read_bytes(), content_type="text/html"
    )
    http_server.add(
        "/feed.xml", rss([{"title": "Corrected title", "link": link, "guid": "s"}]), etag='"2"'
    )
    clock.advance(timedelta(hours=1))
    outcome = poll(db, [source], clock, http_config)["Local"]
    assert (outcome.updated, outcome.new) == (1, 0)
    [after] = db.list_items()
    assert after.id == before.id
    assert after.title == "Corrected title"
    assert after.text != before.text
    [revision] = db.revisions(after.id)
    assert revision["old_title"] == "First title"


def test_nothing_stored_is_lost_when_a_source_starts_failing(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    http_server.add("/feed.xml", rss(three_articles(http_server)))
    source = Source("Local", http_server.url("/feed.xml"))
    poll(db, [source], clock, http_config)
    http_server.add("/feed.xml", b"<html>oops", status=500)
    clock.advance(timedelta(hours=1))
    assert poll(db, [source], clock, http_config)["Local"].outcome == "failed"
    assert db.count_items() == 3


def test_page_and_sitemap_sources_discover_articles(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    heli = page_url(http_server, "aljazeera.com.helicopter.html")
    esper = page_url(http_server, "chron.com.esper-vietnam.html")
    listing = (
        "<html><body><nav><a href='/'>Home</a></nav><ul class='news'>"
        f"<li><a class='headline' href='{heli}'>US helicopter crash in Afghanistan</a></li>"
        f"<li><a class='headline' href='{esper}'>Esper visits Vietnam</a></li>"
        "</ul></body></html>"
    ).encode()
    http_server.add("/news/", listing, content_type="text/html")
    sitemap = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{page_url(http_server, 'dw.com.colonial.html')}</loc>"
        "<lastmod>2026-11-19</lastmod></url></urlset>"
    ).encode()
    http_server.add("/sitemap.xml", sitemap)
    sources = [
        Source("Listing", http_server.url("/news/"), kind="page", selector="a.headline"),
        Source("Sitemap", http_server.url("/sitemap.xml"), kind="sitemap"),
    ]
    # The pages are from 2019: with the default backfill they would be baseline.
    config = replace(PollConfig(), backfill=timedelta(days=36500))
    outcomes = poll(db, sources, clock, http_config, config=config)
    assert outcomes["Listing"].new == 2
    assert outcomes["Sitemap"].new == 1
    titles = {i.url: i.title for i in db.list_items()}
    assert titles[heli] == "US helicopter crash in Afghanistan"
    assert "Vietnam" in titles[esper]


def test_a_challenge_page_where_a_listing_was_expected_is_not_a_feed(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    source = Source("MFA", http_server.url("/html-as-feed"), kind="page")
    outcome = poll(db, [source], clock, http_config)["MFA"]
    assert outcome.error_class == "not_a_feed"
    assert "challenge" in (outcome.error or "")


def test_page_budget_limits_article_fetches_per_poll(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    # With an ETag: the entries left over must not wait behind a 304 until the feed changes.
    http_server.add("/feed.xml", rss(three_articles(http_server)), etag='"v1"')
    source = Source("Local", http_server.url("/feed.xml"))
    config = replace(PollConfig(), max_pages_per_poll=2)
    assert poll(db, [source], clock, http_config, config=config)["Local"].new == 2
    assert db.source_health("Local").etag is None  # entries left: no validators kept
    clock.advance(timedelta(minutes=30))
    assert poll(db, [source], clock, http_config, config=config)["Local"].new == 1
    assert db.source_health("Local").etag == '"v1"'  # all taken: the next poll may get a 304
    clock.advance(timedelta(minutes=30))
    assert poll(db, [source], clock, http_config, config=config)["Local"].outcome == "not_modified"


def test_items_are_tagged_with_evidence_as_they_are_stored(
    http_server: LocalServer, db: Store, clock: Clock, http_config: HttpConfig
) -> None:
    """Seed 004's text, served as a page: tagged on ingest, with the terms that fired."""
    seed = (TOPICS.parent / "corpus" / "004_77ff1506fea45f61.txt").read_text("utf-8")
    body = "".join(f"<p>{line}</p>" for line in seed.splitlines()[1:] if line.strip())
    http_server.add(
        "/som.html",
        f"<html><body><article>{body}</article></body></html>".encode(),
        content_type="text/html",
    )
    http_server.add(
        "/feed.xml",
        rss(
            [
                {
                    "title": "ASEAN, Russia commit to deepen cooperation",
                    "link": http_server.url("/som.html"),
                    "guid": "som",
                }
            ]
        ),
    )
    poll(db, [Source("ASEAN", http_server.url("/feed.xml"))], clock, http_config)
    [item] = db.list_items()
    topics = {t.id: t for t in item.topics}
    assert "regional-architecture" in topics
    architecture = topics["regional-architecture"]
    assert architecture.score >= architecture.threshold
    assert any(term for term, _lang, count in architecture.evidence if count >= 1)
    assert "Russia" in item.facets["countries"]
    assert "ASEAN" in item.facets["organisations"]
    assert [i.id for i in db.list_items(topic="regional-architecture")] == [item.id]
    assert db.list_items(topic="maritime-security") == []
