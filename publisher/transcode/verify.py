"""Checks of finished outputs with ffprobe, and the HLS master playlist written from what was made.

Every output is probed before it may enter the cache: codec, picture size, audio (or its absence),
duration within 0.1 s of the master, the byte cap, faststart (MP4) and, for HLS, keyframes and
segment boundaries identical in every rung and segments of 4–6 s.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from publisher.errors import TranscodeError
from publisher.inputs.media import ffprobe_json
from publisher.models import MasterInfo
from publisher.transcode.planner import VideoSpec

TOLERANCE = 0.1
PROFILE_TAGS = {"High": "6400", "Main": "4d40", "Constrained Baseline": "42e0", "Baseline": "4200"}


@dataclass
class Probed:
    width: int
    height: int
    duration: float
    codecs: str  # RFC 6381, e.g. avc1.64001f,mp4a.40.2


def _probe(path: Path, ffprobe: str) -> dict[str, Any]:
    try:
        return ffprobe_json(path, ffprobe=ffprobe)
    except subprocess.CalledProcessError as e:
        detail = (e.stderr or "").strip()[-300:]
        raise TranscodeError(f"ffprobe cannot read the output {path.name}: {detail}") from None


def _streams(data: dict[str, Any], path: Path, spec: VideoSpec) -> tuple[dict[str, Any], str]:
    video = [s for s in data.get("streams", []) if s.get("codec_type") == "video"]
    audio = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    problems = []
    if len(video) != 1 or video[0].get("codec_name") != "h264":
        problems.append(f"expected one H.264 video stream, found {[s.get('codec_name') for s in video]}")
    elif (video[0].get("width"), video[0].get("height")) != (spec.width, spec.height):
        problems.append(f"picture is {video[0].get('width')}x{video[0].get('height')}, "
                        f"expected {spec.width}x{spec.height}")
    elif video[0].get("pix_fmt") != "yuv420p":
        problems.append(f"pixel format {video[0].get('pix_fmt')}, expected yuv420p")
    if spec.audio is None and audio:
        problems.append("has an audio track but this profile has none")
    if spec.audio is not None and (len(audio) != 1 or audio[0].get("codec_name") != "aac"
                                   or int(audio[0].get("sample_rate", 0)) != 48000
                                   or audio[0].get("channels") != 2):
        problems.append("expected one AAC 48 kHz stereo track")
    if problems:
        raise TranscodeError(f"output {path} failed its checks: " + "; ".join(problems))
    v = video[0]
    codecs = f"avc1.{PROFILE_TAGS.get(v.get('profile', ''), '6400')}{int(v.get('level', 40)):02x}"
    if spec.audio is not None:
        codecs += ",mp4a.40.2"
    return v, codecs


def master_durations(master: MasterInfo, ffprobe: str) -> list[float]:
    """Lengths an output may match: the master's, and its video stream's (audio can run longer)."""
    data = _probe(master.path, ffprobe)
    video = [float(s["duration"]) for s in data.get("streams", [])
             if s.get("codec_type") == "video" and s.get("duration") not in (None, "N/A")]
    return [master.duration, *video[:1]]


def _duration(path: Path, found: float, expected: list[float]) -> None:
    if all(abs(found - want) > TOLERANCE for want in expected):
        raise TranscodeError(f"output {path} lasts {found:.3f} s, the master {expected[0]:.3f} s "
                             f"(more than {TOLERANCE} s apart)")


def top_level_atoms(path: Path) -> list[str]:
    names = []
    with path.open("rb") as f:
        while len(header := f.read(8)) == 8:
            size = int.from_bytes(header[:4], "big")
            names.append(header[4:].decode("latin-1"))
            if size == 1:
                size = int.from_bytes(f.read(8), "big") - 8
            elif size == 0:
                break
            f.seek(size - 8, 1)
    return names


def check_mp4(path: Path, spec: VideoSpec, expected: list[float], ffprobe: str,
              max_bytes: int | None = None) -> Probed:
    data = _probe(path, ffprobe)
    v, codecs = _streams(data, path, spec)
    duration = float(data.get("format", {}).get("duration") or 0)
    _duration(path, duration, expected)
    atoms = top_level_atoms(path)
    if "moov" not in atoms or "mdat" not in atoms or atoms.index("moov") > atoms.index("mdat"):
        raise TranscodeError(f"output {path} is not faststart (moov after mdat)")
    if max_bytes is not None and path.stat().st_size > max_bytes:
        raise TranscodeError(f"output {path} is {path.stat().st_size} bytes, over the {max_bytes} cap")
    return Probed(int(v["width"]), int(v["height"]), duration, codecs)


def media_playlist(path: Path) -> list[tuple[float, str]]:
    """(duration, segment file) pairs of an HLS media playlist."""
    out, duration = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            out.append((duration, line.strip()))
            duration = None
    return out


def keyframes(path: Path, ffprobe: str) -> list[float]:
    """Keyframe times of the video in a playlist, relative to the first frame."""
    args = [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
            "-of", "csv=p=0", "file:" + str(path)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = [line.split(",") for line in out.splitlines() if line.strip()]
    times = [float(t) for t, flags, *_ in rows if t not in ("", "N/A") and "K" in flags]
    return [round(t - times[0], 3) for t in times] if times else []


def check_hls(folder: Path, rungs: list[tuple[str, VideoSpec]], master: MasterInfo, expected: list[float],
              ffprobe: str, segment_seconds: float) -> Probed:
    """Check every rung (name = 'NNNp/index.m3u8') and write ``master.m3u8``; returns the top rung."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-INDEPENDENT-SEGMENTS"]
    first: tuple[list[float], list[float]] | None = None
    top: Probed | None = None
    for name, spec in rungs:
        playlist = folder / name
        segments = media_playlist(playlist)
        if not segments:
            raise TranscodeError(f"HLS playlist {playlist} lists no segments")
        durations = [d for d, _ in segments]
        if any(not (segment_seconds - TOLERANCE <= d <= 6 + TOLERANCE) for d in durations[:-1]):
            raise TranscodeError(f"HLS segments of {playlist} are not 4–6 s: {durations}")
        _duration(playlist, sum(durations), expected)
        data = _probe(playlist.parent / segments[0][1], ffprobe)
        v, codecs = _streams(data, playlist, spec)
        marks = (durations, keyframes(playlist, ffprobe))
        if first is None:
            first = marks
        elif marks != first:
            raise TranscodeError(f"HLS rung {name} is not aligned with the others "
                                 f"(segments or keyframes differ)")
        sizes = [(playlist.parent / seg).stat().st_size * 8 for _, seg in segments]
        peak = max(bits / max(d, 0.5) for bits, (d, _) in zip(sizes, segments, strict=True))
        average = sum(sizes) / max(sum(durations), 0.001)
        fps = spec.fps or master.fps
        lines += [f"#EXT-X-STREAM-INF:BANDWIDTH={int(peak)},AVERAGE-BANDWIDTH={int(average)},"
                  f"RESOLUTION={spec.width}x{spec.height},FRAME-RATE={fps:.3f},CODECS=\"{codecs}\"", name]
        if top is None:
            top = Probed(int(v["width"]), int(v["height"]), sum(durations), codecs)
    (folder / "master.m3u8").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert top is not None
    return top
