"""SQLAlchemy Core storage: schema, versioned migrations, source state and items. I/O: database.

`Store` is one class assembled from themed parts: sources and items here, the digest outbox in
`outbox`, seeds, signatures and dedupe decisions in `dedupe`; the tables are in `schema`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from monitor.errors import StoreError
from monitor.models import Article, DuplicateOf, Item, Source, SourceHealth
from monitor.store.corrections import (
    CorrectionsChanged,
    CorrectionStore,
    check_corrections,
    untagged_topics,
    without_topics,
)
from monitor.store.dedupe import (
    DedupeRecord,
    DedupeStore,
    ItemSignature,
    NewItem,
    SeedRecord,
    StoredSignature,
    StoryChange,
    StoryInfo,
    apply_story_changes,
    insert_dedupe_many,
    replace_signature,
)
from monitor.store.outbox import DigestSummary, OutboxStore
from monitor.store.rows import (
    DigestRecord,
    ExistingItem,
    PollSuccess,
    create_engine,
    dup_values,
    health_from_row,
    insert_tags_many,
    item_from_row,
    item_query,
    replace_tags,
    safe_url,
    tag_rows,
    with_tags,
)
from monitor.store.schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    UTCDateTime,
    apply_queue_schema,
    digest_items,
    digests,
    fetch_log,
    item_revisions,
    item_topics,
    items,
    metadata,
    schema_version,
    sources,
)

if TYPE_CHECKING:  # the tagger's modules load only where articles are tagged
    from monitor.tag import Tags

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "CorrectionsChanged",
    "DedupeRecord",
    "DigestRecord",
    "DigestSummary",
    "ExistingItem",
    "ItemSignature",
    "NewItem",
    "PollSuccess",
    "SeedRecord",
    "Store",
    "StoredSignature",
    "StoryChange",
    "StoryInfo",
]


MIGRATION_LOCK = 0x6D6F6E01  # advisory lock key of schema migrations ("mon" + 1)


class Store(OutboxStore, DedupeStore, CorrectionStore):
    """The database. Each public method is one transaction."""

    @classmethod
    def open(cls, url: str, *, now: datetime) -> Store:
        """Connect, create or migrate the schema. Raises StoreError naming the database."""
        try:
            engine = create_engine(url)
            store = cls(engine)
            store._migrate(now)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open database {safe_url(url)}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot open database {safe_url(url)}: {exc}") from exc
        return store

    # -- schema -------------------------------------------------------------------------------

    def _migrate(self, now: datetime) -> None:
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Several nodes starting at once on a new database: one creates, the others
                # wait and then find it done (the lock ends with this transaction).
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            self._migrate_in(conn, now)
            apply_queue_schema(conn)

    def _migrate_in(self, conn: sa.Connection, now: datetime) -> None:
        inspector = sa.inspect(conn)
        if not inspector.has_table("schema_version"):
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION, applied_at=now))
            return
        found = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
        if found is None:
            # A first start killed after creating tables but before recording the version
            # (SQLite commits each CREATE TABLE by itself): finish creating, then record.
            metadata.create_all(conn)
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION, applied_at=now))
            return
        current = int(found)
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {current} is newer than this monitor "
                f"({SCHEMA_VERSION}); upgrade monitor"
            )
        if current not in MIGRATIONS and current != SCHEMA_VERSION:
            raise StoreError(f"database schema version {current} is not one this monitor knows")
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
            if conn.dialect.name == "postgresql":  # nodes starting at once: one at a time
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            # Only the columns compared: reading every row's times cost a start of 1,000
            # sources about 20 ms (issue 14).
            columns = (sources.c.id, sources.c.name, sources.c.url, sources.c.kind)
            rows = {r.name: r for r in conn.execute(sa.select(*columns, sources.c.priority))}
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

    def source_health(self, name: str) -> SourceHealth:
        with self._begin() as conn:
            row = conn.execute(sa.select(sources).where(sources.c.name == name)).one_or_none()
        if row is None:
            raise StoreError(f"unknown source {name!r}")
        return health_from_row(row)

    def list_source_health(self, names: Sequence[str] | None = None) -> list[SourceHealth]:
        query = sa.select(sources).order_by(sources.c.priority, sources.c.name)
        if names is not None:
            query = query.where(sources.c.name.in_(list(names)))
        with self._begin() as conn:
            return [health_from_row(r) for r in conn.execute(query)]

    def record_successes(self, polls: Sequence[PollSuccess]) -> None:
        """Record successful polls of several sources in one transaction: the new validators
        and next check time on each source, and a line each in the fetch log."""
        if not polls:
            return
        ids = [self.source_id(p.name) for p in polls]
        with self._begin() as conn:
            conn.execute(
                sources.update()
                .where(sources.c.id == sa.bindparam("p_id"))
                .values(
                    etag=sa.bindparam("p_etag"),
                    last_modified=sa.bindparam("p_last_modified"),
                    last_attempt_at=sa.bindparam("p_now"),
                    last_success_at=sa.bindparam("p_now"),
                    consecutive_failures=0,
                    last_error_class=None,
                    last_error=None,
                    next_check_at=sa.bindparam("p_next"),
                    retry_after_until=None,
                    first_polled_at=sa.func.coalesce(
                        sources.c.first_polled_at, sa.bindparam("p_first", type_=UTCDateTime())
                    ),
                ),
                [
                    {
                        "p_id": sid,
                        "p_etag": p.etag,
                        "p_last_modified": p.last_modified,
                        "p_now": p.now,
                        "p_next": p.next_check_at,
                        "p_first": p.now,
                    }
                    for sid, p in zip(ids, polls, strict=True)
                ],
            )
            conn.execute(
                fetch_log.insert(),
                [
                    {
                        "source_id": sid,
                        "at": p.now,
                        "outcome": p.outcome,
                        "http_status": p.http_status,
                        "bytes_received": p.bytes_received,
                        "elapsed_ms": p.elapsed_ms,
                        "new_items": p.new_items,
                    }
                    for sid, p in zip(ids, polls, strict=True)
                ],
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
            return [health_from_row(r) for r in conn.execute(query)]

    # -- items --------------------------------------------------------------------------------

    def find_item(self, source: str, guid: str | None, canonical: str) -> ExistingItem | None:
        """The stored item this entry is: same GUID in the same source, or same canonical URL."""
        sid = self.source_id(source)
        cond = items.c.canonical_url == canonical
        if guid:
            cond = sa.or_(cond, sa.and_(items.c.source_id == sid, items.c.guid == guid))
        # Prefer the same source's row, then the oldest.
        return self._first_existing(cond, sa.case((items.c.source_id == sid, 0), else_=1))

    def find_items(
        self, source: str, entries: Sequence[tuple[str | None, str]]
    ) -> list[ExistingItem | None]:
        """`find_item` for each (GUID, canonical URL) of one source's entries, in one query
        per 500 entries (issue 14: one query per entry was a tenth of a cold poll's main
        process)."""
        sid = self.source_id(source)
        found: list[tuple[ExistingItem, str]] = []
        for start in range(0, len(entries), 500):
            chunk = entries[start : start + 500]
            params = {
                "canonicals": sorted({c for _, c in chunk}),
                "sid": sid,
                "guids": sorted({g for g, _ in chunk if g}),
            }
            with self._begin() as conn:
                rows = conn.execute(_FIND_ITEMS, params)
                found += [(ExistingItem(*row[:7]), row[7]) for row in rows]
        by_canonical: dict[str, list[ExistingItem]] = {}
        by_guid: dict[str, list[ExistingItem]] = {}
        for item, item_canonical in found:
            by_canonical.setdefault(item_canonical, []).append(item)
            if item.guid and item.source == source:
                by_guid.setdefault(item.guid, []).append(item)
        out: list[ExistingItem | None] = []
        for guid, canonical in entries:
            # Prefer the same source's row, then the oldest, as `find_item` does.
            matches = by_canonical.get(canonical, []) + (by_guid.get(guid, []) if guid else [])
            out.append(min(matches, key=lambda i: (i.source != source, i.id)) if matches else None)
        return out

    def find_by_text_hash(self, text_hash: str) -> ExistingItem | None:
        if not text_hash:
            return None
        return self._first_existing(items.c.text_hash == text_hash)

    def _first_existing(
        self, cond: sa.ColumnElement[bool], *order: sa.ColumnElement[Any]
    ) -> ExistingItem | None:
        query = _existing_query().where(cond).order_by(*order, items.c.id).limit(1)
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
        dedupe: DedupeRecord | None = None,
        corrections_seen: tuple[int, int] | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Store a new item with its tags, signature, story and dedupe decisions in one
        transaction (an item never exists without its signature); returns its id. With
        `corrections_seen`, raises CorrectionsChanged (and stores nothing) when corrections
        changed since the deciding index saw them (`check_corrections`); with `conn`, see
        `insert_items`."""
        new = NewItem(article, fetched_at, status, baseline, duplicate_of, tags, dedupe)
        return self.insert_items([new], corrections_seen=corrections_seen, conn=conn)[0]

    def insert_items(
        self,
        batch: Sequence[NewItem],
        *,
        corrections_seen: tuple[int, int] | None = None,
        conn: sa.Connection | None = None,
    ) -> list[int]:
        """`insert_item` for several items in ONE transaction, in order: all are stored or
        none (a crash or CorrectionsChanged stores nothing of the batch); returns their ids.
        With `conn`, the items join that connection's open transaction (the decision lock's,
        in cluster mode), which its owner commits; on PostgreSQL each item's rows are then
        written in one statement (`onestep`), one round trip while the lock is held."""
        if conn is not None:
            try:
                if conn.dialect.name == "postgresql":
                    return [self._insert_one_step(conn, new) for new in batch]
                return self._insert_many(conn, batch)
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(f"database error: {exc}") from exc
        with self._begin() as conn:
            ids = self._insert_many(conn, batch)
            if corrections_seen is not None:
                check_corrections(conn, corrections_seen)
            return ids

    def _item_values(self, new: NewItem) -> dict[str, Any]:
        """The `items` row of a new item."""
        article, dedupe = new.article, new.dedupe
        return {
            "source_id": self.source_id(article.source),
            "guid": article.guid,
            "url": article.url,
            "canonical_url": article.canonical_url,
            "title": article.title,
            "summary": article.summary,
            "text": article.text,
            "text_hash": article.text_hash,
            "text_chars": len(article.text),
            "language": article.language,
            "extraction": article.extraction,
            "status": new.status,
            "baseline": new.baseline,
            "published_at": article.published_at,
            "fetched_at": new.fetched_at,
            "updated_at": new.fetched_at,
            "story_id": None if dedupe is None else dedupe.story_id,
            "story_part": None if dedupe is None else dedupe.story_part,
            **dup_values(new.duplicate_of),
        }

    def _insert_one_step(self, conn: sa.Connection, new: NewItem) -> int:
        from monitor.store.onestep import insert_one_step

        topics, facets = tag_rows(new.tags) if new.tags is not None else ([], [])
        dedupe = new.dedupe
        logged = []
        if self.log_decisions:
            logged.append("insert")
            if dedupe is not None and dedupe.changes:
                logged.append("moves")
        values = self._item_values(new)
        item_id, log_ids = insert_one_step(conn, values, topics, facets, dedupe, logged)
        if dedupe is not None and dedupe.changes:
            apply_story_changes(conn, dedupe.changes, up_to=item_id)
        if log_ids:
            self.last_logged = max(self.last_logged, *log_ids)
        return item_id

    def _insert_many(self, conn: sa.Connection, batch: Sequence[NewItem]) -> list[int]:
        """The rows of new items, one statement per table (issue 14: one insert per row was
        a tenth of a cold poll's main process). The result is what inserting them one by one
        stores: items in order, each item's story changes applied after the items before it
        and its own rows, the decision log in the same order."""
        if not batch:
            return []
        if len(batch) == 1:  # the common case of a warm poll: no executemany machinery
            result = conn.execute(items.insert().values(**self._item_values(batch[0])))
            key = result.inserted_primary_key
            assert key is not None
            ids = [int(key[0])]
        else:
            query = items.insert().returning(items.c.id, sort_by_parameter_order=True)
            ids = [
                int(i) for i in conn.execute(query, [self._item_values(n) for n in batch]).scalars()
            ]
        pairs = list(zip(ids, batch, strict=True))
        insert_tags_many(conn, [(i, new.tags) for i, new in pairs if new.tags is not None])
        insert_dedupe_many(conn, [(i, new.dedupe) for i, new in pairs if new.dedupe is not None])
        if self.log_decisions:
            logged = []
            for item_id, new in pairs:
                logged.append({"item_id": item_id, "kind": "insert"})
                if new.dedupe is not None and new.dedupe.changes:
                    logged.append({"item_id": item_id, "kind": "moves"})
            self.log_index(conn, logged)
        return ids

    def find_exact(
        self, canonicals: Sequence[str], text_hashes: Sequence[str]
    ) -> list[tuple[ExistingItem, str]]:
        """Stored items with any of these canonical URLs or text hashes, each with its
        canonical URL, oldest first: the exact layer of a batch in one query per 500 keys."""
        out: list[tuple[ExistingItem, str]] = []
        urls, hashes = sorted(set(canonicals)), sorted({h for h in text_hashes if h})
        for start in range(0, max(len(urls), len(hashes)), 500):
            cond = sa.or_(
                items.c.canonical_url.in_(urls[start : start + 500]),
                items.c.text_hash.in_(hashes[start : start + 500]),
            )
            query = _existing_query(items.c.canonical_url).where(cond).order_by(items.c.id)
            with self._begin() as conn:
                out += [(ExistingItem(*row[:7]), row[7]) for row in conn.execute(query)]
        return sorted(set(out), key=lambda found: found[0].id)

    def update_item(
        self,
        item_id: int,
        article: Article,
        now: datetime,
        tags: Tags | None = None,
        signature: ItemSignature | None = None,
    ) -> bool:
        """Replace an item's text, title (tags and signature), recording the old version.
        False if unchanged. The item keeps its status, story and recorded decisions."""
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
                removed = untagged_topics(conn, [item_id]).get(item_id, set())
                replace_tags(conn, item_id, without_topics(tags, removed))
            if signature is not None:
                replace_signature(conn, item_id, signature)
                if self.log_decisions:
                    self.log_index(conn, [{"item_id": item_id, "kind": "update"}])
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
        query = item_query()
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
            return with_tags(conn, [item_from_row(r) for r in rows])

    def get_item(self, ref: str) -> Item | None:
        """An item by numeric id or by URL (as given or canonical)."""
        query = item_query()
        if ref.isdigit():
            query = query.where(items.c.id == int(ref))
        else:
            query = query.where(sa.or_(items.c.url == ref, items.c.canonical_url == ref))
        with self._begin() as conn:
            row = conn.execute(query.order_by(items.c.id).limit(1)).one_or_none()
            return None if row is None else with_tags(conn, [item_from_row(row)])[0]

    def save_tags(self, item_id: int, tags: Tags) -> None:
        """Replace an item's topic tags and facet values."""
        with self._begin() as conn:
            replace_tags(conn, item_id, tags)

    def retag(self, tag: Callable[[Item], Tags], *, batch: int = 500) -> int:
        """Recompute every item's tags with `tag`, one transaction per batch; returns the count.
        A topic a correction took off an item stays off."""
        done = 0
        last_id = 0
        while True:
            page = self._items_after(last_id, batch)
            if not page:
                return done
            results = [(item.id, tag(item)) for item in page]
            with self._begin() as conn:
                removed = untagged_topics(conn, [item.id for item in page])
                for item_id, tags in results:
                    replace_tags(conn, item_id, without_topics(tags, removed.get(item_id, set())))
            done += len(page)
            last_id = page[-1].id

    def count_items(self) -> int:
        with self._begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(items)).scalar_one())

    def _items_after(self, last_id: int, limit: int) -> list[Item]:
        query = item_query()
        query = query.where(items.c.id > last_id).order_by(items.c.id).limit(limit)
        with self._begin() as conn:
            return [item_from_row(r) for r in conn.execute(query)]

    # -- digests (the outbox) --------------------------------------------------------------------


def _existing_query(*more: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """The columns of `ExistingItem` (then `more`), items joined with their source's name."""
    columns = (items.c.id, sources.c.name, items.c.url, items.c.guid, items.c.title)
    query = sa.select(*columns, items.c.text_hash, items.c.updated_at, *more)
    return query.join(sources, sources.c.id == items.c.source_id)


# `find_items`: built once (building it for each feed was most of its cost).
_FIND_ITEMS = _existing_query(items.c.canonical_url).where(
    sa.or_(
        items.c.canonical_url.in_(sa.bindparam("canonicals", expanding=True)),
        sa.and_(
            items.c.source_id == sa.bindparam("sid"),
            items.c.guid.in_(sa.bindparam("guids", expanding=True)),
        ),
    )
)
