"""`monitor run` as a real subprocess for tests and scripts: start, wait, signal. I/O: processes.

`DaemonProcess` starts the daemon with its own environment (no MONITOR_* variables leak in
from the caller), sends its stderr to a log file that tests read, and offers waits that fail
with the log attached, so a failing test shows what the daemon said.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaemonProcess:
    """`python -m monitor --config CONFIG run`, stderr to `log_path`."""

    def __init__(self, config: Path, *, log_name: str = "daemon.log", **env: str) -> None:
        self.config = config
        self.log_path = config.parent / log_name
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        environ["MONITOR_DATA_DIR"] = str(config.parent / "data")
        environ.update(env)
        self._log = self.log_path.open("ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "--config", str(config), "run"],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env=environ,
            cwd=config.parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Poll `check` until it returns something truthy; fail with the log after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if self.process.poll() is not None:
                raise AssertionError(
                    f"daemon exited ({self.process.returncode}) while waiting for {what}\n"
                    + self.log()
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.log()}")
            time.sleep(0.1)

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        self.wait_for(repr(text), lambda: text in self.log(), timeout)

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (killing it if it does not exit within `timeout`)."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"daemon did not exit {timeout}s after SIGTERM\n{self.log()}"
            ) from None

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """(status, body); connection errors are (0, b"")."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def health(port: int) -> dict[str, Any] | None:
    status, body = http_get(f"http://127.0.0.1:{port}/healthz")
    if not status:
        return None
    payload: dict[str, Any] = json.loads(body)
    payload["http_status"] = status
    return payload


def metric(text: str, sample_name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0.0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sample, _, value = line.rpartition(" ")
        name, _, rest = sample.partition("{")
        if name != sample_name:
            continue
        pairs = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if p)
        if {k: v.strip('"') for k, v in pairs.items()} == labels:
            return float(value)
    return 0.0


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the daemon's SQLite database (WAL: a reader never blocks the writer)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return list(conn.execute(sql, args))
