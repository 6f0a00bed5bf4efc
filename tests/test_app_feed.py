"""The app-feed channel: a JSON Feed 1.1 validated against a JSON Schema, on all three targets."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from channels.app_feed.adapter import AppFeed
from channels.app_feed.options import AppFeedOptions
from publisher.contract import Journal
from publisher.models import Publication, Rendition
from tests.renditions import job, make_release
from tests.servers import TargetSpec, target_spec
from tests.test_website import folder_spec, spec, web_renditions  # noqa: F401 - fixtures

PUBLIC = "https://app.example.gov.hk/safeguard/"
RID = "consular-protection-2026"
SHA = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
RFC3339 = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}
LOCALIZED = {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"},
             "propertyNames": {"pattern": "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"}}

#: JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) as this channel must produce it,
#: with the documented ``_publisher`` extension.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string", "minLength": 1},
        "home_page_url": {"type": "string", "format": "uri"},
        "feed_url": {"type": "string", "pattern": "^https?://.+/feed\\.json$"},
        "language": {"type": "string"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
    },
    "patternProperties": {"^_": {}},
    "additionalProperties": False,
    "$defs": {
        "url": {"type": "string", "pattern": "^https?://"},
        "item": {
            "type": "object",
            "required": ["id", "url", "title", "content_text", "image", "date_published", "attachments",
                         "_publisher"],
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "url": {"$ref": "#/$defs/url"},
                "title": {"type": "string", "minLength": 1},
                "content_text": {"type": "string"},
                "image": {"$ref": "#/$defs/url"},
                "date_published": RFC3339,
                "date_modified": RFC3339,
                "language": {"type": "string"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "attachments": {
                    "type": "array", "minItems": 2,
                    "items": {
                        "type": "object", "additionalProperties": False,
                        "required": ["url", "mime_type", "size_in_bytes", "duration_in_seconds"],
                        "properties": {
                            "url": {"$ref": "#/$defs/url"},
                            "mime_type": {"enum": ["application/x-mpegURL", "video/mp4"]},
                            "title": {"type": "string"},
                            "size_in_bytes": {"type": "integer", "minimum": 1},
                            "duration_in_seconds": {"type": "number", "exclusiveMinimum": 0},
                        },
                    },
                },
                "_publisher": {
                    "type": "object", "additionalProperties": False,
                    "required": ["release", "languages", "title", "content_text", "captions", "sha256",
                                 "sums_url"],
                    "properties": {
                        "release": {"type": "string"},
                        "languages": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                        "title": LOCALIZED, "content_text": LOCALIZED,
                        "captions": {"type": "array", "items": {
                            "type": "object", "additionalProperties": False,
                            "required": ["language", "url", "mime_type", "size_in_bytes", "sha256"],
                            "properties": {"language": {"type": "string"}, "url": {"$ref": "#/$defs/url"},
                                           "mime_type": {"const": "text/vtt"},
                                           "size_in_bytes": {"type": "integer", "minimum": 1},
                                           "sha256": SHA}}},
                        "sha256": {"type": "object", "minProperties": 1, "additionalProperties": SHA},
                        "sums_url": {"$ref": "#/$defs/url"},
                    },
                },
            },
            "patternProperties": {"^_": {}},
            "additionalProperties": False,
        },
    },
}


def channel(spec: TargetSpec, tmp: Path, **extra: Any) -> AppFeed:
    opts = AppFeedOptions.model_validate({"kind": "app-feed", **spec.options, "public_url": PUBLIC,
                                          "feed_title": "Safeguard HK", **extra})
    return AppFeed("safeguard-app", opts, config_dir=tmp, state_dir=tmp)


def feed_of(spec: TargetSpec) -> dict[str, Any]:
    feed: dict[str, Any] = json.loads((spec.disk / "feed.json").read_text(encoding="utf-8"))
    jsonschema.validate(feed, SCHEMA, format_checker=jsonschema.FormatChecker())
    return feed


def local(spec: TargetSpec, url: str) -> Path:
    assert url.startswith(PUBLIC)
    return spec.disk / url[len(PUBLIC):]


def test_schema_rejects_a_broken_feed() -> None:
    """The schema itself is strict enough to matter."""
    broken = {"version": "https://jsonfeed.org/version/1.1", "title": "x",
              "items": [{"id": "a", "url": "https://x/", "title": "t", "content_text": "",
                         "image": "https://x/p.jpg", "date_published": "2026-12-01 10:00",
                         "attachments": [], "_publisher": {}}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_publish_feed_item_and_media(spec: TargetSpec, tmp_path: Path,
                                     web_renditions: dict[str, Rendition]) -> None:
    app, release = channel(spec, tmp_path), make_release(tmp_path)
    out = app.publish(job(release, web_renditions))
    assert (out.state, out.url, out.remote_id) == ("live", PUBLIC + "feed.json", f"feed.json#{RID}")
    assert out.checksum == web_renditions["web-mp4"].main_sha256
    feed = feed_of(spec)
    assert feed["title"] == "Safeguard HK" and feed["language"] == "en"
    [item] = feed["items"]
    assert item["id"] == RID and item["title"] == release.title["en"]
    assert item["_publisher"]["title"]["zh-Hant"] == "領事保護"
    hls, mp4 = item["attachments"]
    assert hls["mime_type"] == "application/x-mpegURL" and hls["url"] == f"{PUBLIC}{RID}/hls/master.m3u8"
    assert mp4["mime_type"] == "video/mp4" and mp4["duration_in_seconds"] == 4.0
    assert local(spec, mp4["url"]).stat().st_size == mp4["size_in_bytes"]
    assert local(spec, hls["url"]).read_text().startswith("#EXTM3U")
    assert local(spec, item["image"]).read_bytes()[:2] == b"\xff\xd8"  # JPEG
    for caption in item["_publisher"]["captions"]:
        data = local(spec, caption["url"]).read_bytes()
        assert data.startswith(b"WEBVTT") and hashlib.sha256(data).hexdigest() == caption["sha256"]
    folder = spec.disk / RID
    for name, digest in item["_publisher"]["sha256"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    sums = dict(line.split("  ")[::-1] for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert sums == item["_publisher"]["sha256"]
    assert [n for n in os.listdir(spec.disk) if n.endswith(".tmp")] == []
    assert app.status(job(release, {})).drift == []


def test_item_appears_only_from_publish_at(folder_spec: TargetSpec, tmp_path: Path,
                                           web_renditions: dict[str, Rendition]) -> None:
    at = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    app, journal = channel(folder_spec, tmp_path), Journal()
    release = make_release(tmp_path, publish_at=at)
    out = app.publish(job(release, web_renditions, journal, stage_only=True, now=lambda: at - timedelta(1)))
    assert out.state == "scheduled"
    assert not (folder_spec.disk / "feed.json").exists() and not (folder_spec.disk / RID).exists()
    staged = folder_spec.disk / journal.get("staging") / "video.mp4"
    inode = staged.stat().st_ino
    assert app.status(job(release, {}, journal)).state == "scheduled"
    assert app.publish(job(release, web_renditions, journal, now=lambda: at)).state == "live"
    [item] = feed_of(folder_spec)["items"]
    assert item["date_published"] == "2026-12-01T02:00:00+00:00"
    assert (folder_spec.disk / RID / "video.mp4").stat().st_ino == inode  # renamed, not sent again


def test_withdraw_ordering_and_atomic_replacement(spec: TargetSpec, tmp_path: Path,
                                                  web_renditions: dict[str, Rendition]) -> None:
    app = channel(spec, tmp_path)
    one = make_release(tmp_path, publish_at=datetime(2026, 11, 1, tzinfo=UTC))
    two = make_release(tmp_path, release_id="travel-safety-2026",
                       publish_at=datetime(2026, 11, 2, tzinfo=UTC))
    app.publish(job(one, web_renditions))
    app.publish(job(two, web_renditions))
    assert [i["id"] for i in feed_of(spec)["items"]] == ["travel-safety-2026", RID]  # newest first
    before = (spec.disk / "feed.json").stat().st_ino
    assert app.withdraw(job(one, {})).state == "withdrawn"
    assert [i["id"] for i in feed_of(spec)["items"]] == ["travel-safety-2026"]
    assert (spec.disk / "feed.json").stat().st_ino != before  # a new file renamed over the old one
    assert not (spec.disk / RID).exists() and (spec.disk / "travel-safety-2026" / "video.mp4").exists()
    assert app.withdraw(job(one, {})).state == "withdrawn"  # again: not an error
    pub = Publication(release=RID, channel="safeguard-app", kind="app-feed", state="withdrawn")
    assert app.status(job(one, {}, publication=pub)).state == "withdrawn"


def test_republish_noop_update_and_link(folder_spec: TargetSpec, tmp_path: Path,
                                        web_renditions: dict[str, Rendition]) -> None:
    app, journal = channel(folder_spec, tmp_path, page_channel="sb-web"), Journal()
    release = make_release(tmp_path)
    page = "https://www.sb.gov.hk/videos/consular-protection-2026/"
    app.publish(job(release, web_renditions, journal, links={"sb-web": page}))
    feed_file, video = folder_spec.disk / "feed.json", folder_spec.disk / RID / "video.mp4"
    inodes = (feed_file.stat().st_ino, video.stat().st_ino)
    [item] = feed_of(folder_spec)["items"]
    assert item["url"] == page
    assert app.publish(job(release, web_renditions, journal, links={"sb-web": page})).state == "live"
    assert (feed_file.stat().st_ino, video.stat().st_ino) == inodes  # nothing rewritten
    # update: new title, same id and date, media untouched
    changed = release.model_copy(update={"title": {**release.title, "zh-Hans": "领事保护（修订）"}})
    assert app.update(job(changed, web_renditions, journal, links={"sb-web": page})).state == "live"
    [after] = feed_of(folder_spec)["items"]
    assert after["_publisher"]["title"]["zh-Hans"] == "领事保护（修订）"
    assert after["date_published"] == item["date_published"] and video.stat().st_ino == inodes[1]
    # someone deletes the media folder by hand: status reports it
    (folder_spec.disk / RID / "video.mp4").unlink()
    st = app.status(job(release, {}, journal))
    assert st.state == "live" and st.drift == ["video.mp4: missing"]


def test_cli_release_to_sftp_website_and_webdav_feed(project: Any, cli: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through `publisher release` with the real transcoder and both servers."""
    with target_spec("sftp", tmp_path / "s") as web, target_spec("webdav", tmp_path / "d") as dav:
        for k, v in dav.env.items():
            monkeypatch.setenv(k, v)
        proj = project()
        proj.add_channel("sb-web", {"kind": "website", **web.options,
                                    "public_url": "https://www.sb.gov.hk/videos/"})
        proj.add_channel("safeguard-app", {"kind": "app-feed", **dav.options, "public_url": PUBLIC,
                                           "feed_title": "Safeguard HK", "page_channel": "sb-web"})
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
        assert result.exit_code == 0, result.output
        rows = {r["channel"]: r for r in json.loads(cli(proj, "status", "--json").stdout)}
        rid = proj.manifest["id"]
        assert rows["sb-web"]["state"] == rows["safeguard-app"]["state"] == "live"
        assert rows["sb-web"]["url"] == f"https://www.sb.gov.hk/videos/{rid}/"
        video = web.disk / rid / "video.mp4"
        assert rows["sb-web"]["checksum"] == hashlib.sha256(video.read_bytes()).hexdigest()
        assert rows["safeguard-app"]["checksum"] == rows["sb-web"]["checksum"]  # same web-mp4 rendition
        [item] = feed_of(dav)["items"]
        assert item["url"] == rows["sb-web"]["url"]  # the app links to the live player page
        assert (web.disk / rid / "hls" / "master.m3u8").read_text().startswith("#EXTM3U")


