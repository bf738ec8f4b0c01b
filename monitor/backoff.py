"""When to poll a source next: backoff, Retry-After, Cache-Control. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

# A server may ask us to stay away, but not for longer than this: a typo'd or hostile
# Retry-After must not silence a source for a year (DESIGN §2: never "give up forever").
MAX_RETRY_AFTER = timedelta(days=7)

# Cache-Control max-age may stretch the poll interval, but only this far. CDNs often send a
# default max-age of a day or more for feeds; honouring it fully would hide a day's news from
# a daily digest. Six hours keeps us polite to servers that ask for less traffic while a
# morning digest still sees what was published overnight. For short intervals the stretch is
# also bounded at 12 x interval, so a 5-minute source is not silently turned into a 6-hour one.
MAX_AGE_CAP = timedelta(hours=6)
MAX_AGE_INTERVAL_FACTOR = 12

# The shortest delay backoff ever returns, whatever `base` is: a zero delay would turn a
# failing source into a hot loop.
MIN_DELAY = timedelta(seconds=1)

# Jitter spreads retries over [75 %, 125 %) of the nominal delay (then capped), so sources that
# failed together (one host down) do not all come back in the same second.
_JITTER_LOW = 0.75
_JITTER_SPAN = 0.5


def backoff_delay(failures: int, *, base: timedelta, cap: timedelta, rand: float) -> timedelta:
    """Delay before the next attempt after `failures` consecutive failures.

    Nominal delay is `base * 2 ** (failures - 1)`, capped at `cap`, then scaled by a jitter
    factor in [0.75, 1.25) drawn from `rand` and capped again. It never exceeds `cap`, is never
    below one second, and is always finite: a source is retried forever, just less often.

    Args:
        failures: consecutive failures so far; values below 1 are treated as 1.
        base: the delay after the first failure (before jitter).
        cap: the longest delay ever returned.
        rand: a uniform random number in [0, 1), supplied by the caller.

    Raises:
        ValueError: `rand` outside [0, 1), or a non-positive `base` or `cap`.
    """
    if not 0.0 <= rand < 1.0:
        raise ValueError(f"rand must be in [0, 1), got {rand!r}")
    if base <= timedelta(0) or cap <= timedelta(0):
        raise ValueError(f"base and cap must be positive, got base={base} cap={cap}")
    exponent = min(max(failures, 1) - 1, 1000)
    # Compare in float seconds before building a timedelta: base * 2 ** 60 overflows it.
    if base.total_seconds() * 2.0**exponent >= cap.total_seconds():
        nominal = cap
    else:
        nominal = base * (2**exponent)
    jittered = nominal * (_JITTER_LOW + _JITTER_SPAN * rand)
    return max(min(jittered, cap), MIN_DELAY)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """The instant a Retry-After header value points to, or None if it is unusable.

    Accepts delay-seconds or an HTTP-date (RFC 9110 §10.2.3; IMF-fixdate and the obsolete
    RFC 850 / asctime forms). Garbage, negative numbers and empty values give None. A date in
    the past gives `now` (retry at once). The result is aware UTC and at most
    `now + MAX_RETRY_AFTER`.

    Raises:
        ValueError: `now` is naive.
    """
    _require_aware(now)
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    now_utc = now.astimezone(UTC)
    latest = now_utc + MAX_RETRY_AFTER
    if text.isascii() and text.isdigit():
        seconds = int(text)
        if seconds >= MAX_RETRY_AFTER.total_seconds():
            return latest
        return now_utc + timedelta(seconds=seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # HTTP dates are always GMT; "-0000" in RFC 5322 terms parses as naive.
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return min(max(when, now_utc), latest)


def next_check_after_success(now: datetime, interval: timedelta, max_age: int | None) -> datetime:
    """When to poll a source again after a successful fetch.

    Never sooner than `now + interval`. A Cache-Control max-age longer than the interval is
    honoured, but stretches the wait to at most `min(MAX_AGE_CAP, 12 * interval)` (and never
    below the interval itself); see MAX_AGE_CAP for why.

    Raises:
        ValueError: `now` is naive or `interval` is not positive.
    """
    _require_aware(now)
    if interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {interval}")
    wait = interval
    if max_age is not None and max_age > 0:
        stretch_limit = max(interval, min(MAX_AGE_CAP, interval * MAX_AGE_INTERVAL_FACTOR))
        # Compare in seconds first: a max-age of 10**12 would overflow timedelta.
        if max_age >= stretch_limit.total_seconds():
            wait = stretch_limit
        else:
            wait = max(interval, timedelta(seconds=max_age))
    return now.astimezone(UTC) + wait


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
