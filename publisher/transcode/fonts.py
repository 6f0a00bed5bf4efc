"""What the subtitle burner needs to know about a font file, read from its OpenType tables."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from publisher.errors import TranscodeError


def _read(f: BinaryIO, offset: int, fmt: str) -> tuple[Any, ...]:
    f.seek(offset)
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))


def line_per_em(path: str | Path, face: int = 0) -> float:
    """The font's line height (Windows ascent + descent) in ems.

    libass sizes a font so that this line, not the em, is the requested size (as GDI does), so a
    character is ``size / line_per_em`` high. ``face`` picks a font in a collection (.ttc)."""
    try:
        with open(path, "rb") as f:
            start = 0
            if f.read(4) == b"ttcf":
                (start,) = _read(f, 12 + 4 * face, ">I")
            (count,) = _read(f, start + 4, ">H")
            tables: dict[bytes, int] = {}
            for i in range(count):
                tag, _, offset, _ = _read(f, start + 12 + 16 * i, ">4sIII")
                tables[tag] = offset
            (units,) = _read(f, tables[b"head"] + 18, ">H")
            ascent, descent = _read(f, tables[b"OS/2"] + 74, ">HH")
    except (OSError, KeyError, struct.error) as exc:
        raise TranscodeError(f"cannot read the metrics of the font {path}: {exc}; reinstall it "
                             "(apt-get install --reinstall fonts-noto-cjk)") from None
    if not units or not ascent + descent:
        raise TranscodeError(f"the font {path} has no line height; reinstall it")
    return (ascent + descent) / units
