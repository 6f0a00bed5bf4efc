"""Caption checks: encodings, formats, timing against the master, WebVTT output."""

from __future__ import annotations

from pathlib import Path

import pysubs2

from publisher.captions import check_captions, to_webvtt
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
