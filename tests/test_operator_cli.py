"""The operator's command line as a comms officer meets it: status that fits the terminal, config
found from any folder, safe verbs, messages in words."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.test_scheduler import drop, iso

LONG_ID = "consular-protection-winter-travel-2026"
PUBLIC = "https://www.immd.gov.hk/eng/videos/travel-safety/consular-protection/"


def publisher(proj: Project, *args: str | Path, cwd: Path | None = None, columns: int | None = None,
              env: dict[str, str] | None = None, config: bool = True,
              **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``publisher ARGS`` in a subprocess, as an operator runs it."""
    run_env = {**proj.env(), **(env or {})}
    if not config:
        run_env.pop("PUBLISHER_CONFIG")
    if columns:
        run_env["COLUMNS"] = str(columns)
    return subprocess.run([sys.executable, "-m", "publisher", *map(str, args)], cwd=cwd or proj.root,
                          env=run_env, capture_output=True, text=True, timeout=120, **kwargs)


def website(proj: Project, name: str = "immd-web") -> Path:
    target = proj.root / f"www-{name}"
    proj.add_channel(name, {"kind": "website", "target": str(target), "public_url": PUBLIC})
    return target


@pytest.fixture
def busy(project: Callable[[], Project], cli: Any) -> Project:
    """Two releases: one scheduled for tomorrow (a website staged with a note, a feed), one live on
    a feed with a signage share that refused it with a long error."""
    proj = project()
    website(proj)
    drop(proj, "app-feed")
    proj.manifest["id"] = LONG_ID
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(days=1))
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    proj.channels.pop("immd-web")
    bad = drop(proj, "lobby-signage-kowloon")
    bad.mkdir()
    (bad / "BROKEN").write_text("playlist rejected: the start time 2026-12-01T10:00:00+08:00 is in the "
                                "past for player LWR-1 at /srv/signage/lobby/playlists/current.xml",
                                encoding="utf-8")
    proj.manifest["id"] = "travel-safety-2026"
    del proj.manifest["publish_at"]
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 1
    return proj


