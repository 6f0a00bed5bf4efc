"""State and rules of the fake YouTube Data API v3 (see youtube_server.py for the HTTP side).

Everything here follows /work/shared/reference/youtube-data-api.md: quota buckets (shared units
plus the videos.insert upload bucket, reset per controllable "day"), Google-shaped error bodies,
the video metadata rules, captions/thumbnails/playlists and the uploads playlist.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CHUNK = 262144
COSTS = {
    "videos.list": 1, "videos.update": 50, "videos.delete": 50, "thumbnails.set": 50,
    "captions.insert": 400, "captions.list": 50, "captions.delete": 50,
    "playlistItems.insert": 50, "playlistItems.list": 1, "channels.list": 1,
}
CATEGORIES = {str(i) for i in (1, 2, 10, 15, 17, 19, 20, 22, 23, 24, 25, 26, 27, 28, 29)}


class ApiError(Exception):
    """An error answer: HTTP status + Google's JSON body."""

    def __init__(self, status: int, reason: str, message: str, domain: str = "youtube.api") -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain

    def body(self) -> bytes:
        err = {"message": self.message, "domain": self.domain, "reason": self.reason}
        return json.dumps({"error": {"code": self.status, "message": self.message,
                                     "errors": [err]}}).encode()


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ApiError(400, "invalidPublishAt", "The publishAt time must carry a time zone.")
    return value


def tags_length(tags: list[str]) -> int:
    """YouTube's count: commas between tags count, a tag with a space counts as quoted (+2)."""
    return sum(len(t) + (2 if " " in t else 0) for t in tags) + max(len(tags) - 1, 0)


@dataclass
class Session:
    id: str
    metadata: dict[str, Any]
    parts: list[str]
    total: int
    path: Path
    opened: datetime
    received: int = 0
    video_id: str = ""
    gone: int = 0  # 404 or 410 once expired


@dataclass
class Video:
    id: str
    snippet: dict[str, Any]
    status: dict[str, Any]
    localizations: dict[str, Any]
    size: int
    path: Path
    published: datetime
    deleted: bool = False
    captions: dict[str, dict[str, Any]] = field(default_factory=dict)  # caption id -> resource
    caption_bytes: dict[str, bytes] = field(default_factory=dict)
    thumbnail: bytes = b""


