"""Corrections of the story and tag layers in the database (issue 16). I/O: database.

Every correction is one transaction under the decision lock (`DECISION_LOCK`, PostgreSQL) or
SQLite's write lock, taken before the highest story id is read: a new story id is never taken
twice by two corrections, nor by a correction and a cluster node's decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from monitor.dedupe.follow import follow_marker
from monitor.errors import CorrectionError, StoreError
from monitor.models import Correction
from monitor.store.dedupe import StoryChange, apply_story_changes, max_story_id
from monitor.store.rows import StoreBase, aware
from monitor.store.schema import (
    DECISION_LOCK,
    corrections,
    decisions,
    item_topics,
    items,
    seeds,
    signatures,
)

if TYPE_CHECKING:  # the tagger (its rules engine) loads only where articles are tagged
    from monitor.tag import Tags

LOCK_TIMEOUT = "10s"  # a correction waits this long for a node's decision, then says so

# Decides a split item again once its correction is undone (under the correction's lock):
# returns its story id, the story layer's decision and the moves of other articles.
Redecide = Callable[[], tuple[int, dict[str, Any], Sequence[StoryChange]]]


class CorrectionsChanged(StoreError):
    """A correction was recorded after the deciding index last caught up with them: the
    insert is rolled back, and the index catches up and decides again."""


class CorrectionStore(StoreBase):
    """Record, list and undo corrections; what the story and tag layers must obey."""

    def list_corrections(self) -> list[Correction]:
        """Every correction, undone ones included, oldest first."""
        with self._begin() as conn:
            rows = conn.execute(sa.select(corrections).order_by(corrections.c.id))
            return [_correction(r) for r in rows]

    def get_correction(self, correction_id: int) -> Correction | None:
        with self._begin() as conn:
            row = conn.execute(
                sa.select(corrections).where(corrections.c.id == correction_id)
            ).one_or_none()
            return None if row is None else _correction(row)

    def corrections_state(self) -> tuple[int, int]:
        """(highest correction id, corrections undone): it changes whenever a correction is
        made or undone, so a live index asks this before each decision (one cheap query)."""
        with self._begin() as conn:
            return corrections_state(conn)

    def apart_keys(self, *, excluding: int | None = None) -> dict[str, set[str]]:
        """The active splits (but correction `excluding`) as cannot-link constraints: the
        split item's key (its URL) -> the keys of the members it must never share a story
        with."""
        query = (
            sa.select(items.c.url, corrections.c.apart)
            .join(items, items.c.id == corrections.c.item_id)
            .where(corrections.c.kind == "split", corrections.c.undone_at.is_(None))
            .order_by(corrections.c.id)
        )
        if excluding is not None:
            query = query.where(corrections.c.id != excluding)
        out: dict[str, set[str]] = {}
        with self._begin() as conn:
            for url, apart in conn.execute(query):
                out.setdefault(url, set()).update(json.loads(apart or "[]"))
        return out

    # -- recording ------------------------------------------------------------------------------

    def record_split(self, item_id: int, *, via: str, now: datetime) -> Correction:
        """Give the item a new story of its own, apart from its story's other members; the
        active split of the same item when there is one (a repeated request)."""
        with self._correcting() as conn:
            row = _item_row(conn, item_id)
            active = _active(conn, "split", item_id)
            if active is not None:
                return active
            story_id = row.story_id
            if story_id is None:
                raise CorrectionError(f"item {item_id} has no story (stored before stories)")
            # Its exact duplicates that follow it (`monitor.dedupe.follow`) go along with it.
            followers = conn.execute(
                sa.select(items.c.id, items.c.url)
                .join(signatures, signatures.c.item_id == items.c.id)
                .where(
                    items.c.story_id == story_id,
                    items.c.id != item_id,
                    signatures.c.features == follow_marker(row.url),
                )
            ).all()
            members = conn.execute(
                sa.select(items.c.url).where(items.c.story_id == story_id, items.c.id != item_id)
            )
            apart = {url for (url,) in members} - {row.url} - {url for _, url in followers}
            in_seeds = conn.execute(sa.select(seeds.c.name).where(seeds.c.story_id == story_id))
            apart |= {name for (name,) in in_seeds}
            if not apart:
                raise CorrectionError(f"item {item_id} is already alone in story {story_id}")
            correction_id = _insert(
                conn,
                kind="split",
                item_id=item_id,
                story_id=story_id,
                apart=json.dumps(sorted(apart), ensure_ascii=False),
                created_at=now,
                via=via,
            )
            new_story = max_story_id(conn) + 1
            conn.execute(
                corrections.update()
                .where(corrections.c.id == correction_id)
                .values(new_story_id=new_story)
            )
            moved = [item_id, *(follower_id for follower_id, _ in followers)]
            conn.execute(
                items.update()
                .where(items.c.id.in_(moved))
                .values(story_id=new_story, story_part=None)
            )
            _note_decision(
                conn,
                item_id,
                new_story,
                f"new story {new_story}: correction {correction_id} ({via}) says it is not the "
                f"same story as story {story_id}",
            )
            for follower_id, _ in followers:
                _note_decision(
                    conn,
                    follower_id,
                    new_story,
                    f"new story {new_story}: an exact duplicate of {row.url}, which correction "
                    f"{correction_id} ({via}) split from story {story_id}",
                )
            return _get(conn, correction_id)

    def record_untag(self, item_id: int, topic: str, *, via: str, now: datetime) -> Correction:
        """Take topic `topic` off the item; the active untag of the same item and topic when
        there is one (a repeated request)."""
        with self._correcting() as conn:
            _item_row(conn, item_id)
            active = _active(conn, "untag", item_id, topic)
            if active is not None:
                return active
            tag = conn.execute(
                sa.select(item_topics).where(
                    item_topics.c.item_id == item_id, item_topics.c.topic_id == topic
                )
            ).one_or_none()
            if tag is None:
                raise CorrectionError(f"item {item_id} is not tagged with topic {topic!r}")
            removed = {"score": tag.score, "threshold": tag.threshold, "evidence": tag.evidence}
            correction_id = _insert(
                conn,
                kind="untag",
                item_id=item_id,
                topic=topic,
                removed_tag=json.dumps(removed, ensure_ascii=False),
                created_at=now,
                via=via,
            )
            conn.execute(
                item_topics.delete().where(
                    item_topics.c.item_id == item_id, item_topics.c.topic_id == topic
                )
            )
            return _get(conn, correction_id)

    def undo_correction(
        self, correction_id: int, *, now: datetime, redecide: Redecide
    ) -> Correction:
        """Mark a correction undone and reverse it: an untag's tag comes back as it was; a
        split item is decided again by `redecide` (and may rejoin its story)."""
        with self._correcting() as conn:
            found = _get_or_none(conn, correction_id)
            if found is None:
                raise CorrectionError(f"correction {correction_id}: no such correction")
            if found.undone_at is not None:
                raise CorrectionError(
                    f"correction {correction_id} was already undone at "
                    f"{found.undone_at:%Y-%m-%d %H:%M} UTC"
                )
            conn.execute(
                corrections.update().where(corrections.c.id == correction_id).values(undone_at=now)
            )
            if found.kind == "untag":
                _restore_tag(conn, correction_id, found)
            else:
                story_id, story, changes = redecide()
                conn.execute(
                    items.update()
                    .where(items.c.id == found.item_id)
                    .values(story_id=story_id, story_part=story.get("part"))
                )
                conn.execute(
                    decisions.update()
                    .where(decisions.c.item_id == found.item_id)
                    .values(story=json.dumps(story, ensure_ascii=False))
                )
                apply_story_changes(conn, changes)
            return _get(conn, correction_id)

    @contextmanager
    def _correcting(self) -> Iterator[Connection]:
        """One transaction that holds the decision lock before anything is read."""
        with self._begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                try:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": DECISION_LOCK})
                except sa.exc.OperationalError as exc:
                    raise CorrectionError(
                        f"the decision lock is busy (waited {LOCK_TIMEOUT}); try again"
                    ) from exc
            else:  # SQLite: take the write lock now, not at the first write
                conn.exec_driver_sql("UPDATE corrections SET id = id WHERE 0")
            yield conn


def corrections_state(conn: Connection) -> tuple[int, int]:
    query = sa.select(sa.func.max(corrections.c.id), sa.func.count(corrections.c.undone_at))
    last, undone = conn.execute(query).one()
    return int(last or 0), int(undone or 0)


def check_corrections(conn: Connection, seen: tuple[int, int]) -> None:
    """Inside an item's insert, after it (SQLite: its write lock is held), under the decision
    lock (PostgreSQL): raise CorrectionsChanged unless the corrections are still `seen`, so
    a story id a correction took meanwhile is never stored for another story."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": DECISION_LOCK})
    if corrections_state(conn) != seen:
        raise CorrectionsChanged("corrections changed while deciding")


