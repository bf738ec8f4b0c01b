"""An httpx transport with one small connection pool per host. I/O: network.

httpcore's pool scans all of its connections, several times over, for every request it
queues or releases (is each idle? expired? readable?), so one pool holding a connection to
each of 50 hosts spent more CPU choosing a connection than on the request itself: about
1 ms of each 304 of a poll of 1,000 feeds (issue 14). Here each host gets a pool of its own
(at most `[http] per_host` connections, as `Fetcher` never sends it more requests at once),
all sharing one TLS context; a pool unused for longer than the keep-alive expiry is closed,
so idle connections stay bounded by the hosts in recent use.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)


@dataclass(slots=True)
class _HostPool:
    transport: httpx.AsyncHTTPTransport
    in_flight: int = 0  # responses handed out and not yet closed
    last_used: float = 0.0


class HostPools(httpx.AsyncBaseTransport):
    """Dispatches each request to the connection pool of its scheme, host and port."""

    def __init__(self, per_host: int, *, keepalive_expiry: float = KEEPALIVE_EXPIRY) -> None:
        self._per_host = max(1, per_host)
        self._expiry = keepalive_expiry
        self._ssl: ssl.SSLContext | None = None  # made when the first https host needs it
        self._pools: dict[tuple[bytes, bytes, int | None], _HostPool] = {}
        self._swept = time.monotonic()
        self._closing: set[asyncio.Task[None]] = set()

    def _pool(self, url: httpx.URL, now: float) -> _HostPool:
        key = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            limits = httpx.Limits(
                max_connections=None,
                max_keepalive_connections=self._per_host,
                keepalive_expiry=self._expiry,
            )
            transport = httpx.AsyncHTTPTransport(verify=self._ssl, limits=limits)
            pool = self._pools[key] = _HostPool(transport)
        pool.last_used = now
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = time.monotonic()
        if now - self._swept > self._expiry:
            self._sweep(now)
        pool = self._pool(request.url, now)
        pool.in_flight += 1
        try:
            response = await pool.transport.handle_async_request(request)
        except BaseException:
            pool.in_flight -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Released(response.stream, pool)
        return response

    def _sweep(self, now: float) -> None:
        """Close the pools of hosts not used for longer than the keep-alive expiry."""
        self._swept = now
        stale = [
            key
            for key, pool in self._pools.items()
            if not pool.in_flight and now - pool.last_used > self._expiry
        ]
        for key in stale:
            # Closed by a task of its own, not inside this request (whose deadline and
            # cancellation must not reach another host's connections).
            task = asyncio.get_running_loop().create_task(self._pools.pop(key).transport.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.transport.aclose()


class _Released(httpx.AsyncByteStream):
    """A response body that tells its host's pool when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, pool: _HostPool) -> None:
        self._stream = stream
        self._pool: _HostPool | None = pool

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._pool is not None:
                self._pool.in_flight -= 1
                self._pool = None
