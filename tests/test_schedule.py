"""Cron lines, missed digests and poll timing for the daemon (monitor.schedule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.schedule import cron_trigger, due_slack, missed_fire, poll_jitter

MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # a Monday


def next_fire(expr: str, after: datetime, timezone: str = "UTC") -> datetime:
    fire = cron_trigger(expr, timezone).get_next_fire_time(None, after)
    assert fire is not None
    return fire.astimezone(UTC)


@pytest.mark.parametrize(
    ("weekday", "expected"),
    [
        ("0", datetime(2026, 11, 29, 7, tzinfo=UTC)),  # cron 0 = Sunday (not Monday)
        ("7", datetime(2026, 11, 29, 7, tzinfo=UTC)),  # 7 = Sunday too
        ("1", datetime(2026, 11, 30, 7, tzinfo=UTC)),  # Monday, next week (today's 07:00 passed)
        ("1-5", datetime(2026, 11, 24, 7, tzinfo=UTC)),  # Tuesday
        ("6,0", datetime(2026, 11, 28, 7, tzinfo=UTC)),  # Saturday
        ("sat", datetime(2026, 11, 28, 7, tzinfo=UTC)),
        ("*", datetime(2026, 11, 24, 7, tzinfo=UTC)),
    ],
)
def test_weekday_numbers_mean_what_cron_means(weekday: str, expected: datetime) -> None:
    assert next_fire(f"0 7 * * {weekday}", MONDAY) == expected


def test_a_sixth_field_is_seconds_first() -> None:
    assert next_fire("*/5 * * * * *", MONDAY + timedelta(seconds=1)) == MONDAY + timedelta(
        seconds=5
    )
    assert next_fire("0 7 * * *", MONDAY).second == 0


def test_the_schedule_runs_in_the_digest_time_zone() -> None:
    # 07:00 in Jakarta (UTC+7) is midnight UTC.
    assert next_fire("0 7 * * *", MONDAY, "Asia/Jakarta") == datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize("expr", ["0 7 * *", "0 7 * * * * *", "0 25 * * *", "0 7 * * 8", "x"])
def test_bad_cron_lines_are_refused(expr: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by field
        cron_trigger(expr, "UTC")


def test_a_fire_time_between_the_last_window_and_now_is_missed() -> None:
    trigger = cron_trigger("0 7 * * *", "UTC")
    last_end = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # the 20th's digest ran
    # Down from the 20th to the 22nd at noon: the 21st's 07:00 was missed (sent once).
    assert missed_fire(trigger, last_end, datetime(2026, 11, 22, 12, tzinfo=UTC)) == datetime(
        2026, 11, 21, 7, tzinfo=UTC
    )
    # Back before the next 07:00: nothing was missed.
    assert missed_fire(trigger, last_end, datetime(2026, 11, 21, 6, 59, tzinfo=UTC)) is None
    # The last window ended exactly at a fire time: that run is not missed again.
    assert missed_fire(trigger, last_end, last_end + timedelta(hours=1)) is None
    # Never sent: nothing to catch up.
    assert missed_fire(trigger, None, MONDAY) is None


def test_jitter_and_slack_scale_with_the_interval_and_are_capped() -> None:
    assert poll_jitter(timedelta(seconds=1)) == pytest.approx(0.1)
    assert poll_jitter(timedelta(minutes=30)) == 180.0
    assert poll_jitter(timedelta(hours=6)) == 300.0
    assert due_slack(timedelta(seconds=1)) == timedelta(milliseconds=500)
    assert due_slack(timedelta(hours=1)) == timedelta(minutes=5)
