"""Planning: resolve each channel's requests to profile settings, key them, look them up in the cache.

The key of a rendition is a hash of everything its bytes depend on: the master's sha256, the profile
(name, version, every resolved parameter), the caption/thumbnail files it uses, the font it burns
with and the ffmpeg version. Identical resolved requests from several channels share one key.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from publisher.contract import sha256_file
from publisher.errors import InputError, TranscodeError
from publisher.models import MasterInfo, Problem, Release, RenditionRequest
from publisher.transcode.fonts import line_per_em
from publisher.transcode.profiles import (
    CaptionParams,
    HlsParams,
    ImageParams,
    Mp4Params,
    Params,
    Profile,
    get_profile,
)

KEY_SCHEMA = 1


@dataclass(frozen=True)
class AudioSpec:
    kbps: int
    loudness: float | None  # integrated LUFS target; None leaves the level as it is
    true_peak: float
    lra: float


@dataclass(frozen=True)
class VideoSpec:
    """One video encode. Two outputs with equal specs share one encoder (encode once, package many)."""

    width: int  # frame
    height: int
    pic_width: int  # picture inside the frame (smaller when padded)
    pic_height: int
    fps: float | None
    preset: str
    x264_profile: str
    level: str | None
    crf: int | None
    kbps: int | None
    maxrate: int | None
    bufsize: int | None
    gop: float
    scenecut: bool
    audio: AudioSpec | None
    burn: Path | None = None  # captions file burned into the picture
    burn_font: str = ""  # font family (from fc-match)
    burn_font_file: str = ""
    burn_size: float = 0.0  # character height (em), fraction of the picture height
    burn_line_per_em: float = 1.0  # the font's line height in ems (libass sizes by the line)
    burn_box_padding: float = 0.0
    burn_box_opacity: float = 0.0


@dataclass(frozen=True)
class Output:
    key: str
    container: Literal["mp4", "hls"]
    name: str  # relative to the rendition folder
    segment_seconds: float = 0.0


@dataclass
class Job:
    """Everything ``run`` needs for one planned rendition."""

    key: str
    profile: Profile
    params: Params
    passthrough: bool = False
    encodes: list[tuple[VideoSpec, Output]] = field(default_factory=list)
    image_source: Path | None = None  # thumbnail, or None for a frame of the master
    captions: dict[str, Path] = field(default_factory=dict)


@dataclass
class PlannedRendition:
    key: str
    request: RenditionRequest  # the resolved request: profile + every parameter
    channels: list[str]
    cached: bool  # True also when the master passes through as is (nothing to encode)
    description: str


@dataclass
class TranscodePlan:
    items: list[PlannedRendition]
    release: Release | None = field(default=None, repr=False)
    master: MasterInfo | None = field(default=None, repr=False)
    jobs: dict[str, Job] = field(default_factory=dict, repr=False)
    index: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    def key_for(self, channel: str, request: RenditionRequest) -> str:
        try:
            return self.index[(channel, request.token())]
        except KeyError:
            raise KeyError(f"{channel} did not ask for {request.token()} in this plan") from None

    @property
    def to_encode(self) -> list[PlannedRendition]:
        return [item for item in self.items if not item.cached]


# --- geometry ------------------------------------------------------------------------------------
def even(x: float) -> int:
    return max(2, int(round(x)) // 2 * 2)


def fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The largest even size of the same aspect inside the box, never larger than (width, height)."""
    scale = min(1.0, box_w / width, box_h / height)
    return even(width * scale), even(height * scale)


def box(height: int) -> tuple[int, int]:
    """A 16:9 box of this height, a little wider so that the height decides for 16:9 masters."""
    return even(height * 16 / 9) + 2, height


# --- helpers -------------------------------------------------------------------------------------
def ffmpeg_version(ffmpeg: str) -> str:
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise TranscodeError(f"cannot run {ffmpeg} ({e}); install ffmpeg (apt-get install ffmpeg)") from None
    return out.splitlines()[0] if out else "unknown"


FONT_FAMILIES = {"zh-hant": "Noto Sans CJK TC", "zh-hk": "Noto Sans CJK HK", "zh-tw": "Noto Sans CJK TC",
                 "zh-hans": "Noto Sans CJK SC", "zh-cn": "Noto Sans CJK SC", "zh": "Noto Sans CJK SC",
                 "ja": "Noto Sans CJK JP", "ko": "Noto Sans CJK KR"}


