"""Real media for tests, generated with ffmpeg's lavfi sources (no binary fixtures in git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

EN_SRT = """1
00:00:00,500 --> 00:00:02,000
Travel safely.

2
00:00:02,200 --> 00:00:03,500
Call 1868 for help.
"""

ZH_HANT_VTT = """WEBVTT

00:00:00.500 --> 00:00:02.000
出行注意安全。

00:00:02.200 --> 00:00:03.500
如需協助，請致電1868。
"""

ZH_HANS_SRT = """1
00:00:00,500 --> 00:00:02,000
出行注意安全。

2
00:00:02,200 --> 00:00:03,500
如需协助，请致电1868。
"""


def make_master(path: Path, *, seconds: float = 4, size: str = "640x360", rate: int = 25,
                audio: bool = True, codec: str = "libx264") -> Path:
    """A small real master: moving test pattern (+ a 440 Hz tone)."""
    args = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
            f"testsrc2=size={size}:rate={rate}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    args += ["-c:v", codec, "-pix_fmt", "yuv420p", "-g", str(rate)]
    if codec == "libx264":
        args += ["-preset", "ultrafast"]
    if audio:
        args += ["-c:a", "aac", "-b:a", "96k"]
    args += ["-shortest", str(path)]
    subprocess.run(args, check=True)
    return path


def make_poster(path: Path, size: str = "1280x720") -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"smptebars=size={size}", "-frames:v", "1", str(path)], check=True)
    return path


def write_captions(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"en": folder / "en.srt", "zh-Hant": folder / "zh-Hant.vtt", "zh-Hans": folder / "zh-Hans.srt"}
    files["en"].write_text(EN_SRT, encoding="utf-8")
    files["zh-Hant"].write_text(ZH_HANT_VTT, encoding="utf-8")
    files["zh-Hans"].write_text(ZH_HANS_SRT, encoding="utf-8")
    return files


def make_release_folder(folder: Path, master_src: Path | None = None) -> Path:
    """A release folder with master.mp4, subs/ and poster.png; copies ``master_src`` if given."""
    folder.mkdir(parents=True, exist_ok=True)
    master = folder / "master.mp4"
    if master_src is not None:
        master.write_bytes(master_src.read_bytes())
    else:
        make_master(master)
    write_captions(folder / "subs")
    make_poster(folder / "poster.png")
    return folder
