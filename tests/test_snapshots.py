"""What was checked is what is published: a master, caption file or thumbnail replaced after
``check``, after approval, or in the middle of a ``release`` run never reaches a channel.

``release`` copies each source into the rendition cache (``sources/<sha256><suffix>``, read-only)
while hashing it, and everything after reads the copy. The mid-run swap uses the real CLI in a
child process, paused at ``PUBLISHER_PAUSE_AT=checked`` (after hashing, before the encode).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from publisher.engine.engine import Engine
from publisher.errors import InputError
from publisher.inputs.config import load_config
from publisher.inputs.media import probe_master
from publisher.inputs.snapshots import Snapshots
from publisher.models import Release, RenditionRequest
from publisher.store import Store, sqlite_url
from publisher.transcode import Transcoder
from tests.conftest import Project
from tests.media import make_master

ROOT = Path(__file__).resolve().parent.parent
SWAPPED_SRT = "1\n00:00:00,500 --> 00:00:02,000\nSWAPPED CAPTION\n"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(cache: Path) -> list[str]:
    """The cache's files (renditions and snapshots)."""
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*")
                  if p.is_file() and p.name != ".lock")


def website(proj: Project) -> Path:
    target = proj.root / "www"
    proj.add_channel("web", {"kind": "website", "target": str(target),
                             "public_url": "https://www.example.gov.hk/videos/"})
    return target


def red_video(path: Path, size: str = "640x360", seconds: float = 4) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=red:size={size}:rate=25:"
                    f"duration={seconds}", "-f", "lavfi", "-i", f"sine=frequency=300:duration={seconds}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-shortest", str(path)], check=True)
    return path


