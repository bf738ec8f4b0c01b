"""The decision lock on a real PostgreSQL (monitor.cluster.gate): one transaction per hold, let
go of by its commit or its rollback, and never left behind by a hold cancelled while it waits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.cluster.gate import DecisionGate
from monitor.config import DedupeConfig
from monitor.pipeline.index import DedupeIndex
from monitor.store import Store
from monitor.store.schema import DECISION_LOCK
from tests.test_pipeline import Clock
from tests.test_store import empty_postgres

pytestmark = pytest.mark.postgres
NO_CORPUS = Path(__file__).parent / "data" / "no-corpus"


@pytest.fixture
def gates() -> Iterator[tuple[list[DecisionGate], DedupeIndex, Clock]]:
    url = empty_postgres()
    clock = Clock()
    stores = [Store.open(url, now=clock()) for _ in range(2)]
    index = DedupeIndex.load(stores[0], NO_CORPUS, DedupeConfig(), clock())
    made = [DecisionGate(s) for s in stores]
    yield made, index, clock
    for gate, store in zip(made, stores, strict=True):
        gate.close()
        store.close()


def lock_is_free(store: Store) -> bool:
    """Whether another connection can take the decision lock now (and lets go of it at once)."""
    with store.engine.begin() as conn:
        query = sa.text("SELECT pg_try_advisory_xact_lock(:k)")
        return bool(conn.execute(query, {"k": DECISION_LOCK}).scalar_one())


def test_a_hold_keeps_the_lock_until_its_commit_and_a_failed_body_lets_go_writing_nothing(
    gates: tuple[list[DecisionGate], DedupeIndex, Clock],
) -> None:
    (first, second), index, clock = gates
    table = sa.text("CREATE TABLE IF NOT EXISTS probe (n integer)")
    with first.store.engine.begin() as conn:
        conn.execute(table)

    async def failing() -> None:
        async with first.hold(index, clock) as held:
            held.conn.execute(sa.text("INSERT INTO probe VALUES (2)"))
            raise RuntimeError("the decision failed")

    async def run() -> None:
        async with first.hold(index, clock) as held:
            assert not lock_is_free(second.store)
            held.conn.execute(sa.text("INSERT INTO probe VALUES (1)"))
        assert lock_is_free(second.store)
        with pytest.raises(RuntimeError, match="the decision failed"):
            await failing()
        assert lock_is_free(second.store)

    asyncio.run(run())
    with second.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT n FROM probe")).scalars().all() == [1]
    assert len(first.held) == len(first.held_on_loop) == 2
    assert all(g >= loop >= 0 for g, loop in zip(first.held, first.held_on_loop, strict=True))


def test_a_hold_cancelled_while_it_waits_leaves_no_lock_behind(
    gates: tuple[list[DecisionGate], DedupeIndex, Clock],
) -> None:
    (first, second), index, clock = gates
    holding = threading.Event()
    release = threading.Event()

    def other_node() -> None:
        with second.holding():
            holding.set()
            release.wait(30)

    thread = threading.Thread(target=other_node)
    thread.start()
    assert holding.wait(30)

    async def run() -> None:
        async def wait_for_lock() -> None:
            async with first.hold(index, clock):
                pass

        waiting = asyncio.create_task(wait_for_lock())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # waits on the other node
        waiting.cancel()
        await asyncio.sleep(0.2)
        release.set()  # the waiting thread gets the lock now, and must let go of it
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with first.hold(index, clock):  # the connection is usable again
            pass

    asyncio.run(run())
    thread.join(30)
    assert lock_is_free(second.store)
    assert len(first.held) == 1
