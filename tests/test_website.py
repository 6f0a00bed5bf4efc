"""The website channel on a folder, WebDAV and SFTP target, driven directly with contract.Job."""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels.website.adapter import Website
from channels.website.options import WebsiteOptions
from publisher.contract import Journal
from publisher.errors import Transient
from publisher.models import Publication, Rendition
from tests.renditions import job, make_release, remuxed, session_renditions
from tests.servers import TARGET_KINDS, TargetSpec, target_spec

PUBLIC = "https://www.example.gov.hk/videos/"
RID = "consular-protection-2026"


def website(spec: TargetSpec, tmp: Path, **extra: Any) -> Website:
    opts = WebsiteOptions.model_validate({"kind": "website", **spec.options, "public_url": PUBLIC,
                                          "site_title": "Security Bureau videos", **extra})
    state = tmp / "state"
    state.mkdir(exist_ok=True)
    return Website("sb-web", opts, config_dir=tmp, state_dir=state)


@pytest.fixture(scope="session")
def web_renditions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendition]:
    return session_renditions(tmp_path_factory)


@pytest.fixture(params=TARGET_KINDS)
def spec(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[TargetSpec]:
    with target_spec(request.param, tmp_path) as s:
        for k, v in s.env.items():
            monkeypatch.setenv(k, v)
        yield s


@pytest.fixture
def folder_spec(tmp_path: Path) -> Iterator[TargetSpec]:
    with target_spec("folder", tmp_path) as s:
        yield s


def sha256sum_check(folder: Path) -> None:
    """The coreutils tool itself agrees with SHA256SUMS."""
    subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=folder, check=True)


def title_of(page: Path) -> str:
    m = re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8"), re.S)
    assert m
    return html.unescape(m.group(1))


def json_ld(page: Path) -> dict[str, Any]:
    text = page.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/ld\+json">(.*?)</script>', text, re.S)
    assert m, "no JSON-LD block (or it was closed early by user text)"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def staging_leftovers(disk: Path) -> list[str]:
    staging = disk / ".publisher-staging"
    return sorted(os.listdir(staging)) if staging.exists() else []


def test_publish_layout_pages_and_sums_on_every_target(spec: TargetSpec, tmp_path: Path,
                                                      web_renditions: dict[str, Rendition]) -> None:
    site = website(spec, tmp_path)
    release = make_release(tmp_path)
    out = site.publish(job(release, web_renditions))
    assert out.state == "live"
    assert out.remote_id == f"{RID}/" and out.url == f"{PUBLIC}{RID}/"
    assert out.checksum == web_renditions["web-mp4"].main_sha256
    folder = spec.disk / RID
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == sorted(
        ["video.mp4", "poster.jpg", "SHA256SUMS", "release.json", "index.html", "index.zh-Hant.html",
         "index.zh-Hans.html", "captions/en.vtt", "captions/zh-Hant.vtt", "captions/zh-Hans.vtt"]
        + [f"hls/{f.name}" for f in web_renditions["web-hls"].files])
    sha256sum_check(folder)
    assert (folder / "video.mp4").read_bytes() == web_renditions["web-mp4"].main_path.read_bytes()
    assert staging_leftovers(spec.disk) == []
    # the site index lists the release, and was written without leaving temp files
    index = (spec.disk / "index.html").read_text(encoding="utf-8")
    assert f'href="{RID}/"' in index and "領事保護" in index and "Security Bureau videos" in index
    assert "&lt;Travel&gt;" in index and "<Travel>" not in index
    assert [n for n in os.listdir(spec.disk) if n.endswith(".tmp")] == []
    # status agrees, with no drift
    st = site.status(job(release, {}))
    assert (st.state, st.checksum, st.drift) == ("live", out.checksum, [])


