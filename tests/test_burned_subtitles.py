"""Signage subtitles stay legible over any picture: white text on a dark box, measured in the pixels.

Real signage renditions (the transcoder, ffmpeg, libass, Noto CJK) of one-colour masters (white,
yellow, black: lavfi colour sources) with an English and a Chinese caption. A frame is read as raw
RGB from ffmpeg; the caption area is where the picture differs from its plain colour; inside it,
the text is the brightest pixels and what is behind the text is the area's typical pixel. Their
WCAG contrast must be at least 4.5:1, and the caption must be at least 5 % of the picture high.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from publisher.errors import TranscodeError
from publisher.inputs.media import probe_master
from publisher.models import Release, RenditionRequest
from publisher.transcode import Transcoder
from publisher.transcode.fonts import line_per_em

W, H = 640, 360
COLOURS = {"white": "white", "yellow": "yellow", "black": "black"}
CAPTIONS = {"en": "1\n00:00:00,200 --> 00:00:01,800\nTravel safely.\n",
            "zh-Hant": "1\n00:00:00,200 --> 00:00:01,800\n出行注意安全。\n"}


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB pixels (..., 3) in 0..255."""
    c = rgb.astype(float) / 255
    lin = np.where(c <= 0.03928, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.asarray(lin @ np.array([0.2126, 0.7152, 0.0722]))


def contrast(a: float, b: float) -> float:
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def frame(video: Path, at: float) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-ss", str(at), "-i", str(video), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(H, W, 3)


def signage(tmp: Path, cache: Path, colour: str, lang: str) -> Path:
    """The signage rendition of a 2 s one-colour master with one ``lang`` caption burned in."""
    folder = tmp / f"{colour}-{lang}"
    folder.mkdir()
    master = folder / "master.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c={colour}:s={W}x{H}:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(master)], check=True)
    (folder / "caption.srt").write_text(CAPTIONS[lang], encoding="utf-8")
    release = Release(id=f"{colour}-{lang.lower()}", manifest_path=folder / "release.yaml",
                      master=master, languages=[lang], title={lang: "Travel safely"},
                      captions={lang: folder / "caption.srt"})
    request = RenditionRequest(profile="signage", params={"language": lang})
    transcoder = Transcoder(cache)
    plan = transcoder.plan(release, probe_master(master), {"screens": [request]})
    return transcoder.run(plan)[plan.key_for("screens", request)].main_path


@pytest.mark.parametrize("lang", ["en", "zh-Hant"])
@pytest.mark.parametrize("colour", list(COLOURS))
def test_caption_keeps_its_contrast_over_any_picture(colour: str, lang: str, tmp_path: Path,
                                                     rendition_cache: Path) -> None:
    pixels = frame(signage(tmp_path, rendition_cache, colour, lang), 1.0)
    plain = np.median(pixels[:40].reshape(-1, 3), axis=0)  # the picture's own colour, far from the caption
    changed = np.abs(pixels.astype(int) - plain).max(axis=2) > 24
    rows, cols = np.nonzero(changed)
    assert len(rows), "no caption in the picture"
    assert rows.min() > H // 2, "something other than the caption changed the picture"
    area = pixels[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    lum = luminance(area).ravel()
    text, behind = float(np.percentile(lum, 99)), float(np.median(lum))
    assert contrast(text, behind) >= 4.5, (colour, lang, text, behind)
    # the caption (on the bright frames: its box; on black: its letters) is at least 5 % of the height
    assert rows.max() - rows.min() + 1 >= 0.05 * H, (rows.min(), rows.max())
    if colour != "black":
        assert behind <= 0.05  # a dark box, not the bright picture, is behind the text


def test_an_unreadable_font_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "NotoSansCJK-Regular.ttc"
    broken.write_bytes(b"ttcf" + bytes(12))
    with pytest.raises(TranscodeError, match="cannot read the metrics of the font .*fonts-noto-cjk"):
        line_per_em(broken)
