"""Store plumbing: the connection base class, row records, row <-> model helpers. I/O: database."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.errors import StoreError
from monitor.models import DuplicateOf, Item, SourceHealth, TopicTag, rank_tags
from monitor.store.schema import item_facets, item_topics, items, sources

if TYPE_CHECKING:  # the tagger (its rules engine) loads only where articles are tagged
    from monitor.tag import Tags


@dataclass(frozen=True, slots=True)
class ExistingItem:
    id: int
    source: str
    url: str
    guid: str | None
    title: str
    text_hash: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DigestRecord:
    """A digest in the outbox."""

    id: int
    name: str
    window_start: datetime
    window_end: datetime
    message_id: str
    subject: str
    markdown: str
    html: str
    text: str
    status: str  # pending | sent | empty
    created_at: datetime
    sent_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class PollSuccess:
    """One successful poll of a source, as `Store.record_successes` writes it."""

    name: str
    now: datetime
    etag: str | None
    last_modified: str | None
    next_check_at: datetime
    outcome: str
    http_status: int | None
    bytes_received: int
    elapsed_ms: int
    new_items: int


class StoreBase:
    """The engine and one-transaction-per-call plumbing that every part of `Store` shares."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._source_ids: dict[str, int] = {}
        # Cluster mode: write each decision to `index_log` for the other nodes to replay.
        self.log_decisions = False
        self.last_logged = 0  # the highest `index_log` id this store wrote (`log_index`)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """A trivial query; raises StoreError when the database cannot answer."""
        with self._begin() as conn:
            conn.execute(sa.text("SELECT 1"))

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc

    def source_id(self, name: str) -> int:
        if name not in self._source_ids:
            with self._begin() as conn:
                found = conn.execute(sa.select(sources.c.id).where(sources.c.name == name)).scalar()
            if found is None:
                raise StoreError(f"unknown source {name!r}")
            self._source_ids[name] = int(found)
        return self._source_ids[name]


def item_query() -> sa.Select[Any]:
    """Items joined with their source's name and priority: what `item_from_row` reads."""
    query = sa.select(
        items, sources.c.name.label("source_name"), sources.c.priority.label("source_priority")
    )
    return query.join(sources, sources.c.id == items.c.source_id)


def replace_tags(conn: Connection, item_id: int, tags: Tags) -> None:
    conn.execute(item_topics.delete().where(item_topics.c.item_id == item_id))
    conn.execute(item_facets.delete().where(item_facets.c.item_id == item_id))
    insert_tags(conn, item_id, tags)


def insert_tags(conn: Connection, item_id: int, tags: Tags) -> None:
    """The tags of an item that has none yet (a new one: nothing to delete first)."""
    topics, facets = tag_rows(tags)
    if topics:
        conn.execute(item_topics.insert(), [{"item_id": item_id, **t} for t in topics])
    if facets:
        conn.execute(item_facets.insert(), [{"item_id": item_id, **f} for f in facets])


def insert_tags_many(conn: Connection, tagged: Sequence[tuple[int, Tags]]) -> None:
    """`insert_tags` for several new items, one statement per table."""
    topics: list[dict[str, Any]] = []
    facets: list[dict[str, Any]] = []
    for item_id, tags in tagged:
        item_topics_rows, item_facets_rows = tag_rows(tags)
        topics += [{"item_id": item_id, **t} for t in item_topics_rows]
        facets += [{"item_id": item_id, **f} for f in item_facets_rows]
    if topics:
        conn.execute(item_topics.insert(), topics)
    if facets:
        conn.execute(item_facets.insert(), facets)


def tag_rows(tags: Tags) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An item's `item_topics` and `item_facets` rows, without the item id."""
    topics = [
        {
            "topic_id": t.id,
            "score": t.score,
            "threshold": t.threshold,
            "evidence": json.dumps([list(e) for e in t.evidence], ensure_ascii=False),
        }
        for t in tags.topics
    ]
    values = sorted({(kind, v) for kind, vs in tags.facets.items() for v in vs})
    return topics, [{"kind": kind, "value": v} for kind, v in values]


def with_tags(conn: Connection, found: list[Item]) -> list[Item]:
    """Attach stored topics and facets to items (one query each, in chunks)."""
    if not found:
        return found
    topics: dict[int, list[TopicTag]] = {}
    facets: dict[int, dict[str, list[str]]] = {}
    ids = [i.id for i in found]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for row in conn.execute(sa.select(item_topics).where(item_topics.c.item_id.in_(chunk))):
            evidence = tuple((str(t), str(lang), int(n)) for t, lang, n in json.loads(row.evidence))
            topics.setdefault(row.item_id, []).append(
                TopicTag(row.topic_id, row.score, row.threshold, evidence)
            )
        for row in conn.execute(
            sa.select(item_facets)
            .where(item_facets.c.item_id.in_(chunk))
            .order_by(item_facets.c.kind, item_facets.c.value)
        ):
            facets.setdefault(row.item_id, {}).setdefault(row.kind, []).append(row.value)
    out = []
    for item in found:
        tags = rank_tags(topics.get(item.id, []))
        kinds = {kind: tuple(values) for kind, values in facets.get(item.id, {}).items()}
        out.append(replace(item, topics=tags, facets=kinds))
    return out


def aware(value: datetime) -> datetime:
    # Aggregates (MAX) bypass the column type on some backends.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def dup_values(dup: DuplicateOf | None) -> dict[str, Any]:
    if dup is None:
        return {"dup_kind": None, "dup_ref": None, "dup_similarity": None, "dup_method": None}
    return {
        "dup_kind": dup.kind,
        "dup_ref": dup.ref,
        "dup_similarity": dup.similarity,
        "dup_method": dup.method,
    }


def item_from_row(row: Any) -> Item:
    dup = None
    if row.dup_kind:
        dup = DuplicateOf(
            kind=row.dup_kind, ref=row.dup_ref, similarity=row.dup_similarity, method=row.dup_method
        )
    return Item(
        id=row.id,
        source=row.source_name,
        url=row.url,
        canonical_url=row.canonical_url,
        guid=row.guid,
        title=row.title,
        published_at=row.published_at,
        fetched_at=row.fetched_at,
        language=row.language,
        status=row.status,
        extraction=row.extraction,
        text=row.text,
        summary=row.summary,
        text_chars=row.text_chars,
        baseline=bool(row.baseline),
        duplicate_of=dup,
        story_id=row.story_id,
        source_priority=row.source_priority,
    )


def health_from_row(row: Any) -> SourceHealth:
    status: Literal["ok", "failing", "never"]
    if row.last_attempt_at is None:
        status = "never"
    elif row.consecutive_failures:
        status = "failing"
    else:
        status = "ok"
    return SourceHealth(
        name=row.name,
        url=row.url,
        status=status,
        last_success_at=row.last_success_at,
        consecutive_failures=row.consecutive_failures,
        last_error_class=row.last_error_class,
        last_error=row.last_error,
        next_check_at=row.next_check_at,
        etag=row.etag,
        last_modified=row.last_modified,
        first_polled_at=row.first_polled_at,
        retry_after_until=row.retry_after_until,
    )


def create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def safe_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"
