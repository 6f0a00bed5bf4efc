"""Facts about the master: checksum, ffprobe summary and a full decode pass."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

from publisher.contract import sha256_file
from publisher.errors import InputError
from publisher.models import MasterInfo, Problem

CHUNK = 1 << 20


def require_ffmpeg(*tools: str) -> None:
    """Stop with the package to install when ffmpeg's programs are not on the PATH."""
    missing = [t for t in tools or ("ffmpeg", "ffprobe") if shutil.which(t) is None]
    if missing:
        raise _no_ffmpeg(missing)


def _no_ffmpeg(missing: list[str]) -> InputError:
    return InputError(Problem(
        file="", field="", message=f"{' and '.join(missing)} not found on the PATH; publisher needs "
        "them to check and encode video", fix="install Debian's ffmpeg package: apt-get install ffmpeg"))


def ffprobe_json(path: Path, *extra: str, ffprobe: str = "ffprobe") -> dict[str, Any]:
    """ffprobe's JSON for streams and format; raises CalledProcessError when it cannot read the file."""
    args = [ffprobe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format", *extra,
            "file:" + str(path)]
    try:
        out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    except FileNotFoundError:
        raise _no_ffmpeg([ffprobe]) from None
    result: dict[str, Any] = json.loads(out.stdout or "{}")
    return result


def _rate(value: str | None) -> float:
    try:
        rate = Fraction(value or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(rate) if rate > 0 else 0.0


def _rotation(video: dict[str, Any]) -> int:
    for side in video.get("side_data_list") or []:
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    try:
        return int(video.get("tags", {}).get("rotate", 0)) % 360
    except ValueError:
        return 0


def _shown(text: str, path: Path, shown_as: Path | None) -> str:
    return text.replace(str(path), str(shown_as)) if shown_as else text


def _not_video(path: Path, why: str) -> InputError:
    return InputError(Problem(
        file=str(path), field="master", message=f"not a usable video file: {why}",
        fix="give the master as a video file (e.g. MP4 or MOV with an H.264, HEVC or ProRes stream)",
    ))


def probe_master(path: Path, *, sha256: str | None = None, shown_as: Path | None = None) -> MasterInfo:
    """Container, codecs, size, frame rate, duration and audio of the master, from ffprobe.
    ``shown_as`` is the name for messages (the author's file when ``path`` is its snapshot)."""
    name = shown_as or path
    try:
        data = ffprobe_json(path)
    except subprocess.CalledProcessError as e:
        last = _shown(" ".join((e.stderr or "").strip().splitlines()[-2:]), path, shown_as)
        raise _not_video(name, f"ffprobe cannot read it ({last or 'no details'})") from None
    except subprocess.TimeoutExpired:
        raise _not_video(name, "ffprobe timed out reading it") from None
    streams = data.get("streams", [])
    fmt = data.get("format", {})
    video = next((s for s in streams if s.get("codec_type") == "video"
                  and not s.get("disposition", {}).get("attached_pic")), None)
    if video is None:
        raise _not_video(name, "it has no video stream")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    duration = float(fmt.get("duration") or video.get("duration") or 0)
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if _rotation(video) in (90, 270):  # ffmpeg turns the picture upright when it decodes
        width, height = height, width
    if duration <= 0 or fps <= 0 or width <= 0 or height <= 0:
        raise _not_video(name, "it is a still image or has no duration, frame rate or picture size")
    return MasterInfo(
        path=path,
        sha256=sha256 or sha256_file(path),
        bytes=path.stat().st_size,
        container=str(fmt.get("format_name", "")),
        video_codec=str(video.get("codec_name", "")),
        width=width,
        height=height,
        fps=round(fps, 3),
        duration=duration,
        pix_fmt=str(video.get("pix_fmt", "")),
        audio_codec=str(audio["codec_name"]) if audio else None,
        audio_channels=int(audio.get("channels") or 0) if audio else 0,
        audio_rate=int(audio.get("sample_rate") or 0) if audio else 0,
    )


def decode_check(path: Path, *, ffmpeg: str = "ffmpeg", shown_as: Path | None = None) -> None:
    """Decode every frame; a truncated or corrupt master (which ffprobe may accept) is refused."""
    args = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-xerror", "-i", "file:" + str(path),
            "-f", "null", "-"]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise _no_ffmpeg([ffmpeg]) from None
    if proc.returncode != 0:
        lines = [_shown(line, path, shown_as) for line in proc.stderr.strip().splitlines()
                 if line.strip()][-3:]
        raise InputError(Problem(
            file=str(shown_as or path), field="master",
            message="the video does not decode to the end (truncated or corrupt): "
                    + ("; ".join(lines) or f"ffmpeg exit status {proc.returncode}"),
            fix="export or copy the master again and check it plays to the end",
        ))
