"""The web pages on a real socket without the daemon, for tests and scripts. I/O: network,
database.

`PagesServer(config_path)` opens the config's store and serves `monitor.web.pages` (with the
corrections the daemon wires) through `monitor.server.Endpoint` on 127.0.0.1, on an asyncio
loop in a daemon thread, until closed.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from monitor.config import load_config
from monitor.resources import default_templates_dir
from monitor.store import Store
from monitor.web.pages import Pages, record_correction
from monitor.web.secret import load_secret


class PagesServer(AbstractContextManager["PagesServer"]):
    def __init__(self, config_path: Path, *, env: Mapping[str, str] | None = None) -> None:
        environ = {"MONITOR_DATA_DIR": str(config_path.parent / "data"), **(env or {})}
        self.config = load_config(config_path, environ)
        self.store = Store.open(self.config.storage_url, now=datetime.now(UTC))
        secret = load_secret(self.config.server.secret, self.config.data_dir)
        self.pages = Pages(
            lambda: self.config,
            self.store,
            secret,
            clock=lambda: datetime.now(UTC),
            correct=record_correction,
            templates_dir=default_templates_dir(),
        )
        server = self.config.server
        self.endpoint = self.pages.endpoint()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.port = 0

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.port = self.loop.run_until_complete(self.endpoint.start(server.host, 0))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        started.wait(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request: (status, headers with lower-case names, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = dict(headers or {})
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.endpoint.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        self.store.close()

    def __exit__(self, *_exc: object) -> None:
        self.close()
