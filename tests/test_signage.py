"""The signage adapter on a real folder (and a real WebDAV server): playlists, sums, embargo,
expiry, withdraw, resume after a kill, and a player reading while all that happens."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels.signage.adapter import Signage
from channels.signage.options import SignageOptions
from publisher.contract import Job, Journal
from publisher.errors import Rejected
from publisher.models import FileInfo, Release, Rendition, SignageSpec
from tests.conftest import Project
from tests.renditions import make_job

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
ITEM_KEYS = {"id", "file", "sha256", "bytes", "duration", "start", "end", "title", "language"}


def make_signage(folder: Path, pattern: str = "testsrc2", seconds: float = 1.0) -> Rendition:
    """A real 1080p-shaped (scaled down for speed) silent MP4, as the 'signage' rendition."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "video.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"{pattern}=size=320x180:rate=25:duration={seconds}", "-an", "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)],
                   check=True)
    data = out.read_bytes()
    return Rendition(key=f"signage-{pattern}", profile="signage", folder=folder, main="video.mp4",
                     duration=seconds, width=320, height=180,
                     files=[FileInfo(name="video.mp4", bytes=len(data),
                                     sha256=hashlib.sha256(data).hexdigest())])


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendition]:
    base = tmp_path_factory.mktemp("signage-media")
    return {p: make_signage(base / p, p) for p in ("testsrc2", "smptebars", "rgbtestsrc")}


def release(tmp: Path, rid: str = "consular-protection-2026", **kw: Any) -> Release:
    fields: dict[str, Any] = {
        "id": rid, "manifest_path": tmp / "release.yaml", "master": tmp / "master.mp4",
        "languages": ["zh-Hant", "en"], "title": {"zh-Hant": f"領事保護 {rid}", "en": "Consular Protection"},
        "captions": {"zh-Hant": tmp / "zh-Hant.vtt"},
    }
    fields.update(kw)
    return Release(**fields)


def channel(tmp: Path, sites: list[str] | None = None, **options: Any) -> Signage:
    opts = SignageOptions(kind="signage", target=str(tmp / "share"),
                          sites=sites or ["immd-hq", "lok-ma-chau"], **options)
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    return Signage("screens", opts, config_dir=tmp, state_dir=state)


def job(rel: Release, r: Rendition, journal: Journal | None = None, now: datetime = NOW, **kw: Any) -> Job:
    return make_job(release=rel, journal=journal or Journal(), renditions={"signage": r}, now=lambda: now,
                    **kw)


def playlist(share: Path, site: str) -> dict[str, Any]:
    return dict(json.loads((share / site / "playlist.json").read_text(encoding="utf-8")))


