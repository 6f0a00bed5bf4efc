"""What a new user and a less trusted author found by trying the day's features through the CLI:
each test is one finding, run the way a user meets it."""

from __future__ import annotations

import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from publisher.inputs.captions import MAX_BYTES
from tests.conftest import Project
from tests.test_draft import HANT_VTT, MANIFEST, drafting_project
from tests.test_notify import Receiver
from tests.test_notify import receiver as receiver  # the fixture
from tests.test_operator_cli import publisher
from tests.test_permanent_faults import run
from tests.test_scheduler import drop
from tests.test_snapshots import is_red, paused_after_check, rgb_mean, source_file
from tests.test_snapshots import swapped as swapped  # the fixture


def test_draft_force_never_overwrites_its_own_source(project: Callable[[], Project], cli: Any) -> None:
    """A manifest naming one caption file for both scripts: --force used to convert the Traditional
    source in place, losing it."""
    proj = drafting_project(project)
    both = "  zh-Hant: subs/zh-Hant.vtt\n  zh-Hans: subs/zh-Hant.vtt"
    proj.manifest_path.write_text(MANIFEST.replace("  zh-Hant: subs/zh-Hant.vtt", both), encoding="utf-8")
    before = proj.manifest_path.read_text(encoding="utf-8")
    result = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans", "--force")
    assert result.exit_code == 2, result.output
    assert "captions.zh-Hans" in result.output and "the zh-Hant caption file itself" in result.output
    assert "subs/zh-Hans.vtt" in result.output  # the fix names a file of its own
    assert (proj.manifest_path.parent / "subs" / "zh-Hant.vtt").read_text(encoding="utf-8") == HANT_VTT
    assert proj.manifest_path.read_text(encoding="utf-8") == before


