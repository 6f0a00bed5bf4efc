"""The one ffmpeg process: decode the master once, split it, encode every missing rendition.

The command line is an argument list built with ffmpeg-python from the typed specs. Outputs are
written relative to the work folder (ffmpeg runs with it as its working directory), so no path from
the user or the cache location ever appears inside a filter or tee specification. Subtitles are
burned from a file the runner writes there under a fixed name; no text is put in a filter string.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg as ffmpeg_python

from publisher.errors import TranscodeError
from publisher.models import MasterInfo
from publisher.transcode.loudness import Measurement, loudnorm_options
from publisher.transcode.planner import AudioSpec, Output, VideoSpec

GLOBAL_ARGS = ["-nostdin", "-hide_banner", "-nostats", "-v", "error", "-y", "-progress", "pipe:1"]


@dataclass
class Encode:
    """One encoder and the outputs it feeds (relative paths inside the work folder)."""

    spec: VideoSpec
    outputs: list[tuple[Output, str]]  # (output, path relative to the work folder)
    burn_file: str = ""  # subtitle file name in the work folder


def video_options(spec: VideoSpec, fps: float) -> dict[str, Any]:
    gop_frames = max(1, round(spec.gop * fps))
    opts: dict[str, Any] = {
        "c:v": "libx264", "preset": spec.preset, "profile:v": spec.x264_profile, "pix_fmt": "yuv420p",
        "g": gop_frames, "keyint_min": gop_frames,
        # keyframes on a time grid, identical in every rung; closed GOPs
        "force_key_frames": f"expr:gte(t,n_forced*{spec.gop:g})", "x264-params": "open-gop=0",
    }
    if not spec.scenecut:
        opts["sc_threshold"] = 0
    if spec.level:
        opts["level:v"] = spec.level
    if spec.crf is not None:
        opts["crf"] = spec.crf
    if spec.kbps is not None:
        opts["b:v"] = f"{spec.kbps}k"
    if spec.maxrate is not None:
        opts["maxrate"] = f"{spec.maxrate}k"
        opts["bufsize"] = f"{spec.bufsize or 2 * spec.maxrate}k"
    return opts


def audio_options(spec: AudioSpec) -> dict[str, Any]:
    return {"c:a": "aac", "b:a": f"{spec.kbps}k", "ar": 48000, "ac": 2}


def muxer_options(output: Output, path: str) -> dict[str, Any]:
    if output.container == "mp4":
        return {"f": "mp4", "movflags": "+faststart"}
    folder = path.rsplit("/", 1)[0]
    return {"f": "hls", "hls_time": f"{output.segment_seconds:g}", "hls_playlist_type": "vod",
            "hls_flags": "independent_segments", "hls_segment_filename": f"{folder}/seg_%05d.ts"}


def tee_target(outputs: list[tuple[Output, str]]) -> str:
    # Paths are our own (key hex, "video.mp4", "720p/..."): nothing here needs tee escaping.
    slaves = []
    for output, path in outputs:
        opts = ":".join(f"{k}={v}" for k, v in muxer_options(output, path).items())
        slaves.append(f"[{opts}]{path}")
    return "|".join(slaves)


def _split(stream: Any, n: int) -> list[Any]:
    if n == 1:
        return [stream]
    node = stream.filter_multi_output("split", n)
    return [node[k] for k in range(n)]


def pictures(video: Any, encodes: list[Encode], master: MasterInfo) -> list[Any]:
    """Each encode's input picture. Smaller pictures are scaled in a cascade, each size once from
    the next larger one (1080p -> 720p -> 480p -> 360p), not each from the master: one scale
    per distinct size, each reading fewer pixels. Encodes that change the frame rate scale
    their own picture after that."""
    own = (master.width, master.height)
    size = {i: (e.spec.pic_width, e.spec.pic_height) for i, e in enumerate(encodes)
            if not e.spec.fps and (e.spec.pic_width, e.spec.pic_height) != own}
    direct = [i for i in range(len(encodes)) if i not in size]
    sizes = sorted(set(size.values()), key=lambda wh: -wh[0] * wh[1])
    parts = _split(video, len(direct) + bool(sizes))
    out: dict[int, Any] = dict(zip(direct, parts, strict=False))
    upstream = parts[-1]
    for n, (w, h) in enumerate(sizes):
        users = [i for i, wh in size.items() if wh == (w, h)]
        more = n + 1 < len(sizes)
        scaled = _split(upstream.filter("scale", w, h, flags="bicubic"), len(users) + more)
        out.update(zip(users, scaled, strict=False))
        upstream = scaled[-1]
    return [out[i] for i in range(len(encodes))]


def build_args(master: MasterInfo, encodes: list[Encode], loudness: Measurement | None,
               ffmpeg: str = "ffmpeg", fontsdir: str = "", *, verify: bool = False) -> list[str]:
    """The full ffmpeg argument list for all ``encodes`` from one decode of the master.
    ``verify``: the encode is also the master's full decode check (stop at the first error)."""
    source = ffmpeg_python.input("file:" + str(master.path))
    video_in = pictures(source.video, encodes, master)

    # audio: one chain per distinct loudness target, split among the encodes that use it
    targets: dict[tuple[float | None, float, float], list[int]] = {}
    for i, enc in enumerate(encodes):
        if enc.spec.audio is not None:
            a = enc.spec.audio
            targets.setdefault((a.loudness, a.true_peak, a.lra), []).append(i)
    audio_for: dict[int, Any] = {}
    if targets:
        if master.has_audio:
            audio_in: Any = source.audio
        else:  # a master without audio: profiles that need a track get silence
            audio_in = ffmpeg_python.input("anullsrc=channel_layout=stereo:sample_rate=48000", f="lavfi",
                                           t=f"{master.duration:.3f}").audio
        chains = audio_in.filter_multi_output("asplit", len(targets)) if len(targets) > 1 else None
        for n, ((lufs, tp, lra), users) in enumerate(targets.items()):
            chain = chains[n] if chains is not None else audio_in
            if lufs is not None and loudness is not None and master.has_audio:
                chain = chain.filter("loudnorm", **loudnorm_options(loudness, lufs, tp, lra))
            chain = chain.filter("aresample", 48000).filter("aformat", channel_layouts="stereo")
            parts = chain.filter_multi_output("asplit", len(users)) if len(users) > 1 else None
            for m, i in enumerate(users):
                audio_for[i] = parts[m] if parts is not None else chain

    outs = []
    for i, enc in enumerate(encodes):
        s = enc.spec
        v: Any = video_in[i]
        fps = s.fps or master.fps
        if s.fps:
            v = v.filter("fps", fps=f"{s.fps:g}")
            if (s.pic_width, s.pic_height) != (master.width, master.height):
                v = v.filter("scale", s.pic_width, s.pic_height, flags="bicubic")
        if (s.width, s.height) != (s.pic_width, s.pic_height):
            v = v.filter("pad", s.width, s.height, (s.width - s.pic_width) // 2,
                         (s.height - s.pic_height) // 2)
        v = v.filter("setsar", 1)
        if enc.burn_file:
            burn: dict[str, str] = {"filename": enc.burn_file}
            if fontsdir:
                burn["fontsdir"] = fontsdir
            v = v.filter("subtitles", **burn)
        v = v.filter("format", "yuv420p")
        streams = [v] + ([audio_for[i]] if i in audio_for else [])
        opts = video_options(s, fps)
        if s.audio is not None:
            opts.update(audio_options(s.audio))
        if len(enc.outputs) == 1:
            output, path = enc.outputs[0]
            opts.update(muxer_options(output, path))
            outs.append(ffmpeg_python.output(*streams, path, **opts))
        else:  # encode once, package many
            opts.update({"f": "tee", "flags": "+global_header"})
            outs.append(ffmpeg_python.output(*streams, tee_target(enc.outputs), **opts))
    args: list[str] = ffmpeg_python.get_args(ffmpeg_python.merge_outputs(*outs))
    return [ffmpeg, *GLOBAL_ARGS, *(["-xerror"] if verify else []), *args]


def stderr_tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.strip().splitlines()[-lines:])


