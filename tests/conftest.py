"""Shared pytest fixtures: the local HTTP server and test-sized HTTP limits. I/O: 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from monitor.models import HttpConfig
from tests.servers import LocalServer
from tests.smtp_server import SmtpServer


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1; closed (threads joined) after the test."""
    server = LocalServer()
    try:
        yield server
    finally:
        server.close()
    assert not server.errors, f"the local server's handlers raised: {server.errors!r}"


@pytest.fixture
def http_config() -> HttpConfig:
    """HTTP limits small enough that caps and deadlines trip within a second or two."""
    return HttpConfig(
        user_agent="monitor-tests/0.1 (+https://example.invalid/monitor)",
        timeout=1.0,
        deadline=2.0,
        max_bytes=1_000_000,
        max_redirects=5,
        per_host=2,
        concurrency=10,
    )


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, loop in a thread); closed and joined after."""
    with SmtpServer() as server:
        yield server
