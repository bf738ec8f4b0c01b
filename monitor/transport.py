"""A lean HTTP/1.1 transport for httpx: keep-alive connections kept per host. I/O: network.

httpx stays the client API (redirects, hooks, timeouts, headers, the Response); this module
only moves the bytes of one request and its response. httpx's default transport (httpcore
over anyio, h11 parsing each event) spent about two thirds of the CPU of each 304 of a poll
of unchanged feeds: its pool scans all of its connections several times per request, every
read and write passes through anyio's task and cancellation bookkeeping, and h11 builds and
validates an event object for every part of a message (issue 14). Here a request is written
in one piece on an asyncio stream, and the status line and headers are read line by line.

What it does: HTTP/1.1 (and 1.0 answers) over TCP or TLS (`ssl`, one shared context); keep-
alive per (scheme, host, port), at most `per_host` idle connections each, an idle connection
closed after `keepalive_expiry` seconds; a request that finds a reused connection closed by
the server is sent again once on a new one; bodies framed by Content-Length, chunked
transfer coding or the connection's end, handed to httpx as they arrive (64 KiB at most per
piece: the caller caps and decodes them); connect, read and write timeouts from the request;
every failure raised as the httpx exception httpcore would have raised, chained to its
cause. Proxies are not its business: `make_client` uses httpx's own transport behind one.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import NoReturn

import httpx

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default)
MAX_HEAD = 64 * 1024  # bytes of status line and headers (a line or all of them together)
MAX_HEADERS = 200  # header lines in one response
_PIECE = 64 * 1024  # largest body piece read at once
_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\r\n]*))?\r?\n")
_UNSAFE = re.compile(rb"[\r\n\0]")
_NO_BODY = frozenset({204, 304})
_DEFAULT_PORTS = {b"http": 80, b"https": 443}

_Key = tuple[bytes, bytes, int]


@dataclass(slots=True, eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def usable(self, now: float, expiry: float) -> bool:
        """Fresh enough, open, and with nothing unread: bytes after the end of a response
        (a 304 sent with a body, say) would be read as the next response's start."""
        return (
            now - self.idle_since <= expiry
            and not self.reader.at_eof()
            and not self.writer.is_closing()
            and not getattr(self.reader, "_buffer", None)  # asyncio keeps no public count
        )

    def close(self) -> None:
        self.writer.close()


@dataclass(slots=True)
class _Host:
    idle: list[_Connection] = field(default_factory=list)
    in_flight: int = 0  # connections handed out with a response not yet closed
    last_used: float = 0.0


class HostPools(httpx.AsyncBaseTransport):
    """Sends each request on a kept connection to its scheme, host and port, or a new one."""

    def __init__(self, per_host: int, *, keepalive_expiry: float = KEEPALIVE_EXPIRY) -> None:
        self._per_host = max(1, per_host)
        self._expiry = keepalive_expiry
        self._ssl: ssl.SSLContext | None = None  # made when the first https host needs it
        self._hosts: dict[_Key, _Host] = {}
        self._swept = time.monotonic()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        key = (scheme, url.raw_host, url.port or _DEFAULT_PORTS[scheme])
        now = time.monotonic()
        if now - self._swept > self._expiry:
            self._sweep(now)
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host()
        host.last_used = now
        timeouts = request.extensions.get("timeout", {})
        head = _request_head(request) + await _request_body(request)
        host.in_flight += 1
        try:
            while True:
                connection, reused = self._idle(host, now)
                if connection is None:
                    connection = await self._connect(key, timeouts.get("connect"))
                try:
                    status, reason, version, headers = await _exchange(
                        connection, head, timeouts, reused=reused
                    )
                except _Stale:
                    connection.close()
                    continue  # the server closed a kept connection: once more, on a new one
                except BaseException:
                    connection.close()
                    raise
                break
            try:
                body = _Body(self, host, connection, request, status, version, headers, timeouts)
            except BaseException:
                connection.close()
                raise
        except BaseException:
            host.in_flight -= 1
            raise
        extensions = {"http_version": b"HTTP/1." + version, "reason_phrase": reason}
        if status == 304:
            # No body (RFC 9110 §15.4.5): the connection goes back now and the response is
            # born read, sparing each 304 of a warm poll httpx's chain of body iterators
            # (issue 14). Other responses stream, to be read raw (`Fetcher` caps bodies).
            await body.aclose()
            return httpx.Response(status, headers=headers, content=b"", extensions=extensions)
        return httpx.Response(status, headers=headers, stream=body, extensions=extensions)

    def _idle(self, host: _Host, now: float) -> tuple[_Connection | None, bool]:
        while host.idle:
            connection = host.idle.pop()
            if connection.usable(now, self._expiry):
                return connection, True
            connection.close()
        return None, False

    async def _connect(self, key: _Key, timeout: float | None) -> _Connection:
        scheme, raw_host, port = key
        hostname = raw_host.decode("ascii")
        context: ssl.SSLContext | None = None
        if scheme == b"https":
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context()
            context = self._ssl
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    hostname,
                    port,
                    ssl=context,
                    server_hostname=hostname if context else None,
                    limit=MAX_HEAD,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection to {hostname}:{port} in time") from exc
        except OSError as exc:  # refused, unreachable, DNS (socket.gaierror), TLS (SSLError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Connection(reader, writer)

    def release(self, host: _Host, connection: _Connection | None) -> None:
        """A response is closed: keep its connection (read to its end, reusable) or close it."""
        host.in_flight -= 1
        if connection is None:
            return
        now = time.monotonic()
        host.last_used = now
        connection.idle_since = now
        if len(host.idle) < self._per_host and connection.usable(now, self._expiry):
            host.idle.append(connection)
        else:
            connection.close()

    def _sweep(self, now: float) -> None:
        """Close connections idle for longer than the keep-alive expiry, and forget hosts
        not used for that long: idle connections stay bounded by the hosts in recent use."""
        self._swept = now
        for key, host in list(self._hosts.items()):
            keep = []
            for connection in host.idle:
                if connection.usable(now, self._expiry):
                    keep.append(connection)
                else:
                    connection.close()
            host.idle = keep
            if not keep and not host.in_flight and now - host.last_used > self._expiry:
                del self._hosts[key]

    async def aclose(self) -> None:
        hosts, self._hosts = self._hosts, {}
        for host in hosts.values():
            for connection in host.idle:
                connection.close()
            host.idle.clear()


