"""The release manifest: a strict schema, then checks of every referenced file and time.

``load_release(path)`` returns a ``publisher.models.Release`` or raises ``InputError`` listing
every problem (file, line, field, fix) at once. It reads only the manifest's own folder tree and
never the network; media checks (ffprobe, decode, captions against the duration) come later, in
``publisher.inputs.checks``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from publisher.contract import control_character, override_class, override_problems
from publisher.errors import InputError
from publisher.inputs.rules import cron_trigger, parse_every, parse_window
from publisher.inputs.yamlfile import Loc, YamlDocument, dotted, load_yaml, schema_problems
from publisher.models import Problem, Release, RepeatSpec, SignageSpec
from publisher.times import EARLIEST, MAX_AHEAD, local, span

ID_PATTERN = r"^[a-z0-9-]{3,64}$"
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Signage(_Strict):
    start: str | None = None
    end: str | None = None
    sites: list[str] | None = None


class _Repeat(_Strict):
    channels: list[str]
    cron: str | None = None
    every: str | None = None
    timezone: str | None = None
    until: str | None = None
    window: str | None = None


class _References(BaseModel):
    """The fields naming files and times: checked even when other fields of the manifest are wrong."""

    model_config = ConfigDict(extra="ignore")

    master: str | None = None
    captions: dict[str, str] = Field(default_factory=dict)
    thumbnail: str | None = None
    publish_at: str | None = None
    timezone: str | None = None
    signage: _Signage | None = None
    repeat: list[_Repeat] = Field(default_factory=list)


class ManifestSchema(_References):
    """The manifest as written. Times and paths are still text here."""

    model_config = ConfigDict(extra="forbid")

    id: str
    master: str
    languages: list[str] = Field(min_length=1)
    title: dict[str, str]
    description: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    channels: list[str] | None = None
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.match(ID_PATTERN, value):
            raise ValueError(f"the release id '{value}' is not allowed: use 3 to 64 characters, each a "
                             "lower-case letter a-z, a digit 0-9 or a hyphen -")
        return value

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not LANGUAGE_TAG.match(tag):
                raise ValueError(f"'{tag}' is not a language tag (e.g. en, zh-Hant, zh-Hans)")
        if len(set(value)) != len(value):
            raise ValueError("a language is listed twice")
        return value


@dataclass(frozen=True)
class PastCheck:
    """Refuses a ``publish_at`` that has passed, unless the release is already recorded (a re-run
    to resume or converge). Used by `check` and `release`; ``zone`` is the operator's."""

    zone: ZoneInfo
    recorded: Callable[[str], bool]
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def load_release(path: Path, past: PastCheck | None = None, *,
                 channels: Mapping[str, str] | None = None, zone: str | None = None) -> Release:
    """``channels`` (the site config's channel kinds by name) lets each ``overrides`` block be
    checked against its kind's override schema; ``zone`` is the config's time zone, used for a
    signage window when the manifest gives no ``timezone``."""
    path = Path(os.path.abspath(path))
    doc, problems = load_yaml(path, "release manifest")
    if doc is None:
        raise InputError(problems)
    if not isinstance(doc.data, dict):
        raise InputError(problems + [Problem(str(path), "", "the manifest must be a mapping of keys",
                                             "start from `publisher init`")])
    checker = _Checker(doc, past, channels, zone)
    try:
        raw = ManifestSchema.model_validate(doc.data)
    except ValidationError as exc:
        # report every problem at once: the files and times among the fields that passed, too
        bad = {err["loc"][0] for err in exc.errors() if err["loc"]}
        refs = {k: v for k, v in doc.data.items() if k in _References.model_fields and k not in bad}
        rid = doc.data.get("id") if "id" not in bad else None
        checker.references(_References.model_validate(refs), rid if isinstance(rid, str) else None)
        raise InputError(problems + schema_problems(doc, exc) + checker.problems) from None
    release = checker.resolve(raw)
    problems += checker.problems
    if problems or release is None:
        raise InputError(problems)
    return release


@dataclass
class _Found:
    """The files and times a manifest names, resolved (None where they were wrong)."""

    master: Path | None = None
    captions: dict[str, Path] = field(default_factory=dict)
    thumbnail: Path | None = None
    publish_at: datetime | None = None
    signage: SignageSpec | None = None
    repeat: list[RepeatSpec] = field(default_factory=list)
    zone: ZoneInfo | None = None


