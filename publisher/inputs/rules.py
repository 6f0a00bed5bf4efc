"""Triggers for repeat rules: crontab-style cron in a zone (wall-clock, DST-safe), intervals,
and daily windows. Kept apart from the service so they can be tested and reused alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from publisher.errors import InputError
from publisher.models import RepeatSpec
from publisher.times import MAX_AHEAD


class WallClockCron(CronTrigger):
    """A CronTrigger that fires a wall-clock time occurring twice (clocks going back) only once."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        nxt: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        while nxt is not None and previous_fire_time is not None and _wall(nxt, self.timezone) == _wall(
                previous_fire_time, self.timezone):
            nxt = super().get_next_fire_time(nxt, nxt)
        return nxt


def _wall(value: datetime, zone: Any) -> datetime:
    return value.astimezone(zone).replace(tzinfo=None)


def parse_every(text: str) -> timedelta:
    """``every:`` as elapsed time: 90m, 12h, 30d or 1w, from one minute to five years."""
    m = re.fullmatch(r"(\d{1,12})([mhdw])", text)
    if not m:
        raise ValueError(f"'{text}' is not an interval")
    unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
    try:
        interval = timedelta(**{unit: int(m.group(1))})
    except OverflowError:
        interval = MAX_AHEAD * 2
    if interval < timedelta(minutes=1):
        raise ValueError(f"'{text}' is no time at all")
    if interval > MAX_AHEAD:
        raise ValueError(f"'{text}' is longer than 5 years")
    return interval


def parse_window(text: str) -> tuple[time, time]:
    """``window:`` as (start, end) wall-clock times; an end before the start runs past midnight."""
    m = re.fullmatch(r"(\d\d:\d\d)-(\d\d:\d\d)", text)
    try:
        start, end = (time.fromisoformat(v) for v in m.groups()) if m else (None, None)
    except ValueError:
        start = end = None
    if start is None or end is None:
        raise ValueError(f"'{text}' is not a daily window")
    if start == end:
        raise ValueError(f"'{text}' starts and ends at the same time")
    return start, end


def cron_trigger(expr: str, zone: ZoneInfo, until: datetime | None = None) -> WallClockCron:
    """A crontab expression (minute hour day month weekday) in ``zone``, ending at ``until``."""
    try:
        trigger = WallClockCron(**_cron_fields(expr), timezone=zone, end_date=until)
    except (TypeError, OverflowError) as exc:
        raise ValueError(str(exc)) from None
    if until is None and trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
        raise ValueError("it never fires (is it a date such as 31 February?)")
    return trigger


def repeat_trigger(spec: RepeatSpec) -> BaseTrigger:
    """The trigger of a stored rule. The loader has checked it with the same functions; a rule
    stored by an older version may still be wrong, which is an ``InputError`` here."""
    try:
        zone = ZoneInfo(spec.timezone)
        if spec.cron:
            return cron_trigger(spec.cron, zone, spec.until)
        interval = parse_every(spec.every or "")
    except (ValueError, KeyError) as exc:
        raise InputError(f"repeat rule {spec.cron or spec.every!r} ({spec.timezone}): {exc}") from None
    return IntervalTrigger(seconds=interval.total_seconds(), timezone=zone, end_date=spec.until)


def _cron_fields(expr: str) -> dict[str, str]:
    values = expr.split()
    if len(values) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day month weekday), got {len(values)}")
    fields = dict(zip(("minute", "hour", "day", "month", "day_of_week"), values, strict=True))
    fields["day_of_week"] = crontab_weekdays(fields["day_of_week"])
    return fields


def crontab_weekdays(text: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday) as APScheduler 3 names (it counts 0 = Monday)."""
    if text in ("*", "?"):
        return "*"
    days: set[int] = set()
    for token in text.lower().split(","):
        part, _, step = token.partition("/")
        if part == "*":
            lo, hi = 0, 6
        else:
            a, _, b = part.partition("-")
            lo = _weekday(a)
            hi = _weekday(b) if b else (6 if step else lo)
            if b and hi == 0 and b.strip() == "7":
                hi = 7
        if not step.isdigit() and step:
            raise ValueError(f"'{token}' has a bad step")
        days.update(d % 7 for d in range(lo, hi + 1, int(step or 1)))
    if not days:
        raise ValueError(f"'{text}' names no weekday")
    return ",".join(WEEKDAYS[d] for d in sorted(days))


WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday(text: str) -> int:
    text = text.strip()
    if text in WEEKDAYS:
        return WEEKDAYS.index(text)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    raise ValueError(f"'{text}' is not a weekday (0-7 or sun-sat)")


def occurrences(trigger: BaseTrigger, after: datetime, until: datetime, cap: int = 10_000) -> list[datetime]:
    """Fire times in (after, until], oldest first (at most ``cap``)."""
    out: list[datetime] = []
    t = trigger.get_next_fire_time(after, after)
    while t is not None and t <= until and len(out) < cap:
        out.append(t.astimezone(UTC))
        t = trigger.get_next_fire_time(t, t)
    return out


def in_window(spec: RepeatSpec, at: datetime) -> bool:
    if not spec.window:
        return True
    start, end = parse_window(spec.window)
    now = at.astimezone(ZoneInfo(spec.timezone)).time()
    return start <= now < end if start < end else (now >= start or now < end)


def window_today(spec: RepeatSpec, at: datetime) -> tuple[datetime, datetime] | None:
    """Today's window (in the rule's zone) as UTC times, for adapters such as signage."""
    if not spec.window:
        return None
    zone = ZoneInfo(spec.timezone)
    day = at.astimezone(zone).date()
    start, end = parse_window(spec.window)
    begin = datetime.combine(day, start, zone)
    finish = datetime.combine(day if end > start else day + timedelta(days=1), end, zone)
    return begin.astimezone(UTC), finish.astimezone(UTC)
