"""The transcoder on real generated media: every profile checked with ffprobe, one ffmpeg process
for all video renditions, the cache (hit, corrupt entry rebuilt) and a killed ffmpeg.

A PATH-style shim (a shell script that logs its arguments, then execs the real ffmpeg) counts the
ffmpeg processes the transcoder starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from publisher.errors import InputError, TranscodeError
from publisher.inputs.media import probe_master, sha256_file
from publisher.models import MasterInfo, Release, Rendition, RenditionRequest
from publisher.transcode import TranscodePlan, Transcoder
from publisher.transcode.cache import LOCK, TMP_PREFIX
from tests.media import make_release_folder


def R(profile: str, **params: Any) -> RenditionRequest:  # noqa: N802
    return RenditionRequest(profile=profile, params=params)


# The seed's seven channels, asking the way their adapters do.
SEED: dict[str, list[RenditionRequest]] = {
    "immd-youtube": [R("youtube"), R("captions"), R("poster")],
    **{f"{site}-web": [R("web-hls"), R("web-mp4"), R("poster"), R("captions")]
       for site in ("sb", "immd", "ocmfa")},
    "ocmfa-wechat": [R("wechat"), R("cover")],
    "gov-app": [R("web-hls"), R("poster"), R("captions")],
    "border-signage": [R("signage", language="zh-Hant")],
}


def make_release(folder: Path, master: Path) -> tuple[Release, MasterInfo]:
    make_release_folder(folder, master_src=master)
    subs = folder / "subs"
    release = Release(
        id="consular-protection-2026", manifest_path=folder / "release.yaml", master=folder / "master.mp4",
        languages=["en", "zh-Hant", "zh-Hans"], title={"en": "Consular Protection"},
        captions={"en": subs / "en.srt", "zh-Hant": subs / "zh-Hant.vtt", "zh-Hans": subs / "zh-Hans.srt"},
        thumbnail=folder / "poster.png")
    return release, probe_master(release.master)


class Shim:
    """An ``ffmpeg`` that records each invocation's arguments (one JSON list per line)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "calls.log"
        self.path = folder / "ffmpeg"
        self.path.write_text(
            "#!/usr/bin/env python3\nimport json, os, sys\n"
            f"open({str(self.log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
            "os.execvp('/usr/bin/ffmpeg', ['ffmpeg'] + sys.argv[1:])\n")
        self.path.chmod(0o755)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def encodes(self) -> list[list[str]]:
        """Invocations that encode video renditions (not -version, loudness or stills)."""
        return [c for c in self.calls() if "-filter_complex" in c]


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
                          "-show_format", str(path)], capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def streams(path: Path, kind: str) -> list[dict[str, Any]]:
    return [s for s in probe(path)["streams"] if s["codec_type"] == kind]


def gray_frame(path: Path, at: float) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", "-ss", f"{at}", "-i", str(path), "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout


def cache_entries(cache: Path) -> list[str]:
    skip = ("loudness", LOCK)
    return sorted(p.name for p in cache.iterdir() if p.name not in skip) if cache.exists() else []


class Run:
    def __init__(self, tmp: Path, master: Path) -> None:
        self.release, self.master = make_release(tmp / "release", master)
        self.cache = tmp / "cache"
        self.shim = Shim(tmp / "bin")
        self.requests = {**SEED, "plain-signage": [R("signage")]}
        self.transcoder = Transcoder(self.cache, ffmpeg=str(self.shim.path))
        self.plan = self.transcoder.plan(self.release, self.master, self.requests)
        self.ready: list[str] = []
        self.progress: list[tuple[float, str]] = []
        self.out = self.transcoder.run(self.plan, on_ready=lambda r: self.ready.append(r.profile),
                                       on_progress=lambda f, t: self.progress.append((f, t)))

    def get(self, channel: str, profile: str, **params: Any) -> Rendition:
        return self.out[self.plan.key_for(channel, R(profile, **params))]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, master_file: Path) -> Run:
    """Every seed channel's renditions from the 640x360 master, in a private cache (counted calls)."""
    return Run(tmp_path_factory.mktemp("transcode"), master_file)


