"""`monitor run`: scheduled polls and digests, SIGHUP reload, a draining shutdown, /healthz and
/metrics. I/O: network, database, files, signals.

APScheduler 3 (`AsyncIOScheduler`, in-memory job store) only decides *when*: its jobs are
rebuilt from the config at every start and reload, and all state (next check times, the
digest outbox, the last window of each digest) lives in our own tables. So a restart, or a
`kill -9`, resumes from the database: a digest that fell due while the daemon was down is
sent once at start-up, and a pending one is retried by the outbox job.

With `[cluster] enabled` (DESIGN §7) the scheduler of every node only defers jobs to the shared
queue (`monitor.cluster.queue`), the node's queue worker runs them, and every decision on a new
article is taken under the cluster's decision lock (`monitor.cluster.gate`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.interval import IntervalTrigger

from monitor.cluster.gate import DecisionGate, percentile
from monitor.cluster.queue import (
    DIGEST,
    DIGEST_LOCK,
    INGEST,
    OUTBOX,
    POLL,
    JobQueue,
    entry_from_json,
    entry_to_json,
)
from monitor.cluster.status import queue_depth
from monitor.config import Config, DigestConfig, load_config, serving_notes
from monitor.corpus import corpus_files
from monitor.dedupe.exact import canonical_url
from monitor.errors import ConfigError, MonitorError, StoreError
from monitor.fetch import Fetcher, make_client
from monitor.loop import run as run_loop
from monitor.metrics import CONTENT_TYPE, Metrics
from monitor.models import Entry, Source
from monitor.pipeline.digest import (
    DEFAULT_FIRST_WINDOW,
    SendOutcome,
    Window,
    deliver,
    deliver_due,
    next_window,
    stage_digest,
)
from monitor.pipeline.index import DedupeIndex
from monitor.pipeline.poll import Clock, Deferrer, Poller, make_pool
from monitor.resources import default_templates_dir
from monitor.schedule import cron_trigger, due_slack, latest_fire, missed_fire, poll_jitter
from monitor.server import Endpoint, Request, Response, Route, json_response
from monitor.store import Store
from monitor.web.pages import Pages, record_correction
from monitor.web.secret import load_secret

log = logging.getLogger("monitor.daemon")

POLL_MISFIRE_GRACE = 300  # seconds: a poll more than 5 minutes late waits for its next turn
DIGEST_MISFIRE_GRACE = 6 * 3600  # seconds: a digest up to 6 hours late is still sent
START_SPREAD = 10.0  # seconds over which the first polls after start are spread
MAINTENANCE_INTERVAL = timedelta(hours=1)
# A stop signal repeated within this many seconds is the same stop delivered twice (`timeout`
# and some supervisors signal both the process and its group), not a second request.
SIGNAL_ECHO = 0.5


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Runtime:
    """What one config generation polls with: an HTTP client, the extraction processes and a
    Poller. A reload builds a new one; the old one closes once its last job is done."""

    def __init__(
        self,
        config: Config,
        store: Store,
        index: DedupeIndex | Callable[[], DedupeIndex],
        clock: Clock,
        gate: DecisionGate | None = None,
        defer: Deferrer | None = None,
    ) -> None:
        workers = config.poll.workers or os.cpu_count() or 1
        self.pool = make_pool(workers, config.taxonomy)
        self.client = make_client(config.http)
        fetcher = Fetcher(self.client, config.http)
        self.poller = Poller(
            store,
            fetcher,
            self.pool,
            config.poll,
            index=index,
            clock=clock,
            gate=gate,
            defer=defer,
        )
        self.users = 0

    async def start_workers(self) -> None:
        """Fork the extraction processes now and wait until they are ready. Done before the
        dedupe index is loaded, they do not inherit it (about 60 MB each at 100k items)."""
        await asyncio.get_running_loop().run_in_executor(self.pool, os.getpid)

    @contextmanager
    def use(self) -> Iterator[Poller]:
        self.users += 1
        try:
            yield self.poller
        finally:
            self.users -= 1

    async def close(self, *, kill: bool = False) -> None:
        await self.client.aclose()
        if kill:  # a drain that timed out: do not wait for an extraction nobody will use
            self.kill_workers()
        self.pool.shutdown(wait=not kill, cancel_futures=True)

    def kill_workers(self) -> None:
        """SIGKILL the extraction processes (they ignore SIGTERM and SIGINT: see init_worker)."""
        for process in self.pool.processes():
            process.kill()


class Daemon:
    """Runs until SIGTERM or SIGINT; `run` returns the exit code."""

    def __init__(
        self,
        config: Config,
        *,
        env: Mapping[str, str],
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.env = env
        self.clock = clock
        self.rng = rng or random.Random()
        self.metrics = Metrics(
            queue_depth=lambda: float(len(self._inflight)),
            outbox_pending=self._outbox_pending,
            cluster_jobs=self._cluster_jobs if config.cluster.enabled else None,
        )
        self.gate: DecisionGate | None = None
        self.queue: JobQueue | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._delivery = asyncio.Lock()  # one delivery at a time: never the same digest twice
        self._first_signal_at: float | None = None
        self._endpoint: Endpoint | None = None
        self._corpus_stamp = _corpus_stamp(config)
        self.endpoint_port: int | None = None

    # -- life cycle ------------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        config = self.config
        self.store = Store.open(config.storage_url, now=self.clock())
        try:
            self.store.sync_sources(config.sources, self.clock())
            if config.cluster.enabled:
                self.store.log_decisions = True
                self.gate = DecisionGate(self.store, observe=self.metrics.decision_lock.observe)
                self.queue = JobQueue(
                    config.storage_url,
                    config.cluster,
                    drain_seconds=config.daemon.drain_timeout.total_seconds(),
                    on_done=lambda kind: self.metrics.cluster_jobs_done.labels(kind).inc(),
                )
                self.queue.register(POLL, self._queued_poll)
                self.queue.register(INGEST, self._queued_ingest)
                self.queue.register(DIGEST, self._queued_digest)
                self.queue.register(OUTBOX, self._queued_outbox)
                await self.queue.open()
            self.runtime = self._new_runtime(config, lambda: self.index)
            await self.runtime.start_workers()
            started = time.perf_counter()
            self.index = self._load_index(config)
            log.info(
                "index_loaded entries=%d seconds=%.2f",
                len(self.index.near),
                time.perf_counter() - started,
            )
            self.scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
            self.scheduler.add_listener(self._on_job_skipped, EVENT_JOB_MAX_INSTANCES)
            self._register_jobs()
            self.scheduler.start()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._on_stop_signal, signum)
            loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
            await self._start_endpoint()
            if self.queue is not None:
                self.queue.start_worker()
            log.info(
                "daemon_started pid=%d sources=%d digests=%d endpoint=%s cluster=%s",
                os.getpid(),
                len(config.sources),
                len(config.digests),
                f"{config.server.host}:{self.endpoint_port}" if self.endpoint_port else "off",
                self.queue.name if self.queue is not None else "off",
            )
            self._catch_up()
            await self._stopping.wait()
            return await self._drain()
        finally:
            if self.gate is not None:
                self.gate.close()
            self.store.close()

    def _on_stop_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        now = time.monotonic()
        if self._first_signal_at is not None:
            if now - self._first_signal_at < SIGNAL_ECHO:
                return  # the same stop, delivered again (to the process and to its group)
            log.warning("daemon_exit_now signal=%s: second signal, not draining", name)
            self.runtime.kill_workers()
            os._exit(128 + signum)
        self._first_signal_at = now
        log.info(
            "daemon_stopping signal=%s in_flight=%d drain_timeout=%.0fs",
            name,
            len(self._inflight),
            self.config.daemon.drain_timeout.total_seconds(),
        )
        self._stopping.set()

    async def _drain(self) -> int:
        """Stop scheduling, let in-flight jobs finish within the drain timeout, cancel the rest,
        close everything. Each store write is its own transaction, so nothing is half-written."""
        self.scheduler.pause()
        timeout = self.config.daemon.drain_timeout.total_seconds()
        started = time.perf_counter()
        if self.queue is not None:
            # The worker takes no new job and waits for its running ones (within the drain
            # timeout; what it had to abort is retried by another node).
            await self.queue.close()
        if self.gate is not None and self.gate.held:
            held, on_loop = list(self.gate.held), list(self.gate.held_on_loop)
            log.info(
                "decision_lock holds=%d median_ms=%.2f p99_ms=%.2f max_ms=%.2f "
                "loop_median_ms=%.2f loop_p99_ms=%.2f reused=%d redone=%d kept=%d undone=%d "
                "retried=%d",
                len(held),
                1000 * percentile(held, 0.5),
                1000 * percentile(held, 0.99),
                1000 * max(held),
                1000 * percentile(on_loop, 0.5),
                1000 * percentile(on_loop, 0.99),
                self.gate.reused,
                self.gate.redone,
                self.gate.kept,
                self.gate.undone,
                self.gate.retried,
            )
        pending: set[asyncio.Task[Any]] = set()
        running = self._inflight | self._background
        if running:
            _, pending = await asyncio.wait(running, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        self.scheduler.shutdown(wait=False)
        if self._endpoint is not None:
            await self._endpoint.close()
        await self.runtime.close(kill=bool(pending))
        log.info(
            "daemon_stopped drained=%d cancelled=%d seconds=%.2f",
            len(running) - len(pending),
            len(pending),
            time.perf_counter() - started,
        )
        return 0

    # -- jobs ------------------------------------------------------------------------------------

    def _register_jobs(self) -> None:
        """(Re)build every job from the config; nothing about jobs is persisted."""
        scheduler = self.scheduler
        scheduler.remove_all_jobs()
        now = datetime.now(UTC)
        common: dict[str, Any] = {"coalesce": True, "max_instances": 1, "replace_existing": True}
        cluster = self.queue is not None
        for source in self.config.sources:
            seconds = source.interval.total_seconds()
            scheduler.add_job(
                self._defer_poll if cluster else self._poll_job,
                IntervalTrigger(seconds=seconds, jitter=poll_jitter(source.interval), timezone=UTC),
                args=[source.name],
                id=f"poll:{source.name}",
                name=f"poll {source.name}",
                misfire_grace_time=POLL_MISFIRE_GRACE,
                next_run_time=now
                + timedelta(seconds=self.rng.uniform(0, min(seconds, START_SPREAD))),
                **common,
            )
        for digest in self.config.digests:
            scheduler.add_job(
                self._defer_digest if cluster else self._digest_job,
                cron_trigger(digest.schedule, digest.timezone),
                args=[digest.name],
                id=f"digest:{digest.name}",
                name=f"digest {digest.name}",
                misfire_grace_time=DIGEST_MISFIRE_GRACE,
                **common,
            )
        scheduler.add_job(
            self._defer_outbox if cluster else self._outbox_job,
            IntervalTrigger(seconds=self.config.daemon.outbox_interval.total_seconds()),
            id="outbox",
            name="outbox",
            misfire_grace_time=DIGEST_MISFIRE_GRACE,
            **common,
        )
        scheduler.add_job(
            self._maintenance_job,
            IntervalTrigger(seconds=MAINTENANCE_INTERVAL.total_seconds()),
            id="maintenance",
            name="maintenance",
            misfire_grace_time=DIGEST_MISFIRE_GRACE,
            **common,
        )
        if cluster:
            scheduler.add_job(
                self._recover_job,
                IntervalTrigger(seconds=self.config.cluster.heartbeat.total_seconds()),
                id="recover",
                name="recover stalled jobs",
                misfire_grace_time=POLL_MISFIRE_GRACE,
                **common,
            )

    def _catch_up(self) -> None:
        """At start: retry what the outbox holds, and send once each digest whose schedule
        fired while the daemon was down (its window runs from the last recorded one to now)."""
        cluster = self.queue is not None
        self._spawn(self._defer_outbox() if cluster else self._outbox_job())
        now = self.clock()
        for digest in self.config.digests:
            trigger = cron_trigger(digest.schedule, digest.timezone)
            fire = missed_fire(trigger, self.store.last_window_end(digest.name), now)
            if fire is not None:
                log.info("digest_missed name=%s due_at=%s", digest.name, fire.isoformat())
                if cluster:
                    self._spawn(self._defer_digest(digest.name))
                else:
                    self._spawn(self._digest_job(digest.name, reason="missed"))

    # -- cluster mode: the scheduler defers, the queue worker runs ---------------------------

    async def _defer_poll(self, name: str) -> None:
        assert self.queue is not None
        if not self._stopping.is_set():
            await self._defer(
                POLL, lock=f"source:{name}", queueing_lock=f"poll:{name}", source=name
            )

    async def _defer_digest(self, name: str) -> None:
        if not self._stopping.is_set():
            await self._defer(DIGEST, lock=DIGEST_LOCK, queueing_lock=f"digest:{name}", name=name)

    async def _defer_outbox(self) -> None:
        if not self._stopping.is_set():
            await self._defer(OUTBOX, lock=DIGEST_LOCK, queueing_lock="outbox")

    async def _defer(
        self, task: str, *, lock: str, queueing_lock: str, strict: bool = False, **args: Any
    ) -> None:
        """Queue a job. A failure is logged (the next tick defers again), or with `strict`
        raised as a StoreError: an article that was not queued must fail its poll, or the
        poll would record the feed's validators and never see the article again."""
        assert self.queue is not None
        try:
            if not await self.queue.defer(task, lock=lock, queueing_lock=queueing_lock, **args):
                # Another node deferred this slot first: one job per slot, whoever defers.
                self.metrics.skipped_runs.labels(task.rsplit(".", 1)[-1]).inc()
        except Exception as exc:  # procrastinate's and psycopg's own errors: the queue is away
            log.error("defer_failed task=%s lock=%s error=%s", task, lock, exc)
            if strict:
                raise StoreError(f"cannot queue {task} ({lock}): {exc}") from exc

    async def _queued_poll(self, source: str) -> None:
        """A poll job of the queue. A database error raises, so the queue retries it."""
        await self._poll_job(source, raise_store_errors=True)

    async def _defer_ingest(
        self, source: Source, group: list[tuple[Entry, int | None]], cutoff: datetime | None
    ) -> None:
        """Queue one ingest job: an article (and its canonical twins) found by a poll. The
        queueing lock keeps one waiting job per article; a poll that finds it again while its
        job runs queues another, which finds it stored and does nothing."""
        first = group[0][0]
        await self._defer(
            INGEST,
            strict=True,
            lock=f"article:{source.name}:{canonical_url(first.url)}",
            queueing_lock=f"ingest:{source.name}:{canonical_url(first.url)}",
            source=source.name,
            entries=[entry_to_json(e) for e, _ in group],
            existing=[i for _, i in group],
            cutoff=cutoff.isoformat() if cutoff else None,
        )

    async def _queued_ingest(
        self,
        source: str,
        entries: list[dict[str, Any]],
        existing: list[int | None],
        cutoff: str | None,
    ) -> None:
        """An ingest job of the queue: errors of the database or of the extraction processes
        raise, so the queue retries the job."""
        configured = self.config.source(source)
        if configured is None:
            return
        group = [(entry_from_json(e), i) for e, i in zip(entries, existing, strict=True)]
        runtime = self.runtime
        with self._tracked(), runtime.use() as poller:
            try:
                outcome = await poller.ingest(
                    configured, group, datetime.fromisoformat(cutoff) if cutoff else None
                )
            except BrokenProcessPool:
                log.error("workers_died source=%r: starting new extraction workers", source)
                self._replace_broken(runtime)
                raise
        self.metrics.observe_articles(outcome)

    async def _queued_digest(self, name: str) -> None:
        """A digest job of the queue: the window from the last recorded one to the latest time
        the schedule fired (the same slot whichever node runs it); nothing when another node
        already sent it."""
        digest = self._digest(name)
        if digest is None:
            return
        assert self.gate is not None
        # A barrier: every item first seen before the window ends is committed once any node
        # has held the decision lock after that time (items are stamped inside the lock).
        async with self.gate.hold(self.index, self.clock):
            now = self.clock()
        last = self.store.last_window_end(name)
        end = (
            now
            if last is None
            else latest_fire(cron_trigger(digest.schedule, digest.timezone), last, now)
        )
        if end is None:
            log.info("digest_job name=%s status=not_due: another node sent this window", name)
            return
        window = Window(last or end - DEFAULT_FIRST_WINDOW, end)
        with self._tracked():
            staged = stage_digest(self.store, self.config, digest, window, now=now)
            if isinstance(staged, SendOutcome):
                outcome = staged
            else:
                outcome = await asyncio.to_thread(
                    deliver, self.store, self.config, digest, staged, now=now
                )
        self.metrics.digests.labels(name, outcome.status).inc()
        log.info(
            "digest_job name=%s reason=queue status=%s window_start=%s window_end=%s",
            name,
            outcome.status,
            window.start.isoformat(),
            window.end.isoformat(),
        )

    async def _queued_outbox(self) -> None:
        await self._outbox_job()

    async def _recover_job(self) -> None:
        assert self.queue is not None
        try:
            count = await self.queue.recover_stalled()
        except Exception as exc:  # the queue is away: try again at the next tick
            log.error("recover_failed error=%s", exc)
            return
        if count:
            self.metrics.cluster_jobs_recovered.inc(count)

    def _cluster_jobs(self) -> dict[tuple[str, str], int]:
        return queue_depth(self.store)

    # -- jobs, single node (and the bodies of queued polls and retries) ------------------------

    async def _poll_job(self, name: str, *, raise_store_errors: bool = False) -> None:
        source = self.config.source(name)
        if source is None or self._stopping.is_set():
            return
        runtime = self.runtime
        with self._tracked(), runtime.use() as poller:
            try:
                outcome = await poller.poll_source(
                    source, due_only=True, slack=due_slack(source.interval)
                )
            except StoreError as exc:
                log.error("poll_store_error source=%r error=%s", name, exc)
                if raise_store_errors:
                    raise
                return
            except BrokenProcessPool:
                # A worker died (the OOM killer, a crash in a parser): nothing of this poll was
                # recorded, so the next one redoes it, with new workers.
                log.error("workers_died source=%r: starting new extraction workers", name)
                self._replace_broken(runtime)
                return
        self.metrics.observe_poll(outcome, time.time())

    async def _digest_job(self, name: str, *, reason: str = "schedule") -> None:
        digest = self._digest(name)
        if digest is None:
            return
        with self._tracked():
            try:
                outcome = await self._send(digest)
            except MonitorError as exc:
                log.error("digest_job_failed name=%s error=%s", name, exc)
                self.metrics.digests.labels(name, "error").inc()
                return
        self.metrics.digests.labels(name, outcome.status).inc()
        record = outcome.record
        log.info(
            "digest_job name=%s reason=%s status=%s window_start=%s window_end=%s items=%s",
            name,
            reason,
            outcome.status,
            record.window_start.isoformat(),
            record.window_end.isoformat(),
            "n/a"
            if outcome.status == "already_sent"
            else len(self.store.digest_item_ids(record.id)),
        )

    async def _send(self, digest: DigestConfig) -> SendOutcome:
        async with self._delivery:
            # Staged on the event loop, where every item insert also runs: an item is either
            # committed before the window ends or first seen after it, never lost between two.
            now = self.clock()
            window = next_window(self.store, digest.name, now)
            staged = stage_digest(self.store, self.config, digest, window, now=now)
            if isinstance(staged, SendOutcome):
                return staged
            return await asyncio.to_thread(
                deliver, self.store, self.config, digest, staged, now=now
            )

    async def _outbox_job(self) -> None:
        with self._tracked():
            async with self._delivery:
                try:
                    outcomes = await asyncio.to_thread(
                        deliver_due, self.store, self.config, self.clock()
                    )
                except MonitorError as exc:
                    log.error("outbox_failed error=%s", exc)
                    return
        for outcome in outcomes:
            self.metrics.digests.labels(outcome.record.name, outcome.status).inc()
            log.info(
                "outbox_retry name=%s status=%s attempts=%d",
                outcome.record.name,
                outcome.status,
                outcome.record.attempts,
            )

    async def _maintenance_job(self) -> None:
        if self.gate is None:
            near, story = self.index.evict(self.clock())
        else:  # on the thread that decides, which reads and changes the indexes
            index, now = self.index, self.clock()
            near, story = await self.gate.run(lambda: index.evict(now))
        if near or story:
            log.info("index_evicted near=%d story=%d", near, story)

    def _on_job_skipped(self, event: JobSubmissionEvent) -> None:
        """A run that found the previous one still going (a poll slower than its interval):
        counted, not logged each time (APScheduler's own warning is turned down in `run`)."""
        self.metrics.skipped_runs.labels(event.job_id.split(":", 1)[0]).inc()

    # -- reload ----------------------------------------------------------------------------------

    def _on_reload_signal(self) -> None:
        if not self._stopping.is_set():
            self._spawn(self.reload())

    async def reload(self) -> bool:
        """Re-read the config; on any problem keep running on the old one and log each."""
        try:
            new = load_config(self.config.path, self.env)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error(
                    "reload_rejected file=%s key=%s reason=%r",
                    problem.file,
                    problem.key,
                    problem.reason,
                )
            log.error(
                "reload_rejected problems=%d: still running on the old config", len(exc.problems)
            )
            self.metrics.reloads.labels("rejected").inc()
            return False
        old = self.config
        if new.storage_url != old.storage_url:
            log.warning("reload_storage_ignored: a new [storage] url takes effect on restart")
            new = replace(new, storage_url=old.storage_url)
        self.store.sync_sources(new.sources, self.clock())
        stamp = _corpus_stamp(new)
        if stamp != self._corpus_stamp or new.dedupe != old.dedupe:
            if self.gate is None:
                self.index = self._load_index(new)
            else:  # under the decision lock, and after the node's decision in progress
                self.index = await self.gate.run(lambda: self._load_index(new))
            self._corpus_stamp = stamp
            log.info("index_reloaded seeds_signed=%d", len(self.index.seeds_signed))
        retired, self.runtime = self.runtime, self._new_runtime(new, self.index)
        self._spawn(self._retire(retired))
        self.config = new
        self._register_jobs()
        if new.server != old.server:
            if self._endpoint is not None:
                await self._endpoint.close()
                self._endpoint = None
            await self._start_endpoint()
        self.metrics.reloads.labels("ok").inc()
        log.info("reload_ok sources=%d digests=%d", len(new.sources), len(new.digests))
        return True

    def _replace_broken(self, runtime: _Runtime) -> None:
        if runtime is not self.runtime or self._stopping.is_set():
            return  # already replaced (several polls saw the same death), or stopping
        self.runtime = self._new_runtime(self.config, self.index)
        self.metrics.worker_restarts.inc()
        self._spawn(self._retire(runtime, kill=True))

    async def _retire(self, runtime: _Runtime, *, kill: bool = False) -> None:
        while runtime.users:
            await asyncio.sleep(0.2)
        await runtime.close(kill=kill)

    # -- endpoint --------------------------------------------------------------------------------

    async def _start_endpoint(self) -> None:
        server = self.config.server
        self.endpoint_port = None
        if not server.port:
            return
        for note in serving_notes(self.config):
            log.warning("pages_locked %s", note)
        self._endpoint = self._make_pages().endpoint(
            Route("/healthz", self._healthz, public=True),
            # Behind the token when there is one; open while the pages are shut for want of
            # one, as before there were pages (a scraper keeps working).
            Route("/metrics", self._metrics, public=server.pages_locked),
        )
        self.endpoint_port = await self._endpoint.start(server.host, server.port)

    def _make_pages(self) -> Pages:
        return Pages(
            lambda: self.config,
            self.store,
            load_secret(self.config.server.secret, self.config.data_dir),
            clock=self.clock,
            correct=record_correction,
            templates_dir=default_templates_dir(),
        )

    def _healthz(self, _request: Request) -> Response:
        scheduler_ok = self.scheduler.state == STATE_RUNNING and not self._stopping.is_set()
        store_error = None
        try:
            self.store.ping()
        except StoreError as exc:
            store_error = str(exc)
        ok = scheduler_ok and store_error is None
        body: dict[str, Any] = {
            "status": "ok" if ok else "unavailable",
            "scheduler": "running" if scheduler_ok else "stopped",
            "store": "ok" if store_error is None else store_error,
            "in_flight": len(self._inflight),
            "sources": len(self.config.sources),
        }
        if self.queue is not None:
            queue_error = self.queue.problem()
            if queue_error is None:
                try:
                    queue_depth(self.store)
                except StoreError as exc:
                    queue_error = str(exc)
            body["queue"] = "ok" if queue_error is None else queue_error
            body["node"] = self.queue.name
            ok = ok and queue_error is None
            body["status"] = "ok" if ok else "unavailable"
        return json_response(200 if ok else 503, body)

    def _metrics(self, _request: Request) -> Response:
        return Response(200, self.metrics.render(), CONTENT_TYPE)

    def _outbox_pending(self) -> float:
        try:
            return float(self.store.count_pending_digests())
        except StoreError:
            return float("nan")

    # -- helpers ---------------------------------------------------------------------------------

    @contextmanager
    def _tracked(self) -> Iterator[None]:
        """Count the current task as in flight: the drain waits for it."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._inflight.discard(task)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _new_runtime(
        self, config: Config, index: DedupeIndex | Callable[[], DedupeIndex]
    ) -> _Runtime:
        defer = self._defer_ingest if self.queue is not None else None
        return _Runtime(config, self.store, index, self.clock, self.gate, defer)

    def _load_index(self, config: Config) -> DedupeIndex:
        if self.gate is None:
            return DedupeIndex.load(self.store, config.corpus_dir, config.dedupe, self.clock())
        # Under the decision lock: seeds signed at load write stories the others must replay,
        # and the node's place in the decision log is where the load left off.
        with self.gate.holding():
            return DedupeIndex.load(self.store, config.corpus_dir, config.dedupe, self.clock())

    def _digest(self, name: str) -> DigestConfig | None:
        return next((d for d in self.config.digests if d.name == name), None)


def _corpus_stamp(config: Config) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the seed files: has the corpus changed?"""
    out = []
    for path in corpus_files(config.corpus_dir):
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def run_daemon(config: Config, env: Mapping[str, str]) -> int:
    """`monitor run`: the daemon until a signal; returns the exit code."""
    return run_loop(Daemon(config, env=env).run())