def untagged_topics(conn: Connection, item_ids: Sequence[int]) -> dict[int, set[str]]:
    """Topics that active untag corrections keep off these items."""
    out: dict[int, set[str]] = {}
    wanted = sorted(set(item_ids))
    for start in range(0, len(wanted), 500):
        query = sa.select(corrections.c.item_id, corrections.c.topic).where(
            corrections.c.kind == "untag",
            corrections.c.undone_at.is_(None),
            corrections.c.item_id.in_(wanted[start : start + 500]),
        )
        for item_id, topic in conn.execute(query):
            out.setdefault(int(item_id), set()).add(str(topic))
    return out


def without_topics(tags: Tags, removed: set[str]) -> Tags:
    """`tags` without the topics corrections removed."""
    if not removed:
        return tags
    from monitor.tag import Tags

    return Tags(tuple(t for t in tags.topics if t.id not in removed), tags.facets)


def _item_row(conn: Connection, item_id: int) -> Any:
    row = conn.execute(
        sa.select(items.c.id, items.c.url, items.c.story_id).where(items.c.id == item_id)
    ).one_or_none()
    if row is None:
        raise CorrectionError(f"item {item_id}: no such item")
    return row


def _active(
    conn: Connection, kind: str, item_id: int, topic: str | None = None
) -> Correction | None:
    query = sa.select(corrections).where(
        corrections.c.kind == kind,
        corrections.c.item_id == item_id,
        corrections.c.undone_at.is_(None),
    )
    if topic is not None:
        query = query.where(corrections.c.topic == topic)
    row = conn.execute(query.order_by(corrections.c.id).limit(1)).one_or_none()
    return None if row is None else _correction(row)


