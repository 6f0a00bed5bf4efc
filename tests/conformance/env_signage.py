"""The ``signage`` kind on a shared folder and on a real WebDAV server (wsgidav on 127.0.0.1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conformance.base import ConformanceEnv, disk_state

KIND = "signage"
SITES = ["immd-hq"]
PASSWORD_ENV = "PUBLISHER_CONFORMANCE_SIGNAGE_PASSWORD"


def _items(share: Path, release_id: str) -> dict[str, dict[str, Any]]:
    """'site/file' -> playlist item, for every site playlist that lists the release."""
    found = {}
    for site in SITES:
        path = share / site / "playlist.json"
        if path.exists():
            for item in json.loads(path.read_bytes())["items"]:
                if item["id"] == release_id:
                    found[f"{site}/{item['file']}"] = item
    return found


def _env(share: Path, config: dict[str, Any], env: dict[str, str] | None = None) -> ConformanceEnv:
    def objects(release_id: str) -> list[str]:
        listed = _items(share, release_id)
        stray = [f"{site}/{release_id}.mp4 (not in the playlist)" for site in SITES
                 if (share / site / f"{release_id}.mp4").exists()
                 and f"{site}/{release_id}.mp4" not in listed]
        return sorted([*listed, *stray])

    def title(release_id: str) -> str:
        items = list(_items(share, release_id).values())
        return str(items[0]["title"]) if items else ""

    return ConformanceEnv(channel_config={"kind": "signage", "sites": SITES, **config},
                          remote_objects=objects, is_public=lambda rid: bool(_items(share, rid)),
                          public_title=title, env=env or {}, activity=lambda: disk_state(share),
                          damage=lambda rid: (share / SITES[0] / f"{rid}.mp4").unlink())


@contextmanager
def folder(tmp_path: Path) -> Iterator[ConformanceEnv]:
    share = tmp_path / "share"
    share.mkdir(parents=True)
    yield _env(share, {"target": str(share)})


@contextmanager
def webdav(tmp_path: Path) -> Iterator[ConformanceEnv]:
    from tests.servers.webdav import webdav_server

    with webdav_server(tmp_path / "dav") as dav:
        yield _env(tmp_path / "dav" / "signage",
                   {"target": dav.target("signage"), "username": dav.user, "password_env": PASSWORD_ENV},
                   {PASSWORD_ENV: dav.password})


ENVIRONMENTS = {"folder": folder, "webdav": webdav}
