"""Caption quality in `check`: reading speed, line length, line count, overlaps and short cues are
warnings with file and line (the release still goes through); `check --strict` makes them errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Project

HARD_TO_READ = """1
00:00:00,000 --> 00:00:00,500
Go.

2
00:00:00,600 --> 00:00:01,600
This sentence is far too long to read in one second.

3
00:00:01,700 --> 00:00:03,500
One line
two lines
three lines

4
00:00:03,000 --> 00:00:04,000
Overlap.
"""

ZH_HARD = """WEBVTT

00:00:00.500 --> 00:00:01.500
領事保護動畫短片請留意旅遊安全注意事項

00:00:02.000 --> 00:00:03.500
如需協助，請致電一八六八。
"""


def hard_project(project: Callable[[], Project]) -> tuple[Project, Path, Path]:
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.write()
    en = proj.manifest_path.parent / "subs" / "en.srt"
    zh = proj.manifest_path.parent / "subs" / "zh-Hant.vtt"
    en.write_text(HARD_TO_READ, encoding="utf-8")
    zh.write_text(ZH_HARD, encoding="utf-8")
    return proj, en, zh


def test_readability_problems_are_warnings_with_file_and_line(project: Callable[[], Project],
                                                              cli: Any) -> None:
    proj, en, zh = hard_project(project)
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines()
                if line.startswith("warning:") and "captions." in line]
    expected = [
        (f"{en}:2", "cue 1 is on screen for 0.50 s, under 0.7 s"),
        (f"{en}:6", "cue 2 needs 52.0 characters a second, over 17 for English"),
        (f"{en}:7", "cue 2: a line of 52 characters, over 42 for English"),
        (f"{en}:10", "cue 3 has 3 lines, over 2"),
        (f"{en}:16", "cue 4 starts before cue 3 ends"),
        (f"{zh}:3", "cue 1 needs 19.0 characters a second, over 9 for Chinese"),
        (f"{zh}:4", "cue 1: a line of 19 characters, over 16 for Chinese"),
    ]
    for where, what in expected:
        assert any(f"{where}: captions." in w and what in w for w in warnings), (where, what, warnings)
    assert len(warnings) == len(expected), warnings
    # 11 characters read in 1.5 s (punctuation not counted): within 9 a second
    assert not any(f"{zh}:6" in w for w in warnings)


def test_strict_turns_them_into_errors(project: Callable[[], Project], cli: Any) -> None:
    proj, en, zh = hard_project(project)
    result = cli(proj, "check", "--strict", proj.manifest_path)
    assert result.exit_code == 2, result.output
    assert f"{en}:10: captions.en: cue 3 has 3 lines, over 2 (fix: split it into two cues)" in result.output
    assert f"{zh}:4: captions.zh-Hant" in result.output
    assert "OK " not in result.output


def test_good_captions_pass_strict(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.write()
    result = cli(proj, "check", "--strict", proj.manifest_path)
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if "warning" in line and "captions." in line]
