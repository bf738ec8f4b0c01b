"""HTTP fetching with conditional GET, redirects, size caps and deadlines. I/O: network."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import urllib.request
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from monitor.errors import FetchError
from monitor.models import FetchResult, HttpConfig
from monitor.transport import HostPools, Proxied

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"

# We decode bodies ourselves (see _BodyDecoder), so we only offer what zlib can decode with a
# bounded output size. httpx would otherwise offer br/zstd when those packages are installed.
_ACCEPT_ENCODING = "gzip, deflate"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_HTTP_SCHEMES = frozenset({"http", "https"})
# Largest piece zlib may produce per call. Bounds the memory a compressed body can make us
# allocate between two checks of the size cap (httpx's own decoder inflates a whole 64 KiB
# network read at once, which is up to ~64 MiB for a gzip bomb).
_DECODE_PIECE = 64 * 1024
# Idle keep-alive connections of the one shared pool used behind a proxy (else each host has
# its own pool: `HostPools`). The pool is not what caps concurrency (`Fetcher` does, with
# `concurrency` slots): a pool of `concurrency` connections closed an idle connection to one
# host to open one to the next, so a poll of feeds spread over more hosts than that opened a
# new connection for every request (issue 14).
KEEPALIVE_CONNECTIONS = 512
_DNS_HINTS = (
    "name resolution",
    "name or service not known",
    "nodename nor servname",
    "getaddrinfo",
    "no address associated",
)


class _RedirectRefused(Exception):
    """Raised by a response hook for a redirect whose Location we will not follow."""

    def __init__(self, location: str, status: int, reason: str) -> None:
        super().__init__(location)
        self.location = location
        self.status = status
        self.reason = reason


async def _refuse_bad_redirects(response: httpx.Response) -> None:
    """Response hook: stop at a redirect to a non-http(s) or unparseable Location.

    Even with follow_redirects=False httpx builds the next request for every redirect, and a
    Location such as `javascript:alert(1)` makes that raise a bare `InvalidURL` with the
    Location lost. Hooks run first, so we refuse such redirects here and say where they led.
    """
    if response.status_code not in _REDIRECT_STATUSES or "location" not in response.headers:
        return
    location = response.headers["location"].strip()
    try:
        target = response.url.join(location)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise _RedirectRefused(location, response.status_code, "an invalid URL") from exc
    if target.scheme not in _HTTP_SCHEMES:
        raise _RedirectRefused(location, response.status_code, "a non-http(s) URL")


class _Cookies(httpx.Cookies):
    """The client's cookies, looked for only in responses that set one.

    httpx hands every response to the jar through a urllib request and response built for
    it (the request's URL split again, its headers copied) and the jar then reads all the
    headers as an `email.message.Message`: about 25 µs per 304, for a Set-Cookie a feed
    rarely sends (issue 14).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class _Client(httpx.AsyncClient):
    """httpx's client, keeping its cookies in `_Cookies`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jar = _Cookies(super().cookies.jar)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _Cookies(cookies)


def make_client(config: HttpConfig) -> httpx.AsyncClient:
    """The one shared HTTP client: our User-Agent, per-read timeouts, connection limits.

    Redirects are off because `Fetcher` follows them itself (to cap, loop-check and
    scheme-check each hop); HTTP/2 is off. Each host has a connection pool of its own
    (`HostPools`); behind a proxy configured in the environment, requests to the hosts that
    `NO_PROXY` exempts still go that way and the others through the proxy, over one pool
    (`Proxied`); `Fetcher` holds requests in flight to `config.concurrency`.
    """
    limits = httpx.Limits(
        max_connections=None,
        max_keepalive_connections=max(config.concurrency, KEEPALIVE_CONNECTIONS),
    )
    transport: httpx.AsyncBaseTransport = HostPools(config.per_host)
    proxies = urllib.request.getproxies()
    if proxies:
        transport = Proxied(HostPools(config.per_host), proxies, limits)
    client = _Client(
        transport=transport,
        event_hooks={"response": [_refuse_bad_redirects]},
        headers={"User-Agent": config.user_agent, "Accept-Encoding": _ACCEPT_ENCODING},
        timeout=httpx.Timeout(config.timeout),
        limits=limits,
        follow_redirects=False,
        http2=False,
    )
    return client


class Fetcher:
    """GETs URLs politely: conditional requests, capped redirects and bodies, one deadline.

    Every failure is a `FetchError` with an `error_class` from DESIGN §4; httpx exceptions
    never escape. A 304 is a normal `FetchResult(not_modified=True)`.
    """

    def __init__(self, client: httpx.AsyncClient, config: HttpConfig) -> None:
        self._client = client
        self._config = config
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._slots = asyncio.Semaphore(max(1, config.concurrency))

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
    ) -> FetchResult:
        """GET `url`, following redirects, within `config.deadline`.

        Sends If-None-Match / If-Modified-Since when validators are given. The per-host slot
        (`config.per_host`) is keyed by the requested URL's host and held for the whole fetch,
        redirects included, as is one of the `config.concurrency` slots, taken after it; the
        deadline starts once both are acquired, because waiting behind other requests is not
        the server being slow.

        Raises:
            FetchError: transport failure, status >= 400, redirect trouble, deadline, too large.
        """
        start_url = _parse_url(url, url, "invalid URL")
        headers = {"Accept": accept, "Accept-Encoding": _ACCEPT_ENCODING}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with self._slot(start_url.host), self._slots:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self._config.deadline):
                    return await self._follow(url, start_url, headers, etag, last_modified, started)
            except TimeoutError as exc:
                raise FetchError(
                    url,
                    f"no complete response within the {self._config.deadline:g} s deadline",
                    error_class="timeout",
                ) from exc

    def _slot(self, host: str) -> asyncio.Semaphore:
        slot = self._host_slots.get(host)
        if slot is None:
            slot = self._host_slots[host] = asyncio.Semaphore(max(1, self._config.per_host))
        return slot

    async def _follow(
        self,
        url: str,
        current: httpx.URL,
        headers: dict[str, str],
        etag: str | None,
        last_modified: str | None,
        started: float,
    ) -> FetchResult:
        seen = {str(current)}
        redirects = 0
        while True:
            try:
                async with self._client.stream("GET", current, headers=headers) as response:
                    location = _redirect_target(url, response)
                    if location is None:
                        return await self._finish(url, response, etag, last_modified, started)
            except _RedirectRefused as exc:
                raise FetchError(
                    url,
                    f"redirect to {exc.reason} refused: {exc.location}",
                    error_class="http",
                    status=exc.status,
                ) from exc
            except httpx.InvalidURL as exc:
                # Only a redirect's Location can be invalid here (the URL was checked) and
                # the client lacks our hook, so the Location itself is unknown.
                raise FetchError(
                    url, f"redirect to an invalid URL refused: {exc}", error_class="http"
                ) from exc
            except httpx.HTTPError as exc:
                raise _classify(url, exc) from exc
            redirects += 1
            if redirects > self._config.max_redirects:
                raise FetchError(
                    url,
                    f"more than {self._config.max_redirects} redirects (last to {location})",
                    error_class="http",
                    status=response.status_code,
                )
            if str(location) in seen:
                raise FetchError(
                    url,
                    f"redirect loop at {location}",
                    error_class="http",
                    status=response.status_code,
                )
            seen.add(str(location))
            current = location

    async def _finish(
        self,
        url: str,
        response: httpx.Response,
        etag: str | None,
        last_modified: str | None,
        started: float,
    ) -> FetchResult:
        status = response.status_code
        if status == 304:
            # A 304 has no body, but the connection returns to the pool only once the
            # response was read to its end: unread, every 304 cost a new connection.
            await response.aread()
            headers = _lower_headers(response)
            return FetchResult(
                url=url,
                final_url=str(response.url),
                status=304,
                headers=headers,
                not_modified=True,
                etag=headers.get("etag") or etag,
                last_modified=headers.get("last-modified") or last_modified,
                max_age=_parse_max_age(headers.get("cache-control")),
                bytes_received=response.num_bytes_downloaded,
                elapsed_ms=_elapsed_ms(started),
            )
        if status >= 400:
            retry_after = response.headers.get("retry-after")
            raise FetchError(
                url,
                f"HTTP {status} {response.reason_phrase}".rstrip(),
                error_class="http",
                status=status,
                retry_after=retry_after if status in _RETRY_AFTER_STATUSES else None,
            )
        if status >= 300:
            # 300, 305 or a redirect without Location: nothing sensible to follow.
            raise FetchError(
                url, f"HTTP {status} without a usable redirect", error_class="http", status=status
            )
        body = await self._read_body(url, response)
        return FetchResult(
            url=url,
            final_url=str(response.url),
            status=status,
            body=body,
            headers=_lower_headers(response),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            max_age=_parse_max_age(response.headers.get("cache-control")),
            bytes_received=response.num_bytes_downloaded,
            elapsed_ms=_elapsed_ms(started),
        )

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        """The decoded body, refusing as soon as it passes `max_bytes` (never buffering more)."""
        limit = self._config.max_bytes
        declared = response.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(
                url,
                f"body of {int(declared)} bytes exceeds the {limit}-byte cap",
                error_class="too_large",
                status=response.status_code,
            )
        decoder = _BodyDecoder.for_encoding(url, response.headers.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0
        async for piece in _decoded(url, decoder, response.aiter_raw()):
            size += len(piece)
            if size > limit:
                raise FetchError(
                    url,
                    f"body exceeds the {limit}-byte cap after decompression",
                    error_class="too_large",
                    status=response.status_code,
                )
            chunks.append(piece)
        return b"".join(chunks)


class _BodyDecoder:
    """Undoes one Content-Encoding, yielding at most `_DECODE_PIECE` bytes at a time."""

    def __init__(self, url: str, encoding: str) -> None:
        self._url = url
        self._encoding = encoding
        self._zlib: zlib._Decompress | None = None
        if encoding == "gzip":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
        self._started = False

    @classmethod
    def for_encoding(cls, url: str, header: str) -> _BodyDecoder:
        codings = [c.strip().lower() for c in header.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        codings = ["gzip" if c == "x-gzip" else c for c in codings]
        if not codings:
            return cls(url, "identity")
        if len(codings) == 1 and codings[0] in ("gzip", "deflate"):
            return cls(url, codings[0])
        raise FetchError(url, f"unsupported Content-Encoding {header!r}", error_class="http")

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            if data:
                yield data
            return
        try:
            yield from self._inflate(data)
        except zlib.error as exc:
            raise FetchError(
                self._url, f"corrupt {self._encoding} body: {exc}", error_class="http"
            ) from exc

    def flush(self) -> Iterator[bytes]:
        if self._zlib is None:
            return
        try:
            yield from self._inflate(b"")
            tail = self._zlib.flush()
        except zlib.error as exc:
            raise FetchError(
                self._url, f"corrupt {self._encoding} body: {exc}", error_class="http"
            ) from exc
        if tail:
            yield tail

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        assert self._zlib is not None
        if not self._started and self._encoding == "deflate" and data:
            self._started = True
            # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
            probe = self._zlib.copy()
            try:
                probe.decompress(data[:64], 1)
            except zlib.error:
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        pending = data
        while True:
            out = self._zlib.decompress(pending, _DECODE_PIECE)
            if out:
                yield out
            pending = self._zlib.unconsumed_tail
            # A full piece may leave output buffered inside zlib even with no input left.
            if not pending and len(out) < _DECODE_PIECE:
                return


async def _decoded(
    url: str, decoder: _BodyDecoder, raw: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    async for chunk in raw:
        for piece in decoder.feed(chunk):
            yield piece
    for piece in decoder.flush():
        yield piece


def _parse_url(url: str, text: str | httpx.URL, what: str) -> httpx.URL:
    try:
        parsed = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(url, f"{what}: {text!s}", error_class="http") from exc
    if parsed.scheme not in _HTTP_SCHEMES:
        raise FetchError(
            url, f"{what}: only http(s) URLs are fetched, not {text!s}", error_class="http"
        )
    if not parsed.host:
        raise FetchError(url, f"{what}: no host in {text!s}", error_class="http")
    return parsed


def _redirect_target(url: str, response: httpx.Response) -> httpx.URL | None:
    """The absolute URL a redirect points to, or None if this response is not a redirect."""
    if response.status_code not in _REDIRECT_STATUSES:
        return None
    location = response.headers.get("location", "").strip()
    if not location:
        return None
    try:
        # httpx resolves Location (relative, scheme without host) into next_request.
        nxt = response.next_request
        target = nxt.url if nxt is not None else response.url.join(location)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError(
            url,
            f"redirect to an invalid URL: {location}",
            error_class="http",
            status=response.status_code,
        ) from exc
    if target.scheme not in _HTTP_SCHEMES:
        raise FetchError(
            url,
            f"redirect to a non-http(s) URL refused: {location}",
            error_class="http",
            status=response.status_code,
        )
    return _parse_url(url, target, "redirect to an invalid URL")


def _classify(url: str, exc: httpx.HTTPError) -> FetchError:
    """Our FetchError for an httpx exception, with the DESIGN §4 error class."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        kind = "timeout"
    elif isinstance(exc, httpx.TransportError) and _caused_by(exc, ssl.SSLError):
        kind = "tls"
    elif isinstance(exc, httpx.ConnectError) and (
        _caused_by(exc, socket.gaierror) or any(h in detail.lower() for h in _DNS_HINTS)
    ):
        kind = "dns"
    elif isinstance(exc, (httpx.UnsupportedProtocol, httpx.DecodingError, httpx.InvalidURL)):
        kind = "http"
    elif isinstance(exc, httpx.RemoteProtocolError) and "location header" in detail.lower():
        kind = "http"  # httpx could not parse a redirect's Location
    else:
        # ConnectError (refused), ReadError/WriteError (reset), RemoteProtocolError, proxies.
        kind = "connect"
    return FetchError(url, f"{type(exc).__name__}: {detail}", error_class=kind)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _parse_max_age(cache_control: str | None) -> int | None:
    """Cache-Control max-age in seconds (RFC 9111 §5.2.2.1); None when absent or invalid."""
    if not cache_control:
        return None
    for directive in cache_control.split(","):
        name, _, value = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            value = value.strip().strip('"')
            return int(value) if value.isascii() and value.isdigit() else None
    return None


def _lower_headers(response: httpx.Response) -> dict[str, str]:
    return {name.lower(): value for name, value in response.headers.items()}


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
