"""A page goes to the worker that saw its bytes, unless that worker is far busier (issue 14):
a repeated text is signed and featured once, and what is stored does not change."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.config import DedupeConfig, PollConfig
from monitor.fetch import Fetcher, make_client
from monitor.models import HttpConfig, Source
from monitor.pipeline import Poller, make_pool, signing
from monitor.pipeline.index import DedupeIndex
from monitor.pipeline.poll import _init_process_worker
from monitor.pipeline.workers import WorkerPool, route, route_key
from monitor.store import Store
from tests.servers import LocalServer
from tests.test_batch import stored
from tests.test_pipeline import NO_CORPUS, PAGES, START, TAXONOMY, Clock, rss

NAMES = [
    "aljazeera.com.helicopter.html",
    "bbc.com.world-europe.html",
    "chron.com.esper-vietnam.html",
    "dw.com-elephants.html",
    "politico.com.retirement.html",
    "xinhuanet.com.c_1125597921.html",
]


def test_route_keeps_a_key_on_its_worker_until_it_is_more_than_slack_busier() -> None:
    assert route(7, [0, 0]) == 1
    assert route(8, [0, 0]) == 0
    assert route(7, [0, 2], slack=2) == 1  # two more than the least busy: still its own
    assert route(7, [0, 3], slack=2) == 0  # three more: the least busy takes it
    assert route(5, [4, 9, 1], slack=2) == 2  # 5 % 3 == 2: its own is the least busy
    assert route(3, [4, 9, 1], slack=2) == 2  # 3 % 3 == 0, 3 more than the least busy
    assert route(3, [3, 9, 1], slack=2) == 0
    assert route_key(b"page") == route_key(bytes(bytearray(b"page")))
    head, foot = b"<html><head>" + b"h" * 5000, b"f" * 5000 + b"</html>"
    assert route_key(head + b"one" * 900 + foot) != route_key(head + b"two" * 900 + foot)


def _pid() -> int:
    return os.getpid()


def _wait(event: Any) -> int:
    event.wait()
    return os.getpid()


def _memo_misses() -> int:
    """In a worker: how many texts it computed story features for."""
    return int(signing._undated_features.cache_info().misses)


def test_the_same_bytes_go_to_the_same_worker_and_different_bytes_spread() -> None:
    bodies = [(PAGES / name).read_bytes() for name in NAMES]
    with WorkerPool(2, int, ()) as pool:
        first = {b: pool.submit_keyed(route_key(b), _pid).result() for b in bodies}
        for _ in range(3):
            for body in bodies:
                assert pool.submit_keyed(route_key(body), _pid).result() == first[body]
        assert len(set(first.values())) == 2  # both workers took pages
        assert {p.pid for p in pool.processes()} == set(first.values())


def test_a_worker_more_than_slack_busier_hands_the_page_to_the_least_busy() -> None:
    with multiprocessing.Manager() as manager, WorkerPool(2, int, (), slack=2) as pool:
        event = manager.Event()
        key = 4  # worker 0's
        held = [pool.submit_keyed(key, _wait, event) for _ in range(3)]  # 0, 1 and 2 ahead
        assert pool.routed == [3, 0]
        moved = pool.submit_keyed(key, _wait, event)  # 3 more than worker 1: it goes there
        assert pool.routed == [3, 1]
        again = pool.submit_keyed(key, _wait, event)  # 3 - 1 = 2: back to its own
        assert pool.routed == [4, 1]
        event.set()
        pids = {f.result() for f in held}
        assert len(pids) == 1
        assert again.result() in pids
        assert moved.result() not in pids


def test_a_dead_worker_breaks_the_whole_pool() -> None:
    with WorkerPool(2, int, ()) as pool:
        assert pool.submit_keyed(1, _pid).result() > 0
        with pytest.raises(BrokenProcessPool):
            pool.submit_keyed(0, os._exit, 1).result()
        with pytest.raises(BrokenProcessPool):
            pool.submit_keyed(1, _pid)  # the other worker lives, but the pool is broken
        with pytest.raises(BrokenProcessPool):
            pool.submit(_pid)


def _poll(
    pool: Any, server: LocalServer, http_config: HttpConfig, tmp_path: Path, name: str
) -> list[tuple[Any, ...]]:
    """One feed listing each of the six pages under four URLs (dated), polled with `pool`."""
    items = []
    for n, page in enumerate(NAMES * 4):
        link = server.add(
            f"/{name}/{n}.html", (PAGES / page).read_bytes(), content_type="text/html"
        )
        date = format_datetime(START - timedelta(minutes=7 * n))
        items.append({"title": page.split(".")[0], "link": link, "guid": f"g{n}", "date": date})
    source = Source("feed", server.add(f"/{name}.xml", rss(items)))
    clock = Clock()
    store = Store.open(f"sqlite:///{tmp_path / (name + '.db')}", now=START)
    store.sync_sources([source], clock())
    index = DedupeIndex.load(store, NO_CORPUS, DedupeConfig(), clock())

    async def go() -> None:
        async with make_client(http_config) as client:
            poller = Poller(store, Fetcher(client, http_config), pool, PollConfig(), index=index,
                            clock=clock)  # fmt: skip
            [outcome] = await poller.poll_all([source])
            assert (outcome.outcome, outcome.new, outcome.duplicate) == ("ok", 6, 18)

    asyncio.run(go())
    rows = stored(store)
    store.close()
    # The same rows whichever path prefix this poll's links have.
    return [tuple(_unprefixed(value, name) for value in row) for row in rows]


def _unprefixed(value: Any, name: str) -> Any:
    return value.replace(f"/{name}/", "/links/") if isinstance(value, str) else value


def test_routed_pages_are_featured_once_per_text_and_stored_as_the_plain_pool_stores(
    http_server: LocalServer, http_config: HttpConfig, tmp_path: Path
) -> None:
    """Twenty-four links to six pages, each under its page's title: with routing (no
    fallback), each text's story features are computed by one worker only; the items,
    duplicates, stories, decision records and tags are those the plain process pool
    stores."""
    http_config = replace(http_config, timeout=10.0, deadline=20.0)  # two workers starting
    args = (TAXONOMY, os.getpid())
    with WorkerPool(2, _init_process_worker, args, slack=10**6) as pool:
        routed = _poll(pool, http_server, http_config, tmp_path, "routed")
        misses = [p.submit(_memo_misses).result() for p in pool._pools]
    assert sum(misses) == len(NAMES)  # once per text, in all
    assert all(misses)  # and both workers had texts of their own
    with ProcessPoolExecutor(2, initializer=_init_process_worker, initargs=args) as plain:
        expected = _poll(plain, http_server, http_config, tmp_path, "plain")
    assert {row[1] for row in expected} == {"new", "duplicate"}
    assert any(row[9] for row in expected)  # tagged
    assert routed == expected


def test_make_pool_routes_and_starts_every_worker_with_the_first_job() -> None:
    with make_pool(2, TAXONOMY) as pool:
        assert isinstance(pool, WorkerPool)
        assert pool.processes() == []  # nothing started before a job
        pool.submit(_pid).result()
        assert len(pool.processes()) == 2