def test_player_page_content_and_escaping(folder_spec: TargetSpec, tmp_path: Path,
                                          web_renditions: dict[str, Rendition]) -> None:
    release = make_release(tmp_path)
    website(folder_spec, tmp_path).publish(job(release, web_renditions))
    folder = folder_spec.disk / RID
    en = (folder / "index.html").read_text(encoding="utf-8")
    # user text is escaped: the title's <Travel> is text, the description cannot close the script
    assert "<Travel>" not in en and "&lt;Travel&gt; &amp; &#34;Safety&#34;" in en
    assert "<script>alert(1)</script>" not in en
    assert title_of(folder / "index.html") == release.title["en"]
    ld = json_ld(folder / "index.html")
    assert ld["@type"] == "VideoObject" and ld["name"] == release.title["en"]
    assert ld["description"] == release.description["en"]  # round-trips exactly, script text included
    assert ld["contentUrl"] == f"{PUBLIC}{RID}/video.mp4" and ld["duration"] == "PT4S"
    assert '<html lang="en">' in en and 'name="viewport"' in en
    assert '<source src="hls/master.m3u8" type="application/x-mpegURL">' in en
    assert '<source src="video.mp4" type="video/mp4">' in en and 'poster="poster.jpg"' in en
    assert f'<meta property="og:image" content="{PUBLIC}{RID}/poster.jpg">' in en
    assert "http" not in "".join(re.findall(r"<script[^>]*src=[^>]*>", en))  # no third-party scripts
    pattern = r'<track kind="subtitles" src="captions/([^"]+)\.vtt" srclang="([^"]+)"[^>]*?( default)?>'
    tracks = re.findall(pattern, en)
    assert [(t[1], bool(t[2])) for t in tracks] == [("en", True), ("zh-Hant", False), ("zh-Hans", False)]
    hant = (folder / "index.zh-Hant.html").read_text(encoding="utf-8")
    assert '<html lang="zh-Hant">' in hant and title_of(folder / "index.zh-Hant.html") == "領事保護"
    assert re.search(r'srclang="zh-Hant" label="繁體中文" default>', hant)
    # the language switcher links every page, marking the current one
    for page in ("index.html", "index.zh-Hant.html", "index.zh-Hans.html"):
        text = (folder / page).read_text(encoding="utf-8")
        assert 'href="index.html"' in text and 'href="index.zh-Hans.html"' in text
        assert text.count('aria-current="page"') == 1
    assert json.loads((folder / "release.json").read_text(encoding="utf-8"))["title"]["zh-Hans"] == "领事保护"


def test_republish_is_a_noop(folder_spec: TargetSpec, tmp_path: Path,
                             web_renditions: dict[str, Rendition]) -> None:
    site, release, journal = website(folder_spec, tmp_path), make_release(tmp_path), Journal()
    first = site.publish(job(release, web_renditions, journal))
    video = folder_spec.disk / RID / "video.mp4"
    before = {p: p.stat().st_ino for p in (folder_spec.disk / RID).rglob("*")}
    mtime = video.stat().st_mtime_ns
    again = site.publish(job(release, web_renditions, journal))
    assert again == first
    assert {p: p.stat().st_ino for p in (folder_spec.disk / RID).rglob("*")} == before
    assert video.stat().st_mtime_ns == mtime
    # a fresh journal (state lost) still finds it live and sends nothing
    assert site.publish(job(release, web_renditions, Journal())).state == "live"
    assert video.stat().st_ino == before[video]


def test_embargo_stages_privately_then_goes_live_by_rename(folder_spec: TargetSpec, tmp_path: Path,
                                                           web_renditions: dict[str, Rendition]) -> None:
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    release = make_release(tmp_path, publish_at=at)
    site, journal = website(folder_spec, tmp_path), Journal()
    early = lambda: at - timedelta(hours=1)  # noqa: E731
    out = site.publish(job(release, web_renditions, journal, stage_only=True, now=early))
    assert out.state == "scheduled" and out.url == f"{PUBLIC}{RID}/"
    assert not (folder_spec.disk / RID).exists()
    staging = folder_spec.disk / journal.get("staging")
    assert staging.parent.name == ".publisher-staging"
    assert staging.stat().st_mode & 0o777 == 0o700 and staging.parent.stat().st_mode & 0o777 == 0o700
    sha256sum_check(staging)
    staged_inode = (staging / "video.mp4").stat().st_ino
    index = folder_spec.disk / "index.html"
    assert not index.exists() or "領事保護" not in index.read_text(encoding="utf-8")
    # a caller that forgets stage_only before publish_at still cannot make it public early
    assert site.publish(job(release, web_renditions, journal, now=early)).state == "scheduled"
    assert not (folder_spec.disk / RID).exists()
    # at publish_at: one rename, nothing uploaded again
    out = site.publish(job(release, web_renditions, journal, now=lambda: at))
    assert out.state == "live"
    assert (folder_spec.disk / RID / "video.mp4").stat().st_ino == staged_inode
    assert staging_leftovers(folder_spec.disk) == []
    assert "領事保護" in (folder_spec.disk / "index.html").read_text(encoding="utf-8")
    sha256sum_check(folder_spec.disk / RID)


