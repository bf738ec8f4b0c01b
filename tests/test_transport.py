"""The HTTP/1.1 transport against real local servers: keep-alive per host, framing, faults."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from monitor.fetch import Fetcher, make_client
from monitor.models import HttpConfig
from monitor.transport import HostPools

HOSTS = ("127.0.0.1", "127.0.0.2")  # both on the loopback interface


class LoopbackServer:
    """HTTP/1.1 keep-alive: `respond` answers each request head (and says whether to close)."""

    def __init__(self) -> None:
        self.connections = 0
        self.closed = 0
        self.requests: list[bytes] = []

    def respond(self, head: bytes) -> tuple[bytes, bool]:
        raise NotImplementedError

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                answer, close = self.respond(head)
                writer.write(answer)
                await writer.drain()
                if close:
                    return
        finally:
            self.closed += 1
            writer.close()


class KeepAliveServer(LoopbackServer):
    """On 127.0.0.1 and 127.0.0.2, one port: 304 for If-None-Match."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: list[int] = []

    def respond(self, head: bytes) -> tuple[bytes, bool]:
        conditional = b"if-none-match:" in head.lower()
        status = 304 if conditional else 200
        self.statuses.append(status)
        body = b"" if conditional else b"<rss/>"
        reason = b"Not Modified" if conditional else b"OK"
        length = b"" if conditional else b"Content-Length: %d\r\n" % len(body)
        return b'HTTP/1.1 %d %s\r\nETag: "v1"\r\n%s\r\n' % (status, reason, length) + body, False


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


def test_a_304_comes_back_read_with_its_connection_already_free() -> None:
    """A 304 has no body: the response is read when it is handed over, and its connection
    serves the next request even while that response is still open."""

    async def go() -> tuple[KeepAliveServer, list[bytes], list[int]]:
        async with serving() as (server, port):
            url = f"http://{HOSTS[0]}:{port}/f.xml"
            async with httpx.AsyncClient(transport=HostPools(1)) as client:
                held = [
                    await client.send(
                        client.build_request("GET", url, headers={"If-None-Match": '"v1"'}),
                        stream=True,
                    )
                    for _ in range(3)
                ]
                contents = [r.content for r in held]  # no aread(): read already
                statuses = [r.status_code for r in held]
                for response in held:
                    await response.aclose()
            return server, contents, statuses

    server, contents, statuses = asyncio.run(go())
    assert (contents, statuses) == ([b""] * 3, [304] * 3)
    assert server.connections == 1


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


# -- what the server sends: framing, broken answers, a closed kept connection ----------------


class ScriptedServer(LoopbackServer):
    """Answers each request with the bytes its path names in `answers`, then keeps the
    connection (or closes it, for a path in `close_after`)."""

    def __init__(self, answers: dict[str, bytes], close_after: frozenset[str] = frozenset()):
        super().__init__()
        self.answers = answers
        self.close_after = close_after

    def respond(self, head: bytes) -> tuple[bytes, bool]:
        path = head.split(b" ", 2)[1].decode()
        return self.answers[path], path in self.close_after


@contextlib.asynccontextmanager
async def scripted(
    answers: dict[str, bytes], close_after: frozenset[str] = frozenset()
) -> AsyncIterator[tuple[ScriptedServer, str, httpx.AsyncClient]]:
    server = ScriptedServer(answers, close_after)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(transport=HostPools(2), timeout=1.0) as client:
            yield server, f"http://127.0.0.1:{port}", client
    finally:
        listener.close()


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
)
LENGTH = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Folded: a\r\n  b\r\n\r\nhello"
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
BARE_LF = b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"


def test_bodies_by_length_chunks_or_close_are_read_and_the_connection_kept() -> None:
    answers = {"/chunked": CHUNKED, "/length": LENGTH, "/interim": INTERIM, "/lf": BARE_LF}

    async def go() -> tuple[list[tuple[int, bytes, str | None]], int]:
        async with scripted(answers) as (server, base, client):
            seen = []
            for path in ("/chunked", "/length", "/interim", "/lf", "/chunked"):
                response = await client.get(base + path)
                seen.append(
                    (response.status_code, response.content, response.headers.get("x-folded"))
                )
            return seen, server.connections

    seen, connections = asyncio.run(go())
    assert seen == [
        (200, b"hello, world", None),
        (200, b"hello", "a b"),
        (200, b"ok", None),
        (200, b"ok", None),
        (200, b"hello, world", None),
    ]
    assert connections == 1  # every answer read to its end, so one connection served all


