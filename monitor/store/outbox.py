"""The digest outbox: rendered digests, the items they carried, delivery attempts. I/O: database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monitor.store.rows import DigestRecord, StoreBase, aware
from monitor.store.schema import delivery_attempts, digest_items, digests


@dataclass(frozen=True, slots=True)
class DigestSummary:
    """A digest as the archive lists it (no bodies)."""

    id: int
    name: str
    window_start: datetime
    window_end: datetime
    subject: str
    status: str  # pending | sent
    created_at: datetime
    sent_at: datetime | None
    items: int


class OutboxStore(StoreBase):
    """Digest records: a window is rendered and stored once, then delivered (and retried)."""

    def last_window_end(self, name: str) -> datetime | None:
        """Where the next window of digest `name` starts: the end of its latest recorded one."""
        query = sa.select(sa.func.max(digests.c.window_end)).where(digests.c.name == name)
        with self._begin() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else aware(value)

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

    def count_pending_digests(self) -> int:
        query = sa.select(sa.func.count()).select_from(digests).where(digests.c.status == "pending")
        with self._begin() as conn:
            return int(conn.execute(query).scalar_one())

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

    def get_digest(self, digest_id: int) -> DigestRecord | None:
        with self._begin() as conn:
            row = conn.execute(sa.select(digests).where(digests.c.id == digest_id)).one_or_none()
        return None if row is None else DigestRecord(**row._mapping)

    def list_digests(self, *, limit: int = 500) -> list[DigestSummary]:
        """Digests that were sent or are waiting to be, newest window first (the archive);
        empty windows that were never mailed are left out."""
        counted = (
            sa.select(digest_items.c.digest_id, sa.func.count().label("n"))
            .group_by(digest_items.c.digest_id)
            .subquery()
        )
        query = (
            sa.select(
                digests.c.id,
                digests.c.name,
                digests.c.window_start,
                digests.c.window_end,
                digests.c.subject,
                digests.c.status,
                digests.c.created_at,
                digests.c.sent_at,
                sa.func.coalesce(counted.c.n, 0).label("items"),
            )
            .outerjoin(counted, counted.c.digest_id == digests.c.id)
            .where(digests.c.status != "empty")
            .order_by(digests.c.window_end.desc(), digests.c.id.desc())
            .limit(limit)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [
            DigestSummary(
                id=r.id,
                name=r.name,
                window_start=aware(r.window_start),
                window_end=aware(r.window_end),
                subject=r.subject,
                status=r.status,
                created_at=aware(r.created_at),
                sent_at=None if r.sent_at is None else aware(r.sent_at),
                items=int(r.items),
            )
            for r in rows
        ]
