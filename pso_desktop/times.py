"""ISO 8601 times as stored and sent, read in one place for storage, services and the window alike. Pure Python
with no package imports, so the window may use it without loading the domain package (pydantic) at start."""

from __future__ import annotations

import datetime as dt


def parse_iso_time(value: object) -> dt.datetime | None:
    """An ISO 8601 date-time as written (a naive one stays naive), or None for anything else: not text, or
    text that is not a date-time (a draft's half-typed value)."""
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def parse_utc_time(value: object) -> dt.datetime | None:
    """An ISO 8601 date-time as an aware time, a naive one read as UTC (storage keeps UTC), or None as for
    :func:`parse_iso_time`."""
    moment = parse_iso_time(value)
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment
