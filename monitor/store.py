"""SQLAlchemy Core storage: schema, versioned migrations, source state and items. I/O: database."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from monitor.errors import StoreError
from monitor.models import Article, DuplicateOf, Item, Source, SourceHealth, TopicTag
from monitor.tag import Tags

SCHEMA_VERSION = 3


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=5),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("first_polled_at", UTCDateTime),
    sa.Column("last_attempt_at", UTCDateTime),
    sa.Column("last_success_at", UTCDateTime),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("last_error_class", sa.String(32)),
    sa.Column("last_error", sa.Text),
    sa.Column("next_check_at", UTCDateTime),
    sa.Column("retry_after_until", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("guid", sa.Text),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("canonical_url", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary", sa.Text),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("text_chars", sa.Integer, nullable=False),
    sa.Column("language", sa.String(8)),
    sa.Column("extraction", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("baseline", sa.Boolean, nullable=False, default=False),
    sa.Column("published_at", UTCDateTime),
    sa.Column("fetched_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("dup_kind", sa.String(8)),
    sa.Column("dup_ref", sa.Text),
    sa.Column("dup_similarity", sa.Float),
    sa.Column("dup_method", sa.String(32)),
    sa.Column("story_id", sa.Integer),
    sa.Index("ix_items_source_guid", "source_id", "guid"),
    sa.Index("ix_items_canonical_url", "canonical_url"),
    sa.Index("ix_items_text_hash", "text_hash"),
    sa.Index("ix_items_fetched_at", "fetched_at"),
)

# An item whose text or title changed later keeps its identity; the change is recorded here.
item_revisions = sa.Table(
    "item_revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False, index=True),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("old_title", sa.Text, nullable=False),
    sa.Column("old_text_hash", sa.String(64), nullable=False),
    sa.Column("new_text_hash", sa.String(64), nullable=False),
    sa.Column("old_text", sa.Text, nullable=False),
)

# One row per poll of a source: what the digest's health block and `sources list` read.
fetch_log = sa.Table(
    "fetch_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source_id", sa.Integer, sa.ForeignKey("sources.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # ok | not_modified | failed
    sa.Column("http_status", sa.Integer),
    sa.Column("error_class", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("bytes_received", sa.Integer, nullable=False, default=0),
    sa.Column("elapsed_ms", sa.Integer, nullable=False, default=0),
    sa.Column("new_items", sa.Integer, nullable=False, default=0),
    sa.Index("ix_fetch_log_source_at", "source_id", "at"),
)

# Topic tags with their evidence, and facet values, per item (schema version 2).
item_topics = sa.Table(
    "item_topics",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("topic_id", sa.String(64), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),  # JSON [[term, lang, count], ...]
    sa.Index("ix_item_topics_topic", "topic_id"),
)

item_facets = sa.Table(
    "item_facets",
    metadata,
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),  # countries | organisations | officials
    sa.Column("value", sa.String(200), primary_key=True),
    sa.Index("ix_item_facets_value", "kind", "value"),
)


# The digest outbox (schema version 3): a rendered digest is stored before it is sent, so an
# SMTP outage loses nothing and a retry reuses the same Message-ID.
digests = sa.Table(
    "digests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("window_start", UTCDateTime, nullable=False),
    sa.Column("window_end", UTCDateTime, nullable=False),
    sa.Column("message_id", sa.String(300), nullable=False, unique=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("markdown", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending | sent | empty
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("name", "window_start", "window_end", name="uq_digests_window"),
)

# Which items a digest included: "seen" (items) stays separate from "included in digest N".
digest_items = sa.Table(
    "digest_items",
    metadata,
    sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Index("ix_digest_items_item", "item_id"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("digest_id", sa.Integer, sa.ForeignKey("digests.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # email | markdown
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error", sa.Text),
)


def _create_tables(*names: str) -> Callable[[Connection], None]:
    """A migration that adds whole tables. Tables are never changed in place: a later change
    to one of them is a migration of its own that checks what already exists."""

    def migrate(conn: Connection) -> None:
        metadata.create_all(conn, tables=[metadata.tables[n] for n in names], checkfirst=True)

    return migrate


# Upgrades from each stored version to the next: MIGRATIONS[v] takes a database from v to v+1.
# A new database is created at SCHEMA_VERSION directly from `metadata`.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_tables("item_topics", "item_facets"),
    2: _create_tables("digests", "digest_items", "delivery_attempts"),
}


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


class Store:
    """The database. Each public method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._source_ids: dict[str, int] = {}

    @classmethod
    def open(cls, url: str, *, now: datetime) -> Store:
        """Connect, create or migrate the schema. Raises StoreError naming the database."""
        try:
            engine = _create_engine(url)
            store = cls(engine)
            store._migrate(now)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {_safe_url(url)}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot open database {_safe_url(url)}: {exc}") from exc
        return store

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from exc

    # -- schema -------------------------------------------------------------------------------

    def _migrate(self, now: datetime) -> None:
        with self.engine.begin() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table("schema_version"):
                metadata.create_all(conn)
                conn.execute(schema_version.insert().values(version=SCHEMA_VERSION, applied_at=now))
                return
            current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
            current = int(current or 0)
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"database schema version {current} is newer than this monitor "
                    f"({SCHEMA_VERSION}); upgrade monitor"
                )
            for version in range(current, SCHEMA_VERSION):
                MIGRATIONS[version](conn)
                conn.execute(schema_version.insert().values(version=version + 1, applied_at=now))

    def schema_version(self) -> int:
        with self._begin() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one())

    # -- sources ------------------------------------------------------------------------------

    def sync_sources(self, configured: Sequence[Source], now: datetime) -> None:
        """Make the sources table match the config; a changed URL resets the validators."""
        with self._begin() as conn:
            rows = {r.name: r for r in conn.execute(sa.select(sources))}
            for s in configured:
                row = rows.get(s.name)
                if row is None:
                    conn.execute(
                        sources.insert().values(
                            name=s.name,
                            url=s.url,
                            kind=s.kind,
                            priority=s.priority,
                            consecutive_failures=0,
                            created_at=now,
                        )
                    )
                elif (row.url, row.kind, row.priority) != (s.url, s.kind, s.priority):
                    values: dict[str, Any] = {"kind": s.kind, "priority": s.priority}
                    if row.url != s.url:
                        values |= {
                            "url": s.url,
                            "etag": None,
                            "last_modified": None,
                            "next_check_at": None,
                            "retry_after_until": None,
                        }
                    conn.execute(sources.update().where(sources.c.id == row.id).values(**values))
            self._source_ids = {
                r.name: r.id for r in conn.execute(sa.select(sources.c.name, sources.c.id))
            }

    def source_id(self, name: str) -> int:
        if name not in self._source_ids:
            with self._begin() as conn:
                found = conn.execute(sa.select(sources.c.id).where(sources.c.name == name)).scalar()
            if found is None:
                raise StoreError(f"unknown source {name!r}")
            self._source_ids[name] = int(found)
        return self._source_ids[name]

    def source_health(self, name: str) -> SourceHealth:
        with self._begin() as conn:
            row = conn.execute(sa.select(sources).where(sources.c.name == name)).one_or_none()
        if row is None:
            raise StoreError(f"unknown source {name!r}")
        return _health(row)

    def list_source_health(self, names: Sequence[str] | None = None) -> list[SourceHealth]:
        query = sa.select(sources).order_by(sources.c.priority, sources.c.name)
        if names is not None:
            query = query.where(sources.c.name.in_(list(names)))
        with self._begin() as conn:
            return [_health(r) for r in conn.execute(query)]

    def record_success(
        self,
        name: str,
        *,
        now: datetime,
        etag: str | None,
        last_modified: str | None,
        next_check_at: datetime,
        outcome: str,
        http_status: int | None,
        bytes_received: int,
        elapsed_ms: int,
        new_items: int,
    ) -> None:
        sid = self.source_id(name)
        with self._begin() as conn:
            first = conn.execute(
                sa.select(sources.c.first_polled_at).where(sources.c.id == sid)
            ).scalar()
            conn.execute(
                sources.update()
                .where(sources.c.id == sid)
                .values(
                    etag=etag,
                    last_modified=last_modified,
                    last_attempt_at=now,
                    last_success_at=now,
                    consecutive_failures=0,
                    last_error_class=None,
                    last_error=None,
                    next_check_at=next_check_at,
                    retry_after_until=None,
                    first_polled_at=first or now,
                )
            )
            conn.execute(
                fetch_log.insert().values(
                    source_id=sid,
                    at=now,
                    outcome=outcome,
                    http_status=http_status,
                    bytes_received=bytes_received,
                    elapsed_ms=elapsed_ms,
                    new_items=new_items,
                )
            )

    def record_failure(
        self,
        name: str,
        *,
        now: datetime,
        error_class: str,
        error: str,
        next_check_at: datetime,
        retry_after_until: datetime | None,
        http_status: int | None,
        elapsed_ms: int,
    ) -> int:
        """Record a failed poll; returns the new count of consecutive failures."""
        sid = self.source_id(name)
        with self._begin() as conn:
            conn.execute(
                sources.update()
                .where(sources.c.id == sid)
                .values(
                    last_attempt_at=now,
                    consecutive_failures=sources.c.consecutive_failures + 1,
                    last_error_class=error_class,
                    last_error=error[:2000],
                    next_check_at=next_check_at,
                    retry_after_until=retry_after_until,
                )
            )
            conn.execute(
                fetch_log.insert().values(
                    source_id=sid,
                    at=now,
                    outcome="failed",
                    http_status=http_status,
                    error_class=error_class,
                    error=error[:2000],
                    elapsed_ms=elapsed_ms,
                )
            )
            return int(
                conn.execute(
                    sa.select(sources.c.consecutive_failures).where(sources.c.id == sid)
                ).scalar_one()
            )

    def failures_between(self, start: datetime, end: datetime) -> list[SourceHealth]:
        """Sources with at least one failed poll in [start, end), for the digest's health block."""
        failed = (
            sa.select(fetch_log.c.source_id)
            .where(fetch_log.c.outcome == "failed", fetch_log.c.at >= start, fetch_log.c.at < end)
            .distinct()
        )
        query = (
            sa.select(sources)
            .where(sources.c.id.in_(failed))
            .order_by(sources.c.priority, sources.c.name)
        )
        with self._begin() as conn:
            return [_health(r) for r in conn.execute(query)]

    # -- items --------------------------------------------------------------------------------

    def find_item(self, source: str, guid: str | None, canonical: str) -> ExistingItem | None:
        """The stored item this entry is: same GUID in the same source, or same canonical URL."""
        sid = self.source_id(source)
        cond = items.c.canonical_url == canonical
        if guid:
            cond = sa.or_(cond, sa.and_(items.c.source_id == sid, items.c.guid == guid))
        # Prefer the same source's row, then the oldest.
        query = (
            sa.select(
                items.c.id,
                sources.c.name,
                items.c.url,
                items.c.guid,
                items.c.title,
                items.c.text_hash,
                items.c.updated_at,
            )
            .join(sources, sources.c.id == items.c.source_id)
            .where(cond)
            .order_by(sa.case((items.c.source_id == sid, 0), else_=1), items.c.id)
            .limit(1)
        )
        with self._begin() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else ExistingItem(*row)

    def find_by_text_hash(self, text_hash: str) -> ExistingItem | None:
        if not text_hash:
            return None
        query = (
            sa.select(
                items.c.id,
                sources.c.name,
                items.c.url,
                items.c.guid,
                items.c.title,
                items.c.text_hash,
                items.c.updated_at,
            )
            .join(sources, sources.c.id == items.c.source_id)
            .where(items.c.text_hash == text_hash)
            .order_by(items.c.id)
            .limit(1)
        )
        with self._begin() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else ExistingItem(*row)

    def insert_item(
        self,
        article: Article,
        *,
        fetched_at: datetime,
        status: str,
        baseline: bool,
        duplicate_of: DuplicateOf | None = None,
        tags: Tags | None = None,
    ) -> int:
        """Store a new item (and its tags) in one transaction; returns its id."""
        with self._begin() as conn:
            result = conn.execute(
                items.insert().values(
                    source_id=self.source_id(article.source),
                    guid=article.guid,
                    url=article.url,
                    canonical_url=article.canonical_url,
                    title=article.title,
                    summary=article.summary,
                    text=article.text,
                    text_hash=article.text_hash,
                    text_chars=len(article.text),
                    language=article.language,
                    extraction=article.extraction,
                    status=status,
                    baseline=baseline,
                    published_at=article.published_at,
                    fetched_at=fetched_at,
                    updated_at=fetched_at,
                    **_dup_values(duplicate_of),
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            if tags is not None:
                _replace_tags(conn, int(key[0]), tags)
            return int(key[0])

    def update_item(
        self, item_id: int, article: Article, now: datetime, tags: Tags | None = None
    ) -> bool:
        """Replace an item's text, title (and tags), recording the old version.
        False if unchanged."""
        with self._begin() as conn:
            row = conn.execute(
                sa.select(items.c.title, items.c.text, items.c.text_hash).where(
                    items.c.id == item_id
                )
            ).one()
            if row.text_hash == article.text_hash and row.title == article.title:
                conn.execute(items.update().where(items.c.id == item_id).values(updated_at=now))
                return False
            conn.execute(
                item_revisions.insert().values(
                    item_id=item_id,
                    changed_at=now,
                    old_title=row.title,
                    old_text_hash=row.text_hash,
                    new_text_hash=article.text_hash,
                    old_text=row.text,
                )
            )
            conn.execute(
                items.update()
                .where(items.c.id == item_id)
                .values(
                    title=article.title,
                    text=article.text,
                    text_hash=article.text_hash,
                    text_chars=len(article.text),
                    summary=article.summary,
                    extraction=article.extraction,
                    language=article.language,
                    updated_at=now,
                )
            )
            if tags is not None:
                _replace_tags(conn, item_id, tags)
            return True

    def revisions(self, item_id: int) -> list[dict[str, Any]]:
        query = (
            sa.select(item_revisions)
            .where(item_revisions.c.item_id == item_id)
            .order_by(item_revisions.c.id)
        )
        with self._begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def list_items(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Sequence[str] | None = None,
        source: str | None = None,
        topic: str | None = None,
        not_in_digest: str | None = None,
        limit: int | None = None,
    ) -> list[Item]:
        """Items by first-seen time (`fetched_at`), oldest first, with their tags."""
        query = sa.select(
            items, sources.c.name.label("source_name"), sources.c.priority.label("source_priority")
        )
        query = query.join(sources, sources.c.id == items.c.source_id)
        if since is not None:
            query = query.where(items.c.fetched_at >= since)
        if until is not None:
            query = query.where(items.c.fetched_at < until)
        if statuses:
            query = query.where(items.c.status.in_(list(statuses)))
        if source is not None:
            query = query.where(sources.c.name == source)
        if topic is not None:
            tagged = sa.select(item_topics.c.item_id).where(item_topics.c.topic_id == topic)
            query = query.where(items.c.id.in_(tagged))
        if not_in_digest is not None:
            # Items that a sent (or pending) digest of this name already carries.
            carried = (
                sa.select(digest_items.c.item_id)
                .join(digests, digests.c.id == digest_items.c.digest_id)
                .where(digests.c.name == not_in_digest, digests.c.status != "empty")
            )
            query = query.where(items.c.id.not_in(carried))
        query = query.order_by(items.c.fetched_at, items.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._begin() as conn:
            rows = list(conn.execute(query))
            return _with_tags(conn, [_item(r) for r in rows])

    def get_item(self, ref: str) -> Item | None:
        """An item by numeric id or by URL (as given or canonical)."""
        query = sa.select(
            items, sources.c.name.label("source_name"), sources.c.priority.label("source_priority")
        )
        query = query.join(sources, sources.c.id == items.c.source_id)
        if ref.isdigit():
            query = query.where(items.c.id == int(ref))
        else:
            query = query.where(sa.or_(items.c.url == ref, items.c.canonical_url == ref))
        with self._begin() as conn:
            row = conn.execute(query.order_by(items.c.id).limit(1)).one_or_none()
            return None if row is None else _with_tags(conn, [_item(row)])[0]

    def save_tags(self, item_id: int, tags: Tags) -> None:
        """Replace an item's topic tags and facet values."""
        with self._begin() as conn:
            _replace_tags(conn, item_id, tags)

    def retag(self, tag: Callable[[Item], Tags], *, batch: int = 500) -> int:
        """Recompute every item's tags with `tag`, one transaction per batch; returns the count."""
        done = 0
        last_id = 0
        while True:
            page = self._items_after(last_id, batch)
            if not page:
                return done
            results = [(item.id, tag(item)) for item in page]
            with self._begin() as conn:
                for item_id, tags in results:
                    _replace_tags(conn, item_id, tags)
            done += len(page)
            last_id = page[-1].id

    def _items_after(self, last_id: int, limit: int) -> list[Item]:
        query = sa.select(
            items, sources.c.name.label("source_name"), sources.c.priority.label("source_priority")
        )
        query = query.join(sources, sources.c.id == items.c.source_id)
        query = query.where(items.c.id > last_id).order_by(items.c.id).limit(limit)
        with self._begin() as conn:
            return [_item(r) for r in conn.execute(query)]

    # -- digests (the outbox) --------------------------------------------------------------------

    def last_window_end(self, name: str) -> datetime | None:
        """Where the next window of digest `name` starts: the end of its latest recorded one."""
        query = sa.select(sa.func.max(digests.c.window_end)).where(digests.c.name == name)
        with self._begin() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else _aware(value)

    def find_digest(self, name: str, start: datetime, end: datetime) -> DigestRecord | None:
        query = sa.select(digests).where(
            digests.c.name == name, digests.c.window_start == start, digests.c.window_end == end
        )
        with self._begin() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else DigestRecord(**row._mapping)

    def create_digest(
        self,
        *,
        name: str,
        window_start: datetime,
        window_end: datetime,
        message_id: str,
        subject: str,
        markdown: str,
        html: str,
        text: str,
        item_ids: Sequence[int],
        status: str,
        now: datetime,
    ) -> DigestRecord:
        """Put a rendered digest in the outbox with the items it carries. A digest that is
        already recorded for this (name, window) is returned unchanged."""
        existing = self.find_digest(name, window_start, window_end)
        if existing is not None:
            return existing
        with self._begin() as conn:
            result = conn.execute(
                digests.insert().values(
                    name=name,
                    window_start=window_start,
                    window_end=window_end,
                    message_id=message_id,
                    subject=subject,
                    markdown=markdown,
                    html=html,
                    text=text,
                    status=status,
                    created_at=now,
                    attempts=0,
                    next_attempt_at=now if status == "pending" else None,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            if item_ids:
                conn.execute(
                    digest_items.insert(),
                    [{"digest_id": int(key[0]), "item_id": i} for i in sorted(set(item_ids))],
                )
        found = self.find_digest(name, window_start, window_end)
        assert found is not None
        return found

    def due_digests(self, now: datetime | None) -> list[DigestRecord]:
        """Pending digests whose next attempt is due (all pending ones for `now=None`)."""
        query = sa.select(digests).where(digests.c.status == "pending")
        if now is not None:
            query = query.where(
                sa.or_(digests.c.next_attempt_at.is_(None), digests.c.next_attempt_at <= now)
            )
        query = query.order_by(digests.c.window_end, digests.c.id)
        with self._begin() as conn:
            return [DigestRecord(**r._mapping) for r in conn.execute(query)]

    def record_attempt(
        self,
        digest_id: int,
        *,
        channel: str,
        ok: bool,
        error: str | None,
        now: datetime,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Log one delivery attempt; a failure sets when to try again."""
        with self._begin() as conn:
            conn.execute(
                delivery_attempts.insert().values(
                    digest_id=digest_id, at=now, channel=channel, ok=ok, error=error
                )
            )
            values: dict[str, Any] = {"attempts": digests.c.attempts + 1}
            if not ok:
                values |= {"last_error": error, "next_attempt_at": next_attempt_at}
            conn.execute(digests.update().where(digests.c.id == digest_id).values(**values))

    def mark_sent(self, digest_id: int, now: datetime) -> None:
        """Only after every channel succeeded."""
        with self._begin() as conn:
            conn.execute(
                digests.update()
                .where(digests.c.id == digest_id)
                .values(status="sent", sent_at=now, next_attempt_at=None, last_error=None)
            )

    def delivery_log(self, digest_id: int) -> list[dict[str, Any]]:
        query = (
            sa.select(delivery_attempts)
            .where(delivery_attempts.c.digest_id == digest_id)
            .order_by(delivery_attempts.c.id)
        )
        with self._begin() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def digest_item_ids(self, digest_id: int) -> list[int]:
        query = sa.select(digest_items.c.item_id).where(digest_items.c.digest_id == digest_id)
        with self._begin() as conn:
            return sorted(int(i) for i in conn.execute(query).scalars())

    def story_members(self, story_ids: Sequence[int]) -> dict[int, list[Item]]:
        """Every stored member of these stories, whenever it was seen."""
        if not story_ids:
            return {}
        query = sa.select(
            items, sources.c.name.label("source_name"), sources.c.priority.label("source_priority")
        )
        query = query.join(sources, sources.c.id == items.c.source_id)
        query = query.where(items.c.story_id.in_(list(story_ids))).order_by(items.c.id)
        out: dict[int, list[Item]] = {}
        with self._begin() as conn:
            for item in _with_tags(conn, [_item(r) for r in conn.execute(query)]):
                assert item.story_id is not None
                out.setdefault(item.story_id, []).append(item)
        return out

    def count_items(self) -> int:
        with self._begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one())


def _replace_tags(conn: Connection, item_id: int, tags: Tags) -> None:
    conn.execute(item_topics.delete().where(item_topics.c.item_id == item_id))
    conn.execute(item_facets.delete().where(item_facets.c.item_id == item_id))
    if tags.topics:
        conn.execute(
            item_topics.insert(),
            [
                {
                    "item_id": item_id,
                    "topic_id": t.id,
                    "score": t.score,
                    "threshold": t.threshold,
                    "evidence": json.dumps([list(e) for e in t.evidence], ensure_ascii=False),
                }
                for t in tags.topics
            ],
        )
    values = sorted({(kind, v) for kind, vs in tags.facets.items() for v in vs})
    if values:
        conn.execute(
            item_facets.insert(),
            [{"item_id": item_id, "kind": kind, "value": v} for kind, v in values],
        )


def _with_tags(conn: Connection, found: list[Item]) -> list[Item]:
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
        tags = sorted(topics.get(item.id, []), key=lambda t: (-t.score, t.id))
        kinds = {kind: tuple(values) for kind, values in facets.get(item.id, {}).items()}
        out.append(replace(item, topics=tuple(tags), facets=kinds))
    return out


def _aware(value: datetime) -> datetime:
    # Aggregates (MAX) bypass the column type on some backends.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _dup_values(dup: DuplicateOf | None) -> dict[str, Any]:
    if dup is None:
        return {"dup_kind": None, "dup_ref": None, "dup_similarity": None, "dup_method": None}
    return {
        "dup_kind": dup.kind,
        "dup_ref": dup.ref,
        "dup_similarity": dup.similarity,
        "dup_method": dup.method,
    }


def _item(row: Any) -> Item:
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


def _health(row: Any) -> SourceHealth:
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


def _create_engine(url: str) -> Engine:
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


def _safe_url(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"
