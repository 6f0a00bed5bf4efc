"""The release manifest: a strict schema, then checks of every referenced file and time.

``load_release(path)`` returns a ``publisher.models.Release`` or raises ``InputError`` listing
every problem (file, line, field, fix) at once. It reads only the manifest's own folder tree and
never the network; media checks (ffprobe, decode, captions against the duration) come later, in
``publisher.checks``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from publisher.contract import Channel, control_character, override_problems
from publisher.errors import InputError
from publisher.models import Problem, Release, RepeatSpec, SignageSpec
from publisher.yamlfile import Loc, YamlDocument, load_yaml, schema_problems

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


class ManifestSchema(_Strict):
    """The manifest as written. Times and paths are still text here."""

    id: str = Field(pattern=ID_PATTERN)
    master: str
    languages: list[str] = Field(min_length=1)
    title: dict[str, str]
    description: dict[str, str] = Field(default_factory=dict)
    captions: dict[str, str] = Field(default_factory=dict)
    thumbnail: str | None = None
    publish_at: str | None = None
    timezone: str | None = None
    tags: list[str] = Field(default_factory=list)
    channels: list[str] | None = None
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    signage: _Signage | None = None
    repeat: list[_Repeat] = Field(default_factory=list)

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not LANGUAGE_TAG.match(tag):
                raise ValueError(f"'{tag}' is not a language tag (e.g. en, zh-Hant, zh-Hans)")
        if len(set(value)) != len(value):
            raise ValueError("a language is listed twice")
        return value


def load_release(path: Path, *, channels: Mapping[str, type[Channel]] | None = None,
                 zone: str | None = None) -> Release:
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
    try:
        raw = ManifestSchema.model_validate(doc.data)
    except ValidationError as exc:
        raise InputError(problems + schema_problems(doc, exc)) from None
    checker = _Checker(doc, channels, zone)
    release = checker.resolve(raw)
    problems += checker.problems
    if problems or release is None:
        raise InputError(problems)
    return release


class _Checker:
    def __init__(self, doc: YamlDocument, channels: Mapping[str, type[Channel]] | None,
                 config_zone: str | None) -> None:
        self.doc = doc
        self.root = doc.path.parent.resolve()
        self.problems: list[Problem] = []
        self.channels = channels
        self.config_zone = config_zone

    def problem(self, loc: Loc, message: str, fix: str) -> None:
        from publisher.yamlfile import dotted

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
        master = self.file(("master",), m.master)
        captions = {lang: self.file(("captions", lang), p) for lang, p in m.captions.items()}
        thumbnail = self.file(("thumbnail",), m.thumbnail) if m.thumbnail else None
        zone = self.zone(("timezone",), m.timezone) if m.timezone else None
        publish_at = self.time(("publish_at",), m.publish_at, zone) if m.publish_at else None
        signage = None
        if m.signage is not None:
            signage = SignageSpec(
                start=self.time(("signage", "start"), m.signage.start, zone) if m.signage.start else None,
                end=self.time(("signage", "end"), m.signage.end, zone) if m.signage.end else None,
                sites=m.signage.sites,
            )
            if signage.start and signage.end and signage.end <= signage.start:
                self.problem(("signage", "end"), "end is not after start", "move the end later")
        repeat = [self.repeat(i, r, zone) for i, r in enumerate(m.repeat)]
        overrides, windows = self.overrides(m, zone, signage)
        if self.problems or master is None:
            return None
        return Release(
            id=m.id, manifest_path=self.doc.path, master=master, languages=langs,
            title=m.title, description=m.description,
            captions={k: v for k, v in captions.items() if v is not None},
            thumbnail=thumbnail, publish_at=publish_at, tags=m.tags,
            channels=m.channels or [], overrides=overrides, signage=signage,
            repeat=[r for r in repeat if r is not None] + windows,
        )

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
            cls = self.channels.get(name)
            if cls is None:
                self.problem(loc, f"channel '{name}' is not in the site config",
                             f"use one of: {', '.join(sorted(self.channels))}")
                continue
            bad = override_problems(name, cls.kind, cls.Overrides, block, str(self.doc.path), self.doc.line)
            if bad:
                self.problems += bad
                continue
            model = cls.Overrides.model_validate(block)
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
        return parse_time(text, zone, lambda msg, fix: self.problem(loc, msg, fix))

    def repeat(self, i: int, r: _Repeat, zone: ZoneInfo | None) -> RepeatSpec | None:
        loc: Loc = ("repeat", i)
        if (r.cron is None) == (r.every is None):
            self.problem(loc, "give exactly one of `cron` or `every`", "e.g. cron: '0 9 1 * *' or every: 30d")
            return None
        rzone = self.zone((*loc, "timezone"), r.timezone) if r.timezone else zone
        until = self.time((*loc, "until"), r.until, rzone) if r.until else None
        if r.every is not None and not re.fullmatch(r"\d+[mhdw]", r.every):
            self.problem((*loc, "every"), f"'{r.every}' is not an interval", "write e.g. 90m, 12h, 30d or 1w")
        if r.window is not None and not re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", r.window):
            self.problem((*loc, "window"), f"'{r.window}' is not a daily window", "write e.g. 09:00-18:00")
        return RepeatSpec(channels=r.channels, cron=r.cron, every=r.every,
                          timezone=(r.timezone or (str(zone.key) if zone else "UTC")),
                          until=until, window=r.window)


def parse_time(text: str, zone: ZoneInfo | None, problem: Any) -> datetime | None:
    """A full timestamp with a zone, as UTC. ``problem(message, fix)`` is called when it is not."""
    try:
        return _parse_time(text, zone, problem)
    except (OverflowError, ValueError):
        problem(f"'{text}' is out of range", "write a date between 1970 and 9998")
        return None


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
