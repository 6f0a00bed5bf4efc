"""Permanent faults fail at once with their fix (exit 1) instead of being retried and deferred;
`check` finds the local ones without writing anything; a broken environment or config is exit 2
with a message, never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from channels.website.adapter import Website
from channels.website.options import WebsiteOptions
from publisher.errors import AuthError, Rejected
from tests.conftest import Project
from tests.fakes.wechat_server import serve_wechat
from tests.renditions import job, make_release, session_renditions
from tests.servers import target_spec

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = "https://www.example.gov.hk/videos/"


@contextmanager
def immutable(folder: Path) -> Iterator[Path]:
    """A folder nobody can write into, root included (chattr +i), as a read-only mount would be."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["chattr", "+i", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def rows(cli: Any, proj: Project) -> dict[str, dict[str, Any]]:
    result = cli(proj, "status", "--json")
    assert result.exit_code == 0, result.output
    return {r["channel"]: r for r in json.loads(result.stdout)}


def run(proj: Project, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "publisher", *args], env={**proj.env(), **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=240)


def test_check_finds_local_target_faults_without_writing(project: Any, cli: Any, tmp_path: Path) -> None:
    proj: Project = project()
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("I am a file")
    with immutable(tmp_path / "locked") as locked:
        site = {"kind": "website", "public_url": PUBLIC}
        proj.add_channel("web-file", {**site, "target": str(a_file)})
        proj.add_channel("web-under-file", {**site, "target": str(a_file / "videos")})
        proj.add_channel("web-locked", {**site, "target": str(locked / "videos")})
        proj.add_channel("web-group", {**site, "target": str(tmp_path / "ok"), "group": "no-such-group"})
        proj.add_channel("web-sftp", {**site, "target": "sftp://webmaster@127.0.0.1:2222/site",
                                      "key_file": "keys/missing", "known_hosts": "keys/missing_hosts"})
        proj.add_channel("screens", {"kind": "signage", "target": str(a_file / "share"), "sites": ["hq"]})
        proj.write()
        result = cli(proj, "check", proj.manifest_path)
        assert result.exit_code == 2, result.output
        out = " ".join(result.output.split())
        expected = [
            f"channel web-file: target: {a_file} is a file, not a folder (fix: point it at a folder)",
            f"channel web-under-file: target: {a_file}/videos is inside {a_file}, which is a file",
            f"channel web-locked: target: {locked} is not writable by root, who runs publisher "
            f"(fix: give root write access to {locked}, or choose another folder)",
            "channel web-group: group: there is no group 'no-such-group' on this machine (fix: create",
            f"{proj.root}/keys/missing: channels.web-sftp.key_file: the file does not exist",
            f"channel web-sftp: known_hosts: {proj.root}/keys/missing_hosts does not exist",
            f"channel screens: target: {a_file}/share is inside {a_file}, which is a file",
        ]
        for text in expected:
            assert text in out, text
        assert list(locked.iterdir()) == [] and a_file.read_text() == "I am a file"
        assert not (tmp_path / "ok").exists()