class Proxied(httpx.AsyncBaseTransport):
    """Behind proxies from the environment: a request to a host that `NO_PROXY` names goes
    direct, through `HostPools`; the others go through httpx's own proxy transport."""

    def __init__(self, direct: HostPools, proxies: dict[str, str], limits: httpx.Limits) -> None:
        self._direct = direct
        self._via: dict[str, httpx.AsyncHTTPTransport] = {}
        for scheme in ("http", "https"):
            proxy = proxies.get(scheme) or proxies.get("all")
            if proxy:
                self._via[scheme] = httpx.AsyncHTTPTransport(proxy=proxy, limits=limits)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        via = self._via.get(request.url.scheme)
        if via is None or urllib.request.proxy_bypass(request.url.host):
            return await self._direct.handle_async_request(request)
        return await via.handle_async_request(request)

    async def aclose(self) -> None:
        await self._direct.aclose()
        for via in self._via.values():
            await via.aclose()


class _Stale(Exception):
    """A kept connection was closed by the server before any byte of the response."""


def _request_head(request: httpx.Request) -> bytes:
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if _UNSAFE.search(name) or _UNSAFE.search(value):
            raise httpx.LocalProtocolError(f"illegal character in header {name!r}")
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


async def _request_body(request: httpx.Request) -> bytes:
    try:
        return request.content  # content given as bytes (or none): read when it was built
    except httpx.RequestNotRead:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        return b"".join([chunk async for chunk in request.stream])