class _Checker:
    def __init__(self, doc: YamlDocument, past: PastCheck | None = None,
                 channels: Mapping[str, str] | None = None, config_zone: str | None = None) -> None:
        self.doc = doc
        self.root = doc.path.parent.resolve()
        self.problems: list[Problem] = []
        self.past = past
        self.channels = channels
        self.config_zone = config_zone
        self.now = past.now if past else datetime.now(UTC)

    def problem(self, loc: Loc, message: str, fix: str) -> None:
        self.problems.append(Problem(str(self.doc.path), dotted(loc), message, fix, self.doc.line(loc)))

    def resolve(self, m: ManifestSchema) -> Release | None:
        langs = m.languages
        for lang in langs:
            if not (m.title.get(lang) or "").strip():
                self.problem(("title",), f"no title for language '{lang}'", f"add title.{lang}")
        for field_name in ("title", "description", "captions"):
            for lang in getattr(m, field_name):
                if lang not in langs:
                    self.problem((field_name, lang), f"language '{lang}' is not in `languages`",
                                 f"add {lang} to languages or remove this entry")
        for lang, text in m.title.items():
            self.text_ok(("title", lang), text, multiline=False)
        for lang, text in m.description.items():
            self.text_ok(("description", lang), text, multiline=True)
        for i, tag in enumerate(m.tags):
            self.text_ok(("tags", i), tag, multiline=False)
        found = self.references(m, m.id)
        overrides, windows = self.overrides(m, found.zone, found.signage)
        if self.problems or found.master is None:
            return None
        return Release(
            id=m.id, manifest_path=self.doc.path, master=found.master, languages=langs,
            title=m.title, description=m.description, captions=found.captions,
            thumbnail=found.thumbnail, publish_at=found.publish_at, tags=m.tags,
            channels=m.channels or [], overrides=overrides, signage=found.signage,
            repeat=found.repeat + windows,
        )

    def references(self, m: _References, release_id: str | None) -> _Found:
        """Every file and time the manifest names, checked and resolved."""
        found = _Found()
        found.master = self.file(("master",), m.master) if m.master is not None else None
        for lang, p in m.captions.items():
            caption = self.file(("captions", lang), p)
            if caption is not None:
                found.captions[lang] = caption
        found.thumbnail = self.file(("thumbnail",), m.thumbnail) if m.thumbnail else None
        zone = found.zone = self.zone(("timezone",), m.timezone) if m.timezone else None
        if m.publish_at:
            found.publish_at = self.time(("publish_at",), m.publish_at, zone)
            self.not_past(found.publish_at, release_id)
        if m.signage is not None:
            found.signage = SignageSpec(
                start=self.time(("signage", "start"), m.signage.start, zone) if m.signage.start else None,
                end=self.time(("signage", "end"), m.signage.end, zone) if m.signage.end else None,
                sites=m.signage.sites,
            )
            if found.signage.start and found.signage.end and found.signage.end <= found.signage.start:
                self.problem(("signage", "end"), "end is not after start", "move the end later")
        repeat = [self.repeat(i, r, zone) for i, r in enumerate(m.repeat)]
        found.repeat = [r for r in repeat if r is not None]
        return found

    def not_past(self, publish_at: datetime | None, release_id: str | None) -> None:
        past = self.past
        if publish_at is None or past is None or publish_at >= past.now:
            return
        if release_id is not None and past.recorded(release_id):
            return  # a re-run of a recorded release: resuming or converging, not a new embargo
        self.problem(("publish_at",), f"{local(publish_at, past.zone)} has passed "
                     f"({span((past.now - publish_at).total_seconds())} ago)",
                     "correct the date (is the year right?), or run `publisher release --now` "
                     "to publish at once")

    def overrides(self, m: ManifestSchema, zone: ZoneInfo | None,
                  signage: SignageSpec | None) -> tuple[dict[str, dict[str, Any]], list[RepeatSpec]]:
        """Each block checked against its channel kind's override schema, and the daily repeat
        rule a signage ``window`` implies (at the window's start, in the manifest's zone)."""
        if self.channels is None:
            return m.overrides, []
        out: dict[str, dict[str, Any]] = {}
        windows: list[RepeatSpec] = []
        for name, block in m.overrides.items():
            loc: Loc = ("overrides", name)
            kind = self.channels.get(name)
            if kind is None:
                self.problem(loc, f"channel '{name}' is not in the site config",
                             f"use one of: {', '.join(sorted(self.channels))}")
                continue
            schema = override_class(kind)
            bad = override_problems(name, kind, schema, block, str(self.doc.path), self.doc.line)
            if bad:
                self.problems += bad
                continue
            model = schema.model_validate(block)
            out[name] = model.model_dump(mode="json", exclude_unset=True)
            window = model.daily_window()
            if window and (not m.channels or name in m.channels):
                hour, minute = window[:2], window[3:5]
                windows.append(RepeatSpec(
                    channels=[name], cron=f"{int(minute)} {int(hour)} * * *", window=window,
                    timezone=str(zone.key) if zone else (self.config_zone or "UTC"),
                    until=signage.end if signage else None))
        return out, windows

    def text_ok(self, loc: Loc, text: str, *, multiline: bool) -> None:
        bad = control_character(text, multiline=multiline)
        if bad is not None:
            self.problem(loc, f"contains control character U+{ord(bad):04X}",
                         "remove invisible control characters from the text")

    def file(self, loc: Loc, value: str) -> Path | None:
        if "\x00" in value or len(value) > 4096:
            self.problem(loc, "not a usable file name", "give a path relative to the manifest")
            return None
        candidate = Path(value)
        if candidate.is_absolute():
            self.problem(loc, f"'{value}' is an absolute path", "give a path relative to the manifest")
            return None
        full = self.root / candidate
        try:
            real = full.resolve(strict=True)
        except (OSError, RuntimeError):
            self.problem(loc, f"file '{value}' does not exist", f"put it at {full} or correct the path")
            return None
        if not real.is_relative_to(self.root):
            self.problem(loc, f"'{value}' leads outside the manifest's folder ({real})",
                         "copy the file into the release folder")
            return None
        if not real.is_file():
            self.problem(loc, f"'{value}' is not a regular file", "point at a file")
            return None
        if not os.access(real, os.R_OK):
            self.problem(loc, f"'{value}' is not readable", f"chmod u+r {real}")
            return None
        return real

    def zone(self, loc: Loc, name: str) -> ZoneInfo | None:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.problem(loc, f"unknown time zone '{name}'", "use an IANA name such as Asia/Hong_Kong")
            return None

    def time(self, loc: Loc, text: str, zone: ZoneInfo | None) -> datetime | None:
        latest = self.now + MAX_AHEAD
        outside = (f"'{text}' is outside the times publisher accepts: from {EARLIEST:%Y-%m-%d} to "
                   f"5 years ahead ({latest:%Y-%m-%d %H:%M} UTC)", "check the date, the year especially")
        try:
            value = _parse_time(text, zone, lambda msg, fix: self.problem(loc, msg, fix))
        except (OverflowError, ValueError):
            self.problem(loc, *outside)
            return None
        if value is not None and not EARLIEST <= value <= latest:
            self.problem(loc, *outside)
            return None
        return value

    def repeat(self, i: int, r: _Repeat, zone: ZoneInfo | None) -> RepeatSpec | None:
        """A rule checked by the same trigger code the service runs (``publisher.inputs.rules``)."""
        loc: Loc = ("repeat", i)
        if (r.cron is None) == (r.every is None):
            self.problem(loc, "give exactly one of `cron` or `every`", "e.g. cron: '0 9 1 * *' or every: 30d")
            return None
        if not r.channels:
            self.problem((*loc, "channels"), "the rule names no channel",
                         "list the channels to re-publish to")
        rzone = self.zone((*loc, "timezone"), r.timezone) if r.timezone else zone
        until = self.time((*loc, "until"), r.until, rzone) if r.until else None
        if r.cron is not None:
            try:
                cron_trigger(r.cron, rzone or ZoneInfo("UTC"))
            except ValueError as exc:
                self.problem((*loc, "cron"), f"cron '{r.cron}': {exc}",
                             "write five fields, minute hour day month weekday, e.g. '0 10 1 * *' "
                             "(10:00 on the 1st of every month)")
        if r.every is not None:
            try:
                parse_every(r.every)
            except ValueError as exc:
                self.problem((*loc, "every"), str(exc), "write e.g. 90m, 12h, 30d or 1w "
                             "(from 1 minute to 5 years)")
        if r.window is not None:
            try:
                parse_window(r.window)
            except ValueError as exc:
                self.problem((*loc, "window"), str(exc), "write e.g. 09:00-18:00 "
                             "(an end before the start runs past midnight)")
        return RepeatSpec(channels=r.channels, cron=r.cron, every=r.every,
                          timezone=(r.timezone or (str(zone.key) if zone else "UTC")),
                          until=until, window=r.window)


