"""A real local HTTP server for tests: routes, tests/data files, bad endpoints. I/O: network.

`LocalServer` binds 127.0.0.1 on a free port and serves from a daemon thread, one thread per
connection, HTTP/1.0 (every response closes its connection, so no idle keep-alive thread
outlives a test). `close()` wakes handlers that sleep (`/hang`, `/slow-drip`, `/delay`,
delayed routes), shuts down every open connection and joins all threads; it raises if a
handler thread is still alive after a few seconds, so leaks show up in the test that caused
them.

Routes, looked up in this order (by path; the query string is ignored for lookup):

- `add_handler(path, fn)`: custom behaviour; `fn(handler)` writes the whole response
  (`send_body` helps). Use `server.sleep()` to wait so that `close()` can interrupt it.
- `add(path, body, ...)`: a static route honouring If-None-Match / If-Modified-Since.
- `/data/<relative path>`: files under `tests/data/` (or the `data_dir` given), with ETag
  (a hash of the bytes sent), Last-Modified (the file's mtime) and 304s. Content type from
  the extension (.xml, .rss, .atom -> application/xml; .json -> application/feed+json;
  .html -> text/html). A `X.gz` file is a stored gzip of `X`: it is served with
  `Content-Encoding: gzip` and the content type of `X` when the client accepts gzip (httpx
  does, so the client decodes it), and decompressed otherwise; it can also be requested as
  `/data/.../X` when `X` itself does not exist. This exercises the real decoding path
  instead of hiding it.
- built-ins:
  `/status/<code>`; `/retry-after/<code>?value=V` (default 120);
  `/slow-drip?bytes=N&interval=S&chunk=C` (C bytes every S seconds, Content-Length N);
  `/hang` (reads the request, never answers); `/oversized?mb=N` (N MiB, no Content-Length);
  `/gzip-bomb` (~130 KB of gzip decoding to 128 MiB, built once per process);
  `/gzip` (a small gzipped feed); `/redirect-loop`; `/redirect?to=URL&status=302`
  (any URL, including non-http schemes); `/redirect-chain?n=N` (N redirects, then a feed);
  `/html-as-feed` (a "Just a moment..." JavaScript challenge page, 200 text/html);
  `/delay?s=S` (sleeps, then a small feed).

Every request is recorded (`requests`, `requests_for(path)`), and the server tracks how many
requests per path were in flight at once (`in_flight_peak(path)`) and how many body bytes it
wrote per path (`bytes_sent(path)`).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import socket
import socketserver
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

DATA_DIR = Path(__file__).parent / "data"

SMALL_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
  <channel>
    <title>Local test feed</title>
    <link>http://127.0.0.1/</link>
    <description>A tiny feed served by tests/servers.py</description>
    <item>
      <title>ASEAN and Russia hold senior officials' meeting</title>
      <link>http://127.0.0.1/articles/1</link>
      <guid isPermaLink="false">local-test-1</guid>
      <pubDate>Mon, 01 Jul 2024 08:00:00 GMT</pubDate>
      <description>A short summary.</description>
    </item>
  </channel>
</rss>
"""

CHALLENGE_PAGE = b"""<!DOCTYPE html>
<html lang="en-US">
<head>
<title>Just a moment...</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<meta name="robots" content="noindex,nofollow">
<noscript><meta http-equiv="refresh" content="5"></noscript>
</head>
<body>
<div class="main-wrapper" role="main">
<h1>Checking if the site connection is secure</h1>
<p>Enable JavaScript and cookies to continue</p>
</div>
<script>
(function(){window._cf_chl_opt={cvId:'3',cType:'managed',cRay:'0000000000000000'};
var s=document.createElement('script');s.src='/cdn-cgi/challenge-platform/orchestrate.js';
document.getElementsByTagName('head')[0].appendChild(s);})();
</script>
</body>
</html>
"""

GZIP_BOMB_MIB = 128
HANG_LIMIT = 60.0  # seconds a /hang handler waits if close() is never called
JOIN_TIMEOUT = 5.0  # seconds close() waits for handler threads before calling it a leak
_CHUNK = 64 * 1024

