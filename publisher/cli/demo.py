"""A self-contained demo release: a short generated master with captions in three languages,
released to a website folder on this machine. Used by ``publisher demo`` and the README."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

SRT = {
    "en": ["Travelling abroad? Know before you go.", "In distress outside Hong Kong? Call 1868."],
    "zh-Hant": ["出門旅遊，安全第一。", "在外遇事，請致電1868求助。"],
    "zh-Hans": ["出门旅游，安全第一。", "在外遇事，请致电1868求助。"],
}
TITLES = {"en": "Consular Protection: Travel Safely", "zh-Hant": "領事保護　出行平安",
          "zh-Hans": "领事保护　出行平安"}

CONFIG = """\
# publisher demo: one website channel in a local folder.
timezone: Asia/Hong_Kong
channels:
  demo-web:
    kind: website
    target: www/videos
    public_url: http://localhost:{port}/videos/
"""


def _srt(lines: list[str], seconds: float) -> str:
    half = seconds / 2
    def ts(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
    return "".join(f"{i + 1}\n{ts(i * half + 0.2)} --> {ts((i + 1) * half - 0.2)}\n{text}\n\n"
                   for i, text in enumerate(lines))


def make_demo(folder: Path, seconds: float = 8.0, port: int = 8000) -> tuple[Path, Path]:
    """Writes publisher.yaml and release/ (master, captions, manifest). Returns both paths."""
    from publisher.inputs.media import require_ffmpeg

    require_ffmpeg()
    release = folder / "release"
    (release / "subs").mkdir(parents=True, exist_ok=True)
    master = release / "master.mp4"
    if not master.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=25:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac",
             "-shortest", str(master)], check=True)
    for lang, lines in SRT.items():
        (release / "subs" / f"{lang}.srt").write_text(_srt(lines, seconds), encoding="utf-8")
    titles = "\n".join(f"  {k}: \"{v}\"" for k, v in TITLES.items())
    captions = "\n".join(f"  {k}: subs/{k}.srt" for k in SRT)
    manifest = release / "release.yaml"
    manifest.write_text(
        "id: consular-protection-demo\nmaster: master.mp4\nlanguages: [en, zh-Hant, zh-Hans]\n"
        f"title:\n{titles}\ndescription:\n  en: \"A demo of publisher.\"\n"
        f"captions:\n{captions}\ntags: [consular protection, travel safety]\n", encoding="utf-8")
    config = folder / "publisher.yaml"
    if not config.exists():
        config.write_text(CONFIG.format(port=port), encoding="utf-8")
    return config, manifest


def serve(www: Path, port: int, ready: Callable[[str], None]) -> None:
    """Serve the demo's website folder on this machine only, until Ctrl-C."""
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", port), partial(Quiet, directory=str(www))) as server:
        ready(f"http://localhost:{server.server_port}/")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
