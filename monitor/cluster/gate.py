"""The decision lock: one PostgreSQL advisory lock around every dedupe, story and tag decision
of every node, after the node's indexes catch up with what the others stored. I/O: database.

Each node keeps its own in-memory indexes (`DedupeIndex`). Inside the lock the node first
replays the decisions logged since the last one it saw (`index_log`), then decides and inserts
the item, whose transaction logs the decision in turn, then lets go. Two nodes deciding on
near-duplicates at the same moment are thereby ordered: the second sees the first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.schema import DECISION_LOCK

if TYPE_CHECKING:
    from monitor.pipeline.index import DedupeIndex

log = logging.getLogger("monitor.cluster")

HOLD_SAMPLES = 100_000  # hold times kept for the median and p99 (a bounded window)


class DecisionGate:
    """The decision lock of one node, with the node's place in the decision log."""

    def __init__(self, store: Store, *, observe: Callable[[float], None] | None = None) -> None:
        self.store = store
        self.last_id = 0  # the last logged decision this node's indexes have seen
        self.held: deque[float] = deque(maxlen=HOLD_SAMPLES)  # seconds per hold
        self._observe = observe
        self._local: asyncio.Lock | None = None
        self._conn: sa.Connection | None = None

    @asynccontextmanager
    async def hold(self, index: DedupeIndex, now: Callable[[], datetime]) -> AsyncIterator[None]:
        """Hold the lock with `index` caught up. The body must not await: the node's other
        decisions wait on a local lock, and the database lock is taken in a thread so the
        event loop keeps serving the node's fetches while another node decides."""
        if self._local is None:
            self._local = asyncio.Lock()
        async with self._local:
            await asyncio.to_thread(self._acquire)
            started = time.perf_counter()
            try:
                self._catch_up(index, now())
                yield
                self.last_id = self.store.last_index_log_id()
            finally:
                self._release()
                self._record(time.perf_counter() - started)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the lock from synchronous code (loading the indexes at start)."""
        self._acquire()
        try:
            yield
            self.last_id = self.store.last_index_log_id()
        finally:
            self._release()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- internals -------------------------------------------------------------------------

    def _catch_up(self, index: DedupeIndex, now: datetime) -> None:
        logged = self.store.index_log_after(self.last_id)
        if logged:
            index.catch_up(self.store, logged, now)
            self.last_id = logged[-1][0]

    def _connection(self) -> sa.Connection:
        if self._conn is None:
            # Autocommit: the lock belongs to the session, not to a transaction kept open.
            self._conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _acquire(self) -> None:
        try:
            self._connection().execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": DECISION_LOCK})
        except sa.exc.SQLAlchemyError as exc:
            self.close()  # a broken session: the next hold opens a new one
            raise StoreError(f"cannot take the decision lock: {exc}") from exc

    def _release(self) -> None:
        try:
            self._connection().execute(
                sa.text("SELECT pg_advisory_unlock(:k)"), {"k": DECISION_LOCK}
            )
        except sa.exc.SQLAlchemyError as exc:
            # The session is gone, and the lock with it: nothing is left to release.
            log.warning("decision_lock_release_failed error=%s", exc)
            self.close()

    def _record(self, seconds: float) -> None:
        self.held.append(seconds)
        if self._observe is not None:
            self._observe(seconds)


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile of `values` (nearest rank); 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]
