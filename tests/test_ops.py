"""Operator-facing pieces of the daemon: log formats, the HTTP endpoint, the [daemon] config."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import pytest

from monitor import logs
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.server import Endpoint, Request, Response, Route
from tests.test_cli import ROOT


def emit(fmt: str, message: str, *args: object) -> str:
    stream = io.StringIO()
    logs.configure(logging.INFO, fmt, stream)
    try:
        logging.getLogger("monitor.test").info(message, *args)
    finally:
        logs.configure(logging.WARNING, "text")
    return stream.getvalue()


def test_text_lines_carry_a_utc_time_level_logger_and_the_event() -> None:
    line = emit("text", "poll_ok source=%r new=%d", "ASEAN", 3)
    stamp, level, logger, rest = line.rstrip("\n").split(" ", 3)
    assert stamp.endswith("Z")
    assert "T" in stamp
    assert (level, logger, rest) == ("INFO", "monitor.test", "poll_ok source='ASEAN' new=3")


def test_json_lines_split_the_event_and_its_pairs() -> None:
    line = emit(
        "json", "poll_failed source=%r class=%s error=%s took=%.2f", "TASS 'en'", "dns", "x", 1.5
    )
    record = json.loads(line)
    assert record["event"] == "poll_failed"
    assert record["level"] == "info"
    assert record["source"] == "TASS 'en'"
    assert record["class"] == "dns"
    assert record["took"] == 1.5
    free = json.loads(emit("json", "daemon_exit_now: second signal"))
    assert free["event"] == "daemon_exit_now:"
    assert free["message"] == "second signal"


def request(port: int, raw: bytes) -> bytes:
    async def go() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        data = await reader.read()
        writer.close()
        return data

    return asyncio.run(go())


def test_the_endpoint_routes_gets_and_refuses_everything_else() -> None:
    calls: list[str] = []

    def ok(_request: Request) -> Response:
        calls.append("ok")
        return Response(200, b"fine\n")

    def broken(_request: Request) -> Response:
        raise RuntimeError("a bug")

    async def scenario() -> list[bytes]:
        endpoint = Endpoint([Route("/healthz", ok), Route("/broken", broken, blocking=True)])
        port = await endpoint.start("127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        answers = [
            await loop.run_in_executor(None, request, port, raw)
            for raw in (
                b"GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
                b"POST /healthz HTTP/1.1\r\n\r\n",
                b"GET /nope HTTP/1.1\r\n\r\n",
                b"GET /broken HTTP/1.1\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\n" + b"X: " + b"a" * 20_000 + b"\r\n\r\n",
            )
        ]
        await endpoint.close()
        return answers

    good, post, missing, bug, huge = asyncio.run(scenario())
    assert good.startswith(b"HTTP/1.1 200 OK\r\n")
    assert good.endswith(b"\r\n\r\nfine\n")
    assert b"Content-Length: 5\r\n" in good
    assert post.startswith(b"HTTP/1.1 405 ")
    assert missing.startswith(b"HTTP/1.1 404 ")
    assert bug.startswith(b"HTTP/1.1 503 ")
    assert huge.startswith(b"HTTP/1.1 431 ")  # an oversized request head is refused
    assert calls == ["ok"]


def write(tmp_path: Path, extra: str, sources: str = "") -> Path:
    (tmp_path / "sources.toml").write_text(sources, "utf-8")
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[sources]\nfile = "sources.toml"\n[topics]\nfile = "{ROOT / "config/topics.toml"}"\n'
        + extra,
        "utf-8",
    )
    return path


def test_daemon_settings_and_their_problems(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            '[daemon]\ndrain_timeout = "5s"\noutbox_interval = "30s"\nlog_format = "json"\n',
        ),
        {},
    )
    assert config.daemon.drain_timeout.total_seconds() == 5
    assert config.daemon.outbox_interval.total_seconds() == 30
    assert config.daemon.log_format == "json"
    with pytest.raises(ConfigError) as caught:
        load_config(
            write(tmp_path, '[daemon]\ndrain_timeout = "0s"\nlog_format = "xml"\ndrain = 1\n'), {}
        )
    keys = {p.key for p in caught.value.problems}
    assert keys == {"daemon.drain_timeout", "daemon.log_format", "daemon.drain"}


def test_the_server_port_comes_from_the_environment_in_a_container(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    assert load_config(path, {}).server.port == 0
    server = load_config(path, {"MONITOR_SERVER_PORT": "8080", "MONITOR_SERVER_HOST": "0.0.0.0"})
    assert (server.server.host, server.server.port) == ("0.0.0.0", 8080)
    with pytest.raises(ConfigError, match="MONITOR_SERVER_PORT is not a number"):
        load_config(path, {"MONITOR_SERVER_PORT": "eighty"})


def test_the_shortest_source_interval_is_a_setting(tmp_path: Path) -> None:
    fast = '[[sources]]\nname = "A"\nurl = "http://127.0.0.1/feed"\ninterval = "1s"\n'
    with pytest.raises(
        ConfigError, match=r"shorter than the minimum of 1m \(\[poll\] min_interval\)"
    ):
        load_config(write(tmp_path, "", fast), {})
    config = load_config(write(tmp_path, '[poll]\nmin_interval = "1s"\n', fast), {})
    assert config.sources[0].interval.total_seconds() == 1
    with pytest.raises(ConfigError, match=r"poll\.min_interval: must be at least 1s"):
        load_config(write(tmp_path, '[poll]\nmin_interval = "0.5s"\n', fast), {})
