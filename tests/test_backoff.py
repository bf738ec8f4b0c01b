"""Tests for monitor.backoff: failure backoff, Retry-After parsing, next check after success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.backoff import (
    MAX_RETRY_AFTER,
    backoff_delay,
    next_check_after_success,
    parse_retry_after,
)

NOW = datetime(2024, 7, 1, 12, 0, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("failures", "rand", "expected"),
    [
        pytest.param(1, 0.5, 60 * S, id="first-failure-is-base"),
        pytest.param(1, 0.0, 45 * S, id="first-failure-low-jitter"),
        pytest.param(1, 0.999999, 75 * S, id="first-failure-high-jitter"),
        pytest.param(2, 0.5, 120 * S, id="second-failure-doubles"),
        pytest.param(3, 0.5, 240 * S, id="third-failure-quadruples"),
        pytest.param(6, 0.5, 1920 * S, id="sixth-failure"),
        pytest.param(7, 0.5, HOUR, id="capped"),
        pytest.param(7, 0.0, 45 * MIN, id="capped-jitter-stays-below-cap"),
        pytest.param(7, 0.999999, HOUR, id="capped-high-jitter-never-exceeds-cap"),
        pytest.param(10_000, 0.5, HOUR, id="huge-failure-count-no-overflow"),
        pytest.param(0, 0.5, 60 * S, id="zero-failures-treated-as-one"),
        pytest.param(-3, 0.5, 60 * S, id="negative-failures-treated-as-one"),
    ],
)
def test_backoff_delay_grows_exponentially_with_jitter_and_cap(
    failures: int, rand: float, expected: timedelta
) -> None:
    got = backoff_delay(failures, base=MIN, cap=HOUR, rand=rand)
    assert abs(got - expected) < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("base", "cap"),
    [
        pytest.param(timedelta(milliseconds=1), HOUR, id="tiny-base"),
        pytest.param(timedelta(microseconds=1), timedelta(microseconds=2), id="tiny-cap"),
    ],
)
def test_backoff_delay_is_never_zero(base: timedelta, cap: timedelta) -> None:
    assert backoff_delay(1, base=base, cap=cap, rand=0.0) >= timedelta(seconds=1)


def test_backoff_delay_never_exceeds_cap_and_never_decreases_nominally() -> None:
    delays = [backoff_delay(n, base=MIN, cap=HOUR, rand=0.5) for n in range(1, 40)]
    assert all(d <= HOUR for d in delays)
    assert delays == sorted(delays)
    assert delays[-1] == HOUR  # still a finite retry: never "give up forever"


@pytest.mark.parametrize(
    ("kwargs"),
    [
        pytest.param({"rand": 1.0}, id="rand-one"),
        pytest.param({"rand": -0.1}, id="rand-negative"),
        pytest.param({"rand": 0.5, "base": timedelta(0)}, id="zero-base"),
        pytest.param({"rand": 0.5, "cap": -HOUR}, id="negative-cap"),
    ],
)
def test_backoff_delay_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"base": MIN, "cap": HOUR} | kwargs
    with pytest.raises(ValueError, match="must be"):
        backoff_delay(1, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("120", NOW + 120 * S, id="delta-seconds"),
        pytest.param("  30 ", NOW + 30 * S, id="delta-seconds-padded"),
        pytest.param("0", NOW, id="zero-seconds"),
        pytest.param("Mon, 01 Jul 2024 12:05:00 GMT", NOW + 5 * MIN, id="imf-fixdate"),
        pytest.param("Monday, 01-Jul-24 12:05:00 GMT", NOW + 5 * MIN, id="rfc850-date"),
        pytest.param("Mon Jul  1 12:05:00 2024", NOW + 5 * MIN, id="asctime-date"),
        pytest.param("Mon, 01 Jul 2024 11:00:00 GMT", NOW, id="past-date-means-now"),
        pytest.param("999999999999999999999", NOW + MAX_RETRY_AFTER, id="absurd-seconds-capped"),
        pytest.param("Fri, 01 Jan 2100 00:00:00 GMT", NOW + MAX_RETRY_AFTER, id="far-date-capped"),
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("-5", None, id="negative"),
        pytest.param("1.5", None, id="fractional"),
        pytest.param("٣", None, id="non-ascii-digit"),
        pytest.param("Mon, 99 Jul 2024 12:05:00 GMT", None, id="impossible-date"),
    ],
)
def test_parse_retry_after(value: str | None, expected: datetime | None) -> None:
    got = parse_retry_after(value, NOW)
    assert got == expected
    if got is not None:
        assert got.utcoffset() == timedelta(0)


def test_parse_retry_after_returns_utc_for_a_non_utc_now() -> None:
    jakarta = timezone(timedelta(hours=7))
    got = parse_retry_after("60", NOW.astimezone(jakarta))
    assert got == NOW + MIN
    assert got is not None
    assert got.tzinfo is UTC


def test_parse_retry_after_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_retry_after("60", datetime(2024, 7, 1, 12, 0))


@pytest.mark.parametrize(
    ("interval", "max_age", "expected_wait"),
    [
        pytest.param(30 * MIN, None, 30 * MIN, id="no-max-age"),
        pytest.param(30 * MIN, 60, 30 * MIN, id="short-max-age-never-sooner"),
        pytest.param(30 * MIN, 0, 30 * MIN, id="zero-max-age"),
        pytest.param(30 * MIN, -100, 30 * MIN, id="negative-max-age-ignored"),
        pytest.param(30 * MIN, 7200, 2 * HOUR, id="longer-max-age-honoured"),
        pytest.param(30 * MIN, 86400, 6 * HOUR, id="day-max-age-capped-at-6h"),
        pytest.param(5 * MIN, 86400, 60 * MIN, id="short-interval-capped-at-12x"),
        pytest.param(8 * HOUR, 86400, 8 * HOUR, id="long-interval-wins-over-cap"),
        pytest.param(30 * MIN, 10**15, 6 * HOUR, id="absurd-max-age-no-overflow"),
    ],
)
def test_next_check_after_success(
    interval: timedelta, max_age: int | None, expected_wait: timedelta
) -> None:
    assert next_check_after_success(NOW, interval, max_age) == NOW + expected_wait


def test_next_check_after_success_rejects_non_positive_interval() -> None:
    with pytest.raises(ValueError, match="positive"):
        next_check_after_success(NOW, timedelta(0), None)
