"""The decision lock: one PostgreSQL advisory lock around every dedupe, story and tag decision
of every node, after the node's indexes catch up with what the others stored. I/O: database.

Each node keeps its own in-memory indexes (`DedupeIndex`). A hold is one transaction on the
gate's own connection: it takes the transaction-scoped lock, reads in one query the decisions
logged since a given position (with the items they name and the corrections' state), replays
those the node has not seen, then the body decides and inserts the item in the same
transaction, whose commit logs the decision and lets go of the lock. Two nodes deciding on
near-duplicates at the same moment are thereby ordered: the second sees the first.

A new article's whole decision runs on the gate's one thread (`run`): the lookups and the
story decided ahead of the lock, then the hold (`locked`), with no hop to the event loop
while the lock is held. Everything that reads or changes the node's indexes in cluster mode
goes through that thread or holds the gate's local lock, so nothing else touches them
meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from monitor.cluster.foresight import Logged, Stale
from monitor.errors import StoreError
from monitor.store import Store, StoredSignature
from monitor.store.schema import DECISION_LOCK, corrections, index_log, items, signatures, sources

if TYPE_CHECKING:
    from monitor.pipeline.index import DedupeIndex

log = logging.getLogger("monitor.cluster")

HOLD_SAMPLES = 100_000  # hold times kept for the median and p99 (a bounded window)
# The lock, and the hold's commit made asynchronous: the commit lets go of the lock without
# waiting for the WAL to reach the disk (a few ms on a loaded machine, a third of a hold).
# Other nodes see the rows at once; the job's own completion, committed after it, flushes the
# WAL up to it, so a database crash before that loses the decision and its job is run again.
LOCK = sa.text("SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(:k)")
SWITCH_SECONDS = 0.0005  # the GIL's switch interval once a node decides on the gate's thread
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Held:
    """Inside a hold: the transaction that holds the lock (the body's insert joins it), and
    the rows logged after the position the hold was asked to read from; from `locked`, also
    the corrections' state and the rows as read (for `catch_up`)."""

    conn: sa.Connection
    since: Sequence[Logged]
    corrections: tuple[int, int] = (0, 0)
    rows: Sequence[sa.Row[Any]] = ()


class DecisionGate:
    """The decision lock of one node, with the node's place in the decision log."""

    def __init__(self, store: Store, *, observe: Callable[[float], None] | None = None) -> None:
        self.store = store
        self.last_id = 0  # the last logged decision this node's indexes have seen
        # Seconds per hold, from the lock's grant to the commit that lets go of it, and from
        # the moment the event loop resumed the hold (what was measured before the grant was).
        self.held: deque[float] = deque(maxlen=HOLD_SAMPLES)
        self.held_on_loop: deque[float] = deque(maxlen=HOLD_SAMPLES)
        self.reused = 0  # decisions taken with every answer looked up before the lock
        self.redone = 0  # decisions that looked something up again inside it
        self.kept = 0  # stories decided ahead of the lock that stood
        self.undone = 0  # stories decided ahead that did not stand, taken back
        self.retried = 0  # holds let go of with nothing written, to decide ahead again
        self._observe = observe
        self._local: asyncio.Lock | None = None
        self._conn: sa.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def run(self, work: Callable[[], T]) -> T:
        """Run `work` on the gate's one thread, after the node's earlier decisions and while
        no `hold` is open. Cancelled, it still waits for `work` to end (the thread cannot be
        stopped halfway; the next decision must find the indexes as `work` left them)."""
        if self._local is None:
            self._local = asyncio.Lock()
        async with self._local:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, thread_name_prefix="monitor-decide")
                # Each answer from the database inside the lock waits for the GIL while the
                # event loop runs Python: at most one switch interval (5 ms by default), and a
                # hold has about ten of them.
                sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_SECONDS))
            done = asyncio.get_running_loop().run_in_executor(self._thread, work)
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await done
                raise

    @contextmanager
    def locked(self, since: int) -> Iterator[Held]:
        """On the gate's thread (`run`): hold the lock, with the rows logged after `since`
        read; the body calls `catch_up` before it decides (after it has checked what it
        decided ahead against those rows), then inserts in `Held.conn`. The commit at the end
        lets go of the lock; the hold is timed from the grant to the end of the commit."""
        start = min(since, self.last_id)
        conn, granted, rows = self._acquire(start)
        state = (int(rows[0].last or 0), int(rows[0].undone or 0)) if rows else (0, 0)
        logged = [_logged(r) for r in rows if r.id is not None]
        fresh = [row for row in logged if row.log_id > since]
        with self._committing(conn, granted, granted, lambda: Held(conn, fresh, state, rows)) as h:
            yield h

    def catch_up(self, held: Held, index: DedupeIndex, now: datetime) -> None:
        """Inside `locked`: replay into `index` what the others logged since it last looked,
        and obey the corrections."""
        self._catch_up(held.rows, index, now, self.last_id)

    def story_kept(self, kept: bool) -> None:
        """Note whether a story decided ahead of the lock stood."""
        if kept:
            self.kept += 1
        else:
            self.undone += 1

    @asynccontextmanager
    async def hold(
        self, index: DedupeIndex, now: Callable[[], datetime], *, since: int | None = None
    ) -> AsyncIterator[Held]:
        """Hold the lock with `index` caught up; the body gets the rows logged after `since`
        (default: after what the index had seen). The body must not await: the node's other
        decisions wait on a local lock, and the database lock is taken in a thread so the
        event loop keeps serving the node's fetches while another node decides."""
        if self._local is None:
            self._local = asyncio.Lock()
        async with self._local:
            start = self.last_id if since is None else since
            acquiring = asyncio.ensure_future(
                asyncio.to_thread(self._acquire, min(start, self.last_id))
            )
            try:
                conn, granted, rows = await asyncio.shield(acquiring)
            except asyncio.CancelledError:
                # The thread takes the lock all the same: let go of it before another hold
                # uses the connection (else every node would wait on this one for good).
                with contextlib.suppress(Exception):
                    self._end((await acquiring)[0], commit=False)
                raise
            resumed = time.perf_counter()

            def caught_up() -> Held:
                return Held(conn, self._catch_up(rows, index, now(), start))

            with self._committing(conn, granted, resumed, caught_up) as held:
                yield held

    @contextmanager
    def _committing(
        self, conn: sa.Connection, granted: float, resumed: float, make: Callable[[], Held]
    ) -> Iterator[Held]:
        """The body of a hold: `make` the body's view, run the body, commit (which lets go
        of the lock) or roll back, and time the hold from `granted` (and from `resumed`, when
        the holder went on after the grant)."""
        try:
            held = make()
            self.store.last_logged = 0
            yield held
            self.last_id = max(self.last_id, self.store.last_logged)
            self._end(conn, commit=True)
        except BaseException:
            self._end(conn, commit=False)
            raise
        finally:
            ended = time.perf_counter()
            self._record(ended - granted, ended - resumed)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the lock from synchronous code (loading the indexes), on a connection of its
        own: the gate's thread may be using the gate's meanwhile."""
        try:
            conn = self.store.engine.connect()
            conn.begin()
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": DECISION_LOCK})
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot take the decision lock: {exc}") from exc
        with conn:
            try:
                yield
                self.last_id = self.store.last_index_log_id()
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def count(self, again: Stale) -> None:
        """Note whether a decision reused every answer looked up before the lock."""
        if again.none:
            self.reused += 1
        else:
            self.redone += 1

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- internals -------------------------------------------------------------------------

    def _catch_up(
        self, rows: Sequence[sa.Row[Any]], index: DedupeIndex, now: datetime, since: int
    ) -> list[Logged]:
        """Replay into `index` the rows read with the lock (`_acquire`) that it has not seen,
        obey the corrections, and return the rows after `since`."""
        state = (int(rows[0].last or 0), int(rows[0].undone or 0)) if rows else (0, 0)
        logged = [_logged(r) for r in rows if r.id is not None]
        fresh = [row for row in logged if row.log_id > self.last_id]
        if fresh:
            index.catch_up(
                self.store,
                [(row.log_id, row.item_id, row.kind) for row in fresh],
                now,
                rows=_signatures(fresh),
            )
            self.last_id = fresh[-1].log_id
        index.obey_corrections(self.store, now, state=state)
        return [row for row in logged if row.log_id > since]

    def _acquire(
        self, after: int | None = None
    ) -> tuple[sa.Connection, float, Sequence[sa.Row[Any]]]:
        """In a thread: begin, take the lock, and (with `after`) read in one query the log
        after it with the corrections' state, so the read overlaps the event loop's way back
        to the hold. Returns the connection, when the lock was granted, and the rows."""
        try:
            if self._conn is None:
                self._conn = self.store.engine.connect()
            conn = self._conn
            conn.begin()
            conn.execute(LOCK, {"k": DECISION_LOCK})
            granted = time.perf_counter()
            rows = [] if after is None else conn.execute(_LOG_QUERY, {"after": after}).all()
            return conn, granted, rows
        except sa.exc.SQLAlchemyError as exc:
            self._drop()  # a broken session: the next hold opens a new one
            raise StoreError(f"cannot take the decision lock and read its log: {exc}") from exc

    def _end(self, conn: sa.Connection, *, commit: bool) -> None:
        """Commit (or roll back) the hold's transaction, which lets go of the lock."""
        try:
            if commit:
                conn.commit()
            else:
                conn.rollback()
        except sa.exc.SQLAlchemyError as exc:
            # The session is gone, and the lock with it: nothing is left to release.
            self._drop()
            if commit:
                raise StoreError(f"cannot commit the decision: {exc}") from exc
            log.warning("decision_lock_release_failed error=%s", exc)

    def _record(self, seconds: float, on_loop: float) -> None:
        self.held.append(seconds)
        self.held_on_loop.append(on_loop)
        if self._observe is not None:
            self._observe(seconds)


