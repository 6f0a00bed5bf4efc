"""The site config (``publisher.yaml``): where releases go and how publisher runs.

Each channel's block is validated by its kind's own ``Options`` schema, found in the registry
(which imports only the kinds' options modules, no adapter).
Relative paths are relative to the config file. Secrets are never in this file: only names of
files (mode 0600) or environment variables.
"""

from __future__ import annotations

import importlib.util
import os
import re
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, model_validator

from publisher.contract import AccountState, Channel, ChannelOptions, channel_class, option_classes
from publisher.errors import InputError
from publisher.inputs.yamlfile import load_yaml, schema_problems
from publisher.models import Problem

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class RetrySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(5, ge=1, le=50)
    base_seconds: float = Field(1.0, ge=0)
    max_seconds: float = Field(60.0, ge=0)
    defer_minutes: float = Field(10.0, ge=0)  # how long to wait after the budget is spent


class ConsoleAuth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: trust this request header as the user name, set by a reverse proxy doing single sign-on
    header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,64}$")


class ConsoleSettings(BaseModel):
    """`publisher serve`: the browser console."""

    model_config = ConfigDict(extra="forbid")

    releases_dir: str | None = None  # manifests that can be started from the console
    auth: ConsoleAuth = ConsoleAuth()
    #: addresses (or networks) of reverse proxies whose X-Forwarded-* and auth header are believed
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    session_hours: float = Field(8.0, gt=0, le=720)


class Alert(StrEnum):
    """What a notification is about (a ``notify:`` entry's ``events``)."""

    FAILED = "failed"  # a channel failed: a person must act
    DEFERRED = "deferred"  # held back by an outage or rate limit; retried at a known time
    QUOTA = "quota"  # a daily API quota is used up
    OVERDUE = "overdue"  # an embargo's time has passed and the release is not live
    REPEAT = "repeat"  # a repeat rule could not run
    LIVE = "live"  # the release is live on every channel (only when asked for)


#: what a notification URL receives when it names no events: everything that needs a person
NEEDS_A_PERSON = (Alert.FAILED, Alert.DEFERRED, Alert.QUOTA, Alert.OVERDUE, Alert.REPEAT)


class NotifyTarget(BaseModel):
    """One ``notify:`` entry: an apprise URL (or the environment variable holding one, for URLs
    that carry a token) and the events it receives. A bare string is a URL with the default events."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9+.-]*://")
    url_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    events: list[Alert] = Field(default_factory=lambda: list(NEEDS_A_PERSON), min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _bare_url(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_address(self) -> NotifyTarget:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give either url (e.g. json://host/path) or url_env (a variable holding it)")
        return self

    def address(self) -> str:
        """The URL now: written in the config, or read from ``url_env`` ("" when that is not set)."""
        return self.url or os.environ.get(self.url_env or "", "")


class SiteSettings(BaseModel):
    """Everything in publisher.yaml except the channel blocks, which each kind validates."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Hong_Kong"
    store: str | None = None  # SQLAlchemy URL; default sqlite:///$PUBLISHER_HOME/state.db
    cache_dir: str | None = None  # rendition cache; default $PUBLISHER_HOME/renditions
    broker: str | None = None  # redis://... for `publisher worker`; default: in-process
    broker_heartbeat_ms: int = Field(60000, ge=500)  # a silent worker's messages go to others after this
    require_approval: bool = False
    concurrency: int = Field(3, ge=1, le=32)
    retry: RetrySettings = RetrySettings()
    site_name: str | None = Field(None, min_length=1, max_length=100)  # default: the config folder's name
    console: ConsoleSettings = ConsoleSettings()
    notify: list[NotifyTarget] = Field(default_factory=list)  # apprise URLs told what needs a person
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)


class SiteConfig:
    def __init__(self, path: Path, settings: SiteSettings, options: dict[str, ChannelOptions]):
        self.path = path
        self.settings = settings
        self.options = options  # channel name -> validated options

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def resolve(self, value: str) -> Path:
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.dir / p

    def channel(self, name: str, state_dir: Path, options: ChannelOptions | None = None,
                accounts: AccountState | None = None) -> Channel:
        """The channel's adapter; its private folder ``<state>/channels/<name>`` is made by the
        engine before anything is sent (checking makes nothing)."""
        opts = options or self.options[name]
        cls = channel_class(opts.kind)
        return cls(name, opts, config_dir=self.dir, state_dir=state_dir / "channels" / name,
                   accounts=accounts, zone=self.zone)

    def cache_dir(self, state_dir: Path) -> Path:
        """The rendition cache: ``cache_dir`` (relative to this file), else in the state folder."""
        value = self.settings.cache_dir
        return self.resolve(value) if value else state_dir / "renditions"


