"""A console served by uvicorn on a free loopback port, over a test project, with users.

``drop`` (from test_scheduler) is the default channel: real files in a folder, no encodes.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from publisher.console.app import Console
from publisher.console.server import create_app
from publisher.roles import Role
from publisher.store import Store, sqlite_url
from publisher.store.accounts import Accounts
from tests.conftest import Project
from tests.test_scheduler import drop

PASSWORD = "correct horse battery staple"
ROLES = {"vera": Role.viewer, "pat": Role.publisher, "quinn": Role.approver, "ada": Role.admin,
         "paul": Role.approver}


class Client(httpx.Client):
    """An httpx client that may be used before its ``with`` block (after signing in)."""

    def __enter__(self) -> Client:
        return self


class Site:
    def __init__(self, proj: Project) -> None:
        self.proj = proj
        self.url = ""
        self.console: Console | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def rid(self) -> str:
        return str(self.proj.manifest["id"])

    def store(self) -> Store:
        return Store(sqlite_url(self.proj.state_dir))

    def accounts(self) -> Accounts:
        return Accounts(self.store())

    def start(self, host: str = "127.0.0.1", ssl: tuple[Path, Path] | None = None) -> str:
        self.proj.write()
        accounts = self.accounts()
        for name, role in ROLES.items():
            if accounts.user(name) is None:
                accounts.add_user(name, role, PASSWORD)
        self.console = create_app(self.proj.config_path, self.proj.state_dir)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        kwargs: dict[str, Any] = {}
        if ssl:
            kwargs = {"ssl_certfile": str(ssl[0]), "ssl_keyfile": str(ssl[1])}
        config = uvicorn.Config(self.console.app, host=host, port=port, log_config=None, access_log=False,
                                proxy_headers=False, lifespan="off", **kwargs)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert time.monotonic() < deadline, "the console did not start"
            time.sleep(0.02)
        self.url = f"{'https' if ssl else 'http'}://{host}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
        if self.console is not None:
            self.console.tasks.shutdown()

    def client(self, **kwargs: Any) -> Client:
        return Client(base_url=self.url, timeout=60, **kwargs)

    def login(self, name: str, password: str = PASSWORD, client: Client | None = None) -> Client:
        c = client or self.client()
        page = c.get("/login")
        r = c.post("/login", data={"token": field(page.text, "token"), "name": name, "password": password,
                                   "next": "/"})
        assert r.status_code in (200, 303), r.text
        return c

    def token(self, name: str) -> str:
        return self.accounts().new_token(name)

    def wait_task(self, client: httpx.Client, task: int, timeout: float = 120) -> dict[str, Any]:
        """Poll the task's API record until it has finished (a bounded loop)."""
        deadline = time.monotonic() + timeout
        while True:
            record: dict[str, Any] = client.get(f"/api/tasks/{task}").json()
            if record["state"] != "running":
                return record
            assert time.monotonic() < deadline, record
            time.sleep(0.1)

    def states(self) -> dict[str, str]:
        return {p.channel: p.state for p in self.store().publications(self.rid)}


def field(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no {name} field in the page"
    return m.group(1)


def console_project(proj: Project, *, approval: bool = False) -> Path:
    """The project's release folder is the console's releases_dir; a drop channel receives it."""
    target = drop(proj)
    proj.settings["console"] = {"releases_dir": "release", "trusted_proxies": []}
    proj.settings["timezone"] = "Asia/Hong_Kong"
    if approval:
        proj.settings["require_approval"] = True
    return target


@pytest.fixture
def site(project: Callable[[], Project]) -> Iterator[Callable[..., Site]]:
    made: list[Site] = []

    def make(approval: bool = False, setup: Callable[[Project], None] | None = None) -> Site:
        proj = project()
        console_project(proj, approval=approval)
        if setup:
            setup(proj)
        s = Site(proj)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
