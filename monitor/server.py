"""The daemon's small HTTP endpoint: `/healthz` and `/metrics`. I/O: network.

A handful of GET routes on asyncio streams; it reads at most one request head (8 KiB, 5 s)
per connection and answers with `Connection: close`, so a stuck or hostile client costs
nothing but its own socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("monitor.server")

MAX_HEAD = 8192
READ_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


Route = Callable[[], Response]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def json_response(status: int, payload: dict[str, Any]) -> Response:
    return Response(status, json.dumps(payload).encode() + b"\n", "application/json")


class Endpoint:
    """Serves `routes` (path -> handler) on host:port until `close`."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (useful with port 0 in tests)."""
        self._server = await asyncio.start_server(self._handle, host, port, limit=MAX_HEAD)
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info("endpoint_listening host=%s port=%d", host, bound)
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            response = self._route(head)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        except Exception:  # a bug in a handler: answer 503 rather than drop the probe
            log.exception("endpoint_error")
            response = Response(503, b"internal error\n")
        reason = _REASONS.get(response.status, "")
        writer.write(
            f"HTTP/1.1 {response.status} {reason}\r\n"
            f"Content-Type: {response.content_type}\r\n"
            f"Content-Length: {len(response.body)}\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode("ascii")
            + response.body
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    def _route(self, head: bytes) -> Response:
        if len(head) > MAX_HEAD:
            return Response(404, b"request head too large\n")
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3:
            return Response(404, b"bad request\n")
        method, target, _version = parts
        path = target.split("?", 1)[0]
        handler = self.routes.get(path)
        if handler is None:
            return Response(404, f"no such path; try {', '.join(self.routes)}\n".encode())
        if method != "GET":
            return Response(405, b"GET only\n")
        return handler()
