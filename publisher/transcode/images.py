"""Still images: the poster (from the thumbnail or a frame) and the WeChat cover (≤ 64 KB).

Never larger than the master (nor than the thumbnail itself): a 640x360 master gets at most a
640x360 poster even from a 1280x720 thumbnail.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from publisher.errors import TranscodeError
from publisher.inputs.media import ffprobe_json
from publisher.models import MasterInfo
from publisher.transcode.planner import fit
from publisher.transcode.profiles import ImageParams


def image_size(path: Path, ffprobe: str) -> tuple[int, int]:
    try:
        data = ffprobe_json(path, ffprobe=ffprobe)
        video = next(s for s in data["streams"] if s.get("codec_type") == "video")
        return int(video["width"]), int(video["height"])
    except (subprocess.CalledProcessError, StopIteration, KeyError, ValueError):
        raise TranscodeError(f"cannot read the image {path}; give a PNG or JPEG thumbnail") from None


def _jpeg(ffmpeg: str, source: list[str], out: Path, size: tuple[int, int], quality: int) -> None:
    args = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", *source,
            "-frames:v", "1", "-vf", f"scale={size[0]}:{size[1]}:flags=lanczos,format=yuvj420p",
            "-q:v", str(quality), "-update", "1", "-f", "image2", "-c:v", "mjpeg", str(out)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise TranscodeError(f"ffmpeg could not make {out.name}:\n{tail}")


def make_image(params: ImageParams, master: MasterInfo, thumbnail: Path | None, folder: Path,
               name: str, *, ffmpeg: str, ffprobe: str) -> tuple[int, int]:
    """Write ``folder/name`` (JPEG); returns its size. Lowers quality, then size, to meet max_bytes."""
    if thumbnail is not None:
        src_w, src_h = image_size(thumbnail, ffprobe)
        source = ["-i", "file:" + str(thumbnail)]
    else:
        at = params.frame_at if params.frame_at is not None else master.duration * 0.1
        at = min(at, max(master.duration - 0.1, 0))
        src_w, src_h = master.width, master.height
        source = ["-ss", f"{at:.3f}", "-i", "file:" + str(master.path)]
    cap = fit(src_w, src_h, min(params.max_width, master.width), min(params.max_height, master.height))
    size = fit(src_w, src_h, *cap)
    out = folder / name
    quality = params.quality
    while True:
        _jpeg(ffmpeg, source, out, size, quality)
        if params.max_bytes is None or out.stat().st_size <= params.max_bytes:
            return size
        if quality < 31:
            quality = min(31, quality + 4)
        elif size[0] > 64:
            size = fit(size[0], size[1], int(size[0] * 0.8), int(size[1] * 0.8))
        else:
            raise TranscodeError(f"cannot make {name} small enough ({params.max_bytes} bytes)")


def frame(video: Path, at: float, out: Path, *, ffmpeg: str = "ffmpeg") -> None:
    """Write the frame of ``video`` shown at ``at`` seconds to ``out`` (JPEG, the video's size)."""
    args = [ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-ss", f"{max(at, 0):.3f}",
            "-i", "file:" + str(video), "-frames:v", "1", "-vf", "format=yuvj420p", "-q:v", "3",
            "-update", "1", "-f", "image2", "-c:v", "mjpeg", str(out)]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise TranscodeError(f"ffmpeg could not take a frame of {video.name}:\n{tail}")
