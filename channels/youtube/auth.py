"""`publisher auth CHANNEL` for youtube: the installed-app OAuth flow (loopback redirect).

The person opens the printed URL, allows access, and the browser comes back to a one-shot
server on 127.0.0.1; the code is exchanged for a refresh token at the client's ``token_uri``
and written to the channel's credentials file with mode 0600.
"""

from __future__ import annotations

import json
import os
import sys
import wsgiref.simple_server
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from google_auth_oauthlib.flow import InstalledAppFlow

from channels.youtube.options import YouTubeOptions
from channels.youtube.upload import SCOPES, TOKEN_URI
from publisher.contract import read_secret_file, remember_secret
from publisher.errors import AuthError, InputError
from publisher.models import Problem

AUTH_URI = "https://accounts.google.com/o/oauth2/auth"


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _client(name: str, opts: YouTubeOptions, resolve: Callable[[str], Path]) -> dict[str, str]:
    """client_id/secret/auth_uri/token_uri from client_secrets, else from the old credentials."""
    if opts.client_secrets:
        path = resolve(opts.client_secrets)
        try:
            data = json.loads(read_secret_file(path, "client_secrets", name))
            block = data.get("installed") or data.get("web") or data
            client = {k: block[k] for k in ("client_id", "client_secret")}
        except (ValueError, KeyError, AttributeError):
            raise InputError(Problem(file=str(path), field="client_secrets",
                                     message="not an OAuth client JSON (no client_id/client_secret)",
                                     fix="download the Desktop app OAuth client from Google Cloud "
                                         "console > APIs & Services > Credentials")) from None
        client["auth_uri"] = block.get("auth_uri") or AUTH_URI
        client["token_uri"] = block.get("token_uri") or TOKEN_URI
        return client
    path = resolve(opts.credentials)
    if not path.is_file():
        raise AuthError(f"set client_secrets for channel '{name}' (the OAuth client JSON "
                        "from Google Cloud console) so publisher can sign in", channel=name)
    old = json.loads(read_secret_file(path, "credentials", name))
    return {"client_id": old["client_id"], "client_secret": old["client_secret"],
            "auth_uri": old.get("auth_uri") or AUTH_URI, "token_uri": old.get("token_uri") or TOKEN_URI}


def run_flow(name: str, opts: YouTubeOptions, resolve: Callable[[str], Path], *,
             show: Callable[[str], None] | None = None, timeout: float = 600) -> Path:
    """Sign channel ``name`` in; ``resolve`` turns the options' relative paths into paths."""
    client = _client(name, opts, resolve)
    remember_secret(client["client_secret"])
    flow = InstalledAppFlow.from_client_config({"installed": dict(
        client, redirect_uris=["http://127.0.0.1"])}, scopes=SCOPES)
    seen: dict[str, str] = {}

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        seen["uri"] = wsgiref.util.request_uri(environ)
        start("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"publisher: sign-in received, you can close this window."]

    server = wsgiref.simple_server.make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    try:
        flow.redirect_uri = f"http://127.0.0.1:{server.server_port}/"
        url, _ = flow.authorization_url(access_type="offline", prompt="consent")
        (show or (lambda s: print(s, file=sys.stderr)))(
            f"Open this address in a browser, sign in with the YouTube channel's account and allow "
            f"access:\n{url}")
        server.timeout = timeout
        server.handle_request()
    finally:
        server.server_close()
    if "uri" not in seen:
        raise AuthError("no answer from the browser within the time allowed; run the command again",
                        channel=name)
    ca = str(resolve(opts.ca_bundle)) if opts.ca_bundle else True
    try:  # oauthlib insists on https for the redirect it parses; the loopback redirect is http
        flow.fetch_token(authorization_response=seen["uri"].replace("http://", "https://", 1), verify=ca)
    except Exception as e:  # oauthlib raises many types; none may carry the secret
        raise AuthError(f"Google refused the sign-in: {type(e).__name__}: {e}",
                        channel=name) from None
    creds = flow.credentials
    if not creds.refresh_token:
        raise AuthError("Google returned no refresh token; remove publisher's access at "
                        "https://myaccount.google.com/permissions and run the command again",
                        channel=name)
    remember_secret(creds.refresh_token)
    target = resolve(opts.credentials)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"type": "authorized_user", "client_id": client["client_id"],
                   "client_secret": client["client_secret"], "refresh_token": creds.refresh_token,
                   "token_uri": client["token_uri"]}, f)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return target
