"""The channel contract: what every adapter in ``channels/`` implements, and the registry.

An adapter is one small class per channel kind (like an apprise plugin). It sees only this
module, ``publisher.models`` and ``publisher.errors``. The core owns retries, state records and
scheduling; an adapter makes one attempt, checkpoints its progress in the ``Journal`` and raises
a ``ChannelError`` subclass when something goes wrong.

Idempotence rule: ``publish`` called again for the same release resumes from the journal and
does nothing that already succeeded. Record the intent (``journal.put``) *before* a side effect
whose result you could lose (an upload session URI, a staging name), and the result right after.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import logging
import math
import os
import pkgutil
import shutil
import stat
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, ClassVar, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from publisher.errors import AuthError, InputError
from publisher.models import (
    ChannelPlan,
    Outcome,
    Problem,
    Publication,
    Release,
    RemoteStatus,
    Rendition,
    RenditionRequest,
)

log = logging.getLogger("publisher.channels")


def _seconds(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{value:g} is not a time to wait; give a number of seconds above 0, e.g. 30")
    return value


#: a network timeout in seconds: finite and above zero (0 would fail every call, NaN never time out)
Timeout = Annotated[float, AfterValidator(_seconds)]


class ChannelOptions(BaseModel):
    """Base of every adapter's typed options schema (the channel's block in the site config)."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    #: per-profile parameter overrides for this channel, e.g. {"web-mp4": {"crf": 20}}
    encoding: dict[str, dict[str, Any]] = {}


class ChannelOverrides(BaseModel):
    """Base of a kind's override schema: what a release manifest may change for one channel.

    The manifest's author is less trusted than the site config's owner, so an override schema
    holds presentation only (privacy, titles, a window), never a target, address, credential or
    anything else that decides where data goes. This base accepts nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    def daily_window(self) -> str | None:
        """A daily window ("HH:MM-HH:MM") the release is shown in, re-listed each day."""
        return None


def control_character(text: str, *, multiline: bool = False) -> str | None:
    """The first invisible control character in ``text`` (line breaks and tabs allowed when
    ``multiline``; the joiners CJK and emoji text need are always allowed), or None."""
    allowed = {"\n", "\t", "\u200d", "\u200c"} if multiline else {"\u200d", "\u200c"}
    return next((c for c in text if unicodedata.category(c) in ("Cc", "Cf") and c not in allowed), None)


def _plain_line(text: str) -> str:
    bad = control_character(text)
    if bad is not None:
        raise ValueError(f"contains control character U+{ord(bad):04X}; write plain text on one line")
    return text


#: one line of plain text (a title, an author), for override schemas
PlainLine = Annotated[str, AfterValidator(_plain_line)]
OverridesT = TypeVar("OverridesT", bound=ChannelOverrides)
T = TypeVar("T")


def override_problems(
    name: str, kind: str, schema: type[ChannelOverrides], block: Any, file: str,
    line: Callable[[tuple[str | int, ...]], int | None] = lambda loc: None,
) -> list[Problem]:
    """Problems with the manifest's ``overrides.<name>`` block for a channel of ``kind``."""
    try:
        schema.model_validate(block)
    except ValidationError as exc:
        out = []
        accepted = ", ".join(schema.model_fields)
        for err in exc.errors():
            loc: tuple[str | int, ...] = ("overrides", name, *err["loc"])
            where = ".".join(str(p) for p in loc)
            if err["type"] == "extra_forbidden":
                message = f"a release manifest cannot change '{err['loc'][-1]}' for {name} ({kind})"
                fix = (f"{kind} channels accept only these overrides: {accepted}" if accepted else
                       f"{kind} channels accept no overrides; remove overrides.{name}")
                fix += ". Targets, addresses and credentials are set in the site config"
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
                fix = "correct the value, or remove it to keep the site config's setting"
            out.append(Problem(file, where, message, fix, line(loc)))
        return out
    return []


