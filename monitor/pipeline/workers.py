"""The extraction worker processes, a page routed to the one that saw its bytes. I/O: processes.

Each worker keeps what it computed for a text (`signing`: signature, story features, language,
tags), but a process pool hands a job to whichever worker is free, so a page listed by many
feeds reached every worker and each computed its text's features again (issue 14: about 3 s
of a cold poll's 52 s of CPU, 181 distinct pages behind 2,000 links). `WorkerPool` runs one
single-process pool per worker and sends a page to the worker its bytes hash to
(`route`), unless that worker has `ROUTE_SLACK` more jobs waiting than the least busy one:
then the least busy one takes it, and computes the text once more. Extraction still runs on
every page; only where it runs changes, and every result is what any worker would return.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# How many more jobs than the least busy worker a page's own worker may have before the page
# goes to the least busy one instead (a poll keeps `poll.PAGES_PER_WORKER` pages in flight
# per worker).
ROUTE_SLACK = 2
KEY_BYTES = 4096  # of a page's bytes hashed for its worker (`route_key`)


def route_key(body: bytes) -> int:
    """The routing hash of a page's bytes: the same bytes, the same worker. It hashes the
    length and `KEY_BYTES` from the middle (all of a 175 KB page took 0.16 ms of the polling
    process; a site's pages share their head and foot, rarely their middle). Pages that
    differ elsewhere may share a worker: only the load balance depends on it."""
    middle = len(body) // 2
    start = max(0, middle - KEY_BYTES // 2)
    return zlib.crc32(body[start : start + KEY_BYTES], len(body) & 0xFFFFFFFF)


def route(key: int, queued: Sequence[int], slack: int = ROUTE_SLACK) -> int:
    """The worker for a job keyed `key`: `key`'s own worker, unless it has more than `slack`
    jobs more than the least busy worker, which then takes it (the first such one)."""
    own = key % len(queued)
    fewest = min(queued)
    if queued[own] - fewest > slack:
        return queued.index(fewest)
    return own


class WorkerPool(Executor):
    """`workers` processes, each its own `ProcessPoolExecutor` of one, all started with the
    first job. `submit` goes to the least busy worker, `submit_keyed` to the key's worker
    (`route`). If any worker died, every later job raises `BrokenProcessPool`, as a single
    pool's would."""

    def __init__(
        self,
        workers: int,
        initializer: Callable[..., object],
        initargs: tuple[Any, ...],
        *,
        slack: int = ROUTE_SLACK,
    ) -> None:
        self.workers = max(1, workers)
        self.slack = slack
        self._pools = [
            ProcessPoolExecutor(1, initializer=initializer, initargs=initargs)
            for _ in range(self.workers)
        ]
        self._queued = [0] * self.workers  # jobs submitted and not done, per worker
        self._lock = threading.Lock()
        self._started = False
        self.routed = [0] * self.workers  # jobs each worker took (tests, logs)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._lock:
            worker = self._queued.index(min(self._queued))
        return self._submit(worker, fn, *args, **kwargs)

    def submit_keyed(
        self, key: int, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """`submit` to the worker `route` picks for `key` (`route_key` of a page's bytes)."""
        with self._lock:
            worker = route(key, self._queued, self.slack)
        return self._submit(worker, fn, *args, **kwargs)

    def _submit(
        self, worker: int, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        if any(getattr(pool, "_broken", False) for pool in self._pools):
            raise BrokenProcessPool("an extraction worker died")
        if not self._started:
            self._start()
        with self._lock:
            self._queued[worker] += 1
            self.routed[worker] += 1
        try:
            future = self._pools[worker].submit(fn, *args, **kwargs)
        except BaseException:
            self._done(worker)
            raise
        future.add_done_callback(lambda _: self._done(worker))
        return future

    def _done(self, worker: int) -> None:
        with self._lock:
            self._queued[worker] -= 1

    def _start(self) -> None:
        """Start every worker at once (a single pool forks all its processes with its first
        job): the start-up and the language model load in parallel, not one after the
        other when the first job reaches each."""
        self._started = True
        for pool in self._pools:
            pool.submit(int)

    def processes(self) -> list[BaseProcess]:
        """The running worker processes."""
        return [p for pool in self._pools for p in (pool._processes or {}).values()]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=cancel_futures)
        if wait:
            for pool in self._pools:
                pool.shutdown(wait=True)
