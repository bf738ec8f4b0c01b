"""Corrections (issue 16) on a real SQLite file and PostgreSQL: split an item off its story,
take a topic off an item, undo; the story and tag layers obey them through the real poll
pipeline against a local HTTP site."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.cluster.gate import DecisionGate
from monitor.config import DedupeConfig
from monitor.dedupe.seeds import parse_seed
from monitor.dedupe.story import StoryFeatures, StoryIndex, extract_features, features_to_json
from monitor.errors import CorrectionError
from monitor.models import Correction, HttpConfig, Item, Source, TopicTag
from monitor.pipeline.corrections import (
    list_corrections,
    remove_tag,
    split_item,
    undo_correction,
)
from monitor.pipeline.index import Decision, DedupeIndex
from monitor.store import SCHEMA_VERSION, CorrectionsChanged, DedupeRecord, ItemSignature, Store
from monitor.tag import Tags
from tests.servers import LocalServer
from tests.test_dedupe_e2e import LIM_VISIT, MFA_REMARKS, VNA_TALKS, seed_page
from tests.test_pipeline import NO_CORPUS, START, Clock, poll, rss
from tests.test_store import article, back_to_version, empty_postgres

# Three reports of one event (Lim Jock Hoi's Moscow visit, February 2020), one per source.
REPORTS = {
    "A": (LIM_VISIT, "ASEAN Secretary General to visit Russia", datetime(2020, 2, 2, 9)),
    "B": (VNA_TALKS, "ASEAN Secretary General, Russian FM hold talks", datetime(2020, 2, 3, 12)),
    "C": (MFA_REMARKS, "Lavrov's remarks at talks with Lim Jock Hoi", datetime(2020, 2, 3, 15)),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store: a real SQLite file, and PostgreSQL when configured."""
    url = f"sqlite:///{tmp_path / 'monitor.db'}"
    if request.param == "postgresql":
        url = empty_postgres()
    opened = Store.open(url, now=START)
    yield opened
    opened.close()


def serve_reports(server: LocalServer) -> list[Source]:
    """Each source's feed carries its report of the visit, with its real date."""
    sources = []
    for name, (seed, title, day) in REPORTS.items():
        path = f"/{name.lower()}/report.html"
        server.add(
            path, seed_page(seed, title=title, before=[], after=[]), content_type="text/html"
        )
        when = format_datetime(day.replace(tzinfo=UTC))
        feed = rss([{"title": title, "link": server.url(path), "date": when}])
        server.add(f"/{name.lower()}.xml", feed)
        sources.append(Source(name, server.url(f"/{name.lower()}.xml"), language="en"))
    return sources


def by_source(store: Store) -> dict[str, Item]:
    return {i.source: i for i in store.list_items()}


@pytest.fixture
def story(
    http_server: LocalServer, store: Store, http_config: HttpConfig
) -> tuple[Store, list[Source], Clock]:
    """Three stored reports of one event in one story, polled through the real pipeline."""
    sources = serve_reports(http_server)
    clock = Clock()
    polled = poll(store, sources, clock, http_config, dedupe=WIDE)
    assert sum(len(o.item_ids) for o in polled.values()) == 3
    items = by_source(store)
    assert len({i.story_id for i in items.values()}) == 1, "the three reports are one story"
    return store, sources, clock


# The reports are from 2020: keep them in the story index whatever the test clock says.
WIDE = DedupeConfig(retention=timedelta(days=36500), story_retention=timedelta(days=36500))


def test_a_split_item_gets_a_story_of_its_own_and_the_others_keep_theirs(
    story: tuple[Store, list[Source], Clock],
) -> None:
    store, _sources, _clock = story
    before = by_source(store)
    old = before["C"].story_id
    assert old is not None
    correction = split_item(store, before["C"].id, via="web")
    after = by_source(store)
    assert correction.kind == "split"
    assert (correction.item_id, correction.story_id, correction.via) == (before["C"].id, old, "web")
    assert correction.new_story_id == after["C"].story_id
    assert correction.new_story_id is not None
    assert correction.new_story_id > old
    assert after["A"].story_id == after["B"].story_id == old
    info = store.story_info([old, correction.new_story_id])
    assert (info[old].size, info[correction.new_story_id].size) == (2, 1)
    decision = store.decision(before["C"].id)
    assert decision is not None
    assert f"correction {correction.id} (web)" in decision[1]["explanation"]
    assert list_corrections(store) == [correction]


def test_a_repeated_split_returns_the_same_correction_and_changes_nothing(
    story: tuple[Store, list[Source], Clock],
) -> None:
    store, _sources, _clock = story
    item = by_source(store)["C"]
    first = split_item(store, item.id)
    again = split_item(store, item.id, via="web")
    assert again == first
    assert len(list_corrections(store)) == 1
    assert store.get_item(str(item.id)).story_id == first.new_story_id  # type: ignore[union-attr]


