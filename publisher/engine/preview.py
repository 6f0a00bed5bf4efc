"""``preview``: every channel's output for a release, rendered before anything is sent.

The manifest is checked as ``check`` does, on snapshots of its files as ``release`` checks them, and
the renditions are encoded from those snapshots into the rendition cache (so a release after a
preview encodes nothing again, and never bytes that were not checked), then each adapter renders
what it would publish into ``<state>/previews/<release-id>/<channel>/`` (folders 0700, files 0600:
a preview is not public). Nothing is sent, no target is opened and nothing is recorded in the
store. ``preview.json`` beside the channel folders indexes what each channel shows, per language.
A new preview replaces the last one of the release whole.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from publisher.contract import Channel, Job, Journal, PreviewFolder, Shown, redact
from publisher.engine.engine import LINK_RANK, Engine
from publisher.engine.faults import pause_point
from publisher.engine.locks import Busy
from publisher.errors import PublisherError, ReleaseBusy
from publisher.inputs.captions import load_captions
from publisher.inputs.checks import Prepared, prepare
from publisher.inputs.media import ffprobe_json
from publisher.inputs.snapshots import Snapshots
from publisher.models import MasterInfo, Release, Rendition
from publisher.transcode.images import frame

log = logging.getLogger("publisher")
INDEX = "preview.json"
FOLDER = "previews"
KEEP = timedelta(days=14)  # a preview holds a copy of every channel's video


@dataclass
class ChannelPreview:
    name: str
    kind: str
    url: str = ""
    shown: list[Shown] = field(default_factory=list)
    error: str = ""  # why this channel has no preview
    failed: bool = False  # its rendering failed (not: its kind has none)


@dataclass
class PreviewResult:
    release: str
    title: str
    folder: Path
    made: datetime
    channels: list[ChannelPreview]
    warnings: list[str] = field(default_factory=list)


def previews_dir(state_dir: Path) -> Path:
    return state_dir / FOLDER


def expire_previews(state_dir: Path, now: datetime, keep: timedelta = KEEP) -> list[str]:
    """Remove the previews nobody has made again for ``keep``; the release ids removed."""
    root = previews_dir(state_dir)
    old = [f for f in sorted(root.iterdir()) if f.is_dir() and not f.is_symlink()
           and now.timestamp() - f.stat().st_mtime > keep.total_seconds()] if root.is_dir() else []
    for folder in old:
        shutil.rmtree(folder, ignore_errors=True)
    return [f.name for f in old]


def preview(engine: Engine, manifest: Path, only: list[str] | None = None) -> PreviewResult:
    """Check, encode, and render every channel's output privately; send and record nothing."""
    snapshots = engine.snapshots()
    prep = prepare(engine.config, manifest, engine.state_dir, only, None, snapshots, engine.store.accounts)
    pause_point("checked")
    rid = prep.release.id
    try:
        with engine.locks.hold(f"preview-{rid}", wait=False):
            return _render(engine, prep, *_as_checked(snapshots, prep))
    except Busy:
        raise ReleaseBusy(rid) from None


def _as_checked(snapshots: Snapshots, prep: Prepared) -> tuple[Release, MasterInfo]:
    """The release and master with the paths of the snapshots ``prepare`` checked: what is
    encoded (and cached for a later release) is the bytes that were checked, as on release."""
    release, hashes = prep.release, prep.hashes
    master = snapshots.find(release.master, prep.master.sha256)
    thumb = release.thumbnail
    update = {"master": master,
              "captions": {lang: snapshots.find(p, hashes[f"captions.{lang}"])
                           for lang, p in release.captions.items()},
              "thumbnail": snapshots.find(thumb, hashes["thumbnail"]) if thumb else None}
    return release.model_copy(update=update), prep.master.model_copy(update={"path": master})


