"""`publisher preview`: every seed channel kind rendered privately before release, nothing sent.

One release goes to a website on WebDAV, an app feed with FCM push, WeChat and YouTube (their
loopback fakes, through their real clients) and a signage share; `preview` encodes into the
rendition cache and renders each channel's output under ``<state>/previews/<release-id>/``. The
servers, the fakes and the folders receive nothing, the store records nothing, and only the
owner can read the preview (folders 0700, files 0600).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from publisher.contract import Job, Preview, PreviewFolder, register
from publisher.engine import verbs
from publisher.engine.engine import Engine
from publisher.inputs.config import load_config
from publisher.store import Store, sqlite_url
from tests.conftest import Project
from tests.test_scheduler import Drop
from tests.test_secrets import DAV_ENV, WECHAT_ENV, Services, configure, services  # noqa: F401

PUBLIC_WEB = "https://www.example.gov.hk/videos/"


def full_project(proj: Project, s: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DAV_ENV, s.dav.password)
    monkeypatch.setenv(WECHAT_ENV, s.wechat.fake.secret)
    proj.add_channel("hall", {"kind": "signage", "target": str(proj.root / "screens"), "sites": ["lobby"]})
    configure(proj, s)


def modes(root: Path) -> tuple[set[int], set[int]]:
    """The modes of the folders and of the files under ``root`` (itself included)."""
    folders, files = {stat.S_IMODE(root.stat().st_mode)}, set()
    for dirpath, dirnames, filenames in os.walk(root):
        folders |= {stat.S_IMODE((Path(dirpath) / d).lstat().st_mode) for d in dirnames}
        files |= {stat.S_IMODE((Path(dirpath) / f).lstat().st_mode) for f in filenames}
    return folders, files


def rgb(path: Path, at: float | None = None) -> bytes:
    seek = ["-ss", str(at)] if at is not None else []
    args = ["ffmpeg", "-v", "error", *seek, "-i", str(path), "-frames:v", "1", "-pix_fmt", "rgb24",
            "-f", "rawvideo", "-"]
    return subprocess.run(args, check=True, capture_output=True).stdout


def test_preview_renders_every_channel_kind_and_sends_nothing(
        project: Callable[[], Project], cli: Any, services: Services,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    s, proj = services, project()
    full_project(proj, s, monkeypatch)
    rid = proj.manifest["id"]
    result = cli(proj, "preview", proj.manifest_path)
    assert result.exit_code == 0, result.output
    root = proj.state_dir / "previews" / rid
    assert f"preview folder (only you can read it): {root}" in " ".join(result.output.split())
    assert (root / "dav-web" / "index.html").as_uri() in result.output.replace("\n", "")

    # nothing was sent anywhere, nothing recorded
    assert s.youtube.model.log == [] and not s.youtube.model.access_tokens
    assert s.wechat.fake.calls == [] and not s.wechat.fake.tokens
    assert s.fcm.messages == [] and not s.fcm.tokens
    assert list(s.dav.root.rglob("*")) == []
    assert not (proj.root / "feed").exists() and not (proj.root / "screens").exists()
    store = Store(sqlite_url(proj.state_dir))
    assert store.get_release(rid) is None and store.events(rid) == [] and store.publications(rid) == []

    # private: only the owner reads it, and no half-made preview is left beside it
    assert modes(root) == ({0o700}, {0o600})
    assert sorted(p.name for p in root.parent.iterdir()) == [rid]

    index = json.loads((root / "preview.json").read_text(encoding="utf-8"))
    shown = {c["name"]: c for c in index["channels"]}
    assert {n: c["kind"] for n, c in shown.items()} == {
        "dav-web": "website", "wechat": "wechat", "youtube": "youtube", "app": "app-feed", "hall": "signage"}
    assert all(c["error"] == "" for c in shown.values())

    # website: the release folder as it would be staged, a player page per language
    web = root / "dav-web"
    for page, title in (("index.html", "Consular Protection"), ("index.zh-Hant.html", "領事保護"),
                        ("index.zh-Hans.html", "领事保护")):
        assert f">{title}</h1>" in (web / page).read_text(encoding="utf-8")
    assert (web / "hls" / "master.m3u8").is_file() and (web / "video.mp4").stat().st_size > 10_000
    assert sorted(p.name for p in (web / "captions").iterdir()) == ["en.vtt", "zh-Hans.vtt", "zh-Hant.vtt"]
    sums = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=web, capture_output=True,
                          text=True)
    assert sums.returncode == 0 and len((web / "SHA256SUMS").read_text().splitlines()) > 10, sums.stderr
    assert json.loads((web / "release.json").read_text(encoding="utf-8"))["title"]["zh-Hant"] == "領事保護"
    assert shown["dav-web"]["url"] == f"{PUBLIC_WEB}{rid}/"

    # app feed: the item as the app lists it, in every language
    item = json.loads((root / "app" / "item.json").read_text(encoding="utf-8"))
    assert item["id"] == rid and item["_publisher"]["title"]["zh-Hans"] == "领事保护"
    assert item["image"] == f"https://app.example.gov.hk/feed/{rid}/poster.jpg"
    assert [s["language"] for s in shown["app"]["shown"]] == ["en", "zh-Hant", "zh-Hans"]

    # WeChat: the article as it will read (in its language), linking to the website's page
    article = (root / "wechat" / "article.html").read_text(encoding="utf-8")
    assert "<h1>领事保护</h1>" in article and '<p class="author">入境事務處</p>' in article
    assert f'<a href="{PUBLIC_WEB}{rid}/">观看视频</a>' in article
    assert '<img src="cover.jpg">' in article
    assert (root / "wechat" / "cover.jpg").read_bytes()[:2] == b"\xff\xd8"
    draft = json.loads((root / "wechat" / "article.json").read_text(encoding="utf-8"))
    assert draft["content_source_url"] == f"{PUBLIC_WEB}{rid}/" and draft["digest"] == "领事保护动画短片。"

    # YouTube: title, description and tags per localization, the thumbnail
    video = json.loads((root / "youtube" / "video.json").read_text(encoding="utf-8"))
    assert video["snippet"]["tags"] == ["consular protection", "travel safety"]
    assert video["localizations"]["zh-Hant"]["title"] == "領事保護"
    fields = {s["language"]: dict(s["fields"]) for s in shown["youtube"]["shown"]}
    assert fields["zh-Hans"]["Title"] == "领事保护"
    assert fields["en"]["Tags"] == "consular protection, travel safety"
    assert (root / "youtube" / "thumbnail.jpg").read_bytes()[:2] == b"\xff\xd8"

    # signage: a frame of the signage rendition, during the first caption, with it burned in
    frame = root / "hall" / "frame.jpg"
    assert json.loads((root / "hall" / "item.json").read_text(encoding="utf-8"))["file"] == f"{rid}.mp4"
    burned, plain = rgb(frame), rgb(proj.manifest_path.parent / "master.mp4", 1.25)
    assert len(burned) == len(plain) == 640 * 360 * 3
    width, height = 640, 360
    changed = [i // 3 for i in range(0, len(burned), 3)
               if sum(abs(burned[i + k] - plain[i + k]) for k in range(3)) > 200]
    lower = [p for p in changed if p // width > height * 2 // 3]
    assert len(lower) > 200, "no caption burned into the bottom of the frame"
    assert len(changed) - len(lower) < len(lower) // 5, "the frame differs from the master elsewhere"

    # a second preview replaces the first whole; a release afterwards encodes nothing again
    again = cli(proj, "preview", proj.manifest_path, "--only", "hall")
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in root.iterdir()) == ["hall", "preview.json"]
    plan = cli(proj, "plan", proj.manifest_path)
    assert plan.exit_code == 0 and "to encode" not in plan.output, plan.output

    # the service's upkeep removes a preview nobody has made again for two weeks, and only that one
    engine = Engine(load_config(proj.config_path), Store(sqlite_url(proj.state_dir)), proj.state_dir)
    assert verbs.housekeeping(engine) == [] and root.is_dir()
    weeks_ago = time.time() - 15 * 86400
    os.utime(root, (weeks_ago, weeks_ago))
    assert f"preview of {rid} removed (14 days old)" in verbs.housekeeping(engine)
    assert not root.exists()


def test_preview_of_a_bad_manifest_is_refused_and_writes_nothing(
        project: Callable[[], Project], cli: Any, tmp_path: Path) -> None:
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"), "public_url": PUBLIC_WEB})
    proj.manifest["captions"] = {"en": "subs/missing.srt"}
    proj.write()
    result = cli(proj, "preview", proj.manifest_path)
    assert result.exit_code == 2, result.output
    assert "missing.srt" in result.output
    assert not (proj.state_dir / "previews").exists()


@register
class BrokenPreview(Drop):
    """A kind whose preview has a bug."""

    kind = "broken-preview"

    def preview(self, job: Job, folder: PreviewFolder) -> Preview:
        folder.write("half.txt", "started")
        raise KeyError("poster")


def test_one_channel_s_broken_preview_does_not_hide_the_others(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"), "public_url": PUBLIC_WEB})
    proj.add_channel("odd", {"kind": "broken-preview", "target": str(proj.root / "odd")})
    proj.add_channel("plain", {"kind": "drop", "target": str(proj.root / "plain")})
    proj.write()
    result = cli(proj, "preview", proj.manifest_path)
    assert result.exit_code == 1, result.output
    out = " ".join(result.output.split())
    assert "no preview: internal error in the broken-preview adapter: KeyError: 'poster'" in out
    assert "no preview: drop channels have no preview" in out
    root = proj.state_dir / "previews" / proj.manifest["id"]
    record = json.loads((root / "preview.json").read_text(encoding="utf-8"))
    index = {c["name"]: c for c in record["channels"]}
    assert index["odd"]["failed"] and not index["plain"]["failed"] and not index["web"]["failed"]
    assert (root / "web" / "index.html").is_file() and not (proj.root / "www").exists()
