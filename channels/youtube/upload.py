"""YouTube API access for the youtube channel: client, error mapping and the exactly-once upload.

The client is google-api-python-client over our own ``httplib2.Http`` (trusted CA, timeout, 308
not a redirect), wrapped in ``AuthorizedHttp`` with automatic 401 refresh switched off: its
re-send would carry an empty chunk. We refresh before each call and once on a 401 ourselves.
Every call first reserves its quota in the pool's ledger.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest, MediaFileUpload

from channels.youtube.options import UPLOAD
from channels.youtube.quota import Ledger
from publisher.contract import Journal, remember_secret
from publisher.errors import (
    AuthError,
    ChannelError,
    NotFound,
    RateLimited,
    Rejected,
    Transient,
    untrusted_certificate,
)

SCOPES = ["https://www.googleapis.com/auth/youtube.force-ssl"]
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (an address, not a secret)
TRANSPORT_ERRORS = (OSError, httplib2.HttpLib2Error, TransportError)
MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
        ".mkv": "video/x-matroska"}


class YouTubeRejected(Rejected):
    """A refusal, with YouTube's reason code (e.g. ``captionExists``) for the adapter to match on."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Api:
    """One authorised YouTube Data API client for one channel."""

    def __init__(self, channel: str, info: dict[str, str], *, api_root: str, ca_bundle: str | None,
                 timeout: float, ledger: Ledger, now: Callable[[], datetime]) -> None:
        self.channel = channel
        self.ledger = ledger
        self.now = now
        for key in ("refresh_token", "client_secret"):
            remember_secret(info.get(key, ""))
        self.creds = Credentials(
            token=None, refresh_token=info["refresh_token"], client_id=info["client_id"],
            client_secret=info["client_secret"], token_uri=info.get("token_uri") or TOKEN_URI,
            scopes=SCOPES)
        self.http = httplib2.Http(ca_certs=ca_bundle, timeout=timeout)
        self.http.redirect_codes = self.http.redirect_codes - {308}
        self.authed = google_auth_httplib2.AuthorizedHttp(
            self.creds, http=self.http, refresh_status_codes=())
        self.service: Any = build("youtube", "v3", http=self.authed, static_discovery=True,
                                  cache_discovery=False, client_options={"api_endpoint": api_root})

    # --- auth ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        try:
            self.creds.refresh(google_auth_httplib2.Request(self.http))
        except RefreshError as e:
            if "invalid_grant" in str(e):
                raise AuthError(
                    f"YouTube no longer accepts the stored sign-in of channel '{self.channel}' "
                    "(invalid_grant: revoked, expired or unused too long). "
                    f"Run `publisher auth {self.channel}` to sign in again.") from None
            if getattr(e, "retryable", False):
                raise Transient(f"YouTube sign-in service unavailable: {_first_line(e)}") from None
            raise AuthError(f"YouTube refused the sign-in of channel '{self.channel}': "
                            f"{_first_line(e)}. Check the credentials file, or run "
                            f"`publisher auth {self.channel}`.") from None
        except TRANSPORT_ERRORS as e:
            raise self.transport(e, "token refresh") from None
        remember_secret(self.creds.token or "")

    def fresh(self) -> None:
        if not self.creds.valid:
            self.refresh()

    # --- calls --------------------------------------------------------------------------------
    def call(self, method: str, request: HttpRequest) -> Any:
        """Execute one API request: a fresh token, then its quota, one 401 refresh, errors mapped."""
        for attempt in range(2):
            self.fresh()  # a refused sign-in reaches no API method: it must cost no quota
            self.ledger.spend(method, self.now())
            try:
                return request.execute(num_retries=0)
            except HttpError as e:
                if e.resp.status == 401 and attempt == 0:
                    self.refresh()
                    continue
                raise self.error(e, method) from None
            except TRANSPORT_ERRORS as e:
                raise self.transport(e, method) from None
        raise AssertionError("unreachable")

    def error(self, e: HttpError, method: str) -> ChannelError:
        status = int(e.resp.status)
        reason, message = _details(e)
        text = f"YouTube {method}: {message} ({reason or status})"
        if reason == "quotaExceeded":
            self.ledger.exhausted(self.now(), upload=method == UPLOAD)
            return self.ledger.limited("the quota YouTube allows this project today", self.now())
        if reason in ("rateLimitExceeded", "userRateLimitExceeded") or status >= 500:
            return Transient(text)
        if status == 429:
            return RateLimited(text, retry_at=self.now() + timedelta(hours=1))
        if status == 401 or reason == "insufficientPermissions":
            return AuthError(f"{text}. Run `publisher auth {self.channel}` to sign in again "
                             "(the sign-in needs the youtube.force-ssl scope).")
        if status == 404:
            return NotFound(text)
        return YouTubeRejected(text, reason)

    def transport(self, e: BaseException, what: str) -> ChannelError:
        return untrusted_certificate(e, f"YouTube {what}") or Transient(
            f"YouTube {what}: connection failed ({type(e).__name__}: {_first_line(e)})")

    def raw_put(self, uri: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """A bare PUT on an upload session (status query), with one 401 refresh."""
        for attempt in range(2):
            self.fresh()
            try:
                resp, content = self.authed.request(uri, "PUT", body=b"", headers=headers)
            except TRANSPORT_ERRORS as e:
                raise self.transport(e, "upload status query") from None
            if resp.status == 401 and attempt == 0:
                self.refresh()
                continue
            return int(resp.status), dict(resp), content
        raise AssertionError("unreachable")


# --- the resumable upload ---------------------------------------------------------------------
def upload_video(api: Api, journal: Journal, path: Path, *, metadata: dict[str, Any], parts: str,
                 chunk: int, match_title: str) -> str:
    """Upload ``path`` exactly once; return the video id. The session URI is journaled first."""
    size = path.stat().st_size
    state: dict[str, Any] | None = journal.get("upload")
    offset = 0
    if state and state.get("size") == size:
        found, offset = _query(api, state["uri"], size)
        if found is not None:
            return found
        if offset < 0:  # the session is gone: did it finish before it went?
            lost = find_lost_upload(api, journal, datetime.fromisoformat(state["opened_at"]),
                                    match_title, size)
            if lost:
                return lost
            offset = 0
            state = {"opened_at": state["opened_at"]}
    else:
        state = None
    media = MediaFileUpload(str(path), mimetype=MIME.get(path.suffix.lower(), "application/octet-stream"),
                            chunksize=chunk, resumable=True)
    request = api.service.videos().insert(part=parts, body=metadata, media_body=media,
                                          notifySubscribers=True)
    if not state or "uri" not in state:
        opened_at = (state or {}).get("opened_at") or api.now().isoformat()
        uri = _open_session(api, request, size)
        journal.put("upload", {"uri": uri, "opened_at": opened_at, "size": size})
        offset = 0
    else:
        uri = state["uri"]
    request.resumable_uri = uri
    request.resumable_progress = offset
    refreshed = False
    while True:
        api.fresh()
        try:
            _, response = request.next_chunk(num_retries=0)
        except HttpError as e:
            if e.resp.status == 401 and not refreshed:
                api.refresh()  # the request is in error state: next_chunk asks the session first
                refreshed = True
                continue
            if e.resp.status in (404, 410):
                raise Transient("YouTube upload session expired; publisher will look for the video "
                                "and otherwise start a new session") from None
            raise api.error(e, UPLOAD) from None
        except TRANSPORT_ERRORS as e:
            raise api.transport(e, "upload") from None
        refreshed = False
        if response is not None:
            return str(response["id"])


def _open_session(api: Api, request: HttpRequest, size: int) -> str:
    """POST the metadata to open a resumable session; returns its URI (no byte sent yet)."""
    media = request.resumable
    headers = dict(request.headers)
    headers.update({"X-Upload-Content-Type": media.mimetype(), "X-Upload-Content-Length": str(size),
                    "content-length": str(len(request.body or b""))})
    for attempt in range(2):
        api.fresh()  # a refused sign-in opens no session: it must not spend an upload
        api.ledger.spend(UPLOAD, api.now())
        try:
            resp, content = api.authed.request(request.uri, request.method, body=request.body,
                                               headers=headers)
        except TRANSPORT_ERRORS as e:
            raise api.transport(e, "upload session start") from None
        if resp.status == 401 and attempt == 0:
            api.refresh()
            continue
        if resp.status == 200 and "location" in resp:
            return str(resp["location"])
        raise api.error(HttpError(resp, content, uri=request.uri), UPLOAD)
    raise AssertionError("unreachable")


def _query(api: Api, uri: str, size: int) -> tuple[str | None, int]:
    """Ask a session how far it got: (video id, -) when done, (None, offset), or (None, -1) if gone."""
    status, headers, content = api.raw_put(uri, {"Content-Range": f"bytes */{size}",
                                                 "Content-Length": "0"})
    if status in (200, 201):
        return str(json.loads(content)["id"]), size
    if status == 308:
        rng = headers.get("range", "")
        return None, (int(rng.rsplit("-", 1)[1]) + 1) if rng else 0
    if status in (404, 410):
        return None, -1
    raise api.error(HttpError(httplib2.Response({"status": status}), content, uri=""), UPLOAD)


def find_lost_upload(api: Api, journal: Journal, since: datetime, title: str, size: int) -> str | None:
    """Look in the channel's uploads for this release's video created since the session opened."""
    uploads = journal.get("uploads_playlist")
    if not uploads:
        reply = api.call("channels.list", api.service.channels().list(part="contentDetails", mine=True))
        items = reply.get("items") or []
        if not items:
            return None
        uploads = items[0]["contentDetails"]["relatedPlaylists"]["uploads"]
        journal.put("uploads_playlist", uploads)
    earliest = since - timedelta(minutes=1)  # clock skew between us and YouTube
    candidates: list[str] = []
    token: str | None = None
    for _ in range(4):  # newest first; four pages reach far enough back
        reply = api.call("playlistItems.list", api.service.playlistItems().list(
            part="snippet,contentDetails", playlistId=uploads, maxResults=50, pageToken=token))
        older = False
        for item in reply.get("items", []):
            at = item["contentDetails"].get("videoPublishedAt") or item["snippet"]["publishedAt"]
            if _time(at) >= earliest:
                candidates.append(item["contentDetails"]["videoId"])
            else:
                older = True
        token = reply.get("nextPageToken")
        if older or not token:
            break
    if not candidates:
        return None
    reply = api.call("videos.list", api.service.videos().list(
        part="snippet,fileDetails", id=",".join(candidates[:50])))
    for v in reply.get("items", []):
        if (v["snippet"].get("title") == title
                and str(v.get("fileDetails", {}).get("fileSize")) == str(size)
                and _time(v["snippet"]["publishedAt"]) >= earliest):
            return str(v["id"])
    return None


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _details(e: HttpError) -> tuple[str, str]:
    try:
        err = json.loads(e.content.decode("utf-8", "replace"))["error"]
        errors = err.get("errors") or [{}]
        reason, message = str(errors[0].get("reason", "")), str(err.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        reason, message = "", e.content[:200].decode("utf-8", "replace") if e.content else ""
    return reason, re.sub(r"<[^>]+>", "", message).strip() or f"HTTP {e.resp.status}"


def _first_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:200]