def test_bad_requests_name_the_item_topic_or_correction(
    story: tuple[Store, list[Source], Clock],
) -> None:
    store, _sources, _clock = story
    items = by_source(store)
    with pytest.raises(CorrectionError, match="item 999: no such item"):
        split_item(store, 999)
    with pytest.raises(CorrectionError, match="item 999: no such item"):
        remove_tag(store, 999, "diplomacy")
    with pytest.raises(CorrectionError, match=rf"item {items['A'].id} is not tagged .*'no-such'"):
        remove_tag(store, items["A"].id, "no-such")
    with pytest.raises(CorrectionError, match="correction 42: no such correction"):
        undo_correction(store, 42)
    with pytest.raises(CorrectionError, match="via 'mail'"):
        split_item(store, items["A"].id, via="mail")
    lone = store.insert_item(
        article(9, source="A"),
        fetched_at=START,
        status="new",
        baseline=False,
        dedupe=lone_record(999),
    )
    with pytest.raises(CorrectionError, match=rf"item {lone} is already alone in story 999"):
        split_item(store, lone)
    split = split_item(store, items["C"].id)
    undo_correction(store, split.id, dedupe=WIDE)
    with pytest.raises(CorrectionError, match=rf"correction {split.id} was already undone"):
        undo_correction(store, split.id)
    [kept] = list_corrections(store)  # recorded, never deleted
    assert kept.undone_at is not None


def lone_record(story_id: int) -> DedupeRecord:
    """What the layers store for an unrelated article alone in story `story_id`."""
    features = _features("Volcano erupts in Iceland", "Lava flows near Grindavik again.")
    return DedupeRecord(
        signature=ItemSignature(bytes(520), 10, features_to_json(features)),
        story_id=story_id,
        near=None,
        story={"story_id": story_id, "is_new": True},
    )


def test_the_next_poll_of_an_earlier_similar_report_does_not_merge_the_split_item_back(
    story: tuple[Store, list[Source], Clock],
    http_server: LocalServer,
    http_config: HttpConfig,
) -> None:
    """A late arrival dated before the story makes the story layer decide every member again
    (a fresh index, rebuilt from the store as after a restart): the split item stays apart."""
    store, sources, clock = story
    items = by_source(store)
    correction = split_item(store, items["C"].id)
    assert correction.new_story_id is not None
    late = serve_late_reprint(http_server)
    clock.advance(timedelta(hours=1))
    polled = poll(store, [*sources, late], clock, http_config, dedupe=WIDE)
    assert len(polled["D"].item_ids) == 1
    after = by_source(store)
    assert after["A"].story_id == after["B"].story_id == correction.story_id
    assert after["C"].story_id == correction.new_story_id != after["A"].story_id
    assert after["D"].story_id == correction.story_id  # D joined the others

    # Control: without the correction the story layer takes the item back.
    undo_correction(store, correction.id, dedupe=WIDE)
    assert by_source(store)["C"].story_id == correction.story_id


def serve_late_reprint(server: LocalServer) -> Source:
    """Source D reprints the remarks, dated a day before the other reports."""
    seed, title, _day = REPORTS["C"]
    server.add(
        "/d/report.html",
        seed_page(seed, title=title, before=["Reprinted from the MFA"], after=["Share"]),
        content_type="text/html",
    )
    when = format_datetime(datetime(2020, 2, 1, 20, tzinfo=UTC))
    server.add(
        "/d.xml", rss([{"title": title, "link": server.url("/d/report.html"), "date": when}])
    )
    return Source("D", server.url("/d.xml"), language="en")


def test_a_live_index_of_another_process_obeys_a_split_before_its_next_decision(
    story: tuple[Store, list[Source], Clock],
) -> None:
    """A daemon's index (here a second index on the same store, as another process holds)
    loaded before the split: it takes the split and the new story id before it decides."""
    store, _sources, clock = story
    live = DedupeIndex.load(store, NO_CORPUS, WIDE, clock())
    items = by_source(store)
    correction = split_item(store, items["C"].id)
    assert correction.new_story_id is not None
    assert live.stories.story_of(items["C"].url) == correction.story_id  # not yet seen
    assert live.obey_corrections(store, clock())
    assert live.stories.story_of(items["C"].url) == correction.new_story_id
    assert live.stories.story_of(items["A"].url) == correction.story_id
    assert not live.obey_corrections(store, clock())  # nothing new: no rebuild
    # The next story this index founds takes an id past the correction's: no collision.
    fresh = live.stories.assign(
        "https://example.org/unrelated",
        _features("Volcano erupts in Iceland", "Lava flows near Grindavik again."),
        clock(),
    )
    assert fresh.is_new
    assert fresh.story_id > correction.new_story_id