def find_font(language: str) -> tuple[str, str, int]:
    """(family, file, face index in the file) of the Noto CJK face for ``language``, found with
    fc-match, never assumed."""
    wanted = FONT_FAMILIES.get(language.lower(), "Noto Sans CJK TC")  # its Latin glyphs serve en too
    try:
        out = subprocess.run(["fc-match", "-f", "%{family[0]}\n%{file}\n%{index}", wanted],
                             capture_output=True, text=True, check=True, timeout=30).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        out = []
    if len(out) < 2 or "Noto Sans CJK" not in out[0]:
        raise TranscodeError(f"font {wanted!r} not found for burning {language} subtitles; "
                             "install it: apt-get install fonts-noto-cjk")
    return out[0], out[1], int(out[2]) if len(out) > 2 and out[2].isdigit() else 0


class Hashes:
    """sha256 of input files, computed once per plan."""

    def __init__(self) -> None:
        self._seen: dict[Path, str] = {}

    def __call__(self, path: Path) -> str:
        if path not in self._seen:
            self._seen[path] = sha256_file(path)
        return self._seen[path]


def make_key(parts: dict[str, object]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- per-kind resolution -------------------------------------------------------------------------
def audio_spec(p: Mp4Params | HlsParams, kbps: int) -> AudioSpec:
    return AudioSpec(kbps=kbps, loudness=p.loudness, true_peak=p.true_peak, lra=p.loudness_range)


def accepts_as_is(p: Mp4Params, master: MasterInfo) -> bool:
    container_ok = master.path.suffix.lower() in (".mp4", ".mov", ".m4v") and "mp4" in master.container
    return (p.passthrough and container_ok and master.video_codec in p.passthrough_codecs
            and master.height >= p.passthrough_min_height)


def wechat_fit(p: Mp4Params, master: MasterInfo, where: str) -> Mp4Params:
    """Height and bitrate that keep the file under ``max_bytes`` with the margin."""
    assert p.max_bytes is not None
    total_kbps = p.max_bytes * 8 * p.size_margin / master.duration / 1000
    video_kbps = int(total_kbps - p.audio_kbps)
    floors = p.min_kbps or {360: 300}
    tallest = min(p.max_height, master.height)
    options = sorted(((h, k) for h, k in floors.items() if h <= tallest), reverse=True)
    if not options:  # a master below every listed height: its own height with the lowest floor
        options = [(even(master.height), min(floors.values()))]
    for height, floor in options:
        if video_kbps >= floor:
            kbps = min(video_kbps, p.video_kbps or video_kbps)  # video_kbps is a ceiling here
            return p.model_copy(update={"max_height": height, "video_kbps": kbps,
                                        "maxrate_kbps": int(kbps * 1.1), "bufsize_kbps": kbps * 2})
    height, floor = options[-1]
    raise TranscodeError(
        f"{where}the video ({master.duration:.0f} s) cannot fit under {p.max_bytes / 1e6:.0f} MB at "
        f"{height}p or above: that needs {floor} kbps, only {max(video_kbps, 0)} kbps fit. "
        "Publish a shorter cut to WeChat, or link to the video on another channel")


def mp4_spec(p: Mp4Params, master: MasterInfo, font: tuple[str, str, int] | None,
             burn: Path | None) -> VideoSpec:
    if p.canvas_width and p.canvas_height:
        frame = fit(p.canvas_width, p.canvas_height, master.width, master.height)
        frame = fit(frame[0], frame[1], *box(p.max_height))
        pic = fit(master.width, master.height, *frame)
    else:
        frame = pic = fit(master.width, master.height, *box(p.max_height))
    return VideoSpec(
        width=frame[0], height=frame[1], pic_width=pic[0], pic_height=pic[1], fps=p.fps,
        preset=p.preset, x264_profile=p.x264_profile, level=p.level, crf=p.crf, kbps=p.video_kbps,
        maxrate=p.maxrate_kbps, bufsize=p.bufsize_kbps, gop=p.gop_seconds, scenecut=p.scenecut,
        audio=audio_spec(p, p.audio_kbps) if p.audio else None,
        burn=burn, burn_font=font[0] if font and burn else "",
        burn_font_file=font[1] if font and burn else "",
        burn_size=p.subtitle_size if burn else 0.0,
        burn_line_per_em=line_per_em(font[1], font[2]) if font and burn else 1.0,
        burn_box_padding=p.subtitle_box_padding if burn else 0.0,
        burn_box_opacity=p.subtitle_box_opacity if burn else 0.0,
    )


def hls_rungs(p: HlsParams, master: MasterInfo) -> list[tuple[int, VideoSpec]]:
    rungs = [r for r in p.rungs if r.height <= master.height]
    if not rungs:  # a master below the lowest rung: one rung at the master's own size
        rungs = [min(p.rungs, key=lambda r: r.height).model_copy(update={"height": master.height})]
    out = []
    for r in sorted(rungs, key=lambda r: -r.height):
        w, h = fit(master.width, master.height, *box(r.height))
        out.append((h, VideoSpec(
            width=w, height=h, pic_width=w, pic_height=h, fps=p.fps, preset=p.preset,
            x264_profile=p.x264_profile, level=p.level, crf=None, kbps=r.video_kbps,
            maxrate=r.maxrate_kbps, bufsize=r.bufsize_kbps, gop=p.gop_seconds, scenecut=p.scenecut,
            audio=audio_spec(p, r.audio_kbps))))
    return out


def resolve(channel: str, request: RenditionRequest, release: Release, master: MasterInfo,
            ffmpeg_id: str, hashes: Hashes) -> tuple[Job, str]:
    """The job (with its key) and a one-line description for one channel's request."""
    where = f"channels.{channel}."
    profile = get_profile(request.profile, where=where)
    params = profile.resolve(request.params, where=where)
    inputs: dict[str, str] = {}
    job = Job(key="", profile=profile, params=params)
    font: tuple[str, str, int] | None = None
    if isinstance(params, Mp4Params):
        if params.max_bytes is not None:
            params = job.params = wechat_fit(params, master, f"{channel}: ")
        burn = None
        if params.language:
            burn = release.captions.get(params.language)
            if burn is None:
                raise InputError(Problem(
                    file=str(release.manifest_path), field=f"{where}language",
                    message=f"{channel} burns in {params.language} subtitles, but the release has no "
                            f"captions for {params.language}",
                    fix=f"add captions.{params.language} to the manifest, or set the channel's language "
                        f"to one of: {', '.join(release.captions) or '(none)'}"))
            font = find_font(params.language)
            inputs = {"burn": hashes(burn), "font": font[1]}
        job.passthrough = accepts_as_is(params, master)
        spec = mp4_spec(params, master, font, burn)
        if not job.passthrough:
            job.encodes = [(spec, Output(key="", container="mp4", name="video.mp4"))]
        text = (f"master as is ({master.video_codec} {master.width}x{master.height}), no encode"
                if job.passthrough else
                f"{spec.width}x{spec.height} MP4"
                + (f" {spec.kbps} kbps" if spec.kbps else f" crf {spec.crf}")
                + (f" ≤ {params.max_bytes / 1e6:.0f} MB" if params.max_bytes else "")
                + ("" if spec.audio else ", no audio")
                + (f", {params.language} subtitles burned in" if burn else ""))
    elif isinstance(params, HlsParams):
        rungs = hls_rungs(params, master)
        job.encodes = [(spec, Output(key="", container="hls", name=f"{h}p/index.m3u8",
                                     segment_seconds=params.segment_seconds)) for h, spec in rungs]
        text = "HLS " + " + ".join(f"{h}p" for h, _ in rungs)
    elif isinstance(params, ImageParams):
        if params.source == "thumbnail" and release.thumbnail is not None:
            job.image_source = release.thumbnail
            inputs = {"thumbnail": hashes(release.thumbnail)}
        w, h = fit(master.width, master.height, params.max_width, params.max_height)
        text = f"JPEG up to {w}x{h}" + (f" ≤ {params.max_bytes // 1024} KB" if params.max_bytes else "") \
            + (" from the thumbnail" if job.image_source else " from a frame")
    else:
        assert isinstance(params, CaptionParams)
        langs = params.languages if params.languages is not None else list(release.captions)
        missing = [lang for lang in langs if lang not in release.captions]
        if missing:
            raise InputError(Problem(
                file=str(release.manifest_path), field=f"{where}encoding.captions.languages",
                message=f"no captions for {', '.join(missing)} in the release",
                fix="add them under captions: in the manifest, or drop them from languages"))
        job.captions = {lang: release.captions[lang] for lang in langs}
        inputs = {f"captions.{lang}": hashes(p) for lang, p in job.captions.items()}
        text = "WebVTT " + (", ".join(langs) or "(no captions)")
    job.key = make_key({
        "schema": KEY_SCHEMA, "master": master.sha256, "profile": profile.name,
        "version": profile.version, "params": params.model_dump(mode="json"), "inputs": inputs,
        "ffmpeg": ffmpeg_id, "passthrough": job.passthrough,
    })
    job.encodes = [(spec, Output(key=job.key, container=o.container, name=o.name,
                                 segment_seconds=o.segment_seconds)) for spec, o in job.encodes]
    return job, f"{profile.name}: {text}"
