"""The ``youtube`` kind's block in the site config (with its ``quota:`` settings), and what a
release manifest may override: how the video is presented."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from publisher.contract import ChannelOptions, ChannelOverrides, Timeout

KIND = "youtube"
UPLOAD = "videos.insert"

DEFAULT_COSTS: dict[str, int] = {
    "videos.insert": 0,  # shared units; the upload itself counts in the upload bucket
    "videos.list": 1, "videos.update": 50, "videos.delete": 50,
    "captions.insert": 400, "captions.list": 50, "captions.delete": 50,
    "thumbnails.set": 50, "playlistItems.insert": 50, "playlistItems.list": 1, "channels.list": 1,
}


def category(value: str) -> str:
    if not value.isascii() or not value.isdigit() or len(value) > 4:
        raise ValueError("a YouTube category id is a number in quotes, e.g. \"25\"")
    return value


def playlist_id(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{2,64}", value):
        raise ValueError("a playlist id is letters, digits, '-' and '_' (e.g. PLxxxxxxxx), "
                         "from the playlist's address")
    return value


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


class YouTubeOptions(ChannelOptions):
    credentials: str = Field(description="authorized-user JSON file (mode 0600)")
    client_secrets: str | None = None  # OAuth client JSON used by `publisher auth` for a first sign-in
    api_root: str = "https://www.googleapis.com/"
    ca_bundle: str | None = None
    privacy: Literal["public", "unlisted", "private"] = "public"
    category_id: str = "25"
    playlist: str | None = None
    made_for_kids: bool = False  # sent as status.selfDeclaredMadeForKids
    chunk_mib: float = 8
    quota: QuotaOptions = Field(default_factory=QuotaOptions)
    quota_pool: str | None = None  # channels of one Google Cloud project share one budget
    timeout: Timeout = 60.0

    @field_validator("api_root")
    @classmethod
    def _root(cls, v: str) -> str:
        if not re.fullmatch(r"https://[^/\s]+/?", v):
            raise ValueError("give scheme, host and port only, e.g. https://www.googleapis.com/")
        return v.rstrip("/") + "/"

    @field_validator("category_id")
    @classmethod
    def _category(cls, v: str) -> str:
        return category(v)

    @field_validator("playlist")
    @classmethod
    def _playlist(cls, v: str | None) -> str | None:
        return playlist_id(v)

    @field_validator("chunk_mib")
    @classmethod
    def _chunk(cls, v: float) -> float:
        if v <= 0 or (v * 4) != int(v * 4):
            raise ValueError("must be a positive multiple of 0.25 (YouTube wants 256 KiB units)")
        return v

    @field_validator("quota_pool")
    @classmethod
    def _pool(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", v):
            raise ValueError("use letters, digits, '.', '_' or '-'")
        return v


class YouTubeOverrides(ChannelOverrides):
    """What a release manifest may change for a YouTube channel: presentation only."""

    privacy: Literal["public", "unlisted", "private"] | None = None
    playlist: str | None = None
    category_id: str | None = None
    made_for_kids: bool | None = None

    @field_validator("category_id")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        return category(v) if v is not None else None

    @field_validator("playlist")
    @classmethod
    def _playlist(cls, v: str | None) -> str | None:
        return playlist_id(v)


Options = YouTubeOptions
Overrides = YouTubeOverrides
