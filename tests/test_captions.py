"""Caption checks: encodings, formats, timing against the master, WebVTT output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pysubs2
import pytest

from publisher.inputs.captions import check_captions, to_webvtt
from tests.conftest import Project
from tests.media import EN_SRT, ZH_HANS_SRT, ZH_HANT_VTT


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_good_srt_and_vtt_pass(tmp_path: Path) -> None:
    for name, text in (("en.srt", EN_SRT), ("zh-Hant.vtt", ZH_HANT_VTT), ("zh-Hans.srt", ZH_HANS_SRT)):
        assert check_captions(write(tmp_path, name, text), field="captions.x", duration=4.0) == []


def test_utf8_with_bom_passes(tmp_path: Path) -> None:
    path = write(tmp_path, "bom.srt", b"\xef\xbb\xbf" + EN_SRT.encode())
    assert check_captions(path, field="captions.en", duration=4.0) == []


def test_big5_file_is_named_with_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "zh-Hant.vtt", ZH_HANT_VTT.encode("big5"))
    [problem] = check_captions(path, field="captions.zh-Hant", duration=4.0)
    assert problem.file == str(path) and problem.field == "captions.zh-Hant"
    assert "not UTF-8" in problem.message and "Big5" in problem.message
    assert "iconv -f BIG5 -t UTF-8 zh-Hant.vtt > zh-Hant.utf8.vtt" in problem.fix
    assert problem.line == 4  # the first line with Chinese text


def test_gbk_file_is_named_with_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "zh-Hans.srt", ZH_HANS_SRT.encode("gbk"))
    [problem] = check_captions(path, field="captions.zh-Hans", duration=4.0)
    assert "GBK" in problem.message
    assert "iconv -f GB18030 -t UTF-8 zh-Hans.srt" in problem.fix


def test_utf16_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "en.srt", EN_SRT.encode("utf-16"))
    [problem] = check_captions(path, field="captions.en", duration=4.0)
    assert "UTF-16" in problem.message and "iconv -f UTF-16 -t UTF-8" in problem.fix


def test_not_a_subtitle_format(tmp_path: Path) -> None:
    path = write(tmp_path, "notes.srt", "Travel safely.\nCall 1868.\n")
    [problem] = check_captions(path, field="captions.en", duration=4.0)
    assert "neither SRT nor WebVTT" in problem.message and ".srt or .vtt" in problem.fix


def test_empty_and_cueless_files(tmp_path: Path) -> None:
    [empty] = check_captions(write(tmp_path, "e.srt", "  \n"), field="captions.en", duration=4.0)
    assert "empty" in empty.message
    [cueless] = check_captions(write(tmp_path, "c.vtt", "WEBVTT\n\n"), field="captions.en", duration=4.0)
    assert "no cues" in cueless.message


def test_cue_after_the_end_of_the_master(tmp_path: Path) -> None:
    late = EN_SRT + "\n3\n00:00:09,000 --> 00:00:11,000\nToo late.\n"
    path = write(tmp_path, "en.srt", late)
    [problem] = check_captions(path, field="captions.en", duration=4.0)
    assert "cue 3 ends at 11.000s, after the end of the video (4.000s)" in problem.message
    assert problem.line == 10
    # within the 0.5 s slack is fine; no duration known means no timing check
    assert check_captions(path, field="captions.en", duration=10.6) == []
    assert check_captions(path, field="captions.en", duration=None) == []


def test_giant_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "big.srt", EN_SRT + "x" * (5 * 1024 * 1024))
    [problem] = check_captions(path, field="captions.en", duration=4.0)
    assert "over the 5 MB limit" in problem.message


def test_missing_file(tmp_path: Path) -> None:
    [problem] = check_captions(tmp_path / "nope.srt", field="captions.en", duration=4.0)
    assert "cannot read" in problem.message


def test_to_webvtt_converts_srt(tmp_path: Path) -> None:
    vtt = to_webvtt(write(tmp_path, "en.srt", EN_SRT))
    assert vtt.startswith("WEBVTT")
    assert "00:00:00.500 --> 00:00:02.000" in vtt and "Call 1868 for help." in vtt
    parsed = pysubs2.SSAFile.from_string(vtt, format_="vtt")
    assert [(e.start, e.end) for e in parsed] == [(500, 2000), (2200, 3500)]
    zh = to_webvtt(write(tmp_path, "zh.vtt", ZH_HANT_VTT))
    assert "如需協助，請致電1868。" in zh


# --- caption text is data ---------------------------------------------------------------------------
HOSTILE_LINES = ["a \\n b \\N c", "{\\fs300\\c&H0000FF&}BIG", "<script>alert(1)</script>", "a < b & c",
                 "<i>italic</i> and <b>bold</b> and <u>under</u>",
                 "-> &amp; &lt;i&gt; <font color=red>f</font>"]


def _at(ms: int, sep: str) -> str:
    return f"00:00:{ms // 1000:02d}{sep}{ms % 1000:03d}"


HOSTILE_SRT = "".join(f"{i + 1}\n{_at(i * 500, ',')} --> {_at(i * 500 + 400, ',')}\n{line}\n\n"
                      for i, line in enumerate(HOSTILE_LINES))
# what the author wrote, escaped as WebVTT; the shared tags <i>, <b>, <u> stay formatting
HOSTILE_VTT_LINES = ["a \\n b \\N c", "{\\fs300\\c&amp;H0000FF&amp;}BIG",
                     "&lt;script&gt;alert(1)&lt;/script&gt;", "a &lt; b &amp; c",
                     "<i>italic</i> and <b>bold</b> and <u>under</u>",
                     "-&gt; &amp;amp; &amp;lt;i&amp;gt; &lt;font color=red&gt;f&lt;/font&gt;"]
HOSTILE_VTT = "WEBVTT\n\n" + "\n\n".join(f"{_at(i * 500, '.')} --> {_at(i * 500 + 400, '.')}\n{line}"
                                          for i, line in enumerate(HOSTILE_VTT_LINES)) + "\n"


def test_srt_text_is_literal_in_webvtt(tmp_path: Path) -> None:
    path = write(tmp_path, "en.srt", HOSTILE_SRT)
    assert check_captions(path, field="captions.en", duration=6.0) == []
    assert to_webvtt(path) == HOSTILE_VTT


def test_webvtt_input_follows_webvtt_rules(tmp_path: Path) -> None:
    """Entities decoded, its tags kept (unknown tags dropped as a WebVTT parser drops them); the
    output is the same WebVTT, so a WebVTT file round-trips."""
    vtt = write(tmp_path, "en.vtt", HOSTILE_VTT)
    assert check_captions(vtt, field="captions.en", duration=6.0) == []
    assert to_webvtt(vtt) == HOSTILE_VTT
    rich = write(tmp_path, "rich.vtt", "WEBVTT - title\n\nNOTE a comment\n\nSTYLE\n::cue { color: red }\n\n"
                 "intro\n00:00.500 --> 00:02.000 align:start line:0 bogus:1\n"
                 "<v.loud Roger &amp; Co>Hi &lt;3</v> <c.yellow>x</c> <script>y</script> <00:00:01.000>z\n"
                 "&nbsp;<ruby>漢<rt>かん</rt></ruby> <lang en-GB>colour</lang>\n")
    assert to_webvtt(rich) == ("WEBVTT\n\n00:00:00.500 --> 00:00:02.000 align:start line:0\n"
                               "<v.loud Roger &amp; Co>Hi &lt;3</v> <c.yellow>x</c> y <00:00:01.000>z\n"
                               "\u00a0<ruby>漢<rt>かん</rt></ruby> <lang en-GB>colour</lang>\n")


def test_ass_text_for_burning_is_literal() -> None:
    from publisher.inputs.cues import parse, to_ass_text

    parsed = parse(HOSTILE_SRT)
    assert parsed is not None and not parsed.problems
    texts = [to_ass_text(c) for c in parsed.cues]
    wj = "\u2060"
    assert texts[0] == f"a \\{wj}n b \\{wj}N c"
    assert texts[1] == f"\\{{\\{wj}fs300\\{wj}c&H0000FF&\\}}BIG"
    assert texts[4] == "{\\i1}italic{\\i0} and {\\b1}bold{\\b0} and {\\u1}under{\\u0}"
    two_lines = parse("1\n00:00:00,000 --> 00:00:01,000\nfirst\nsecond\n")
    assert two_lines is not None and to_ass_text(two_lines.cues[0]) == "first\\Nsecond"


@pytest.mark.parametrize(("name", "text", "line"), [
    ("srt-arrow", "1\n00:00:00,500 --> 00:00:01,000\nHello\n\n2\n00:00:02.5 -> 4.8\nWorld\n", 6),
    ("srt-no-blank", "1\n00:00:00,500 --> 00:00:01,000\nHello\n00:00:02.5 --> 4.8\nWorld\n", 4),
    ("srt-bad-time", "1\n00:00:00,500 --> 00:00:01,000\nHello\n\n2\n00:00:99,000 --> 00:01:00,000\nW\n", 6),
    ("vtt-arrow", "WEBVTT\n\n00:00:00.500 --> 00:00:01.000\nHello\n\n00:00:02.5 -> 4.8\nWorld\n", 6),
    ("vtt-in-cue", "WEBVTT\n\n00:00:00.500 --> 00:00:01.000\nHello\n00:00:02.500 --> 4.8\n", 5),
    ("stray-text", "1\n00:00:00,500 --> 00:00:01,000\nHello\n\nWorld after a blank line\n", 5),
    ("arrow-text", "1\n00:00:00,500 --> 00:00:01,000\nPress A --> B\n", 3),
])
def test_malformed_cue_lines_are_named_with_their_line(tmp_path: Path, name: str, text: str,
                                                       line: int) -> None:
    path = write(tmp_path, f"{name}.{name[:3]}", text)
    problems = check_captions(path, field="captions.en", duration=10.0)
    assert [p.line for p in problems] == [line], problems
    assert all(p.file == str(path) and p.field == "captions.en" and p.fix for p in problems)


def test_control_characters_in_cue_text_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "en.srt", "1\n00:00:00,500 --> 00:00:01,000\nHel\x00lo\x1b[31m\n")
    [problem] = check_captions(path, field="captions.en", duration=4.0)
    assert problem.line == 3 and "U+0000" in problem.message


def test_every_timing_problem_carries_its_line(tmp_path: Path) -> None:
    text = ("WEBVTT\n\nNOTE cues below\n\nfirst\n00:00:01.000 --> 00:00:00.500\nbackwards\n\n"
            "00:00:02.000 --> 00:00:09.000\nlate\n")
    problems = check_captions(write(tmp_path, "en.vtt", text), field="captions.en", duration=4.0)
    assert [(p.line, p.message.split(" (")[0]) for p in problems] == [
        (6, "cue 1 ends before it starts"), (9, "cue 2 ends at 9.000s, after the end of the video")]


def test_check_names_a_malformed_timing_line(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.write()
    subs = proj.manifest_path.parent / "subs"
    (subs / "en.srt").write_text(EN_SRT + "\n3\n00:00:03.6 -> 3.9\nmerged?\n", encoding="utf-8")
    (subs / "zh-Hant.vtt").write_text(ZH_HANT_VTT + "\n00:00:03.6 -> 3.9\n合併？\n", encoding="utf-8")
    for verb in ("check", "release"):
        result = cli(proj, verb, proj.manifest_path)
        assert result.exit_code == 2, result.output
        assert (f"{subs / 'en.srt'}:10: captions.en: not a cue timing line: '00:00:03.6 -> 3.9'"
                in result.output)
        assert f"{subs / 'zh-Hant.vtt'}:9: captions.zh-Hant: not a cue timing line" in result.output
    assert not (proj.root / "www").exists()