def test_target_faults_met_while_publishing_are_permanent(tmp_path: Path,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    """A target that became a file, or a folder nobody may write, after `check`: no retry helps."""
    web = session_renditions(tmp_path_factory)
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")

    def publish(target: Path) -> None:
        opts = WebsiteOptions(kind="website", target=str(target), public_url=PUBLIC)
        site = Website("web", opts, config_dir=tmp_path, state_dir=tmp_path)
        site.publish(job(make_release(tmp_path), web))

    for target in (a_file, a_file / "videos"):
        with pytest.raises(Rejected, match="point target at a folder"):
            publish(target)
    with immutable(tmp_path / "locked") as locked, pytest.raises(AuthError, match="give publisher write"):
        publish(locked)


def test_refusals_and_untrusted_certificates_fail_at_once(project: Any, cli: Any, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """WebDAV 401, an SFTP host key that does not match, a TLS certificate nobody trusts (WebDAV and
    WeChat): `failed` with the fix after one attempt, exit 1, never `deferred`."""
    with target_spec("webdav", tmp_path / "d") as dav, target_spec("webdavs", tmp_path / "t") as davs, \
            target_spec("sftp", tmp_path / "s") as sftp, serve_wechat(tmp_path / "wx") as wechat:
        monkeypatch.setenv("DAV_WRONG", "not-the-password")
        monkeypatch.setenv("DAVS_PASSWORD", davs.env["PUBLISHER_TEST_DAV_PASSWORD"])
        monkeypatch.setenv("WECHAT_SECRET", wechat.fake.secret)
        known = sftp.server.known_hosts  # type: ignore[attr-defined]
        other = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        known.write_text(known.read_text().split()[0] + " ssh-ed25519 " + other + "\n")
        proj: Project = project()
        site = {"kind": "website", "public_url": PUBLIC}
        proj.add_channel("web-401", {**site, **dav.options, "password_env": "DAV_WRONG"})
        untrusted = {k: v for k, v in davs.options.items() if k != "ca_bundle"}
        proj.add_channel("web-tls", {**site, **untrusted, "password_env": "DAVS_PASSWORD"})
        proj.add_channel("web-hostkey", {**site, **sftp.options})
        proj.add_channel("wx", {"kind": "wechat", "appid": wechat.fake.appid, "secret_env": "WECHAT_SECRET",
                                "api_root": wechat.url, "author": "入境事务处"})  # no ca_bundle
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
        assert result.exit_code == 1, result.output
        found = rows(cli, proj)
        assert {name: row["state"] for name, row in found.items()} == dict.fromkeys(found, "failed")
        assert "refused (401); check username and password_env" in found["web-401"]["error"]
        assert "TLS certificate is not trusted" in found["web-tls"]["error"]
        assert "set ca_bundle" in found["web-tls"]["error"]
        assert "host key does not match" in found["web-hostkey"]["error"]
        assert "TLS certificate is not trusted" in found["wx"]["error"]
        assert "ca_bundle" in found["wx"]["error"]
        assert wechat.fake.calls == []  # refused at the handshake, and not tried again
        events = cli(proj, "status", proj.manifest["id"])
        assert "deferred" not in events.output


def test_missing_ffmpeg_is_exit_2_naming_the_package(project: Any, tmp_path: Path) -> None:
    proj: Project = project()
    proj.add_channel("web", {"kind": "website", "target": str(tmp_path / "www"), "public_url": PUBLIC})
    proj.write()
    no_ffmpeg = tmp_path / "bin"  # a PATH on which there is no ffmpeg or ffprobe
    no_ffmpeg.mkdir()
    for verb in ("check", "release"):
        result = run(proj, verb, str(proj.manifest_path), PATH=str(no_ffmpeg))
        text = result.stdout + result.stderr
        assert result.returncode == 2, text
        assert "Traceback" not in text
        assert "ffmpeg and ffprobe not found" in text and "apt-get install ffmpeg" in text
    assert not (tmp_path / "www").exists()


def test_timeouts_must_be_a_positive_number_of_seconds(project: Any, cli: Any) -> None:
    proj: Project = project()
    (proj.root / "fcm.json").write_text("{}")
    proj.add_channel("web", {"kind": "website", "target": "www", "public_url": PUBLIC, "timeout": "0"})
    proj.add_channel("feed", {"kind": "app-feed", "target": "app", "public_url": PUBLIC, "timeout": "-5",
                              "fcm": {"credentials": "fcm.json", "topic": "videos", "timeout": "nan"}})
    proj.add_channel("screens", {"kind": "signage", "target": "share", "sites": ["hq"], "timeout": "inf"})
    proj.add_channel("yt", {"kind": "youtube", "credentials": "yt.json", "timeout": "0"})
    proj.add_channel("wx", {"kind": "wechat", "appid": "wx0123456789abcdef", "secret_env": "WX",
                            "timeout": "-1"})
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    for field in ("web.timeout", "feed.timeout", "feed.fcm.timeout", "screens.timeout", "yt.timeout",
                  "wx.timeout"):
        line = next((p for p in out.split(str(proj.config_path)) if f": channels.{field}:" in p), "")
        assert "give a number of seconds above 0, e.g. 30" in line, field
        assert line.startswith(":") and line[1].isdigit(), field  # the line number follows the file


@pytest.mark.parametrize(("text", "shape"), [("just some text\n", "a single value"),
                                             ("- a\n- b\n", "a list")])
def test_config_that_is_not_a_mapping(project: Any, cli: Any, text: str, shape: str) -> None:
    proj: Project = project()
    proj.write()
    proj.config_path.write_text(text)
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert f"{proj.config_path}:1: (top level): the site config is {shape}, not a mapping of settings" in out
    assert "(fix: write `key: value` lines" in out


def test_broker_without_the_scale_out_packages(project: Any, tmp_path: Path) -> None:
    """dramatiq and redis absent, the way Python says so (None in sys.modules makes both import and
    importlib.util.find_spec report the module as missing)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nsys.modules['dramatiq'] = None\nsys.modules['redis'] = None\n")
    proj: Project = project()
    proj.settings["broker"] = "redis://127.0.0.1:1/0"
    proj.add_channel("web", {"kind": "website", "target": str(tmp_path / "www"), "public_url": PUBLIC})
    proj.write()
    for args in (["check", str(proj.manifest_path)], ["release", str(proj.manifest_path)], ["worker"]):
        result = run(proj, *args, PYTHONPATH=f"{site}:{ROOT}")
        text = " ".join((result.stdout + result.stderr).split())
        assert result.returncode == 2, text
        assert "Traceback" not in text
        assert "broker: scale-out needs dramatiq and redis, which are not installed" in text
        assert "pip install 'publisher[scale]'" in text
    assert not (tmp_path / "www").exists()
