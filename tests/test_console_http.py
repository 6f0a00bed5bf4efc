"""The console over real HTTP (uvicorn on 127.0.0.1, httpx as the client): authentication,
cookies and headers, CSRF, login limits, roles, four eyes, the JSON API, escaping and secrets."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from publisher.console.app import CSP
from publisher.console.auth import LoginLimiter
from publisher.contract import remember_secret
from tests.conftest import Project
from tests.console_site import PASSWORD, Site, field, site  # noqa: F401

Make = Callable[..., Site]


def start_release(s: Site, client: httpx.Client, action: str = "release") -> dict[str, Any]:
    page = client.get("/start")
    assert "release.yaml" in page.text
    r = client.post(f"/start/{action}", data={"csrf": field(page.text, "csrf"), "manifest": "release.yaml"})
    assert r.status_code == 303 and r.headers["location"].startswith("/tasks/"), r.text
    return s.wait_task(client, int(r.headers["location"].rsplit("/", 1)[1]))


def act(s: Site, client: httpx.Client, verb: str, **data: str) -> httpx.Response:
    page = client.get(f"/releases/{s.rid}")
    fields = {"csrf": field(page.text, "csrf"), **data}
    if verb == "approve":
        fields.setdefault("seen", field(page.text, "seen"))
    return client.post(f"/releases/{s.rid}/{verb}", data=fields)


def last_task(s: Site) -> int:
    assert s.console is not None
    return max(t.id for t in s.console.tasks.about(s.rid))


def events(s: Site) -> list[tuple[str, str]]:
    return [(e.action, e.actor) for e in s.store().events(s.rid)]


def test_unauthenticated_requests_get_the_login_page_or_401(site: Make) -> None:
    s = site()
    s.start()
    with s.client() as c:
        r = c.get("/", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
        login = c.get("/releases/x", follow_redirects=True)
        assert login.status_code == 200 and "<h1>Sign in</h1>" in login.text
        post = c.post("/releases/x/withdraw", data={"confirm": "yes"})
        assert post.status_code == 401 and "Sign in" in post.text
        api = c.get("/api/releases")
        assert api.status_code == 401 and api.headers["www-authenticate"] == "Bearer"
        assert "error" in api.json()
        bad = c.get("/api/releases", headers={"Authorization": "Bearer pub_not-a-token"})
        assert bad.status_code == 401
        assert c.get("/healthz").text == "ok"


def test_session_cookie_flags_and_security_headers(site: Make) -> None:
    s = site()
    s.start()
    with s.client() as c:
        page = c.get("/login")
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "style-src 'self'" in CSP
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        r = c.post("/login", data={"token": field(page.text, "token"), "name": "vera", "password": PASSWORD})
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("publisher_session=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
        assert c.get("/").status_code == 200
        static = c.get("/static/console.js")
        assert static.status_code == 200 and static.headers["content-security-policy"] == CSP
        # every script and stylesheet a page loads is the console's own
        home = c.get("/").text
        assert '<script src="/static/console.js"' in home and "<style" not in home and "style=" not in home
        assert "http://" not in home.replace(s.url, "") and "https://" not in home
        # logging out ends the session on the server too
        session = c.cookies["publisher_session"]
        c.post("/logout", data={"csrf": field(home, "csrf")})
        with s.client(cookies={"publisher_session": session}) as stolen:
            assert stolen.get("/", follow_redirects=False).status_code == 303


def test_cookie_is_secure_behind_a_trusted_tls_proxy_only(site: Make) -> None:
    s = site(setup=lambda p: None)
    s.proj.settings["console"]["trusted_proxies"] = ["127.0.0.1"]
    s.start()
    with s.client() as c:
        page = c.get("/login")
        r = c.post("/login", headers={"X-Forwarded-Proto": "https"},
                   data={"token": field(page.text, "token"), "name": "vera", "password": PASSWORD})
        assert "Secure" in r.headers["set-cookie"]
    s2 = site()
    s2.start()  # 127.0.0.1 is not trusted there: the header is ignored
    with s2.client() as c:
        page = c.get("/login")
        r = c.post("/login", headers={"X-Forwarded-Proto": "https"},
                   data={"token": field(page.text, "token"), "name": "vera", "password": PASSWORD})
        assert "Secure" not in r.headers["set-cookie"]


def test_cookie_is_secure_when_served_over_tls(site: Make, tmp_path: Path) -> None:
    from tests.fakes.tls import cert_pair

    cert, key = cert_pair(tmp_path)
    s = site()
    s.start(ssl=(cert, key))
    import ssl

    with s.client(verify=ssl.create_default_context(cafile=str(cert))) as c:
        page = c.get("/login")
        assert page.url.scheme == "https"
        r = c.post("/login", data={"token": field(page.text, "token"), "name": "vera", "password": PASSWORD})
        assert "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


def test_wrong_password_and_login_limit_are_logged(site: Make, caplog: pytest.LogCaptureFixture) -> None:
    s = site()
    s.start()
    caplog.set_level(logging.INFO, logger="publisher")
    with s.client() as c:
        page = c.get("/login")
        token = field(page.text, "token")
        for _ in range(5):
            r = c.post("/login", data={"token": token, "name": "pat", "password": "guess-" + "x" * 8})
            assert r.status_code == 401 and "Wrong user name or password" in r.text
            assert "publisher_session" not in r.headers.get("set-cookie", "")
        r = c.post("/login", data={"token": token, "name": "pat", "password": PASSWORD})
        assert r.status_code == 429 and "Too many failed attempts" in r.text
        # another user from the same address, and the same user from another address, are not held
        assert c.post("/login", data={"token": token, "name": "vera", "password": PASSWORD},
                      follow_redirects=False).status_code == 303
    with s.client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
        page = other.get("/login")
        r = other.post("/login", data={"token": field(page.text, "token"), "name": "pat",
                                        "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 303
    text = caplog.text
    assert text.count("failed sign-in for 'pat' from 127.0.0.1") == 5
    assert "sign-in refused for 'pat' from 127.0.0.1: too many failed attempts" in text
    assert "pat signed in from 127.0.0.2" in text
    assert PASSWORD not in text and "guess-" not in text


def test_login_limiter_forgets_failures_after_the_window() -> None:
    now = [1000.0]
    limiter = LoginLimiter(limit=5, window=60, clock=lambda: now[0])
    for _ in range(5):
        limiter.failed("Pat", "10.0.0.1")
    assert limiter.blocked("pat", "10.0.0.1") and not limiter.blocked("pat", "10.0.0.2")
    now[0] += 60.5
    assert not limiter.blocked("pat", "10.0.0.1")


def test_csrf_token_is_required_on_every_state_changing_request(site: Make, cli: Any) -> None:
    s = site()
    s.start()
    assert cli(s.proj, "release", s.proj.manifest_path).exit_code == 0
    before = events(s)
    with s.login("pat") as c:
        good = field(c.get(f"/releases/{s.rid}").text, "csrf")
        for data in ({}, {"csrf": ""}, {"csrf": good[:-2] + "xx"}):
            r = c.post(f"/releases/{s.rid}/withdraw", data={**data, "confirm": "yes"})
            assert r.status_code == 403 and "did not come from this console" in r.text
        cross = c.post(f"/releases/{s.rid}/withdraw", headers={"Origin": "https://evil.example"},
                       data={"csrf": good, "confirm": "yes"})
        assert cross.status_code == 403
        assert c.post("/logout", data={}).status_code == 403
    with s.client() as anon:
        anon.get("/login")
        r = anon.post("/login", data={"token": "forged", "name": "pat", "password": PASSWORD})
        assert r.status_code == 403 and "publisher_session" not in r.headers.get("set-cookie", "")
    assert s.states() == {"drop-a": "live"} and events(s) == before


def test_a_role_s_forbidden_action_is_403_and_changes_nothing(site: Make, cli: Any) -> None:
    s = site()
    s.start()
    assert cli(s.proj, "release", s.proj.manifest_path).exit_code == 0
    before = events(s)
    with s.login("vera") as viewer:
        page = viewer.get(f"/releases/{s.rid}").text
        assert "Withdraw" not in page and "Retry" not in page  # no buttons a viewer may not use
        csrf = field(page, "csrf")
        for verb in ("withdraw", "retry", "update", "cancel", "approve"):
            r = viewer.post(f"/releases/{s.rid}/{verb}", data={"csrf": csrf, "confirm": "yes"})
            assert r.status_code == 403 and "viewer" in r.text
        r = viewer.post("/start/release", data={"csrf": csrf, "manifest": "release.yaml"})
        assert r.status_code == 403
        assert viewer.get("/users").status_code == 403
    with s.login("pat") as publisher:
        csrf = field(publisher.get("/").text, "csrf")
        assert publisher.post(f"/releases/{s.rid}/approve", data={"csrf": csrf}).status_code == 403
        r = publisher.post("/users", data={"csrf": csrf, "name": "mallory", "role": "admin",
                                           "password": PASSWORD})
        assert r.status_code == 403
    with s.client(headers={"Authorization": f"Bearer {s.token('vera')}"}) as api:
        assert api.post(f"/api/releases/{s.rid}/withdraw").status_code == 403
    assert s.states() == {"drop-a": "live"} and events(s) == before
    assert s.accounts().user("mallory") is None


def test_four_eyes_refusal_then_approval_by_another_person(site: Make) -> None:
    s = site(approval=True)
    target = s.proj.root / "www-drop-a"
    s.start()
    with s.login("paul") as paul:  # an approver who submits
        task = start_release(s, paul)
        assert task["state"] == "done" and "awaiting approval" in " ".join(task["lines"])
        assert s.states() == {"drop-a": "pending"} and not (target / s.rid).exists()
        page = paul.get(f"/releases/{s.rid}").text
        assert "Awaiting approval" in page and "another approver must approve it" in page
        r = act(s, paul, "approve")
        assert r.status_code == 403 and "four eyes" in r.text
    with s.client(headers={"Authorization": f"Bearer {s.token('paul')}"}) as api:
        assert api.post(f"/api/releases/{s.rid}/approve").status_code == 403
    assert s.store().approval(s.rid) is None and s.states() == {"drop-a": "pending"}
    with s.login("quinn") as quinn:
        stale = act(s, quinn, "approve", seen="0" * 64)  # a page from before the content changed
        assert stale.status_code == 409
        r = act(s, quinn, "approve")
        assert r.status_code == 303
        done = s.wait_task(quinn, last_task(s))
        assert done["state"] == "done", done
        assert s.states() == {"drop-a": "live"} and (target / s.rid / "index.html").exists()
    who, _, hashes = s.store().approval(s.rid) or ("", None, {})
    assert who == "quinn" and hashes == s.store().release_hashes(s.rid)
    assert ("submit", "paul") in events(s) and ("approve", "quinn") in events(s)
    assert ("launch", "quinn") in events(s)  # released on approval


def test_approval_is_bound_to_the_hashes_the_approver_saw(site: Make) -> None:
    s = site(approval=True)
    s.start()
    with s.login("pat") as pat:
        start_release(s, pat)
    with s.login("quinn") as quinn:
        page = quinn.get(f"/releases/{s.rid}").text
        caption = s.proj.manifest_path.parent / "subs" / "en.srt"
        caption.write_text(caption.read_text(encoding="utf-8").replace("Travel", "Trvl"), encoding="utf-8")
        r = quinn.post(f"/releases/{s.rid}/approve", data={"csrf": field(page, "csrf"),
                                                           "seen": field(page, "seen")})
        assert r.status_code == 303
        done = s.wait_task(quinn, last_task(s))
    assert done["state"] == "failed" and "captions.en" in " ".join(done["lines"])
    assert s.store().approval(s.rid) is None and s.states() == {"drop-a": "pending"}


def test_api_matches_status_json_and_runs_verbs_with_a_token(site: Make, cli: Any) -> None:
    s = site()
    s.start()
    assert cli(s.proj, "release", s.proj.manifest_path).exit_code == 0
    status_all = json.loads(cli(s.proj, "status", "--json").stdout)
    status_one = json.loads(cli(s.proj, "status", s.rid, "--json").stdout)
    token = s.token("pat")
    with s.client(headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/releases").json() == status_all
        assert api.get(f"/api/releases/{s.rid}").json() == status_one
        assert api.get("/api/releases/nope").status_code == 404
        assert api.post(f"/api/releases/{s.rid}/explode").status_code == 404
        assert api.post(f"/api/releases/{s.rid}/withdraw", content=b"[1]").status_code == 400
        r = api.post(f"/api/releases/{s.rid}/withdraw", json={"channel": "drop-a"})
        assert r.status_code == 202, r.text
        record = s.wait_task(api, r.json()["task"])
        assert record["state"] == "done" and record["results"][0]["state"] == "withdrawn"
    assert s.states() == {"drop-a": "withdrawn"}
    assert ("withdraw", "pat") in events(s)
    with s.login("pat") as browser:  # a session may read, but not POST to, the API
        assert browser.get("/api/releases").status_code == 200
        assert browser.post(f"/api/releases/{s.rid}/retry").status_code == 401


def test_every_console_action_is_recorded_with_the_user_s_name(site: Make, cli: Any) -> None:
    s = site()
    s.start()
    with s.login("pat") as pat:
        assert start_release(s, pat)["state"] == "done"
        assert ("release", "pat") in events(s)
        r = act(s, pat, "update")
        assert r.status_code == 303 and s.wait_task(pat, last_task(s))["state"] == "done"
        assert ("update", "pat") in events(s)
        confirm = act(s, pat, "withdraw")
        assert confirm.status_code == 200 and "Yes, withdraw" in confirm.text
        assert s.states() == {"drop-a": "live"}  # nothing happens before the confirmation
        r = pat.post(f"/releases/{s.rid}/withdraw", data={"csrf": field(confirm.text, "csrf"),
                                                          "confirm": "yes", "channel": ""})
        assert r.status_code == 303 and s.wait_task(pat, last_task(s))["state"] == "done"
    assert s.states() == {"drop-a": "withdrawn"}
    assert ("withdraw", "pat") in events(s) and ("withdrawn", "pat") in events(s)
    page = s.login("vera").get(f"/releases/{s.rid}").text
    assert "<td data-label=\"Who\">pat</td>" in page


def test_user_text_is_escaped_and_no_secret_reaches_pages_api_or_log(site: Make, cli: Any) -> None:
    def hostile(proj: Project) -> None:
        proj.manifest["title"]["en"] = '<script>alert("x")</script><img src=x onerror=alert(1)>'

    s = site(setup=hostile)
    s.start()
    secret = remember_secret("s3cr3t-" + "9" * 20)
    with s.login("pat") as pat:
        started = start_release(s, pat)
        assert started["state"] == "done"
        s.store().add_event(s.rid, "note", f"a message that carried {secret}")
        token = s.token("pat")
        pages = [pat.get(u).text for u in ("/", f"/releases/{s.rid}", "/start", f"/tasks/{started['id']}",
                                           f"/fragments/releases/{s.rid}", "/fragments/dashboard")]
        api = httpx.get(f"{s.url}/api/releases/{s.rid}", headers={"Authorization": f"Bearer {token}"}).text
        session = pat.cookies["publisher_session"]
    for text in pages:
        assert "<script>alert" not in text and "<img src=x" not in text
        assert secret not in text and PASSWORD not in text and session not in text and token not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[1]
    assert "a message that carried ***" in pages[1]
    assert secret not in api and token not in api
    log = (s.proj.state_dir / "publisher.log")
    assert not log.exists() or secret not in log.read_text(encoding="utf-8")


def test_releases_dir_refuses_paths_outside_it(site: Make) -> None:
    s = site()
    s.start()
    with s.login("pat") as pat:
        csrf = field(pat.get("/start").text, "csrf")
        for bad in ("../publisher.yaml", "/etc/passwd", "subs/en.srt", "missing.yaml"):
            r = pat.post("/start/check", data={"csrf": csrf, "manifest": bad})
            assert r.status_code == 400, bad
        r = pat.post("/start/check", data={"csrf": csrf, "manifest": "release.yaml"})
        task = s.wait_task(pat, int(r.headers["location"].rsplit("/", 1)[1]))
        assert task["state"] == "done" and "all checks passed" in task["headline"]
        r = pat.post("/start/plan", data={"csrf": csrf, "manifest": "release.yaml"})
        task = s.wait_task(pat, int(r.headers["location"].rsplit("/", 1)[1]))
        assert task["state"] == "done" and task["results"][0]["channel"] == "drop-a"
    assert s.store().get_release(s.rid) is None  # check and plan record nothing


def test_single_sign_on_header_only_from_trusted_proxies(site: Make) -> None:
    def sso(proj: Project) -> None:
        proj.settings["console"].update(auth={"header": "X-Remote-User"}, trusted_proxies=["127.0.0.2/32"])

    s = site(setup=sso)
    s.start()
    with s.client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as proxy:
        r = proxy.get("/", headers={"X-Remote-User": "quinn"})
        assert r.status_code == 200 and "quinn (approver)" in r.text
        assert "HttpOnly" in r.headers["set-cookie"]
        assert proxy.get("/", headers={"X-Remote-User": "nobody"}, follow_redirects=False).status_code == 303
    with s.client() as direct:  # 127.0.0.1 is not a trusted proxy
        r = direct.get("/", headers={"X-Remote-User": "quinn"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_user_verbs_store_argon2_hashes_and_revocable_tokens(site: Make, cli: Any) -> None:
    from typer.testing import CliRunner

    from publisher.cli import app

    s = site()
    s.start()
    env = s.proj.env()
    run = CliRunner().invoke
    short = run(app, ["user", "add", "wendy", "--role", "publisher"], input="short\n", env=env)
    assert short.exit_code == 2 and "12 characters" in short.output
    added = run(app, ["user", "add", "wendy", "--role", "publisher"], input=PASSWORD + "\n", env=env)
    assert added.exit_code == 0, added.output
    listed = run(app, ["user", "list"], env=env)
    assert "wendy" in listed.stdout and "publisher" in listed.stdout
    made = run(app, ["user", "token", "wendy"], env=env)
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("pub_")
    import sqlite3

    with sqlite3.connect(s.proj.state_dir / "state.db") as db:
        stored_hash = db.execute("select password_hash from console_users where name='wendy'").fetchone()[0]
        tokens = [r[0] for r in db.execute("select sha256 from console_tokens")]
    assert stored_hash.startswith("$argon2id$") and PASSWORD not in stored_hash
    assert token not in tokens and len(tokens[0]) == 64
    with s.client(headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get("/api/releases").status_code == 200
        browser = s.login("wendy")
        assert browser.get("/").status_code == 200
        assert run(app, ["user", "token", "wendy", "--revoke"], env=env).exit_code == 0
        assert api.get("/api/releases").status_code == 401
        fresh = run(app, ["user", "token", "wendy"], env=env).stdout.strip().splitlines()[-1]
        assert run(app, ["user", "disable", "wendy"], env=env).exit_code == 0
        assert api.get("/api/releases", headers={"Authorization": f"Bearer {fresh}"}).status_code == 401
        assert browser.get("/", follow_redirects=False).status_code == 303  # the session ended too


def test_dashboard_puts_failed_and_overdue_first_and_filters(site: Make, cli: Any) -> None:
    s = site()
    target = s.proj.root / "www-drop-a"
    s.proj.add_channel("drop-b", {"kind": "drop", "target": str(s.proj.root / "www-b")})
    s.start()
    (target.parent / "www-b").mkdir()
    (target.parent / "www-b" / "BROKEN").write_text("bad file")
    assert cli(s.proj, "release", s.proj.manifest_path).exit_code == 1
    with s.login("vera") as c:
        page = c.get("/").text
        rows = page[page.index("<tbody>"):]
        assert rows.index("drop-b") < rows.index("drop-a")  # failed before live
        assert "the service refused the upload: bad file" in page
        only = c.get("/", params={"state": "live"}).text
        assert "drop-a" in only and "data-label=\"Channel\">drop-b" not in only
        today = dt.datetime.now(dt.UTC).astimezone(s.console.core.zone).date()  # type: ignore[union-attr]
        assert "drop-a" in c.get("/", params={"from": today.isoformat()}).text
        later = (today + dt.timedelta(days=2)).isoformat()
        assert "Nothing matches" in c.get("/", params={"from": later}).text


def test_publisher_serve_runs_the_console_until_sigterm(site: Make) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    def website(proj: Project) -> None:  # a kind the subprocess knows (drop lives in the tests)
        proj.channels = {"web": {"kind": "website", "target": str(proj.root / "www"),
                                 "public_url": "https://www.example.gov.hk/videos/"}}

    s = site(setup=website)
    s.start()  # writes the project and its users; this test serves it again through the CLI
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**s.proj.env(), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "publisher", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()  # type: ignore
                time.sleep(0.1)
        assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
        assert "server" not in r.headers
        assert _listening(port) == ["127.0.0.1"]  # loopback only unless told otherwise
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises SIGTERM after a clean stop
    assert f"publisher console on http://127.0.0.1:{port}/" in err


def _listening(port: int) -> list[str]:
    """The IPv4 addresses a socket listens on at ``port`` (from /proc/net/tcp: no traffic sent)."""
    import ipaddress

    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        host, hexport = local.split(":")
        if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
            found.append(str(ipaddress.IPv4Address(bytes.fromhex(host)[::-1])))
    return found