def test_staging_option_outside_public_tree(spec: TargetSpec, tmp_path: Path,
                                            web_renditions: dict[str, Rendition]) -> None:
    """``staging:`` puts the staged copy beside the public tree (same server), then renames it in."""
    private = spec.disk.parent / "private-staging"
    value = str(private) if spec.kind == "folder" else "/private-staging"  # absolute on the server
    site, journal = website(spec, tmp_path, staging=value), Journal()
    release = make_release(tmp_path)
    site.publish(job(release, web_renditions, journal, stage_only=True))
    staged = private / Path(journal.get("staging")).name
    sha256sum_check(staged)
    assert not (spec.disk / ".publisher-staging").exists() and not (spec.disk / RID).exists()
    assert site.publish(job(release, web_renditions, journal)).state == "live"
    sha256sum_check(spec.disk / RID)
    assert os.listdir(private) == []


def test_withdraw_while_scheduled_discards_the_staged_copy(folder_spec: TargetSpec, tmp_path: Path,
                                                           web_renditions: dict[str, Rendition]) -> None:
    site, journal = website(folder_spec, tmp_path), Journal()
    release = make_release(tmp_path)
    assert site.publish(job(release, web_renditions, journal, stage_only=True)).state == "scheduled"
    assert staging_leftovers(folder_spec.disk)
    assert site.withdraw(job(release, {}, journal)).state == "withdrawn"
    assert staging_leftovers(folder_spec.disk) == [] and not (folder_spec.disk / RID).exists()


def test_update_rewrites_pages_and_captions_only(folder_spec: TargetSpec, tmp_path: Path,
                                                 web_renditions: dict[str, Rendition]) -> None:
    site, journal = website(folder_spec, tmp_path), Journal()
    release = make_release(tmp_path)
    site.publish(job(release, web_renditions, journal))
    folder = folder_spec.disk / RID
    paths = [folder / "video.mp4", folder / "poster.jpg", *(folder / "hls").rglob("*")]
    media = {p: p.stat().st_ino for p in paths}
    changed = release.model_copy(update={"title": {**release.title, "en": "Consular Protection (revised)"}})
    out = site.update(job(changed, web_renditions, journal))
    assert out.state == "live" and "file(s) replaced" in out.note
    assert title_of(folder / "index.html") == "Consular Protection (revised)"
    assert {p: p.stat().st_ino for p in media} == media  # media untouched
    sha256sum_check(folder)
    assert "Consular Protection (revised)" in (folder_spec.disk / "index.html").read_text(encoding="utf-8")
    assert [n for n in os.listdir(folder) if n.startswith(".")] == []
    # `release` again with new texts but the same media: pages swapped in place, no video sent again
    again = changed.model_copy(update={"title": {**release.title, "en": "Third title"}})
    assert site.publish(job(again, web_renditions, journal)).state == "live"
    assert title_of(folder / "index.html") == "Third title"
    assert {p: p.stat().st_ino for p in media} == media
    sha256sum_check(folder)
    # new media: a full new folder, staged and swapped in
    other = remuxed(web_renditions, tmp_path / "v2", "v2")
    assert site.publish(job(again, other, journal)).checksum == other["web-mp4"].main_sha256
    assert (folder / "video.mp4").read_bytes() == other["web-mp4"].main_path.read_bytes()
    sha256sum_check(folder)
    assert staging_leftovers(folder_spec.disk) == []


