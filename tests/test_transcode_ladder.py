"""Larger masters: the HLS ladder (aligned, never upscaled), encode once / package many, YouTube
passthrough, a master without audio, signage at 1080p and a 4:3 master on a 16:9 screen."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from publisher.models import Rendition
from publisher.transcode import Transcoder
from publisher.transcode.verify import keyframes, media_playlist
from tests.media import make_master
from tests.test_transcode import R, Shim, gray_frame, make_release, probe, streams

FAST = {"preset": "ultrafast"}


@pytest.fixture(scope="module")
def hd(tmp_path_factory: pytest.TempPathFactory) -> tuple[Shim, dict[str, Rendition], list[str]]:
    """A 6 s 1280x720 master: YouTube (passthrough), web-hls and web-mp4."""
    tmp = tmp_path_factory.mktemp("hd")
    master = make_master(tmp / "src.mp4", seconds=6, size="1280x720")
    release, info = make_release(tmp / "release", master)
    shim = Shim(tmp / "bin")
    transcoder = Transcoder(tmp / "cache", ffmpeg=str(shim.path))
    requests = {"yt": [R("youtube")], "site": [R("web-hls", **FAST), R("web-mp4", **FAST)]}
    plan = transcoder.plan(release, info, requests)
    ready: list[str] = []
    out = transcoder.run(plan, on_ready=lambda r: ready.append(r.profile))
    named = {r.profile: r for r in out.values()}
    return shim, named, ready


def test_youtube_passthrough_is_ready_first(hd: tuple[Shim, dict[str, Rendition], list[str]]) -> None:
    _, out, ready = hd
    yt = out["youtube"]
    assert ready[0] == "youtube"
    assert yt.passthrough and yt.main == "master.mp4" and yt.folder.name == "release"
    assert yt.files[0].bytes == yt.main_path.stat().st_size


def test_ladder_never_upscaled_and_aligned(hd: tuple[Shim, dict[str, Rendition], list[str]]) -> None:
    _, out, _ = hd
    hls = out["web-hls"]
    text = hls.main_path.read_text()
    rungs = [line for line in text.splitlines() if line.endswith("index.m3u8")]
    assert rungs == ["720p/index.m3u8", "480p/index.m3u8", "360p/index.m3u8"]  # no 1080p from 720p
    for res in ("RESOLUTION=1280x720", "RESOLUTION=852x480", "RESOLUTION=640x360"):
        assert res in text
    assert text.count("BANDWIDTH=") == 6 and text.count('CODECS="avc1.') == 3
    segments = [[d for d, _ in media_playlist(hls.folder / r)] for r in rungs]
    assert segments[0] == segments[1] == segments[2] == [4.0, 2.0]  # 4 s segments on 2 s GOPs
    marks = [keyframes(hls.folder / r, "ffprobe") for r in rungs]
    assert marks[0] == marks[1] == marks[2] == [0.0, 2.0, 4.0]  # no scene-cut keyframes
    for rung, height in zip(rungs, (720, 480, 360), strict=True):
        [v] = streams(hls.folder / rung.replace("index.m3u8", "seg_00000.ts"), "video")
        assert v["height"] == height


def test_720p_rung_and_web_mp4_share_one_encode(hd: tuple[Shim, dict[str, Rendition], list[str]]) -> None:
    shim, out, _ = hd
    [call] = shim.encodes()
    tee = [arg for arg in call if arg.startswith("[f=")]
    assert len(tee) == 1
    assert f"{out['web-hls'].key}/720p/index.m3u8" in tee[0] and f"{out['web-mp4'].key}/video.mp4" in tee[0]
    assert call.count("libx264") == 3  # 720p (shared), 480p, 360p: YouTube passes through
    mp4 = out["web-mp4"]
    data = mp4.main_path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    assert gray_frame(mp4.main_path, 3.0) == gray_frame(out["web-hls"].folder / "720p/index.m3u8", 3.0)


def test_silent_1080p_master_signage_and_web(tmp_path: Path) -> None:
    master = make_master(tmp_path / "src.mp4", seconds=2, size="1920x1080", audio=False)
    release, info = make_release(tmp_path / "release", master)
    transcoder = Transcoder(tmp_path / "cache")
    plan = transcoder.plan(release, info, {"screens": [R("signage", language="zh-Hans", **FAST)],
                                           "site": [R("web-mp4", **FAST)]})
    out = {r.profile: r for r in transcoder.run(plan).values()}
    [v] = streams(out["signage"].main_path, "video")
    assert (v["width"], v["height"], v["r_frame_rate"], v["level"]) == (1920, 1080, "25/1", 41)
    assert streams(out["signage"].main_path, "audio") == []
    [a] = streams(out["web-mp4"].main_path, "audio")  # silence added: players expect a track
    assert (a["codec_name"], a["channels"]) == ("aac", 2)
    assert abs(float(probe(out["web-mp4"].main_path)["format"]["duration"]) - 2.0) <= 0.1


def test_4_3_master_is_pillarboxed_not_upscaled(tmp_path: Path) -> None:
    master = make_master(tmp_path / "src.mp4", seconds=1, size="640x480")
    release, info = make_release(tmp_path / "release", master)
    transcoder = Transcoder(tmp_path / "cache")
    plan = transcoder.plan(release, info, {"screens": [R("signage", **FAST)]})
    [r] = transcoder.run(plan).values()
    [v] = streams(r.main_path, "video")
    assert (v["width"], v["height"]) == (640, 360)  # 16:9 frame inside the master's size
    frame = gray_frame(r.main_path, 0.5)
    left = [frame[y * 640 + x] for y in range(0, 360, 10) for x in range(0, 70, 5)]
    assert max(left) < 24  # black pillar: the 480x360 picture sits in the middle


def test_rotated_phone_master_keeps_its_shape(tmp_path: Path) -> None:
    plain = make_master(tmp_path / "plain.mp4", seconds=1, size="640x360")
    src = tmp_path / "phone.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(plain), "-c", "copy",
                    "-metadata:s:v:0", "rotate=90", str(src)], check=True)
    release, info = make_release(tmp_path / "release", src)
    transcoder = Transcoder(tmp_path / "cache")
    [r] = transcoder.run(transcoder.plan(release, info, {"site": [R("web-mp4", **FAST)]})).values()
    [v] = streams(r.main_path, "video")
    assert (v["width"], v["height"]) == (360, 640) == (r.width, r.height)
