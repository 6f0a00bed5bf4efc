"""`publisher draft`: zh-Hans drafted from zh-Hant (and back) with OpenCC, through the CLI: the
manifest edited round-trip with each draft marked, caption files converted with their timings and
every non-text line kept, nothing overwritten without --force, drafts shown as drafts until edited
or approved, and with require_approval nothing drafted goes out unapproved."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from publisher.inputs.cues import TIMING
from tests.conftest import Project
from tests.console_site import Site

MANIFEST = """# Consular protection, autumn campaign
id: consular-protection-2026
master: master.mp4
languages: [en, zh-Hant, zh-Hans]
title:
  en: Consular Protection
  zh-Hant: 領事保護  # approved by the bureau
description:
  en: An animated video on consular protection and travel safety.
  zh-Hant: |
    領事保護動畫短片。
    出發前請留意旅遊安全資訊。
captions:
  en: subs/en.srt
  zh-Hant: subs/zh-Hant.vtt
thumbnail: poster.png
tags: [consular protection, 領事保護]
"""

HANT_VTT = """WEBVTT
Kind: captions

NOTE 這是註釋，不應改動

intro
00:00:00.500 --> 00:00:02.000 align:start
<v 陳大文>出行注意安全。\\N {\\an8}

00:00:02.200 --> 00:00:03.500
如需協助，請致電1868。
"""


def drafting_project(project: Callable[[], Project], **settings: Any) -> Project:
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.settings.update(settings)
    proj.write()
    proj.manifest_path.write_text(MANIFEST, encoding="utf-8")
    subs = proj.manifest_path.parent / "subs"
    (subs / "zh-Hant.vtt").write_text(HANT_VTT, encoding="utf-8")
    (subs / "zh-Hans.srt").unlink()
    return proj


def test_draft_fills_simplified_from_traditional(project: Callable[[], Project], cli: Any) -> None:
    proj = drafting_project(project)
    result = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans")
    assert result.exit_code == 0, result.output
    text = proj.manifest_path.read_text(encoding="utf-8")
    assert text.startswith("# Consular protection, autumn campaign\n")
    assert "zh-Hant: 領事保護  # approved by the bureau" in text
    assert "  zh-Hans: 领事保护  # machine draft from zh-Hant (OpenCC hk2s); review it\n" in text
    assert "  # machine draft from zh-Hant (OpenCC hk2s); review it\n  zh-Hans: |\n" in text
    assert "    出发前请留意旅游安全资讯。\n" in text
    assert "- 领事保护  # machine draft" in text and "- consular protection\n" in text
    assert "  zh-Hans: subs/zh-Hans.vtt  # machine draft" in text
    assert text.index("zh-Hant: 領事保護") < text.index("zh-Hans: 领事保护") < text.index("description:")
    drafted = (proj.manifest_path.parent / "subs" / "zh-Hans.vtt").read_text(encoding="utf-8")
    source, out = HANT_VTT.splitlines(), drafted.splitlines()
    assert len(source) == len(out)
    for a, b in zip(source, out, strict=True):
        if TIMING.match(a) or not a or a in ("WEBVTT", "Kind: captions", "intro") or a.startswith("NOTE"):
            assert a == b  # timings, settings, header, names and notes byte for byte
    assert "<v 陈大文>出行注意安全。\\N {\\an8}" in out
    assert "如需协助，请致电1868。" in out
    # the side-by-side view shows source and draft of each value and cue
    for shown in ("领事保护", "領事保護", "如需協助", "如需协助", "captions.zh-Hans", "00:00:02.200"):
        assert shown in result.stdout
    checked = cli(proj, "check", proj.manifest_path)
    assert checked.exit_code == 0, checked.output


def test_nothing_is_overwritten_without_force(project: Callable[[], Project], cli: Any) -> None:
    proj = drafting_project(project)
    assert cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans").exit_code == 0
    caption = proj.manifest_path.parent / "subs" / "zh-Hans.vtt"
    caption.write_text(caption.read_text(encoding="utf-8").replace("请致电", "请拨打"), encoding="utf-8")
    proj.manifest_path.write_text(proj.manifest_path.read_text(encoding="utf-8").replace(
        "zh-Hans: 领事保护  # machine draft from zh-Hant (OpenCC hk2s); review it", "zh-Hans: 领事保护工作"),
        encoding="utf-8")
    edited = proj.manifest_path.read_text(encoding="utf-8")
    again = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans")
    assert again.exit_code == 0, again.output
    assert proj.manifest_path.read_text(encoding="utf-8") == edited
    assert "请拨打" in caption.read_text(encoding="utf-8")
    assert "kept title.zh-Hans" in again.stdout and "kept captions.zh-Hans (subs/zh-Hans.vtt)" in again.stdout
    forced = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans", "--force")
    assert forced.exit_code == 0, forced.output
    assert "请致电" in caption.read_text(encoding="utf-8")
    assert "zh-Hans: 领事保护  # machine draft" in proj.manifest_path.read_text(encoding="utf-8")


def test_traditional_from_simplified_and_bad_requests(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    proj.manifest["title"] = {"en": "Consular Protection", "zh-Hans": "领事保护"}
    proj.manifest["description"] = {"en": "x", "zh-Hans": "出发前请留意旅游安全资讯"}
    proj.manifest["captions"] = {"zh-Hans": "subs/zh-Hans.srt"}
    proj.manifest["languages"] = ["en", "zh-Hans"]
    proj.write()
    before = proj.manifest_path.read_text(encoding="utf-8")
    wrong = cli(proj, "draft", proj.manifest_path, "--to", "fr")
    assert wrong.exit_code == 2 and "--to zh-Hans or --to zh-Hant" in wrong.output
    assert proj.manifest_path.read_text(encoding="utf-8") == before
    result = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hant")
    assert result.exit_code == 0, result.output
    text = proj.manifest_path.read_text(encoding="utf-8")
    assert "zh-Hant: 領事保護  # machine draft from zh-Hans (OpenCC s2hk)" in text
    assert "出發前請留意旅遊安全資訊" in text
    assert "- zh-Hant  # " not in text and "zh-Hant" in text.split("languages:")[1].split("master")[0]
    srt = (proj.manifest_path.parent / "subs" / "zh-Hant.srt").read_text(encoding="utf-8")
    assert "00:00:02,200 --> 00:00:03,500" in srt and "如需協助，請致電1868。" in srt


def test_drafts_stay_drafts_until_edited_or_approved(project: Callable[[], Project], cli: Any) -> None:
    proj = drafting_project(project)
    assert cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans").exit_code == 0
    released = cli(proj, "release", proj.manifest_path)
    assert released.exit_code == 0, released.output
    assert "machine drafts no person has reviewed: captions.zh-Hans, description.zh-Hans, " \
           "tags.领事保护, title.zh-Hans" in released.output
    status = cli(proj, "status", proj.manifest["id"])
    assert "machine drafts no person has reviewed" in status.stdout and "title.zh-Hans" in status.stdout
    text = proj.manifest_path.read_text(encoding="utf-8")
    proj.manifest_path.write_text(text.replace("zh-Hans: 领事保护  #", "zh-Hans: 领事保护行动  #"),
                                  encoding="utf-8")
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    status = cli(proj, "status", proj.manifest["id"])
    assert "title.zh-Hans" not in status.stdout and "captions.zh-Hans" in status.stdout
    approved = cli(proj, "approve", proj.manifest_path)
    assert approved.exit_code == 0, approved.output
    reviewed = "machine drafts reviewed by this approval: captions.zh-Hans, description.zh-Hans"
    assert reviewed in approved.stdout
    assert "machine drafts" not in cli(proj, "status", proj.manifest["id"]).stdout


def test_with_require_approval_drafts_wait_for_an_approver(project: Callable[[], Project], cli: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    proj = drafting_project(project, require_approval=True)
    monkeypatch.setenv("LOGNAME", "alice")
    assert cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans").exit_code == 0
    submitted = cli(proj, "release", proj.manifest_path)
    assert submitted.exit_code == 0, submitted.output
    assert "awaiting approval" in submitted.output and "machine drafts" in submitted.output
    site = proj.root / "www" / proj.manifest["id"]
    assert not site.exists()
    console = Site(proj)
    monkeypatch.setattr(proj, "write", lambda: None)  # keep the manifest as `draft` left it
    console.start()
    try:
        page = console.login("paul").get(f"/releases/{proj.manifest['id']}").text
        assert "Machine drafts no person has reviewed yet" in page and "captions.zh-Hans" in page
    finally:
        console.stop()
    monkeypatch.setenv("LOGNAME", "bob")
    approved = cli(proj, "approve", proj.manifest_path)
    assert approved.exit_code == 0, approved.output
    assert "machine drafts reviewed by this approval: captions.zh-Hans" in approved.stdout
    served = (site / "captions" / "zh-Hans.vtt").read_text(encoding="utf-8")
    assert "如需协助，请致电1868。" in served
    digest = hashlib.sha256((proj.manifest_path.parent / "subs" / "zh-Hans.vtt").read_bytes()).hexdigest()
    from publisher.store import Store, sqlite_url

    assert Store(sqlite_url(proj.state_dir)).release_hashes(proj.manifest["id"])["captions.zh-Hans"] == digest


def test_draft_refuses_paths_outside_the_release_folder(project: Callable[[], Project], cli: Any,
                                                        tmp_path: Path) -> None:
    proj = drafting_project(project)
    outside = tmp_path / "elsewhere.vtt"
    proj.manifest_path.write_text(MANIFEST.replace("  zh-Hant: subs/zh-Hant.vtt",
                                                   f"  zh-Hant: subs/zh-Hant.vtt\n  zh-Hans: {outside}"),
                                  encoding="utf-8")
    before = proj.manifest_path.read_text(encoding="utf-8")
    result = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans")
    assert result.exit_code == 2 and "leads outside the manifest's folder" in result.output
    assert not outside.exists() and proj.manifest_path.read_text(encoding="utf-8") == before