# --- planning -----------------------------------------------------------------------------------
def test_planning_writes_nothing(tmp_path: Path, run: Run) -> None:
    plan = Transcoder(tmp_path / "cache").plan(run.release, run.master, run.requests)
    assert len(plan.to_encode) == 9 and not (tmp_path / "cache").exists()


def test_plan_collapses_identical_requests(run: Run) -> None:
    by_profile = {item.request.profile: item for item in run.plan.items if item.request.profile != "signage"}
    assert sorted(by_profile["web-hls"].channels) == ["gov-app", "immd-web", "ocmfa-web", "sb-web"]
    assert len(by_profile["poster"].channels) == 5
    keys = {run.plan.key_for(ch, R("web-hls")) for ch in ("sb-web", "immd-web", "ocmfa-web", "gov-app")}
    assert keys == {by_profile["web-hls"].key}
    signage = [i for i in run.plan.items if i.request.profile == "signage"]
    assert len(signage) == 2 and signage[0].key != signage[1].key  # with and without subtitles
    assert len(run.plan.items) == 9 and all(not i.cached for i in run.plan.items)
    assert run.plan.to_encode == run.plan.items
    # the resolved request carries every parameter (what the key was made from)
    assert by_profile["web-mp4"].request.params["video_kbps"] == 3000
    assert "360p" in by_profile["web-hls"].description
    with pytest.raises(KeyError):
        run.plan.key_for("sb-web", R("wechat"))


def test_plan_refuses_bad_requests(run: Run) -> None:
    bad = {"a": [R("webm-hd")], "b": [R("web-mp4", crf=99)], "c": [R("web-mp4", colour="red")],
           "d": [R("signage", language="fr")], "e": [R("wechat", max_bytes=200_000, min_kbps={360: 300})]}
    with pytest.raises(InputError) as err:
        run.transcoder.plan(run.release, run.master, {k: v for k, v in bad.items() if k != "e"})
    problems = {p.field: p for p in err.value.problems}
    assert "unknown encoding profile 'webm-hd'" in problems["channels.a.profile"].message
    assert "web-hls" in problems["channels.a.profile"].fix
    assert "less than or equal to 51" in problems["channels.b.encoding.web-mp4.crf"].message
    assert "max_height" in problems["channels.c.encoding.web-mp4.colour"].fix
    assert "no captions for fr" in problems["channels.d.language"].message
    # 200 kB in 4 s leaves 264 kbps of video: no height ≥ 360p fits
    with pytest.raises(TranscodeError, match=r"cannot fit under 0 MB at 360p or above: that needs 300 kbps"):
        run.transcoder.plan(run.release, run.master, {"e": bad["e"]})


# --- one process, every profile -----------------------------------------------------------------
def test_one_ffmpeg_process_encodes_every_video_rendition(run: Run) -> None:
    [encode] = run.shim.encodes()
    video_keys = [i.key for i in run.plan.items if i.request.profile in
                  ("youtube", "web-hls", "web-mp4", "wechat", "signage")]
    assert len(video_keys) == 6
    for key in video_keys:  # every output of every missing video rendition is in this one call
        assert any(arg.startswith(key + "/") for arg in encode)
    assert encode.count("-i") == 1  # the master is decoded once
    assert "split=6" in encode[encode.index("-filter_complex") + 1]
    assert "-progress" in encode and "pipe:1" in encode
    loudness = [c for c in run.shim.calls() if "loudnorm=print_format=json" in c]
    assert len(loudness) == 1 and "-vn" in loudness[0]  # one shared, audio-only measurement


