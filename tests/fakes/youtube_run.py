"""Drive the youtube adapter the way the core does (tests only): in-process, or as a child process
that a test can kill (``python -m tests.fakes.youtube_run FOLDER``).

A FOLDER holds ``setup.json`` (channel name, options, stage_only), the media, and the durable
``journal.json`` (written atomically on every ``put``, like the state store).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from channels.youtube.adapter import YouTube
from channels.youtube.quota import quota_key
from publisher.contract import Job, Journal, StepOptions
from publisher.errors import Transient
from publisher.models import FileInfo, Outcome, Release, Rendition
from publisher.store import Store, sqlite_url
from tests.media import ZH_HANT_VTT, make_poster

VTT = {
    "en": "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nTravel safely.\n\n"
          "00:00:02.200 --> 00:00:03.500\nCall 1868 for help.\n",
    "zh-Hant": ZH_HANT_VTT,
    "zh-Hans": "WEBVTT\n\n00:00:00.500 --> 00:00:02.000\n出行注意安全。\n",
}


def sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def info(path: Path) -> FileInfo:
    return FileInfo(name=path.name, bytes=path.stat().st_size, sha256=sha(path))


def prepare(folder: Path, master: Path) -> None:
    """Media for one release: the master (uploaded as is), three VTT files and a JPEG poster."""
    (folder / "yt").mkdir(parents=True, exist_ok=True)
    (folder / "subs").mkdir(exist_ok=True)
    (folder / "poster").mkdir(exist_ok=True)
    shutil.copyfile(master, folder / "yt" / "master.mp4")
    for lang, text in VTT.items():
        (folder / "subs" / f"{lang}.vtt").write_text(text, encoding="utf-8")
    poster = master.parent / "poster-1280x720.jpg"  # made once next to the shared master
    if not poster.exists():
        make_poster(poster.with_suffix(".tmp.jpg"))
        poster.with_suffix(".tmp.jpg").replace(poster)
    shutil.copyfile(poster, folder / "poster" / "poster.jpg")
    (folder / "release.yaml").write_text("id: consular-protection-2026\n", encoding="utf-8")


def release(folder: Path, **changes: Any) -> Release:
    data: dict[str, Any] = {
        "id": "consular-protection-2026", "manifest_path": folder / "release.yaml",
        "master": folder / "yt" / "master.mp4", "languages": ["en", "zh-Hant", "zh-Hans"],
        "title": {"en": "Consular Protection", "zh-Hant": "領事保護", "zh-Hans": "领事保护"},
        "description": {"en": "An animated video on consular protection.", "zh-Hant": "領事保護動畫短片。",
                        "zh-Hans": "领事保护动画短片。"},
        "captions": {lang: folder / "subs" / f"{lang}.vtt" for lang in VTT},
        "thumbnail": folder / "poster" / "poster.jpg",
        "tags": ["consular protection", "travel safety"],
    }
    data.update(changes)
    return Release(**data)


def renditions(folder: Path) -> dict[str, Rendition]:
    master = folder / "yt" / "master.mp4"
    subs = sorted((folder / "subs").glob("*.vtt"))
    poster = folder / "poster" / "poster.jpg"
    return {
        "youtube": Rendition(key="yt", profile="youtube", folder=master.parent, main=master.name,
                             files=[info(master)], passthrough=True),
        "captions": Rendition(key="cc", profile="captions", folder=folder / "subs",
                              files=[info(p) for p in subs]),
        "poster": Rendition(key="po", profile="poster", folder=poster.parent, files=[info(poster)]),
    }


@functools.cache
def store(folder: Path) -> Store:
    """The state store of FOLDER's runs (``state/state.db``): it holds the quota pools."""
    return Store(sqlite_url(folder / "state"))


def quota(folder: Path, pool: str) -> dict[str, Any]:
    """A quota pool's record as the store keeps it ({} when nothing was spent from it)."""
    return store(folder).accounts.update(quota_key(pool), dict)


def channel(folder: Path, options: dict[str, Any], name: str = "immd-youtube") -> YouTube:
    opts = YouTube.Options.model_validate(dict(options, kind="youtube"))
    state = folder / "state" / name
    state.mkdir(parents=True, exist_ok=True)
    return YouTube(name, opts, config_dir=folder, state_dir=state, accounts=store(folder).accounts)


def file_journal(path: Path) -> Journal:
    def save(data: dict[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    return Journal(data, save)


def publish_until_done(ch: YouTube, job: Job, attempts: int = 12) -> tuple[Outcome, int]:
    """The core's retry loop in miniature: retry Transient, resuming from the journal."""
    for n in range(1, attempts + 1):
        try:
            return ch.publish(job), n
        except Transient:
            if n == attempts:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def main(folder: Path) -> int:
    setup = json.loads((folder / "setup.json").read_text(encoding="utf-8"))
    ch = channel(folder, setup["options"], setup.get("name", "immd-youtube"))
    rel = release(folder, publish_at=(datetime.now(UTC) + timedelta(days=2)) if setup.get("stage_only")
                  else None)
    job = Job(release=rel, journal=file_journal(folder / "journal.json"), renditions=renditions(folder),
              options=StepOptions(stage_only=bool(setup.get("stage_only"))))
    outcome, _ = publish_until_done(ch, job)
    (folder / "outcome.json").write_text(outcome.model_dump_json(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
