"""The order a poll starts its sources in: a run of one site's feeds does not hold back the rest.

A real asyncio HTTP server on 127.0.0.1 and 127.0.0.2 (one port), a real SQLite file.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from monitor.config import PollConfig
from monitor.fetch import Fetcher, make_client
from monitor.models import HttpConfig, Source
from monitor.pipeline import Poller
from monitor.store import Store

HOSTS = ("127.0.0.1", "127.0.0.2")
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
WAIT = 2.0  # seconds a request is held at most for the other host's first request


class TwoHostServer:
    """Holds every request until both hosts have had one (or `WAIT` passed), then 304s."""

    def __init__(self) -> None:
        self.both_seen = asyncio.Event()
        self.seen: list[str] = []
        self.held_too_long = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.seen.append(f"{host}{head.split(b' ', 2)[1].decode()}")
                if {s.split("/", 1)[0] for s in self.seen} == set(HOSTS):
                    self.both_seen.set()
                try:
                    await asyncio.wait_for(self.both_seen.wait(), WAIT)
                except TimeoutError:
                    self.held_too_long += 1
                writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "v"\r\n\r\n')
                await writer.drain()
        finally:
            writer.close()


def test_a_run_of_one_sites_feeds_does_not_keep_the_next_site_waiting(tmp_path: Path) -> None:
    """Three feeds of one site listed before another site's: with one request per host and
    two sources at a time, the other site's feed starts alongside the first, not after
    the first site's feeds free a slot; the outcomes keep the listed order."""
    store = Store.open(f"sqlite:///{tmp_path / 'monitor.db'}", now=NOW)
    http = HttpConfig(timeout=5.0, deadline=10.0, per_host=1, concurrency=2)

    async def go() -> tuple[TwoHostServer, list[str]]:
        server = TwoHostServer()
        first = await asyncio.start_server(server.handle, HOSTS[0], 0)
        port = first.sockets[0].getsockname()[1]
        second = await asyncio.start_server(server.handle, HOSTS[1], port)
        sources = [
            *(Source(name=f"a{i}", url=f"http://{HOSTS[0]}:{port}/a{i}.xml") for i in (1, 2, 3)),
            Source(name="b1", url=f"http://{HOSTS[1]}:{port}/b1.xml"),
        ]
        store.sync_sources(sources, NOW)
        try:
            with ThreadPoolExecutor(1) as pool:
                async with make_client(http) as client:
                    poller = Poller(
                        store,
                        Fetcher(client, http),
                        pool,
                        PollConfig(parallel_sources=2),
                        index=lambda: None,  # type: ignore[arg-type,return-value]  # 304s only
                        clock=lambda: NOW,
                    )
                    outcomes = await poller.poll_all(sources)
        finally:
            for listener in (first, second):
                listener.close()
        return server, [f"{o.source}:{o.outcome}" for o in outcomes]

    try:
        server, outcomes = asyncio.run(go())
    finally:
        store.close()
    assert outcomes == ["a1:not_modified", "a2:not_modified", "a3:not_modified", "b1:not_modified"]
    assert server.held_too_long == 0
    assert sorted(server.seen[:2]) == [f"{HOSTS[0]}/a1.xml", f"{HOSTS[1]}/b1.xml"]
