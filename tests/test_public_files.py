"""Public files another Unix user (the web server's) can read, whatever publisher's umask; staging
and the rendition cache that nobody else can.

The process umask is 077 where it matters (the SFTP server runs under it too, as a strict server
would), and reads are checked as ``nobody`` with runuser, not only as mode bits.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from channels.app_feed.adapter import AppFeed
from channels.app_feed.options import AppFeedOptions
from channels.signage.adapter import Signage
from channels.signage.options import SignageOptions
from channels.transports.options import TargetOptions, target_problems
from channels.website.adapter import Website
from channels.website.options import WebsiteOptions
from publisher.contract import Journal
from publisher.inputs.media import probe_master
from publisher.models import Release, Rendition, RenditionRequest
from publisher.transcode import Transcoder
from tests.conftest import Project
from tests.media import make_release_folder
from tests.renditions import job, make_job, make_release, session_renditions
from tests.servers import TargetSpec, target_spec
from tests.servers.nginx import public_tmp
from tests.test_signage import make_signage
from tests.unix import modes, public_modes, reads, umask

RID = "consular-protection-2026"
NOGROUP = 65534  # nobody's group on Debian


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendition]:
    return session_renditions(tmp_path_factory)


@pytest.fixture(scope="module")
def screen(tmp_path_factory: pytest.TempPathFactory) -> Rendition:
    return make_signage(tmp_path_factory.mktemp("signage-media"))


@pytest.fixture
def base() -> Iterator[Path]:
    with public_tmp() as folder:
        yield folder


@contextmanager
def strict(kind: str, base: Path) -> Iterator[TargetSpec]:
    """A target whose files are created under umask 077 (publisher's and the SFTP server's)."""
    with umask(0o077):
        (base / "sftproot").mkdir(mode=0o755)  # the server's own root; publisher makes the rest
        (base / "sftproot").chmod(0o755)
        with target_spec(kind, base) as spec:
            yield spec


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def options(spec: TargetSpec, **extra: Any) -> dict[str, Any]:
    return {**spec.options, **extra}


def website(spec: TargetSpec, base: Path, **extra: Any) -> Website:
    opts = WebsiteOptions.model_validate({"kind": "website", **options(spec, **extra),
                                          "public_url": "https://www.example.gov.hk/videos/"})
    (base / "state").mkdir(exist_ok=True)
    return Website("sb-web", opts, config_dir=base, state_dir=base / "state")


@pytest.mark.parametrize("kind", ["folder", "sftp"])
def test_website_is_private_while_staged_and_public_from_go_live(kind: str, base: Path,
                                                                 web: dict[str, Rendition]) -> None:
    at = datetime.now(UTC) + timedelta(hours=1)
    release, journal = make_release(base, publish_at=at), Journal()
    with strict(kind, base) as spec:
        site = website(spec, base)
        assert site.publish(job(release, web, journal, stage_only=True)).state == "scheduled"
        staged = spec.disk / journal.get("staging")
        assert mode(staged.parent) == 0o700 and mode(staged) == 0o700
        assert not reads("nobody", staged / "index.html")

        assert site.publish(job(release, web, journal, now=lambda: at)).state == "live"
        folder = spec.disk / RID
        assert public_modes(folder) == []
        assert mode(spec.disk) == 0o755 and mode(spec.disk / "index.html") == 0o644  # made by publisher
        for name in ("index.html", "index.zh-Hant.html", "hls/master.m3u8", "hls/360p/index.m3u8",
                     "hls/360p/seg000.ts", "video.mp4", "poster.jpg", "captions/en.vtt", "SHA256SUMS"):
            assert reads("nobody", folder / name), name
        assert reads("nobody", spec.disk / "index.html")
        assert mode(spec.disk / ".publisher-staging") == 0o700

        # an update replaces files in place (temp name, then rename): they stay public
        retitled = make_release(base, publish_at=at, title={"en": "Consular Protection, revised",
                                                            "zh-Hant": "領事保護", "zh-Hans": "领事保护"})
        assert site.update(job(retitled, web, journal, now=lambda: at)).state == "live"
        assert "revised" in (folder / "index.html").read_text(encoding="utf-8")
        assert public_modes(folder) == [] and mode(spec.disk / "index.html") == 0o644
        assert reads("nobody", folder / "index.html") and reads("nobody", folder / "release.json")


def test_app_feed_and_its_media_are_public(base: Path, web: dict[str, Rendition]) -> None:
    with strict("folder", base) as spec:
        opts = AppFeedOptions.model_validate({"kind": "app-feed", **spec.options,
                                              "public_url": "https://app.example.gov.hk/safeguard/"})
        (base / "state").mkdir()
        feed = AppFeed("safeguard-app", opts, config_dir=base, state_dir=base / "state")
        assert feed.publish(job(make_release(base), web)).state == "live"
        assert public_modes(spec.disk) == []
        assert reads("nobody", spec.disk / "feed.json")
        assert reads("nobody", spec.disk / RID / "video.mp4")
        assert reads("nobody", spec.disk / RID / "hls" / "master.m3u8")


@pytest.mark.parametrize("kind", ["folder", "sftp"])
def test_signage_share_is_public_for_the_players(kind: str, base: Path, screen: Rendition) -> None:
    at = datetime.now(UTC) + timedelta(hours=1)
    release = Release(id=RID, manifest_path=base / "release.yaml", master=base / "master.mp4",
                      languages=["zh-Hant"], title={"zh-Hant": "領事保護"}, publish_at=at)
    with strict(kind, base) as spec:
        share = spec.disk
        opts = SignageOptions.model_validate({"kind": "signage", **spec.options,
                                              "sites": ["immd-hq", "lo-wu"]})
        (base / "state").mkdir()
        ch = Signage("screens", opts, config_dir=base, state_dir=base / "state")
        journal = Journal()
        staged = ch.publish(make_job(release=release, journal=journal, renditions={"signage": screen},
                                stage_only=True))
        assert staged.state == "scheduled"
        assert mode(share / journal.get("staging")) == 0o700
        live = ch.publish(make_job(release=release, journal=journal, renditions={"signage": screen},
                              now=lambda: at))
        assert live.state == "live"
        assert public_modes(share) == []
        for site in ("immd-hq", "lo-wu"):
            for name in (f"{RID}.mp4", "playlist.json", "playlist.m3u8", "SHA256SUMS"):
                assert reads("nobody", share / site / name), f"{site}/{name}"


@pytest.mark.parametrize("kind", ["folder", "sftp"])
def test_dir_mode_file_mode_and_group_serve_through_a_group(kind: str, base: Path,
                                                            web: dict[str, Rendition]) -> None:
    group = "nogroup" if kind == "folder" else str(NOGROUP)  # a name locally, a gid over SFTP
    with strict(kind, base) as spec:
        site = website(spec, base, dir_mode="0750", file_mode="640", group=group)
        assert site.publish(job(make_release(base), web)).state == "live"
        folder = spec.disk / RID
        assert public_modes(folder, folder=0o750, file=0o640) == []
        assert {p.stat().st_gid for p in [folder, *folder.rglob("*"), spec.disk / "index.html"]} == {NOGROUP}
        assert reads("nobody", folder / "index.html")  # nobody is in nogroup
        assert not reads("daemon", folder / "index.html")  # others are not


def test_a_live_folder_left_private_by_an_older_version_is_made_public(base: Path,
                                                                        web: dict[str, Rendition]) -> None:
    with target_spec("folder", base) as spec:
        site, release, journal = website(spec, base), make_release(base), Journal()
        site.publish(job(release, web, journal))
        folder = spec.disk / RID
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)
        assert not reads("nobody", folder / "index.html")
        assert site.publish(job(release, web, journal)).state == "live"  # nothing re-sent
        assert public_modes(folder) == [] and reads("nobody", folder / "index.html")


def test_mode_options_are_checked() -> None:
    bad = [
        ({"target": "/srv/www", "dir_mode": "rwxr-xr-x"}, "octal text"),
        ({"target": "/srv/www", "dir_mode": "0644"}, "owner digit must be 7"),
        ({"target": "/srv/www", "file_mode": "0444"}, "owner digit must be 6 or 7"),
        ({"target": "/srv/www", "file_mode": "0666"}, "every user on the server write"),
        ({"target": "/srv/www", "dir_mode": "01777"}, "octal text"),
        ({"target": "sftp://u@host/www", "key_file": "k", "group": "www-data"}, "as a number"),
        ({"target": "webdavs://host/www", "file_mode": "0644"}, "WebDAV server decides"),
    ]
    for opts, message in bad:
        with pytest.raises(ValidationError, match=message):
            TargetOptions.model_validate(opts)
    good = TargetOptions.model_validate({"target": "/srv/www", "dir_mode": "750", "file_mode": "0640"})
    assert (good.modes.dir, good.modes.file) == (0o750, 0o640)
    default = TargetOptions.model_validate({"target": "/srv/www"})
    assert (default.modes.dir, default.modes.file) == (0o755, 0o644)
    unknown = TargetOptions.model_validate({"target": "/srv/www", "group": "no-such-group-here"})
    assert [(p.field, p.message) for p in target_problems(unknown, Path("/"), "web")] == [
        ("group", "there is no group 'no-such-group-here' on this machine")]


def test_rendition_cache_is_owner_only(base: Path, master_file: Path) -> None:
    """Renditions of an embargoed release in a cache_dir outside the state folder, made under a
    permissive umask: folders 0700, files 0600 (the loudness measurement too), the root as well."""
    cache = base / "shared" / "renditions"
    cache.mkdir(parents=True)
    cache.chmod(0o755)  # a cache_dir someone made readable
    folder = base / "release"
    make_release_folder(folder, master_src=master_file)
    release = Release(id=RID, manifest_path=folder / "release.yaml", master=folder / "master.mp4",
                      languages=["en"], title={"en": "Consular Protection"},
                      captions={"en": folder / "subs" / "en.srt"}, thumbnail=folder / "poster.png",
                      publish_at=datetime.now(UTC) + timedelta(days=1))
    with umask(0o022):
        transcoder = Transcoder(cache)
        plan = transcoder.plan(release, probe_master(release.master), {"web": [
            RenditionRequest(profile=p) for p in ("web-mp4", "poster", "captions")]})
        made = transcoder.run(plan)
    assert len(made) == 3
    found = modes(cache, skip="\0")
    assert found["."] == 0o700
    wrong = [f"{rel} {m:04o}" for rel, m in found.items()
             if m != (0o700 if (cache / rel).is_dir() else 0o600)]
    assert wrong == []
    assert any(rel.startswith("loudness/") for rel in found)
    video = next(r for r in made.values() if r.profile == "web-mp4").main_path
    assert not reads("nobody", video)
    os.chmod(cache, 0o755)  # even with the root opened again, nothing inside is readable
    assert not reads("nobody", video)


def test_check_warns_of_a_target_inside_a_folder_others_cannot_pass(
        project: Callable[[], Project], cli: Any, base: Path) -> None:
    proj = project()
    closed = base / "private"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    proj.add_channel("web", {"kind": "website", "target": str(closed / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.add_channel("open", {"kind": "website", "target": str(base / "open" / "www"),
                              "public_url": "https://www.example.gov.hk/open/"})
    proj.write()
    warned = cli(proj, "check", proj.manifest_path)
    said = " ".join(warned.output.split())
    assert warned.exit_code == 0, warned.output
    assert f"channel web: target: {closed} (mode 0700) cannot be passed through by other users" in said
    assert f"chmod o+x {closed}" in said
    assert "channel open" not in said  # under the 0755 base: the web server reaches it
    listed = " ".join(cli(proj, "channels").output.split())  # channels says the same
    assert f"warning: channel web: target: {closed} (mode 0700) cannot be passed through" in listed
    closed.chmod(0o711)
    assert "cannot be passed through" not in cli(proj, "check", proj.manifest_path).output
