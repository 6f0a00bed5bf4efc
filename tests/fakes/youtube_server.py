"""A loopback HTTPS server speaking YouTube Data API v3's wire protocol (tests only).

Drive it with the real google-api-python-client: ``api_endpoint=fake.url`` and the fake's
self-signed certificate as CA. It serves the OAuth token endpoint, resumable upload sessions
(256 KiB alignment, 308 + Range, ``bytes */TOTAL`` status queries, 404/410 for dead sessions),
multipart captions, media thumbnails, videos/playlistItems/channels, Google-shaped errors and
quota. Fault knobs (``faults``) inject 5xx, connection resets, token expiry and session loss on
the Nth chunk PUT, and ``hook`` lets a test act (e.g. kill a client) at any request.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import secrets
import socket
import ssl
import struct
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakes.tls import cert_pair, server_context
from tests.fakes.youtube_model import CHUNK, ApiError, Model, Session, rfc3339


@dataclass
class Faults:
    """What to break, keyed by the 1-based number of the chunk PUT (status queries not counted)."""

    status: dict[int, int] = field(default_factory=dict)  # answer this HTTP status, store nothing
    reset: set[int] = field(default_factory=set)  # read half the body, keep 256 KiB-aligned part, RST
    drop_response: set[int] = field(default_factory=set)  # store it all, then RST without answering
    expire_token: set[int] = field(default_factory=set)  # the access token dies just before this chunk
    session_gone: dict[int, int] = field(default_factory=dict)  # session expires: 404 or 410
    api: dict[str, list[int]] = field(default_factory=dict)  # call name -> statuses to answer next


class Abort(Exception):
    """Close the connection with a TCP reset, answering nothing."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    # --- plumbing ------------------------------------------------------------------------------
    def body(self, limit: int | None = None) -> bytes:
        if self._body is not None:
            return self._body
        n = int(self.headers.get("Content-Length") or 0)
        want = n if limit is None else min(n, limit)
        data = b""
        try:
            while len(data) < want:
                part = self.rfile.read(want - len(data))
                if not part:
                    break
                data += part
        except (TimeoutError, OSError):
            pass
        if len(data) < want:
            self._body = b""
            raise Abort()  # the client sent fewer bytes than it announced: drop the connection
        self._body = data if limit is None else b""
        return data

    def send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
        raw = b"" if payload is None else (payload if isinstance(payload, bytes)
                                           else json.dumps(payload).encode())
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if raw:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        self.server.model.log.append((self.call, status))

    def reset_connection(self) -> None:
        self.server.model.log.append((self.call, 0))
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        self._body: bytes | None = None
        self.q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        self.route = (self.command, url.path)
        self.call = self.name()
        self.server.fire(self.call, "start")
        try:
            self.handle_call()
        except ApiError as e:
            try:
                self.body()
            except Abort:
                self.reset_connection()
                return
            self.send(e.status, e.body(), {"WWW-Authenticate": "Bearer"} if e.status == 401 else None)
        except Abort:
            self.reset_connection()
            return
        self.server.fire(self.call, "done")

    def name(self) -> str:
        method, path = self.route
        names = {
            ("POST", "/token"): "token",
            ("POST", "/upload/youtube/v3/videos"): "videos.insert",
            ("PUT", "/upload/youtube/v3/videos"): "chunk",
            ("GET", "/youtube/v3/videos"): "videos.list",
            ("PUT", "/youtube/v3/videos"): "videos.update",
            ("DELETE", "/youtube/v3/videos"): "videos.delete",
            ("POST", "/upload/youtube/v3/captions"): "captions.insert",
            ("GET", "/youtube/v3/captions"): "captions.list",
            ("DELETE", "/youtube/v3/captions"): "captions.delete",
            ("POST", "/upload/youtube/v3/thumbnails/set"): "thumbnails.set",
            ("POST", "/youtube/v3/playlistItems"): "playlistItems.insert",
            ("GET", "/youtube/v3/playlistItems"): "playlistItems.list",
            ("GET", "/youtube/v3/channels"): "channels.list",
        }
        return names.get((method, path), "unknown")

    def handle_call(self) -> None:
        m = self.server.model
        if self.call == "unknown":
            raise ApiError(404, "notFound", f"No such method: {self.command} {self.route[1]}")
        if self.call == "token":
            return self.token()
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not m.token_ok(auth[7:]):
            raise ApiError(401, "authError", "Invalid Credentials", "global")
        if self.call == "chunk":
            return self.chunk()
        queued = self.server.faults.api.get(self.call)
        if queued:
            status = queued.pop(0)
            raise ApiError(status, "backendError" if status >= 500 else "forbidden",
                           f"Injected failure {status}")
        m.charge(self.call)
        with m.lock:
            getattr(self, "do_" + self.call.replace(".", "_"))()

    # --- OAuth ---------------------------------------------------------------------------------
    def token(self) -> None:
        m = self.server.model
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(self.body().decode()).items()}
        with m.lock:
            if form.get("client_id") != m.client_id or form.get("client_secret") != m.client_secret:
                return self.send(401, {"error": "invalid_client", "error_description": "Unauthorized"})
            grant = form.get("grant_type")
            if grant == "refresh_token" and form.get("refresh_token") in m.refresh_tokens:
                return self.send(200, m.issue_token())
            if grant == "authorization_code" and form.get("code") in m.auth_codes:
                m.auth_codes.discard(form["code"])
                refresh = "1//fake-refresh-" + secrets.token_hex(8)
                m.refresh_tokens.add(refresh)
                return self.send(200, dict(m.issue_token(), refresh_token=refresh))
        self.send(400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."})

    # --- resumable videos.insert -------------------------------------------------------------------
    def do_videos_insert(self) -> None:
        m = self.server.model
        if self.q.get("uploadType") != "resumable":
            raise ApiError(400, "badRequest", "This fake accepts only uploadType=resumable for videos.")
        parts = self.q.get("part", "").split(",")
        meta = json.loads(self.body() or b"{}")
        m.check_metadata(meta, parts, update=False)
        total = int(self.headers.get("X-Upload-Content-Length") or -1)
        ctype = self.headers.get("X-Upload-Content-Type", "")
        if total <= 0:
            raise ApiError(400, "mediaBodyRequired", "X-Upload-Content-Length is required.")
        if not (ctype.startswith("video/") or ctype == "application/octet-stream"):
            raise ApiError(400, "invalidVideoMetadata", f"Unsupported media type {ctype}")
        if m.channel_uploads >= m.channel_upload_cap:
            raise ApiError(400, "uploadLimitExceeded", "The user has exceeded the number of videos "
                           "they may upload.", "youtube.video")
        sid = "ADPyc" + secrets.token_urlsafe(16)
        m.sessions[sid] = Session(sid, meta, parts, total, m.folder / f"upload-{sid}", m.now())
        m.sessions[sid].path.write_bytes(b"")
        host = self.headers.get("Host", "")
        location = (f"https://{host}/upload/youtube/v3/videos?uploadType=resumable"
                    f"&part={urllib.parse.quote(self.q.get('part', ''))}&upload_id={sid}")
        self.send(200, None, {"Location": location, "X-GUploader-UploadID": sid})

    def chunk(self) -> None:
        m, f = self.server.model, self.server.faults
        s = m.sessions.get(self.q.get("upload_id", ""))
        if s is None:
            raise ApiError(404, "notFound", "Upload session not found.")
        rng = self.headers.get("Content-Range", "")
        if not rng.startswith("bytes "):
            raise ApiError(400, "badRequest", "Content-Range is required.")
        spec, _, total = rng[6:].partition("/")
        if spec == "*":  # status query
            self.body()
            if s.gone:
                raise ApiError(s.gone, "notFound", "Upload session expired.")
            if s.video_id:
                v = m.videos[s.video_id]
                return self.send(200, m.resource(v, s.parts))
            return self.send(308, None, {"Range": f"bytes=0-{s.received - 1}"} if s.received else None)
        with m.lock:
            self.server.chunk_puts += 1
            n = self.server.chunk_puts
        if n in f.expire_token:
            m.expire_tokens()
            self.body()
            raise ApiError(401, "authError", "Invalid Credentials", "global")
        if n in f.status:
            self.body()
            raise ApiError(f.status[n], "backendError", "Backend Error")
        if n in f.session_gone:
            self.body()
            s.gone = f.session_gone[n]
        if s.gone:
            raise ApiError(s.gone, "notFound", "Upload session expired.")
        first, _, last = spec.partition("-")
        a, b = int(first), int(last)
        if total != str(s.total) or b < a or b >= s.total:
            self.body()
            raise ApiError(400, "badContent", f"Invalid Content-Range {rng}")
        length = int(self.headers.get("Content-Length") or 0)
        if length != b - a + 1:
            self.body()
            raise ApiError(400, "badContent", "Content-Length does not match Content-Range.")
        if n in f.reset:
            data = self.body(limit=length // 2)
            self.store(s, a, data[: len(data) // CHUNK * CHUNK])
            raise Abort()
        data = self.body()
        if a != s.received:
            raise ApiError(400, "badContent", f"Content-Range starts at {a}, but {s.received} bytes "
                           "are persisted; ask with 'bytes */TOTAL' and resume from the Range.")
        if b + 1 < s.total and length % CHUNK:
            raise ApiError(400, "badContent", "Invalid request. The number of bytes uploaded is required "
                           "to be equal or greater than 262144, except for the final request (it's "
                           "recommended to be the exact multiple of 262144).")
        with m.lock:
            self.store(s, a, data)
            if s.received == s.total:
                v = m.complete(s)
                if n in f.drop_response:
                    raise Abort()
                return self.send(201, m.resource(v, s.parts))
        if n in f.drop_response:
            raise Abort()
        self.send(308, None, {"Range": f"bytes=0-{s.received - 1}"})

    def store(self, s: Session, a: int, data: bytes) -> None:
        if a != s.received or not data:
            return
        with s.path.open("ab") as out:
            out.write(data)
        s.received += len(data)

    # --- videos ------------------------------------------------------------------------------
    def do_videos_list(self) -> None:
        m = self.server.model
        parts = self.q.get("part", "").split(",")
        items = [m.resource(m.videos[i], parts) for i in self.q.get("id", "").split(",")
                 if i in m.videos and not m.videos[i].deleted]
        self.send(200, {"kind": "youtube#videoListResponse", "items": items,
                        "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)}})

    def do_videos_update(self) -> None:
        m = self.server.model
        parts = self.q.get("part", "").split(",")
        body = json.loads(self.body() or b"{}")
        v = m.live(body.get("id", ""))
        m.check_metadata(body, parts, update=True)
        if "snippet" in parts:
            v.snippet = dict(body["snippet"], channelId=m.channel_id, publishedAt=rfc3339(v.published))
        if "localizations" in parts:
            v.localizations = dict(body.get("localizations") or {})
        if "status" in parts:
            v.status = dict(m.new_status(body.get("status") or {}), uploadStatus=v.status["uploadStatus"])
            m.flip_scheduled(v)
        self.send(200, m.resource(v, parts))

    def do_videos_delete(self) -> None:
        self.body()
        self.server.model.live(self.q.get("id", "")).deleted = True
        self.send(204)

    # --- captions, thumbnails ------------------------------------------------------------------
    def do_captions_insert(self) -> None:
        m = self.server.model
        if self.q.get("uploadType") != "multipart":
            raise ApiError(400, "badRequest", "Use uploadType=multipart for captions here.")
        raw = self.body()
        head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        parts = list(msg.iter_parts()) if msg.is_multipart() else []
        if len(parts) != 2:
            raise ApiError(400, "contentRequired", "The request does not contain the caption track contents.")
        meta = json.loads(parts[0].get_payload(decode=True) or b"{}")
        content = parts[1].get_payload(decode=True) or b""
        sn = meta.get("snippet") or {}
        if not content:
            raise ApiError(400, "contentRequired", "The request does not contain the caption track contents.")
        if not sn.get("language") or not sn.get("videoId") or "name" not in sn:
            raise ApiError(400, "invalidMetadata", "The request contains invalid metadata values.")
        if len(sn["name"]) > 150:
            raise ApiError(400, "nameTooLong", "The caption track name is too long.")
        v = m.live(sn["videoId"])
        for c in v.captions.values():
            if c["snippet"]["language"] == sn["language"] and c["snippet"]["name"] == sn["name"]:
                raise ApiError(409, "captionExists", "The specified video already has a caption track "
                               "with the given snippet.language and snippet.name.")
        cid = "AUieDa" + secrets.token_urlsafe(12)
        res = {"kind": "youtube#caption", "id": cid, "snippet": {
            "videoId": v.id, "language": sn["language"], "name": sn["name"],
            "isDraft": bool(sn.get("isDraft", False)), "trackKind": "standard", "status": "serving",
            "lastUpdated": rfc3339(m.now())}}
        v.captions[cid] = res
        v.caption_bytes[cid] = content
        self.send(200, res)

    def do_captions_list(self) -> None:
        v = self.server.model.live(self.q.get("videoId", ""))
        self.send(200, {"kind": "youtube#captionListResponse", "items": list(v.captions.values())})

    def do_captions_delete(self) -> None:
        self.body()
        cid = self.q.get("id", "")
        for v in self.server.model.videos.values():
            if cid in v.captions:
                del v.captions[cid]
                del v.caption_bytes[cid]
                return self.send(204)
        raise ApiError(404, "captionNotFound", "The caption track could not be found.")

    def do_thumbnails_set(self) -> None:
        m = self.server.model
        data = self.body()
        v = m.live(self.q.get("videoId", ""))
        if not m.custom_thumbnails:
            raise ApiError(403, "forbidden", "The authenticated user doesn't have permissions to upload "
                           "and set custom video thumbnails.")
        if not data:
            raise ApiError(400, "mediaBodyRequired", "The request does not include the image content.")
        if len(data) > m.thumbnail_max:
            raise ApiError(400, "invalidImage", "The provided image content is too large.")
        if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
            raise ApiError(400, "invalidImage", "The provided image content is invalid.")
        v.thumbnail = data
        url = f"https://i.ytimg.com/vi/{v.id}/maxresdefault.jpg"
        self.send(200, {"kind": "youtube#thumbnailSetResponse",
                        "items": [{"default": {"url": url, "width": 120, "height": 90}}]})

    # --- playlists and channel -----------------------------------------------------------------
    def do_playlistItems_insert(self) -> None:
        m = self.server.model
        sn = (json.loads(self.body() or b"{}").get("snippet") or {})
        pl = m.playlists.get(sn.get("playlistId", ""))
        if pl is None:
            raise ApiError(404, "playlistNotFound", "The playlist identified with the request's "
                           "playlistId parameter cannot be found.")
        v = m.live((sn.get("resourceId") or {}).get("videoId", ""))
        item = {"kind": "youtube#playlistItem", "id": "PLI" + secrets.token_urlsafe(10),
                "snippet": {"playlistId": sn["playlistId"], "position": len(pl),
                            "title": v.snippet.get("title"), "publishedAt": rfc3339(m.now()),
                            "resourceId": {"kind": "youtube#video", "videoId": v.id}},
                "contentDetails": {"videoId": v.id, "videoPublishedAt": rfc3339(v.published)}}
        pl.append(item)
        self.send(200, item)

    def do_playlistItems_list(self) -> None:
        m = self.server.model
        pid = self.q.get("playlistId", "")
        if pid == m.uploads_playlist:
            items = m.uploads_items()
        elif pid in m.playlists:
            items = [i for i in m.playlists[pid]
                     if not m.videos[i["contentDetails"]["videoId"]].deleted]
        else:
            raise ApiError(404, "playlistNotFound", "The playlist cannot be found.")
        if self.q.get("videoId"):
            items = [i for i in items if i["contentDetails"]["videoId"] == self.q["videoId"]]
        size = min(int(self.q.get("maxResults", "5")), 50)
        start = int(self.q.get("pageToken") or 0)
        page: dict[str, Any] = {"kind": "youtube#playlistItemListResponse",
                                "items": items[start:start + size],
                                "pageInfo": {"totalResults": len(items), "resultsPerPage": size}}
        if start + size < len(items):
            page["nextPageToken"] = str(start + size)
        self.send(200, page)

    def do_channels_list(self) -> None:
        m = self.server.model
        self.send(200, {"kind": "youtube#channelListResponse", "items": [{
            "kind": "youtube#channel", "id": m.channel_id,
            "contentDetails": {"relatedPlaylists": {"uploads": m.uploads_playlist, "likes": ""}}}]})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, model: Model, ctx: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.model = model
        self.ctx = ctx
        self.faults = Faults()
        self.chunk_puts = 0
        self.hook: Callable[[str, str], None] | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(2.0)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(tls, client_address)

    def fire(self, call: str, phase: str) -> None:
        if self.hook is not None:
            self.hook(call, phase)


class YouTubeFake:
    """Start/stop the server and reach into its state from tests."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.certfile, keyfile = cert_pair(folder)
        self.model = Model(folder)
        self.server = Server(self.model, server_context(self.certfile, keyfile))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> YouTubeFake:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/"

    @property
    def faults(self) -> Faults:
        return self.server.faults

    def credentials(self) -> dict[str, str]:
        """An authorized-user file's content for this fake's OAuth client."""
        m = self.model
        return {"type": "authorized_user", "client_id": m.client_id, "client_secret": m.client_secret,
                "refresh_token": next(iter(m.refresh_tokens)), "token_uri": self.url + "token"}

    def write_credentials(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.credentials()), encoding="utf-8")
        path.chmod(0o600)
        return path

    def live_videos(self) -> list[str]:
        with self.model.lock:
            return [v.id for v in self.model.videos.values() if not v.deleted]

    def calls(self, name: str) -> int:
        return sum(1 for c, _ in self.model.log if c == name)
