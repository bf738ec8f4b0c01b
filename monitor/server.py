"""The daemon's small HTTP server: health, metrics and the web pages. I/O: network.

HTTP/1.1 on asyncio streams, one request per connection (`Connection: close`): a request head
of at most 8 KiB read within 5 s, a form body of at most 16 KiB read within 5 s, routes with
path parameters (`/items/{id}`), GET, HEAD and POST. A stuck or hostile client costs nothing
but its own socket. Handlers that read the database run on the server's own two threads, so
a slow page never stalls polling on the event loop nor takes the threads polling uses.

Every answer carries the security headers of DESIGN §8: a Content-Security-Policy without
script, `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, no framing.
Bound beyond this machine, every route not marked public needs the access token, as a
bearer header or the cookie that `/login` sets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

log = logging.getLogger("monitor.server")

MAX_HEAD = 8192
MAX_BODY = 16384
READ_TIMEOUT = 5.0
PAGE_THREADS = 2
COOKIE = "monitor_session"
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request. Header names are lower case; `params` are the route's path
    parameters, percent-decoded."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, str]:
        """The urlencoded form body (the first value of each field)."""
        try:
            fields = parse_qsl(self.body.decode("utf-8", "replace"), max_num_fields=20)
        except ValueError:  # more fields than any of our forms has
            return {}
        out: dict[str, str] = {}
        for key, value in fields:
            out.setdefault(key, value)
        return out

    def cookie(self, name: str) -> str | None:
        for part in self.headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None


Handler = Callable[[Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    """`pattern`: a path whose `{name}` segments match any one segment. `blocking` handlers
    (database reads) run on the server's threads; `public` ones need no token."""

    pattern: str
    handler: Handler
    methods: tuple[str, ...] = ("GET",)
    blocking: bool = False
    public: bool = False

    def match(self, path: str) -> dict[str, str] | None:
        want, got = self.pattern.split("/"), path.split("/")
        if len(want) != len(got):
            return None
        params: dict[str, str] = {}
        for w, g in zip(want, got, strict=True):
            if w.startswith("{") and w.endswith("}"):
                if not g:
                    return None
                params[w[1:-1]] = unquote(g)
            elif w != g:
                return None
        return params


def json_response(status: int, payload: dict[str, Any]) -> Response:
    return Response(status, json.dumps(payload).encode() + b"\n", "application/json")


def text_response(status: int, message: str) -> Response:
    return Response(status, message.encode() + b"\n")


def session_value(token: str) -> str:
    """What the login cookie holds: derived from the token, so the cookie is not the token."""
    return hmac.new(token.encode(), b"monitor web session", hashlib.sha256).hexdigest()


def token_matches(given: str, token: str) -> bool:
    """Constant-time comparison, so timing tells nothing about the token."""
    return hmac.compare_digest(given.encode(), token.encode())


def has_access(request: Request, token: str | None) -> bool:
    """No token configured (bound to loopback), or the request carries it: as
    `Authorization: Bearer TOKEN` or the login cookie. Compared in constant time."""
    if token is None:
        return True
    auth = request.headers.get("authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() == "bearer" and token_matches(given.strip(), token):
        return True
    cookie = request.cookie(COOKIE)
    return cookie is not None and token_matches(cookie, session_value(token))


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.response = text_response(status, message)


class Endpoint:
    """Serves `routes` on host:port until `close`. `token`: the access token every non-public
    route needs (None: none needed); `locked`: every non-public route is refused, for want of
    a token; `denied` renders the answer to a request refused either way."""

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        token: str | None = None,
        locked: bool = False,
        denied: Handler | None = None,
    ) -> None:
        self.routes = list(routes)
        self.token = token
        self.locked = locked  # no token where one is needed: every non-public route is shut
        self.denied = denied or (lambda _r: text_response(403, "forbidden: a token is needed"))
        self._server: asyncio.Server | None = None
        self._threads: ThreadPoolExecutor | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0 in tests)."""
        self._threads = ThreadPoolExecutor(PAGE_THREADS, thread_name_prefix="pages")
        self._server = await asyncio.start_server(self._handle, host, port, limit=MAX_HEAD)
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info("endpoint_listening host=%s port=%d", host, bound)
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head_only = False
        try:
            try:
                request = await self._read(reader)
                head_only = request.method == "HEAD"
                response = await self._respond(request)
            except _Refused as refused:
                response = refused.response
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        except Exception:  # a bug in a handler: answer 503 rather than drop the probe
            log.exception("endpoint_error")
            response = text_response(503, "internal error")
        try:
            writer.write(_serialise(response, head_only=head_only))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Request:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except asyncio.LimitOverrunError as exc:
            raise _Refused(431, "request head too large") from exc
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
            raise _Refused(400, "bad request line")
        method, target, _version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip() or line[0] in " \t":
                raise _Refused(400, "bad header line")
            headers[name.lower()] = value.strip()
        path, _, query = target.partition("?")
        body = b""
        if "transfer-encoding" in headers:
            raise _Refused(400, "chunked bodies are not accepted; send Content-Length")
        length_text = headers.get("content-length", "0")
        if not length_text.isdigit():
            raise _Refused(400, "bad Content-Length")
        length = int(length_text)
        if length > MAX_BODY:
            raise _Refused(413, f"body over {MAX_BODY} bytes")
        if length:
            body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
        try:
            fields = parse_qsl(query, max_num_fields=20)
        except ValueError as exc:
            raise _Refused(400, "too many query parameters") from exc
        return Request(
            method=method,
            path=path,
            query=dict(fields),
            headers=headers,
            body=body,
        )

    async def _respond(self, request: Request) -> Response:
        route, params = self._find(request.path)
        if route is None or params is None:
            return text_response(404, "no such page")
        allowed = (*route.methods, "HEAD") if "GET" in route.methods else route.methods
        if request.method not in allowed:
            allow = ", ".join(allowed)
            return Response(
                405,
                f"{request.method} not allowed; use {allow}\n".encode(),
                headers=(("Allow", allow),),
            )
        call = Request(
            request.method, request.path, request.query, request.headers, request.body, params
        )
        handler = route.handler
        if not route.public and (self.locked or not has_access(call, self.token)):
            handler = self.denied
        if not route.blocking or self._threads is None:
            return handler(call)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, handler, call)

    def _find(self, path: str) -> tuple[Route | None, dict[str, str] | None]:
        for route in self.routes:
            params = route.match(path)
            if params is not None:
                return route, params
        return None, None


def _serialise(response: Response, *, head_only: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = ""
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        *(f"{name}: {value}" for name, value in SECURITY_HEADERS),
        *(f"{name}: {value}" for name, value in response.headers),
        "Connection: close",
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + response.body