class Journal:
    """Per-publication checkpoints. ``put`` is durable when it returns (the core saves it).
    Keys starting with ``_`` belong to the core (``_content``: the version the channel carries)."""

    def __init__(
        self, data: dict[str, Any] | None = None,
        save: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self._save = save

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self._data[key] = value
        if self._save is not None:
            self._save(dict(self._data))

    def delete(self, key: str) -> None:
        if key in self._data:
            del self._data[key]
            if self._save is not None:
                self._save(dict(self._data))

    def data(self) -> dict[str, Any]:
        return dict(self._data)


class Clock(Protocol):
    """Time as the core sees it: adapters never call ``time`` or ``datetime.now`` themselves, so a
    test (or a replay) can run them on another clock."""

    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class AccountState(Protocol):
    """Small records an adapter shares with every publisher process that uses the same account
    (a quota budget, say), kept by the core in the state store.

    ``update(key, change)`` reads the record (``{}`` when new), calls ``change`` with it, stores
    what ``change`` left in it and returns ``change``'s result, all in one transaction no other
    process can interleave with. Keys are the adapter's own (prefix them with the kind)."""

    def update(self, key: str, change: Callable[[dict[str, Any]], T]) -> T: ...


class NoAccountState:
    """For adapters built where nothing is sent (``check``, ``plan``): any use is a bug."""

    def update(self, key: str, change: Callable[[dict[str, Any]], T]) -> T:
        raise RuntimeError(f"account state '{key}' asked for where nothing may be sent")


class Embargo(StrEnum):
    """Who lifts an embargo: the core at publish_at (a quick go-live step), or the remote service
    itself (YouTube's publishAt), so that a staged copy already counts as done."""

    CORE = "core"
    SERVICE = "service"


@dataclass(frozen=True)
class Occurrence:
    """One run of a repeat rule: when it was due and, for a rule with a daily window, that day's
    window (both UTC)."""

    at: datetime
    window: tuple[datetime, datetime] | None = None


@dataclass(frozen=True)
class StepOptions:
    """What the verb asks of this adapter call besides its plain meaning.

    ``stage_only``: an embargo is pending: do the slow work, make nothing public, return
    ``scheduled``. ``keep_private`` (withdraw): make it private where the channel can, not delete
    it. ``repair`` (publish): check what is really there, not only the journal, and send again what
    is missing or differs; ``reupload``: also a copy removed from the channel altogether.
    ``repeat`` (publish): re-publish for this occurrence of a repeat rule, once per occurrence.
    ``private`` (publish, channels with ``private_first``): the master's full check has not
    ended: send only where nobody else can see it and return ``scheduled``; the core calls
    publish again without it once the check passed, or withdraw if it failed.
    """

    stage_only: bool = False
    private: bool = False
    keep_private: bool = False
    repair: bool = False
    reupload: bool = False
    repeat: Occurrence | None = None


@dataclass
class Job:
    """Everything one adapter call may use.

    ``renditions`` maps each requested profile name to its finished rendition (empty for
    withdraw and status). ``publication`` is the stored record (remote id, url, journal) when
    one exists.
    """

    release: Release
    journal: Journal = field(default_factory=Journal)
    renditions: dict[str, Rendition] = field(default_factory=dict)
    options: StepOptions = field(default_factory=StepOptions)
    publication: Publication | None = None
    #: other channels' public URLs by channel name, websites first, then YouTube, then the rest
    links: dict[str, str] = field(default_factory=dict)
    clock: Clock = field(default_factory=SystemClock)
    #: set by the core when the other channels are still being published in this run
    await_links: Callable[[], dict[str, str]] | None = None

    @property
    def stage_only(self) -> bool:
        return self.options.stage_only

    def other_links(self) -> dict[str, str]:
        """``links``, once every other channel of this run is done (a needs_links channel does
        its own slow work first, then asks for them)."""
        if self.await_links is not None:
            self.links = self.await_links()
            self.await_links = None
        return self.links

    def now(self) -> datetime:
        return self.clock.now()


@dataclass(frozen=True)
class Shown:
    """How a channel will show the release in one language: its texts (label, plain text) and
    files of its preview folder: a ``page`` that looks as the public will see it, an ``image``."""

    language: str
    fields: tuple[tuple[str, str], ...] = ()
    page: str = ""
    image: str = ""


@dataclass(frozen=True)
class Preview:
    """What a channel would publish, rendered into its preview folder (``Channel.preview``);
    ``url`` is its public address when known before anything is sent (other channels link to it)."""

    shown: list[Shown]
    url: str = ""


class PreviewFolder:
    """A channel's private preview folder: folders 0700, files 0600; nothing in it is public.
    ``still`` (given by the core) writes a JPEG frame of a video, at a moment a caption of
    ``language`` is shown when there is one."""

    def __init__(self, path: Path, still: Callable[[Path, Path, str | None], None]) -> None:
        self.path = path
        self._still = still

    def _target(self, name: str) -> Path:
        parts = name.split("/")
        if not name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            raise ValueError(f"{name!r} is not a plain relative file name")
        out = self.path.joinpath(*parts)
        for folder in reversed(out.relative_to(self.path).parents):
            (self.path / folder).mkdir(mode=0o700, exist_ok=True)
        return out

    def write(self, name: str, data: bytes | str) -> str:
        out = self._target(name)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        return name

    def copy(self, name: str, source: Path) -> str:
        out = self._target(name)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f, source.open("rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)
        return name

    def still(self, name: str, video: Path, language: str | None = None) -> str:
        out = self._target(name)
        self._still(video, out, language)
        out.chmod(0o600)
        return name


class Channel(ABC):
    """One channel kind. Subclasses set ``kind`` and ``Options`` and register with ``@register``."""

    kind: ClassVar[str]
    Options: ClassVar[type[ChannelOptions]]
    #: what a release manifest may change for a channel of this kind (``overrides:``)
    Overrides: ClassVar[type[ChannelOverrides]] = ChannelOverrides
    embargo: ClassVar[Embargo] = Embargo.CORE
    #: True when publish needs other channels' live URLs (``job.other_links()``, which waits
    #: for them); such channels start with the others and wait only where they need the links.
    needs_links: ClassVar[bool] = False
    #: True when publish can send privately (``StepOptions.private``) while the master is checked
    private_first: ClassVar[bool] = False

    def __init__(self, name: str, options: ChannelOptions, *, config_dir: Path, state_dir: Path,
                 accounts: AccountState | None = None, zone: tzinfo = UTC):
        self.name = name
        self.options = options
        self.zone = zone  # the site config's time zone: dates that people read are in it
        self.config_dir = config_dir  # relative paths in options are relative to this
        self.state_dir = state_dir  # this channel's private folder (created by the core before a send)
        self.accounts: AccountState = accounts or NoAccountState()
        self.log = logging.getLogger(f"publisher.channels.{name}")

    # --- offline ---------------------------------------------------------------------------
    def credential_problems(self) -> list[Problem]:
        """What keeps this channel's secrets from being read: each environment variable not set,
        each file missing or readable by others. No network."""
        return []

    @abstractmethod
    def renditions(self, release: Release) -> list[RenditionRequest]:
        """Which renditions (by profile) this channel needs for ``release``."""

    def validate(self, release: Release) -> list[Problem]:
        """Offline checks of the release against this channel's rules. No network."""
        return []

    def warnings(self) -> list[Problem]:
        """What would probably go wrong though nothing forbids it (``check`` shows them). No network."""
        return []

    def plan(self, release: Release) -> ChannelPlan:
        """What would be sent and the API quota it would cost. No network."""
        return ChannelPlan(sends=[r.profile for r in self.renditions(release)])

    # --- online ----------------------------------------------------------------------------
    @abstractmethod
    def publish(self, job: Job) -> Outcome:
        """Publish (or stage, when ``job.stage_only``). Idempotent and resumable."""

    @abstractmethod
    def update(self, job: Job) -> Outcome:
        """Push changed metadata, captions and thumbnail to what is live."""

    @abstractmethod
    def withdraw(self, job: Job) -> Outcome:
        """Take it down (state ``withdrawn``). Withdrawing what is gone is not an error."""

    @abstractmethod
    def status(self, job: Job) -> RemoteStatus:
        """Ask the channel what is there now."""

    def preview(self, job: Job, folder: PreviewFolder) -> Preview | None:
        """Render what ``publish`` would send, as the public will see it, into ``folder``, with
        the renditions of ``job``; send nothing, touch no target. None: this kind has no preview."""
        return None

    def housekeeping(self, now: datetime) -> list[str]:
        """Periodic upkeep that ``publisher run`` does for this channel (e.g. drop expired
        signage items). Returns a line for each change made."""
        return []

    # --- helpers for adapters --------------------------------------------------------------
    def resolve_path(self, value: str | Path) -> Path:
        p = Path(os.path.expanduser(str(value)))
        return p if p.is_absolute() else (self.config_dir / p)

    def secret_file(self, value: str | Path, what: str) -> str:
        """Read a secret file, refusing it unless only its owner can read it (mode 0600/0400)."""
        return read_secret_file(self.resolve_path(value), what, self.name)

    def secret_env(self, variable: str, what: str) -> str:
        return env_secret(variable, what, self.name)

    def overrides_as(self, schema: type[OverridesT], release: Release) -> OverridesT:
        """The manifest's validated overrides for this channel (the options stay as configured)."""
        block = release.overrides.get(self.name) or {}
        try:
            return schema.model_validate(block)
        except ValidationError:
            raise InputError(override_problems(self.name, self.kind, schema, block,
                                               str(release.manifest_path))) from None


# --- secrets --------------------------------------------------------------------------------
_SECRETS: set[str] = set()


def remember_secret(value: str) -> str:
    """Register a secret so ``redact`` and the log filter hide it everywhere."""
    if value and len(value) >= 4:
        _SECRETS.add(value)
    return value


def redact(text: str) -> str:
    for s in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(s, "***")
    return text


def read_secret_file(path: Path, what: str, channel: str = "") -> str:
    if not path.is_file():
        raise AuthError(f"{what} file {path} does not exist; create it (mode 0600)", channel=channel)
    shared = _readable_by_others(path, what)
    if shared:
        raise InputError(shared)
    text = path.read_text(encoding="utf-8")
    remember_secret(text.strip())
    return text


def env_secret(variable: str, what: str, channel: str = "") -> str:
    value = os.environ.get(variable, "")
    if not value:
        raise AuthError(
            f"{what} is read from the environment variable {variable}, which is not set; "
            f"export {variable}=...", channel=channel,
        )
    return remember_secret(value)


def secret_file_problem(path: Path, channel: str, field: str, create: str) -> Problem | None:
    """Why ``read_secret_file`` would refuse ``path`` (``create`` says how to make it), or None."""
    where = f"channels.{channel}.{field}"
    if not path.is_file():
        return Problem(str(path), where, "the file does not exist", create)
    return _readable_by_others(path, where)


def _readable_by_others(path: Path, field: str) -> Problem | None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Problem(str(path), field, f"secret file is readable by others (mode {mode:04o})",
                       f"chmod 600 {path}")
    return None


def env_secret_problem(variable: str, channel: str, field: str, what: str) -> Problem | None:
    if os.environ.get(variable):
        return None
    return Problem("", f"channels.{channel}.{field}", f"the environment variable {variable} is not set",
                   f"export {variable}=... ({what}) before running publisher")


class RedactingFilter(logging.Filter):
    """Installed on every handler by the CLI: no registered secret reaches a log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            record.msg = redact(record.getMessage())
            record.args = ()
        return True


# --- files ----------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# --- registry -------------------------------------------------------------------------------
# A kind is a sub-package of ``channels`` whose ``options`` module names it (``KIND``) and holds
# its config schema (``Options``) and override schema (``Overrides``), importing nothing heavy;
# its ``adapter`` module registers the adapter class with ``@register`` and is imported only when
# an adapter is built. So loading a config or a manifest imports no adapter, no network library.
_REGISTERED: dict[str, type[Channel]] = {}


def register(cls: type[Channel]) -> type[Channel]:
    """Class decorator: make an adapter known by its ``kind``. A kind outside ``channels`` (a
    plugin, a test's) is known from the moment its class is registered."""
    _REGISTERED[cls.kind] = cls
    return cls


@functools.cache
def _packaged() -> dict[str, ModuleType]:
    """kind -> its ``channels.<package>.options`` module, for every kind shipped in ``channels``."""
    channels = importlib.import_module("channels")  # by name: the contract sits below the adapters
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(channels.__path__, "channels."), key=lambda i: i.name):
        if not info.ispkg or importlib.util.find_spec(f"{info.name}.options") is None:
            continue
        module = importlib.import_module(f"{info.name}.options")
        kind = getattr(module, "KIND", None)
        if isinstance(kind, str):
            found[kind] = module
    return found


def option_classes() -> dict[str, type[ChannelOptions]]:
    """Every known kind -> its config schema, without importing any adapter."""
    found: dict[str, type[ChannelOptions]] = {kind: m.Options for kind, m in _packaged().items()}
    return found | {kind: cls.Options for kind, cls in _REGISTERED.items()}


def override_class(kind: str) -> type[ChannelOverrides]:
    """The override schema of ``kind`` (what a manifest's ``overrides:`` may change)."""
    if kind in _REGISTERED:
        return _REGISTERED[kind].Overrides
    if kind not in _packaged():
        raise KeyError(kind)
    schema: type[ChannelOverrides] = getattr(_packaged()[kind], "Overrides", ChannelOverrides)
    return schema


def channel_class(kind: str) -> type[Channel]:
    """The adapter class of ``kind``; imports its ``adapter`` module the first time."""
    if kind not in _REGISTERED:
        module = _packaged().get(kind)
        if module is None:
            raise KeyError(kind)
        importlib.import_module(module.__name__.removesuffix(".options") + ".adapter")
        if kind not in _REGISTERED:
            raise LookupError(f"{module.__name__.removesuffix('.options')}.adapter registers no "
                              f"adapter of kind '{kind}' (decorate its class with @register)")
    return _REGISTERED[kind]
