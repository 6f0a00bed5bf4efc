"""A loopback Firebase Cloud Messaging HTTP v1 server (HTTPS on 127.0.0.1) with its OAuth token endpoint.

It speaks the documented wire protocol and enforces its rules:
- ``POST /token``: the service-account JWT-bearer grant (RFC 7523). The assertion's RS256 signature
  is checked against the service account's public key, and ``iss``, ``aud`` (Google's token URL),
  ``scope`` (firebase.messaging) and ``exp`` are checked. Returns a Bearer access token.
- ``POST /v1/projects/{project}/messages:send``: needs that Bearer token (401 UNAUTHENTICATED
  otherwise), the right project (403 PERMISSION_DENIED), exactly one of token/topic/condition, a
  valid topic name, string-only ``data`` values and a payload of at most 4096 bytes
  (400 INVALID_ARGUMENT with Google's error body). ``quota`` > 0 answers 429 RESOURCE_EXHAUSTED with
  Retry-After once that many messages were accepted. Accepted messages are kept in ``messages``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.servers import write_tls_cert

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_AUD = "https://oauth2.googleapis.com/token"
TOPIC = re.compile(r"^[a-zA-Z0-9-_.~%]{1,900}$")


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass
class FCMServer:
    project: str
    public_key: Any
    client_email: str
    port: int = 0
    quota: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0

    @property
    def root(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    @property
    def token_uri(self) -> str:
        return f"{self.root}token"

    # --- endpoints ---------------------------------------------------------------------------
    def token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return 400, {"error": "unsupported_grant_type"}
        try:
            head, body, sig = form["assertion"][0].split(".")
            self.public_key.verify(_b64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
            claims = json.loads(_b64(body))
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        # Google wants its own token endpoint as audience, wherever the request was sent
        if claims.get("iss") != self.client_email or claims.get("aud") != GOOGLE_TOKEN_AUD:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: iss or aud"}
        if SCOPE not in str(claims.get("scope", "")).split() or claims.get("exp", 0) < time.time():
            return 400, {"error": "invalid_scope", "error_description": "scope or exp"}
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    @staticmethod
    def error(code: int, status: str, message: str, fcm: str | None = None) -> tuple[int, dict[str, Any]]:
        err: dict[str, Any] = {"code": code, "message": message, "status": status}
        if fcm:
            err["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                               "errorCode": fcm}]
        return code, {"error": err}

    def send(self, path: str, auth: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return self.error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if path != f"/v1/projects/{self.project}/messages:send":
            return self.error(403, "PERMISSION_DENIED", "Permission denied for this project.")
        if self.quota and len(self.messages) >= self.quota:
            return self.error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED")
        try:
            message = json.loads(raw)["message"]
        except (ValueError, KeyError, TypeError):
            return self.error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.", "INVALID_ARGUMENT")
        targets = [k for k in ("token", "topic", "condition") if k in message]
        problems = []
        if len(targets) != 1:
            problems.append("exactly one of token, topic or condition is required")
        if "topic" in message and not TOPIC.match(str(message["topic"])):
            problems.append("invalid topic name")
        if any(not isinstance(v, str) for v in message.get("data", {}).values()):
            problems.append("data values must be strings")
        if len(json.dumps({k: v for k, v in message.items() if k in ("notification", "data")})) > 4096:
            problems.append("message is too big (over 4096 bytes)")
        if problems:
            return self.error(400, "INVALID_ARGUMENT", "; ".join(problems), "INVALID_ARGUMENT")
        self.messages.append(message)
        return 200, {"name": f"projects/{self.project}/messages/{len(self.messages)}"}


def write_service_account(path: Path, project: str, token_uri: str) -> tuple[Any, str]:
    """A real service-account JSON (RSA key, mode 0600); returns (public key, client_email)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    email = f"publisher@{project}.iam.gserviceaccount.com"
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": secrets.token_hex(20),
        "private_key": pem, "client_email": email, "client_id": "1234567890",
        "token_uri": token_uri,
    }))
    path.chmod(0o600)
    return key.public_key(), email


@contextmanager
def fcm_server(folder: Path, project: str = "safeguard-hk") -> Iterator[tuple[FCMServer, Path, Path]]:
    """Yields (server, service-account file, CA bundle)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = write_tls_cert(folder)
    state = FCMServer(project=project, public_key=None, client_email="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/token":
                code, body = state.token(parse_qs(raw.decode()))
            else:
                code, body = state.send(self.path, self.headers.get("Authorization", ""), raw)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            if code == 429:
                self.send_header("Retry-After", "120")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    sa = folder / "service-account.json"
    state.public_key, state.client_email = write_service_account(sa, project, state.token_uri)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, sa, cert
    finally:
        httpd.shutdown()
        httpd.server_close()
