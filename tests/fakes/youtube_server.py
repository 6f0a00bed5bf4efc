"""A loopback HTTPS server speaking YouTube Data API v3's wire protocol (tests only).

Drive it with the real google-api-python-client: ``api_endpoint=fake.url`` and the fake's
self-signed certificate as CA. It serves the OAuth token endpoint, resumable upload sessions
(256 KiB alignment, 308 + Range, ``bytes */TOTAL`` status queries, 404/410 for dead sessions),
multipart captions, media thumbnails, videos/playlistItems/channels, Google-shaped errors and
quota. Fault knobs (``faults``) inject 5xx, connection resets, token expiry and session loss on
the Nth chunk PUT, and ``hook`` lets a test act (e.g. kill a client) at any request.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.fakes.tls import cert_pair, server_context
from tests.fakes.youtube_calls import ResourceCalls
from tests.fakes.youtube_model import CHUNK, ApiError, Model, Session

BEARER = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'


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


class Handler(ResourceCalls, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server
    _body: bytes | None = None

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
        self._body = None
        self.q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        self.route = (self.command, url.path)
        self.call = self.name()
        with self.server.model.lock:
            self.server.inflight += 1
        try:
            self.server.fire(self.call, "start")
            self.answer()
        finally:
            with self.server.model.lock:
                self.server.inflight -= 1

    def answer(self) -> None:
        try:
            self.handle_call()
        except ApiError as e:
            try:
                self.body()
            except Abort:
                self.reset_connection()
                return
            self.send(e.status, e.body(), {"WWW-Authenticate": BEARER} if e.status == 401 else None)
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
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):  # RFC 6749 2.3.1: client credentials may come this way
            cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
            form.update(client_id=urllib.parse.unquote(cid), client_secret=urllib.parse.unquote(secret))
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

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, model: Model, ctx: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.model = model
        self.ctx = ctx
        self.faults = Faults()
        self.chunk_puts = 0
        self.inflight = 0
        self.hook: Callable[[str, str], None] | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client killed mid-request (tests do that on purpose) is not news

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(1.0)
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
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

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

    def wait_idle(self, timeout: float = 10) -> None:
        """Wait until no request is being handled (e.g. one from a client that was killed)."""
        end = time.monotonic() + timeout
        while self.server.inflight and time.monotonic() < end:
            time.sleep(0.02)

    def live_videos(self) -> list[str]:
        with self.model.lock:
            return [v.id for v in self.model.videos.values() if not v.deleted]

    def calls(self, name: str) -> int:
        return sum(1 for c, _ in self.model.log if c == name)
