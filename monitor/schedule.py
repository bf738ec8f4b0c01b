"""Cron expressions and daemon timing decisions (catch-up, jitter, due slack). Pure: no I/O.

A digest `schedule` is a standard 5-field crontab line (minute hour day month day-of-week,
0 or 7 = Sunday) or a 6-field one with seconds first (`*/5 * * * * *`: every five seconds).
APScheduler 3 numbers weekdays from Monday = 0, so numeric weekdays are translated to names
here and a crontab line means what cron means by it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS_5 = ("minute", "hour", "day", "month", "day_of_week")
_FIELDS_6 = ("second", *_FIELDS_5)


def cron_trigger(expr: str, timezone: str) -> CronTrigger:
    """A trigger for a 5- or 6-field cron line. Raises ValueError saying what is wrong."""
    values = expr.split()
    names: tuple[str, ...]
    if len(values) == 5:
        names = _FIELDS_5
    elif len(values) == 6:
        names = _FIELDS_6
    else:
        raise ValueError(
            f"expected 5 fields (minute hour day month weekday) or 6 (second first), "
            f"got {len(values)}"
        )
    fields = dict(zip(names, values, strict=True))
    fields["day_of_week"] = _weekdays(fields["day_of_week"])
    if len(values) == 5:
        fields["second"] = "0"
    return CronTrigger(timezone=timezone, **fields)


def _weekdays(field: str) -> str:
    """Cron weekday numbers (0-7, Sunday = 0 and 7) as names; names and `*` pass through."""
    parts = []
    for part in field.split(","):
        if not part or any(c.isalpha() for c in part) or part.startswith("*"):
            parts.append(part)
            continue
        span, _, step_text = part.partition("/")
        low_text, _, high_text = span.partition("-")
        low = int(low_text)
        high = int(high_text) if high_text else (7 if step_text else low)
        step = int(step_text) if step_text else 1
        if not (0 <= low <= 7 and 0 <= high <= 7) or low > high or step < 1:
            raise ValueError(f"weekday {part!r} is not within 0-7 (0 and 7 are Sunday)")
        parts.extend(_DAY_NAMES[day % 7] for day in range(low, high + 1, step))
    return ",".join(dict.fromkeys(parts))  # de-duplicated, order kept


def missed_fire(trigger: CronTrigger, last_end: datetime | None, now: datetime) -> datetime | None:
    """The first time the schedule fired after the last recorded digest window and before
    `now`, if it did: the daemon was down then, and that digest is sent once at start-up."""
    if last_end is None:
        return None
    fire: datetime | None = trigger.get_next_fire_time(None, last_end + timedelta(microseconds=1))
    if fire is not None and fire <= now:
        return fire
    return None


def latest_fire(trigger: CronTrigger, last_end: datetime, now: datetime) -> datetime | None:
    """The last time the schedule fired after `last_end` and at or before `now` (None: it
    has not fired since): the end of the next window in cluster mode, the same on every node."""
    fire: datetime | None = trigger.get_next_fire_time(None, last_end + timedelta(microseconds=1))
    latest = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return latest


def poll_jitter(interval: timedelta) -> float:
    """Seconds of random delay added to each poll of a source: a tenth of its interval, at
    most five minutes, so sources sharing an interval drift apart."""
    return min(interval.total_seconds() / 10, 300.0)


def due_slack(interval: timedelta) -> timedelta:
    """How early a scheduled poll may run before the source's stored next check time. The
    interval job and the stored time drift apart by the poll's own duration and the jitter;
    without this slack every other tick would be skipped and a source polled at half speed."""
    return min(interval / 2, timedelta(minutes=5))
