"""The cold poll's shortcuts (issue 14): an exact duplicate follows its original's story without
a decision of its own, through moves, rebuilds and corrections; a batch of new items is
written one statement per table, and a kill during that write loses nothing stored."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import DedupeConfig, PollConfig
from monitor.dedupe.follow import Followers, follow_marker, follow_match, followed
from monitor.dedupe.story import StoryMove
from monitor.models import HttpConfig, Item, Source
from monitor.pipeline.batch import decide_batch
from monitor.pipeline.corrections import split_item, undo_correction
from monitor.pipeline.index import DedupeIndex
from monitor.store import NewItem, Store
from monitor.store.schema import signatures
from tests.servers import LocalServer
from tests.test_batch import SOURCES, extracted, one_by_one, open_store, pending_of, stored
from tests.test_corrections import REPORTS, WIDE
from tests.test_dedupe_e2e import seed_page
from tests.test_pipeline import NO_CORPUS, START, Clock, poll, rss

__all__ = ["extracted"]  # the fixture of tests/test_batch.py, shared


def features_by_url(store: Store) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT i.url, s.features FROM items i JOIN signatures s ON s.item_id = i.id")
        )
        return {r.url: r.features for r in rows}


def story_by_url(store: Store) -> dict[str, int | None]:
    return {i.url: i.story_id for i in store.list_items()}


def assert_followers_share_their_originals_story(store: Store) -> int:
    """Every stored follower has its original's story; returns how many there are."""
    stories = story_by_url(store)
    count = 0
    for url, features in features_by_url(store).items():
        original = followed(features)
        if original is not None:
            assert stories[url] == stories[original], url
            count += 1
    return count


def test_a_known_text_hash_takes_the_originals_story_without_reading_its_features(
    extracted: list[tuple[Source, Any, Any]], tmp_path: Path
) -> None:
    """The copy's features are never read (here they are not even JSON): it is stored, a
    duplicate by text hash, with the original's story and the marker in place of features,
    and it is not a member of the story index."""
    store = open_store(tmp_path / "monitor.db")
    index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), START)
    source, entry, done = extracted[0]
    original = pending_of(source, entry, done)
    copy_entry = type(entry)("http://127.0.0.1:9/b/copy.html", "copy", None, None, START)
    copy = pending_of(SOURCES[1], copy_entry, done)
    broken = type(copy.signature)(copy.signature.signature, copy.signature.shingles, "{broken")
    copy = type(copy)(copy.article, copy.tags, broken, copy.baseline)
    members = len(index.stories)
    decided = decide_batch(store, index, [original, copy], START)
    assert [d.status for d in decided] == ["new", "duplicate"]
    stories = story_by_url(store)
    assert stories[copy.article.url] == stories[original.article.url] is not None
    assert features_by_url(store)[copy.article.url] == follow_marker(original.article.url)
    assert len(index.stories) == members + 1  # the original only
    assert index.stories.story_of(copy.article.url) is None
    assert index.followers.original(copy.article.url) == original.article.url
    item = store.get_item(copy.article.url)
    assert item is not None
    assert item.duplicate_of is not None
    assert item.duplicate_of.method == "text_hash"
    decision = store.decision(item.id)
    assert decision is not None
    assert "exact duplicate" in decision[1]["explanation"]
    store.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_followers_keep_their_originals_story_through_late_arrivals_and_a_rebuild(
    extracted: list[tuple[Source, Any, Any]], tmp_path: Path, seed: int
) -> None:
    """Real pages decided one by one in a shuffled arrival order (earlier articles arriving
    late move later ones to other stories): every stored follower has its original's story,
    and an index rebuilt from the store has the same members, stories and followers as the
    live one."""
    arrivals = list(range(len(extracted)))
    random.Random(seed).shuffle(arrivals)
    store = open_store(tmp_path / "monitor.db")
    clock = Clock()
    live = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), clock())
    one_by_one(store, extracted, arrivals, index=live)
    assert assert_followers_share_their_originals_story(store) >= 3
    rebuilt = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), clock())
    urls = [i.url for i in store.list_items()]
    assert {u: rebuilt.stories.story_of(u) for u in urls} == {
        u: live.stories.story_of(u) for u in urls
    }
    assert {u: rebuilt.followers.original(u) for u in urls} == {
        u: live.followers.original(u) for u in urls
    }
    store.close()


def test_the_followers_moves_follow_each_originals_move() -> None:
    followers = Followers()
    followers.add("b", "a")
    followers.add("c", "a")
    followers.add("a", "a")  # never its own follower
    match = follow_match(7, "x", threshold=0.3)
    moves = followers.moves([StoryMove("a", None, match), StoryMove("z", None, match)])
    assert [(m.key, m.match.story_id) for m in moves] == [("a", 7), ("b", 7), ("c", 7), ("z", 7)]
    assert moves[1].match.matched_key == "a"
    assert followers.keep(lambda key: key != "a") == 2
    assert followers.original("b") is None
    assert len(followers) == 0


