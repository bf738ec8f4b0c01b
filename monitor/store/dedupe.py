"""Seeds, item signatures and dedupe decisions in the database. I/O: database.

Signatures and story features are written in the same transaction as their item (see
`Store.insert_item`), so a restart rebuilds the in-memory indexes from these rows and never
signs the history again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from monitor.models import Article, DuplicateOf, Item
from monitor.store.rows import StoreBase, item_from_row, item_query, with_tags
from monitor.store.schema import (
    corrections,
    decisions,
    index_log,
    items,
    seeds,
    signatures,
    sources,
)

if TYPE_CHECKING:  # the tagger (its rules engine) loads only where articles are tagged
    from monitor.tag import Tags


@dataclass(frozen=True, slots=True)
class ItemSignature:
    """An item's MinHash signature and story features, as stored."""

    signature: bytes  # near.signature_to_bytes
    shingles: int
    features: str  # story.features_to_json


@dataclass(frozen=True, slots=True)
class StoryChange:
    """An indexed article or seed whose story changed when an earlier one arrived."""

    key: str  # the item's URL or the seed's file name
    seed: bool
    story_id: int
    story: Mapping[str, Any]  # the story layer's new decision ({}: the stored one stands)
    part: int | None = None  # its first-step story when not `story_id` (a merged story)


@dataclass(frozen=True, slots=True)
class DedupeRecord:
    """What the near-duplicate and story layers store with a new item."""

    signature: ItemSignature
    story_id: int
    near: Mapping[str, Any] | None  # the near layer's decision; None when exact decided
    story: Mapping[str, Any]  # the story layer's decision
    changes: Sequence[StoryChange] = ()  # earlier articles whose story this one changed
    story_part: int | None = None  # its first-step story when not `story_id` (a merged story)


@dataclass(frozen=True, slots=True)
class NewItem:
    """One item of `Store.insert_items`: the arguments of `Store.insert_item`."""

    article: Article
    fetched_at: datetime
    status: str
    baseline: bool
    duplicate_of: DuplicateOf | None = None
    tags: Tags | None = None
    dedupe: DedupeRecord | None = None


@dataclass(frozen=True, slots=True)
class SeedRecord:
    """A seed file as last signed."""

    name: str
    text_hash: str
    title: str
    published_at: datetime | None
    language: str | None
    text_chars: int
    signature: bytes
    shingles: int
    features: str
    story_id: int
    added_at: datetime
    date_source: str | None = None  # metadata | header | text | story; None: undated


@dataclass(frozen=True, slots=True)
class StoredSignature:
    """One item's stored signature and story features, for rebuilding the indexes."""

    item_id: int
    url: str
    source: str
    fetched_at: datetime
    signature: bytes
    shingles: int
    features: str
    story_id: int | None
    story_part: int | None = None  # the first-step story when not `story_id`


@dataclass(frozen=True, slots=True)
class StoryInfo:
    """A story as `items --json` shows it."""

    size: int  # stored items in the story
    sources: tuple[str, ...]  # sorted
    seed_refs: tuple[str, ...]  # seed file names in the story, sorted


