"""The manifest loader: strict YAML, every problem at once, with file, line, field and fix."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.errors import InputError
from publisher.inputs.manifest import load_release
from tests.media import write_captions

GOOD = """\
id: consular-protection-2026
master: master.mp4
languages: [en, zh-Hant, zh-Hans]
title: {en: "Consular Protection", zh-Hant: "領事保護", zh-Hans: "领事保护"}
description: {en: "Travel safely."}
captions: {en: subs/en.srt, zh-Hant: subs/zh-Hant.vtt, zh-Hans: subs/zh-Hans.srt}
tags: [consular protection, travel safety]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "master.mp4").write_bytes(b"not checked here")
    write_captions(tmp_path / "subs")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "release.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(folder: Path, text: str) -> list[str]:
    with pytest.raises(InputError) as info:
        load_release(write(folder, text))
    return [str(p) for p in info.value.problems]


def test_good_manifest_resolves_paths(folder: Path) -> None:
    release = load_release(write(folder, GOOD))
    assert release.master == (folder / "master.mp4").resolve()
    assert release.default_language == "en"
    assert release.captions["zh-Hant"].name == "zh-Hant.vtt"
    assert release.title["zh-Hans"] == "领事保护"
    assert release.text("description", "zh-Hant") == "Travel safely."  # falls back to default


def test_yaml_11_lookalikes_stay_text(folder: Path) -> None:
    text = GOOD.replace("tags: [consular protection, travel safety]",
                        "tags: [NO, 09:30, 1e3, 2026-12-01, yes]")
    release = load_release(write(folder, text))
    assert release.tags == ["NO", "09:30", "1e3", "2026-12-01", "yes"]


def test_duplicate_key_is_an_error_with_line(folder: Path) -> None:
    found = problems(folder, GOOD + "id: other-id\n")
    assert any("duplicate key 'id'" in p and "release.yaml:8" in p and "first on line 1" in p for p in found)


def test_unknown_key_and_missing_title_reported_together(folder: Path) -> None:
    text = GOOD.replace("title: {en: \"Consular Protection\", ", "title: {").replace("tags:", "tagz:")
    with pytest.raises(InputError) as info:
        load_release(write(folder, text))
    fields = {p.field for p in info.value.problems}
    assert "tagz" in fields  # unknown key (schema stage)
    text2 = GOOD.replace("title: {en: \"Consular Protection\", ", "title: {")
    found = problems(folder, text2)
    assert any("no title for language 'en'" in p and "add title.en" in p for p in found)


def test_missing_file_and_path_escape(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.srt"
    outside.write_text("1\n00:00:00,000 --> 00:00:01,000\nx\n", encoding="utf-8")
    (folder / "subs" / "link.srt").symlink_to(outside)
    text = (GOOD.replace("master: master.mp4", "master: missing.mov")
            .replace("en: subs/en.srt", "en: subs/link.srt")
            .replace("zh-Hans: subs/zh-Hans.srt", "zh-Hans: ../../etc/passwd"))
    found = problems(folder, text)
    assert any("master" in p and "file 'missing.mov' does not exist" in p for p in found)
    assert any("captions.en" in p and "leads outside the manifest's folder" in p for p in found)
    assert any("captions.zh-Hans" in p and ("outside" in p or "does not exist" in p) for p in found)


def test_time_without_zone_refused_and_timezone_applies(folder: Path) -> None:
    found = problems(folder, GOOD + "publish_at: 2026-12-01T10:00:00\n")
    assert any("publish_at" in p and "has no time zone" in p for p in found)
    found = problems(folder, GOOD + "publish_at: 2026-12-01\n")
    assert any("publish_at" in p and "no time of day" in p for p in found)
    text = GOOD + "publish_at: 2026-12-01T10:00:00\ntimezone: Asia/Hong_Kong\n"
    release = load_release(write(folder, text))
    assert release.publish_at == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_offset_disagreeing_with_timezone_and_dst_gaps(folder: Path) -> None:
    found = problems(folder, GOOD + "publish_at: 2026-12-01T10:00:00+01:00\ntimezone: Asia/Hong_Kong\n")
    assert any("disagrees with timezone" in p for p in found)
    found = problems(folder, GOOD + "publish_at: 2026-03-29T01:30:00\ntimezone: Europe/London\n")
    assert any("does not exist in Europe/London" in p for p in found)
    found = problems(folder, GOOD + "publish_at: 2026-10-25T01:30:00\ntimezone: Europe/London\n")
    assert any("occurs twice" in p for p in found)


def test_control_characters_and_bad_id(folder: Path) -> None:
    text = GOOD.replace("id: consular-protection-2026", "id: Bad_ID").replace(
        "\"Consular Protection\"", "\"Consular\\u0007Protection\"")
    with pytest.raises(InputError) as info:
        load_release(write(folder, text))
    assert any(p.field == "id" for p in info.value.problems)
    found = problems(folder, GOOD.replace("\"Consular Protection\"", "\"Consular\\u0007Protection\""))
    assert any("title.en" in p and "control character U+0007" in p for p in found)


def test_anchors_and_aliases_refused(folder: Path) -> None:
    text = GOOD.replace("tags: [consular protection, travel safety]", "tags: &t [a]\nchannels: *t")
    found = problems(folder, text)
    assert any("anchors and aliases" in p for p in found)


def test_not_yaml_and_not_utf8(folder: Path) -> None:
    found = problems(folder, "id: [unclosed\n")
    assert any("not valid YAML" in p for p in found)
    path = folder / "release.yaml"
    path.write_bytes("title: 領事".encode("big5"))
    with pytest.raises(InputError) as info:
        load_release(path)
    assert "not UTF-8" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(folder: Path) -> None:  # pragma: no cover - CI runs as root
    (folder / "master.mp4").chmod(0)
    assert any("not readable" in p for p in problems(folder, GOOD))
