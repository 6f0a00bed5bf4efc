"""Encoding profiles: typed settings loaded from the versioned data files in ``assets/profiles/``.

A profile file names its ``kind`` (which settings model applies), a ``version`` (part of every
rendition key, bump it when a default changes) and default ``params``. A channel's request may
override any param; the merged result is validated by the same model, so a typo or an out-of-range
value is refused before anything runs.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from publisher.errors import InputError
from publisher.models import Problem

Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"]
Level = Literal["3.0", "3.1", "4.0", "4.1", "4.2", "5.0", "5.1"]


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class X264(Params):
    """Video encoder settings shared by MP4 and HLS profiles (libx264, yuv420p, closed GOP)."""

    fps: float | None = Field(None, gt=0, le=120)  # None keeps the master's frame rate
    preset: Preset = "veryfast"
    x264_profile: Literal["baseline", "main", "high"] = "high"
    level: Level | None = None
    gop_seconds: float = Field(2.0, ge=0.5, le=10)
    scenecut: bool = False
    loudness: float | None = Field(-14.0, ge=-31, le=-5)  # integrated LUFS; None: leave audio as is
    true_peak: float = Field(-1.0, ge=-9, le=0)
    loudness_range: float = Field(11.0, ge=1, le=20)


class Mp4Params(X264):
    """One progressive MP4 (youtube, web-mp4, wechat, signage)."""

    max_height: int = Field(ge=144, le=2160)
    crf: int | None = Field(None, ge=0, le=51)
    video_kbps: int | None = Field(None, ge=100, le=50_000)
    maxrate_kbps: int | None = Field(None, ge=100, le=60_000)
    bufsize_kbps: int | None = Field(None, ge=100, le=120_000)
    audio: bool = True  # False: no audio track at all (signage)
    audio_kbps: int = Field(128, ge=32, le=512)
    faststart: bool = True
    # youtube: use the master itself when the service accepts it as is
    passthrough: bool = False
    passthrough_codecs: list[str] = ["h264", "hevc", "prores", "vp9"]
    passthrough_min_height: int = 720
    # wechat: a byte cap; the planner derives the bitrate from the duration
    max_bytes: int | None = Field(None, ge=100_000)
    size_margin: float = Field(0.9, gt=0.5, lt=1)
    min_kbps: dict[int, int] = {}  # height -> least video kbps worth sending at that height
    # signage: a fixed 16:9 frame (capped at the master's size) and burned-in subtitles
    canvas_width: int | None = Field(None, ge=320, le=3840)
    canvas_height: int | None = Field(None, ge=180, le=2160)
    language: str | None = None  # which captions language to burn in; None: no subtitles
    subtitle_size: float = Field(0.06, ge=0.05, le=0.15)  # character height, fraction of picture height
    # a dark box behind the text instead of an outline, so it reads over any picture: its padding
    # (fraction of picture height) and opacity (80 % at least keeps white text 4.5:1 over white)
    subtitle_box_padding: float = Field(0.01, ge=0.002, le=0.03)
    subtitle_box_opacity: float = Field(0.85, ge=0.8, le=1.0)

    @model_validator(mode="after")
    def _rate_control(self) -> Mp4Params:
        if self.max_bytes is None and (self.crf is None) == (self.video_kbps is None):
            raise ValueError("give exactly one of crf or video_kbps")
        if (self.canvas_width is None) != (self.canvas_height is None):
            raise ValueError("give both canvas_width and canvas_height, or neither")
        return self


class Rung(Params):
    height: int = Field(ge=144, le=2160)
    video_kbps: int = Field(ge=100, le=50_000)
    maxrate_kbps: int = Field(ge=100, le=60_000)
    bufsize_kbps: int = Field(ge=100, le=120_000)
    audio_kbps: int = Field(128, ge=32, le=512)


class HlsParams(X264):
    """An adaptive ladder: one rung per height at most the master's, aligned keyframes."""

    rungs: list[Rung] = Field(min_length=1)
    segment_seconds: float = Field(4.0, ge=4, le=6)

    @model_validator(mode="after")
    def _ladder(self) -> HlsParams:
        heights = [r.height for r in self.rungs]
        if len(set(heights)) != len(heights):
            raise ValueError("two rungs have the same height")
        ratio = self.segment_seconds / self.gop_seconds
        if abs(ratio - round(ratio)) > 1e-6:
            raise ValueError("segment_seconds must be a multiple of gop_seconds (segments cut on keyframes)")
        return self


class ImageParams(Params):
    """A JPEG from the release thumbnail, or from a frame of the master."""

    source: Literal["thumbnail", "frame"] = "thumbnail"  # thumbnail falls back to a frame if absent
    frame_at: float | None = Field(None, ge=0)  # seconds; None: 10 % into the video
    max_width: int = Field(ge=16, le=7680)
    max_height: int = Field(ge=16, le=4320)
    quality: int = Field(3, ge=2, le=31)  # ffmpeg -q:v, 2 is best
    max_bytes: int | None = Field(None, ge=4096)


class CaptionParams(Params):
    languages: list[str] | None = None  # None: every language the release has captions for


KINDS: dict[str, type[Params]] = {
    "mp4": Mp4Params, "hls": HlsParams, "image": ImageParams, "captions": CaptionParams,
}


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1)
    kind: Literal["mp4", "hls", "image", "captions"]
    description: str
    params: dict[str, Any]

    @property
    def source(self) -> str:
        return f"assets/profiles/{self.name}.yaml"

    def resolve(self, overrides: dict[str, Any], *, where: str = "") -> Params:
        """Defaults merged with ``overrides``, validated; InputError names every bad param."""
        merged = {**self.params, **overrides}
        try:
            return KINDS[self.kind].model_validate(merged)
        except ValidationError as e:
            problems = []
            for err in e.errors():
                param = ".".join(str(p) for p in err["loc"]) or "params"
                known = ", ".join(sorted(KINDS[self.kind].model_fields))
                fix = (f"use one of: {known}" if err["type"] == "extra_forbidden"
                       else f"correct the value (see {self.source})")
                problems.append(Problem(file="", field=f"{where}encoding.{self.name}.{param}",
                                        message=f"profile {self.name}: {err['msg']}", fix=fix))
            raise InputError(problems) from None


@functools.cache
def load_profiles() -> dict[str, Profile]:
    """Every profile shipped in ``assets/profiles/``, validated (defaults included)."""
    profiles: dict[str, Profile] = {}
    folder = resources.files("assets.profiles")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8"))
        profile = Profile.model_validate(data)
        if profile.name + ".yaml" != entry.name:
            raise ValueError(f"{entry.name}: name {profile.name!r} does not match the file name")
        profile.resolve({})  # the defaults themselves must validate
        profiles[profile.name] = profile
    return profiles


def get_profile(name: str, *, where: str = "") -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        raise InputError(Problem(
            file="", field=f"{where}profile", message=f"unknown encoding profile {name!r}",
            fix=f"use one of: {', '.join(sorted(profiles))}",
        ))
    return profiles[name]