def _features(title: str, text: str) -> StoryFeatures:
    return extract_features(title, text, START, "en")


def test_untag_removes_the_tag_retag_keeps_it_off_and_undo_restores_it(store: Store) -> None:
    store.sync_sources([Source("ASEAN", "https://asean.org/feed/")], START)
    tags = Tags(
        (
            TopicTag("diplomacy", 3.0, 2.0, (("visit", "en", 2),)),
            TopicTag("trade", 2.5, 2.0, (("trade", "en", 1),)),
        ),
        {"countries": ("Russia",)},
    )
    first = store.insert_item(article(1), fetched_at=START, status="new", baseline=False, tags=tags)
    other = store.insert_item(article(2), fetched_at=START, status="new", baseline=False, tags=tags)
    correction = remove_tag(store, first, "trade", via="web")
    assert (correction.kind, correction.topic, correction.item_id) == ("untag", "trade", first)
    assert remove_tag(store, first, "trade") == correction  # a replayed POST: nothing changes
    assert _topics(store, first) == ["diplomacy"]
    assert _topics(store, other) == ["diplomacy", "trade"]  # other items are unaffected

    assert store.retag(lambda item: tags) == 2
    assert _topics(store, first) == ["diplomacy"]
    assert _topics(store, other) == ["diplomacy", "trade"]
    # The source changes the article: it is re-extracted and re-tagged, the topic stays off.
    changed = article(1, text="Article number 1, updated: trade talks.", text_hash="f" * 64)
    assert store.update_item(first, changed, START + timedelta(hours=1), tags)
    assert _topics(store, first) == ["diplomacy"]

    undone = undo_correction(store, correction.id)
    assert undone.undone_at is not None
    restored = store.get_item(str(first))
    assert restored is not None
    assert [t for t in restored.topics if t.id == "trade"] == [tags.topics[1]]
    assert store.retag(lambda item: tags) == 2
    assert _topics(store, first) == ["diplomacy", "trade"]


def _topics(store: Store, item_id: int) -> list[str]:
    item = store.get_item(str(item_id))
    assert item is not None
    return sorted(t.id for t in item.topics)


def test_a_version_6_database_gains_the_corrections_table_and_keeps_its_items(
    store: Store,
) -> None:
    store.sync_sources([Source("ASEAN", "https://asean.org/feed/")], START)
    store.insert_item(article(1), fetched_at=START, status="new", baseline=False)
    url = store.engine.url.render_as_string(hide_password=False)
    back_to_version(store, 6, "DROP TABLE corrections", START)
    store.close()
    upgraded = Store.open(url, now=START + timedelta(days=1))
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION == 8
        assert "corrections" in sa.inspect(upgraded.engine).get_table_names()
        [item] = upgraded.list_items()
        assert item.title == "Title 1"
        assert upgraded.list_corrections() == []
        assert upgraded.corrections_state() == (0, 0)
    finally:
        upgraded.close()


# -- cluster mode: corrections under the decision lock ---------------------------------------------


def test_a_split_waits_for_a_nodes_decision_and_every_node_obeys_it_with_no_id_collision(
    http_server: LocalServer, http_config: HttpConfig
) -> None:
    url = empty_postgres()
    clock = Clock()
    stores = [Store.open(url, now=clock()) for _ in range(3)]
    gates: list[DecisionGate] = []
    try:
        sources = [*serve_reports(http_server), serve_late_reprint(http_server)]
        unrelated = serve_unrelated(http_server)
        for store in stores[:2]:
            store.sync_sources([*sources, unrelated], clock())
            store.log_decisions = True
        gates = [DecisionGate(s) for s in stores[:2]]
        first = DedupeIndex.load(stores[0], NO_CORPUS, WIDE, clock())
        poll(stores[0], sources[:3], clock, http_config, index=first, gate=gates[0])
        with gates[1].holding():  # the second node starts: its index holds the story
            second = DedupeIndex.load(stores[1], NO_CORPUS, WIDE, clock())
        items = by_source(stores[2])
        assert len({i.story_id for i in items.values()}) == 1

        # A correction from a third process waits while a node holds the decision lock.
        done: list[Correction] = []
        with gates[0].holding():
            worker = threading.Thread(
                target=lambda: done.append(split_item(stores[2], items["C"].id))
            )
            worker.start()
            worker.join(timeout=1.0)
            assert worker.is_alive()
            assert done == []
        worker.join(timeout=30)
        [correction] = done
        assert correction.new_story_id is not None

        # The second node, whose index predates the split, polls the earlier reprint and an
        # unrelated report: before deciding it obeys the split and skips the split's story id.
        clock.advance(timedelta(hours=1))
        poll(stores[1], [sources[3], unrelated], clock, http_config, index=second, gate=gates[1])
        after = by_source(stores[2])
        assert after["C"].story_id == correction.new_story_id
        assert (
            after["A"].story_id == after["B"].story_id == after["D"].story_id == correction.story_id
        )
        assert after["E"].story_id not in {correction.story_id, correction.new_story_id}
        assert second.stories.story_of(items["C"].url) == correction.new_story_id
    finally:
        for gate in gates:
            gate.close()
        for store in stores:
            store.close()