def test_ready_order_and_progress(run: Run) -> None:
    assert set(run.ready[:3]) == {"poster", "captions", "cover"}  # stills before the long encode
    assert sorted(run.ready[3:]) == ["signage", "signage", "web-hls", "web-mp4", "wechat", "youtube"]
    fractions = [f for f, _ in run.progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(t.startswith("encoding 6 renditions") for _, t in run.progress)


def test_youtube_h264_high_aac(run: Run) -> None:
    r = run.get("immd-youtube", "youtube")
    assert not r.passthrough  # 360p is below what YouTube takes as is
    [v] = streams(r.main_path, "video")
    [a] = streams(r.main_path, "audio")
    assert (v["codec_name"], v["profile"], v["width"], v["height"]) == ("h264", "High", 640, 360)
    assert (a["codec_name"], a["profile"], a["sample_rate"], a["channels"]) == ("aac", "LC", "48000", 2)
    assert r.file("video.mp4").sha256 == sha256_file(r.main_path)


def test_web_mp4_faststart(run: Run) -> None:
    r = run.get("sb-web", "web-mp4")
    data = r.main_path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    [v] = streams(r.main_path, "video")
    assert (v["codec_name"], v["height"]) == ("h264", 360)  # capped at the master, not 720
    assert abs(float(probe(r.main_path)["format"]["duration"]) - run.master.duration) <= 0.1


def test_hls_single_rung_for_360p_master(run: Run) -> None:
    r = run.get("gov-app", "web-hls")
    assert r.main == "master.m3u8"
    text = r.main_path.read_text()
    assert text.count("#EXT-X-STREAM-INF") == 1  # never upscaled: a 360p master gives one rung
    assert 'RESOLUTION=640x360' in text and 'CODECS="avc1.64001e,mp4a.40.2"' in text and "BANDWIDTH=" in text
    assert {f.name for f in r.files} == {"master.m3u8", "360p/index.m3u8", "360p/seg_00000.ts"}


def test_wechat_under_cap(run: Run) -> None:
    r = run.get("ocmfa-wechat", "wechat")
    assert r.main_path.stat().st_size <= 10_000_000
    assert streams(r.main_path, "audio")[0]["codec_name"] == "aac"


def test_signage_no_audio_high_41_25fps(run: Run) -> None:
    r = run.get("border-signage", "signage", language="zh-Hant")
    assert streams(r.main_path, "audio") == []
    [v] = streams(r.main_path, "video")
    assert (v["profile"], v["level"], v["pix_fmt"], v["r_frame_rate"]) == ("High", 41, "yuv420p", "25/1")
    assert (v["width"], v["height"]) == (640, 360)  # never above the master (see README)


def test_subtitles_are_burned_in(run: Run) -> None:
    burned = gray_frame(run.get("border-signage", "signage", language="zh-Hant").main_path, 1.0)
    plain = gray_frame(run.get("plain-signage", "signage").main_path, 1.0)
    assert len(burned) == len(plain) == 640 * 360

    def diff(rows: range) -> float:
        a = b"".join(burned[y * 640:(y + 1) * 640] for y in rows)
        b = b"".join(plain[y * 640:(y + 1) * 640] for y in rows)
        return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)

    assert diff(range(300, 345)) > 5  # the caption band differs
    assert diff(range(20, 200)) < 1  # the rest of the picture does not


def test_stills_and_captions(run: Run) -> None:
    poster = run.get("sb-web", "poster")
    [v] = streams(poster.main_path, "video")
    assert (v["codec_name"], v["width"], v["height"]) == ("mjpeg", 640, 360)  # thumbnail is 1280x720
    cover = run.get("ocmfa-wechat", "cover")
    assert cover.main_path.stat().st_size <= 64 * 1024
    caps = run.get("sb-web", "captions")
    assert caps.main == "" and {f.name for f in caps.files} == {"en.vtt", "zh-Hant.vtt", "zh-Hans.vtt"}
    assert (caps.folder / "zh-Hans.vtt").read_text().startswith("WEBVTT")


# --- cache ----------------------------------------------------------------------------------------
def test_second_run_is_all_cache_hits(run: Run) -> None:
    before = len(run.shim.calls())
    again = Transcoder(run.cache, ffmpeg=str(run.shim.path))
    plan = again.plan(run.release, run.master, run.requests)
    assert all(item.cached for item in plan.items) and plan.to_encode == []
    out = again.run(plan)
    assert out == run.out
    new = run.shim.calls()[before:]
    assert all("-version" in c for c in new)  # no encode, no measurement, no stills


