"""The release's critical path: the master is checked in the encode's own read, and a channel
that links to the others does its own slow work while they publish."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from publisher.contract import Channel, ChannelOptions, Job, register
from publisher.models import Outcome, Release, RemoteStatus, RenditionRequest, State
from publisher.store import Store, sqlite_url
from tests.conftest import Project
from tests.fakes.youtube_server import YouTubeFake
from tests.media import make_master


def _cut(master: Path, tmp: Path, size: str = "640x360") -> None:
    """A master whose moov is at the front (ffprobe is satisfied) but whose data stops at 60 %."""
    full = tmp / "full.mp4"
    make_master(full, size=size)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(full), "-c", "copy", "-movflags", "+faststart",
                    str(master)], check=True)
    data = master.read_bytes()
    master.write_bytes(data[: len(data) * 6 // 10])


def test_a_master_that_fails_in_the_encode_leaves_nothing(project: Callable[[], Project], cli: Any,
                                                          tmp_path: Path) -> None:
    proj = project()
    cache = tmp_path / "cache"
    proj.settings["cache_dir"] = str(cache)
    target = proj.root / "www"
    proj.add_channel("ocmfa-web", {"kind": "website", "target": str(target),
                                   "public_url": "https://www.example.gov.hk/videos/"})
    with YouTubeFake(tmp_path / "yt") as fake:
        fake.write_credentials(proj.root / "secrets" / "yt.json")
        proj.add_channel("yt", {"kind": "youtube", "credentials": "secrets/yt.json", "api_root": fake.url,
                                "ca_bundle": str(fake.certfile), "timeout": 10})
        proj.write()
        master = proj.manifest_path.parent / "master.mp4"
        good = master.read_bytes()
        _cut(master, tmp_path)
        assert cli(proj, "check", proj.manifest_path).exit_code == 2  # check still decodes on its own
        result = cli(proj, "release", proj.manifest_path)
        assert result.exit_code == 2, result.output
        assert "truncated or corrupt" in result.stderr and "master.mp4" in result.stderr
        assert fake.calls("videos.insert") == 0  # nothing sent to YouTube
        assert not target.exists() or not any(p.is_file() for p in target.rglob("*"))
        store = Store(sqlite_url(proj.state_dir))
        assert not store.has_release("consular-protection-2026") and store.publications() == []
        entries = [p.name for p in cache.iterdir()] if cache.exists() else []
        assert [e for e in entries if e not in ("sources", "loudness") and not e.startswith(".")] == []
        assert not any((cache / "sources").glob("*")) and not any((cache / "loudness").glob("*"))

        master.write_bytes(good)  # the export done again: released as the same release, not refused
        again = cli(proj, "release", proj.manifest_path)
        assert again.exit_code == 0, again.output
        rows = {r["channel"]: r for r in json.loads(cli(proj, "status", "--json").stdout)}
        assert rows["yt"]["state"] in ("live", "processing") and rows["ocmfa-web"]["state"] == "live"
        assert fake.calls("videos.insert") == 1


def _youtube_project(proj: Project, fake: YouTubeFake, cache: Path) -> None:
    proj.settings["cache_dir"] = str(cache)
    proj.add_channel("ocmfa-web", {"kind": "website", "target": str(proj.root / "www"),
                                   "public_url": "https://www.example.gov.hk/videos/"})
    fake.write_credentials(proj.root / "secrets" / "yt.json")
    proj.add_channel("yt", {"kind": "youtube", "credentials": "secrets/yt.json", "api_root": fake.url,
                            "ca_bundle": str(fake.certfile), "timeout": 10})
    proj.write()


def _privacy(fake: YouTubeFake) -> list[str]:
    with fake.model.lock:
        return [str(v.status.get("privacyStatus")) for v in fake.model.videos.values() if not v.deleted]


def _release_holding_the_encode(proj: Project, fake: YouTubeFake,
                                flag: Path) -> subprocess.CompletedProcess[str]:
    """``publisher release`` in its own process, its transcode held after the first rendition
    (the master as is) until YouTube has the video; returns the finished process."""
    env = dict(proj.env(), PUBLISHER_PAUSE_AT=f"ready:{flag}", PYTHONPATH=str(Path(__file__).parent.parent))
    proc = subprocess.Popen([sys.executable, "-m", "publisher", "release", str(proj.manifest_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if flag.exists() and (seen or _privacy(fake)):
            seen = seen or _privacy(fake)
            flag.unlink()
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert seen == ["private"], (seen, err)  # what YouTube had while the master was being checked
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_youtube_gets_the_master_private_while_it_is_checked_then_public(
        project: Callable[[], Project], tmp_path: Path) -> None:
    proj = project()
    make_master(proj.manifest_path.parent / "master.mp4", size="1280x720")
    with YouTubeFake(tmp_path / "yt") as fake:
        _youtube_project(proj, fake, tmp_path / "cache")
        done = _release_holding_the_encode(proj, fake, tmp_path / "flag")
        assert done.returncode == 0, done.stderr
        assert _privacy(fake) == ["public"] and fake.calls("videos.insert") == 1


def test_a_master_that_fails_its_check_takes_back_the_private_upload(
        project: Callable[[], Project], tmp_path: Path) -> None:
    proj = project()
    _cut(proj.manifest_path.parent / "master.mp4", tmp_path, size="1280x720")
    with YouTubeFake(tmp_path / "yt") as fake:
        _youtube_project(proj, fake, tmp_path / "cache")
        done = _release_holding_the_encode(proj, fake, tmp_path / "flag")
        assert done.returncode == 2, done.stderr
        assert "truncated or corrupt" in done.stderr
        assert fake.calls("videos.insert") == 1 and fake.live_videos() == []  # sent private, then deleted
        assert not Store(sqlite_url(proj.state_dir)).has_release("consular-protection-2026")
        www = proj.root / "www"
        assert not www.exists() or not any(p.is_file() for p in www.rglob("*"))


class Meeting(ChannelOptions):
    public_url: str = "https://example.gov.hk/"


#: set when the linking channel has started its own work
STARTED = threading.Event()


@register
class Early(Channel):
    """Publishes only once the linking channel has started (the old order, linking channels
    after all the others, would time out here)."""

    kind = "early-page"
    Options = Meeting

    def renditions(self, release: Release) -> list[RenditionRequest]:
        return []

    def publish(self, job: Job) -> Outcome:
        met = STARTED.wait(20)
        return Outcome(state=State.LIVE if met else State.FAILED, url=f"https://example.gov.hk/{self.name}/",
                       note="" if met else "the linking channel had not started")

    def update(self, job: Job) -> Outcome:
        return self.publish(job)

    def withdraw(self, job: Job) -> Outcome:
        return Outcome(state=State.WITHDRAWN)

    def status(self, job: Job) -> RemoteStatus:
        return RemoteStatus(state=State.LIVE)


@register
class Linking(Early):
    kind = "linking-post"
    needs_links: ClassVar[bool] = True

    def publish(self, job: Job) -> Outcome:
        STARTED.set()  # its own slow work (uploads) would go here
        links = job.other_links()
        return Outcome(state=State.LIVE, url="https://example.gov.hk/post/", note=" ".join(sorted(links)))


def test_a_linking_channel_starts_with_the_others_and_gets_their_links(
        project: Callable[[], Project], cli: Any) -> None:
    STARTED.clear()
    proj = project()
    proj.settings["concurrency"] = 3
    for name in ("page-a", "page-b"):
        proj.add_channel(name, {"kind": "early-page"})
    proj.add_channel("post", {"kind": "linking-post"})
    proj.write()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    rows = {r["channel"]: r for r in json.loads(cli(proj, "status", "--json").stdout)}
    assert {n: r["state"] for n, r in rows.items()} == {"page-a": "live", "page-b": "live", "post": "live"}
    assert rows["post"]["note"] == "page-a page-b"


def test_webdav_streams_a_file_in_larger_writes_and_it_arrives_whole(tmp_path: Path) -> None:
    from channels.transports.base import CHUNK
    from channels.transports.webdav import SEND_BLOCK, WebDAVTarget
    from tests.servers.webdav import webdav_server

    data = os.urandom(3 * CHUNK + 12345)
    local = tmp_path / "big.bin"
    local.write_bytes(data)
    with webdav_server(tmp_path / "dav") as dav:
        target = WebDAVTarget(dav.target("site"), username=dav.user, password=dav.password, verify=True,
                              timeout=30, staging=None)
        with target:
            pool = target.session.get_adapter(dav.target("site").replace("webdav", "http"))
            assert pool.poolmanager.connection_pool_kw["blocksize"] == SEND_BLOCK > 16 * 1024
            target.put_file(local, "media/big.bin")
            assert target.sha256("media/big.bin") == hashlib.sha256(data).hexdigest()
        assert (tmp_path / "dav" / "site" / "media" / "big.bin").read_bytes() == data