def _insert(conn: Connection, **values: Any) -> int:
    key = conn.execute(corrections.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def _get_or_none(conn: Connection, correction_id: int) -> Correction | None:
    row = conn.execute(
        sa.select(corrections).where(corrections.c.id == correction_id)
    ).one_or_none()
    return None if row is None else _correction(row)


def _get(conn: Connection, correction_id: int) -> Correction:
    found = _get_or_none(conn, correction_id)
    assert found is not None
    return found


def _note_decision(conn: Connection, item_id: int, story_id: int, explanation: str) -> None:
    """The item's recorded story decision, as `explain` shows it, says what the correction did."""
    row = conn.execute(
        sa.select(decisions.c.story).where(decisions.c.item_id == item_id)
    ).one_or_none()
    story: dict[str, Any] = json.loads(row.story) if row is not None else {}
    story.update(
        story_id=story_id, is_new=True, matched_key=None, explanation=explanation, corrected=True
    )
    text = json.dumps(story, ensure_ascii=False)
    if row is None:
        conn.execute(decisions.insert().values(item_id=item_id, near=None, story=text))
    else:
        conn.execute(decisions.update().where(decisions.c.item_id == item_id).values(story=text))


def _restore_tag(conn: Connection, correction_id: int, found: Correction) -> None:
    """The removed tag comes back as it was (unless the item has that topic again)."""
    row = conn.execute(
        sa.select(corrections.c.removed_tag).where(corrections.c.id == correction_id)
    ).one()
    there = conn.execute(
        sa.select(item_topics.c.topic_id).where(
            item_topics.c.item_id == found.item_id, item_topics.c.topic_id == found.topic
        )
    ).first()
    if there is not None or not row.removed_tag:
        return
    tag = json.loads(row.removed_tag)
    conn.execute(
        item_topics.insert().values(
            item_id=found.item_id,
            topic_id=found.topic,
            score=tag["score"],
            threshold=tag["threshold"],
            evidence=tag["evidence"],
        )
    )


def _correction(row: Any) -> Correction:
    return Correction(
        id=int(row.id),
        kind=row.kind,
        item_id=int(row.item_id),
        story_id=row.story_id,
        new_story_id=row.new_story_id,
        topic=row.topic,
        created_at=aware(row.created_at),
        undone_at=None if row.undone_at is None else aware(row.undone_at),
        via=row.via,
    )
