"""Configured secrets never reach logs, reports, CLI output, error messages, the state store or
anything published: releases with a WebDAV password (password_env), a WeChat AppSecret
(secret_env), YouTube credentials (file) and an FCM service-account key (app feed push), on the
happy path and on failing ones (wrong password, wrong secret, revoked refresh token, a key FCM
does not know). Every output is collected and grepped."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.fakes.wechat_server import Running, serve_wechat
from tests.fakes.youtube_server import YouTubeFake
from tests.servers.webdav import WebDAVServer, webdav_server

DAV_ENV = "PUBLISHER_TEST_SECRETS_DAV"
WECHAT_ENV = "PUBLISHER_TEST_SECRETS_WECHAT"
WRONG_DAV = "wrong-Dav-Pass-5150"
WRONG_WECHAT = "wrong-app-secret-7777"


@dataclass
class Services:
    dav: WebDAVServer
    wechat: Running
    youtube: YouTubeFake
    fcm: Any
    fcm_account: Path
    fcm_ca: Path
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (what, text)

    def secrets(self) -> dict[str, str]:
        m = self.youtube.model
        found = {"WebDAV password": self.dav.password, "WeChat AppSecret": self.wechat.fake.secret,
                 "YouTube client_secret": m.client_secret, "wrong WebDAV password": WRONG_DAV,
                 "wrong WeChat secret": WRONG_WECHAT}
        for i, t in enumerate(sorted(m.refresh_tokens | set(self.revoked))):
            found[f"YouTube refresh token {i}"] = t
        for i, t in enumerate(sorted(set(m.access_tokens) | self.seen_access)):
            found[f"YouTube access token {i}"] = t
        for i, t in enumerate(sorted(self.wechat.fake.tokens)):
            found[f"WeChat access_token {i}"] = t
        for i, t in enumerate(sorted(self.fcm.tokens)):
            found[f"FCM access token {i}"] = t
        key = json.loads(self.fcm_account.read_text(encoding="utf-8"))["private_key"]
        for i, line in enumerate(key.strip().splitlines()[1:-1][:3]):  # lines of the PEM body
            found[f"FCM private key line {i}"] = line
        return found

    revoked: list[str] = field(default_factory=list)
    seen_access: set[str] = field(default_factory=set)

    def remember_tokens(self) -> None:
        """Access tokens are forgotten by the fakes when they expire; keep them to grep for."""
        self.seen_access |= set(self.youtube.model.access_tokens)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    from tests.servers.fcm import fcm_server

    with webdav_server(tmp_path / "dav") as dav, serve_wechat(tmp_path / "wx") as wx, \
            YouTubeFake(tmp_path / "yt") as yt, fcm_server(tmp_path / "fcm") as (fcm, account, ca):
        yield Services(dav, wx, yt, fcm, account, ca)


def configure(proj: Project, s: Services) -> None:
    s.youtube.write_credentials(proj.root / "secrets" / "youtube.json")
    proj.add_channel("dav-web", {"kind": "website", "target": s.dav.target("site"), "username": s.dav.user,
                                 "password_env": DAV_ENV, "timeout": 5,
                                 "public_url": "https://www.example.gov.hk/videos/"})
    proj.add_channel("wechat", {"kind": "wechat", "appid": s.wechat.fake.appid, "secret_env": WECHAT_ENV,
                                "api_root": s.wechat.url, "ca_bundle": str(s.wechat.ca_bundle),
                                "author": "入境事務處", "poll_interval": 0.05, "publish_wait": 10})
    proj.add_channel("youtube", {"kind": "youtube", "credentials": "secrets/youtube.json",
                                 "api_root": s.youtube.url, "ca_bundle": str(s.youtube.certfile),
                                 "chunk_mib": 0.25, "timeout": 5})
    proj.add_channel("app", {"kind": "app-feed", "target": str(proj.root / "feed"),
                             "public_url": "https://app.example.gov.hk/feed/",
                             "fcm": {"credentials": str(s.fcm_account), "topic": "safeguard-videos",
                                     "api_root": s.fcm.root, "ca_bundle": str(s.fcm_ca)}})
    proj.settings["retry"] = {"attempts": 2, "base_seconds": 0.05, "max_seconds": 0.1}
    proj.write()


def run_all(cli: Any, proj: Project, s: Services) -> dict[str, int]:
    """Every verb that may print a secret, verbose, with its output kept for the grep."""
    codes: dict[str, int] = {}
    rid, manifest, html = proj.manifest["id"], str(proj.manifest_path), str(proj.root / "report.html")
    commands = [["check", manifest], ["plan", manifest], ["preview", manifest], ["release", manifest],
                ["release", manifest], ["channels"], ["status"], ["status", "--json"], ["status", "--csv"],
                ["status", "--html", html], ["status", "--verify"], ["retry", rid], ["update", manifest],
                ["withdraw", rid, "--yes"], ["status", "--json"]]
    for cmd in commands:
        args = ["--verbose", *cmd]
        result = cli(proj, *args)
        s.remember_tokens()
        codes.setdefault(cmd[0], result.exit_code)
        s.outputs.append((f"`publisher {' '.join(args)}` (exit {result.exit_code})", result.output))
    return codes


def collect_files(s: Services, proj: Project) -> None:
    """The log, the store (with its WAL), every other state file, and everything published."""
    for path in sorted(proj.state_dir.rglob("*")):
        if not path.is_file() or "renditions" in path.parts:
            continue
        private_cache = "channels" in path.relative_to(proj.state_dir).parts and \
            (path.stat().st_mode & 0o077) == 0
        if private_cache:
            continue  # an adapter's own 0600 token cache may hold a token; that is its job
        s.outputs.append((str(path), path.read_bytes().decode("utf-8", "replace")))
    report = proj.root / "report.html"
    if report.is_file():
        s.outputs.append(("status --html report", report.read_text(encoding="utf-8")))
    for path in sorted(s.dav.root.rglob("*")):
        if path.is_file() and path.suffix in (".html", ".json", ".m3u8", ".vtt", ""):  # SHA256SUMS too
            s.outputs.append((f"published {path}", path.read_text(encoding="utf-8", errors="replace")))
    for path in sorted((proj.root / "feed").rglob("*")):
        if path.is_file() and path.suffix in (".json", ".m3u8", ".vtt", ""):
            s.outputs.append((f"published {path}", path.read_text(encoding="utf-8", errors="replace")))
    s.outputs.append(("FCM messages", json.dumps(s.fcm.messages, ensure_ascii=False)))
    for body in s.wechat.fake.drafts.values():
        s.outputs.append(("WeChat draft", repr(body)))


def assert_no_secret(s: Services) -> None:
    leaks = [f"{name} in {what}" for what, text in s.outputs for name, value in s.secrets().items()
             if value and value in text]
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)


def test_secrets_stay_out_of_everything_on_success(project: Callable[[], Project], cli: Any,
                                                    services: Services,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    s = services
    monkeypatch.setenv(DAV_ENV, s.dav.password)
    monkeypatch.setenv(WECHAT_ENV, s.wechat.fake.secret)
    proj = project()
    configure(proj, s)
    codes = run_all(cli, proj, s)
    assert codes["release"] == 0, s.outputs
    assert codes["status"] == 0 and (proj.root / "report.html").is_file(), s.outputs
    assert s.seen_access, "YouTube was never called: the grep would prove nothing"
    assert s.wechat.fake.tokens, "WeChat was never called"
    assert s.fcm.tokens and s.fcm.messages, "FCM was never called"
    assert (proj.state_dir / "publisher.log").is_file()
    collect_files(s, proj)
    assert_no_secret(s)


def test_secrets_stay_out_of_failures(project: Callable[[], Project], cli: Any, services: Services,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    s = services
    monkeypatch.setenv(DAV_ENV, WRONG_DAV)
    monkeypatch.setenv(WECHAT_ENV, WRONG_WECHAT)
    proj = project()
    configure(proj, s)
    s.revoked = sorted(s.youtube.model.refresh_tokens)
    s.youtube.model.revoke_refresh_tokens()
    from tests.servers.fcm import write_service_account  # a key FCM does not know
    write_service_account(s.fcm_account, "safeguard-hk", s.fcm.token_uri)
    codes = run_all(cli, proj, s)
    assert codes["release"] == 1, s.outputs
    release_out = next(text for what, text in s.outputs if what.startswith("`publisher --verbose release"))
    for name in ("dav-web", "wechat", "youtube", "app"):
        assert name in release_out
    assert "failed" in release_out
    assert "push" in release_out  # the app feed's FCM push was tried with the unknown key
    # the wrong secrets were really sent, so a leak would have had something to leak
    assert s.wechat.fake.count("/cgi-bin/stable_token") >= 1
    collect_files(s, proj)
    assert_no_secret(s)


def test_secret_in_a_mode_0644_file_is_refused_without_echo(project: Callable[[], Project], cli: Any,
                                                             services: Services,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    s = services
    monkeypatch.setenv(DAV_ENV, s.dav.password)
    monkeypatch.setenv(WECHAT_ENV, s.wechat.fake.secret)
    proj = project()
    configure(proj, s)
    (proj.root / "secrets" / "youtube.json").chmod(0o644)
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2, result.output
    assert "chmod 600" in result.output
    s.outputs.append(("check with a 0644 secret file", result.output))
    collect_files(s, proj)
    assert_no_secret(s)