def _log_query() -> sa.Select[Any]:
    """The corrections' state, joined to every row logged after the parameter `after` with
    its item's keys and signature (none: one row of nulls beside the state). Built once: its
    compiled form is reused."""
    state = sa.select(
        sa.func.max(corrections.c.id).label("last"),
        sa.func.count(corrections.c.undone_at).label("undone"),
    ).subquery()
    logged = (
        sa.select(
            index_log.c.id,
            index_log.c.item_id,
            index_log.c.kind,
            sources.c.name.label("source"),
            items.c.url,
            items.c.canonical_url,
            items.c.text_hash,
            items.c.fetched_at,
            items.c.story_id,
            items.c.story_part,
            signatures.c.signature,
            signatures.c.shingles,
            signatures.c.features,
        )
        .select_from(
            index_log.outerjoin(items, items.c.id == index_log.c.item_id)
            .outerjoin(signatures, signatures.c.item_id == items.c.id)
            .outerjoin(sources, sources.c.id == items.c.source_id)
        )
        .where(index_log.c.id > sa.bindparam("after", type_=sa.Integer))
        .subquery()
    )
    return (
        sa.select(state.c.last, state.c.undone, logged)
        .select_from(state.outerjoin(logged, sa.true()))
        .order_by(logged.c.id)
    )


def _signatures(logged: Sequence[Logged]) -> list[StoredSignature]:
    """The signatures of the items inserted or changed, once each, in item id order (a
    "moves" row may name an item too, and an item may be inserted and changed)."""
    found = {
        row.item_id: row.stored
        for row in logged
        if row.kind in ("insert", "update") and row.stored is not None
    }
    return [found[item_id] for item_id in sorted(found)]


def _logged(row: sa.Row[Any]) -> Logged:
    return Logged(
        log_id=int(row.id),
        item_id=int(row.item_id),
        kind=str(row.kind),
        source=row.source,
        url=row.url,
        canonical_url=row.canonical_url,
        text_hash=row.text_hash,
        stored=None
        if row.signature is None or row.url is None
        else StoredSignature(
            row.item_id,
            row.url,
            row.source,
            row.fetched_at,
            row.signature,
            row.shingles,
            row.features,
            row.story_id,
            row.story_part,
        ),
    )


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile of `values` (nearest rank); 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


_LOG_QUERY = _log_query()