def serve_unrelated(server: LocalServer) -> Source:
    """Source E: a report of another event, dated with the others."""
    when = format_datetime(datetime(2020, 2, 3, 10, tzinfo=UTC))
    link = server.url("/data/pages/aljazeera.com.helicopter.html")
    server.add("/e.xml", rss([{"title": "US helicopter crash", "link": link, "date": when}]))
    return Source("E", server.url("/e.xml"), language="en")


# -- a correction landing between a decision and its insert (no cluster lock) ----------------------


class SplitInTheWindow(DedupeIndex):
    """A live index during whose first decision another process (its own store connection)
    records a split: the moment between the catch-up and the insert."""

    other: Store
    split_id: int
    corrections: list[Correction]

    def decide(self, **kwargs: Any) -> Decision:
        decision = super().decide(**kwargs)
        if not self.corrections:
            self.corrections.append(split_item(self.other, self.split_id))
        return decision


def test_a_correction_recorded_while_a_daemon_decides_makes_it_decide_again(
    story: tuple[Store, list[Source], Clock],
    http_server: LocalServer,
    http_config: HttpConfig,
) -> None:
    store, _sources, clock = story
    items = by_source(store)
    unrelated = serve_unrelated(http_server)
    store.sync_sources([unrelated], clock())
    index = SplitInTheWindow.load(store, NO_CORPUS, WIDE, clock())
    assert isinstance(index, SplitInTheWindow)
    other = Store.open(store.engine.url.render_as_string(hide_password=False), now=clock())
    index.other, index.split_id, index.corrections = other, items["C"].id, []
    try:
        clock.advance(timedelta(hours=1))
        poll(store, [unrelated], clock, http_config, index=index)
    finally:
        other.close()
    [correction] = index.corrections
    after = by_source(store)
    # The split took the next free story id while the unrelated report was being decided
    # with the same id in mind: the insert was refused and the report decided again.
    assert after["C"].story_id == correction.new_story_id
    assert after["E"].story_id not in {correction.story_id, correction.new_story_id}
    assert index.corrections_seen == store.corrections_state()


def test_an_insert_is_refused_when_corrections_changed_since_the_decision(store: Store) -> None:
    store.sync_sources([Source("ASEAN", "https://asean.org/feed/")], START)
    first = store.insert_item(
        article(1), fetched_at=START, status="new", baseline=False, dedupe=lone_record(1)
    )
    store.insert_item(
        article(2), fetched_at=START, status="new", baseline=False, dedupe=lone_record(1)
    )
    split_item(store, first)

    def third(seen: tuple[int, int]) -> int:
        return store.insert_item(
            article(3),
            fetched_at=START,
            status="new",
            baseline=False,
            dedupe=lone_record(3),
            corrections_seen=seen,
        )

    with pytest.raises(CorrectionsChanged):
        third((0, 0))
    assert [i.title for i in store.list_items()] == ["Title 1", "Title 2"]  # nothing stored
    third(store.corrections_state())
    assert len(store.list_items()) == 3


# -- the constraint inside the story layer ------------------------------------------------------


def test_the_story_layer_keeps_a_corrected_pair_apart_in_every_arrival_order() -> None:
    seeds = Path(__file__).resolve().parents[1] / "config" / "corpus"
    features = {}
    for name, (seed, title, day) in REPORTS.items():
        text = parse_seed(seed, (seeds / seed).read_text("utf-8")).text
        features[name] = extract_features(title, text, day.replace(tzinfo=UTC), "en")

    def partition(order: tuple[str, ...], apart: dict[str, set[str]]) -> frozenset[frozenset[str]]:
        index = StoryIndex()
        index.set_apart(apart)
        for n, name in enumerate(order):
            index.assign(name, features[name], START + timedelta(minutes=n))
        found: dict[int | None, set[str]] = {}
        for name in features:
            found.setdefault(index.story_of(name), set()).add(name)
        return frozenset(frozenset(g) for g in found.values())

    orders = list(itertools.permutations(features))
    one_event = {partition(o, {}) for o in orders}
    assert one_event == {frozenset({frozenset({"A", "B", "C"})})}  # whatever the order
    corrected = {partition(o, {"C": {"A", "B"}}) for o in orders}
    assert corrected == {frozenset({frozenset({"A", "B"}), frozenset({"C"})})}
