"""Parse and format durations ("90s", "30m", "24h", "7d") and CLI time values. No I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> timedelta:
    """`"30m"` -> 30 minutes. Raises ValueError naming the accepted forms."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration like '90s', '30m', '24h' or '7d'")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_time(value: str, now: datetime) -> datetime:
    """A CLI time value: an ISO date/datetime (naive means UTC) or a duration back from `now`."""
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is neither an ISO date/datetime (2026-11-20, 2026-11-20T07:00Z) "
            "nor a duration (24h, 7d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 UTC with a `Z`, as every JSON output writes times."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
