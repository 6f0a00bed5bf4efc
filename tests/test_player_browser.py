"""The published player page, served by Debian's nginx (workers as ``nobody``, the shipped
``assets/deploy/nginx.conf``), plays in headless Chromium (Debian's).

Published under umask 077: nginx can read it only because publisher gives public files public
modes. Asserts that playback advances from the HLS master playlist and from the MP4, that there is
one subtitle track per language with the page language showing, that a staged release is not
reachable, and saves screenshots (``player-en.png``, ``player-zh-Hant-phone.png``) to the test's
tmp folder and to ``$PUBLISHER_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from channels.website.adapter import Website
from channels.website.options import WebsiteOptions
from publisher.contract import Journal
from publisher.models import Rendition
from tests.renditions import job, make_release, session_renditions
from tests.servers.nginx import nginx_server, public_tmp
from tests.unix import umask

RID = "consular-protection-2026"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Publish the release (and stage an embargoed one) to a folder nginx serves; yield the
    release's URL and the staged copy's URL."""
    renditions: dict[str, Rendition] = session_renditions(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("browser")
    with public_tmp() as base, nginx_server(base / "www", base / "nginx") as nginx, umask(0o077):
        opts = WebsiteOptions(kind="website", target=str(base / "www"), public_url=nginx.url)
        site = Website("sb-web", opts, config_dir=tmp, state_dir=tmp)
        site.publish(job(make_release(tmp), renditions))
        journal = Journal()
        later = make_release(tmp, release_id="later-2027", publish_at=datetime.now(UTC) + timedelta(days=1))
        site.publish(job(later, renditions, journal, stage_only=True))
        yield f"{nginx.url}{RID}/", f"{nginx.url}{journal.get('staging')}/index.html"


def save(path: Path, shot: bytes) -> None:
    path.write_bytes(shot)
    if os.environ.get("PUBLISHER_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["PUBLISHER_SCREENSHOTS"]) / path.name)


PLAYS = """async () => {
  const v = document.querySelector('video');
  v.muted = true;
  const timeout = new Promise((_, no) => setTimeout(() => no(new Error('play() hung for 10 s')), 10000));
  await Promise.race([v.play(), timeout]);
  const start = v.currentTime;
  await new Promise(r => setTimeout(r, 1200));
  return {src: v.currentSrc, start, now: v.currentTime, error: v.error && v.error.code};
}"""


def test_player_plays_hls_and_mp4_with_tracks(site: tuple[str, str], chromium: Any, tmp_path: Path) -> None:
    url, staged = site
    context = chromium.new_context(viewport={"width": 1024, "height": 760})
    try:
        page = context.new_page()
        failed: list[str] = []
        refused: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: refused.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(url + "index.html")
        # 1. the first source: the HLS master playlist
        hls = page.evaluate(PLAYS)
        assert hls["src"].endswith("/hls/master.m3u8"), hls
        assert hls["error"] is None and hls["now"] > hls["start"] + 0.3, hls
        # one subtitle track per language; the page language shows by default
        tracks = page.evaluate("""() => Array.from(document.querySelector('video').textTracks)
            .map(t => [t.kind, t.language, t.mode])""")
        assert tracks == [["subtitles", "en", "showing"], ["subtitles", "zh-Hant", "disabled"],
                          ["subtitles", "zh-Hans", "disabled"]]
        cues = page.evaluate("""() => new Promise(r => setTimeout(() => r(Array.from(
            document.querySelector('video').textTracks[0].cues || []).map(c => c.text)), 300))""")
        assert cues == ["Travel safely.", "Call 1868 for help."]
        # 2. the MP4 source, as a browser without HLS would pick it (seeking uses byte ranges)
        page.evaluate("""() => { const v = document.querySelector('video');
            v.src = document.querySelector('source[type="video/mp4"]').src; v.load(); }""")
        mp4 = page.evaluate(PLAYS)
        assert mp4["src"].endswith(f"/{RID}/video.mp4"), mp4
        assert mp4["error"] is None and mp4["now"] > mp4["start"] + 0.3, mp4
        page.evaluate("""async () => { const v = document.querySelector('video'); v.pause();
            const seeked = new Promise(r => v.addEventListener('seeked', r, {once: true}));
            v.currentTime = 1.2; await seeked; }""")
        page.wait_for_timeout(400)
        shown = page.evaluate("""() => Array.from(
            document.querySelector('video').textTracks[0].activeCues).map(c => c.text)""")
        assert shown == ["Travel safely."]
        save(tmp_path / "player-en.png", page.screenshot(full_page=True))
        # nothing refused by nginx; nothing fetched from anywhere else (the browser may abort its
        # own media requests while it seeks or switches source)
        assert refused == []
        assert [u for u in failed if not u.startswith(url.split(RID)[0])] == []
        # 3. the embargoed release's staged page is not reachable
        response = page.goto(staged)
        assert response is not None and response.status == 403
    finally:
        context.close()
    # the zh-Hant page on a phone: CJK text, switcher, track in the page language
    phone_context = chromium.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                         is_mobile=True, has_touch=True)
    try:
        phone = phone_context.new_page()
        phone.goto(url + "index.zh-Hant.html")
        assert phone.evaluate("() => document.documentElement.lang") == "zh-Hant"
        modes = phone.evaluate("""() => Array.from(document.querySelector('video').textTracks)
            .map(t => t.language + ':' + t.mode)""")
        assert "zh-Hant:showing" in modes and "en:showing" not in modes
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390  # nothing forces sideways scrolling on a phone
        save(tmp_path / "player-zh-Hant-phone.png", phone.screenshot(full_page=True))
    finally:
        phone_context.close()
    assert (tmp_path / "player-en.png").stat().st_size > 10_000