def test_a_body_framed_by_the_close_is_read_and_the_connection_not_kept() -> None:
    answers = {"/close": b"HTTP/1.0 200 OK\r\n\r\nall of it", "/again": LENGTH}

    async def go() -> tuple[bytes, bytes, int]:
        async with scripted(answers, close_after=frozenset({"/close"})) as (server, base, client):
            first = (await client.get(base + "/close")).content
            second = (await client.get(base + "/again")).content
            return first, second, server.connections

    assert asyncio.run(go()) == (b"all of it", b"hello", 2)


def test_a_connection_with_bytes_after_its_response_is_not_kept() -> None:
    """A 304 sent with a body: the stray body must not be read as the next answer."""
    answers = {
        "/304": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nstray",
        "/ok": LENGTH,
    }

    async def go() -> tuple[int, bytes, int]:
        async with scripted(answers) as (server, base, client):
            first = await client.get(base + "/304")
            await asyncio.sleep(0.05)  # the stray bytes arrive
            second = await client.get(base + "/ok")
            return first.status_code, second.content, server.connections

    assert asyncio.run(go()) == (304, b"hello", 2)


def test_a_kept_connection_the_server_closed_is_replaced_once() -> None:
    """The server closes after answering; the next request finds the kept connection dead
    and is sent again on a new one, unseen by the caller."""
    answers = {"/once": LENGTH}

    async def go() -> tuple[list[bytes], int]:
        async with scripted(answers, close_after=frozenset({"/once"})) as (server, base, client):
            bodies = []
            for _ in range(3):
                bodies.append((await client.get(base + "/once")).content)
                await asyncio.sleep(0.05)  # the close reaches the client
            return bodies, server.connections

    bodies, connections = asyncio.run(go())
    assert bodies == [b"hello"] * 3
    assert connections == 3


@pytest.mark.parametrize(
    ("answer", "error", "detail"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", httpx.RemoteProtocolError, "not an HTTP/1.x status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", httpx.RemoteProtocolError, "malformed"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            httpx.RemoteProtocolError,
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: x1\r\n\r\n",
            httpx.RemoteProtocolError,
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            httpx.RemoteProtocolError,
            "invalid chunk size",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
            httpx.RemoteProtocolError,
            "too long",
        ),
        (
            b"HTTP/1.1 200 OK\r\n" + b"X: a\r\n" * 300 + b"\r\n",
            httpx.RemoteProtocolError,
            "too large",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            httpx.RemoteProtocolError,
            "complete",
        ),
        (b"", httpx.RemoteProtocolError, "without sending a response"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Len",
            httpx.RemoteProtocolError,
            "inside the response headers",
        ),
    ],
    ids=[
        "not-http",
        "header-without-colon",
        "two-lengths",
        "length-not-a-number",
        "bad-chunk-size",
        "header-line-too-long",
        "too-many-headers",
        "body-shorter-than-length",
        "closed-before-answering",
        "closed-inside-headers",
    ],
)
def test_a_broken_answer_is_a_protocol_error_naming_the_fault(
    answer: bytes, error: type[Exception], detail: str
) -> None:
    async def go() -> None:
        async with scripted({"/x": answer}, close_after=frozenset({"/x"})) as (_, base, client):
            await client.get(base + "/x")

    with pytest.raises(error, match=detail):
        asyncio.run(go())


def test_a_silent_server_is_a_read_timeout_and_a_refused_port_a_connect_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
            await reader.read()  # until the client gives up and closes
        finally:
            writer.close()

    async def go() -> None:
        listener = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        try:
            async with httpx.AsyncClient(transport=HostPools(1), timeout=0.2) as client:
                with pytest.raises(httpx.ReadTimeout):
                    await client.get(f"http://127.0.0.1:{port}/")
        finally:
            listener.close()
        async with httpx.AsyncClient(transport=HostPools(1), timeout=0.2) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/")

    asyncio.run(go())


def test_the_request_is_sent_as_httpx_built_it() -> None:
    async def go() -> bytes:
        async with scripted({"/p?q=1": LENGTH}) as (server, base, client):
            await client.post(base + "/p?q=1", content=b"", headers={"X-Test": "yes"})
            return server.requests[0]

    head = asyncio.run(go())
    assert head.startswith(b"POST /p?q=1 HTTP/1.1\r\n")
    assert b"\r\nX-Test: yes\r\n" in head
    assert b"\r\nHost: 127.0.0.1:" in head
