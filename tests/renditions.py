"""Real web renditions for channel tests, made with ffmpeg in the transcoder's layout.

``web-hls``: ``master.m3u8`` + ``<h>p/index.m3u8`` and segments; ``web-mp4``: ``video.mp4``;
``poster``: ``poster.jpg``; ``captions``: ``<lang>.vtt``. Returned as ``Rendition`` objects so the
adapters can be driven directly with ``contract.Job`` without the transcoder.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from publisher.contract import Job, Journal, Occurrence, StepOptions, SystemClock
from publisher.models import FileInfo, Release, Rendition
from tests.media import make_master, write_captions

LANGUAGES = ["en", "zh-Hant", "zh-Hans"]
TITLES = {"en": "Consular Protection <Travel> & \"Safety\"", "zh-Hant": "領事保護", "zh-Hans": "领事保护"}
DESCRIPTIONS = {"en": "An animated video on consular protection.</script><script>alert(1)</script>",
                "zh-Hant": "領事保護動畫短片。", "zh-Hans": "领事保护动画短片。"}


def _ff(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def _rendition(profile: str, folder: Path, main: str, width: int = 0, height: int = 0,
               duration: float = 0.0) -> Rendition:
    files = []
    for p in sorted(x for x in folder.rglob("*") if x.is_file()):
        files.append(FileInfo(name=p.relative_to(folder).as_posix(), bytes=p.stat().st_size,
                              sha256=hashlib.sha256(p.read_bytes()).hexdigest()))
    key = hashlib.sha256(json.dumps([f.sha256 for f in files]).encode()).hexdigest()[:16]
    return Rendition(key=f"{profile}-{key}", profile=profile, folder=folder, main=main, files=files,
                     width=width, height=height, duration=duration)


def make_web_renditions(base: Path, master: Path, captions: dict[str, Path]) -> dict[str, Rendition]:
    """Encode (once per ``base``) the four renditions the website and app-feed channels need."""
    hls, mp4, poster, subs = base / "web-hls", base / "web-mp4", base / "poster", base / "captions"
    if not (base / "done").exists():
        for d in (hls, mp4, poster, subs):
            d.mkdir(parents=True, exist_ok=True)
        x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25",
                "-keyint_min", "25", "-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k"]
        ladder = "[0:v]split=2[a][b];[a]scale=-2:360[v0];[b]scale=-2:180[v1]"
        _ff("-i", str(master), "-filter_complex", ladder,
            "-map", "[v0]", "-map", "0:a", "-map", "[v1]", "-map", "0:a", *x264,
            "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
            "-hls_segment_filename", str(hls / "%v/seg%03d.ts"), "-master_pl_name", "master.m3u8",
            "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:180p", str(hls / "%v/index.m3u8"))
        _ff("-i", str(master), *x264, "-movflags", "+faststart", str(mp4 / "video.mp4"))
        _ff("-ss", "1", "-i", str(master), "-frames:v", "1", "-q:v", "3", str(poster / "poster.jpg"))
        for lang, src in captions.items():
            _ff("-i", str(src), str(subs / f"{lang}.vtt"))
        (base / "done").write_text("ok")
    return {
        "web-hls": _rendition("web-hls", hls, "master.m3u8", 640, 360, 4.0),
        "web-mp4": _rendition("web-mp4", mp4, "video.mp4", 640, 360, 4.0),
        "poster": _rendition("poster", poster, "poster.jpg", 640, 360),
        "captions": _rendition("captions", subs, ""),
    }


def make_release(root: Path, release_id: str = "consular-protection-2026", **changes: object) -> Release:
    fields: dict[str, object] = dict(
        id=release_id, manifest_path=root / "release.yaml", master=root / "master.mp4",
        languages=LANGUAGES, title=TITLES, description=DESCRIPTIONS,
        captions={lang: root / f"subs/{lang}" for lang in LANGUAGES}, tags=["consular protection"])
    fields.update(changes)
    return Release.model_validate(fields)


class FixedClock:
    """A clock that says what the test says (sleeping only passes real time)."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def make_job(*, stage_only: bool = False, now: Callable[[], datetime] | None = None, repair: bool = False,
             reupload: bool = False, keep_private: bool = False, repeat: str | datetime | None = None,
             window: dict[str, str] | None = None, **kw: Any) -> Job:
    """A Job as the core builds one: verb options typed, the test's clock."""
    occurrence = None
    if repeat is not None:
        at = datetime.fromisoformat(repeat) if isinstance(repeat, str) else repeat
        span = None
        if window:
            span = (datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"]))
        occurrence = Occurrence(at, span)
    options = StepOptions(stage_only=stage_only, keep_private=keep_private, repair=repair, reupload=reupload,
                          repeat=occurrence)
    return Job(options=options, clock=FixedClock(now) if now else SystemClock(), **kw)


def job(release: Release, renditions: dict[str, Rendition], journal: Journal | None = None,
        **kw: Any) -> Job:
    return make_job(release=release, journal=journal or Journal(), renditions=renditions, **kw)


def session_renditions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendition]:
    """Session-wide renditions from a 4 s 640x360 master (call from a session-scoped fixture)."""
    base = tmp_path_factory.getbasetemp() / "web-renditions"
    if not (base / "done").exists():
        base.mkdir(parents=True, exist_ok=True)
        master = base / "master.mp4"
        if not master.exists():
            make_master(master)
        write_captions(base / "subs")
    subs = base / "subs"
    return make_web_renditions(base, base / "master.mp4",
                               {"en": subs / "en.srt", "zh-Hant": subs / "zh-Hant.vtt",
                                "zh-Hans": subs / "zh-Hans.srt"})


def remuxed(renditions: dict[str, Rendition], folder: Path, title: str) -> dict[str, Rendition]:
    """The same renditions with a different (remuxed, re-tagged) MP4: another version of the media."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "video.mp4").exists():
        _ff("-i", str(renditions["web-mp4"].main_path), "-c", "copy", "-metadata", f"title={title}",
            "-movflags", "+faststart", str(folder / "video.mp4"))
    return {**renditions, "web-mp4": _rendition("web-mp4", folder, "video.mp4", 640, 360, 4.0)}
