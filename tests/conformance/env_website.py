"""The ``website`` kind on a folder, a real WebDAV server (wsgidav) and a real SFTP server (paramiko)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conformance.base import ConformanceEnv, disk_state
from tests.servers import target_spec
from tests.unix import others_can_read

KIND = "website"
PUBLIC_URL = "https://www.example.gov.hk/videos/"


def _env(disk: Path, options: dict[str, Any], env: dict[str, str]) -> ConformanceEnv:
    def objects(release_id: str) -> list[str]:
        found = [f"{release_id}/"] if (disk / release_id).exists() else []
        staging = disk / ".publisher-staging"
        if staging.exists():  # a staged (embargoed) or abandoned copy counts too
            found += [f".publisher-staging/{n}" for n in sorted(p.name for p in staging.iterdir())]
        return found

    def is_public(release_id: str) -> bool:  # there, and readable by the web server's user
        page = disk / release_id / "index.html"
        return page.exists() and others_can_read(page, disk)

    def title(release_id: str) -> str:
        page = disk / release_id / "index.html"
        if not page.exists():
            return ""
        m = re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8"), re.S)
        return html.unescape(m.group(1)) if m else ""

    def caption(release_id: str, lang: str) -> str:
        path = disk / release_id / "captions" / f"{lang}.vtt"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    return ConformanceEnv(channel_config={"kind": KIND, **options, "public_url": PUBLIC_URL},
                          remote_objects=objects, is_public=is_public, public_title=title, env=env,
                          activity=lambda: disk_state(disk), public_caption=caption,
                          damage=lambda rid: (disk / rid / "captions" / "en.vtt").unlink())


def _factory(kind: str) -> Any:
    @contextmanager
    def environment(tmp_path: Path) -> Iterator[ConformanceEnv]:
        with target_spec(kind, tmp_path) as spec:
            yield _env(spec.disk, spec.options, spec.env)
    return environment


ENVIRONMENTS = {"folder": _factory("folder"), "webdav": _factory("webdav"), "sftp": _factory("sftp")}