async def _exchange(
    connection: _Connection, head: bytes, timeouts: dict[str, float | None], *, reused: bool
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    """Send the request; read the response's status line and headers (after any 1xx)."""
    writer = connection.writer
    try:
        writer.write(head)
        if writer.transport.get_write_buffer_size() > _PIECE:
            async with asyncio.timeout(timeouts.get("write")):
                await writer.drain()
    except TimeoutError as exc:
        raise httpx.WriteTimeout("the request could not be sent in time") from exc
    except OSError as exc:
        raise _io_failure(exc, httpx.WriteError, reused=reused) from exc
    reader = connection.reader
    read_timeout = timeouts.get("read")
    while True:
        try:
            async with asyncio.timeout(read_timeout):
                line = await reader.readline()
        except TimeoutError as exc:
            raise httpx.ReadTimeout("no response in time") from exc
        except OSError as exc:
            raise _io_failure(exc, httpx.ReadError, reused=reused) from exc
        except ValueError as exc:  # longer than MAX_HEAD without an end of line
            raise httpx.RemoteProtocolError("status line too long") from exc
        if not line:
            if reused:
                raise _Stale
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        match = _STATUS.fullmatch(line)
        if match is None:
            raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {line[:100]!r}")
        version, status = match.group(1), int(match.group(2))
        headers = await _read_headers(reader, read_timeout)
        if 100 <= status < 200 and status != 101:
            reused = False  # an interim response: the final one follows
            continue
        return status, match.group(3) or b"", version, headers


async def _read_headers(
    reader: asyncio.StreamReader, read_timeout: float | None
) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    size = 0
    try:
        async with asyncio.timeout(read_timeout):
            while True:
                line = await reader.readline()
                size += len(line)
                if line in (b"\r\n", b"\n"):
                    return headers
                if not line.endswith(b"\n"):
                    _broken("connection closed inside the response headers")
                if size > MAX_HEAD or len(headers) >= MAX_HEADERS:
                    _broken("response headers too large")
                if line[:1] in (b" ", b"\t") and headers:  # obsolete line folding
                    name, value = headers[-1]
                    headers[-1] = (name, value + b" " + line.strip())
                    continue
                name, colon, value = line.partition(b":")
                name = name.strip()
                if not colon or not name or b" " in name:
                    _broken(f"malformed header line {line[:100]!r}")
                headers.append((name, value.strip()))
    except TimeoutError as exc:
        raise httpx.ReadTimeout("response headers not received in time") from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
    except ValueError as exc:  # a line longer than MAX_HEAD
        raise httpx.RemoteProtocolError("response header line too long") from exc


def _io_failure(exc: OSError, error: type[httpx.TransportError], *, reused: bool) -> Exception:
    """A failed read or write: on a kept connection a stale one (the request is sent again
    on a new one), else `error`."""
    return _Stale() if reused else error(str(exc) or type(exc).__name__)


def _broken(reason: str) -> NoReturn:
    raise httpx.RemoteProtocolError(reason)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; closing it hands the connection back (or closes it)."""

    def __init__(
        self,
        pools: HostPools,
        host: _Host,
        connection: _Connection,
        request: httpx.Request,
        status: int,
        version: bytes,
        headers: list[tuple[bytes, bytes]],
        timeouts: dict[str, float | None],
    ) -> None:
        self._pools = pools
        self._host: _Host | None = host
        self._connection = connection
        self._read_timeout = timeouts.get("read")
        self._done = False
        tokens = b",".join(_header(headers, b"connection")).lower()
        self._keep = b"close" not in tokens and (version == b"1" or b"keep-alive" in tokens)
        self._length: int | None = None
        self._chunked = False
        if request.method == "HEAD" or status in _NO_BODY or status < 200:
            self._length = 0
            return
        codings = b",".join(_header(headers, b"transfer-encoding")).lower()
        if codings:
            self._chunked = codings.rsplit(b",", 1)[-1].strip() == b"chunked"
            if not self._chunked:
                self._keep = False  # framed by the connection's end
            return
        lengths = {v.strip() for v in b",".join(_header(headers, b"content-length")).split(b",")}
        lengths.discard(b"")
        if len(lengths) > 1 or (lengths and not next(iter(lengths)).isdigit()):
            _broken(f"invalid Content-Length {b', '.join(sorted(lengths))!r}")
        if lengths:
            self._length = int(next(iter(lengths)))
        else:
            self._keep = False  # read to the connection's end

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            if self._chunked:
                async for piece in self._chunks():
                    yield piece
            elif self._length is not None:
                cut = "peer closed connection without sending complete message body"
                async for piece in self._exactly(self._length, cut):
                    yield piece
            else:
                while piece := await self._read(_PIECE):
                    yield piece
            self._done = True
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def _exactly(self, count: int, cut: str) -> AsyncIterator[bytes]:
        """The next `count` bytes, as they arrive; `cut` says what a peer that closed early
        left unfinished."""
        while count:
            piece = await self._read(min(count, _PIECE))
            if not piece:
                _broken(cut)
            count -= len(piece)
            yield piece

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            line = await self._line()
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                _broken(f"invalid chunk size {size_text[:20]!r}")
            if size < 0:
                _broken(f"invalid chunk size {size_text[:20]!r}")
            if size == 0:
                while (await self._line()).strip():  # trailer fields, ignored
                    pass
                return
            async for piece in self._exactly(size, "peer closed connection inside a chunk"):
                yield piece
            if (await self._line()).strip():
                _broken("chunk not followed by CRLF")

    async def _line(self) -> bytes:
        try:
            async with asyncio.timeout(self._read_timeout):
                line = await self._connection.reader.readline()
        except TimeoutError as exc:
            raise httpx.ReadTimeout("response body not received in time") from exc
        except ValueError as exc:
            raise httpx.RemoteProtocolError("chunk header line too long") from exc
        if not line.endswith(b"\n"):
            _broken("peer closed connection without sending complete message body")
        return line

    async def _read(self, size: int) -> bytes:
        try:
            async with asyncio.timeout(self._read_timeout):
                return await self._connection.reader.read(size)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("response body not received in time") from exc

    async def aclose(self) -> None:
        host, self._host = self._host, None
        if host is None:
            return
        if self._length == 0:
            self._done = True  # nothing to read: also when the caller never iterated
        keep = self._done and self._keep
        if not keep:
            self._connection.close()
        self._pools.release(host, self._connection if keep else None)
