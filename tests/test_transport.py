"""One connection pool per host: reuse across 304s, idle pools closed (a real local server)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from monitor.fetch import Fetcher, make_client
from monitor.models import HttpConfig
from monitor.transport import HostPools

HOSTS = ("127.0.0.1", "127.0.0.2")  # both on the loopback interface


class KeepAliveServer:
    """HTTP/1.1 keep-alive on 127.0.0.1 and 127.0.0.2, one port: 304 for If-None-Match."""

    def __init__(self) -> None:
        self.connections = 0
        self.closed = 0
        self.statuses: list[int] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                conditional = b"if-none-match:" in head.lower()
                status = 304 if conditional else 200
                self.statuses.append(status)
                body = b"" if conditional else b"<rss/>"
                reason = b"Not Modified" if conditional else b"OK"
                length = b"" if conditional else b"Content-Length: %d\r\n" % len(body)
                writer.write(
                    b'HTTP/1.1 %d %s\r\nETag: "v1"\r\n%s\r\n' % (status, reason, length) + body
                )
                await writer.drain()
        finally:
            self.closed += 1
            writer.close()


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[tuple[KeepAliveServer, int]]:
    server = KeepAliveServer()
    first = await asyncio.start_server(server.handle, HOSTS[0], 0)
    port = first.sockets[0].getsockname()[1]
    second = await asyncio.start_server(server.handle, HOSTS[1], port)
    try:
        yield server, port
    finally:
        for s in (first, second):
            s.close()


def test_304s_from_two_hosts_reuse_one_connection_each() -> None:
    """A 304 is read to its end, so its connection serves the next request to that host."""
    config = HttpConfig()

    async def go() -> KeepAliveServer:
        async with serving() as (server, port), make_client(config) as client:
            fetcher = Fetcher(client, config)
            for _ in range(5):
                for host in HOSTS:
                    result = await fetcher.fetch(f"http://{host}:{port}/f.xml", etag='"v1"')
                    assert result.not_modified
            return server

    server = asyncio.run(go())
    assert server.statuses == [304] * 10
    assert server.connections == 2


def test_a_host_unused_past_the_keepalive_expiry_has_its_pool_closed() -> None:
    """Idle connections stay bounded by the hosts in recent use."""
    config = HttpConfig()

    async def go() -> tuple[KeepAliveServer, int]:
        async with serving() as (server, port):
            pools = HostPools(per_host=2, keepalive_expiry=0.05)
            try:
                async with httpx.AsyncClient(transport=pools) as client:
                    fetcher = Fetcher(client, config)
                    await fetcher.fetch(f"http://{HOSTS[0]}:{port}/f.xml")
                    await asyncio.sleep(0.2)
                    await fetcher.fetch(f"http://{HOSTS[1]}:{port}/f.xml")
                    await asyncio.sleep(0.05)  # the server notices the close
                    closed_before_exit = server.closed
            finally:
                await pools.aclose()
            return server, closed_before_exit

    server, closed = asyncio.run(go())
    assert server.connections == 2
    assert closed == 1  # the first host's connection, closed by the sweep
