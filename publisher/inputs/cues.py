"""Caption cues as data: a small SRT/WebVTT parser, and writers for WebVTT and for libass (ASS).

Cue text is literal. In SRT the only markup is what SRT and WebVTT share: ``<i>``, ``<b>``,
``<u>`` and their end tags. WebVTT input follows WebVTT's rules: character references (``&amp;``)
are decoded, its tags (``c i b u v lang ruby rt`` and timestamps) are kept and unknown tags are
dropped, as a WebVTT parser drops them. The writers escape text for their format, so nothing an
author typed (``{\\fs300}``, ``\\N``, ``<script>``) ever becomes markup downstream.

A general subtitle library was not used for this: converting through ASS makes ``\\N``, ``\\n``
and ``{...}`` in the text markup, which is exactly what must not happen.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from enum import StrEnum

_TIME = r"(?:(\d{1,6}):)?([0-5]\d):([0-5]\d)[.,](\d{1,3})"
TIMING = re.compile(rf"^\s*{_TIME}[ \t]*-->[ \t]*{_TIME}(?:[ \t]+(.*?))?\s*$")
# what an attempted timing line looks like even when it is wrong (``00:00:02.5 -> 4.8``)
_LOOKS_LIKE_TIMING = re.compile(r"-->|^\s*\d+:[\d:.,]*\s*-{1,2}>")
_TIMESTAMP_TAG = re.compile(rf"^{_TIME}$")
_SETTING = re.compile(
    r"^(vertical:(rl|lr)|line:-?\d+(\.\d+)?%?(,(start|center|end))?"
    r"|position:\d+(\.\d+)?%(,(line-left|center|line-right))?|size:\d+(\.\d+)?%"
    r"|align:(start|center|end|left|right))$")
_CLASS = re.compile(r"^[A-Za-z0-9_-]+$")
_SRT_TAG = re.compile(r"(</?[ibuIBU]>)")
_VTT_TAG = re.compile(r"<([^>\n]*)>?")
SHARED_TAGS = ("i", "b", "u")
VTT_TAGS = ("c", "i", "b", "u", "v", "lang", "ruby", "rt")
WORD_JOINER = "\u2060"  # invisible in Noto CJK; keeps a backslash from starting a libass escape


class CaptionFormat(StrEnum):
    SRT = "srt"
    VTT = "vtt"


@dataclass(frozen=True)
class Tag:
    """Markup inside cue text. ``name`` is "" for a WebVTT timestamp tag (time in ``annotation``)."""

    name: str
    end: bool = False
    classes: tuple[str, ...] = ()
    annotation: str = ""


Token = str | Tag


@dataclass(frozen=True)
class Cue:
    start: int  # milliseconds
    end: int
    line: int  # the line of its timing line, for messages
    tokens: tuple[Token, ...]  # literal text ("\n" between lines) and tags
    settings: str = ""  # WebVTT cue settings that are well formed

    @property
    def text(self) -> str:
        """The words as written, without markup."""
        return "".join(t for t in self.tokens if isinstance(t, str))


@dataclass(frozen=True)
class SyntaxProblem:
    line: int
    message: str
    fix: str


@dataclass
class Parsed:
    format: CaptionFormat
    cues: list[Cue] = field(default_factory=list)
    problems: list[SyntaxProblem] = field(default_factory=list)


def detect(lines: list[str]) -> CaptionFormat | None:
    """WebVTT by its header; SRT when some line is (or tries to be) a cue timing; else None."""
    first = lines[0] if lines else ""
    if first.startswith("WEBVTT") and first[6:7] in ("", " ", "\t"):
        return CaptionFormat.VTT
    if any(_LOOKS_LIKE_TIMING.search(line) for line in lines):
        return CaptionFormat.SRT
    return None


def split_lines(text: str) -> list[str]:
    """Lines as SRT and WebVTT count them: only CR, LF and CRLF end a line."""
    return re.split(r"\r\n|\r|\n", text)


def parse(text: str) -> Parsed | None:
    """The cues of an SRT or WebVTT text, with every syntax problem found; None if it is neither."""
    lines = split_lines(text)
    fmt = detect(lines)
    if fmt is None:
        return None
    parsed = Parsed(fmt)
    _Parser(lines, parsed).run()
    return parsed


class _Parser:
    def __init__(self, lines: list[str], out: Parsed) -> None:
        self.lines = lines
        self.out = out
        self.vtt = out.format is CaptionFormat.VTT

    def problem(self, index: int, message: str, fix: str) -> None:
        self.out.problems.append(SyntaxProblem(index + 1, message, fix))

    def blank(self, index: int) -> bool:
        return not self.lines[index].strip()

    def run(self) -> None:
        i, n = 0, len(self.lines)
        if self.vtt:  # the header runs to the first blank line
            i = 1
            while i < n and not self.blank(i) and not _LOOKS_LIKE_TIMING.search(self.lines[i]):
                i += 1
        while i < n:
            if self.blank(i):
                i += 1
                continue
            i = self.block(i)

    def skip_block(self, i: int) -> int:
        while i < len(self.lines) and not self.blank(i):
            i += 1
        return i

    def block(self, i: int) -> int:
        """Read one block starting at line ``i``; returns where the next one may start."""
        lines, n = self.lines, len(self.lines)
        head = lines[i].strip()
        nxt = lines[i + 1] if i + 1 < n else ""
        if self.vtt and re.match(r"^(NOTE|STYLE|REGION)([ \t]|$)", head):
            return self.skip_block(i)
        if TIMING.match(lines[i]):
            timing = i
        elif not _LOOKS_LIKE_TIMING.search(lines[i]) and TIMING.match(nxt):
            timing = i + 1  # a cue's number (SRT) or name (WebVTT)
        else:
            bad = next((k for k in (i, i + 1) if k < n and _LOOKS_LIKE_TIMING.search(lines[k])), None)
            if bad is not None:
                self.timing_problem(bad)
            else:
                self.problem(i, "text outside a cue (a blank line ends a cue; each cue starts with "
                             f"{'an optional name and ' if self.vtt else 'its number and '}a timing line)",
                             "remove the blank line inside the cue above, or give this text its own "
                             "timing line")
            return self.skip_block(i)
        return self.cue(timing)

    def timing_problem(self, index: int) -> None:
        sep = "." if self.vtt else ","
        shown = "".join(c if c.isprintable() else "?" for c in self.lines[index].strip()[:60])
        self.problem(index, f"not a cue timing line: '{shown}'",
                     f"write start and end in full, e.g. 00:00:02{sep}500 --> 00:00:04{sep}800; if it is "
                     "caption text, write it without '-->' (SRT and WebVTT read that as a timing)")

    def cue(self, timing: int) -> int:
        lines, n = self.lines, len(self.lines)
        m = TIMING.match(lines[timing])
        assert m is not None
        start, end = _ms(m.groups()[0:4]), _ms(m.groups()[4:8])
        settings = " ".join(s for s in (m.group(9) or "").split() if _SETTING.match(s)) if self.vtt else ""
        text: list[str] = []
        j = timing + 1
        while j < n and not self.blank(j):
            if TIMING.match(lines[j]):  # the next cue, without a blank line before it
                if text and not self.vtt and text[-1].strip().isdigit():
                    text.pop()
                break
            if _LOOKS_LIKE_TIMING.search(lines[j]):
                self.timing_problem(j)
                return self.skip_block(j)
            text.append(lines[j])
            j += 1
        payload = "\n".join(text)
        tokens = _vtt_tokens(payload) if self.vtt else _srt_tokens(payload)
        self.out.cues.append(Cue(start, end, timing + 1, tuple(tokens), settings))
        return j


def _ms(parts: tuple[str | None, ...]) -> int:
    hours, minutes, seconds, fraction = parts
    frac = int((fraction or "0").ljust(3, "0"))
    return ((int(hours or 0) * 60 + int(minutes or 0)) * 60 + int(seconds or 0)) * 1000 + frac


def _srt_tokens(payload: str) -> list[Token]:
    tokens: list[Token] = []
    for part in _SRT_TAG.split(payload):
        m = _SRT_TAG.fullmatch(part)
        if m:
            tokens.append(Tag(part.strip("</>").lower(), end=part.startswith("</")))
        elif part:
            tokens.append(part)
    return tokens


def _vtt_tokens(payload: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    for m in _VTT_TAG.finditer(payload):
        if m.start() > pos:
            tokens.append(html.unescape(payload[pos:m.start()]))
        tag = _vtt_tag(m.group(1))
        if tag is not None:
            tokens.append(tag)
        pos = m.end()
    if pos < len(payload):
        tokens.append(html.unescape(payload[pos:]))
    return tokens


def _vtt_tag(content: str) -> Tag | None:
    """A WebVTT tag from what stood between ``<`` and ``>``; None for tags WebVTT ignores."""
    if content.startswith("/"):
        name = content[1:].split(".")[0].strip()
        return Tag(name, end=True) if name in VTT_TAGS else None
    if _TIMESTAMP_TAG.match(content):
        m = _TIMESTAMP_TAG.match(content)
        assert m is not None
        return Tag("", annotation=timestamp(_ms(m.groups())))
    head, *rest = re.split(r"[ \t\f]", content, maxsplit=1)
    annotation = rest[0] if rest else ""
    name, *classes = head.split(".")
    if name not in VTT_TAGS:
        return None
    keep = annotation.strip() if name in ("v", "lang") else ""
    return Tag(name, classes=tuple(c for c in classes if _CLASS.match(c)), annotation=html.unescape(keep))


# --- writers ------------------------------------------------------------------------------------
def timestamp(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_markup(token: Token) -> str:
    if isinstance(token, str):
        return _vtt_escape(token)
    if not token.name:
        return f"<{token.annotation}>"
    if token.end:
        return f"</{token.name}>"
    classes = "".join(f".{c}" for c in token.classes)
    return f"<{token.name}{classes}{' ' + _vtt_escape(token.annotation) if token.annotation else ''}>"


def to_webvtt(cues: list[Cue]) -> str:
    """A WebVTT file of ``cues``: text escaped (``&``, ``<``, ``>``), tags kept, no empty lines."""
    blocks = []
    for cue in cues:
        timing = f"{timestamp(cue.start)} --> {timestamp(cue.end)}"
        body = "".join(_vtt_markup(t) for t in cue.tokens)
        lines = [line for line in body.split("\n") if line.strip()]  # an empty line would end the cue
        blocks.append("\n".join([f"{timing} {cue.settings}" if cue.settings else timing, *lines]))
    return "WEBVTT\n\n" + "\n\n".join(blocks) + "\n"


def ass_escape(text: str) -> str:
    """Literal text for libass: ``\\{`` and ``\\}`` are literal braces, a backslash followed by an
    invisible word joiner starts no escape (so ``\\N``, ``\\h`` and ``\\fs`` stay as written), and
    a line break becomes ``\\N``."""
    text = text.replace("\\", "\\" + WORD_JOINER)
    text = text.replace("{", "\\{").replace("}", "\\}")
    return text.replace("\t", " ").replace("\n", "\\N")


def to_ass_text(cue: Cue) -> str:
    """The cue's text as an ASS event text: literal, with the shared tags as ASS style toggles."""
    parts = []
    for token in cue.tokens:
        if isinstance(token, str):
            parts.append(ass_escape(token))
        elif token.name in SHARED_TAGS:
            parts.append(f"{{\\{token.name}{0 if token.end else 1}}}")
    return "".join(parts)