def sums(share: Path, site: str) -> dict[str, str]:
    lines = (share / site / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_publish_writes_media_sums_and_both_playlists(tmp_path: Path, media: dict[str, Rendition]) -> None:
    ch = channel(tmp_path)
    r = media["testsrc2"]
    j = job(release(tmp_path), r)
    out = ch.publish(j)
    share = tmp_path / "share"
    assert out.state == "live" and out.checksum == r.main_sha256
    assert out.remote_id == "consular-protection-2026.mp4"
    assert out.url.endswith("/immd-hq/playlist.json")
    for site in ("immd-hq", "lok-ma-chau"):
        doc = playlist(share, site)
        assert set(doc) == {"version", "site", "generated_at", "items"} and doc["version"] == 1
        assert doc["site"] == site and doc["generated_at"] == NOW.isoformat()
        [item] = doc["items"]
        assert set(item) == ITEM_KEYS
        assert item["file"] == "consular-protection-2026.mp4" and item["sha256"] == r.main_sha256
        assert item["bytes"] == r.files[0].bytes and item["duration"] == 1.0 and item["end"] is None
        assert item["title"] == "領事保護 consular-protection-2026" and item["language"] == "zh-Hant"
        assert item["start"] == NOW.isoformat()  # no publish_at, no signage.start: from now on
        assert sums(share, site) == {item["file"]: item["sha256"]}  # media only
        assert sha(share / site / item["file"]) == item["sha256"]
        m3u = (share / site / "playlist.m3u8").read_text(encoding="utf-8").splitlines()
        assert m3u == ["#EXTM3U", "#EXTINF:1.000,領事保護 consular-protection-2026", item["file"]]
        assert sorted(os.listdir(share / site)) == sorted(
            ["SHA256SUMS", "playlist.json", "playlist.m3u8", item["file"]])
    assert ch.renditions(j.release)[0].params == {"language": "zh-Hant"}
    # publishing again changes nothing, not even generated_at
    before = {p: p.stat().st_mtime_ns for p in share.rglob("*")}
    later = job(j.release, r, j.journal, now=NOW + timedelta(hours=1))
    assert ch.publish(later) == out
    assert {p: p.stat().st_mtime_ns for p in share.rglob("*")} == before
    st = ch.status(later)
    assert st.state == "live" and not st.drift and st.checksum == r.main_sha256


def test_embargo_stages_privately_then_goes_live_by_rename(
        tmp_path: Path, media: dict[str, Rendition]) -> None:
    ch = channel(tmp_path)
    at = NOW + timedelta(days=1)
    rel = release(tmp_path, publish_at=at)
    j = job(rel, media["testsrc2"], stage_only=True)
    assert ch.publish(j).state == "scheduled"
    share = tmp_path / "share"
    assert not (share / "immd-hq").exists()  # players see nothing
    staging = share / j.journal.get("staging")
    assert stat.S_IMODE(staging.stat().st_mode) == 0o700 and staging.parent.name == ".publisher-staging"
    assert sorted(os.listdir(staging)) == ["immd-hq.mp4", "lok-ma-chau.mp4"]
    assert ch.status(j).state == "scheduled"
    inode = (staging / "immd-hq.mp4").stat().st_ino
    out = ch.publish(job(rel, media["testsrc2"], j.journal, now=at))
    assert out.state == "live"
    assert (share / "immd-hq" / "consular-protection-2026.mp4").stat().st_ino == inode  # a rename
    assert not staging.exists()
    assert playlist(share, "immd-hq")["items"][0]["start"] == at.isoformat()


def test_withdraw_removes_item_then_file_and_keeps_others(
        tmp_path: Path, media: dict[str, Rendition]) -> None:
    ch = channel(tmp_path)
    share = tmp_path / "share"
    a = job(release(tmp_path, "release-a"), media["testsrc2"])
    b = job(release(tmp_path, "release-b", signage=SignageSpec(start=NOW - timedelta(hours=1))),
            media["smptebars"])
    ch.publish(a)
    ch.publish(b)
    assert [i["id"] for i in playlist(share, "immd-hq")["items"]] == ["release-b", "release-a"]  # by start
    assert ch.withdraw(a).state == "withdrawn"
    for site in ("immd-hq", "lok-ma-chau"):
        assert [i["id"] for i in playlist(share, site)["items"]] == ["release-b"]
        assert sums(share, site) == {"release-b.mp4": media["smptebars"].main_sha256}
        assert not (share / site / "release-a.mp4").exists()
    assert ch.status(a).state == "withdrawn"
    assert ch.withdraw(a).state == "withdrawn"  # twice is fine
    assert ch.status(b).state == "live"


def test_sites_future_start_and_expiry(tmp_path: Path, media: dict[str, Rendition]) -> None:
    ch = channel(tmp_path)
    share = tmp_path / "share"
    later = job(release(tmp_path, "later", signage=SignageSpec(start=NOW + timedelta(hours=2),
                                                                 sites=["lok-ma-chau"])), media["smptebars"])
    ch.publish(later)
    assert not (share / "immd-hq").exists()
    assert [i["id"] for i in playlist(share, "lok-ma-chau")["items"]] == ["later"]
    assert "later.mp4" not in (share / "lok-ma-chau" / "playlist.m3u8").read_text()  # not on air yet
    short = job(release(tmp_path, "short", signage=SignageSpec(end=NOW + timedelta(hours=1))),
                media["testsrc2"])
    ch.publish(short)
    assert ch.prune(NOW) == []
    gone = ch.prune(NOW + timedelta(hours=3))
    assert sorted(gone) == ["immd-hq/short.mp4", "lok-ma-chau/short.mp4"]
    assert [i["id"] for i in playlist(share, "lok-ma-chau")["items"]] == ["later"]
    assert not (share / "immd-hq" / "short.mp4").exists()
    assert "later.mp4" in (share / "lok-ma-chau" / "playlist.m3u8").read_text()
    st = ch.status(job(short.release, media["testsrc2"], short.journal, now=NOW + timedelta(hours=3)))
    assert st.state == "withdrawn" and "end" in st.detail
    with pytest.raises(Rejected, match="has passed"):
        ch.publish(job(short.release, media["testsrc2"], Journal(), now=NOW + timedelta(hours=3)))


def test_update_new_content_and_title(tmp_path: Path, media: dict[str, Rendition]) -> None:
    ch = channel(tmp_path, sites=["immd-hq"])
    share = tmp_path / "share"
    j = job(release(tmp_path), media["testsrc2"])
    ch.publish(j)
    new = release(tmp_path, title={"zh-Hant": "領事保護（更新）", "en": "x"})
    out = ch.update(job(new, media["rgbtestsrc"], j.journal))
    assert out.checksum == media["rgbtestsrc"].main_sha256
    [item] = playlist(share, "immd-hq")["items"]
    assert item["title"] == "領事保護（更新）" and item["sha256"] == media["rgbtestsrc"].main_sha256
    assert sha(share / "immd-hq" / item["file"]) == item["sha256"] == sums(share, "immd-hq")[item["file"]]
    assert not (share / ".publisher-staging").exists() or not os.listdir(share / ".publisher-staging")
    (share / "immd-hq" / item["file"]).write_bytes(b"tampered")
    st = ch.status(job(new, media["rgbtestsrc"], j.journal))
    assert st.drift == ["immd-hq: consular-protection-2026.mp4 does not match its sums"]


def test_validate(tmp_path: Path) -> None:
    ch = channel(tmp_path, sites=["immd-hq", "../etc"])
    rel = release(tmp_path, publish_at=NOW,
                  signage=SignageSpec(end=NOW - timedelta(days=1), sites=["nowhere"]))
    fields = sorted(p.field for p in ch.validate(rel))
    assert fields == ["channels.screens.sites", "signage.end", "signage.sites"]
    assert all(p.fix for p in ch.validate(rel))


def test_a_missing_sftp_key_is_found_offline(project: Callable[[], Project], cli: Any) -> None:
    """Signage checks its target like the other file channels: `publisher channels` shows the key
    file missing, and `publisher check` names it, before anything is sent."""
    proj = project()
    (proj.root / "secrets").mkdir()
    (proj.root / "secrets" / "known_hosts").write_text("")
    proj.add_channel("screens", {"kind": "signage", "target": "sftp://signage@127.0.0.1:9/screens",
                                 "key_file": "secrets/screens.key", "known_hosts": "secrets/known_hosts",
                                 "sites": ["hall"]})
    proj.write()
    listed = cli(proj, "channels")
    assert listed.exit_code == 2, listed.output
    assert "missing" in next(line for line in listed.output.splitlines() if "screens" in line)
    checked = cli(proj, "check", proj.manifest_path)
    assert checked.exit_code == 2
    said = " ".join(checked.output.split())
    assert "screens.key: channels.screens.key_file: the file does not exist" in said


class Killed(BaseException):
    pass


def test_resume_after_kill_at_every_checkpoint(tmp_path: Path, media: dict[str, Rendition]) -> None:
    saves: list[dict[str, Any]] = []
    probe = channel(tmp_path / "probe")
    probe.publish(job(release(tmp_path), media["testsrc2"], Journal(save=saves.append)))
    for kill_at in range(1, len(saves) + 1):
        root = tmp_path / f"k{kill_at}"
        ch = channel(root)
        n = 0
        kept: dict[str, Any] = {}

        def save(data: dict[str, Any], kill_at: int = kill_at) -> None:
            nonlocal n, kept
            n += 1
            if n == kill_at:
                raise Killed
            kept = data
        with pytest.raises(Killed):
            ch.publish(job(release(tmp_path), media["testsrc2"], Journal(save=save)))
        out = ch.publish(job(release(tmp_path), media["testsrc2"], Journal(kept)))
        assert out.state == "live", kill_at
        for site in ("immd-hq", "lok-ma-chau"):
            assert [i["id"] for i in playlist(root / "share", site)["items"]] == ["consular-protection-2026"]
            assert sorted(os.listdir(root / "share" / site)) == [
                "SHA256SUMS", "consular-protection-2026.mp4", "playlist.json", "playlist.m3u8"], kill_at


def test_reader_never_sees_missing_or_mismatched_file(tmp_path: Path, media: dict[str, Rendition]) -> None:
    """A player polls the share in a loop while releases, updates and withdrawals run."""
    ch = channel(tmp_path, sites=["immd-hq"])
    site = tmp_path / "share" / "immd-hq"
    stop = threading.Event()
    errors: list[str] = []
    reads = [0]

    def snap(name: str) -> tuple[int, int, bytes]:
        st = os.stat(site / name)
        return st.st_ino, st.st_mtime_ns, (site / name).read_bytes()

    def player() -> None:
        while not stop.is_set():
            try:
                before, m3u_before = snap("playlist.json"), snap("playlist.m3u8")
            except FileNotFoundError:
                continue  # nothing published yet
            doc = json.loads(before[2])  # never a torn file
            listed = sums(site.parent, "immd-hq")
            problems = []
            for item in doc["items"]:
                path = site / item["file"]
                if not path.exists():
                    problems.append(f"missing {item['file']}")
                elif sha(path) != item["sha256"] or listed.get(item["file"]) != item["sha256"]:
                    problems.append(f"mismatch {item['file']}")
            if problems and snap("playlist.json") == before:
                errors.extend(problems)  # the playlist still says so: a real inconsistency
            missing = [f"m3u8 lists missing {line}" for line in m3u_before[2].decode().splitlines()
                       if line and not line.startswith("#") and not (site / line).exists()]
            if missing and snap("playlist.m3u8") == m3u_before:
                errors.extend(missing)
            reads[0] += 1

    reader = threading.Thread(target=player)
    reader.start()
    try:
        journals = {rid: Journal() for rid in ("r-one", "r-two", "r-three")}
        patterns = list(media)
        for round_ in range(4):
            for k, (rid, jr) in enumerate(journals.items()):
                r = media[patterns[(k + round_) % 3]]  # new content under the same name each round
                ch.publish(job(release(tmp_path, rid), r, jr))
            ch.withdraw(job(release(tmp_path, "r-two"), media["testsrc2"], journals["r-two"]))
        ch.withdraw(job(release(tmp_path, "r-one"), media["testsrc2"], journals["r-one"]))
        time.sleep(0.05)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert reads[0] > 20
    assert [i["id"] for i in json.loads((site / "playlist.json").read_bytes())["items"]] == ["r-three"]


def test_webdav_target(tmp_path: Path, media: dict[str, Rendition], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.servers.webdav import webdav_server

    root = tmp_path / "dav"
    root.mkdir()
    with webdav_server(root) as dav:
        monkeypatch.setenv("SIGNAGE_DAV_PASSWORD", dav.password)
        ch = channel(tmp_path, sites=["immd-hq"])
        ch.options = SignageOptions(kind="signage", target=dav.target("signage"), username=dav.user,
                                    password_env="SIGNAGE_DAV_PASSWORD", sites=["immd-hq"])
        j = job(release(tmp_path), media["testsrc2"])
        assert ch.publish(j).state == "live"
        doc = json.loads((root / "signage" / "immd-hq" / "playlist.json").read_bytes())
        assert doc["items"][0]["sha256"] == sha(root / "signage" / "immd-hq" / "consular-protection-2026.mp4")
        assert ch.status(j).state == "live" and not ch.status(j).drift
        ch.withdraw(j)
        assert json.loads((root / "signage" / "immd-hq" / "playlist.json").read_bytes())["items"] == []
        assert not (root / "signage" / "immd-hq" / "consular-protection-2026.mp4").exists()


def test_sftp_target_with_embargo(tmp_path: Path, media: dict[str, Rendition]) -> None:
    from tests.servers.sftp import sftp_server

    root = tmp_path / "sftp"
    with sftp_server(root, tmp_path / "keys") as srv:
        ch = channel(tmp_path, sites=["immd-hq", "lok-ma-chau"])
        ch.options = SignageOptions(kind="signage", target=srv.target("signage"), key_file=str(srv.key_file),
                                    known_hosts=str(srv.known_hosts), sites=["immd-hq", "lok-ma-chau"])
        at = NOW + timedelta(hours=1)
        j = job(release(tmp_path, publish_at=at), media["testsrc2"], stage_only=True)
        assert ch.publish(j).state == "scheduled"
        assert not (root / "signage" / "immd-hq").exists()
        assert ch.publish(job(j.release, media["testsrc2"], j.journal, now=at)).state == "live"
        for site in ("immd-hq", "lok-ma-chau"):
            [item] = playlist(root / "signage", site)["items"]
            assert sha(root / "signage" / site / item["file"]) == item["sha256"]
            assert sums(root / "signage", site) == {item["file"]: item["sha256"]}
        assert ch.status(j).state == "live" and not ch.status(j).drift
        ch.withdraw(j)
        assert playlist(root / "signage", "immd-hq")["items"] == []
        assert not (root / "signage" / "lok-ma-chau" / "consular-protection-2026.mp4").exists()


def test_concurrent_releases_to_one_site_lose_no_item(tmp_path: Path, media: dict[str, Rendition]) -> None:
    """Separate channel objects (as separate processes would be) publish at once: the playlist
    lock keeps every read-edit-write whole."""
    rids = [f"release-{n}" for n in range(6)]
    failures: list[BaseException] = []

    def run(rid: str) -> None:
        try:
            channel(tmp_path, sites=["immd-hq"]).publish(job(release(tmp_path, rid), media["testsrc2"]))
        except BaseException as exc:  # reported below
            failures.append(exc)
    threads = [threading.Thread(target=run, args=(rid,)) for rid in rids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    share = tmp_path / "share"
    assert sorted(i["id"] for i in playlist(share, "immd-hq")["items"]) == rids
    assert sorted(sums(share, "immd-hq")) == [f"{rid}.mp4" for rid in rids]
