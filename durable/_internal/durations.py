"""Parsing of durations and instants: seconds, "10s"-style strings, timedelta, datetime."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}
_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_seconds(value: object, what: str = "duration") -> float:
    """Return a non-negative number of seconds for a number, a "10s" string or a timedelta."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be seconds, a string like '10s', or a timedelta; got {value!r}")
    if isinstance(value, int | float):
        secs = float(value)
    elif isinstance(value, timedelta):
        secs = value.total_seconds()
    elif isinstance(value, str):
        m = _RE.match(value)
        if not m or (m.group(2) and m.group(2).lower() not in _UNITS):
            raise ValueError(
                f"bad {what} {value!r}: use a number of seconds or a string like '500ms', '10s', "
                "'5m', '1h', '1d'"
            )
        secs = float(m.group(1)) * _UNITS[m.group(2).lower() or "s"]
    else:
        raise TypeError(
            f"{what} must be seconds, a string like '10s', a timedelta or a datetime; got {value!r}"
        )
    if secs != secs or secs in (float("inf"), float("-inf")) or secs < 0:
        raise ValueError(f"bad {what} {value!r}: must be a finite number of seconds >= 0")
    return secs


def to_timestamp(value: datetime) -> float:
    """Epoch seconds of a datetime; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def resolve_until(value: object, now: float, what: str = "duration") -> float:
    """Absolute epoch time for a duration (relative to `now`) or a datetime (absolute)."""
    if isinstance(value, datetime):
        return to_timestamp(value)
    return now + parse_seconds(value, what)
