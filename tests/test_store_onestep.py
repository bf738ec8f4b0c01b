"""In the decision lock's transaction on PostgreSQL a new item's rows are written in one
statement (`monitor.store.onestep`): the same rows as the statements written one by one."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from monitor.models import Article, Source, TopicTag
from monitor.store import DedupeRecord, ItemSignature, NewItem, Store, StoryChange
from monitor.tagging.engine import Tags
from tests.test_store import empty_postgres

pytestmark = pytest.mark.postgres
NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
TAGS = Tags(
    (
        TopicTag("trade", 0.5, 0.3, (("tariff", "en", 2),)),
        TopicTag("energy", 0.4, 0.3, (("oil", "en", 1),)),
    ),
    {"countries": ("Russia", "Viet Nam"), "officials": ("Sergey Lavrov",)},
)


def new_item(
    url: str, *, tags: Tags | None = TAGS, changes: tuple[StoryChange, ...] = ()
) -> NewItem:
    article = Article(
        "s",
        url,
        url,
        f"guid:{url}",
        "Talks in Moscow",
        "Text of the talks.",
        "Summary",
        NOW,
        "en",
        "full",
        "hash-" + url[-1],
    )
    record = DedupeRecord(
        ItemSignature(b"\x01\x02" * 64, 120, '{"title_terms": []}'),
        3,
        {"result": "none", "indexed": 7},
        {"story_id": 3, "is_new": True},
        changes,
    )
    return NewItem(article, NOW, "new", False, None, tags, record)


def rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Each table's rows of each item, its id replaced by its URL."""
    queries = {
        "items": "SELECT url, guid, title, text, text_hash, text_chars, status, baseline,"
        " published_at, fetched_at, story_id, dup_kind FROM items",
        "topics": "SELECT i.url, t.topic_id, t.score, t.threshold, t.evidence"
        " FROM item_topics t JOIN items i ON i.id = t.item_id",
        "facets": "SELECT i.url, f.kind, f.value"
        " FROM item_facets f JOIN items i ON i.id = f.item_id",
        "signatures": "SELECT i.url, s.signature, s.shingles, s.features"
        " FROM signatures s JOIN items i ON i.id = s.item_id",
        "decisions": "SELECT i.url, d.near, d.story"
        " FROM decisions d JOIN items i ON i.id = d.item_id",
        "log": "SELECT i.url, l.kind"
        " FROM index_log l JOIN items i ON i.id = l.item_id ORDER BY l.id",
    }
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {k: [tuple(r) for r in conn.execute(sa.text(q))] for k, q in queries.items()}
    finally:
        engine.dispose()


def by_item(found: dict[str, list[tuple[object, ...]]], url: str) -> dict[str, list[object]]:
    return {k: sorted(repr(r[1:]) for r in v if r[0] == url) for k, v in found.items()}


@pytest.mark.parametrize("tags", [TAGS, Tags((), {}), None], ids=["tags", "no-tags", "untagged"])
def test_one_statement_writes_the_rows_the_statements_one_by_one_write(tags: Tags | None) -> None:
    url = empty_postgres()
    store = Store.open(url, now=NOW)
    try:
        store.sync_sources([Source("s", "http://127.0.0.1/feed")], NOW)
        store.log_decisions = True
        [first] = store.insert_items([new_item("http://127.0.0.1/a", tags=tags)])
        with store.engine.connect() as conn:
            conn.begin()
            [second] = store.insert_items([new_item("http://127.0.0.1/b", tags=tags)], conn=conn)
            conn.commit()
        assert second > first
        assert store.last_logged == store.last_index_log_id()
    finally:
        store.close()
    found = rows(url)
    one, other = by_item(found, "http://127.0.0.1/a"), by_item(found, "http://127.0.0.1/b")
    for table in ("topics", "facets", "signatures", "decisions", "log"):
        assert one[table] == other[table], table
    assert found["log"][-1] == ("http://127.0.0.1/b", "insert")
    assert bool(one["topics"]) == bool(tags and tags.topics)


def test_one_statement_applies_the_story_changes_and_logs_them() -> None:
    url = empty_postgres()
    store = Store.open(url, now=NOW)
    try:
        store.sync_sources([Source("s", "http://127.0.0.1/feed")], NOW)
        store.log_decisions = True
        store.insert_items([new_item("http://127.0.0.1/a")])
        moved = StoryChange("http://127.0.0.1/a", False, 9, {"story_id": 9})
        with store.engine.connect() as conn:
            conn.begin()
            store.insert_items([new_item("http://127.0.0.1/b", changes=(moved,))], conn=conn)
            conn.commit()
    finally:
        store.close()
    found = rows(url)
    assert [r[1] for r in found["log"] if r[0] == "http://127.0.0.1/b"] == ["insert", "moves"]
    [story] = [r[2] for r in found["decisions"] if r[0] == "http://127.0.0.1/a"]
    assert json.loads(str(story)) == {"story_id": 9}
    assert [r[10] for r in found["items"] if r[0] == "http://127.0.0.1/a"] == [9]
