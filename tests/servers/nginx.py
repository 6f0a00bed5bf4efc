"""Debian's nginx on 127.0.0.1, its workers running as ``nobody``, serving one folder with the
snippet publisher ships (``assets/deploy/nginx.conf``), included byte for byte.

The wrapper config keeps pid, logs and temp folders in a folder of the test's own; every parent of
the served root must be traversable by ``nobody`` (pytest's tmp_path base is 0700: use
``public_tmp``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

SNIPPET = Path(str(resources.files("assets") / "deploy" / "nginx.conf"))
NGINX = "/usr/sbin/nginx"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def public_tmp() -> Iterator[Path]:
    """A fresh folder under /tmp whose every parent other users can traverse (0755)."""
    folder = Path(tempfile.mkdtemp(prefix="publisher-www-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Nginx:
    root: Path
    port: int
    error_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def _config(root: Path, work: Path, port: int, snippet: bool) -> str:
    temps = "\n".join(f"    {kind}_temp_path {work / kind};"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    include = f"        include {SNIPPET};" if snippet else ""
    return f"""daemon off;
user nobody nogroup;
worker_processes 1;
pid {work / "nginx.pid"};
error_log {work / "error.log"} info;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {work / "access.log"};
{temps}
    server {{
        listen 127.0.0.1:{port};
        root {root};
{include}
    }}
}}
"""


@contextmanager
def nginx_server(root: Path, work: Path, *, snippet: bool = True) -> Iterator[Nginx]:
    """nginx serving ``root`` until the block ends; ``snippet=False`` leaves the shipped rules out."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed; scripts/install-system-packages --test installs it")
    if os.geteuid() != 0:
        pytest.fail("the nginx tests start nginx as root so its workers run as nobody")
    work.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        port = _free_port()
        conf = work / "nginx.conf"
        conf.write_text(_config(root, work, port, snippet))
        proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(work)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            break
        err = proc.stderr.read() if proc.stderr else ""
        if "Address already in use" not in err or attempt == 4:
            raise RuntimeError(f"nginx did not start: {err[-2000:]}")
    try:
        yield Nginx(root, port, work / "error.log")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()