class Small:
    """web-mp4 and web-hls (ultrafast) in a private cache."""

    def __init__(self, tmp: Path, master_file: Path, ffmpeg: str = "ffmpeg") -> None:
        self.release, self.master = make_release(tmp / "release", master_file)
        self.transcoder = Transcoder(tmp / "cache", ffmpeg=ffmpeg)
        self.plan = self.replan(R("web-mp4", preset="ultrafast"), R("web-hls", preset="ultrafast"))

    def replan(self, *requests: RenditionRequest) -> TranscodePlan:
        return self.transcoder.plan(self.release, self.master, {"site": list(requests)})


def test_corrupt_cache_entry_is_rebuilt(tmp_path: Path, master_file: Path) -> None:
    shim = Shim(tmp_path / "bin")
    small = Small(tmp_path, master_file, str(shim.path))
    transcoder, plan = small.transcoder, small.plan
    first = transcoder.run(plan)
    mp4 = first[plan.key_for("site", R("web-mp4", preset="ultrafast"))]
    data = bytearray(mp4.main_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    mp4.main_path.write_bytes(bytes(data))
    replan = small.replan(R("web-mp4", preset="ultrafast"))
    assert replan.items[0].cached  # planning only checks sizes ...
    calls = len(shim.encodes())
    rebuilt = transcoder.run(replan)[mp4.key]  # ... using it verifies checksums
    assert len(shim.encodes()) == calls + 1
    assert sha256_file(rebuilt.main_path) == rebuilt.main_sha256
    assert hashlib.sha256(bytes(data)).hexdigest() != rebuilt.main_sha256
    # a missing file is seen at planning time
    (rebuilt.folder / "video.mp4").unlink()
    assert not small.replan(R("web-mp4", preset="ultrafast")).items[0].cached


def ffmpeg_children() -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            comm = stat.read_text().split("(", 1)[1].rsplit(")", 1)[0]
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and comm == "ffmpeg":
            pids.append(int(stat.parent.name))
    return pids


def test_killed_ffmpeg_leaves_nothing(tmp_path: Path, master_file: Path) -> None:
    small = Small(tmp_path, master_file)
    transcoder, plan = small.transcoder, small.plan
    killed: list[int] = []

    def kill(fraction: float, text: str) -> None:
        if text.startswith("encoding") and not killed:
            killed.extend(ffmpeg_children())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    with pytest.raises(TranscodeError, match="killed by signal 9"):
        transcoder.run(plan, on_progress=kill)
    assert killed
    assert [e for e in cache_entries(tmp_path / "cache") if not e.startswith(TMP_PREFIX)] == []
    assert not any(p.name.startswith(TMP_PREFIX) for p in (tmp_path / "cache").iterdir())
    # and the next run makes them properly
    out = transcoder.run(small.replan(R("web-mp4", preset="ultrafast")))
    assert all(r.folder.parent == tmp_path / "cache" for r in out.values())


def test_stale_work_folder_of_a_dead_process_is_removed(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = cache / f"{TMP_PREFIX}{dead.pid}-abcd"
    (stale / "k").mkdir(parents=True)
    transcoder = Transcoder(cache)
    assert stale.exists()  # planning writes nothing, not even a clean-up
    transcoder.cache.work_dir()
    assert not stale.exists()



def test_wechat_file_over_the_cap_is_reencoded_smaller(tmp_path: Path, master_file: Path) -> None:
    release, master = make_release(tmp_path / "release", master_file)
    transcoder = Transcoder(tmp_path / "cache")
    plan = transcoder.plan(release, master, {"wx": [R("wechat", max_bytes=600_000, preset="ultrafast")]})
    [item] = plan.items
    assert item.request.params["video_kbps"] == 984  # 600 kB * 0.9 over 4 s, less 96 kbps of audio
    job = plan.jobs[item.key]
    work = transcoder.cache.work_dir()
    out = work / item.key / "video.mp4"
    out.parent.mkdir()
    # stand-in for an encode that overshot: the same master at a higher bitrate
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(master_file), "-c:v", "libx264", "-preset",
                    "ultrafast", "-b:v", "1300k", "-c:a", "aac", "-b:a", "96k", str(out)], check=True)
    assert out.stat().st_size > 600_000
    transcoder._shrink(job, master, work, None)
    assert out.stat().st_size <= 600_000
    [(spec, _)] = job.encodes
    assert spec.kbps is not None and 300 <= spec.kbps < 984
    assert streams(out, "video")[0]["height"] == 360