def run(args: list[str], *, cwd: Path, duration: float, what: str,
        on_progress: Callable[[float, str], None] | None = None) -> None:
    """Run ffmpeg, reporting ``-progress`` as (fraction, text); TranscodeError with stderr's tail."""
    log = cwd / "ffmpeg.log"
    # If publisher itself is killed, the kernel kills ffmpeg too (no orphan encoding for nobody).
    guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
    with log.open("w", encoding="utf-8") as err:
        proc = subprocess.Popen([*guard, *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, text=True)
        try:
            assert proc.stdout is not None
            speed = ""
            for line in proc.stdout:
                key, _, value = line.strip().partition("=")
                if key == "speed":
                    speed = value.strip()
                elif key == "out_time_us" and on_progress and duration > 0 and value.isdigit():
                    done = min(int(value) / 1e6, duration)
                    on_progress(done / duration, f"{what}: {done:.1f} of {duration:.1f} s"
                                + (f" at {speed}" if speed and speed != "N/A" else ""))
                elif key == "progress" and value == "end" and on_progress:
                    on_progress(1.0, f"{what}: done")
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if code != 0:
        reason = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        tail = stderr_tail(log)
        free = shutil.disk_usage(cwd).free
        if free < 64 * 1024 * 1024 or "No space left" in tail:
            raise TranscodeError(f"no space left on the disk of the rendition cache ({cwd.parent}): "
                                 f"{free // 1024} kB free while {what}; free some space or set "
                                 "cache_dir to a bigger disk, then run the same command again")
        raise TranscodeError(f"ffmpeg failed ({reason}) while {what}"
                             + (f"; its last messages:\n{tail}" if tail else ""))