def _render(engine: Engine, prep: Prepared, checked: Release, master: MasterInfo) -> PreviewResult:
    release, rid = prep.release, prep.release.id
    requests = {n: engine.requests_for(c, release) for n, c in prep.channels.items()}
    transcoder = engine.transcoder()
    plan = transcoder.plan(checked, master, requests)
    ready = transcoder.run(plan, on_progress=engine.reporter.progress)
    root = previews_dir(engine.state_dir)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    building = root / f".{rid}.{secrets.token_hex(4)}"
    building.mkdir(mode=0o700)
    result = PreviewResult(rid, release.text("title"), root / rid, engine.now(), [], list(prep.warnings))
    try:
        links: dict[str, tuple[str, str]] = {}  # channel -> (kind, public url)
        order = list(prep.channels)
        for wave in (False, True):  # channels that link to the others after them, as on release
            for name, ch in prep.channels.items():
                if ch.needs_links is not wave:
                    continue
                renditions = {req.profile: ready[plan.key_for(name, req)] for req in requests[name]}
                done = _one(engine, release, checked, name, ch, renditions, _ranked(links, order),
                            building / name)
                result.channels.append(done)
                if done.url:
                    links[name] = (ch.kind, done.url)
        result.channels.sort(key=lambda c: order.index(c.name))
        (building / INDEX).write_text(json.dumps(_record(result), ensure_ascii=False, indent=1),
                                      encoding="utf-8")
        (building / INDEX).chmod(0o600)
        _swap(building, root / rid)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return result


def _one(engine: Engine, release: Release, checked: Release, name: str, ch: Channel,
         renditions: dict[str, Rendition], links: dict[str, str], folder: Path) -> ChannelPreview:
    folder.mkdir(mode=0o700)
    job = Job(release=release, journal=Journal(), renditions=renditions, links=links, clock=engine.clock)
    out = PreviewFolder(folder, lambda video, dest, lang: _still(checked, video, dest, lang))
    try:
        shown = ch.preview(job, out)
    except PublisherError as exc:
        return ChannelPreview(name, ch.kind, error=redact(str(exc)), failed=True)
    except Exception as exc:  # one adapter's bug must not hide the other channels' previews
        log.exception("preview on %s", name)
        return ChannelPreview(name, ch.kind, failed=True, error=redact(
            f"internal error in the {ch.kind} adapter: {type(exc).__name__}: {exc}"))
    if shown is None:
        return ChannelPreview(name, ch.kind, error=f"{ch.kind} channels have no preview")
    return ChannelPreview(name, ch.kind, shown.url, list(shown.shown))


def _ranked(links: dict[str, tuple[str, str]], order: list[str]) -> dict[str, str]:
    """Public URLs in the engine's order for ``job.links``: websites, then YouTube, then the rest."""
    names = sorted(links, key=lambda n: (LINK_RANK.get(links[n][0], 2), order.index(n)))
    return {n: links[n][1] for n in names}


def _still(release: Release, video: Path, out: Path, language: str | None) -> None:
    """A frame in the middle of the first caption of ``language`` (else of the video)."""
    path = release.captions.get(language or "")
    cues = load_captions(path) if path is not None else []
    if cues:
        at = (cues[0].start + cues[0].end) / 2000
    else:
        at = float(ffprobe_json(video).get("format", {}).get("duration", 0)) / 2
    frame(video, at, out)


def _swap(new: Path, dest: Path) -> None:
    old = dest.with_name(f".{dest.name}.old.{secrets.token_hex(4)}")
    if dest.exists():
        dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def _record(result: PreviewResult) -> dict[str, Any]:
    return {"release": result.release, "title": result.title, "made": result.made.isoformat(),
            "warnings": result.warnings, "channels": [asdict(c) for c in result.channels]}


def load_preview(state_dir: Path, release_id: str) -> PreviewResult | None:
    """The last preview of ``release_id``, or None when there is none (or it is unreadable)."""
    folder = previews_dir(state_dir) / release_id
    try:
        data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        channels = [ChannelPreview(c["name"], c["kind"], c["url"],
                                   [Shown(s["language"], tuple((str(a), str(b)) for a, b in s["fields"]),
                                          s["page"], s["image"]) for s in c["shown"]], c["error"],
                                   bool(c["failed"]))
                    for c in data["channels"]]
        return PreviewResult(data["release"], data["title"], folder, datetime.fromisoformat(data["made"]),
                             channels, list(data["warnings"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
