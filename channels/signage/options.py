"""The ``signage`` kind's block in the site config, and what a release manifest may override: a
daily window."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from channels.transports.options import FileOptions
from publisher.contract import ChannelOverrides

KIND = "signage"


class SignageOverrides(ChannelOverrides):
    """What a release manifest may change for a signage channel: a daily window ("09:00-18:00",
    in the manifest's ``timezone:``, else the site config's) outside which the item is not listed."""

    window: str | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is None:
            return None
        m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)", value.strip())
        if not m:
            raise ValueError(f"'{value}' is not a daily window; write e.g. 09:00-18:00 (24-hour clock)")
        if m.group(1, 2) == m.group(3, 4):
            raise ValueError(f"'{value}' starts and ends at the same time; give a start and a later end")
        return value.strip()

    def daily_window(self) -> str | None:
        return self.window


class SignageOptions(FileOptions):
    #: language of the burned-in subtitles; default: the release's default language
    language: str | None = None
    #: player groups (offices, control points); each is a sub-folder of the target
    sites: list[str] = Field(min_length=1)


Options = SignageOptions
Overrides = SignageOverrides