def integrated_loudness(path: Path) -> float:
    err = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-vn", "-af",
                          "ebur128", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    summary = err[err.rindex("Summary:"):]
    return float(summary.split("I:")[1].split("LUFS")[0])


def test_loudness_targets_per_profile(run: Run) -> None:
    assert abs(integrated_loudness(run.master.path) - (-21.8)) < 1  # the master's tone
    assert abs(integrated_loudness(run.get("sb-web", "web-mp4").main_path) - (-14)) < 1
    assert abs(integrated_loudness(run.get("ocmfa-wechat", "wechat").main_path) - (-16)) < 1
    stored = json.loads((run.cache / "loudness" / f"{run.master.sha256}.json").read_text())
    assert abs(stored["input_i"] - (-21.8)) < 1  # one measurement, kept for the next release


def test_profiles_are_typed_and_validated() -> None:
    from publisher.transcode.profiles import get_profile, load_profiles

    profiles = load_profiles()
    assert sorted(profiles) == ["captions", "cover", "poster", "signage", "web-hls", "web-mp4", "wechat",
                                "youtube"]
    assert all(p.version >= 1 and p.description for p in profiles.values())
    hls = get_profile("web-hls")
    with pytest.raises(InputError, match="multiple of gop_seconds"):
        hls.resolve({"segment_seconds": 5})
    with pytest.raises(InputError, match="greater than or equal to 4"):
        hls.resolve({"segment_seconds": 2})
    with pytest.raises(InputError, match="exactly one of crf or video_kbps"):
        get_profile("web-mp4").resolve({"crf": 20})
    signage = get_profile("signage").resolve({"language": "en"})
    assert signage.model_dump()["level"] == "4.1" and signage.model_dump()["audio"] is False


def test_two_workers_sharing_a_cache_encode_once(tmp_path: Path, master_file: Path) -> None:
    import threading

    shim = Shim(tmp_path / "bin")
    release, master = make_release(tmp_path / "release", master_file)
    requests = {"site": [R("web-mp4", preset="ultrafast")]}
    results: list[dict[str, Rendition]] = []

    def worker() -> None:
        transcoder = Transcoder(tmp_path / "cache", ffmpeg=str(shim.path))
        results.append(transcoder.run(transcoder.plan(release, master, requests)))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    assert len(shim.encodes()) == 1  # the second waited for the lock, then found it in the cache


CHILD = """
import os, signal, sys, time
from pathlib import Path
from publisher.models import RenditionRequest as R
from tests.test_transcode import ffmpeg_children, make_release
from publisher.transcode import Transcoder
tmp, master = Path(sys.argv[1]), Path(sys.argv[2])
release, info = make_release(tmp / "release", master)
t = Transcoder(tmp / "cache")
plan = t.plan(release, info, {"site": [R(profile="web-mp4", params={"preset": "ultrafast"})]})
def hold(fraction, text):
    if text.startswith("encoding"):
        [pid] = ffmpeg_children()
        os.kill(pid, signal.SIGSTOP)  # keep it alive until its parent dies
        print(pid, flush=True)
        time.sleep(60)
t.run(plan, on_progress=hold)
"""


def test_killed_publisher_takes_ffmpeg_with_it(tmp_path: Path, master_file: Path) -> None:
    child = subprocess.Popen(["python", "-c", CHILD, str(tmp_path), str(master_file)],
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    assert child.stdout is not None
    pid = int(child.stdout.readline())
    child.kill()
    child.wait()
    stat = Path(f"/proc/{pid}/stat")
    for _ in range(50):
        if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("ffmpeg outlived the killed publisher")
    cache = tmp_path / "cache"
    assert any(p.name.startswith(TMP_PREFIX) for p in cache.iterdir())  # its work folder is left ...
    release, master = make_release(tmp_path / "again", master_file)
    transcoder = Transcoder(cache)
    out = transcoder.run(transcoder.plan(release, master, {"site": [R("web-mp4", preset="ultrafast")]}))
    assert not any(p.name.startswith(TMP_PREFIX) for p in cache.iterdir())  # ... until the next run
    assert [r.folder.parent for r in out.values()] == [cache]