def quiet_apprise() -> None:
    """apprise's own log lines may show a URL with its token: publisher's say what happened instead."""
    import logging

    logging.getLogger("apprise").disabled = True


def notify_problems(config: SiteConfig) -> list[Problem]:
    """``notify:`` entries whose URL apprise does not understand, or whose variable is not set:
    their messages would be dropped at delivery. Nothing is sent, and no URL is shown."""
    if not config.settings.notify:
        return []
    import apprise

    quiet_apprise()
    found = []
    for i, target in enumerate(config.settings.notify):
        url = target.address()
        field = f"notify[{i}].{'url' if target.url else 'url_env'}"
        if not url:
            found.append(Problem(str(config.path), field, f"the environment variable {target.url_env} "
                                 "is not set", f"export {target.url_env}=... (the notification URL)"))
            continue
        scheme = url.split("://", 1)[0].lower()
        if apprise.Apprise.instantiate(url) is None:
            hint = ("a JSON webhook is json:// (jsons:// over TLS)" if scheme in ("http", "https") else
                    "write one apprise understands: json://, mailtos://, workflows://, slack://, ntfy://")
            found.append(Problem(str(config.path), field, f"apprise does not understand this {scheme}:// "
                                 "URL, so its notifications would be dropped", hint))
    return found


def scale_out_problems(path: Path, line: int | None) -> list[Problem]:
    """``broker:`` needs the scale-out extra; say so instead of failing on an import later."""
    missing = [name for name in ("dramatiq", "redis") if importlib.util.find_spec(name) is None]
    if not missing:
        return []
    return [Problem(str(path), "broker", f"scale-out needs {' and '.join(missing)}, which "
                    f"{'is' if len(missing) == 1 else 'are'} not installed",
                    "pip install 'publisher[scale]' (or remove broker: to run in one process)", line)]


def load_config(path: Path) -> SiteConfig:
    path = Path(os.path.abspath(path))
    doc, problems = load_yaml(path, "site config")
    if doc is None:
        if not path.exists():
            problems = [Problem(str(path), "", "site config not found",
                                "run `publisher init`, or pass --config / set PUBLISHER_CONFIG")]
        raise InputError(problems)
    if not isinstance(doc.data, dict):
        shape = "a list" if isinstance(doc.data, list) else "a single value"
        raise InputError(problems + [Problem(
            str(path), "(top level)", f"the site config is {shape}, not a mapping of settings",
            "write `key: value` lines, e.g. `channels:` with one block per channel "
            "(`publisher init` writes an example)", 1)])
    try:
        settings = SiteSettings.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError(problems + schema_problems(doc, exc)) from None
    if settings.broker is not None:
        problems += scale_out_problems(path, doc.line(("broker",)))
    if settings.store is not None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(settings.store)
        except (ArgumentError, ValueError):
            problems.append(Problem(str(path), "store", "not a database URL",
                                    "write e.g. postgresql+psycopg://user@host/publisher, or remove it",
                                    doc.line(("store",))))
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(Problem(str(path), "timezone", f"unknown time zone '{settings.timezone}'",
                                "use an IANA name such as Asia/Hong_Kong", doc.line(("timezone",))))
    options: dict[str, ChannelOptions] = {}
    known = option_classes()
    for name, block in settings.channels.items():
        loc: tuple[str, ...] = ("channels", name)
        line = doc.line(loc)
        if not re.match(NAME_PATTERN, name):
            problems.append(Problem(str(path), f"channels.{name}", "channel names use a-z, 0-9, - and _",
                                    "rename the channel", line))
            continue
        if not isinstance(block, dict) or not block.get("kind"):
            problems.append(Problem(str(path), f"channels.{name}.kind", "every channel needs a kind",
                                    f"add kind: one of {', '.join(sorted(known))}", line))
            continue
        kind = str(block["kind"])
        if kind not in known:
            problems.append(Problem(str(path), f"channels.{name}.kind", f"unknown channel kind '{kind}'",
                                    f"use one of {', '.join(sorted(known))}", doc.line((*loc, "kind"))))
            continue
        try:
            options[name] = known[kind].model_validate(block)
        except ValidationError as exc:
            for p in schema_problems(doc, exc):
                field = f"channels.{name}.{p.field}" if p.field else f"channels.{name}"
                problems.append(Problem(p.file, field, p.message, p.fix,
                                        doc.line((*loc, *p.field.split(".")))))
    if problems:
        raise InputError(problems)
    return SiteConfig(path, settings, options)
