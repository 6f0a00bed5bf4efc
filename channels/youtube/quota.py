"""YouTube API quota: the day's budget of one Google Cloud project (a ``quota_pool``).

Since 2026-06-01 ``videos.insert`` has its own bucket (default 100 uploads a day); every other
method shares 10 000 units a day. Both reset at midnight America/Los_Angeles. Every process and
machine publishing through the project spends from one record, ``youtube-quota:<pool>`` in the
account state the core keeps in the state store (``{"day", "units", "uploads"}``): each spend is
one read-modify-write no other process interleaves with.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from channels.youtube.options import UPLOAD, QuotaOptions
from publisher.contract import AccountState
from publisher.errors import QuotaExhausted, RateLimited

PACIFIC = ZoneInfo("America/Los_Angeles")
T = TypeVar("T")


def pacific_day(now: datetime) -> str:
    return now.astimezone(PACIFIC).date().isoformat()


def next_reset(now: datetime) -> datetime:
    """The next midnight in America/Los_Angeles, as a UTC time."""
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=PACIFIC)
    return midnight.astimezone(UTC)


def quota_key(pool: str) -> str:
    return f"youtube-quota:{pool}"


class Ledger:
    """Units and uploads spent today by one quota pool."""

    def __init__(self, accounts: AccountState, options: QuotaOptions, pool: str) -> None:
        self.accounts = accounts
        self.options = options
        self.pool = pool

    def _today(self, now: datetime, change: Callable[[dict[str, Any]], T]) -> T:
        """``change`` today's record (a new day starts from zero), atomically."""
        def today(data: dict[str, Any]) -> T:
            day = pacific_day(now)
            if data.get("day") != day or not isinstance(data.get("units"), int) \
                    or not isinstance(data.get("uploads"), int):
                data.clear()
                data.update(day=day, units=0, uploads=0)
            return change(data)
        return self.accounts.update(quota_key(self.pool), today)

    def spend(self, method: str, now: datetime) -> None:
        """Reserve the cost of one call, or raise RateLimited until the next Pacific midnight."""
        cost = self.options.cost(method)

        def reserve(data: dict[str, Any]) -> None:
            if method == UPLOAD and data["uploads"] + 1 > self.options.daily_uploads:
                raise self.limited(f"the {self.options.daily_uploads} uploads a day", now)
            if data["units"] + cost > self.options.daily_units:
                raise self.limited(
                    f"the daily budget ({data['units']} of {self.options.daily_units} units used, "
                    f"{method} needs {cost})", now)
            data["units"] += cost
            if method == UPLOAD:
                data["uploads"] += 1
        self._today(now, reserve)

    def exhausted(self, now: datetime, upload: bool = False) -> None:
        """YouTube said quotaExceeded: spend the rest of today's budget so no call tries again."""
        def spend_all(data: dict[str, Any]) -> None:
            if upload:
                data["uploads"] = max(data["uploads"], self.options.daily_uploads)
            else:
                data["units"] = max(data["units"], self.options.daily_units)
        self._today(now, spend_all)

    def used(self, now: datetime) -> dict[str, int]:
        return self._today(now, lambda data: {"units": int(data["units"]), "uploads": int(data["uploads"])})

    def limited(self, what: str, now: datetime) -> RateLimited:
        at = next_reset(now)
        return QuotaExhausted(
            f"YouTube quota pool '{self.pool}' has reached {what}; publisher continues after the "
            f"daily reset at {at.isoformat()} (midnight Pacific time)", retry_at=at)