class DedupeStore(StoreBase):
    """Seeds, signatures, story lookups and the decisions `explain` prints."""

    # -- seeds ----------------------------------------------------------------------------------

    def list_seeds(self) -> list[SeedRecord]:
        with self._begin() as conn:
            rows = conn.execute(sa.select(seeds).order_by(seeds.c.name))
            return [SeedRecord(**r._mapping) for r in rows]

    def upsert_seed(self, seed: SeedRecord) -> None:
        """Insert or replace the row of seed `seed.name`."""
        values = {
            "name": seed.name,
            "text_hash": seed.text_hash,
            "title": seed.title,
            "published_at": seed.published_at,
            "language": seed.language,
            "text_chars": seed.text_chars,
            "signature": seed.signature,
            "shingles": seed.shingles,
            "features": seed.features,
            "story_id": seed.story_id,
            "added_at": seed.added_at,
            "date_source": seed.date_source,
        }
        with self._begin() as conn:
            conn.execute(seeds.delete().where(seeds.c.name == seed.name))
            conn.execute(seeds.insert().values(**values))

    def change_stories(self, changes: Sequence[StoryChange]) -> None:
        """Record new stories of items and seeds (by URL or file name), with the decisions."""
        if changes:
            with self._begin() as conn:
                apply_story_changes(conn, changes)
                if self.log_decisions:
                    self.log_index(conn, [{"item_id": 0, "kind": "moves"}])

    def delete_seeds(self, names: Sequence[str]) -> None:
        """Forget seeds whose files left the corpus."""
        if names:
            with self._begin() as conn:
                conn.execute(seeds.delete().where(seeds.c.name.in_(list(names))))

    def seed_titles(self) -> dict[str, str]:
        with self._begin() as conn:
            return {r.name: r.title for r in conn.execute(sa.select(seeds.c.name, seeds.c.title))}

    # -- signatures -----------------------------------------------------------------------------

    def signatures_since(self, at: datetime, *, batch: int = 1000) -> Iterator[StoredSignature]:
        """Signatures of items first seen at or after `at`, oldest first, read in batches (one
        short transaction each) so that memory holds one batch, not the history."""
        last_id = 0
        while True:
            query = (
                _signature_query()
                .where(items.c.fetched_at >= at, items.c.id > last_id)
                .order_by(items.c.id)
                .limit(batch)
            )
            with self._begin() as conn:
                page = [StoredSignature(*row) for row in conn.execute(query)]
            yield from page
            if len(page) < batch:
                return
            last_id = page[-1].item_id

    def signatures_of(self, item_ids: Sequence[int]) -> list[StoredSignature]:
        """Signatures of these items, in id order (a node catching up with the others)."""
        wanted = sorted(set(item_ids))
        out: list[StoredSignature] = []
        with self._begin() as conn:
            for start in range(0, len(wanted), 500):
                query = (
                    _signature_query()
                    .where(items.c.id.in_(wanted[start : start + 500]))
                    .order_by(items.c.id)
                )
                out.extend(StoredSignature(*row) for row in conn.execute(query))
        return out

    def index_log_after(self, last_id: int) -> list[tuple[int, int, str]]:
        """Decisions logged after `last_id` (cluster mode): (log id, item id, kind), in order."""
        query = (
            sa.select(index_log.c.id, index_log.c.item_id, index_log.c.kind)
            .where(index_log.c.id > last_id)
            .order_by(index_log.c.id)
        )
        with self._begin() as conn:
            return [(int(a), int(b), str(c)) for a, b, c in conn.execute(query)]

    def log_index(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Log decisions for the other nodes (in the deciding transaction); their highest id
        is kept in `last_logged`, so the deciding node need not ask for it."""
        ids = conn.execute(index_log.insert().returning(index_log.c.id), list(rows)).scalars()
        self.last_logged = max(self.last_logged, *ids)

    def last_index_log_id(self) -> int:
        with self._begin() as conn:
            return int(conn.execute(sa.select(sa.func.max(index_log.c.id))).scalar() or 0)

    def count_signatures(self) -> int:
        with self._begin() as conn:
            query = sa.select(sa.func.count()).select_from(signatures)
            return int(conn.execute(query).scalar_one())

    # -- stories --------------------------------------------------------------------------------

    def max_story_id(self) -> int:
        """The highest story id given to an item, a seed or by a correction (0 when none)."""
        with self._begin() as conn:
            return max_story_id(conn)

    def story_info(self, story_ids: Sequence[int]) -> dict[int, StoryInfo]:
        """Size, sources and seed file names of each story (stories without items included
        when a seed is in them)."""
        wanted = sorted(set(story_ids))
        if not wanted:
            return {}
        sizes: dict[int, int] = {}
        names: dict[int, set[str]] = {}
        refs: dict[int, list[str]] = {}
        with self._begin() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                counted = (
                    sa.select(items.c.story_id, sa.func.count())
                    .where(items.c.story_id.in_(chunk))
                    .group_by(items.c.story_id)
                )
                sizes.update({int(s): int(n) for s, n in conn.execute(counted)})
                by_source = (
                    sa.select(items.c.story_id, sources.c.name)
                    .join(sources, sources.c.id == items.c.source_id)
                    .where(items.c.story_id.in_(chunk))
                    .distinct()
                )
                for story_id, name in conn.execute(by_source):
                    names.setdefault(int(story_id), set()).add(name)
                by_seed = (
                    sa.select(seeds.c.story_id, seeds.c.name)
                    .where(seeds.c.story_id.in_(chunk))
                    .order_by(seeds.c.name)
                )
                for story_id, name in conn.execute(by_seed):
                    refs.setdefault(int(story_id), []).append(name)
        return {
            sid: StoryInfo(
                sizes.get(sid, 0), tuple(sorted(names.get(sid, ()))), tuple(refs.get(sid, ()))
            )
            for sid in wanted
            if sid in sizes or sid in refs
        }

    def story_members(self, story_ids: Sequence[int]) -> dict[int, list[Item]]:
        """Every stored member of these stories, whenever it was seen."""
        if not story_ids:
            return {}
        query = item_query().where(items.c.story_id.in_(list(story_ids))).order_by(items.c.id)
        out: dict[int, list[Item]] = {}
        with self._begin() as conn:
            for item in with_tags(conn, [item_from_row(r) for r in conn.execute(query)]):
                assert item.story_id is not None
                out.setdefault(item.story_id, []).append(item)
        return out

    # -- decisions ------------------------------------------------------------------------------

    def decision(self, item_id: int) -> tuple[dict[str, Any] | None, dict[str, Any]] | None:
        """(near, story) as the layers recorded them for `explain`; None for an item stored
        before the layers existed."""
        query = sa.select(decisions.c.near, decisions.c.story).where(decisions.c.item_id == item_id)
        with self._begin() as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            return None
        return (json.loads(row.near) if row.near else None), json.loads(row.story)


def max_story_id(conn: Connection) -> int:
    """The highest story id of an item (its story or first-step story), a seed or a
    correction's new story (0 when none)."""
    found = [
        conn.execute(sa.select(sa.func.max(items.c.story_id))).scalar(),
        conn.execute(sa.select(sa.func.max(items.c.story_part))).scalar(),
        conn.execute(sa.select(sa.func.max(seeds.c.story_id))).scalar(),
        conn.execute(sa.select(sa.func.max(corrections.c.new_story_id))).scalar(),
    ]
    return max(int(v or 0) for v in found)


def _signature_query() -> sa.Select[Any]:
    """The columns of a `StoredSignature`, items joined to their signatures and sources."""
    return (
        sa.select(
            items.c.id,
            items.c.url,
            sources.c.name,
            items.c.fetched_at,
            signatures.c.signature,
            signatures.c.shingles,
            signatures.c.features,
            items.c.story_id,
            items.c.story_part,
        )
        .join(items, items.c.id == signatures.c.item_id)
        .join(sources, sources.c.id == items.c.source_id)
    )


def insert_dedupe_many(conn: Connection, records: Sequence[tuple[int, DedupeRecord]]) -> None:
    """New items' signatures and decisions (one statement per table), then each item's story
    changes in item order, each applied to the items up to it only: what inserting the items
    one by one stores."""
    if not records:
        return
    conn.execute(
        signatures.insert(),
        [{"item_id": i, **signature_values(r.signature)} for i, r in records],
    )
    conn.execute(decisions.insert(), [{"item_id": i, **decision_values(r)} for i, r in records])
    for item_id, record in records:
        apply_story_changes(conn, record.changes, up_to=item_id)


def decision_values(record: DedupeRecord) -> dict[str, Any]:
    """An item's `decisions` row, without the item id."""
    return {
        "near": None if record.near is None else json.dumps(record.near, ensure_ascii=False),
        "story": json.dumps(record.story, ensure_ascii=False),
    }


def signature_values(signature: ItemSignature) -> dict[str, Any]:
    """An item's `signatures` row, without the item id."""
    return {
        "signature": signature.signature,
        "shingles": signature.shingles,
        "features": signature.features,
    }


def apply_story_changes(
    conn: Connection, changes: Sequence[StoryChange], *, up_to: int | None = None
) -> None:
    """New stories of items (by URL) and seeds (by file name), with the new decisions (an
    empty one: the stored decision stands, as when a merge changed only its story); with
    `up_to`, only of the items with ids up to it (those stored before the deciding item)."""
    for change in changes:
        if change.seed:
            conn.execute(
                seeds.update().where(seeds.c.name == change.key).values(story_id=change.story_id)
            )
            continue
        query = sa.select(items.c.id).where(items.c.url == change.key)
        if up_to is not None:
            query = query.where(items.c.id <= up_to)
        ids = [r.id for r in conn.execute(query)]
        if not ids:
            continue
        conn.execute(
            items.update()
            .where(items.c.id.in_(ids))
            .values(story_id=change.story_id, story_part=change.part)
        )
        if not change.story:
            continue
        conn.execute(
            decisions.update()
            .where(decisions.c.item_id.in_(ids))
            .values(story=json.dumps(dict(change.story), ensure_ascii=False))
        )


def replace_signature(conn: Connection, item_id: int, signature: ItemSignature) -> None:
    """A changed item's new signature and features (its story and decisions stay)."""
    conn.execute(signatures.delete().where(signatures.c.item_id == item_id))
    _insert_signature(conn, item_id, signature)


def _insert_signature(conn: Connection, item_id: int, signature: ItemSignature) -> None:
    conn.execute(signatures.insert().values(item_id=item_id, **signature_values(signature)))
