"""Data that crosses module lines: the release, media facts, renditions, publications.

These are plain pydantic models with no behaviour beyond small derived properties, so every
layer (channels, transcoder, store, CLI) can share them without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class State(StrEnum):
    """Where one release stands on one channel."""

    PENDING = "pending"  # recorded, nothing sent yet (or awaiting approval)
    SCHEDULED = "scheduled"  # staged privately, goes live at publish_at
    PROCESSING = "processing"  # sent; the channel is still working on it
    LIVE = "live"
    DEFERRED = "deferred"  # held back by a quota, rate limit or outage; taken up at retry_at
    FAILED = "failed"  # a person must act (the error says how)
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"  # an embargo called off before it went live


#: states in which a channel carries (or is about to carry) the release
SHOWN = frozenset({State.LIVE, State.SCHEDULED, State.PROCESSING})
#: states that mean the release is gone from the channel on purpose
GONE = frozenset({State.WITHDRAWN, State.CANCELLED})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where, what, and how to fix it."""

    file: str
    field: str
    message: str
    fix: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        parts = [p for p in (where, self.field) if p]
        head = ": ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        return f"{text} (fix: {self.fix})" if self.fix else text


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FileInfo(Frozen):
    """A file inside a rendition or upload: name relative to its folder, size, sha256."""

    name: str
    bytes: int
    sha256: str


class MasterInfo(Frozen):
    """What ffprobe and a full decode found in the master."""

    path: Path
    sha256: str
    bytes: int
    container: str
    video_codec: str
    width: int
    height: int
    fps: float
    duration: float
    pix_fmt: str = ""
    audio_codec: str | None = None
    audio_channels: int = 0
    audio_rate: int = 0

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


class RenditionRequest(Frozen):
    """A channel asks for a rendition by profile name, with optional parameter overrides."""

    profile: str
    params: dict[str, Any] = Field(default_factory=dict)

    def token(self) -> str:
        """Stable text form, usable as a dictionary key."""
        return self.profile + json.dumps(self.params, sort_keys=True, separators=(",", ":"))


class Rendition(Frozen):
    """A finished, checked rendition in the cache (or the master itself when it passes through)."""

    key: str
    profile: str
    folder: Path
    main: str = ""  # the main media file, relative to folder; "" for image/caption-only sets
    files: list[FileInfo] = Field(default_factory=list)
    width: int = 0
    height: int = 0
    duration: float = 0.0
    passthrough: bool = False  # True when `main` is the master itself, unchanged

    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def main_path(self) -> Path:
        return self.folder / self.main

    def file(self, name: str) -> FileInfo:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def main_sha256(self) -> str:
        return self.file(self.main).sha256 if self.main else ""


class SignageSpec(Frozen):
    start: datetime | None = None
    end: datetime | None = None
    sites: list[str] | None = None


class RepeatSpec(Frozen):
    """Recurring re-publishing: a cron expression or an interval, in a zone, until an end."""

    channels: list[str]
    cron: str | None = None
    every: str | None = None  # e.g. "30d", "12h", "1w"
    timezone: str = "UTC"
    until: datetime | None = None
    window: str | None = None  # e.g. "09:00-18:00" for signage


class Release(Frozen):
    """A validated release manifest with every path resolved to an absolute path."""

    id: str
    manifest_path: Path
    master: Path
    languages: list[str]
    title: dict[str, str]
    description: dict[str, str] = Field(default_factory=dict)
    captions: dict[str, Path] = Field(default_factory=dict)
    thumbnail: Path | None = None
    publish_at: datetime | None = None  # always UTC-aware once loaded
    tags: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    signage: SignageSpec | None = None
    repeat: list[RepeatSpec] = Field(default_factory=list)

    @property
    def default_language(self) -> str:
        return self.languages[0]

    @property
    def root(self) -> Path:
        return self.manifest_path.parent

    def text(self, field: Literal["title", "description"], language: str | None = None) -> str:
        """The text in ``language``, falling back to the default language."""
        values = self.title if field == "title" else self.description
        lang = language or self.default_language
        return values.get(lang) or values.get(self.default_language, "")


class Outcome(Frozen):
    """What an adapter reports after publish, update or withdraw."""

    state: State
    remote_id: str = ""
    url: str = ""
    checksum: str = ""  # sha256 of the main media file this channel received
    note: str = ""


class RemoteStatus(Frozen):
    """What the channel says now, for `status --verify`. ``drift`` lists disagreements found."""

    state: State
    remote_id: str = ""
    url: str = ""
    checksum: str = ""
    detail: str = ""
    drift: list[str] = Field(default_factory=list)


class ChannelPlan(Frozen):
    """What a channel would send and what it would cost, for `publisher plan`."""

    sends: list[str] = Field(default_factory=list)
    quota: dict[str, int] = Field(default_factory=dict)  # method -> units
    url: str = ""  # where it will be seen, when known before sending
    live: str = ""  # how it goes public, when that is not simply at publish_at


class Publication(BaseModel):
    """One release on one channel, as the store records it."""

    release: str
    channel: str
    kind: str
    state: State = State.PENDING
    remote_id: str = ""
    url: str = ""
    checksum: str = ""
    error: str = ""
    note: str = ""
    publish_at: datetime | None = None
    retry_at: datetime | None = None
    attempts: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    journal: dict[str, Any] = Field(default_factory=dict)


class Event(BaseModel):
    """An append-only log entry."""

    at: datetime
    release: str
    channel: str = ""
    action: str
    message: str = ""
    actor: str = ""  # the person who did it; "" for the service


@dataclass
class StatusRow:
    """One publication as a report shows it (``publisher status``)."""

    release: str
    channel: str
    kind: str
    state: State
    remote_id: str
    url: str
    checksum: str
    publish_at: datetime | None
    updated_at: datetime | None
    error: str
    note: str


@dataclass
class StatusQuery:
    release: str | None = None
    channel: str | None = None
    state: State | None = None
    since: datetime | None = None
    #: at most this many releases, the most recently changed first; 0 means all
    limit: int = 0


@dataclass
class Selection:
    rows: list[StatusRow]
    releases: list[str]  # in display order
    total_releases: int  # how many releases matched before the limit