def test_fcm_push_once_when_live(folder_spec: TargetSpec, tmp_path: Path,
                                 web_renditions: dict[str, Rendition]) -> None:
    from publisher.errors import RateLimited
    from tests.servers.fcm import fcm_server, write_service_account

    with fcm_server(tmp_path / "fcm") as (server, sa, ca):
        fcm = {"credentials": str(sa), "topic": "safeguard-videos", "api_root": server.root,
               "ca_bundle": str(ca)}
        app, journal = channel(folder_spec, tmp_path, fcm=fcm), Journal()
        at = datetime(2026, 12, 1, tzinfo=UTC)
        release = make_release(tmp_path, publish_at=at)
        app.publish(job(release, web_renditions, journal, stage_only=True, now=lambda: at - timedelta(1)))
        assert server.messages == []  # nothing before publish_at
        out = app.publish(job(release, web_renditions, journal, now=lambda: at))
        assert out.state == "live" and "push sent" in out.note
        [message] = server.messages
        assert message["topic"] == "safeguard-videos"
        assert message["notification"]["title"] == release.title["en"]
        assert json.loads(message["data"]["titles"])["zh-Hant"] == "領事保護"
        assert message["data"]["release"] == RID and server.token_requests == 1
        app.publish(job(release, web_renditions, journal, now=lambda: at))
        assert len(server.messages) == 1  # re-publish does not notify again

        # quota exhausted: the item is live, the push waits for the core's retry, then goes once
        other, j2 = make_release(tmp_path, release_id="travel-safety-2026"), Journal()
        server.quota = 1
        with pytest.raises(RateLimited) as err:
            app.publish(job(other, web_renditions, j2))
        assert err.value.retry_at is not None
        assert "travel-safety-2026" in [i["id"] for i in feed_of(folder_spec)["items"]]
        server.quota = 0
        assert "push sent" in app.publish(job(other, web_renditions, j2)).note
        assert [m["data"]["release"] for m in server.messages] == [RID, "travel-safety-2026"]

        # a key FCM does not know: the item stays live, the failure is reported, not retried
        stranger = tmp_path / "stranger.json"
        write_service_account(stranger, "safeguard-hk", server.token_uri)
        app = channel(folder_spec, tmp_path, fcm={**fcm, "credentials": str(stranger)})
        third, j3 = make_release(tmp_path, release_id="border-control-2026"), Journal()
        out = app.publish(job(third, web_renditions, j3))
        assert out.state == "live" and "push notification failed" in out.note
        assert "BEGIN PRIVATE KEY" not in out.note
        assert len(server.messages) == 2
        app.publish(job(third, web_renditions, j3))
        assert len(server.messages) == 2
