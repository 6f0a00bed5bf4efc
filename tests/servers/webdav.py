"""A real WebDAV server (wsgidav on cheroot) on 127.0.0.1 with basic auth, in its own process.

``webdav_server(root)`` yields a ``WebDAVServer``; ``kill()`` drops it like a lost connection and
``restart()`` brings it back on the same port. ``die_after_bytes`` makes the server process exit
abruptly once that many request-body bytes have arrived (a connection dropped mid-upload);
``quota_bytes`` answers 507 Insufficient Storage once the served folder would exceed it.

Run as a script: ``webdav.py ROOT PORT`` with WEBDAV_USER/WEBDAV_PASSWORD (and optional
WEBDAV_CERT/WEBDAV_KEY, WEBDAV_DIE_AFTER, WEBDAV_QUOTA) in the environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

USER = "publisher"
PASSWORD = "dav-Secret-4711"


def _folder_size(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def serve(root: str, port: int) -> None:
    from cheroot import wsgi
    from cheroot.ssl.builtin import BuiltinSSLAdapter
    from wsgidav.wsgidav_app import WsgiDAVApp

    config = {
        "host": "127.0.0.1", "port": port, "provider_mapping": {"/": root}, "verbose": 0,
        "logging": {"enable": False},
        "http_authenticator": {"domain_controller": None, "accept_basic": True,
                               "accept_digest": False, "default_to_digest": False},
        "simple_dc": {"user_mapping": {"*": {os.environ["WEBDAV_USER"]:
                                             {"password": os.environ["WEBDAV_PASSWORD"]}}}},
        "dir_browser": {"enable": False},
        "lock_storage": True,
    }
    dav = WsgiDAVApp(config)
    die_after = int(os.environ.get("WEBDAV_DIE_AFTER", "0"))
    quota = int(os.environ.get("WEBDAV_QUOTA", "0"))
    received = [0]

    class Dying:
        def __init__(self, stream: Any) -> None:
            self.stream = stream

        def read(self, *args: Any) -> bytes:
            data: bytes = self.stream.read(*args)
            received[0] += len(data)
            if received[0] >= die_after:
                os._exit(3)  # the process vanishes mid-request, like a pulled cable
            return data

        def __getattr__(self, name: str) -> Any:
            return getattr(self.stream, name)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "PUT":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if quota and _folder_size(root) + length > quota:
                start_response("507 Insufficient Storage", [("Content-Type", "text/plain")])
                return [b"quota exceeded"]
            if die_after:
                environ["wsgi.input"] = Dying(environ["wsgi.input"])
        return dav(environ, start_response)

    server = wsgi.Server(("127.0.0.1", port), app, numthreads=4)
    if os.environ.get("WEBDAV_CERT"):
        server.ssl_adapter = BuiltinSSLAdapter(os.environ["WEBDAV_CERT"], os.environ["WEBDAV_KEY"])
    server.prepare()
    print(f"PORT {server.bind_addr[1]}", flush=True)
    server.serve()


@dataclass
class WebDAVServer:
    root: Path
    tls: tuple[Path, Path] | None = None
    user: str = USER
    password: str = PASSWORD
    port: int = 0
    proc: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{'webdavs' if self.tls else 'webdav'}://127.0.0.1:{self.port}"

    def target(self, path: str = "site") -> str:
        return f"{self.url}/{path}"

    @property
    def ca_bundle(self) -> Path | None:
        return self.tls[0] if self.tls else None

    def start(self, *, die_after_bytes: int = 0, quota_bytes: int = 0) -> None:
        from tests.servers import start_process
        env = dict(os.environ, WEBDAV_USER=self.user, WEBDAV_PASSWORD=self.password,
                   WEBDAV_DIE_AFTER=str(die_after_bytes), WEBDAV_QUOTA=str(quota_bytes))
        if self.tls:
            env.update(WEBDAV_CERT=str(self.tls[0]), WEBDAV_KEY=str(self.tls[1]))
        self.proc, self.port = start_process([__file__, str(self.root), str(self.port)], env)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self.wait_dead()

    def wait_dead(self, timeout: float = 20) -> int:
        from tests.servers import stop_process
        rc = int(self.proc.wait(timeout))
        stop_process(self.proc)
        return rc

    def restart(self, **kw: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        self.start(**kw)

    def stop(self) -> None:
        from tests.servers import stop_process
        if self.proc is not None:
            stop_process(self.proc)


@contextmanager
def webdav_server(root: Path, *, tls_dir: Path | None = None, die_after_bytes: int = 0,
                  quota_bytes: int = 0) -> Iterator[WebDAVServer]:
    """A wsgidav server on 127.0.0.1 serving ``root`` (webdavs:// with a fresh CA when ``tls_dir``)."""
    from tests.servers import write_tls_cert
    root.mkdir(parents=True, exist_ok=True)
    tls = write_tls_cert(tls_dir) if tls_dir is not None else None
    server = WebDAVServer(root=root, tls=tls)
    server.start(die_after_bytes=die_after_bytes, quota_bytes=quota_bytes)
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
