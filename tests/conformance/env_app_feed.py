"""The ``app-feed`` kind on a folder, a real WebDAV server (wsgidav) and a real SFTP server (paramiko)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conformance.base import ConformanceEnv, disk_state
from tests.servers import target_spec

KIND = "app-feed"
PUBLIC_URL = "https://app.example.gov.hk/safeguard/"


def _env(disk: Path, options: dict[str, Any], env: dict[str, str]) -> ConformanceEnv:
    def items(release_id: str) -> list[dict[str, Any]]:
        feed = disk / "feed.json"
        if not feed.exists():
            return []
        return [i for i in json.loads(feed.read_bytes())["items"] if i["id"] == release_id]

    def objects(release_id: str) -> list[str]:
        found = [f"feed.json#{i['id']}" for i in items(release_id)]
        if (disk / release_id).exists() and not found:
            found.append(f"{release_id}/ (media not in the feed)")
        staging = disk / ".publisher-staging"
        if staging.exists():
            found += [f".publisher-staging/{p.name}" for p in sorted(staging.iterdir())]
        return found

    def title(release_id: str) -> str:
        found = items(release_id)
        return str(found[0]["title"]) if found else ""

    def caption(release_id: str, lang: str) -> str:
        path = disk / release_id / "captions" / f"{lang}.vtt"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    return ConformanceEnv(channel_config={"kind": KIND, **options, "public_url": PUBLIC_URL},
                          remote_objects=objects, is_public=lambda rid: bool(items(rid)),
                          public_title=title, env=env, activity=lambda: disk_state(disk),
                          public_caption=caption,
                          damage=lambda rid: (disk / rid / "captions" / "en.vtt").unlink())


def _factory(kind: str) -> Any:
    @contextmanager
    def environment(tmp_path: Path) -> Iterator[ConformanceEnv]:
        with target_spec(kind, tmp_path) as spec:
            yield _env(spec.disk, spec.options, spec.env)
    return environment


ENVIRONMENTS = {"folder": _factory("folder"), "webdav": _factory("webdav"), "sftp": _factory("sftp")}
