"""`publisher auth CHANNEL` for youtube: the installed-app flow against the fake's OAuth server."""

from __future__ import annotations

import json
import stat
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.contract import Job
from publisher.errors import AuthError
from tests.fakes import youtube_run as run
from tests.fakes.youtube_server import YouTubeFake


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[YouTubeFake]:
    with YouTubeFake(tmp_path / "fake") as f:
        yield f


def browser(fake: YouTubeFake, seen: dict[str, str], allow: bool = True) -> object:
    """What the person does: open the URL, allow access; Google redirects to the loopback."""

    def show(message: str) -> None:
        url = message.split()[-1]
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        seen.update(q, url=url)
        code = "4/fake-code"
        if allow:
            fake.model.auth_codes.add(code)
        back = q["redirect_uri"] + "?" + urllib.parse.urlencode({"state": q["state"], "code": code})
        threading.Thread(target=lambda: urllib.request.urlopen(back, timeout=10).read(),  # noqa: S310
                         daemon=True).start()
    return show


def test_authorize_writes_0600_credentials_that_work(tmp_path: Path, fake: YouTubeFake) -> None:
    client = tmp_path / "client.json"
    client.write_text(json.dumps({"installed": {
        "client_id": fake.model.client_id, "client_secret": fake.model.client_secret,
        "auth_uri": fake.url + "o/oauth2/auth", "token_uri": fake.url + "token"}}))
    client.chmod(0o600)
    ch = run.channel(tmp_path, {"credentials": "secrets/yt.json", "client_secrets": str(client),
                                "api_root": fake.url, "ca_bundle": str(fake.certfile), "timeout": 5})
    seen: dict[str, str] = {}
    path = ch.authorize(show=browser(fake, seen))  # type: ignore[arg-type]
    assert path == tmp_path / "secrets" / "yt.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert seen["url"].startswith(fake.url + "o/oauth2/auth?")
    assert seen["access_type"] == "offline" and "youtube.force-ssl" in seen["scope"]
    saved = json.loads(path.read_text())
    assert saved["refresh_token"] in fake.model.refresh_tokens
    assert saved["token_uri"] == fake.url + "token"
    assert not ch.credential_problems()
    # the new sign-in works for API calls
    api = ch.api(Job(release=run.release(tmp_path)))
    api.refresh()
    assert api.creds.valid


def test_refused_code_is_an_auth_error(tmp_path: Path, fake: YouTubeFake) -> None:
    fake.write_credentials(tmp_path / "secrets" / "yt.json")  # a re-auth reuses its client
    ch = run.channel(tmp_path, {"credentials": "secrets/yt.json", "api_root": fake.url,
                                "ca_bundle": str(fake.certfile)})
    with pytest.raises(AuthError, match="refused the sign-in") as err:
        ch.authorize(show=browser(fake, {}, allow=False))  # type: ignore[arg-type]
    assert fake.model.client_secret not in str(err.value)


def test_no_client_no_auth(tmp_path: Path, fake: YouTubeFake) -> None:
    ch = run.channel(tmp_path, {"credentials": "secrets/yt.json", "api_root": fake.url})
    assert ch.credential_problems()
    with pytest.raises(AuthError, match="client_secrets"):
        ch.authorize(show=print)
