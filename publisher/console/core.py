"""The console's one door into the core: every call to the engine's verbs, the reports and the
state store goes through here.

Actions run with the store bound to the acting user (``Store.as_actor``), so every event they
record carries that user's name. Results come back as plain data for the pages and the API.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from publisher import report
from publisher.contract import redact
from publisher.engine import release as manifest_verbs
from publisher.engine import verbs
from publisher.engine.context import Context
from publisher.engine.drafts import unreviewed
from publisher.engine.engine import Engine
from publisher.engine.preview import INDEX as PREVIEW_INDEX
from publisher.engine.preview import PreviewResult, load_preview, previews_dir
from publisher.engine.preview import preview as render_preview
from publisher.engine.release import AWAITING, Dispatch
from publisher.engine.results import RunResult
from publisher.errors import FourEyes, InputError
from publisher.inputs.config import SiteConfig
from publisher.inputs.manifest import ID_PATTERN, load_release
from publisher.models import Event, MasterInfo, Problem, Publication, Release, Selection, State, StatusQuery
from publisher.models import StatusRow as StatusRow
from publisher.store import Store
from publisher.store.accounts import Accounts

from .tasks import Outcome, Task

MANIFEST_SUFFIXES = (".yaml", ".yml")
MAX_CANDIDATES = 500


class Verb(StrEnum):
    """What can be done to a release that is already recorded."""

    approve = "approve"
    retry = "retry"
    update = "update"
    repair = "repair"
    withdraw = "withdraw"
    cancel = "cancel"


@dataclass
class Detail:
    """Everything the release page shows."""

    release: Release
    master: MasterInfo | None
    rows: list[StatusRow]
    publications: dict[str, Publication]
    events: list[Event]
    hashes: dict[str, str]
    approval: tuple[str, datetime, dict[str, str]] | None
    submitter: str
    awaiting: bool
    renditions: list[tuple[str, str, str]]  # profile, key, folder
    poster: str  # a data: URI, or ""
    drafts: list[str] = field(default_factory=list)  # machine-drafted texts no person has reviewed


@dataclass
class Candidate:
    """A manifest found under ``releases_dir``."""

    path: str  # relative to releases_dir
    release_id: str = ""
    title: str = ""
    problem: str = ""
    states: dict[str, int] = field(default_factory=dict)  # of the recorded release, if any
    previewed: bool = False


def hashes_digest(hashes: dict[str, str]) -> str:
    """One short value standing for a set of content hashes (what an approver was shown)."""
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


class TaskReporter:
    """The engine's news, on a background task's page."""

    def __init__(self, task: Task) -> None:
        self.task = task

    def progress(self, fraction: float, text: str) -> None:
        self.task.progress = fraction

    def working(self, name: str, text: str) -> None:
        pass

    def channel(self, name: str, state: State, message: str = "") -> None:
        self.task.say(f"{name}: {state}" + (f" ({message})" if message and message != state else ""))


class Core:
    def __init__(self, config_path: Path, state_dir: Path) -> None:
        self.ctx = Context(config_path, state_dir)
        self._accounts: Accounts | None = None

    # --- settings ---------------------------------------------------------------------------
    @property
    def config(self) -> SiteConfig:
        return self.ctx.config

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def zone(self) -> ZoneInfo:
        return self.config.zone

    @property
    def site_name(self) -> str:
        return self.config.settings.site_name or self.config.dir.name or "publisher"

    @property
    def require_approval(self) -> bool:
        return self.config.settings.require_approval

    @property
    def accounts(self) -> Accounts:
        if self._accounts is None:
            self._accounts = Accounts(self.store)
        return self._accounts

    def channels(self) -> list[str]:
        return list(self.config.options)

    def verbs(self) -> list[Verb]:
        return list(Verb)

    def releases_dir(self) -> Path | None:
        value = self.config.settings.console.releases_dir
        return self.config.resolve(value) if value else None

    # --- reading ----------------------------------------------------------------------------
    def selection(self, query: StatusQuery | None = None, *, state: str | None = None,
                  channel: str | None = None, limit: int = 0) -> Selection:
        q = query or StatusQuery(state=report.parse_state(state), channel=channel, limit=limit)
        return report.select_rows(self.store, q)

    def local(self, value: datetime | None) -> str:
        """A time in the operator's zone, as the reports show it."""
        return report.local(value, self.zone)

    def titles(self, ids: list[str]) -> dict[str, str]:
        return {rid: rel.text("title") for rid, rel in report.stored_releases(self.store, ids).items()}

    def records(self, release_id: str | None = None) -> list[dict[str, str]]:
        """The rows of `publisher status [RELEASE] --json`."""
        return [report.record(r) for r in self.selection(StatusQuery(release=release_id)).rows]

    def exists(self, release_id: str) -> bool:
        return self.store.get_release(release_id) is not None

    def detail(self, release_id: str) -> Detail | None:
        store = self.store
        release = store.get_release(release_id)
        if release is None:
            return None
        renditions = store.renditions(release_id)
        pubs = store.publications(release_id)
        poster = report.poster_source(store, release, release_id)
        hashes = store.release_hashes(release_id)
        return Detail(
            release=release, master=store.get_master(release_id),
            rows=self.selection(StatusQuery(release=release_id)).rows,
            publications={p.channel: p for p in pubs}, events=store.events(release_id, limit=500),
            hashes=hashes, approval=store.approval(release_id), drafts=unreviewed(store, release, hashes),
            submitter=manifest_verbs.submitter(self._engine(""), release_id),
            awaiting=any(p.state is State.PENDING and p.note == AWAITING for p in pubs),
            renditions=renditions, poster=poster if poster.startswith("data:") else "")

    # --- acting -----------------------------------------------------------------------------
    def _engine(self, user: str, task: Task | None = None) -> Engine:
        reporter = TaskReporter(task) if task else None
        return Engine(self.config, self.store.as_actor(user), self.ctx.state_dir, reporter=reporter)

    def _dispatch(self, engine: Engine) -> Dispatch | None:
        if not self.config.settings.broker:
            return None
        from publisher.scale.worker import to_workers

        return to_workers(engine)

    def precheck(self, verb: Verb, release_id: str, user: str, seen: str = "") -> None:
        """The quick refusals, answered before anything starts: four eyes and a stale page."""
        if verb != Verb.approve:
            return
        if self.require_approval and manifest_verbs.submitter(self._engine(user), release_id) == user:
            raise FourEyes(Problem("", "", f"{user} submitted {release_id}, so cannot also approve it",
                                   "another person with the approver role approves it (four eyes)"))
        if seen != hashes_digest(self.store.release_hashes(release_id)):
            raise InputError(Problem("", "", f"{release_id} changed since the page was loaded",
                                     "look at the release again and approve what it is now"))

    def run_verb(self, verb: Verb, release_id: str, channel: str | None, user: str, task: Task, *,
                 keep_private: bool = False) -> Outcome:
        engine = self._engine(user, task)
        if verb == Verb.approve:
            release, _ = engine.stored(release_id)
            seen = self.store.release_hashes(release_id)
            a = manifest_verbs.approve(engine, release.manifest_path, seen=seen)
            if not (a.submitted and a.prep):
                return Outcome(True, f"{release_id} approved by {user}", release=release_id)
            result = manifest_verbs.launch(engine, a.prep, on_approval=True, dispatch=self._dispatch(engine))
            return _summary("approved and released", result)
        if verb == Verb.retry:
            result = verbs.retry(engine, release_id, channel)
        elif verb == Verb.update:
            release, _ = engine.stored(release_id)
            result = manifest_verbs.update(engine, release.manifest_path)
        elif verb == Verb.withdraw:
            result = verbs.withdraw(engine, release_id, channel, keep_private)
        elif verb == Verb.cancel:
            result = verbs.cancel(engine, release_id, channel)
        else:
            result, _ = verbs.repair(engine, release_id, channel)
        return _summary(verb.value, result)

    def start_release(self, manifest: Path, user: str, task: Task) -> Outcome:
        engine = self._engine(user, task)
        return _summary("release", manifest_verbs.release(engine, manifest, dispatch=self._dispatch(engine)))

    def check(self, manifest: Path, task: Task) -> Outcome:
        prep = manifest_verbs.check(self._engine(""), manifest)
        m = prep.master
        lines = [f"master {m.path.name}: {m.width}x{m.height} {m.fps:g} fps {m.duration:.1f} s "
                 f"{m.video_codec}/{m.audio_codec or 'no audio'}, sha256 {m.sha256}",
                 "channels: " + ", ".join(f"{n} ({c.kind})" for n, c in prep.channels.items())]
        return Outcome(True, f"{prep.release.id}: all checks passed", lines + prep.warnings,
                       release=prep.release.id)

    def plan(self, manifest: Path, task: Task) -> Outcome:
        engine = self._engine("", task)
        prep = manifest_verbs.check(engine, manifest)
        requests = {n: engine.requests_for(c, prep.release) for n, c in prep.channels.items()}
        tplan = engine.transcoder().plan(prep.release, prep.master, requests)
        lines = [f"{item.description}: {'cached' if item.cached else 'to encode'} "
                 f"(for {', '.join(item.channels)})" for item in tplan.items]
        table = []
        for name, ch in prep.channels.items():
            p = ch.plan(prep.release)
            table.append({"channel": name, "state": ch.kind, "detail": "; ".join(p.sends)
                          + (" — quota " + ", ".join(f"{k} {v}" for k, v in p.quota.items())
                             if p.quota else "")})
        return Outcome(True, f"plan for {prep.release.id}", lines, table, prep.release.id)

    # --- previews -----------------------------------------------------------------------------
    def preview(self, manifest: Path, task: Task) -> Outcome:
        """Every channel's output rendered privately; nothing sent, nothing recorded."""
        result = render_preview(self._engine("", task), manifest)
        table = [{"channel": c.name, "state": "failed" if c.failed else "previewed" if c.shown else "none",
                  "detail": c.error or ", ".join(s.language for s in c.shown)} for c in result.channels]
        failed = any(c.failed for c in result.channels)
        headline = f"preview of {result.release} ready" + (" (with problems)" if failed else "")
        return Outcome(not failed, headline, [redact(w) for w in result.warnings], table, result.release)

    def last_preview(self, release_id: str) -> PreviewResult | None:
        return load_preview(self.ctx.state_dir, release_id) if re.fullmatch(ID_PATTERN, release_id) else None

    def preview_file(self, release_id: str, channel: str, name: str) -> Path | None:
        """A file of the last preview of ``release_id`` on ``channel``, or None: anything that is
        not a plain file reached through plain folders (no '..', no hidden name, no link) is none."""
        found = self.last_preview(release_id)
        if found is None or channel not in {c.name for c in found.channels}:
            return None
        parts = name.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p for p in parts):
            return None
        path = found.folder
        for part in (channel, *parts):
            path = path / part
            if path.is_symlink():
                return None
        return path if path.is_file() and path.resolve().is_relative_to(found.folder.resolve()) else None

    def stored_manifest(self, release_id: str) -> Path:
        """The manifest a recorded release was last released from."""
        release, _ = self._engine("").stored(release_id)
        return release.manifest_path

    # --- releases_dir -----------------------------------------------------------------------
    def candidates(self) -> list[Candidate]:
        root = self.releases_dir()
        if root is None or not root.is_dir():
            return []
        found: list[Candidate] = []
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if (path.suffix not in MANIFEST_SUFFIXES or len(rel.parts) > 3 or not path.is_file()
                    or any(part.startswith(".") for part in rel.parts)):
                continue
            item = Candidate(rel.as_posix())
            try:
                release = load_release(path)
            except InputError as exc:
                item.problem = redact(str(exc.problems[0])) if exc.problems else "not a release manifest"
            else:
                item.release_id, item.title = release.id, release.text("title")
                item.previewed = (previews_dir(self.ctx.state_dir) / release.id / PREVIEW_INDEX).is_file()
                for p in self.store.publications(release.id):
                    item.states[p.state] = item.states.get(p.state, 0) + 1
            found.append(item)
            if len(found) >= MAX_CANDIDATES:
                break
        return found

    def manifest(self, relative: str) -> Path:
        """A manifest path from a form, refused unless it is a manifest inside ``releases_dir``."""
        root = self.releases_dir()
        if root is None:
            raise InputError(Problem(str(self.config.path), "console.releases_dir", "not set",
                                     "set console: {releases_dir: FOLDER} in the site config"))
        path = (root / relative).resolve()
        if (not path.is_relative_to(root.resolve()) or path.suffix not in MANIFEST_SUFFIXES
                or not path.is_file()):
            raise InputError(Problem("", "manifest", f"'{relative}' is not a manifest in the releases folder",
                                     "choose one from the list"))
        return path


def _summary(what: str, result: RunResult) -> Outcome:
    counts: dict[str, int] = {}
    for r in result.results:
        counts[r.state] = counts.get(r.state, 0) + 1
    states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to do"
    table = [{"channel": r.channel, "state": r.state, "detail": redact(r.error or r.note)}
             for r in result.results]
    return Outcome(result.exit_code != 1, f"{what} of {result.release}: {states}",
                   [redact(w) for w in result.warnings], table, result.release)
