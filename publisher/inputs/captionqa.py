"""Caption quality: what makes captions hard to read, as warnings with file and line (errors under
``check --strict``). Limits follow common broadcast style guides; Chinese, Japanese and Korean
text is denser, so its limits are lower, and its reading speed counts neither punctuation nor
spaces (as Chinese subtitling guides count it)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from publisher.inputs.cues import Cue, parse
from publisher.models import Problem

MAX_LINES = 2
MIN_SECONDS = 0.7


@dataclass(frozen=True)
class Limits:
    script: str
    chars_per_second: float
    line_chars: int
    dense: bool = False

    def read(self, text: str) -> int:
        """How many characters a viewer reads in ``text``."""
        if not self.dense:
            return len(text)
        return sum(1 for c in text if not c.isspace() and not unicodedata.category(c).startswith("P"))


LATIN = Limits("English", 17, 42)
CJK = Limits("Chinese, Japanese or Korean", 9, 16, dense=True)


def limits_for(language: str) -> Limits:
    return CJK if language.split("-")[0].lower() in ("zh", "ja", "ko") else LATIN


def caption_quality(path: Path, language: str, *, field: str, shown_as: Path | None = None) -> list[Problem]:
    """Readability problems of a caption file that passed ``check_captions``."""
    parsed = parse(path.read_bytes().decode("utf-8-sig"))
    if parsed is None or parsed.problems:
        return []
    limits = limits_for(language)
    out: list[Problem] = []

    def warn(message: str, fix: str, line: int) -> None:
        out.append(Problem(str(shown_as or path), field, message, fix, line))

    previous: tuple[int, Cue] | None = None  # the cue that ends last so far
    for number, cue in enumerate(parsed.cues, start=1):
        seconds = (cue.end - cue.start) / 1000
        lines = [line.strip() for line in cue.text.split("\n") if line.strip()]
        chars = sum(limits.read(line) for line in lines)
        if 0 < seconds < MIN_SECONDS:
            warn(f"cue {number} is on screen for {seconds:.2f} s, under {MIN_SECONDS} s",
                 "show it longer, or merge it with the cue next to it", cue.line)
        if seconds > 0 and chars / seconds > limits.chars_per_second:
            warn(f"cue {number} needs {chars / seconds:.1f} characters a second, over "
                 f"{limits.chars_per_second:g} for {limits.script}",
                 "show it longer, or shorten its text", cue.line)
        if len(lines) > MAX_LINES:
            warn(f"cue {number} has {len(lines)} lines, over {MAX_LINES}",
                 "split it into two cues", cue.line)
        for offset, line in enumerate(cue.text.split("\n"), start=1):
            if len(line.strip()) > limits.line_chars:
                warn(f"cue {number}: a line of {len(line.strip())} characters, over {limits.line_chars} "
                     f"for {limits.script}", "break the line, or shorten it", cue.line + offset)
        if previous is not None and cue.start < previous[1].end:
            warn(f"cue {number} starts before cue {previous[0]} ends (they overlap on screen)",
                 f"start it at or after cue {previous[0]}'s end", cue.line)
        if previous is None or cue.end > previous[1].end:
            previous = number, cue
    return out
