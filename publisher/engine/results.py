"""What a verb hands back, and the news it gives while it runs: data for the CLI and the console.

The engine never prints. A ``Reporter`` receives transcode progress and per-channel news; a verb
returns a ``RunResult`` whose ``exit_code`` is the command's exit status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from publisher.errors import ExitCode
from publisher.models import Publication, State


class Call(StrEnum):
    """The adapter method a step calls (``publisher.contract.Channel``)."""

    PUBLISH = "publish"
    UPDATE = "update"
    WITHDRAW = "withdraw"


class Verb(StrEnum):
    """What a person (or the service) asked for; recorded as the event's action."""

    RELEASE = "release"
    SUBMIT = "submit"  # recorded, awaiting approval (four eyes)
    LAUNCH = "launch"  # released on its approval
    APPROVE = "approve"
    RETRY = "retry"
    UPDATE = "update"
    WITHDRAW = "withdraw"
    CANCEL = "cancel"
    REPAIR = "repair"
    REPEAT = "repeat"
    GO_LIVE = "embargo"  # the service lifting an embargo at publish_at
    QUEUED = "queued"  # sent to the workers
    POLL = "poll"  # the service asking a channel about a publication still processing


class Reporter(Protocol):
    """Receives news while a verb runs (the CLI draws progress bars from it)."""

    def progress(self, fraction: float, text: str) -> None:
        """Transcode progress, 0..1."""

    def working(self, name: str, text: str) -> None:
        """A channel's attempt has started."""

    def channel(self, name: str, state: State, message: str = "") -> None:
        """A channel reached a state (or stays in it: ``message`` says why)."""


class Quiet:
    """The reporter when nobody watches (the service, workers, tests)."""

    def progress(self, fraction: float, text: str) -> None:
        pass

    def working(self, name: str, text: str) -> None:
        pass

    def channel(self, name: str, state: State, message: str = "") -> None:
        pass


@dataclass
class ChannelResult:
    channel: str
    kind: str
    state: State
    remote_id: str = ""
    url: str = ""
    checksum: str = ""
    error: str = ""
    note: str = ""

    @classmethod
    def of(cls, pub: Publication) -> ChannelResult:
        return cls(pub.channel, pub.kind, pub.state, pub.remote_id, pub.url, pub.checksum, pub.error,
                   pub.note)


@dataclass
class RunResult:
    release: str
    results: list[ChannelResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: what a re-run found changed since the last run (e.g. "title.en"), applied where it is out
    changes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        states = {r.state for r in self.results}
        if State.FAILED in states:
            return ExitCode.FAILED
        if State.DEFERRED in states:
            return ExitCode.TEMPORARY
        return ExitCode.OK

    def order(self, channels: list[str]) -> None:
        """Results in the order of ``channels`` (the others last)."""
        self.results.sort(key=lambda r: channels.index(r.channel) if r.channel in channels else len(channels))
