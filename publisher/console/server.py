"""The console assembled: its pages, its API, its own static files and a health check."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import api, pages
from .app import Console, SecurityHeaders
from .core import Core
from .tasks import Tasks


def create_app(config_path: Path, state_dir: Path, *, tasks: Tasks | None = None) -> Console:
    """The console; ``console.app`` is the ASGI app to serve."""
    console = Console(Core(config_path, state_dir), tasks)
    static = Path(str(files("assets") / "static" / "console"))
    routes = [*pages.routes(console), *api.routes(console),
              Mount("/static", StaticFiles(directory=static), name="static"),
              Route("/healthz", lambda _r: Response("ok", media_type="text/plain"))]
    console.app = SecurityHeaders(Starlette(routes=routes))
    return console