# -- corrections ----------------------------------------------------------------------------


@pytest.fixture
def copied(
    http_server: LocalServer, tmp_path: Path, http_config: HttpConfig
) -> tuple[Store, Clock, LocalServer]:
    """Three reports of one event in one story (tests/test_corrections.py), and source D
    listing C's very page under another URL, a little later: D follows C."""
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", now=START)
    sources = serve(http_server, {**REPORTS, "D": REPORTS["C"]})
    polled = poll(store, sources, Clock(), http_config, dedupe=WIDE)
    assert sum(len(o.item_ids) for o in polled.values()) == 4
    items = by_source(store)
    assert len({i.story_id for i in items.values()}) == 1
    assert followed(features_by_url(store)[items["D"].url]) == items["C"].url
    return store, Clock(), http_server


def serve(server: LocalServer, reports: dict[str, Any], hour: int = 0) -> list[Source]:
    out = []
    for name, (seed, title, day) in reports.items():
        path = f"/{name.lower()}/report.html"
        page = seed_page(seed, title=title, before=[], after=[])
        server.add(path, page, content_type="text/html")
        when = format_datetime((day + timedelta(hours=hour)).replace(tzinfo=UTC))
        entry = {"title": title, "link": server.url(path), "date": when}
        server.add(f"/{name.lower()}.xml", rss([entry]))
        out.append(Source(name, server.url(f"/{name.lower()}.xml"), language="en"))
    return out


def by_source(store: Store) -> dict[str, Item]:
    return {i.source: i for i in store.list_items()}


def test_a_split_original_takes_its_exact_duplicates_along_and_undo_brings_them_back(
    copied: tuple[Store, Clock, LocalServer],
) -> None:
    store, _clock, _server = copied
    before = by_source(store)
    old = before["C"].story_id
    correction = split_item(store, before["C"].id)
    after = by_source(store)
    assert after["C"].story_id == after["D"].story_id == correction.new_story_id != old
    assert after["A"].story_id == after["B"].story_id == old
    # The copy is not kept apart from its original; the others are.
    apart = store.apart_keys()[before["C"].url]
    assert before["D"].url not in apart
    assert before["A"].url in apart
    rebuilt = DedupeIndex.load(store, NO_CORPUS, WIDE, START)
    assert rebuilt.followers.original(before["D"].url) == before["C"].url
    undo_correction(store, correction.id, dedupe=WIDE)
    undone = by_source(store)
    assert undone["D"].story_id == undone["C"].story_id
    assert_followers_share_their_originals_story(store)
    store.close()


def test_a_split_exact_duplicate_stays_apart_and_follows_again_once_undone(
    copied: tuple[Store, Clock, LocalServer], http_config: HttpConfig
) -> None:
    store, clock, server = copied
    before = by_source(store)
    correction = split_item(store, before["D"].id)
    after = by_source(store)
    assert after["D"].story_id == correction.new_story_id != after["C"].story_id
    assert after["C"].story_id == before["C"].story_id
    index = DedupeIndex.load(store, NO_CORPUS, WIDE, START)
    assert index.followers.original(before["D"].url) is None  # set apart: it no longer follows
    # A later copy of the same page still follows the original, not the split copy.
    sources = serve(server, {"E": REPORTS["C"]}, hour=1)
    poll(store, sources, clock, http_config, dedupe=WIDE, index=index)
    now = by_source(store)
    assert now["E"].story_id == now["C"].story_id
    assert now["D"].story_id == correction.new_story_id
    undo_correction(store, correction.id, dedupe=WIDE)
    undone = by_source(store)
    assert undone["D"].story_id == undone["C"].story_id
    decision = store.decision(undone["D"].id)
    assert decision is not None
    assert f"correction {correction.id} undone" in decision[1]["explanation"]
    store.close()


