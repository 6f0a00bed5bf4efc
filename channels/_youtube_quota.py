"""YouTube API quota: the day's budget per Google Cloud project, kept in a locked JSON ledger.

Since 2026-06-01 ``videos.insert`` has its own bucket (default 100 uploads a day); every other
method shares 10 000 units a day. Both reset at midnight America/Los_Angeles. Several publisher
processes may share one project (``quota_pool``), so the ledger is a file under ``fcntl`` lock.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from publisher.errors import RateLimited

PACIFIC = ZoneInfo("America/Los_Angeles")
UPLOAD = "videos.insert"

DEFAULT_COSTS: dict[str, int] = {
    "videos.insert": 0,  # shared units; the upload itself counts in the upload bucket
    "videos.list": 1, "videos.update": 50, "videos.delete": 50,
    "captions.insert": 400, "captions.list": 50, "captions.delete": 50,
    "thumbnails.set": 50, "playlistItems.insert": 50, "playlistItems.list": 1, "channels.list": 1,
}


class QuotaOptions(BaseModel):
    """``quota:`` in a youtube channel block. Costs are configurable because Google changes them."""

    model_config = ConfigDict(extra="forbid")

    daily_units: int = Field(10000, ge=0)
    daily_uploads: int = Field(100, ge=0)
    costs: dict[str, int] = Field(default_factory=dict)

    @field_validator("costs")
    @classmethod
    def _known(cls, v: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(v) - set(DEFAULT_COSTS))
        if unknown:
            raise ValueError(f"unknown API method(s) {unknown}; known: {sorted(DEFAULT_COSTS)}")
        if any(c < 0 for c in v.values()):
            raise ValueError("costs must not be negative")
        return v

    def cost(self, method: str) -> int:
        return self.costs.get(method, DEFAULT_COSTS.get(method, 1))


def pacific_day(now: datetime) -> str:
    return now.astimezone(PACIFIC).date().isoformat()


def next_reset(now: datetime) -> datetime:
    """The next midnight in America/Los_Angeles, as a UTC time."""
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=PACIFIC)
    return midnight.astimezone(UTC)


class Ledger:
    """Units and uploads spent today by one quota pool."""

    def __init__(self, path: Path, options: QuotaOptions, pool: str) -> None:
        self.path = path
        self.options = options
        self.pool = pool

    @contextmanager
    def _locked(self, now: datetime) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            text = f.read()
            try:
                data = json.loads(text) if text.strip() else {}
            except json.JSONDecodeError:
                data = {}
            day = pacific_day(now)
            if data.get("day") != day:
                data = {"day": day, "units": 0, "uploads": 0}
            yield data
            f.seek(0)
            f.truncate()
            f.write(json.dumps(data))
            f.flush()
            os.fsync(f.fileno())

    def spend(self, method: str, now: datetime) -> None:
        """Reserve the cost of one call, or raise RateLimited until the next Pacific midnight."""
        cost = self.options.cost(method)
        with self._locked(now) as data:
            if method == UPLOAD and data["uploads"] + 1 > self.options.daily_uploads:
                raise self.limited(f"the {self.options.daily_uploads} uploads a day", now)
            if data["units"] + cost > self.options.daily_units:
                raise self.limited(
                    f"the daily budget ({data['units']} of {self.options.daily_units} units used, "
                    f"{method} needs {cost})", now)
            data["units"] += cost
            if method == UPLOAD:
                data["uploads"] += 1

    def exhausted(self, now: datetime, upload: bool = False) -> None:
        """YouTube said quotaExceeded: spend the rest of today's budget so no call tries again."""
        with self._locked(now) as data:
            if upload:
                data["uploads"] = max(data["uploads"], self.options.daily_uploads)
            else:
                data["units"] = max(data["units"], self.options.daily_units)

    def used(self, now: datetime) -> dict[str, int]:
        with self._locked(now) as data:
            return {"units": int(data["units"]), "uploads": int(data["uploads"])}

    def limited(self, what: str, now: datetime) -> RateLimited:
        at = next_reset(now)
        return RateLimited(
            f"YouTube quota pool '{self.pool}' has reached {what}; publisher continues after the "
            f"daily reset at {at.isoformat()} (midnight Pacific time)", retry_at=at)