Handler = Callable[[BaseHTTPRequestHandler], None]

_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/xml",
    ".atom": "application/xml",
    ".rdf": "application/xml",
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".opml": "text/x-opml",
}
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]


@dataclass(frozen=True)
class _Route:
    body: bytes
    status: int
    headers: dict[str, str]
    content_type: str
    etag: str | None
    last_modified: str | None
    delay: float


class LocalServer:
    """A real HTTP server on 127.0.0.1:<free port>, running in a daemon thread."""

    def __init__(self, data_dir: Path = DATA_DIR) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._routes: dict[str, _Route] = {}
        self._handlers: dict[str, Handler] = {}
        self._requests: list[RecordedRequest] = []
        self._in_flight: Counter[str] = Counter()
        self._peaks: Counter[str] = Counter()
        self._sent: Counter[str] = Counter()
        self.errors: list[BaseException] = []
        self._httpd = _HTTPServer(self)
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LocalServer:{port}",
            daemon=True,
        )
        self._thread.start()
        self._closed = False

    # -- public API --------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of `path` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def add(
        self,
        path: str,
        body: bytes,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        content_type: str = "application/xml",
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
    ) -> str:
        """Serve `body` at `path` (replacing any earlier route there); returns the URL."""
        route = _Route(body, status, dict(headers or {}), content_type, etag, last_modified, delay)
        with self._lock:
            self._routes[path] = route
        return self.url(path)

    def add_handler(self, path: str, fn: Handler) -> str:
        """Let `fn(handler)` answer every request to `path`; returns the URL."""
        with self._lock:
            self._handlers[path] = fn
        return self.url(path)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if r.path == path]

    def in_flight_peak(self, path: str) -> int:
        """The most requests to `path` that were being handled at the same time."""
        with self._lock:
            return self._peaks[path]

    def bytes_sent(self, path: str) -> int:
        """Body bytes written (handed to the socket) for `path`, over all requests."""
        with self._lock:
            return self._sent[path]

    def sleep(self, seconds: float) -> bool:
        """Wait up to `seconds`, waking early when the server closes; True if it is closing."""
        return self._closing.wait(seconds)

    def close(self) -> None:
        """Stop serving, cut open connections and join every thread (quickly)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._httpd.shutdown()
        self._thread.join(JOIN_TIMEOUT)
        self._httpd.abort_connections()
        stuck = self._httpd.join_handlers(JOIN_TIMEOUT)
        self._httpd.server_close()
        if stuck:
            names = ", ".join(t.name for t in stuck)
            raise RuntimeError(f"LocalServer handler threads still running after close: {names}")

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, handler: _RequestHandler) -> None:
        parts = urlsplit(handler.path)
        path = parts.path
        record = RecordedRequest(
            method=handler.command,
            path=path,
            query=parts.query,
            headers={name.lower(): value for name, value in handler.headers.items()},
        )
        handler.route_path = path
        with self._lock:
            self._requests.append(record)
            self._in_flight[path] += 1
            self._peaks[path] = max(self._peaks[path], self._in_flight[path])
            custom = self._handlers.get(path)
            route = self._routes.get(path)
        try:
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if custom is not None:
                custom(handler)
            elif route is not None:
                self._serve_route(handler, route)
            elif path.startswith("/data/"):
                self._serve_file(handler, unquote(path.removeprefix("/data/")))
            else:
                self._serve_builtin(handler, path, query)
        finally:
            with self._lock:
                self._in_flight[path] -= 1

    def _count_sent(self, path: str, n: int) -> None:
        with self._lock:
            self._sent[path] += n

    def _serve_route(self, handler: _RequestHandler, route: _Route) -> None:
        if route.delay and self.sleep(route.delay):
            return
        extra = dict(route.headers)
        if route.etag:
            extra["ETag"] = route.etag
        if route.last_modified:
            extra["Last-Modified"] = route.last_modified
        if route.status == 200 and _is_not_modified(handler, route.etag, route.last_modified):
            send_body(handler, 304, b"", headers=extra)
            return
        send_body(handler, route.status, route.body, content_type=route.content_type, headers=extra)

    def _serve_file(self, handler: _RequestHandler, relative: str) -> None:
        root = self.data_dir.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            send_body(handler, 403, b"outside tests/data\n", content_type="text/plain")
            return
        if not target.is_file() and target.with_name(target.name + ".gz").is_file():
            target = target.with_name(target.name + ".gz")
        if not target.is_file():
            send_body(handler, 404, b"no such file\n", content_type="text/plain")
            return
        data = target.read_bytes()
        headers: dict[str, str] = {}
        name = target.name
        if name.endswith(".gz"):
            name = name.removesuffix(".gz")
            if "gzip" in handler.headers.get("Accept-Encoding", "").lower():
                headers["Content-Encoding"] = "gzip"
            else:
                data = gzip.decompress(data)
        content_type = _CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        last_modified = formatdate(target.stat().st_mtime, usegmt=True)
        headers |= {"ETag": etag, "Last-Modified": last_modified}
        if _is_not_modified(handler, etag, last_modified):
            send_body(handler, 304, b"", headers=headers)
            return
        send_body(handler, 200, data, content_type=content_type, headers=headers)

    def _serve_builtin(self, handler: _RequestHandler, path: str, query: dict[str, str]) -> None:
        head, _, rest = path.lstrip("/").partition("/")
        try:
            if head == "status" and rest:
                code = int(rest)
                send_body(handler, code, f"status {code}\n".encode(), content_type="text/plain")
            elif head == "retry-after" and rest:
                value = query.get("value", "120")
                headers = {"Retry-After": value}
                send_body(handler, int(rest), b"slow down\n", "text/plain", headers)
            elif path == "/slow-drip":
                self._slow_drip(handler, query)
            elif path == "/hang":
                self.sleep(HANG_LIMIT)
            elif path == "/oversized":
                self._oversized(handler, float(query.get("mb", "50")))
            elif path == "/gzip-bomb":
                send_body(handler, 200, gzip_bomb(), headers={"Content-Encoding": "gzip"})
            elif path == "/gzip":
                body = gzip.compress(SMALL_FEED, mtime=0)
                send_body(handler, 200, body, headers={"Content-Encoding": "gzip"})
            elif path == "/redirect-loop":
                nxt = "/redirect-loop" if query.get("step") == "2" else "/redirect-loop?step=2"
                send_body(handler, 302, b"", headers={"Location": nxt})
            elif path == "/redirect":
                status = int(query.get("status", "302"))
                send_body(handler, status, b"", headers={"Location": query.get("to", "/")})
            elif path == "/redirect-chain":
                n = int(query.get("n", "3"))
                if n <= 0:
                    send_body(handler, 200, SMALL_FEED)
                else:
                    location = f"/redirect-chain?n={n - 1}"
                    send_body(handler, 302, b"", headers={"Location": location})
            elif path == "/html-as-feed":
                send_body(handler, 200, CHALLENGE_PAGE, content_type="text/html; charset=UTF-8")
            elif path == "/delay":
                if not self.sleep(float(query.get("s", "0.5"))):
                    send_body(handler, 200, SMALL_FEED)
            else:
                send_body(handler, 404, b"not found\n", content_type="text/plain")
        except ValueError:
            send_body(handler, 400, b"bad parameter\n", content_type="text/plain")

    def _slow_drip(self, handler: _RequestHandler, query: dict[str, str]) -> None:
        total = int(query.get("bytes", "1000"))
        interval = float(query.get("interval", "0.5"))
        chunk = max(1, int(query.get("chunk", "1")))
        handler.send_response(200)
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        handler.wfile.flush()
        sent = 0
        while sent < total:
            piece = b"x" * min(chunk, total - sent)
            handler.wfile.write(piece)
            handler.wfile.flush()
            sent += len(piece)
            self._count_sent(handler.route_path, len(piece))
            if self.sleep(interval):
                return

    def _oversized(self, handler: _RequestHandler, mebibytes: float) -> None:
        total = int(mebibytes * 1024 * 1024)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/xml")
        handler.end_headers()  # no Content-Length: HTTP/1.0, the body ends when we close
        block = b"x" * _CHUNK
        sent = 0
        while sent < total and not self._closing.is_set():
            piece = block[: total - sent]
            handler.wfile.write(piece)
            sent += len(piece)
            self._count_sent(handler.route_path, len(piece))


def send_body(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str = "application/xml",
    headers: dict[str, str] | None = None,
) -> None:
    """Write a complete response with Content-Length (no body for 204/304/1xx)."""
    handler.send_response(status)
    no_body = status in _NO_BODY_STATUSES or status < 200
    if not no_body:
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    if not no_body and handler.command != "HEAD":
        handler.wfile.write(body)
        if isinstance(handler, _RequestHandler):
            handler.local_server._count_sent(handler.route_path, len(body))


def redirect_to(server: LocalServer, target: str, status: int = 302) -> str:
    """The URL of a `/redirect` route on `server` that sends clients to `target`."""
    return server.url(f"/redirect?status={status}&to={quote(target, safe='')}")


_bomb_lock = threading.Lock()
_bomb: bytes | None = None


def gzip_bomb() -> bytes:
    """About 130 KB of gzip that inflates to GZIP_BOMB_MIB MiB of zeros; built once."""
    global _bomb
    with _bomb_lock:
        if _bomb is None:
            compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
            block = bytes(1024 * 1024)
            parts = [compressor.compress(block) for _ in range(GZIP_BOMB_MIB)]
            parts.append(compressor.flush())
            _bomb = b"".join(parts)
        return _bomb


def _is_not_modified(
    handler: BaseHTTPRequestHandler, etag: str | None, last_modified: str | None
) -> bool:
    """RFC 9110 §13.1: If-None-Match wins; If-Modified-Since only when it is absent."""
    if_none_match = handler.headers.get("If-None-Match")
    if if_none_match is not None:
        if etag is None:
            return False
        wanted = {_weak_stripped(t) for t in if_none_match.split(",")}
        return "*" in wanted or _weak_stripped(etag) in wanted
    if_modified_since = handler.headers.get("If-Modified-Since")
    if if_modified_since is None or last_modified is None:
        return False
    if if_modified_since.strip() == last_modified.strip():
        return True
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False


def _weak_stripped(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "monitor-tests/1"
    timeout = 30  # socket timeout: a stuck client cannot pin a handler thread forever
    server: _HTTPServer
    route_path = ""

    @property
    def local_server(self) -> LocalServer:
        return self.server.owner

    def do_GET(self) -> None:
        self.server.owner._dispatch(self)

    def do_HEAD(self) -> None:
        self.server.owner._dispatch(self)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean; `requests` records what arrived


class _HTTPServer(HTTPServer):
    """HTTPServer that tracks its handler threads and connections so close() can end them."""

    request_queue_size = 128
    daemon_threads = True

    def __init__(self, owner: LocalServer) -> None:
        self.owner = owner
        self._track_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        thread = threading.Thread(
            target=self._handle,
            args=(request, client_address),
            name=f"LocalServer-handler:{self.server_port}",
            daemon=True,
        )
        with self._track_lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            self._connections.add(request)
        thread.start()

    def _handle(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            with self._track_lock:
                self._connections.discard(request)
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        # A client that stops reading (size cap, deadline) and closes is the normal case here.
        if isinstance(exc, (ConnectionError, TimeoutError)) or exc is None:
            return
        self.owner.errors.append(exc)
        super().handle_error(request, client_address)

    def abort_connections(self) -> None:
        with self._track_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> list[threading.Thread]:
        deadline = time.monotonic() + timeout
        with self._track_lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t for t in threads if t.is_alive()]
