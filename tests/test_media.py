"""Master checks on real generated media: checksum, ffprobe summary, full decode pass."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.inputs.media import decode_check, probe_master, sha256_file
from tests.media import make_master, make_poster


def test_sha256_streams_large_file(tmp_path: Path) -> None:
    data = os.urandom(2 * 1024 * 1024 + 12345)  # spans several 1 MiB chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_probe_master_reports_streams(master_file: Path) -> None:
    info = probe_master(master_file)
    assert info.video_codec == "h264"
    assert (info.width, info.height) == (640, 360)
    assert info.fps == 25
    assert abs(info.duration - 4.0) < 0.1
    assert info.pix_fmt == "yuv420p"
    assert "mp4" in info.container
    assert info.audio_codec == "aac" and info.audio_channels == 1 and info.audio_rate == 48000
    assert info.has_audio
    assert info.sha256 == hashlib.sha256(master_file.read_bytes()).hexdigest()
    assert info.bytes == master_file.stat().st_size


def test_probe_master_without_audio(tmp_path: Path) -> None:
    info = probe_master(make_master(tmp_path / "silent.mp4", seconds=1, audio=False))
    assert info.audio_codec is None and not info.has_audio and info.audio_channels == 0


@pytest.mark.parametrize("kind", ["text", "image", "empty"])
def test_probe_master_refuses_non_video(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"master-{kind}.mp4"
    if kind == "text":
        path.write_text("this is not a video\n")
    elif kind == "image":
        make_poster(tmp_path / "still.png", size="320x180")
        path = tmp_path / "still.png"
    else:
        path.write_bytes(b"")
    with pytest.raises(InputError) as err:
        probe_master(path)
    problem = err.value.problems[0]
    assert problem.file == str(path)
    assert problem.field == "master"
    assert "not a usable video" in problem.message and problem.fix


def test_decode_check_accepts_good_master(master_file: Path) -> None:
    decode_check(master_file)


def test_truncated_master_passes_ffprobe_but_not_decode(tmp_path: Path) -> None:
    good = tmp_path / "good.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:d=3",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-movflags", "+faststart", str(good)], check=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    info = probe_master(cut)  # the moov atom is at the front: ffprobe is satisfied
    assert info.video_codec == "h264"
    with pytest.raises(InputError) as err:
        decode_check(cut)
    problem = err.value.problems[0]
    assert problem.file == str(cut) and problem.field == "master"
    assert "truncated or corrupt" in problem.message
    assert "export or copy the master again" in problem.fix
    assert str(err.value).startswith(str(cut))


def test_rotated_master_reports_upright_size(tmp_path: Path) -> None:
    plain = make_master(tmp_path / "plain.mp4", seconds=1, size="320x180", audio=False)
    rotated = tmp_path / "phone.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(plain), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(rotated)], check=True)
    info = probe_master(rotated)
    assert (info.width, info.height) == (180, 320)  # as ffmpeg decodes it: upright
