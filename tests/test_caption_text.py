"""Caption text exactly as written, on every channel.

One SRT whose cues hold ``\\n``, ``\\N``, ASS override tags, HTML-like text and ``<i>`` is released
through the CLI to a website, an app feed and the YouTube fake: each gets the same WebVTT, the
author's text escaped as WebVTT, and Chromium's own WebVTT parser shows exactly the author's words.
The same hostile text burned into a signage rendition by real ffmpeg/libass is drawn literally:
small, white, at the bottom, with no red pixel anywhere.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import Project
from tests.fakes.youtube_server import YouTubeFake
from tests.test_captions import HOSTILE_LINES, HOSTILE_SRT, HOSTILE_VTT


def shown_text(line: str) -> str:
    """What a viewer should read: the author's line without the formatting tags."""
    for tag in ("i", "b", "u"):
        line = line.replace(f"<{tag}>", "").replace(f"</{tag}>", "")
    return line


def test_hostile_caption_text_reaches_web_feed_and_youtube_as_written(
        project: Callable[[], Project], cli: Any, tmp_path: Path, chromium: Any) -> None:
    with YouTubeFake(tmp_path / "fake") as fake:
        proj = project()
        folder = proj.manifest_path.parent
        (folder / "subs" / "en.srt").write_text(HOSTILE_SRT, encoding="utf-8")
        fake.write_credentials(proj.root / "secrets" / "yt.json")
        proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                                 "public_url": "https://www.example.gov.hk/videos/"})
        proj.add_channel("app", {"kind": "app-feed", "target": str(proj.root / "feed"),
                                 "public_url": "https://app.example.gov.hk/feed/"})
        proj.add_channel("yt", {"kind": "youtube", "credentials": "secrets/yt.json", "api_root": fake.url,
                                "ca_bundle": str(fake.certfile), "chunk_mib": 0.25, "timeout": 10})
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
        assert result.exit_code == 0, result.output
        rid = proj.manifest["id"]
        website = (proj.root / "www" / rid / "captions" / "en.vtt").read_text(encoding="utf-8")
        [feed_file] = (proj.root / "feed").rglob("en.vtt")
        [vid] = fake.live_videos()
        video = fake.model.videos[vid]
        [youtube] = [video.caption_bytes[c] for c, r in video.captions.items()
                     if r["snippet"]["language"] == "en"]
    assert website == HOSTILE_VTT
    assert feed_file.read_text(encoding="utf-8") == HOSTILE_VTT
    assert youtube.decode("utf-8") == HOSTILE_VTT
    cues = chromium_cues(chromium, proj.root / "www" / rid)
    assert [c["shown"] for c in cues] == [shown_text(line) for line in HOSTILE_LINES]
    assert [c["tags"] for c in cues] == [[], [], [], [], ["I", "B", "U"], []]


class _Quiet(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".vtt": "text/vtt; charset=utf-8"}

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


CUES = """() => new Promise((resolve, reject) => {
  const track = document.querySelector('track');
  track.track.mode = 'hidden';
  const read = () => resolve(Array.from(track.track.cues).map(c => {
    const html = c.getCueAsHTML();
    return {shown: html.textContent, tags: Array.from(html.querySelectorAll('*')).map(e => e.tagName)};
  }));
  if (track.readyState === 2) read(); else track.addEventListener('load', read);
  track.addEventListener('error', () => reject(new Error('the browser refused the WebVTT file')));
})"""


def chromium_cues(browser: Any, page_folder: Path) -> list[dict[str, Any]]:
    """The published captions as Chromium's WebVTT parser reads them."""
    (page_folder / "captions-check.html").write_text(
        '<!doctype html><video><track kind="subtitles" srclang="en" src="captions/en.vtt" default></video>',
        encoding="utf-8")
    with serve(page_folder) as base:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(base + "captions-check.html")
            return list(page.evaluate(CUES))
        finally:
            context.close()


# --- burned in ------------------------------------------------------------------------------------
BURN_SRT = "1\n00:00:01,000 --> 00:00:03,000\n{\\an8}{\\fs300\\c&H0000FF&}BIG \\N <i>end</i>\n"
GRAY = 128


def frame(path: Path, at: float) -> tuple[int, int, bytes]:
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=True)
    width, height = (int(v) for v in probe.stdout.strip().split(","))
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", str(at), "-i", str(path), "-frames:v", "1",
                          "-pix_fmt", "rgb24", "-f", "rawvideo", "-"], check=True, capture_output=True).stdout
    return width, height, raw


def test_hostile_caption_is_burned_into_signage_as_plain_text(project: Callable[[], Project],
                                                             cli: Any) -> None:
    proj = project()
    folder = proj.manifest_path.parent
    gray = "color=c=gray:size=640x360:rate=25:d=4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", gray, "-c:v", "libx264",
                    "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(folder / "master.mp4")], check=True)
    (folder / "subs" / "en.srt").write_text(BURN_SRT, encoding="utf-8")
    proj.manifest.update(languages=["en"], title={"en": "Burn test"}, description={},
                         captions={"en": "subs/en.srt"})
    proj.add_channel("hall", {"kind": "signage", "target": str(proj.root / "screens"), "sites": ["a"],
                              "language": "en"})
    proj.write()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    clip = proj.root / "screens" / "a" / f"{proj.manifest['id']}.mp4"

    width, height, before = frame(clip, 0.4)  # no cue yet: the plain gray picture
    assert max(abs(v - GRAY) for v in before) < 12
    width, height, during = frame(clip, 2.0)
    pixels = [tuple(during[i:i + 3]) for i in range(0, len(during), 3)]
    red = [p for p in pixels if p[0] > 150 and p[1] < 100 and p[2] < 100]
    assert red == [], f"{len(red)} red pixels: an override tag was applied"
    changed = [i for i, p in enumerate(pixels) if sum(abs(v - GRAY) for v in p) > 60]
    assert changed, "no text was burned in"
    rows = [i // width for i in changed]
    cols = [i % width for i in changed]
    top, bottom, left, right = min(rows), max(rows), min(cols), max(cols)
    line = round(height * 0.06)  # the signage profile's font size: 6 % of the picture height
    assert bottom - top < 2 * line, f"text {bottom - top} px tall: a size tag or a line break was applied"
    assert top > height / 2 and bottom < height - line / 2, "not at the bottom: an alignment tag was applied"
    assert right - left > 8 * line, "the literal text is shorter than what was written"
    whites = sum(1 for i in changed if min(pixels[i]) > 200)
    assert whites > 100, "the text is not white"
