"""What publisher writes, served by Debian's nginx (workers as ``nobody``) with the shipped
``assets/deploy/nginx.conf``: every page, playlist, segment, caption and the feed answer 200 with
the right type, byte ranges 206, and a staged release is unreachable (the rule and the mode).

Published under umask 077, so only the modes publisher sets make it readable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from channels.app_feed.adapter import AppFeed
from channels.app_feed.options import AppFeedOptions
from channels.website.adapter import Website
from channels.website.options import WebsiteOptions
from publisher.contract import Journal
from publisher.models import Rendition
from tests.renditions import job, make_release, session_renditions
from tests.servers.nginx import Nginx, nginx_server, public_tmp
from tests.unix import umask

RID = "consular-protection-2026"
LATER = "embargoed-2027"


@dataclass
class Served:
    nginx: Nginx
    root: Path
    staging: str  # the embargoed release's staging folder, relative to the website target


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    web: dict[str, Rendition] = session_renditions(tmp_path_factory)
    state = tmp_path_factory.mktemp("nginx-state")
    with public_tmp() as base, nginx_server(base / "www", base / "nginx") as nginx, umask(0o077):
        root = base / "www"
        site = Website("sb-web", WebsiteOptions(kind="website", target=str(root / "videos"),
                                                public_url=nginx.url + "videos/"),
                       config_dir=state, state_dir=state)
        assert site.publish(job(make_release(state), web)).state == "live"
        journal = Journal()
        embargoed = make_release(state, release_id=LATER, publish_at=datetime.now(UTC) + timedelta(days=1))
        assert site.publish(job(embargoed, web, journal, stage_only=True)).state == "scheduled"
        feed = AppFeed("safeguard-app", AppFeedOptions(kind="app-feed", target=str(root / "app"),
                                                       public_url=nginx.url + "app/"),
                       config_dir=state, state_dir=state)
        assert feed.publish(job(make_release(state), web)).state == "live"
        yield Served(nginx, root, journal.get("staging"))


def get(url: str, **headers: str) -> requests.Response:
    with requests.Session() as s:
        s.trust_env = False  # no proxy between us and 127.0.0.1
        return s.get(url, headers=headers, timeout=10)


def test_pages_playlists_segments_and_captions(served: Served) -> None:
    base = served.nginx.url + f"videos/{RID}/"
    index = get(served.nginx.url + "videos/")
    assert index.status_code == 200 and index.headers["Content-Type"] == "text/html; charset=utf-8"
    assert RID in index.text
    for page in ("", "index.html", "index.zh-Hant.html", "index.zh-Hans.html"):
        r = get(base + page)
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8", page
        assert r.headers["Cache-Control"] == "no-cache"
    master = get(base + "hls/master.m3u8")
    assert master.status_code == 200 and master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    variants = [line for line in master.text.splitlines() if line and not line.startswith("#")]
    assert variants
    for variant in variants:
        playlist = get(base + "hls/" + variant)
        assert playlist.status_code == 200, variant
        folder = variant.rsplit("/", 1)[0]
        for segment in [s for s in playlist.text.splitlines() if s and not s.startswith("#")]:
            seg = get(f"{base}hls/{folder}/{segment}")
            assert seg.status_code == 200 and seg.headers["Content-Type"] == "video/mp2t", segment
    vtt = get(base + "captions/zh-Hant.vtt")
    assert vtt.status_code == 200 and vtt.headers["Content-Type"] == "text/vtt; charset=utf-8"
    assert vtt.text.startswith("WEBVTT")


def test_every_file_in_sha256sums_is_served_as_checked(served: Served) -> None:
    base = served.nginx.url + f"videos/{RID}/"
    sums = get(base + "SHA256SUMS")
    assert sums.status_code == 200
    for line in sums.text.splitlines():
        digest, name = line.split("  ", 1)
        body = get(base + name)
        assert body.status_code == 200 and hashlib.sha256(body.content).hexdigest() == digest, name


def test_byte_ranges_for_seeking_in_the_mp4(served: Served) -> None:
    video = (served.root / "videos" / RID / "video.mp4").read_bytes()
    r = get(served.nginx.url + f"videos/{RID}/video.mp4", Range="bytes=100-1123")
    assert r.status_code == 206 and r.headers["Content-Type"] == "video/mp4"
    assert r.headers["Content-Range"] == f"bytes 100-1123/{len(video)}"
    assert r.content == video[100:1124]


def test_feed_and_everything_it_points_to(served: Served) -> None:
    r = get(served.nginx.url + "app/feed.json")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/feed+json; charset=utf-8"
    [item] = json.loads(r.content)["items"]
    hls, mp4 = item["attachments"]
    assert get(hls["url"]).status_code == 200
    video = get(mp4["url"])
    assert video.status_code == 200 and len(video.content) == mp4["size_in_bytes"]
    assert hashlib.sha256(video.content).hexdigest() == item["_publisher"]["sha256"]["video.mp4"]
    for caption in item["_publisher"]["captions"]:
        got = get(caption["url"])
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == caption["sha256"]
    assert get(item["image"]).status_code == 200


def test_staging_is_unreachable_by_rule_and_by_mode(served: Served) -> None:
    staged = served.root / "videos" / served.staging
    assert (staged / "index.html").is_file()
    url = served.nginx.url + "videos/" + served.staging + "/index.html"
    assert get(url).status_code == 403
    assert get(served.nginx.url + "videos/.publisher-staging/").status_code == 403
    assert get(served.nginx.url + f"videos/{LATER}/").status_code == 404
    log = served.nginx.error_log.read_text()
    assert "access forbidden by rule" in log
    # without the shipped rule, the staging folder's mode (0700) still keeps nginx's workers out
    with nginx_server(served.root, served.nginx.error_log.parent.parent / "bare", snippet=False) as bare:
        assert get(bare.url + "videos/" + served.staging + "/index.html").status_code == 403
        assert get(bare.url + f"videos/{RID}/index.html").status_code == 200
        assert re.search(r"index\.html\" failed \(13: Permission denied\)", bare.error_log.read_text())
