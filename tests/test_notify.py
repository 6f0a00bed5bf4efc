"""Notifications through apprise's json:// scheme to a real HTTP receiver on 127.0.0.1: one message
per event that needs a person, naming the release, channel, state and fix, never a secret; the
per-URL event filter; a receiver that cannot be reached never changes what publishing does."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import Project, wait_for
from tests.fakes.wechat_server import serve_wechat
from tests.servers import target_spec

PUBLIC = "https://www.example.gov.hk/videos/"
WRONG_PASSWORD = "wrong-Dav-Pass-8086"


class Receiver:
    """An HTTP server that keeps every JSON body POSTed to it, by path."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.messages.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def at(self, path: str) -> list[dict[str, Any]]:
        return [m for p, m in self.messages if p == "/" + path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def website(proj: Project) -> None:
    proj.add_channel("web", {"kind": "website", "target": str(proj.root / "www"), "public_url": PUBLIC})


def test_failed_channel_sends_one_message_with_fix_and_no_secret(
        project: Callable[[], Project], cli: Any, receiver: Receiver, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with target_spec("webdav", tmp_path / "d") as dav:
        monkeypatch.setenv("NOTIFY_DAV_WRONG", WRONG_PASSWORD)
        proj = project()
        website(proj)
        proj.add_channel("dav-web", {"kind": "website", "public_url": PUBLIC, **dav.options,
                                     "password_env": "NOTIFY_DAV_WRONG"})
        proj.settings["notify"] = [receiver.url("ops")]
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 1, result.output
    rid = proj.manifest["id"]
    [message] = receiver.at("ops")  # the live website is no news: only the failure is
    text = message["title"] + "\n" + message["message"]
    assert message["type"] == "failure"
    assert rid in text and "Consular Protection" in text
    assert "Channel: dav-web" in text and "State: failed" in text
    assert "check username and password_env" in text
    assert f"publisher retry {rid} --channel dav-web" in text
    assert WRONG_PASSWORD not in text and dav.env["PUBLISHER_TEST_DAV_PASSWORD"] not in text


def test_unreachable_receiver_changes_nothing_but_a_log_line(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    website(proj)
    proj.settings["notify"] = [{"url": f"json://127.0.0.1:{closed_port()}/hook", "events": ["live"]}]
    proj.write()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    rows = json.loads(cli(proj, "status", "--json").stdout)
    assert [(r["channel"], r["state"]) for r in rows] == [("web", "live")]
    log = (proj.state_dir / "publisher.log").read_text(encoding="utf-8")
    [line] = [line for line in log.splitlines() if "could not be delivered" in line]
    assert "notify[0]" in line and proj.manifest["id"] in line and "json://" in line
    assert "127.0.0.1" not in line  # the URL may carry a token: only its scheme is named


def test_event_filter_and_live_everywhere(project: Callable[[], Project], cli: Any,
                                          receiver: Receiver) -> None:
    proj = project()
    website(proj)
    proj.add_channel("web2", {"kind": "website", "target": str(proj.root / "www2"), "public_url": PUBLIC})
    proj.settings["notify"] = [receiver.url("default"),
                               {"url": receiver.url("live"), "events": ["live"]},
                               {"url": receiver.url("failures"), "events": ["failed", "deferred"]}]
    proj.write()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    assert receiver.at("default") == [] and receiver.at("failures") == []
    [live] = receiver.at("live")  # two channels went live: one message, once both are
    assert live["type"] == "success"
    assert "live everywhere" in live["title"]
    assert "web: " + PUBLIC in live["message"] and "web2: " + PUBLIC in live["message"]


def test_deferred_names_the_retry_time_in_the_operators_zone(
        project: Callable[[], Project], cli: Any, receiver: Receiver) -> None:
    proj = project()
    proj.add_channel("dav-down", {"kind": "website", "public_url": PUBLIC,
                                  "target": f"webdav://127.0.0.1:{closed_port()}/site"})
    proj.settings.update(timezone="Asia/Kolkata", notify=[receiver.url("ops")],
                         retry={"attempts": 1, "defer_minutes": 30})
    proj.write()
    before = datetime.now(UTC).replace(microsecond=0)
    result = cli(proj, "release", proj.manifest_path)
    after = datetime.now(UTC)
    assert result.exit_code == 75, result.output
    [message] = receiver.at("ops")
    assert message["type"] == "warning"
    assert "Channel: dav-down" in message["message"] and "State: deferred" in message["message"]
    found = re.search(r"tries again at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) IST", message["message"])
    assert found, message["message"]
    at = datetime.fromisoformat(found[1]).replace(tzinfo=ZoneInfo("Asia/Kolkata"))
    assert before + timedelta(minutes=30) <= at <= after + timedelta(minutes=30)


def test_unknown_event_is_refused_with_the_choices(project: Callable[[], Project], cli: Any,
                                                   receiver: Receiver) -> None:
    proj = project()
    website(proj)
    proj.settings["notify"] = [{"url": receiver.url("x"), "events": ["failed", "exploded"]}]
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2
    assert "publisher.yaml:10: notify[0].events[1]" in result.output and "'live'" in result.output
    assert receiver.messages == []


def test_quota_used_up_is_its_own_event(project: Callable[[], Project], cli: Any, receiver: Receiver,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_wechat(tmp_path / "wx") as wechat:
        wechat.fake.quota["/cgi-bin/draft/add"] = 0  # WeChat's daily limit (45009)
        monkeypatch.setenv("NOTIFY_WECHAT_SECRET", wechat.fake.secret)
        proj = project()
        proj.add_channel("wx", {"kind": "wechat", "appid": wechat.fake.appid,
                                "secret_env": "NOTIFY_WECHAT_SECRET", "api_root": wechat.url,
                                "ca_bundle": str(wechat.ca_bundle), "author": "入境事務處"})
        proj.settings["notify"] = [{"url": receiver.url("quota"), "events": ["quota"]},
                                   {"url": receiver.url("deferred"), "events": ["deferred"]}]
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
        tokens = set(wechat.fake.tokens)
    assert result.exit_code == 75, result.output
    assert receiver.at("deferred") == []
    [message] = receiver.at("quota")
    assert "State: deferred (quota used up)" in message["message"] and "45009" in message["message"]
    assert "tries again at" in message["message"] and "HKT" in message["message"]
    for secret in (wechat.fake.secret, *tokens):
        assert secret not in json.dumps(message)



def test_the_service_tells_of_an_overdue_embargo_and_a_repeat_rule_that_cannot_run(
        project: Callable[[], Project], cli: Any, receiver: Receiver) -> None:
    import tests.test_scheduler  # noqa: F401  (registers the `drop` channel kind)
    from publisher.engine.locks import FileLocks
    from publisher.inputs.config import load_config
    from publisher.schedule.service import Service
    from publisher.store import Store, sqlite_url

    proj = project()
    proj.add_channel("drop-a", {"kind": "drop", "target": str(proj.root / "drop")})
    proj.settings["notify"] = [receiver.url("ops")]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    base = dict(proj.manifest)
    for rid, extra in (("late-release", {"publish_at": later}),
                       ("broken-rule", {"repeat": [{"channels": ["drop-a"], "every": "1d"}]})):
        proj.manifest = {**base, "id": rid, "channels": ["drop-a"], **extra}
        proj.write()
        assert cli(proj, "release", proj.manifest_path).exit_code == 0
    past = datetime.now(UTC) - timedelta(minutes=5)
    with sqlite3.connect(proj.state_dir / "state.db") as db:
        db.execute("update publications set publish_at = ? where release_id = 'late-release'",
                   (past.replace(tzinfo=None).isoformat(" "),))
        text = db.execute("select release_json from releases where id = 'broken-rule'").fetchone()[0]
        broken = text.replace('"cron":null', '"cron":"0 10 1 *"').replace('"every":"1d"', '"every":null')
        db.execute("update releases set release_json = ? where id = 'broken-rule'", (broken,))
    svc = Service(load_config(proj.config_path), Store(sqlite_url(proj.state_dir)), proj.state_dir, poll=0.3)
    with FileLocks(proj.state_dir / "locks").hold("release-late-release"):  # another process holds it
        svc.start()
        try:
            assert wait_for(lambda: len(receiver.at("ops")) >= 2, timeout=20)
        finally:
            svc.stop()
    from publisher import notify

    assert notify.flush()
    by_release = {m["message"].splitlines()[0]: m for m in receiver.at("ops")}
    assert set(by_release) == {"Release: late-release (Consular Protection)",
                               "Release: broken-rule (Consular Protection)"}
    late = by_release["Release: late-release (Consular Protection)"]["message"]
    assert "Channel: drop-a" in late and "State: overdue" in late
    assert "the embargo ended at" in late and "HKT and it is not live yet" in late
    broken = by_release["Release: broken-rule (Consular Protection)"]["message"]
    assert "State: repeat" in broken and "5 fields" in broken and "run `publisher release` again" in broken


def test_a_url_with_a_token_comes_from_the_environment_and_is_never_logged(
        project: Callable[[], Project], cli: Any, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    token = "hook-T0ken-5b1c9e"
    monkeypatch.setenv("NOTIFY_HOOK_URL", receiver.url(token))
    proj = project()
    website(proj)
    proj.settings["notify"] = [{"url_env": "NOTIFY_HOOK_URL", "events": ["live"]},
                               {"url_env": "NOTIFY_UNSET_URL", "events": ["live"]}]
    proj.write()
    monkeypatch.delenv("NOTIFY_UNSET_URL", raising=False)
    result = cli(proj, "--verbose", "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    [message] = receiver.at(token)
    assert "live everywhere" in message["title"]
    log = (proj.state_dir / "publisher.log").read_text(encoding="utf-8")
    assert "notify[0] (url_env NOTIFY_HOOK_URL): told json://" in log
    assert "notify[1] (url_env NOTIFY_UNSET_URL): the environment variable NOTIFY_UNSET_URL is not set" in log
    assert token not in log and token not in result.output
