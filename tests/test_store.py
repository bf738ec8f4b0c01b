"""Storage on a real SQLite file (and PostgreSQL when MONITOR_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.errors import StoreError
from monitor.models import Article, DuplicateOf, Source, TopicTag
from monitor.store import (
    SCHEMA_VERSION,
    DedupeRecord,
    DigestRecord,
    ItemSignature,
    PollSuccess,
    SeedRecord,
    Store,
    StoryChange,
    StoryInfo,
)
from monitor.tag import Tags

# -- storage -------------------------------------------------------------------------------------


def _postgres_url() -> str | None:
    return os.environ.get("MONITOR_TEST_POSTGRES_URL") or None


def empty_postgres() -> str:
    """The test PostgreSQL database with an empty public schema (skips when not configured)."""
    url = _postgres_url()
    if url is None:
        pytest.skip("PostgreSQL: set MONITOR_TEST_POSTGRES_URL (.ci/run does)")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database URL: a real SQLite file, and PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    yield empty_postgres()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url, now=datetime(2026, 11, 20, tzinfo=UTC))
    yield opened
    opened.close()


NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
SOURCES = [
    Source("ASEAN", "https://asean.org/feed/", priority=1),
    Source("TASS", "https://tass.com/rss/v2.xml", priority=3),
]


def article(n: int, *, source: str = "ASEAN", text: str | None = None, **kw: object) -> Article:
    body = text if text is not None else f"Article number {n} about ASEAN and Russia."
    values: dict[str, object] = {
        "source": source,
        "url": f"https://asean.org/news/{n}/",
        "canonical_url": f"https://asean.org/news/{n}",
        "guid": f"guid-{n}",
        "title": f"Title {n}",
        "text": body,
        "summary": None,
        "published_at": NOW - timedelta(hours=n),
        "language": "en",
        "extraction": "full_text",
        "text_hash": f"{n:064d}",
    }
    values.update(kw)
    return Article(**values)  # type: ignore[arg-type]


def back_to_version(store: Store, version: int, undo: str, at: datetime = NOW) -> None:
    """The database as schema `version` left it: `undo` takes back what came after."""
    with store.engine.begin() as conn:
        conn.execute(sa.text(undo))
        conn.execute(sa.text("DELETE FROM schema_version"))
        conn.execute(
            sa.text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :at)"),
            {"v": version, "at": at},
        )


def test_new_database_is_created_at_the_current_version_in_wal_mode(store: Store) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_reopening_keeps_everything(store_url: str) -> None:
    first = Store.open(store_url, now=NOW)
    first.sync_sources(SOURCES, NOW)
    item_id = first.insert_item(article(1), fetched_at=NOW, status="new", baseline=False)
    first.close()
    again = Store.open(store_url, now=NOW + timedelta(days=1))
    assert again.schema_version() == SCHEMA_VERSION
    [item] = again.list_items()
    assert (item.id, item.title, item.source, item.fetched_at) == (item_id, "Title 1", "ASEAN", NOW)
    assert item.fetched_at.tzinfo is UTC
    again.close()


def test_a_database_from_a_newer_monitor_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Store.open(url, now=NOW).close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION + 1, "2026-11-20"))
    with pytest.raises(StoreError, match="newer than this monitor"):
        Store.open(url, now=NOW)


def test_a_first_start_killed_before_recording_the_version_is_finished_next_time(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Store.open(url, now=NOW).close()
    with sqlite3.connect(tmp_path / "m.db") as conn:  # as a kill -9 right after CREATE TABLE
        conn.execute("DELETE FROM schema_version")
        conn.execute("DROP TABLE digests")
    again = Store.open(url, now=NOW)
    assert again.schema_version() == SCHEMA_VERSION
    assert again.count_pending_digests() == 0  # the missing table was created
    again.close()


def test_an_unknown_schema_version_is_refused_by_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Store.open(url, now=NOW).close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("UPDATE schema_version SET version = 0")
    with pytest.raises(StoreError, match="schema version 0 is not one this monitor knows"):
        Store.open(url, now=NOW)


def test_an_unopenable_database_names_itself(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", "utf-8")
    with pytest.raises(StoreError, match="cannot open database"):
        Store.open(f"sqlite:///{blocker / 'sub' / 'm.db'}", now=NOW)


def test_items_are_found_by_guid_canonical_url_and_text_hash(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    first = store.insert_item(article(1), fetched_at=NOW, status="new", baseline=False)
    by_guid = store.find_item("ASEAN", "guid-1", "https://elsewhere.example/x")
    by_canonical = store.find_item("TASS", None, "https://asean.org/news/1")
    assert by_guid is not None
    assert by_guid.id == first
    assert by_canonical is not None
    assert by_canonical.id == first
    assert by_canonical.source == "ASEAN"
    # A GUID only identifies an item inside its own source.
    assert store.find_item("TASS", "guid-1", "https://elsewhere.example/x") is None
    found = store.find_by_text_hash(f"{1:064d}")
    assert found is not None
    assert found.id == first
    assert store.find_by_text_hash("") is None


def test_a_changed_item_keeps_its_identity_and_records_the_change(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    item_id = store.insert_item(article(1), fetched_at=NOW, status="new", baseline=False)
    later = NOW + timedelta(hours=2)
    changed = article(1, text="Corrected text.", title="Corrected title", text_hash="f" * 64)
    assert store.update_item(item_id, changed, later) is True
    assert store.update_item(item_id, changed, later) is False
    [item] = store.list_items()
    assert (item.id, item.title, item.text) == (item_id, "Corrected title", "Corrected text.")
    assert item.fetched_at == NOW  # first seen stays
    [revision] = store.revisions(item_id)
    assert revision["old_title"] == "Title 1"
    assert revision["new_text_hash"] == "f" * 64


def test_duplicate_of_round_trips(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    dup = DuplicateOf("item", "https://asean.org/news/1/", 1.0, "text_hash")
    store.insert_item(
        article(2, source="TASS"),
        fetched_at=NOW,
        status="duplicate",
        baseline=False,
        duplicate_of=dup,
    )
    [item] = store.list_items(statuses=["duplicate"])
    assert item.duplicate_of == dup
    assert store.list_items(statuses=["new"]) == []


def test_window_selects_by_first_seen_time(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    for n in range(5):
        store.insert_item(
            article(n), fetched_at=NOW + timedelta(hours=n), status="new", baseline=False
        )
    window = store.list_items(since=NOW + timedelta(hours=1), until=NOW + timedelta(hours=3))
    assert [i.title for i in window] == ["Title 1", "Title 2"]


def polled(name: str, at: datetime, *, etag: str | None = None, **fields: Any) -> PollSuccess:
    """A successful poll of `name` at `at`: a 200 with nothing new, next check in 30 minutes,
    unless `fields` say otherwise."""
    poll = PollSuccess(
        name,
        now=at,
        etag=etag,
        last_modified=None,
        next_check_at=at + timedelta(minutes=30),
        outcome="ok",
        http_status=200,
        bytes_received=100,
        elapsed_ms=10,
        new_items=0,
    )
    return replace(poll, **fields)


def test_source_health_success_failure_and_window(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    assert store.source_health("TASS").status == "never"
    store.record_successes(
        [
            polled(
                "ASEAN",
                NOW,
                etag='"abc"',
                last_modified="Thu, 19 Nov 2026 10:00:00 GMT",
                new_items=3,
            )
        ]
    )
    for n in range(2):
        count = store.record_failure(
            "TASS",
            now=NOW + timedelta(minutes=n),
            error_class="timeout",
            error="https://tass.com/rss/v2.xml: deadline exceeded",
            next_check_at=NOW + timedelta(minutes=10),
            retry_after_until=None,
            http_status=None,
            elapsed_ms=60000,
        )
    assert count == 2
    asean = store.source_health("ASEAN")
    assert (asean.status, asean.etag, asean.first_polled_at) == ("ok", '"abc"', NOW)
    tass = store.source_health("TASS")
    assert (tass.status, tass.consecutive_failures, tass.last_error_class) == (
        "failing",
        2,
        "timeout",
    )
    assert tass.last_success_at is None
    assert [h.name for h in store.failures_between(NOW, NOW + timedelta(hours=1))] == ["TASS"]
    assert store.failures_between(NOW + timedelta(hours=1), NOW + timedelta(hours=2)) == []
    # A success clears the failure count but the failure stays in the window's log.
    store.record_successes([polled("TASS", NOW + timedelta(minutes=5))])
    assert store.source_health("TASS").consecutive_failures == 0
    assert [h.name for h in store.failures_between(NOW, NOW + timedelta(hours=1))] == ["TASS"]


def test_successes_are_recorded_together_and_keep_the_first_poll_time(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)

    def ok(name: str, at: datetime, etag: str) -> PollSuccess:
        return polled(name, at, etag=etag, outcome="not_modified", http_status=304)

    store.record_successes([ok("ASEAN", NOW, '"a1"'), ok("TASS", NOW, '"t1"')])
    later = NOW + timedelta(hours=1)
    store.record_successes([ok("ASEAN", later, '"a2"')])
    asean, tass = store.source_health("ASEAN"), store.source_health("TASS")
    assert (asean.etag, asean.first_polled_at, asean.last_success_at) == ('"a2"', NOW, later)
    assert asean.next_check_at == later + timedelta(minutes=30)
    assert (tass.etag, tass.first_polled_at, tass.last_success_at) == ('"t1"', NOW, NOW)
    store.record_successes([])  # nothing to write: no transaction, no error


def test_changing_a_source_url_resets_its_validators(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    store.record_successes([polled("ASEAN", NOW, etag='"abc"', next_check_at=NOW)])
    moved = [Source("ASEAN", "https://asean.org/category/news/feed/", priority=1), SOURCES[1]]
    store.sync_sources(moved, NOW)
    health = store.source_health("ASEAN")
    assert (health.url, health.etag) == ("https://asean.org/category/news/feed/", None)


def test_naive_datetimes_are_refused(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    with pytest.raises((StoreError, sa.exc.StatementError)):
        store.insert_item(article(1), fetched_at=datetime(2026, 1, 1), status="new", baseline=False)


def test_a_version_1_database_is_migrated_and_keeps_its_items(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.open(url, now=NOW)
    store.sync_sources(SOURCES, NOW)
    store.insert_item(article(1), fetched_at=NOW, status="new", baseline=False)
    store.close()
    # Make it what version 1 wrote: no tag tables, version 1 recorded.
    with sqlite3.connect(tmp_path / "old.db") as conn:
        for table in ("delivery_attempts", "digest_items", "digests", "item_topics", "item_facets"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version VALUES (1, '2026-11-01 00:00:00')")
    upgraded = Store.open(url, now=NOW + timedelta(days=1))
    assert upgraded.schema_version() == SCHEMA_VERSION
    tables = set(sa.inspect(upgraded.engine).get_table_names())
    assert {"item_topics", "item_facets", "digests", "digest_items", "delivery_attempts"} <= tables
    [item] = upgraded.list_items()
    assert (item.title, item.topics) == ("Title 1", ())
    upgraded.save_tags(item.id, Tags((TopicTag("energy", 6.0, 5.0, (("energy", "en", 3),)),), {}))
    assert upgraded.list_items(topic="energy")[0].id == item.id
    upgraded.close()


def test_tags_and_facets_round_trip_and_retag_replaces_them(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    tags = Tags(
        topics=(
            TopicTag("diplomacy", 9.0, 6.0, (("Lavrov", "en", 3), ("talks", "en", 2))),
            TopicTag("energy", 5.0, 5.0, (("энергетик*", "ru", 2),)),
        ),
        facets={"countries": ("Russia", "Laos"), "organisations": ("ASEAN",)},
    )
    item_id = store.insert_item(article(1), fetched_at=NOW, status="new", baseline=False, tags=tags)
    [item] = store.list_items()
    assert [t.id for t in item.topics] == ["diplomacy", "energy"]
    assert item.topics[0].evidence == (("Lavrov", "en", 3), ("talks", "en", 2))
    assert item.topics[1].evidence == (("энергетик*", "ru", 2),)
    assert item.facets == {"countries": ("Laos", "Russia"), "organisations": ("ASEAN",)}
    assert [i.id for i in store.list_items(topic="energy")] == [item_id]
    assert store.list_items(topic="health") == []

    count = store.retag(lambda _item: Tags((TopicTag("health", 7.0, 5.0, ()),), {}))
    assert count == 1
    [again] = store.list_items()
    assert [t.id for t in again.topics] == ["health"]
    assert again.facets == {}


def outbox_digest(
    store: Store, start: datetime, end: datetime, item_ids: list[int]
) -> DigestRecord:
    return store.create_digest(
        name="daily",
        window_start=start,
        window_end=end,
        message_id=f"<d.{start:%H}@x>",
        subject="s",
        markdown="m",
        html="<p>h</p>",
        text="t",
        item_ids=item_ids,
        status="pending",
        now=end,
    )


def test_outbox_records_attempts_and_sends_a_window_once(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    ids = [
        store.insert_item(
            article(n), fetched_at=NOW + timedelta(minutes=n), status="new", baseline=False
        )
        for n in range(3)
    ]
    assert store.last_window_end("daily") is None
    end = NOW + timedelta(hours=1)
    digest = outbox_digest(store, NOW, end, ids[:2])
    assert (digest.status, digest.attempts) == ("pending", 0)
    assert outbox_digest(store, NOW, end, ids).id == digest.id  # same window: same record
    assert store.digest_item_ids(digest.id) == ids[:2]
    assert store.last_window_end("daily") == end
    # Items a digest of this name carries are not offered to it again; other names still see them.
    assert [i.id for i in store.list_items(not_in_digest="daily")] == [ids[2]]
    assert len(store.list_items(not_in_digest="weekly")) == 3

    assert [d.id for d in store.due_digests(end)] == [digest.id]
    retry_at = end + timedelta(minutes=5)
    store.record_attempt(
        digest.id,
        channel="email",
        ok=False,
        error="451 try again",
        now=end,
        next_attempt_at=retry_at,
    )
    assert store.due_digests(end + timedelta(minutes=1)) == []
    [due] = store.due_digests(retry_at)
    assert (due.attempts, due.last_error) == (1, "451 try again")
    store.record_attempt(digest.id, channel="email", ok=True, error=None, now=retry_at)
    store.mark_sent(digest.id, retry_at)
    assert store.due_digests(retry_at + timedelta(days=1)) == []
    sent = store.find_digest("daily", NOW, end)
    assert sent is not None
    assert (sent.status, sent.sent_at, sent.attempts, sent.message_id) == (
        "sent",
        retry_at,
        2,
        "<d.07@x>",
    )
    assert [a["ok"] for a in store.delivery_log(digest.id)] == [False, True]


# -- dedupe: seeds, signatures, decisions (schema version 4) -----------------------------------


def dedupe_record(story_id: int, byte: int = 1) -> DedupeRecord:
    return DedupeRecord(
        signature=ItemSignature(bytes([byte]) * 520, 40 + byte, '{"v": 1}'),
        story_id=story_id,
        near=None if byte == 1 else {"result": "none", "shingles": 40 + byte},
        story={"story_id": story_id, "is_new": True},
    )


def test_signatures_and_decisions_round_trip_and_stream_by_first_seen(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    old = store.insert_item(
        article(1), fetched_at=NOW, status="new", baseline=False, dedupe=dedupe_record(3)
    )
    new = store.insert_item(
        article(2, source="TASS"),
        fetched_at=NOW + timedelta(days=1),
        status="new",
        baseline=False,
        dedupe=dedupe_record(3, byte=2),
    )
    bare = store.insert_item(
        article(3), fetched_at=NOW + timedelta(days=2), status="new", baseline=False
    )
    rows = list(store.signatures_since(NOW + timedelta(hours=1), batch=1))
    assert [(r.item_id, r.source, r.story_id, r.shingles) for r in rows] == [(new, "TASS", 3, 42)]
    assert rows[0].signature == bytes([2]) * 520
    assert rows[0].fetched_at == NOW + timedelta(days=1)
    assert [r.item_id for r in store.signatures_since(NOW, batch=1)] == [old, new]
    assert store.count_signatures() == 2
    assert store.decision(old) == (None, {"story_id": 3, "is_new": True})
    assert store.decision(new) == (
        {"result": "none", "shingles": 42},
        {"story_id": 3, "is_new": True},
    )
    assert store.decision(bare) is None
    assert store.max_story_id() == 3
    assert store.story_info([3, 99]) == {3: StoryInfo(2, ("ASEAN", "TASS"), ())}
    # A changed item gets its new signature in place of the old one.
    changed = article(1, text="Corrected text.", text_hash="e" * 64)
    store.update_item(old, changed, NOW, signature=ItemSignature(b"\x07" * 520, 9, "{}"))
    assert store.count_signatures() == 2
    [first, _] = store.signatures_since(NOW)
    assert (first.item_id, first.signature, first.shingles) == (old, b"\x07" * 520, 9)


SEED = SeedRecord(
    name="000_a.txt",
    text_hash="a" * 64,
    title="Seed title",
    published_at=None,
    language="en",
    text_chars=1200,
    signature=b"\x01" * 520,
    shingles=200,
    features='{"v": 1}',
    story_id=7,
    added_at=NOW,
)


def test_seeds_upsert_list_delete_and_join_stories(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    seed = SEED
    store.upsert_seed(seed)
    store.upsert_seed(replace(seed, text_hash="b" * 64, added_at=NOW + timedelta(days=1)))
    [stored] = store.list_seeds()
    assert (stored.text_hash, stored.added_at, stored.signature) == (
        "b" * 64,
        NOW + timedelta(days=1),
        b"\x01" * 520,
    )
    assert store.seed_titles() == {"000_a.txt": "Seed title"}
    assert store.max_story_id() == 7
    store.insert_item(
        article(1), fetched_at=NOW, status="new", baseline=False, dedupe=dedupe_record(7)
    )
    assert store.story_info([7]) == {7: StoryInfo(1, ("ASEAN",), ("000_a.txt",))}
    store.delete_seeds(["000_a.txt"])
    assert store.list_seeds() == []
    assert store.story_info([7]) == {7: StoryInfo(1, ("ASEAN",), ())}


def test_a_version_4_database_gains_seed_date_sources_and_keeps_its_seeds(
    store_url: str,
) -> None:
    store = Store.open(store_url, now=NOW)
    store.upsert_seed(SEED)
    back_to_version(store, 4, "ALTER TABLE seeds DROP COLUMN date_source")
    store.close()
    upgraded = Store.open(store_url, now=NOW + timedelta(days=1))
    assert upgraded.schema_version() == SCHEMA_VERSION == 8
    [seed] = upgraded.list_seeds()
    assert (seed.name, seed.story_id, seed.date_source) == (SEED.name, 7, None)
    upgraded.upsert_seed(replace(SEED, date_source="metadata"))
    assert upgraded.list_seeds()[0].date_source == "metadata"
    upgraded.close()


def test_story_changes_move_items_and_seeds_with_their_decisions(store: Store) -> None:
    store.sync_sources(SOURCES, NOW)
    store.upsert_seed(SEED)
    first = store.insert_item(
        article(1), fetched_at=NOW, status="new", baseline=False, dedupe=dedupe_record(3)
    )
    moved = StoryChange(article(1).url, False, 7, {"story_id": 7, "explanation": "moved"})
    store.insert_item(
        article(2),
        fetched_at=NOW,
        status="new",
        baseline=False,
        dedupe=replace(dedupe_record(7), changes=(moved,)),
    )
    store.change_stories([StoryChange(SEED.name, True, 9, {"story_id": 9})])
    item = store.get_item(str(first))
    assert item is not None
    assert item.story_id == 7
    decision = store.decision(first)
    assert decision is not None
    assert decision[1]["explanation"] == "moved"
    assert store.list_seeds()[0].story_id == 9


def test_first_step_stories_are_stored_read_back_and_counted_among_the_ids(
    store: Store,
) -> None:
    """An item whose story is a merge keeps its first-step story (`story_part`): a restart
    rebuilds the index from it, a later story id is never one of them, and a merge that
    changes only the story of an item leaves its stored decision as it was."""
    store.sync_sources(SOURCES, NOW)
    part = replace(dedupe_record(3), story_part=12)
    first = store.insert_item(article(1), fetched_at=NOW, status="new", baseline=False, dedupe=part)
    assert [(r.item_id, r.story_id, r.story_part) for r in store.signatures_since(NOW)] == [
        (first, 3, 12)
    ]
    assert store.max_story_id() == 12  # no new story takes the id of a merged one's part
    regrouped = StoryChange(article(1).url, False, 5, {}, 14)  # only its story changed
    store.insert_item(
        article(2),
        fetched_at=NOW,
        status="new",
        baseline=False,
        dedupe=replace(dedupe_record(5), changes=(regrouped,)),
    )
    rows = {r.item_id: (r.story_id, r.story_part) for r in store.signatures_since(NOW)}
    assert rows[first] == (5, 14)
    assert store.decision(first) == (None, {"story_id": 3, "is_new": True})
    store.change_stories([StoryChange(article(1).url, False, 6, {"story_id": 6})])
    rows = {r.item_id: (r.story_id, r.story_part) for r in store.signatures_since(NOW)}
    assert rows[first] == (6, None)  # a story of its own again: no part apart from it


def test_a_version_7_database_gains_first_step_stories_and_keeps_its_items(
    store_url: str,
) -> None:
    store = Store.open(store_url, now=NOW)
    store.sync_sources(SOURCES, NOW)
    item_id = store.insert_item(
        article(1), fetched_at=NOW, status="new", baseline=False, dedupe=dedupe_record(3)
    )
    back_to_version(store, 7, "ALTER TABLE items DROP COLUMN story_part")
    store.close()
    upgraded = Store.open(store_url, now=NOW + timedelta(days=1))
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION == 8
        [row] = upgraded.signatures_since(NOW)
        assert (row.item_id, row.story_id, row.story_part) == (item_id, 3, None)
    finally:
        upgraded.close()


def test_a_version_3_database_is_migrated_and_keeps_its_items(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v3.db'}"
    store = Store.open(url, now=NOW)
    store.sync_sources(SOURCES, NOW)
    store.insert_item(article(1), fetched_at=NOW, status="new", baseline=False)
    store.close()
    with sqlite3.connect(tmp_path / "v3.db") as conn:
        for table in ("seeds", "signatures", "decisions"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP INDEX ix_items_story_id")
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version VALUES (3, '2026-11-01 00:00:00')")
    upgraded = Store.open(url, now=NOW + timedelta(days=1))
    assert upgraded.schema_version() == SCHEMA_VERSION == 8
    inspector = sa.inspect(upgraded.engine)
    assert {"seeds", "signatures", "decisions"} <= set(inspector.get_table_names())
    assert "ix_items_story_id" in {i["name"] for i in inspector.get_indexes("items")}
    [item] = upgraded.list_items()
    assert (item.title, item.story_id) == ("Title 1", None)
    assert upgraded.decision(item.id) is None
    assert list(upgraded.signatures_since(NOW - timedelta(days=1))) == []
    upgraded.insert_item(
        article(2), fetched_at=NOW, status="new", baseline=False, dedupe=dedupe_record(1)
    )
    assert upgraded.count_signatures() == 1
    upgraded.close()