def test_draft_refuses_a_caption_file_check_refuses_for_its_size(project: Callable[[], Project],
                                                                  cli: Any) -> None:
    """A caption file over check's 5 MB limit used to be drafted (minutes of OpenCC and a side by
    side view of every cue): it is refused as check refuses it, and nothing is written."""
    proj = drafting_project(project)
    source = proj.manifest_path.parent / "subs" / "zh-Hant.vtt"
    cue = "00:00:02.200 --> 00:00:03.500\n如需協助，請致電1868。\n\n"
    source.write_text(HANT_VTT + "\n" + cue * (MAX_BYTES // len(cue.encode()) + 1), encoding="utf-8")
    before = proj.manifest_path.read_text(encoding="utf-8")
    result = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans")
    assert result.exit_code == 2, result.output
    assert "over the 5 MB limit" in result.output and "captions.zh-Hant" in result.output
    assert not (source.parent / "zh-Hans.vtt").exists()
    assert proj.manifest_path.read_text(encoding="utf-8") == before


def test_every_verb_that_needs_ffmpeg_names_the_package(project: Callable[[], Project],
                                                         tmp_path: Path) -> None:
    """`publisher demo` without ffmpeg on the PATH ended in a traceback (and left a half-made demo);
    preview and plan are held to the same clear exit 2 as check and release."""
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(tmp_path / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.write()
    no_ffmpeg = tmp_path / "bin"
    no_ffmpeg.mkdir()
    demo = tmp_path / "demo"
    manifest = str(proj.manifest_path)
    for args in (("demo", str(demo)), ("preview", manifest), ("plan", manifest)):
        result = run(proj, *args, PATH=str(no_ffmpeg))
        text = result.stdout + result.stderr
        assert result.returncode == 2, text
        assert "Traceback" not in text
        assert "ffmpeg and ffprobe not found" in text and "apt-get install ffmpeg" in text
    assert not demo.exists() and not (tmp_path / "www").exists()
    assert not (proj.state_dir / "previews").exists()


def test_check_and_channels_name_notify_urls_that_would_be_dropped(project: Callable[[], Project], cli: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A webhook written as https:// (apprise's JSON webhook is json://), a mistyped scheme and an
    unset url_env passed check and channels; every notification was then dropped at delivery, told
    only in publisher.log. Both commands now name each entry (exit 2), never showing the URL."""
    token = "hook-T0ken-probe-71d2"
    monkeypatch.delenv("PROBE_UNSET_HOOK", raising=False)
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.settings["notify"] = [f"json://ops:{token}@127.0.0.1:9/hook",
                               {"url": f"https://ops:{token}@127.0.0.1:9/hook", "events": ["failed"]},
                               f"jsno://{token}@127.0.0.1:9/hook", {"url_env": "PROBE_UNSET_HOOK"}]
    proj.write()
    for verb in (("check", proj.manifest_path), ("channels",)):
        result = cli(proj, *verb)
        assert result.exit_code == 2, result.output
        text = " ".join(result.output.split())
        assert "notify[0]" not in text
        assert "notify[1].url: apprise does not understand this https:// URL" in text and "json://" in text
        assert "notify[2].url: apprise does not understand this jsno:// URL" in text
        assert "notify[3].url_env: the environment variable PROBE_UNSET_HOOK is not set" in text
        assert token not in result.output and "127.0.0.1" not in result.output
    assert not (proj.root / "www").exists()
    proj.settings["notify"] = [f"json://ops:{token}@127.0.0.1:9/hook"]
    proj.write()
    assert cli(proj, "check", proj.manifest_path).exit_code == 0
    fine = cli(proj, "channels")
    assert fine.exit_code == 0 and "notify (1)  understood" in fine.output, fine.output


def test_a_url_written_as_a_key_is_not_shown_in_the_error(project: Callable[[], Project], cli: Any) -> None:
    """`- json://user:TOKEN@host/hook: {events: [failed]}` (the URL as a key) was refused with the
    whole URL, token and all, in the message."""
    token = "hook-T0ken-probe-key-93a"
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.settings["notify"] = [{f"json://ops:{token}@127.0.0.1:9/hook": {"events": ["failed"]}}]
    proj.write()
    for verb in (("check", proj.manifest_path), ("channels",), ("status",)):
        result = cli(proj, *verb)
        assert result.exit_code == 2, result.output
        assert "notify[0].json://…: unknown key" in result.output
        assert token not in result.output


def test_status_counts_the_columns_chinese_takes(project: Callable[[], Project], cli: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A Chinese title and a Chinese error were cut and wrapped by characters, each of which takes
    two columns: at 80 columns the heading took 94. Every line now fits in columns."""
    from rich.cells import cell_len

    proj = project()
    bad = drop(proj, "lobby-signage")
    bad.mkdir()
    (bad / "BROKEN").write_text("播放清單被拒絕：開始時間已經過去，請檢查播放器的設定，然後重新發佈。" * 3,
                                encoding="utf-8")
    proj.manifest["id"] = "consular-protection-winter-travel-2026"
    proj.manifest["languages"] = ["zh-Hant", "en", "zh-Hans"]
    proj.manifest["title"] = {**proj.manifest["title"], "zh-Hant": "領事保護　出行平安" * 5}
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 1
    monkeypatch.setenv("COLUMNS", "80")
    result = cli(proj, "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), "\n".join(lines)
    heading = next(line for line in lines if line.startswith("consular-protection-winter-travel-2026"))
    assert "領事保護 出行平安" in heading and heading.endswith("…")
    errors = [line.strip() for line in lines if line.strip().startswith("error:")]
    assert len(errors) == 1 and "播放清單被拒絕" in errors[0], "\n".join(lines)


def test_draft_caption_path_that_is_a_folder_or_a_dangling_link(project: Callable[[], Project],
                                                                 cli: Any) -> None:
    """captions.zh-Hans naming a folder ended --force in a traceback (IsADirectoryError); a link
    to nothing was 'the file appeared while drafting, run again', every time."""
    proj = drafting_project(project)
    subs = proj.manifest_path.parent / "subs"
    proj.manifest_path.write_text(MANIFEST.replace("  zh-Hant: subs/zh-Hant.vtt",
                                                   "  zh-Hant: subs/zh-Hant.vtt\n  zh-Hans: subs"),
                                  encoding="utf-8")
    before = proj.manifest_path.read_text(encoding="utf-8")
    folder = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans", "--force")
    assert folder.exit_code == 2, folder.output
    assert "captions.zh-Hans: 'subs' is a folder" in folder.output and "subs/zh-Hans.vtt" in folder.output
    assert proj.manifest_path.read_text(encoding="utf-8") == before and subs.is_dir()
    (subs / "zh-Hans.vtt").symlink_to("not-written-yet.vtt")
    proj.manifest_path.write_text(MANIFEST, encoding="utf-8")
    dangling = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans")
    assert dangling.exit_code == 0, dangling.output
    assert "kept captions.zh-Hans (subs/zh-Hans.vtt)" in dangling.output
    assert "appeared while drafting" not in dangling.output
    assert not (subs / "not-written-yet.vtt").exists()


def test_a_command_waits_for_notifications_once_not_again_at_exit(project: Callable[[], Project]) -> None:
    """Receivers that accept a connection and never answer: the command's end gave up after its
    10 s, then the process's exit waited 10 s more and kept delivering. It now ends at the first
    give-up: the third and fourth messages (due 15 and 20 s after the first) are never tried."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # connections complete in the backlog; nothing ever reads or answers
        port = hung.getsockname()[1]
        proj = project()
        proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                                 "public_url": "https://www.example.gov.hk/videos/"})
        proj.settings["notify"] = [{"url": f"json://127.0.0.1:{port}/hook{i}", "events": ["live"]}
                                   for i in range(4)]
        proj.write()
        result = run(proj, "release", str(proj.manifest_path))
    assert result.returncode == 0, result.stderr
    log = (proj.state_dir / "publisher.log").read_text(encoding="utf-8")
    assert "notification(s) not sent: gave up waiting after 10 s" in log
    assert log.count("gave up waiting") == 1
    assert "notify[2]" not in log and "notify[3]" not in log, log


def test_a_remembered_config_that_is_gone_is_named(project: Callable[[], Project], cli: Any,
                                                   tmp_path: Path) -> None:
    """The state folder remembers its config; once that file was moved, `publisher status` from
    another folder said ./publisher.yaml was not found, naming a file the user never had."""
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    proj.config_path.rename(proj.root / "moved.yaml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    gone = publisher(proj, "status", cwd=elsewhere, config=False)
    assert gone.returncode == 2, gone.stderr
    assert f"{proj.config_path}: site config not found" in gone.stderr
    assert str(elsewhere / "publisher.yaml") not in gone.stderr


@pytest.mark.parametrize("which", ["captions.en", "master"])
def test_files_swapped_during_a_preview_never_reach_a_later_release(
        project: Callable[[], Project], cli: Any, tmp_path: Path, swapped: dict[str, bytes],
        which: str) -> None:
    """preview checked the author's files, then encoded from the same paths: bytes swapped in
    between were encoded into the rendition cache under the checked bytes' key, and a release of
    the checked bytes published them from there. preview now reads snapshots, as release does."""
    proj = project()
    target = proj.root / "www"
    proj.add_channel("web", {"kind": "website", "target": str(target),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.settings["cache_dir"] = str(tmp_path / "cache")  # its own cache: the encode really reads
    proj.write()
    path = source_file(proj, which)
    checked = path.read_bytes()

    def swap() -> None:
        path.write_bytes(swapped[which])

    code, output = paused_after_check(proj, "preview", tmp_path / "paused", swap)
    assert code == 0, output
    shown = proj.state_dir / "previews" / proj.manifest["id"] / "web"
    path.write_bytes(checked)  # the author puts the checked bytes back and releases
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    page = target / proj.manifest["id"]
    for folder in (page, shown):
        assert "SWAPPED" not in (folder / "captions" / "en.vtt").read_text(encoding="utf-8")
        assert not is_red(rgb_mean(folder / "video.mp4", 1.0))


def test_a_title_reaches_markdown_and_html_receivers_as_text(project: Callable[[], Project], cli: Any,
                                                             receiver: Receiver) -> None:
    """The notice went out without a body format, so apprise passed it through as is: a receiver
    that renders Markdown (Slack, Teams) or HTML (mail) showed the manifest author's title as a
    link and markup in the operators' channel. It is sent as text, escaped for each receiver."""
    proj = project()
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"),
                             "public_url": "https://www.example.gov.hk/videos/"})
    lure = "[Sign in again](https://evil.example/login) <b>now</b> **urgent**"
    proj.manifest["title"] = {**proj.manifest["title"], "en": lure}
    proj.settings["notify"] = [{"url": receiver.url("md?format=markdown"), "events": ["live"]},
                               {"url": receiver.url("html?format=html"), "events": ["live"]}]
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    [markdown] = receiver.at("md")
    [html] = receiver.at("html")
    assert lure not in markdown["message"]
    assert "\\[Sign in again\\]\\(https://evil\\.example" in markdown["message"]
    assert "<b>" not in html["message"] and "&lt;b&gt;now&lt;/b&gt;" in html["message"]


def test_a_drafted_caption_is_as_private_as_its_source(project: Callable[[], Project], cli: Any) -> None:
    """Embargoed captions kept 0600 were drafted into a new file of mode 0644, readable by every
    user on the machine."""
    proj = drafting_project(project)
    source = proj.manifest_path.parent / "subs" / "zh-Hant.vtt"
    source.chmod(0o600)
    result = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((source.parent / "zh-Hans.vtt").stat().st_mode) == 0o600


def test_file_names_from_the_manifest_are_printed_as_written(project: Callable[[], Project],
                                                             cli: Any) -> None:
    """The author's caption path went through the terminal's markup: `subs/x[/red]y.vtt` ended
    `publisher draft` in a traceback (MarkupError), `[bold]` in a master's name styled the line."""
    proj = drafting_project(project)
    folder = proj.manifest_path.parent
    (folder / "subs" / "x[").mkdir()
    (folder / "subs" / "x[" / "red]y.vtt").write_text(HANT_VTT, encoding="utf-8")
    (folder / "master.mp4").rename(folder / "m[bold]x.mp4")
    proj.manifest_path.write_text(MANIFEST.replace("master: master.mp4", "master: m[bold]x.mp4").replace(
        "  zh-Hant: subs/zh-Hant.vtt", "  zh-Hant: subs/zh-Hant.vtt\n  zh-Hans: subs/x[/red]y.vtt"),
        encoding="utf-8")
    drafted = cli(proj, "draft", proj.manifest_path, "--to", "zh-Hans")
    assert drafted.exit_code == 0, drafted.output
    assert "kept captions.zh-Hans (subs/x[/red]y.vtt): it exists" in drafted.output
    assert "machine draft(s) into release.yaml;" in drafted.output
    checked = cli(proj, "check", proj.manifest_path)
    assert "OK consular-protection-2026: m[bold]x.mp4 " in checked.output, checked.output