class Model:
    """The fake's whole state, guarded by one lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.RLock()
        self.client_id = "fake-client.apps.googleusercontent.com"
        self.client_secret = "fake-client-secret-" + secrets.token_hex(6)
        self.refresh_tokens = {"1//fake-refresh-" + secrets.token_hex(8)}
        self.auth_codes: set[str] = set()
        self.access_tokens: dict[str, float] = {}  # token -> expiry (time.time())
        self.token_lifetime = 3599
        self.day = 0
        self.units: dict[int, int] = {}
        self.uploads: dict[int, int] = {}
        self.unit_limit = 10000
        self.upload_limit = 100
        self.channel_upload_cap = 10**6  # uploads per channel before uploadLimitExceeded
        self.channel_uploads = 0
        self.clock_offset = 0.0  # seconds added to real time (for publishAt)
        self.thumbnail_max = 50 * 1024 * 1024
        self.custom_thumbnails = True
        self.instant_processing = True  # False: new videos stay "uploaded" until finish_processing()
        self.channel_id = "UCfake" + secrets.token_hex(8)
        self.uploads_playlist = "UU" + self.channel_id[2:]
        self.playlists: dict[str, list[dict[str, Any]]] = {"PLpublisher": []}
        self.sessions: dict[str, Session] = {}
        self.videos: dict[str, Video] = {}
        self.log: list[tuple[str, int]] = []  # (call name, HTTP status answered)

    # --- clock and quota ----------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    def next_day(self) -> None:
        with self.lock:
            self.day += 1

    def charge(self, name: str) -> None:
        with self.lock:
            if name == "videos.insert":
                used = self.uploads.get(self.day, 0)
                if used + 1 > self.upload_limit:
                    raise ApiError(403, "quotaExceeded", "The request cannot be completed because you "
                                   "have exceeded your <a href=\"/youtube/v3/getting-started#quota\">"
                                   "quota</a>.", "youtube.quota")
                self.uploads[self.day] = used + 1
                return
            cost = COSTS.get(name, 1)
            used = self.units.get(self.day, 0)
            if used + cost > self.unit_limit:
                raise ApiError(403, "quotaExceeded", "The request cannot be completed because you have "
                               "exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
                               "youtube.quota")
            self.units[self.day] = used + cost

    # --- OAuth --------------------------------------------------------------------------------
    def issue_token(self) -> dict[str, Any]:
        token = "ya29.fake-" + secrets.token_urlsafe(18)
        self.access_tokens[token] = time.time() + self.token_lifetime
        return {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/youtube.force-ssl"}

    def token_ok(self, token: str) -> bool:
        with self.lock:
            return self.access_tokens.get(token, 0) > time.time()

    def expire_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    # --- metadata rules -----------------------------------------------------------------------
    def check_metadata(self, body: dict[str, Any], parts: list[str], *, update: bool) -> None:
        snippet = body.get("snippet")
        if "snippet" in parts:
            if not isinstance(snippet, dict):
                raise ApiError(400, "invalidVideoMetadata", "The request metadata is invalid.")
            title = snippet.get("title", "")
            if not title or len(title) > 100 or "<" in title or ">" in title:
                raise ApiError(400, "invalidTitle", "The request metadata specifies an invalid or "
                               "empty video title.")
            desc = snippet.get("description", "")
            if len(desc.encode("utf-8")) > 5000 or "<" in desc or ">" in desc:
                raise ApiError(400, "invalidDescription", "The request metadata specifies an invalid "
                               "video description.")
            if tags_length(list(snippet.get("tags", []))) > 500:
                raise ApiError(400, "invalidTags", "The request metadata specifies invalid video "
                               "keywords.")
            cat = snippet.get("categoryId")
            if (update and not cat) or (cat is not None and str(cat) not in CATEGORIES):
                raise ApiError(400, "invalidCategoryId", "The snippet.categoryId property specifies "
                               "an invalid category ID.")
        if "localizations" in parts and body.get("localizations"):
            if not (snippet or {}).get("defaultLanguage"):
                raise ApiError(400, "defaultLanguageNotSet", "The request is trying to add localized "
                               "video details without specifying the default language.")
            for loc in body["localizations"].values():
                t = loc.get("title", "")
                if not t or len(t) > 100 or "<" in t or ">" in t:
                    raise ApiError(400, "invalidTitle", "A localized title is invalid.")
                if len(loc.get("description", "").encode()) > 5000:
                    raise ApiError(400, "invalidDescription", "A localized description is invalid.")
        status = body.get("status") or {}
        if "status" in parts:
            privacy = status.get("privacyStatus", "public")
            if privacy not in ("public", "unlisted", "private"):
                raise ApiError(400, "invalidVideoMetadata", "Unknown privacyStatus.")
            if status.get("publishAt") is not None:
                parse_time(status["publishAt"])
                if privacy != "private":
                    raise ApiError(400, "invalidPublishAt", "publishAt requires privacyStatus private.")

    def new_status(self, status: dict[str, Any]) -> dict[str, Any]:
        out = {"uploadStatus": "processed", "privacyStatus": status.get("privacyStatus", "public"),
               "license": "youtube", "embeddable": True, "publicStatsViewable": True,
               "madeForKids": bool(status.get("selfDeclaredMadeForKids", False)),
               "selfDeclaredMadeForKids": bool(status.get("selfDeclaredMadeForKids", False))}
        if status.get("publishAt"):
            out["publishAt"] = rfc3339(parse_time(status["publishAt"]))
        return out

    def flip_scheduled(self, v: Video) -> None:
        """YouTube makes a scheduled private video public at publishAt (a past one at once)."""
        at = v.status.get("publishAt")
        if at and v.status.get("privacyStatus") == "private" and parse_time(at) <= self.now():
            v.status["privacyStatus"] = "public"
            del v.status["publishAt"]

    # --- videos -------------------------------------------------------------------------------
    def complete(self, s: Session) -> Video:
        vid = secrets.token_urlsafe(8)[:11]
        snippet = dict(s.metadata.get("snippet") or {})
        snippet.setdefault("categoryId", "22")
        snippet.update(channelId=self.channel_id, publishedAt=rfc3339(self.now()))
        v = Video(id=vid, snippet=snippet, status=self.new_status(s.metadata.get("status") or {}),
                  localizations=dict(s.metadata.get("localizations") or {}), size=s.total,
                  path=s.path, published=self.now())
        if not self.instant_processing:
            v.status["uploadStatus"] = "uploaded"
        self.flip_scheduled(v)
        self.videos[vid] = v
        s.video_id = vid
        self.channel_uploads += 1
        return v

    def live(self, vid: str) -> Video:
        v = self.videos.get(vid)
        if v is None or v.deleted:
            raise ApiError(404, "videoNotFound", "The video that you are trying to use cannot be found.")
        return v

    def resource(self, v: Video, parts: list[str]) -> dict[str, Any]:
        self.flip_scheduled(v)
        out: dict[str, Any] = {"kind": "youtube#video", "etag": secrets.token_hex(4), "id": v.id}
        default = v.snippet.get("defaultLanguage", "")
        if "snippet" in parts:
            out["snippet"] = dict(v.snippet, localized={"title": v.snippet.get("title", ""),
                                                        "description": v.snippet.get("description", "")},
                                  defaultLanguage=default or None)
        if "status" in parts:
            out["status"] = dict(v.status)
        if "localizations" in parts:
            out["localizations"] = dict(v.localizations)
        if "fileDetails" in parts:
            out["fileDetails"] = {"fileSize": str(v.size), "fileType": "video", "container": "mov"}
        if "processingDetails" in parts:
            done = v.status["uploadStatus"] == "processed"
            out["processingDetails"] = {"processingStatus": "succeeded" if done else "processing"}
        return out

    def finish_processing(self) -> None:
        with self.lock:
            for v in self.videos.values():
                v.status["uploadStatus"] = "processed"

    def video_bytes(self, vid: str) -> bytes:
        v = self.videos[vid]
        return v.path.read_bytes()

    def uploads_items(self) -> list[dict[str, Any]]:
        """The uploads playlist, newest first, filled by 'YouTube' itself."""
        items = []
        vids = sorted((v for v in self.videos.values() if not v.deleted),
                      key=lambda v: v.published, reverse=True)
        for pos, v in enumerate(vids):
            items.append({"kind": "youtube#playlistItem", "id": "UUitem" + v.id,
                          "snippet": {"playlistId": self.uploads_playlist, "title": v.snippet.get("title"),
                                      "publishedAt": rfc3339(v.published), "position": pos,
                                      "resourceId": {"kind": "youtube#video", "videoId": v.id}},
                          "contentDetails": {"videoId": v.id, "videoPublishedAt": rfc3339(v.published)}})
        return items
