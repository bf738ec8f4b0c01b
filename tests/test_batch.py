"""New articles decided as a batch (issue 14): the same result as one by one, one transaction,
and a process killed while a batch waits loses nothing stored and stores the batch next time."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import DedupeConfig, PollConfig
from monitor.fetch import Fetcher, make_client
from monitor.models import Entry, HttpConfig, Source
from monitor.pipeline import Poller, PollOutcome, init_worker
from monitor.pipeline.batch import ExactLayer, Pending, decide_batch, decision_order
from monitor.pipeline.index import DedupeIndex
from monitor.pipeline.poll import _article, _extract_job
from monitor.store import CorrectionsChanged, ItemSignature, NewItem, Store
from monitor.store.schema import item_topics
from tests.daemon_process import DaemonProcess, query
from tests.servers import LocalServer
from tests.test_daemon import feed, pages, stored_urls, write_config
from tests.test_pipeline import NO_CORPUS, PAGES, START, TAXONOMY, Clock, page_url, poll, rss

SLOW_FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>S</title>ITEMS</channel>\
</rss>'
SOURCES = [Source("A", "http://127.0.0.1:9/a.xml"), Source("B", "http://127.0.0.1:9/b.xml")]


def real_articles() -> list[tuple[Source, Entry]]:
    """Every saved page of tests/data/pages in source A with dates spread over three days
    (some undated), a third of them again in source B under another URL (the same text:
    exact duplicates by text hash), and a few as canonical-URL twins (a tracking parameter)."""
    rng = random.Random(14)
    names = sorted(p.name for p in PAGES.glob("*.html") if p.name != "listing.html")
    out: list[tuple[Source, Entry]] = []
    for n, name in enumerate(names):
        at = None if n % 5 == 4 else START - timedelta(hours=rng.randrange(1, 72))
        out.append((SOURCES[0], Entry(f"http://127.0.0.1:9/a/{name}", f"a-{name}", None, None, at)))
        if n % 3 == 0:
            later = START - timedelta(minutes=rng.randrange(1, 60))
            url = f"http://127.0.0.1:9/b/{name}"
            out.append((SOURCES[1], Entry(url, f"b-{name}", None, None, later)))
        if n % 3 == 2:  # the same report with a line added: a near-duplicate
            url = f"http://127.0.0.1:9/c/{name}"
            out.append((SOURCES[1], Entry(url, f"c-{name}", None, None, at)))
        if n % 4 == 1:
            url = f"http://127.0.0.1:9/a/{name}?utm_source=newsletter"
            out.append((SOURCES[1], Entry(url, f"t-{name}", None, None, at)))
    return out


@pytest.fixture(scope="module")
def extracted() -> list[tuple[Source, Entry, Any]]:
    """The real pages extracted, signed and tagged as a worker does it."""
    init_worker(TAXONOMY)
    out = []
    for source, entry in real_articles():
        name = entry.url.split("/")[-1].split("?")[0]
        body = (PAGES / name).read_bytes()
        done = _extract_job(None, body, entry.url, None, None, True, entry.published_at)
        if "/c/" in entry.url:  # the page's text and a line: only the feed's summary of it
            summary = done.text + " Reported by our correspondent in the capital."
            done = _extract_job(None, None, entry.url, summary, None, True, entry.published_at)
        out.append((source, entry, done))
    return out


def open_store(path: Path) -> Store:
    store = Store.open(f"sqlite:///{path}", now=START)
    store.sync_sources(SOURCES, START)
    return store


def stored(store: Store) -> list[tuple[Any, ...]]:
    """Everything the decisions stored, by URL: status, duplicate of, story, tags, records."""
    with store.engine.connect() as conn:
        tags = {
            (r.item_id, r.topic_id)
            for r in conn.execute(sa.select(item_topics.c.item_id, item_topics.c.topic_id))
        }
        by_id = {
            r.id: r
            for r in conn.execute(
                sa.text(
                    "SELECT i.id, i.url, i.status, i.baseline, i.dup_kind, i.dup_ref, "
                    "i.dup_method, i.story_id, d.story, d.near FROM items i "
                    "LEFT JOIN decisions d ON d.item_id = i.id"
                )
            )
        }
    return sorted(
        (
            r.url,
            r.status,
            r.baseline,
            r.dup_kind,
            r.dup_ref,
            r.dup_method,
            r.story_id,
            r.story,
            r.near,
            sorted(t for i, t in tags if i == r.id),
        )
        for r in by_id.values()
    )


def one_by_one(
    store: Store,
    extracted: list[tuple[Source, Entry, Any]],
    order: list[int],
    index: DedupeIndex | None = None,
) -> list[PollOutcome]:
    """The unbatched path (`decide_batch = 1`): `Poller._decide` for each article in turn,
    in `order` (with a live `index`, else one loaded from the store)."""
    clock = Clock()
    if index is None:
        index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), clock())
    outcomes = []

    async def go() -> None:
        async with make_client(HttpConfig()) as client:
            with ThreadPoolExecutor(1) as pool:
                config = PollConfig(decide_batch=1)
                poller = Poller(
                    store, Fetcher(client, HttpConfig()), pool, config, index=index, clock=clock
                )
                for i in order:
                    source, entry, done = extracted[i]
                    outcome = PollOutcome(source.name, "ok")
                    poller._decide(source, entry, None, outcome, None, done)
                    outcomes.append(outcome)

    asyncio.run(go())
    return outcomes


def pending_of(source: Source, entry: Entry, done: Any) -> Pending:
    signature = ItemSignature(done.signature, done.shingles, done.features)
    return Pending(_article(source, entry, done), done.tags, signature, False)


@pytest.mark.parametrize("size", [100, 7, 3], ids=["one-batch", "batches-of-7", "of-3"])
def test_a_batch_stores_exactly_what_deciding_one_by_one_stores(
    extracted: list[tuple[Source, Entry, Any]], tmp_path: Path, size: int
) -> None:
    """Real pages arriving shuffled, decided in batches of `size`: the same items, statuses,
    duplicates, story ids, decision records and tags as `Poller._decide` one by one in the
    order the batches decide them (each batch by date, then URL)."""
    arrivals = list(range(len(extracted)))
    random.Random(size).shuffle(arrivals)
    pending = [pending_of(*extracted[i]) for i in arrivals]
    store = open_store(tmp_path / "batch.db")
    index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), START)
    order: list[int] = []
    for start in range(0, len(pending), size):
        chunk = pending[start : start + size]
        decided = decide_batch(store, index, chunk, START)
        assert len(decided) == len(chunk)
        order += [arrivals[start + i] for i in decision_order(chunk, START)]
    got = stored(store)
    store.close()

    reference = open_store(tmp_path / "one.db")
    one_by_one(reference, extracted, order)
    expected = stored(reference)
    reference.close()
    assert {row[1] for row in expected} == {"new", "duplicate"}  # the exact layer decided some
    assert {row[5] for row in expected} >= {"text_hash", "canonical_url", "minhash-jaccard"}
    assert len({row[6] for row in expected}) < len(expected)  # some stories have several
    assert any(row[9] for row in expected)  # tagged
    assert got == expected


def test_the_exact_layer_of_a_batch_prefers_the_same_sources_twin_then_the_oldest() -> None:
    from monitor.models import Article
    from monitor.store import ExistingItem

    def article(source: str, url: str, text_hash: str) -> Article:
        return Article(source, url, "http://x/1", None, "t", "text", None, None, None, "full_text",
                       text_hash)  # fmt: skip

    older = ExistingItem(1, "B", "http://x/1?b", None, "t", "h1", START)
    newer = ExistingItem(2, "A", "http://x/1?a", None, "t", "h2", START)
    layer = ExactLayer([(newer, "http://x/1"), (older, "http://x/1")])
    assert layer.classify(article("A", "u", "h9"))[1].ref == "http://x/1?a"  # type: ignore[union-attr]
    assert layer.classify(article("C", "u", "h9"))[1].ref == "http://x/1?b"  # type: ignore[union-attr]
    fresh = replace(article("C", "u", "h1"), canonical_url="http://y/")
    assert layer.classify(fresh) == ("duplicate", layer.classify(fresh)[1])
    assert layer.classify(fresh)[1].method == "text_hash"  # type: ignore[union-attr]
    alone = replace(article("C", "u", "h7"), canonical_url="http://z/")
    assert layer.classify(alone) == ("new", None)
    layer.add(alone)  # decided earlier in the batch: the next with its text is a duplicate
    again = replace(alone, url="v", canonical_url="http://w/")
    assert layer.classify(again)[1].ref == "u"  # type: ignore[union-attr]


def test_a_batch_whose_corrections_changed_stores_nothing_and_a_catch_up_stores_all(
    extracted: list[tuple[Source, Entry, Any]], tmp_path: Path
) -> None:
    """The corrections re-check runs inside the batch's one transaction: a stale view stores
    none of the batch. `decide_batch` first obeys the corrections, then stores every item."""
    store = open_store(tmp_path / "monitor.db")
    index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), START)
    batch = [pending_of(*one) for one in extracted[:6]]
    rows = [NewItem(p.article, START, "new", False, None, p.tags, None) for p in batch[:3]]
    last, undone = index.corrections_seen
    with pytest.raises(CorrectionsChanged):
        store.insert_items(rows, corrections_seen=(last + 1, undone))
    assert store.count_items() == 0  # none of the three
    index.corrections_seen = (last + 1, undone)  # a view the store no longer has
    decided = decide_batch(store, index, batch, START)
    assert index.corrections_seen == (last, undone)  # caught up before deciding
    assert len({d.item_id for d in decided}) == 6
    assert store.count_items() == 6
    store.close()


def test_poll_killed_while_a_batch_waits_loses_nothing_stored_and_stores_it_next_time(
    http_server: LocalServer, tmp_path: Path
) -> None:
    """A real `monitor run` killed with SIGKILL while a batch of new articles waits for its
    window (another source's page is still being fetched, so the batch is not decided yet):
    what was stored before is intact, nothing of the batch is, and the next start fetches
    and stores it, each article once."""
    pages(http_server)
    url = feed(http_server, ["som", "vte"])
    slow_feed = http_server.add("/slow.xml", SLOW_FEED.replace(b"ITEMS", b""))
    http_server.add("/slow.html", b"<html><body><p>Late.</p></body></html>", delay=120)
    sources = {"ASEAN Secretariat": url, "Slow": slow_feed}
    config = write_config(tmp_path, sources, digests=False)
    text = config.read_text("utf-8")
    with DaemonProcess(config) as daemon:
        daemon.wait_for("two items", lambda: len(stored_urls(tmp_path)) == 2, timeout=60)
        assert daemon.stop() == 0
    before = sorted(stored_urls(tmp_path))

    # A batch that waits ten minutes for more articles while the slow page is in flight: the
    # kill lands while it waits.
    config.write_text(text.replace("[poll]\n", "[poll]\ndecide_window_ms = 600000\n"), "utf-8")
    item = f"<item><title>Late</title><link>{http_server.url('/slow.html')}</link></item>"
    http_server.add("/slow.xml", SLOW_FEED.replace(b"ITEMS", item.encode()))
    feed(http_server, ["som", "vte", "moscow"])
    pages(http_server, delay=2.0)  # the slow page is requested before this one is extracted
    with DaemonProcess(config, log_name="daemon2.log") as daemon:
        daemon.wait_for("the new page", lambda: http_server.requests_for("/moscow.html"), 60)
        daemon.wait_for("the slow page", lambda: http_server.requests_for("/slow.html"), 60)
        time.sleep(3)  # extracted and waiting in the batch
        assert daemon.process.poll() is None
        daemon.signal(signal.SIGKILL)
        daemon.process.wait()
    assert sorted(stored_urls(tmp_path)) == before  # the batch stored nothing, lost nothing
    assert query(tmp_path / "monitor.db", "PRAGMA integrity_check") == [("ok",)]

    config.write_text(text, "utf-8")
    http_server.add("/slow.xml", SLOW_FEED.replace(b"ITEMS", b""))
    pages(http_server)
    with DaemonProcess(config, log_name="daemon3.log") as daemon:
        daemon.wait_for("the third item", lambda: len(stored_urls(tmp_path)) == 3, timeout=60)
        assert daemon.stop() == 0
    urls = stored_urls(tmp_path)
    assert sorted(set(urls)) == sorted(urls)
    assert set(before) < set(urls)
    assert any(u.endswith("/moscow.html") for u in urls)


def batches(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The sizes of the batches decided, from the `batch_decided` log lines."""
    return [
        int(r.getMessage().split("count=")[1].split()[0])
        for r in caplog.records
        if r.getMessage().startswith("batch_decided ")
    ]


def test_a_batch_is_decided_when_nothing_else_is_in_flight_not_after_its_window(
    http_server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With a 30-second window, a poll's articles are stored as soon as the last one is
    extracted: no article is left to join the batch."""
    caplog.set_level("INFO", logger="monitor.pipeline")
    names = ["aljazeera.com.helicopter.html", "chron.com.esper-vietnam.html"]
    entries = [{"title": n, "link": page_url(http_server, n), "guid": n} for n in names]
    url = http_server.add("/feed.xml", rss(entries))
    store = open_store(tmp_path / "monitor.db")
    started = time.monotonic()
    outcomes = poll(
        store,
        [Source("A", url)],
        Clock(),
        HttpConfig(),
        config=PollConfig(decide_window_ms=30_000),
    )
    assert time.monotonic() - started < 20
    assert outcomes["A"].new == 2
    assert store.count_items() == 2
    assert batches(caplog) == [2]
    store.close()


def test_a_source_waiting_for_its_batch_gives_its_slot_to_the_next_source(
    http_server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two sources at a time: A's article waits for its batch while B's slow page is in
    flight. A gives up its slot meanwhile, so C is polled too and its article joins the
    same batch: one batch of three, each article stored once."""
    caplog.set_level("INFO", logger="monitor.pipeline")
    names = {
        "A": "aljazeera.com.helicopter.html",
        "B": "chron.com.esper-vietnam.html",
        "C": "rt.com.morales.html",
    }
    http_server.add(
        "/slow/esper.html", (PAGES / names["B"]).read_bytes(), content_type="text/html", delay=3
    )
    sources = []
    for name, page in names.items():
        link = http_server.url("/slow/esper.html") if name == "B" else page_url(http_server, page)
        url = http_server.add(f"/{name}.xml", rss([{"title": page, "link": link, "guid": page}]))
        sources.append(Source(name, url))
    store = open_store(tmp_path / "monitor.db")
    outcomes = poll(store, sources, Clock(), HttpConfig(), config=PollConfig(parallel_sources=2))
    assert [outcomes[s.name].new for s in sources] == [1, 1, 1]
    assert batches(caplog) == [3]
    assert store.count_items() == 3
    store.close()