def test_withdraw_removes_release_and_index_entry(spec: TargetSpec, tmp_path: Path,
                                                   web_renditions: dict[str, Rendition]) -> None:
    site, journal = website(spec, tmp_path), Journal()
    one, two = make_release(tmp_path), make_release(tmp_path, release_id="travel-safety-2026")
    site.publish(job(one, web_renditions, journal))
    site.publish(job(two, web_renditions, Journal()))
    index = (spec.disk / "index.html").read_text(encoding="utf-8")
    assert f'href="{RID}/"' in index and 'href="travel-safety-2026/"' in index
    out = site.withdraw(job(one, {}, journal))
    assert out.state == "withdrawn"
    assert not (spec.disk / RID).exists() and (spec.disk / "travel-safety-2026" / "index.html").exists()
    index = (spec.disk / "index.html").read_text(encoding="utf-8")
    assert f'href="{RID}/"' not in index and 'href="travel-safety-2026/"' in index
    assert staging_leftovers(spec.disk) == []
    assert site.withdraw(job(one, {}, journal)).state == "withdrawn"  # again: not an error
    pub = Publication(release=RID, channel="sb-web", kind="website", state="live")
    st = site.status(job(one, {}, journal, publication=pub))
    assert st.state == "withdrawn" and st.drift  # the record said live: the difference is reported


def test_status_reports_drift(folder_spec: TargetSpec, tmp_path: Path,
                              web_renditions: dict[str, Rendition]) -> None:
    site, release = website(folder_spec, tmp_path), make_release(tmp_path)
    site.publish(job(release, web_renditions))
    folder = folder_spec.disk / RID
    segment = sorted((folder / "hls" / "360p").glob("*.ts"))[0]
    segment.write_bytes(segment.read_bytes()[:-100])
    (folder / "captions" / "zh-Hans.vtt").unlink()
    st = site.status(job(release, {}))
    assert st.state == "live"
    assert st.drift == ["captions/zh-Hans.vtt: missing",
                        f"hls/360p/{segment.name}: content differs from SHA256SUMS"]
    # a plain re-publish trusts SHA256SUMS (cheap no-op); a repair finds the drift and sends those files again
    site.publish(job(release, web_renditions))
    assert len(site.status(job(release, {})).drift) == 2
    site.publish(job(release, web_renditions, repair=True))
    assert site.status(job(release, {})).drift == []


def test_crash_between_journal_steps_resumes_without_resending(folder_spec: TargetSpec, tmp_path: Path,
                                                               web_renditions: dict[str, Rendition]) -> None:
    """The process dies right after its 6th checkpoint; the rerun sends only what is missing."""
    saved: list[dict[str, Any]] = []

    class Crash(BaseException):
        pass

    def save(data: dict[str, Any]) -> None:
        saved.append(data)
        if len(saved) == 6:
            raise Crash()

    site, release = website(folder_spec, tmp_path), make_release(tmp_path)
    with pytest.raises(Crash):
        site.publish(job(release, web_renditions, Journal(save=save)))
    assert not (folder_spec.disk / RID).exists()
    state = saved[-1]
    staging = folder_spec.disk / state["staging"]
    sent_before = {n: (staging / n).stat().st_ino for n in state["sent"]}
    assert sent_before  # some files were sent before the crash
    out = site.publish(job(release, web_renditions, Journal(state)))
    assert out.state == "live"
    for name, inode in sent_before.items():
        assert (folder_spec.disk / RID / name).stat().st_ino == inode, f"{name} was sent twice"
    sha256sum_check(folder_spec.disk / RID)


