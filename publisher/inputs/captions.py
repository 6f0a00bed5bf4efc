"""Caption files: checks (encoding, format, cue syntax, timing) and conversion to WebVTT.

Parsing and writing are in ``publisher.inputs.cues``: caption text is data, never markup.
"""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path

import charset_normalizer

from publisher.errors import InputError
from publisher.inputs.cues import Cue, parse, split_lines
from publisher.inputs.cues import to_webvtt as cues_to_webvtt
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


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig")


def load_captions(path: Path) -> list[Cue]:
    """The cues of an SRT or WebVTT file that ``check_captions`` accepted."""
    parsed = parse(_read(path))
    if parsed is None or parsed.problems:
        raise InputError(check_captions(path, field="captions", duration=None))
    return parsed.cues


def check_captions(path: Path, *, field: str, duration: float | None,
                   shown_as: Path | None = None) -> list[Problem]:
    """Every problem with one caption file: size, encoding, format, cue syntax, control characters,
    timing against ``duration``. ``shown_as`` is the name to give in messages (the author's file
    when ``path`` is a snapshot of it)."""

    def problem(message: str, fix: str, line: int | None = None) -> Problem:
        return Problem(file=str(shown_as or path), field=field, message=message, fix=fix, line=line)

    try:
        size = path.stat().st_size
    except OSError as e:
        return [problem(f"cannot read the caption file ({e.strerror})", "check the path and permissions")]
    if size > MAX_BYTES:
        return [problem(f"caption file is {size / 1e6:.1f} MB, over the 5 MB limit",
                        "give a plain SRT or WebVTT file of this video's captions only")]
    raw = path.read_bytes()
    text, bad = _decode(shown_as or path, raw, field)
    if bad is not None or text is None:
        return [bad] if bad else []
    if not text.strip():
        return [problem("caption file is empty", "add the captions, or remove this language from captions",
                        line=1)]
    parsed = parse(text)
    if parsed is None:
        return [problem("caption file is neither SRT nor WebVTT",
                        "export the captions as .srt or .vtt (cues like '00:00:01,000 --> 00:00:03,000')",
                        line=1)]
    problems = [problem(p.message, p.fix, p.line) for p in parsed.problems]
    for number, line in enumerate(split_lines(text), start=1):
        bad_char = next((c for c in line if unicodedata.category(c) == "Cc" and c != "\t"), None)
        if bad_char is not None:
            problems.append(problem(f"contains control character U+{ord(bad_char):04X}",
                                    "remove invisible control characters from the captions", number))
    if not parsed.cues and not problems:
        return [problem("caption file has no cues", "add the captions, or remove this language", line=1)]
    for i, cue in enumerate(parsed.cues):
        start, end = cue.start / 1000, cue.end / 1000
        if end <= start:
            problems.append(problem(f"cue {i + 1} ends before it starts ({start:.3f}s -> {end:.3f}s)",
                                    "correct the cue's times", cue.line))
        elif duration is not None and end > duration + SLACK:
            problems.append(problem(
                f"cue {i + 1} ends at {end:.3f}s, after the end of the video ({duration:.3f}s)",
                "check that this caption file belongs to this master, or trim the cue", cue.line))
    return problems


def to_webvtt(path: Path) -> str:
    """The captions as WebVTT: SRT converted, WebVTT normalised, cue text escaped as WebVTT."""
    return cues_to_webvtt(load_captions(path))
