"""Times for people: a UTC time in the operator's zone, and a span such as "3 d 4 h".

Both accept any stored time: one a zone cannot show (year 1 west of Greenwich, year 9999 east
of it) comes back as its UTC text, never as an error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo


def local(value: datetime | None, zone: ZoneInfo) -> str:
    """A time in the operator's zone, with the zone's abbreviation (e.g. 2026-12-01 10:00:00 HKT)."""
    if value is None:
        return ""
    try:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (OverflowError, ValueError):
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds") + " UTC"


def span(seconds: float) -> str:
    """A length of time, rounded to its two largest units: "2 y 31 d", "3 d 4 h", "5 min", "40 s"."""
    seconds = abs(seconds)
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    years, days = divmod(days, 365)
    if years:
        return f"{years} y {days} d"
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else (f"{mins} min" if mins else f"{int(seconds)} s")



#: the times publisher accepts in a manifest: from 2000 to five years ahead (any zone can show them)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=5 * 365 + 1)