def test_webdav_server_dies_mid_upload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       web_renditions: dict[str, Rendition]) -> None:
    """A real connection drop: the server process exits mid-PUT. Public path untouched; rerun completes."""
    with target_spec("webdav", tmp_path) as spec:
        for k, v in spec.env.items():
            monkeypatch.setenv(k, v)
        site, release, journal = website(spec, tmp_path), make_release(tmp_path), Journal()
        old = make_release(tmp_path, title={"en": "Old version", "zh-Hant": "舊", "zh-Hans": "旧"})
        old_media = remuxed(web_renditions, tmp_path / "old-mp4", "old")
        site.publish(job(old, old_media, Journal()))  # an older version (other media) is live
        old_page = (spec.disk / RID / "index.html").read_bytes()
        server = spec.server
        server.restart(die_after_bytes=60_000)  # type: ignore[attr-defined]
        with pytest.raises(Transient):
            site.publish(job(release, web_renditions, journal))
        assert server.wait_dead() == 3  # type: ignore[attr-defined]
        assert (spec.disk / RID / "index.html").read_bytes() == old_page  # public path untouched
        sha256sum_check(spec.disk / RID)
        sent = dict(journal.get("sent"))
        assert sent and len(sent) < len(site.files(job(release, web_renditions)))
        server.start()  # type: ignore[attr-defined]
        assert site.publish(job(release, web_renditions, journal)).state == "live"
        assert title_of(spec.disk / RID / "index.html") == release.title["en"]
        sha256sum_check(spec.disk / RID)
        assert staging_leftovers(spec.disk) == []


def test_sftp_connection_dropped_mid_upload(tmp_path: Path, web_renditions: dict[str, Rendition]) -> None:
    with target_spec("sftp", tmp_path) as spec:
        server = spec.server
        puts = 0

        def save(data: dict[str, Any]) -> None:
            nonlocal puts
            puts += 1
            if puts == 8:
                server.kill()  # type: ignore[attr-defined]

        site, release = website(spec, tmp_path), make_release(tmp_path)
        journal = Journal(save=save)
        with pytest.raises(Transient):
            site.publish(job(release, web_renditions, journal))
        assert not (spec.disk / RID).exists()
        server.start()  # type: ignore[attr-defined]
        assert site.publish(job(release, web_renditions, Journal(journal.data()))).state == "live"
        sha256sum_check(spec.disk / RID)


def test_bad_credentials_and_quota(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   web_renditions: dict[str, Rendition]) -> None:
    from publisher.errors import AuthError, Rejected
    from tests.servers.webdav import webdav_server
    with webdav_server(tmp_path / "dav", quota_bytes=50_000) as s:
        spec = TargetSpec("webdav", {"target": s.target(), "username": s.user, "password_env": "DAV_PW"},
                          tmp_path / "dav" / "site")
        monkeypatch.setenv("DAV_PW", "wrong-password")
        site, release = website(spec, tmp_path), make_release(tmp_path)
        with pytest.raises(AuthError) as err:
            site.publish(job(release, web_renditions))
        assert "wrong-password" not in str(err.value) and "password_env" in str(err.value)
        monkeypatch.setenv("DAV_PW", s.password)
        with pytest.raises(Rejected, match="no room"):
            site.publish(job(release, web_renditions))
        assert not (spec.disk / RID).exists()


def test_sums_are_sha256_of_files(folder_spec: TargetSpec, tmp_path: Path,
                                  web_renditions: dict[str, Rendition]) -> None:
    website(folder_spec, tmp_path).publish(job(make_release(tmp_path), web_renditions))
    folder = folder_spec.disk / RID
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest


def test_validate_and_credentials_offline(tmp_path: Path) -> None:
    spec = TargetSpec("sftp", {"target": "sftp://webmaster@127.0.0.1:2222/site", "key_file": "keys/web",
                               "known_hosts": "keys/known_hosts"}, tmp_path)
    site = website(spec, tmp_path)
    problems = site.validate(make_release(tmp_path))
    assert [(p.field, p.message) for p in problems] == [
        ("known_hosts", f"{tmp_path}/keys/known_hosts does not exist")]
    assert [(p.file, p.field, p.message) for p in site.credential_problems()] == [
        (f"{tmp_path}/keys/web", "channels.sb-web.key_file", "the file does not exist")]
    assert site.credential_problems()
    assert [r.profile for r in site.renditions(make_release(tmp_path))] == ["web-hls", "web-mp4", "poster",
                                                                            "captions"]
