"""The job queue shared by the nodes: procrastinate on the monitor's PostgreSQL database, with
its worker heartbeats and retries. I/O: database.

Four kinds of job (DESIGN §7): `poll` (one source: fetch and parse its feed, queue what is new),
`ingest` (one article and its canonical twins: fetch the page, extract in the node's process
pool, decide under the decision lock, store), `digest` (one window of one digest) and `outbox`
(retry pending deliveries). Every node's APScheduler defers them; a queueing lock per source,
article and digest name turns N deferrals of one slot into one job, and a lock per source (per
article; one lock for all digest work) means no two workers run them at once. A node that stops
sending heartbeats is dead after `stalled_after`: any live node puts its running jobs back in
the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monitor.config import ClusterConfig
from monitor.errors import StoreError
from monitor.models import Entry

log = logging.getLogger("monitor.cluster")

POLL = "monitor.poll"
INGEST = "monitor.ingest"
DIGEST = "monitor.digest"
OUTBOX = "monitor.outbox"
KINDS = {POLL: "poll", INGEST: "ingest", DIGEST: "digest", OUTBOX: "outbox"}
DIGEST_LOCK = "digests"  # one lock for all digest work: a window is never sent twice at once
# Transient failures (the database or SMTP away for a moment): tried again, 5, 10, 20, 40 s on.
MAX_ATTEMPTS = 5
RETRY_WAIT = 5


def libpq_url(storage_url: str) -> str:
    """The SQLAlchemy URL (`postgresql+psycopg://...`) as a libpq connection string."""
    url = sa.engine.make_url(storage_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobQueue:
    """One node's side of the queue: deferring jobs, running them in a worker, recovering the
    jobs of dead nodes."""

    def __init__(
        self,
        storage_url: str,
        config: ClusterConfig,
        *,
        drain_seconds: float,
        on_done: Callable[[str], None],
    ) -> None:
        import procrastinate  # the `cluster` extra; `load_config` checked that it is there

        self._procrastinate = procrastinate
        self.config = config
        self.name = node_name()
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=libpq_url(storage_url))
        )
        self._drain_seconds = drain_seconds
        self._on_done = on_done
        self._worker: asyncio.Task[None] | None = None
        self.retry = procrastinate.RetryStrategy(
            max_attempts=MAX_ATTEMPTS, wait=RETRY_WAIT, exponential_wait=2
        )

    def register(self, task: str, run: Callable[..., Awaitable[None]]) -> None:
        """Make `run(**args)` the body of jobs named `task`; a finished one is counted."""

        async def body(**kwargs: Any) -> None:
            await run(**kwargs)
            self._on_done(KINDS.get(task, task))

        self.app.task(name=task, retry=self.retry)(body)

    async def open(self) -> None:
        try:
            await self.app.open_async()
        except Exception as exc:  # the connector raises its own (and psycopg's) types
            raise StoreError(f"cannot open the job queue: {exc}") from exc

    async def defer(self, task: str, *, lock: str, queueing_lock: str, **args: Any) -> bool:
        """Queue one job; False when one with the same queueing lock is already waiting."""
        deferrer = self.app.configure_task(name=task, lock=lock, queueing_lock=queueing_lock)
        try:
            await deferrer.defer_async(**args)
        except self._procrastinate.exceptions.AlreadyEnqueued:
            return False
        return True

    def start_worker(self) -> None:
        self._worker = asyncio.create_task(
            self.app.run_worker_async(
                name=self.name,
                concurrency=self.config.concurrency,
                install_signal_handlers=False,  # the daemon's handlers drain it
                update_heartbeat_interval=self.config.heartbeat.total_seconds(),
                stalled_worker_timeout=self.config.stalled_after.total_seconds(),
                shutdown_graceful_timeout=self._drain_seconds,
                delete_jobs="successful",
                fetch_job_polling_interval=max(1.0, self.config.heartbeat.total_seconds()),
            ),
            name="queue-worker",
        )

    async def stop_worker(self) -> None:
        """Take no new job; let the running ones finish (within the drain timeout)."""
        if self._worker is None:
            return
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None

    async def recover_stalled(self) -> int:
        """Put back in the queue the running jobs of nodes whose heartbeat stopped (killed,
        frozen or cut off); returns how many."""
        seconds = self.config.stalled_after.total_seconds()
        manager = self.app.job_manager
        await manager.prune_stalled_workers(seconds)
        stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=seconds))
        exceptions = self._procrastinate.exceptions
        for job in stalled:
            assert job.id is not None
            try:
                await manager.retry_job(job)
                action = "retried"
            except exceptions.UniqueViolation:
                # The same slot is already queued again (a scheduler deferred it since): that
                # job does the work; this one only has to let go of its lock.
                await manager.finish_job_by_id_async(
                    job.id, self._procrastinate.jobs.Status.ABORTED, delete_job=False
                )
                action = "replaced"
            log.warning(
                "job_recovered id=%s task=%s lock=%s action=%s: its node stopped sending "
                "heartbeats",
                job.id,
                job.task_name,
                job.lock,
                action,
            )
        return len(stalled)

    def problem(self) -> str | None:
        """Why this node's worker is not taking jobs (None: it is running)."""
        if self._worker is None:
            return "the queue worker is not running"
        if self._worker.done():
            exc = None if self._worker.cancelled() else self._worker.exception()
            return f"the queue worker stopped: {exc!r}"
        return None

    async def close(self) -> None:
        await self.stop_worker()
        await self.app.close_async()


def entry_to_json(entry: Entry) -> dict[str, Any]:
    """An entry as an ingest job's argument (JSON)."""
    values = {f.name: getattr(entry, f.name) for f in fields(entry)}
    for key in ("published_at", "updated_at"):
        if values[key] is not None:
            values[key] = values[key].isoformat()
    return values


def entry_from_json(values: dict[str, Any]) -> Entry:
    known = {f.name for f in fields(Entry)}
    data = {k: v for k, v in values.items() if k in known}
    for key in ("published_at", "updated_at"):
        if data.get(key) is not None:
            data[key] = datetime.fromisoformat(data[key])
    return Entry(**data)