@pytest.mark.parametrize("columns", [80, 120])
def test_status_fits_the_terminal_without_breaking_ids_channels_or_states(
        busy: Project, cli: Any, monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    result = cli(busy, "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert all(len(line) <= columns for line in lines), "\n".join(lines)
    for rid in (LONG_ID, "travel-safety-2026"):
        assert any(line.startswith(rid) for line in lines), rid
    expected = {(LONG_ID, "immd-web", "scheduled"), (LONG_ID, "app-feed", "scheduled"),
                ("travel-safety-2026", "app-feed", "live"),
                ("travel-safety-2026", "lobby-signage-kowloon", "failed")}
    release = ""
    seen = set()
    for line in lines:
        words = line.split()
        if line and not line.startswith(" "):
            release = words[0]
        elif len(words) >= 3 and line.startswith("  ") and not line.startswith("   "):
            seen.add((release, words[0], words[2]))
    assert expected <= seen, "\n".join(lines)
    notes = [line.strip() for line in lines if line.strip().startswith("note:")]
    errors = [line.strip() for line in lines if line.strip().startswith("error:")]
    assert notes == ["note: staged; goes live at publish_at"]
    assert len(errors) == 1 and errors[0].startswith("error: the service refused the upload: playlist")
    url = f"{PUBLIC}{LONG_ID}/"
    if columns >= 120:
        assert any(url in line for line in lines), "\n".join(lines)  # never broken at 120 and more
    assert "goes live" in result.stdout and "HKT" in result.stdout


def test_status_finds_the_config_from_any_folder(project: Callable[[], Project], cli: Any,
                                                 tmp_path: Path) -> None:
    proj = project()
    website(proj)
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = publisher(proj, "status", "--json", cwd=elsewhere, config=False)
    assert found.returncode == 0, found.stderr
    assert '"state": "live"' in found.stdout and '"channel": "immd-web"' in found.stdout
    # ./publisher.yaml comes before the recorded config, PUBLISHER_CONFIG and --config before both
    (elsewhere / "publisher.yaml").write_text("timezone: America/New_York\nchannels: {}\n", encoding="utf-8")
    here = publisher(proj, "status", cwd=elsewhere, config=False)
    assert here.returncode == 0 and "America/New_York" in here.stdout, here.stderr
    chosen = publisher(proj, "status", cwd=elsewhere)
    assert chosen.returncode == 0 and "Asia/Hong_Kong" in chosen.stdout, chosen.stderr
    given = publisher(proj, "--config", proj.config_path, "status", cwd=elsewhere, config=False)
    assert given.returncode == 0 and "Asia/Hong_Kong" in given.stdout, given.stderr
    nowhere = publisher(proj, "status", cwd=proj.root / "release", config=False,
                        env={"PUBLISHER_HOME": str(tmp_path / "fresh")})
    assert nowhere.returncode == 2 and "site config not found" in nowhere.stderr


def on_terminal(proj: Project, answer: str, *args: str | Path) -> tuple[int, str]:
    """``publisher ARGS`` with a terminal for its input, answering a question with ``answer``."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "publisher", *map(str, args)], cwd=proj.root,
                                env=proj.env(), stdin=follower, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        os.write(leader, answer.encode() + b"\n")
        out, errors = proc.communicate(timeout=120)
    finally:
        os.close(leader), os.close(follower)
    return proc.returncode, out + errors


def test_withdraw_asks_on_a_terminal_and_needs_yes_without_one(project: Callable[[], Project],
                                                               cli: Any) -> None:
    proj = project()
    web = website(proj)
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    refused = cli(proj, "withdraw", rid)
    assert refused.exit_code == 2 and "--yes" in refused.output and "immd-web" in refused.output
    assert (web / rid / "video.mp4").exists()
    declined, said = on_terminal(proj, "n", "withdraw", rid)
    assert declined == 1 and f"withdraw {rid} on immd-web?" in said and "nothing changed" in said
    assert (web / rid / "video.mp4").exists()
    assert '"state": "live"' in cli(proj, "status", "--json").stdout
    agreed, said = on_terminal(proj, "y", "withdraw", rid)
    assert agreed == 0, said
    assert not (web / rid).exists()
    rows = [line for line in said.splitlines() if "immd-web" in line and "withdrawn" in line]
    assert len(rows) == 1 and rows[0].count("withdrawn") == 1, said


def test_schedule_cancel_needs_yes_without_a_terminal(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj, "app-feed")
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(days=1))
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    refused = cli(proj, "schedule", "cancel", rid)
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert '"state": "scheduled"' in cli(proj, "status", "--json").stdout
    assert (target / ".staging" / rid).exists()
    done = cli(proj, "schedule", "cancel", rid, "--yes")
    assert done.exit_code == 0, done.output
    assert '"state": "cancelled"' in cli(proj, "status", "--json").stdout
    shown = [line for line in done.output.splitlines() if "app-feed" in line]
    assert len(shown) == 1 and shown[0].count("cancelled") == 1, done.output


def test_messages_say_in_words_what_is_wrong(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    drop(proj, "app-feed")
    proj.manifest["id"] = "Consular_Protection"
    proj.write()
    bad_id = cli(proj, "check", proj.manifest_path)
    assert bad_id.exit_code == 2
    said = " ".join(bad_id.output.split())
    assert "3 to 64 characters" in said and "lower-case letter a-z, a digit 0-9 or a hyphen" in said
    assert "[a-z" not in said and "^" not in said
    text = proj.manifest_path.read_text(encoding="utf-8")
    text = text.replace("Consular_Protection", "consular-protection")
    proj.manifest_path.write_text(text.replace("en: Consular Protection", "en: Travel: know before you go"),
                                  encoding="utf-8")
    colon = cli(proj, "check", proj.manifest_path)
    said = " ".join(colon.output.split())
    assert colon.exit_code == 2 and "mapping values are not allowed" in said
    assert "put the whole text in double quotes" in said and "release.yaml" in said
    folder = cli(proj, "check", proj.manifest_path.parent)
    said = " ".join(folder.output.split())
    assert folder.exit_code == 2 and "is a folder, not the" in said and "release.yaml" in said


def test_help_shows_no_type_on_flags(project: Callable[[], Project]) -> None:
    proj = project()
    for args in ([], ["status"], ["withdraw"], ["schedule", "cancel"], ["release"]):
        shown = publisher(proj, *args, "--help", columns=100)
        assert shown.returncode == 0, shown.stderr
        assert "<bool>" not in shown.stdout and "--help" in shown.stdout, shown.stdout
    assert "--json " in publisher(proj, "status", "--help", columns=100).stdout


def test_check_plan_and_channels_write_nothing_and_plan_says_when_and_where(
        project: Callable[[], Project]) -> None:
    from zoneinfo import ZoneInfo

    proj = project()
    website(proj)
    at = (datetime.now(ZoneInfo("Asia/Hong_Kong")) + timedelta(days=1)).replace(hour=10, minute=0, second=0,
                                                                               microsecond=0)
    proj.manifest["publish_at"] = at.isoformat()
    proj.write()
    before = sorted(proj.root.rglob("*"))
    checked = publisher(proj, "check", proj.manifest_path)
    assert checked.returncode == 0, checked.stderr
    planned = publisher(proj, "plan", proj.manifest_path, columns=120)
    assert planned.returncode == 0, planned.stderr
    assert publisher(proj, "channels").returncode == 0
    assert sorted(proj.root.rglob("*")) == before and not proj.state_dir.exists()
    lines = planned.stdout.splitlines()
    channel = [line for line in lines if line.strip().startswith("immd-web")]
    assert channel and f"goes live {at.strftime('%Y-%m-%d')} 10:00:00 HKT" in channel[0], planned.stdout
    assert any(line.strip() == f"at {PUBLIC}{proj.manifest['id']}/" for line in lines), planned.stdout


def test_channels_names_what_is_missing_and_agrees_with_check(
        project: Callable[[], Project], cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = project()
    secrets = proj.root / "secrets"
    secrets.mkdir()
    (secrets / "known_hosts").write_text("")
    key, token = secrets / "immd-sftp.key", secrets / "immd-youtube.json"
    for path in (key, token):
        path.write_text("{}")
        path.chmod(0o644)
    proj.add_channel("sb-web", {"kind": "website", "target": "webdavs://127.0.0.1:9/videos",
                                "username": "publisher", "password_env": "SB_WEBDAV_TEST_PASSWORD",
                                "public_url": PUBLIC})
    proj.add_channel("immd-web", {"kind": "website", "target": "sftp://publisher@127.0.0.1:9/srv/videos",
                                  "key_file": "secrets/immd-sftp.key", "known_hosts": "secrets/known_hosts",
                                  "public_url": PUBLIC})
    proj.add_channel("immd-youtube", {"kind": "youtube", "credentials": "secrets/immd-youtube.json"})
    proj.add_channel("consular-wechat", {"kind": "wechat", "appid": "wx0123456789abcdef",
                                         "secret_env": "WECHAT_TEST_SECRET", "language": "zh-Hans"})
    proj.write()
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("SB_WEBDAV_TEST_PASSWORD", raising=False)
    monkeypatch.delenv("WECHAT_TEST_SECRET", raising=False)
    wanted = ["environment variable SB_WEBDAV_TEST_PASSWORD is not set",
              f"{key}: channels.immd-web.key_file: secret file is readable by others (mode 0644)",
              f"{token}: channels.immd-youtube.credentials: secret file is readable by others (mode 0644)",
              "environment variable WECHAT_TEST_SECRET is not set"]
    listed = cli(proj, "channels")
    checked = cli(proj, "check", proj.manifest_path)
    for result in (listed, checked):
        said = " ".join(result.output.split())
        assert result.exit_code == 2, result.output
        for text in wanted:
            assert text in said, (text, said)
    assert "present" not in listed.output and listed.output.count("credentials missing") == 4
    monkeypatch.setenv("SB_WEBDAV_TEST_PASSWORD", "not-used-offline")
    monkeypatch.setenv("WECHAT_TEST_SECRET", "not-used-offline")
    for path in (key, token):
        path.chmod(0o600)
    listed = cli(proj, "channels")
    assert listed.exit_code == 0 and listed.output.count("present") == 4, listed.output
    checked = cli(proj, "check", proj.manifest_path)
    assert checked.exit_code == 0, checked.output
    token.unlink()
    missing = " ".join(cli(proj, "channels").output.split())
    assert f"{token}: channels.immd-youtube.credentials: the file does not exist" in missing
    assert "set client_secrets" in missing and "publisher auth immd-youtube" in missing


def test_init_youtube_block_signs_in_with_publisher_auth(tmp_path: Path) -> None:
    import json

    from tests.fakes.youtube_server import YouTubeFake
    from tests.test_youtube_auth import browser

    env = {**os.environ, "PUBLISHER_HOME": str(tmp_path / "state"), "COLUMNS": "250"}
    env.pop("PUBLISHER_CONFIG", None)
    site = tmp_path / "site"

    def publisher_in_site(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "publisher", *args], cwd=site, env=env,
                              capture_output=True, text=True, timeout=120, **kwargs)

    site.mkdir()
    assert publisher_in_site("init").returncode == 0
    config = site / "publisher.yaml"
    lines, block = [], False
    for line in config.read_text(encoding="utf-8").splitlines():
        block = line.startswith("  # immd-youtube:") or (block and line.startswith("  #   "))
        lines.append("  " + line[4:] if block else line)
    with YouTubeFake(tmp_path / "fake") as fake:
        lines.append(f"    api_root: {fake.url}\n    ca_bundle: {fake.certfile}")  # the fake, not Google
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        client = site / "secrets" / "oauth-client.json"
        client.parent.mkdir()
        client.write_text(json.dumps({"installed": {
            "client_id": fake.model.client_id, "client_secret": fake.model.client_secret,
            "auth_uri": fake.url + "o/oauth2/auth", "token_uri": fake.url + "token"}}))
        client.chmod(0o600)
        before = publisher_in_site("channels")
        assert before.returncode == 2 and "run `publisher auth immd-youtube`" in before.stdout, before.stdout
        proc = subprocess.Popen([sys.executable, "-m", "publisher", "auth", "immd-youtube"], cwd=site,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        show = browser(fake, {})
        for line in proc.stderr:
            if "o/oauth2/auth?" in line:
                show(line.strip())  # type: ignore[operator]
                break
        out, errors = proc.communicate(timeout=60)
        assert proc.returncode == 0, errors
        token = site / "secrets" / "immd-youtube.json"
        assert f"credentials written to {token}" in " ".join(out.split())
        assert token.stat().st_mode & 0o777 == 0o600
        after = publisher_in_site("channels")
        assert after.returncode == 0 and "immd-youtube  youtube  credentials present" in after.stdout


def test_ctrl_c_stops_a_release_and_says_how_to_resume(project: Callable[[], Project],
                                                       tmp_path: Path) -> None:
    import signal
    import time

    from tests.faultproxy import Fault, FaultProxy
    from tests.servers.webdav import webdav_server

    proj = project()
    with webdav_server(tmp_path / "dav") as dav, FaultProxy(dav.port, lifetime=300, stall_for=120) as proxy:
        proj.add_channel("dav-web", {"kind": "website", "target": f"webdav://127.0.0.1:{proxy.port}/site",
                                     "username": dav.user, "password_env": "DAV_TEST_PASSWORD",
                                     "timeout": 100, "public_url": PUBLIC})
        proj.write()
        env = {**proj.env(), "DAV_TEST_PASSWORD": dav.password}
        proxy.always = Fault("stall", after=20_000)  # the upload hangs: a slow server
        proc = subprocess.Popen([sys.executable, "-m", "publisher", "release", str(proj.manifest_path)],
                                cwd=proj.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while proxy.stats["stalls"] == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proxy.stats["stalls"] >= 1 and proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        out, errors = proc.communicate(timeout=30)
        assert proc.returncode == 130, (out, errors)
        assert "interrupted" in errors and "run the same command again to resume" in errors
        proxy.clear()
        again = publisher(proj, "release", proj.manifest_path, env=env)
        assert again.returncode == 0, again.stderr
        assert (dav.root / "site" / proj.manifest["id"] / "video.mp4").is_file()


def test_demo_says_how_to_look_at_what_it_made_and_serves_it(tmp_path: Path) -> None:
    import signal
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    state = tmp_path / "state"
    env = {**os.environ, "PUBLISHER_HOME": str(state), "COLUMNS": "100"}
    env.pop("PUBLISHER_CONFIG", None)
    command = [sys.executable, "-m", "publisher", "demo", "showcase", "--port", str(port)]
    made = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    said = made.stdout
    assert f"made in {tmp_path / 'showcase'}" in said and "www/videos" in said
    assert f"publisher --state-dir {state} status\n" in said
    assert f"publisher --state-dir {state} status --html report.html" in said
    assert "demo showcase --serve" in said
    assert f"http://localhost:{port}/videos/consular-protection-demo/" in said
    assert (tmp_path / "showcase" / "www" / "videos" / "consular-protection-demo" / "index.html").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status = subprocess.run([sys.executable, "-m", "publisher", "status", "--json"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and '"release": "consular-protection-demo"' in status.stdout, status.stderr
    server = subprocess.Popen([*command, "--serve"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert server.stdout is not None
        for line in server.stdout:
            if line.startswith("serving"):
                break
        assert f"http://localhost:{port}/" in line and "Ctrl-C to stop" in line
        page = f"http://127.0.0.1:{port}/videos/consular-protection-demo/"
        with urllib.request.urlopen(page, timeout=10) as answer:  # noqa: S310
            assert answer.status == 200 and "Consular Protection: Travel Safely" in answer.read().decode()
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert server.returncode == 0


def test_run_stops_gracefully_on_ctrl_c_and_at_once_on_a_second(project: Callable[[], Project], cli: Any,
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import signal
    import time

    from tests.faultproxy import Fault, FaultProxy
    from tests.servers.webdav import webdav_server

    proj = project()
    with webdav_server(tmp_path / "dav") as dav, FaultProxy(dav.port, lifetime=300, stall_for=120) as proxy:
        block = {"kind": "website", "target": f"webdav://127.0.0.1:{proxy.port}/site", "username": dav.user,
                 "password_env": "DAV_TEST_PASSWORD", "timeout": 1, "public_url": PUBLIC}
        proj.add_channel("dav-web", block)
        proj.settings["retry"] = {"attempts": 1, "defer_minutes": 0.01}
        proj.write()
        monkeypatch.setenv("DAV_TEST_PASSWORD", dav.password)
        proxy.always = Fault("stall", after=20_000)
        assert cli(proj, "release", proj.manifest_path).exit_code == 75  # deferred: the service retries it
        block["timeout"] = 100  # now the service's retry hangs on the stalled server
        proj.write()
        stalls = proxy.stats["stalls"]
        proc = subprocess.Popen([sys.executable, "-m", "publisher", "run", "--poll", "0.2"], cwd=proj.root,
                                env={**proj.env(), "DAV_TEST_PASSWORD": dav.password}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 120
        while proxy.stats["stalls"] == stalls and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None and proxy.stats["stalls"] > stalls, proc.communicate()
        proc.send_signal(signal.SIGINT)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=1)  # the first Ctrl-C waits for the running job
        proc.send_signal(signal.SIGINT)
        out, errors = proc.communicate(timeout=30)
        assert proc.returncode == 130, (out, errors)
        assert "stopping after running jobs finish (Ctrl-C again to stop at once)" in errors
        assert "second Ctrl-C: stopping at once" in errors
