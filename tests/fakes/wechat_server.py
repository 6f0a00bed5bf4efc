"""The fake WeChat Official Account API on a loopback HTTPS port (rules in ``wechat_model``).

Every answer is HTTP 200 with a JSON body (errors too, with a Content-Type that varies, as WeChat
does), unless a fault knob drops the connection or answers 5xx.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.tls import cert_pair, server_context
from tests.fakes.wechat_model import FakeWeChat

__all__ = ["FakeWeChat", "Running", "serve_wechat"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        status = fake.take(fake.http_error, url.path)
        if status:
            self.send_response(int(status))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = fake.handle(method, url.path, query, self.headers, body)
        if fake.take(fake.lose_answer, url.path):
            self.close_connection = True  # the work is done, the answer never arrives
            return
        data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain" if "errcode" in answer else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeWeChat


@dataclass
class Running:
    fake: FakeWeChat
    url: str  # api_root, e.g. https://127.0.0.1:PORT/
    ca_bundle: Path


@contextmanager
def serve_wechat(folder: Path, fake: FakeWeChat | None = None) -> Iterator[Running]:
    """Run the fake on an ephemeral 127.0.0.1 port over TLS until the block ends."""
    cert, key = cert_pair(folder, "wechat")
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake or FakeWeChat()
    server.socket = server_context(cert, key).wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Running(server.fake, f"https://127.0.0.1:{server.server_address[1]}/", cert)
    finally:
        server.shutdown()
        server.server_close()