# -- batched writes -------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import timedelta
    import monitor.store as store_module
    from monitor.models import Source
    from monitor.store import NewItem, Store
    from tests.test_store import NOW, article

    store = Store.open(sys.argv[1], now=NOW)
    store.sync_sources([Source("ASEAN", "http://127.0.0.1:9/feed.xml")], NOW)

    def batch(first, count):
        return [
            NewItem(article(n), NOW, "new", False, None, None, None)
            for n in range(first, first + count)
        ]

    store.insert_items(batch(0, 50))
    real = store_module.insert_tags_many

    def stall(conn, tagged):  # the items' rows are written, not committed: killed here
        real(conn, tagged)
        print("writing", flush=True)
        time.sleep(120)

    store_module.insert_tags_many = stall
    store.insert_items(batch(50, 500))
    """
)


def test_a_batch_write_killed_midway_loses_nothing_already_stored(tmp_path: Path) -> None:
    from tests.test_store import article

    """A real process killed with SIGKILL while its batch of 500 items is half written (the
    items' rows inserted, its transaction open): the 50 items stored before are intact,
    none of the 500 is stored, the database is sound, and the batch can be written again."""
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"writing"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    store = Store.open(url, now=START)
    urls = {i.url for i in store.list_items(limit=10_000)}
    assert urls == {f"https://asean.org/news/{n}/" for n in range(50)}
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
        assert conn.execute(sa.select(sa.func.count()).select_from(signatures)).scalar() == 0
    again = [NewItem(article(n), START, "new", False, None, None, None) for n in range(50, 550)]
    store.insert_items(again)
    assert store.count_items() == 550
    store.close()


def test_a_batch_of_items_is_stored_as_inserting_them_one_by_one_stores(
    extracted: list[tuple[Source, Any, Any]], tmp_path: Path
) -> None:
    """The same rows, ids and story changes, whether the batch is inserted in one call or
    item by item (a later item's story change does not reach an item inserted after it)."""
    pending = [pending_of(*one) for one in extracted]
    batch_store = open_store(tmp_path / "batch.db")
    index = DedupeIndex.load(batch_store, NO_CORPUS, DedupeConfig(), START)
    decide_batch(batch_store, index, pending, START)
    got = stored(batch_store)
    batch_store.close()
    single = open_store(tmp_path / "single.db")
    index = DedupeIndex.load(single, NO_CORPUS, DedupeConfig(), START)
    for one in sorted(pending, key=lambda p: (p.article.published_at or START, p.article.url)):
        decide_batch(single, index, [one], START)
    assert stored(single) == got
    single.close()


def test_find_items_answers_as_find_item_does_for_each_entry(tmp_path: Path) -> None:
    from tests.test_store import article

    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", now=START)
    store.sync_sources(
        [Source("ASEAN", "http://127.0.0.1:9/a.xml"), Source("B", "http://127.0.0.1:9/b.xml")],
        START,
    )
    for n in range(6):
        store.insert_item(article(n), fetched_at=START, status="new", baseline=False)
    store.insert_item(article(7, source="B", guid="guid-1"), fetched_at=START, status="new",
                      baseline=False)  # fmt: skip
    store.insert_item(article(8, source="B", canonical_url="https://asean.org/news/2"),
                      fetched_at=START, status="new", baseline=False)  # fmt: skip
    keys: list[tuple[str | None, str]] = [
        ("guid-1", "https://x/none"),
        (None, "https://asean.org/news/2"),
        ("guid-9", "https://asean.org/news/8"),
        ("nope", "https://x/nothing"),
        (None, "https://asean.org/news/3"),
    ]
    for source in ("ASEAN", "B", "C"):
        if source == "C":
            store.sync_sources([Source("C", "http://127.0.0.1:9/c.xml")], START)
        expected = [store.find_item(source, g, c) for g, c in keys]
        assert store.find_items(source, keys) == expected
        assert any(e is not None for e in expected)
        assert None in expected
    store.close()


def test_the_follower_marker_is_not_story_features() -> None:
    from monitor.dedupe.story import features_from_json

    marker = follow_marker("https://example.org/a?b=1")
    assert followed(marker) == "https://example.org/a?b=1"
    assert followed('{"v":1}') is None
    with pytest.raises(ValueError, match="not story features"):
        features_from_json(marker)  # an older version skips the row instead of misreading it


def test_followers_move_with_their_originals_and_the_stories_do_not_depend_on_arrival_order() -> (
    None
):
    """The story dev set's reports, each followed by an exact copy, decided by `DedupeIndex`
    in shuffled orders: earlier reports arriving late move later ones to other stories, and
    every copy's story (its decision, then each move the index reports) is always its
    original's; the partition, copies included, is the same in every order."""
    from monitor.dedupe.near import sign_text
    from monitor.models import DuplicateOf
    from tests.test_story import _event_rows, _features

    rows = _event_rows("train")
    feats = {}
    for r in rows:
        when = datetime.fromisoformat(r["published_at"]).replace(hour=12, tzinfo=UTC)
        feats[r["id"]] = _features(r["title"], r["text"], when, r["language"])
    signatures_of = {r["id"]: sign_text(r["text"]) for r in rows}

    def partition(order: list[int]) -> tuple[frozenset[frozenset[str]], int]:
        index = DedupeIndex(DedupeConfig())
        stories: dict[str, int] = {}
        moved = 0
        start = datetime(2026, 1, 1, tzinfo=UTC)
        for n, i in enumerate(order):
            key = rows[i]["id"]
            for copy in (key, f"{key}#copy"):
                exact = (
                    ("duplicate", DuplicateOf("item", key, 1.0, "text_hash"))
                    if copy != key
                    else ("new", None)
                )
                signature, shingles = signatures_of[key]
                decision = index.decide(
                    key=copy,
                    source=f"source-{copy}",
                    signature=signature,
                    shingles=shingles,
                    features=feats[key] if copy == key else "{not read}",
                    exact=exact,  # type: ignore[arg-type]
                    at=start + timedelta(minutes=n),
                )
                stories[copy] = decision.story.story_id
                for move in decision.moves:
                    stories[move.key] = move.match.story_id
                    moved += move.key.endswith("#copy")
        for r in rows:
            assert stories[f"{r['id']}#copy"] == stories[r["id"]] == index.stories.story_of(r["id"])
            assert index.followers.original(f"{r['id']}#copy") == r["id"]
        groups: dict[int, set[str]] = {}
        for key, story in stories.items():
            groups.setdefault(story, set()).add(key)
        return frozenset(frozenset(g) for g in groups.values()), moved

    order = list(range(len(rows)))
    expected, _ = partition(order)
    assert len(expected) < len(rows)  # reports were grouped: the test can fail
    rng = random.Random(14)
    moves = 0
    for _ in range(3):
        rng.shuffle(order)
        got, moved = partition(order)
        assert got == expected
        moves += moved
    assert moves > 0  # copies were moved with their originals


def test_once_the_workers_run_they_parse_the_feeds_and_parse_errors_keep_their_class(
    http_server: LocalServer, http_config: HttpConfig, tmp_path: Path
) -> None:
    """With the worker processes started (a cold poll), feeds are parsed in them: a feed's
    entries are stored as before, and a page that is not a feed or a broken feed fails
    with the same error class and message as when parsed in the polling process."""
    import asyncio

    from monitor.errors import ParseError
    from monitor.fetch import Fetcher, make_client
    from monitor.parse import parse_feed
    from monitor.pipeline import Poller, make_pool
    from monitor.pipeline.poll import _started
    from tests.test_pipeline import TAXONOMY, three_articles

    http_server.add("/feed.xml", rss(three_articles(http_server)[:2]))
    bodies = {
        "page": (b"<html><body><p>A page.</p></body></html>", "text/html"),
        "note": (b'<?xml version="1.0"?><note><to>x</to></note>', "application/xml"),
    }
    for name, (body, kind) in bodies.items():
        http_server.add(f"/{name}.xml", body, content_type=kind)
    sources = [Source(n, http_server.url(f"/{n}.xml")) for n in ("feed", *bodies)]
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", now=START)
    store.sync_sources(sources, START)
    index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), START)

    async def go() -> dict[str, Any]:
        with make_pool(1, TAXONOMY) as pool:
            pool.submit(int).result()  # the workers start, as the first extraction starts them
            assert _started(pool)
            async with make_client(http_config) as client:
                fetcher = Fetcher(client, http_config)
                poller = Poller(store, fetcher, pool, PollConfig(), index=index, clock=Clock())
                return {o.source: o for o in await poller.poll_all(sources)}

    outcomes = asyncio.run(go())
    assert (outcomes["feed"].outcome, outcomes["feed"].new) == ("ok", 2)
    health = {h.name: h for h in store.list_source_health()}
    for name, (body, kind) in bodies.items():
        url = http_server.url(f"/{name}.xml")
        with pytest.raises(ParseError) as here:
            parse_feed(body, url=url, headers={"content-type": kind})
        assert outcomes[name].outcome == "failed"
        assert outcomes[name].error == str(here.value)
        assert health[name].last_error_class == here.value.error_class
    assert {health[n].last_error_class for n in bodies} == {"not_a_feed"}
    store.close()


def test_the_near_layer_loads_minhash_without_the_rest_of_datasketch() -> None:
    """In a fresh interpreter: signing a text imports neither datasketch's package nor scipy,
    and a later `import datasketch` gives the very same classes."""
    code = textwrap.dedent(
        """
        import sys
        from monitor.dedupe.near import LeanMinHash, MinHash, sign_text
        sign_text("one two three four five six seven eight nine ten eleven twelve")
        print(sorted(m for m in ("scipy", "datasketch", "datasketch.lsh") if m in sys.modules))
        import datasketch
        print(datasketch.LeanMinHash is LeanMinHash and datasketch.MinHash is MinHash)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == ["[]", "True"]
