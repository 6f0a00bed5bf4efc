"""The published player page, served over HTTP on 127.0.0.1, plays in headless Chromium (Debian's).

Asserts that playback advances from the HLS master playlist and from the MP4, that there is one
subtitle track per language with the page language showing, and saves screenshots
(``player-en.png``, ``player-zh-Hant-phone.png``) to the test's tmp folder and to
``$PUBLISHER_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from channels.website import Website, WebsiteOptions
from publisher.models import Rendition
from tests.renditions import job, make_release, session_renditions

RID = "consular-protection-2026"


class Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".m3u8": "application/vnd.apple.mpegurl",
                      ".ts": "video/mp2t", ".vtt": "text/vtt; charset=utf-8", ".mp4": "video/mp4",
                      ".html": "text/html; charset=utf-8"}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        """Byte ranges, as every real web server serves them (browsers need them to seek in an MP4)."""
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if not m or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start, end = int(m.group(1)), min(int(m.group(2) or size - 1), size - 1)
        if start >= size:
            self.send_error(416)
            return None
        with path.open("rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(body)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Publish the release to a folder and serve that folder at http://127.0.0.1:PORT/."""
    renditions: dict[str, Rendition] = session_renditions(tmp_path_factory)
    tmp = tmp_path_factory.mktemp("browser")
    root = tmp / "www"
    opts = WebsiteOptions(kind="website", target=str(root), public_url="https://www.example.gov.hk/videos/")
    Website("sb-web", opts, config_dir=tmp, state_dir=tmp).publish(job(make_release(tmp), renditions))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{RID}/"
    server.shutdown()
    server.server_close()


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


def test_player_plays_hls_and_mp4_with_tracks(site: str, tmp_path: Path, chromium: Any) -> None:
    browser = chromium  # one Chromium for the whole session (tests/conftest.py)
    page = browser.new_page(viewport={"width": 1024, "height": 760})
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(site + "index.html")
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
    # 2. the MP4 source, as a browser without HLS would pick it
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
    # the zh-Hant page on a phone: CJK text, switcher, track in the page language
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                             is_mobile=True, has_touch=True)
    phone.goto(site + "index.zh-Hant.html")
    assert phone.evaluate("() => document.documentElement.lang") == "zh-Hant"
    modes = phone.evaluate("""() => Array.from(document.querySelector('video').textTracks)
        .map(t => t.language + ':' + t.mode)""")
    assert "zh-Hant:showing" in modes and "en:showing" not in modes
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # nothing forces sideways scrolling on a phone
    save(tmp_path / "player-zh-Hant-phone.png", phone.screenshot(full_page=True))
    assert [u for u in failed if not u.startswith("http://127.0.0.1")] == []
    page.context.close()
    phone.context.close()
    assert (tmp_path / "player-en.png").stat().st_size > 10_000