def red_image(path: Path) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:size=1280x720",
                    "-frames:v", "1", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def swapped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Other bytes for each source: a red master, other captions, a red thumbnail."""
    folder = tmp_path_factory.mktemp("swapped")
    return {"master": red_video(folder / "red.mp4").read_bytes(), "captions.en": SWAPPED_SRT.encode(),
            "thumbnail": red_image(folder / "red.png").read_bytes()}


def source_file(proj: Project, which: str) -> Path:
    folder = proj.manifest_path.parent
    return {"master": folder / "master.mp4", "captions.en": folder / "subs" / "en.srt",
            "thumbnail": folder / "poster.png"}[which]


def rgb_mean(path: Path, at: float | None = None) -> tuple[float, float, float]:
    seek = ["-ss", str(at)] if at is not None else []
    raw = subprocess.run(["ffmpeg", "-v", "error", *seek, "-i", str(path), "-frames:v", "1", "-vf",
                          "scale=64:36", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
                         check=True, capture_output=True, timeout=60).stdout
    n = len(raw) // 3
    return (sum(raw[0::3]) / n, sum(raw[1::3]) / n, sum(raw[2::3]) / n)


def is_red(color: tuple[float, float, float]) -> bool:
    r, g, b = color
    return r > 200 and g < 40 and b < 40


# --- approval binds to bytes ------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["master", "captions.en", "thumbnail"])
def test_file_replaced_after_approval_is_refused(project: Callable[[], Project], cli: Any,
                                                 swapped: dict[str, bytes], which: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    proj = project()
    target = website(proj)
    proj.settings["require_approval"] = True
    proj.write()
    monkeypatch.setenv("LOGNAME", "approver")  # four eyes: one person approves, another releases
    assert cli(proj, "approve", proj.manifest_path).exit_code == 0
    monkeypatch.setenv("LOGNAME", "publisher")
    path = source_file(proj, which)
    approved = path.read_bytes()
    path.write_bytes(swapped[which])  # new bytes, same path
    cache = Path(proj.settings["cache_dir"])
    before = listing(cache)
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 2, result.output
    assert f"{path}: {which}: changed since approver approved it" in result.output, result.output
    assert listing(cache) == before  # no rendition, no snapshot of the unapproved bytes
    assert not target.exists()
    assert Store(sqlite_url(proj.state_dir)).publications() == []
    path.write_bytes(approved)  # the approved bytes again: the release runs
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    rid = proj.manifest["id"]
    assert "Travel safely." in (target / rid / "captions" / "en.vtt").read_text(encoding="utf-8")
    assert not is_red(rgb_mean(target / rid / "poster.jpg"))
    assert not is_red(rgb_mean(target / rid / "video.mp4", 1))


def paused_after_check(proj: Project, verb: str, flag: Path,
                       meanwhile: Callable[[], None]) -> tuple[int, str]:
    """``publisher VERB manifest`` in a child process held at its "checked" pause point while
    ``meanwhile`` runs; its exit code and output."""
    env = dict(proj.env(), PUBLISHER_PAUSE_AT=f"checked:{flag}")
    child = subprocess.Popen([sys.executable, "-m", "publisher", verb, str(proj.manifest_path)],
                             env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not flag.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), f"{verb} never reached its pause point"
        meanwhile()
        flag.unlink()
        output, _ = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, output


# --- a swap in the middle of a run ----------------------------------------------------------------
def test_files_replaced_mid_run_are_not_what_is_published(project: Callable[[], Project], tmp_path: Path,
                                                          swapped: dict[str, bytes]) -> None:
    proj = project()
    target = website(proj)
    proj.settings["cache_dir"] = str(tmp_path / "cache")  # its own cache: the encode really reads
    proj.write()
    checked = {w: source_file(proj, w).read_bytes() for w in swapped}

    def swap() -> None:  # everything is hashed and checked; nothing encoded yet
        for which, data in swapped.items():
            source_file(proj, which).write_bytes(data)
        assert not (target / proj.manifest["id"]).exists()

    code, output = paused_after_check(proj, "release", tmp_path / "paused", swap)
    assert code == 0, output
    rid = proj.manifest["id"]
    page = target / rid
    vtt = (page / "captions" / "en.vtt").read_text(encoding="utf-8")
    assert "Travel safely." in vtt and "SWAPPED" not in vtt
    assert not is_red(rgb_mean(page / "video.mp4", 1.0))
    assert not is_red(rgb_mean(page / "poster.jpg"))
    assert is_red(rgb_mean(source_file(proj, "master"), 1.0))  # the swap did happen
    store = Store(sqlite_url(proj.state_dir))
    master = store.get_master(rid)
    assert master is not None and master.sha256 == hashlib.sha256(checked["master"]).hexdigest()
    hashes = store.release_hashes(rid)
    assert hashes["captions.en"] == hashlib.sha256(checked["captions.en"]).hexdigest()
    assert hashes["thumbnail"] == hashlib.sha256(checked["thumbnail"]).hexdigest()
    sources = tmp_path / "cache" / "sources"
    assert stat.S_IMODE(sources.stat().st_mode) == 0o700
    assert sorted(p.name for p in sources.iterdir()) == sorted(
        hashlib.sha256(data).hexdigest() + suffix
        for data, suffix in ((checked["master"], ".mp4"), (checked["captions.en"], ".srt"),
                             (checked["thumbnail"], ".png"),
                             ((proj.manifest_path.parent / "subs" / "zh-Hant.vtt").read_bytes(), ".vtt"),
                             ((proj.manifest_path.parent / "subs" / "zh-Hans.srt").read_bytes(), ".srt")))
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o400 for p in sources.iterdir())
    published = json.loads((page / "release.json").read_text(encoding="utf-8"))
    assert published  # the release's record was written from the checked copies


# --- the snapshots themselves -----------------------------------------------------------------------
def test_a_source_is_copied_once_read_only_and_never_trusted_when_damaged(tmp_path: Path) -> None:
    original = tmp_path / "Master.MP4"
    first, second = os.urandom(3 << 20), os.urandom(3 << 20)
    original.write_bytes(first)
    folder = tmp_path / "cache" / "sources"
    snaps = Snapshots(folder)
    taken = snaps.take(original)
    assert taken.path == folder / f"{hashlib.sha256(first).hexdigest()}.mp4"
    assert taken.path.read_bytes() == first and snaps.created == [taken.path]
    assert stat.S_IMODE(taken.path.stat().st_mode) == 0o400
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    inode = taken.path.stat().st_ino
    again = Snapshots(folder)
    assert again.take(original).path == taken.path and again.created == []  # nothing copied
    assert taken.path.stat().st_ino == inode
    original.write_bytes(second)  # another master gets its own copy; the first stays
    other = again.take(original)
    assert other.sha256 == hashlib.sha256(second).hexdigest() and taken.path.read_bytes() == first
    # a damaged copy (same size) is found out and replaced, never used
    taken.path.chmod(0o600)
    taken.path.write_bytes(second)
    original.write_bytes(first)
    assert Snapshots(folder).take(original).path.read_bytes() == first
    # a refused release leaves none of the copies it made
    third = Snapshots(folder)
    original.write_bytes(b"unapproved")
    made = third.take(original).path
    third.discard_new()
    assert not made.exists() and taken.path.exists()


def test_later_runs_read_the_recorded_bytes_or_refuse(project: Callable[[], Project], cli: Any,
                                                      swapped: dict[str, bytes]) -> None:
    proj = project()
    website(proj)
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    rid = proj.manifest["id"]
    engine = Engine(load_config(proj.config_path), Store(sqlite_url(proj.state_dir)), proj.state_dir)
    release, master = engine.store.get_release(rid), engine.store.get_master(rid)
    assert release is not None and master is not None
    path = source_file(proj, "master")
    checked = path.read_bytes()
    path.write_bytes(swapped["master"])  # an embargo, retry or repeat later still gets the checked bytes
    work, work_master = engine.checked(release, master)
    assert work.master == work_master.path != path and sha(work.master) == master.sha256
    assert work.captions["en"] != release.captions["en"] and work.thumbnail != release.thumbnail
    work.master.unlink()  # its copy gone (another machine's cache) and the file changed: refused
    with pytest.raises(InputError) as refused:
        engine.checked(release, master)
    assert str(path) in str(refused.value) and "changed after it was checked" in str(refused.value)
    assert hashlib.sha256(swapped["master"]).hexdigest() not in str(sorted(work.master.parent.iterdir()))
    path.write_bytes(checked)  # the checked bytes back: copied again
    again, _ = engine.checked(release, master)
    assert again.master == work.master and sha(again.master) == master.sha256


def test_youtube_gets_the_snapshot_as_is(tmp_path: Path) -> None:
    original = make_master(tmp_path / "master.mp4", seconds=1, size="1280x720")
    source = Snapshots(tmp_path / "cache" / "sources").take(original)
    master = probe_master(source.path, sha256=source.sha256)
    release = Release(id="passthrough-test", manifest_path=tmp_path / "release.yaml", master=source.path,
                      languages=["en"], title={"en": "x"})
    transcoder = Transcoder(tmp_path / "cache")
    plan = transcoder.plan(release, master, {"yt": [RenditionRequest(profile="youtube")]})
    [rendition] = transcoder.run(plan).values()
    assert rendition.passthrough and rendition.main_path == source.path
    assert rendition.main_sha256 == sha(original)
