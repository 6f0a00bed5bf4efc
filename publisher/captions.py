"""Caption files: checks (encoding, format, timing) and conversion to WebVTT."""

from __future__ import annotations

import codecs
from pathlib import Path

import charset_normalizer
import pysubs2
from pysubs2.formats import autodetect_format

from publisher.models import Problem

MAX_BYTES = 5 * 1024 * 1024
SLACK = 0.5  # seconds a cue may run past the end of the master
_BIG5 = {"big5", "big5hkscs", "cp950"}
_GB = {"gb18030", "gbk", "gb2312", "hz", "cp936"}


def guess_encoding(raw: bytes) -> str | None:
    """Which non-UTF-8 encoding a caption file looks like: UTF-16, BIG5, GB18030 (GBK) or None."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw[:400]:
        return "UTF-16"
    # charset_normalizer alone may call short GBK text Korean; only Chinese answers count here.
    for match in charset_normalizer.from_bytes(raw):
        name = match.encoding.lower()
        if name in _BIG5:
            return "BIG5"
        if name in _GB:
            return "GB18030"
    for enc, label in (("big5", "BIG5"), ("gb18030", "GB18030")):
        try:
            raw.decode(enc)
        except UnicodeDecodeError:
            continue
        return label
    return None


def _decode(path: Path, raw: bytes, field: str) -> tuple[str | None, Problem | None]:
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        guess = guess_encoding(raw)
    out = f"{path.stem}.utf8{path.suffix}"
    if guess:
        label = {"UTF-16": "UTF-16", "BIG5": "Big5", "GB18030": "GBK/GB18030"}[guess]
        message = f"caption file is not UTF-8; it looks like {label}"
        fix = f"convert it to UTF-8: iconv -f {guess} -t UTF-8 {path.name} > {out}, then point {field} at it"
    else:
        message = "caption file is not UTF-8 text (unknown encoding)"
        fix = "save it as UTF-8 in your subtitle editor (e.g. 'Save with encoding: UTF-8')"
    return None, Problem(file=str(path), field=field, message=message, fix=fix, line=line)


def _cue_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines(), start=1) if "-->" in line]


def load_captions(path: Path) -> pysubs2.SSAFile:
    """Parse an SRT or WebVTT file that ``check_captions`` accepted."""
    text = path.read_bytes().decode("utf-8-sig")
    return pysubs2.SSAFile.from_string(text, format_=autodetect_format(text))


def check_captions(path: Path, *, field: str, duration: float | None) -> list[Problem]:
    """Every problem with one caption file: size, encoding, format, cues, timing against ``duration``."""

    def problem(message: str, fix: str, line: int | None = None) -> Problem:
        return Problem(file=str(path), field=field, message=message, fix=fix, line=line)

    try:
        size = path.stat().st_size
    except OSError as e:
        return [problem(f"cannot read the caption file ({e.strerror})", "check the path and permissions")]
    if size > MAX_BYTES:
        return [problem(f"caption file is {size / 1e6:.1f} MB, over the 5 MB limit",
                        "give a plain SRT or WebVTT file of this video's captions only")]
    raw = path.read_bytes()
    text, bad = _decode(path, raw, field)
    if bad is not None or text is None:
        return [bad] if bad else []
    if not text.strip():
        return [problem("caption file is empty", "add the captions, or remove this language from captions")]
    try:
        fmt = autodetect_format(text)
    except Exception:  # pysubs2 raises several kinds for text it cannot place
        fmt = None
    if fmt not in ("srt", "vtt"):
        return [problem("caption file is neither SRT nor WebVTT",
                        "export the captions as .srt or .vtt (cues like '00:00:01,000 --> 00:00:03,000')",
                        line=1)]
    try:
        subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as e:  # malformed timing lines etc.
        return [problem(f"caption file does not parse as {fmt.upper()}: {e}",
                        "fix the cue at the line shown or export the file again")]
    cues = [ev for ev in subs if not ev.is_comment]
    if not cues:
        return [problem("caption file has no cues", "add the captions, or remove this language")]
    lines = _cue_lines(text)
    line_of = (lambda i: lines[i]) if len(lines) == len(cues) else (lambda i: None)  # noqa: E731
    problems: list[Problem] = []
    for i, cue in enumerate(cues):
        start, end = cue.start / 1000, cue.end / 1000
        if end <= start:
            problems.append(problem(f"cue {i + 1} ends before it starts ({start:.3f}s -> {end:.3f}s)",
                                    "correct the cue's times", line_of(i)))
        elif duration is not None and end > duration + SLACK:
            problems.append(problem(
                f"cue {i + 1} ends at {end:.3f}s, after the end of the video ({duration:.3f}s)",
                "check that this caption file belongs to this master, or trim the cue", line_of(i)))
    return problems


def to_webvtt(path: Path) -> str:
    """The captions as WebVTT text (SRT converted, WebVTT normalised)."""
    text: str = load_captions(path).to_string("vtt")
    return text