def _parse_time(text: str, zone: ZoneInfo | None, problem: Any) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text[:11] else text)
    except ValueError:
        problem(f"'{text}' is not a date and time", "write e.g. 2026-12-01T10:00:00+08:00")
        return None
    if "T" not in text and " " not in text:
        problem(f"'{text}' has no time of day", "write e.g. 2026-12-01T10:00:00+08:00")
        return None
    if value.tzinfo is None:
        if zone is None:
            problem(f"'{text}' has no time zone", "add an offset (+08:00) or a top-level `timezone:`")
            return None
        local = value.replace(tzinfo=zone)
        other = value.replace(tzinfo=zone, fold=1)
        round_trip = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip != value:
            problem(f"'{text}' does not exist in {zone.key} (clocks go forward)", "pick another time")
            return None
        if local.utcoffset() != other.utcoffset():
            problem(f"'{text}' occurs twice in {zone.key} (clocks go back)", "give an explicit offset")
            return None
        return local.astimezone(UTC)
    if zone is not None:
        expected = value.astimezone(zone).utcoffset() or timedelta(0)
        if value.utcoffset() != expected:
            problem(f"offset in '{text}' disagrees with timezone {zone.key} at that time",
                    "drop the offset or fix the timezone")
            return None
    return value.astimezone(UTC)
