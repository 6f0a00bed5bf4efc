"""Firebase Cloud Messaging HTTP v1: one notification to a topic when a feed item goes live.

Auth is a service-account JSON file (mode 0600) through google-auth; its ``token_uri`` is used
as written, and ``api_root`` is overridable (tests point both at a loopback server).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from google.auth.exceptions import RefreshError, TransportError
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from channels.app_feed.options import FcmOptions
from publisher.contract import read_secret_file
from publisher.errors import AuthError, RateLimited, Rejected, Transient, untrusted_certificate

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class Ambiguous(Transient):
    """The request may have reached FCM (timeout after sending): do not send it again."""


def send_push(opts: FcmOptions, credentials: Path, ca_bundle: Path | None, *, title: str, body: str,
              data: dict[str, str], channel: str, now: datetime) -> str:
    """Send one notification; returns FCM's message name. Raises ChannelError subclasses (a
    RateLimited one until ``now`` plus FCM's Retry-After)."""
    info = json.loads(read_secret_file(credentials, "fcm.credentials", channel))
    project = opts.project_id or info.get("project_id", "")
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
    session.verify = str(ca_bundle) if ca_bundle else True
    try:
        creds: Any = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
        creds.refresh(Request(session))
    except (ValueError, KeyError) as e:
        raise AuthError(f"{credentials} is not a service-account key file ({e})", channel=channel) from e
    except RefreshError as e:
        raise AuthError(f"FCM refused the service account in {credentials}: {e}", channel=channel) from e
    except TransportError as e:
        refused = untrusted_certificate(e, "FCM token endpoint")
        if refused:
            refused.channel = channel
            raise refused from e
        raise Transient(f"FCM token endpoint unreachable ({e.__class__.__name__})", channel=channel) from e
    url = f"{opts.api_root.rstrip('/')}/v1/projects/{project}/messages:send"
    message = {"message": {"topic": opts.topic, "notification": {"title": title, "body": body}, "data": data}}
    try:
        r = session.post(url, json=message, headers={"Authorization": f"Bearer {creds.token}"},
                         timeout=opts.timeout)
    except requests.exceptions.ConnectionError as e:
        refused = untrusted_certificate(e, "FCM messages:send")
        if refused:
            refused.channel = channel
            raise refused from e
        raise Transient(f"FCM unreachable ({e.__class__.__name__})", channel=channel) from e
    except requests.RequestException as e:
        raise Ambiguous(f"FCM did not answer in time ({e.__class__.__name__})", channel=channel) from e
    finally:
        session.close()
    if r.status_code == 200:
        return str(r.json().get("name", ""))
    try:
        detail = r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        detail = r.reason
    what = f"FCM messages:send for project {project}: {r.status_code} {detail}"
    if r.status_code in (401, 403):
        raise AuthError(what + "; check the service account's Firebase role", channel=channel)
    if r.status_code == 429:
        wait = int(r.headers.get("Retry-After", "60") or 60)
        raise RateLimited(what, retry_at=now + timedelta(seconds=wait), channel=channel)
    if r.status_code >= 500:
        raise Transient(what, channel=channel)
    raise Rejected(what, channel=channel)
