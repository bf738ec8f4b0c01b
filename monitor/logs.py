"""Structured log lines: an event name then key=value pairs, as text or JSON. I/O: stderr.

Every log call in the project reads `log.info("poll_ok source=%r new=%d", ...)`: the first word
names the event, the rest are key=value pairs. The text format prints that line after a UTC
timestamp, the level and the logger; the JSON format splits it into an object, one per line,
for a log shipper.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_PAIR = re.compile(r"""(\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""")


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class TextFormatter(logging.Formatter):
    """`2026-11-22T07:00:00.123Z INFO monitor.pipeline poll_ok source='ASEAN' new=3`"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, then the line's key=value pairs."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, _, rest = message.partition(" ")
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": event,
        }
        for key, raw in _PAIR.findall(rest):
            if key not in out:
                out[key] = _value(raw)
        if not _PAIR.search(rest) and rest:
            out["message"] = rest
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        body = raw[1:-1]
        return body.replace("\\" + raw[0], raw[0]).replace("\\\\", "\\")
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"-?\d+\.\d+", raw):
        return float(raw)
    return raw


def configure(level: int, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Route the root logger to `stream` (stderr) in the chosen format, replacing handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
