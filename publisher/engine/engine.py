"""The engine: every verb runs its (release, channel) steps through here.

*What* is the release (``publisher.inputs``), *how* are the channel adapters and the transcoder,
*when* is the service (``publisher.schedule``); the engine does a step now. One path for every
verb: take the release's lock, load what the store recorded, build the adapters (a channel gone
from the config is recorded as failed, never skipped silently), encode what the steps need (a
channel starts as soon as its own renditions exist), then for each step: call the adapter with
its journal (saved before and after each side effect), retry passing faults with backoff, and
record the outcome. Adapter errors become states: ``RateLimited`` -> deferred, any other
``PublisherError`` -> failed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from publisher.contract import Channel, Clock, Job, Journal, StepOptions, SystemClock, redact
from publisher.engine.content import CONTENT, fingerprint
from publisher.engine.faults import crash_point
from publisher.engine.locks import Busy, FileLocks, Locks
from publisher.engine.pipeline import Pipeline, Step
from publisher.engine.results import Call, ChannelResult, Quiet, Reporter, RunResult, Verb
from publisher.errors import InputError, PublisherError, QuotaExhausted, RateLimited, ReleaseBusy, Transient
from publisher.inputs.checks import build_channels
from publisher.inputs.config import SiteConfig
from publisher.inputs.snapshots import Snapshots
from publisher.models import (
    GONE,
    SHOWN,
    MasterInfo,
    Outcome,
    Problem,
    Publication,
    Release,
    RemoteStatus,
    Rendition,
    RenditionRequest,
    State,
)
from publisher.notify import Notifier
from publisher.store import Store
from publisher.transcode import Transcoder

log = logging.getLogger("publisher")
#: the order in which other channels' public pages are offered to an adapter (job.links)
LINK_RANK = {"website": 0, "youtube": 1}


class Engine:
    def __init__(self, config: SiteConfig, store: Store, state_dir: Path, *,
                 reporter: Reporter | None = None, clock: Clock | None = None,
                 locks: Locks | None = None) -> None:
        self.config = config
        self.store = store
        self.state_dir = state_dir
        self.reporter: Reporter = reporter or Quiet()
        self.clock = clock or SystemClock()
        self.locks: Locks = locks or FileLocks(state_dir / "locks")
        self.notifier = Notifier(config)

    # --- the environment ---------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    @property
    def actor(self) -> str:
        """The person the engine acts for (the console login, or the Unix user on the CLI)."""
        return self.store.actor

    @property
    def cache_dir(self) -> Path:
        return self.config.cache_dir(self.state_dir)

    def transcoder(self) -> Transcoder:
        return Transcoder(self.cache_dir)

    def snapshots(self) -> Snapshots:
        return Snapshots(self.cache_dir / "sources")

    @contextmanager
    def lock(self, release_id: str, channel: str = "", *, wait: bool = False) -> Iterator[None]:
        """One process at a time per release (per step when ``channel``: scale-out workers, which
        ``wait`` for a step a dead worker held until its lease runs out)."""
        name = f"step-{release_id}-{channel}" if channel else f"release-{release_id}"
        try:
            with self.locks.hold(name, wait=wait):
                yield
        except Busy:
            raise ReleaseBusy(release_id) from None

    # --- what the store recorded ---------------------------------------------------------------
    def stored(self, release_id: str) -> tuple[Release, MasterInfo]:
        """The release and master facts as last released; an unknown id is bad input."""
        release, master = self.store.get_release(release_id), self.store.get_master(release_id)
        if release is None or master is None:
            known = self.store.release_ids()[-5:]
            hint = f"known releases include: {', '.join(known)}" if known else "nothing is released yet"
            raise InputError(Problem("", "RELEASE", f"no release '{release_id}' in the state store",
                                     f"check the id ({hint}); `publisher status` lists them"))
        return release, master

    def publications(self, release_id: str, channel: str | None = None) -> list[Publication]:
        pubs = self.store.publications(release_id)
        if channel:
            names = ", ".join(p.channel for p in pubs) or "none"
            pubs = [p for p in pubs if p.channel == channel]
            if not pubs:
                raise InputError(Problem("", "--channel", f"{release_id} has no publication on '{channel}'",
                                         f"use one of: {names}"))
        return pubs

    def checked(self, release: Release, master: MasterInfo) -> tuple[Release, MasterInfo]:
        """The release and master as checked: paths of the snapshots holding the bytes whose
        hashes the store recorded, for the transcoder to read (adapters see the author's paths)."""
        hashes = self.store.release_hashes(release.id)
        snap = self.snapshots()
        master_file = snap.find(release.master, master.sha256)
        thumb = release.thumbnail
        update = {"master": master_file,
                  "captions": {lang: snap.find(p, hashes.get(f"captions.{lang}"))
                               for lang, p in release.captions.items()},
                  "thumbnail": snap.find(thumb, hashes.get("thumbnail")) if thumb else None}
        return release.model_copy(update=update), master.model_copy(update={"path": master_file})

    def adapters(self, release: Release, names: list[str]) -> tuple[dict[str, Channel], list[str]]:
        """Adapters for the channels still in the config, and the names that are no longer there."""
        present = [n for n in names if n in self.config.options]
        channels, problems = build_channels(self.config, release, present, self.state_dir,
                                            self.store.accounts)
        if problems:
            raise InputError(problems)
        return channels, [n for n in names if n not in self.config.options]

    def adapter(self, name: str) -> Channel:
        """A configured channel's adapter, for work that concerns no one release."""
        return self.config.channel(name, self.state_dir, accounts=self.store.accounts)

    @contextmanager
    def on_release(self, release_id: str, verb: Verb, channel: str | None = None) -> Iterator[Stored]:
        """A verb's work on a recorded release, under its lock."""
        with self.lock(release_id):
            release, master = self.stored(release_id)
            yield Stored(self, verb, release, master, self.publications(release_id, channel))

    # --- running steps -------------------------------------------------------------------------
    @staticmethod
    def requests_for(channel: Channel, release: Release) -> list[RenditionRequest]:
        """The channel's rendition requests with its config's ``encoding`` overrides merged in."""
        out = []
        for req in channel.renditions(release):
            extra = channel.options.encoding.get(req.profile, {})
            out.append(req.model_copy(update={"params": {**extra, **req.params}}) if extra else req)
        return out

    def plan_publish(self, release: Release, channels: dict[str, Channel], result: RunResult, *,
                     force: bool = False) -> dict[str, Step]:
        """A step for each channel with work to do: a publish, or an update where the channel
        carries an older version of the release; the others go into ``result`` as they stand.
        ``force`` (retry) takes up deferred and cancelled ones too."""
        now = self.now()
        stage_only = bool(release.publish_at and release.publish_at > now)
        current = fingerprint(release, self.store.release_hashes(release.id))
        steps: dict[str, Step] = {}
        for name, ch in channels.items():
            pub = self.store.ensure_publication(release.id, name, ch.kind, release.publish_at)
            done = pub.state is State.LIVE or (pub.state is State.SCHEDULED and stage_only)
            held = pub.state is State.DEFERRED and pub.retry_at is not None and pub.retry_at > now
            sent = pub.journal.get(CONTENT)
            stale = sent not in (None, current) and pub.state not in (State.PENDING, *GONE)
            if not force and (held or pub.state is State.CANCELLED or (done and not stale)):
                self.reporter.channel(name, pub.state, "nothing to do")
                result.results.append(ChannelResult.of(pub))
                continue
            steps[name] = Step(ch, Call.UPDATE if stale else Call.PUBLISH)
        return steps

    def run_steps(self, release: Release, master: MasterInfo, steps: dict[str, Step], *,
                  unchecked: bool = False) -> RunResult:
        """Run ``steps``: encode (in one process, in the background) what publish and update
        steps need, and start each step as soon as it can (``publisher.engine.pipeline``).
        ``unchecked``: the master's full decode check is the encode's own read, and nothing is
        sent where others see it before it passed; a master that fails raises ``InputError``."""
        return Pipeline(self, release, master, steps, unchecked).run()

    def step(self, release: Release, name: str, channel: Channel, call: Call,
             renditions: dict[str, Rendition], options: StepOptions,
             await_links: Callable[[], dict[str, str]] | None = None) -> ChannelResult:
        """One adapter call with the core's retries; the outcome is recorded. ``await_links``
        gives the other channels' URLs once they are published in this run."""
        pub = self.store.get_publication(release.id, name)
        assert pub is not None, f"{release.id}/{name} is recorded before its first step"
        channel.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

        def save(data: dict[str, object]) -> None:
            self.store.save_journal(release.id, name, data)
            crash_point("journal")

        job = Job(release=release, journal=Journal(pub.journal, save), renditions=renditions,
                  options=options, publication=pub, links=self.links(release.id, name), clock=self.clock,
                  await_links=await_links)
        policy = self.config.settings.retry
        last_error = ""
        for n in range(policy.attempts):
            self.store.update_publication(release.id, name, attempts=pub.attempts + n + 1)
            self.store.add_event(release.id, call, f"attempt {n + 1}", name)
            self.reporter.working(name, f"{call} attempt {n + 1}")
            try:
                outcome: Outcome = getattr(channel, call)(job)
            except Transient as exc:
                last_error = redact(str(exc))
                self.store.add_event(release.id, "transient", last_error, name)
                if n + 1 < policy.attempts:
                    self.clock.sleep(self.backoff(n))
                continue
            except RateLimited as exc:
                retry_at = exc.retry_at or self.now() + timedelta(minutes=policy.defer_minutes)
                return self.finish(release.id, name, State.DEFERRED, redact(str(exc)), retry_at=retry_at,
                                   quota=isinstance(exc, QuotaExhausted))
            except PublisherError as exc:
                return self.finish(release.id, name, State.FAILED, redact(str(exc)))
            except Exception as exc:
                log.exception("%s on %s", call, name)
                return self.finish(release.id, name, State.FAILED, redact(
                    f"internal error in the {channel.kind} adapter: {type(exc).__name__}: {exc}"))
            if call is not Call.WITHDRAW and outcome.state in SHOWN:
                job.journal.put(CONTENT, fingerprint(release, self.store.release_hashes(release.id)))
            return self.record(release.id, name, outcome.state, outcome.remote_id, outcome.url,
                               outcome.checksum, outcome.note)
        retry_at = self.now() + timedelta(minutes=policy.defer_minutes)
        return self.finish(release.id, name, State.DEFERRED,
                           f"gave up for now after {policy.attempts} attempts: {last_error}",
                           retry_at=retry_at)

    def backoff(self, attempt: int) -> float:
        policy = self.config.settings.retry
        return float(min(policy.max_seconds, policy.base_seconds * 2 ** attempt) * random.uniform(0.5, 1.0))

    # --- records -------------------------------------------------------------------------------
    def record(self, release_id: str, name: str, state: State, remote_id: str = "", url: str = "",
               checksum: str = "", note: str = "", message: str = "") -> ChannelResult:
        """What the channel said, as the publication's state (known ids and URLs are kept);
        ``message`` is told in the event log (default: the note)."""
        pub = self.store.get_publication(release_id, name)
        assert pub is not None
        self.store.update_publication(
            release_id, name, state=state, remote_id=remote_id or pub.remote_id, url=url or pub.url,
            checksum=checksum or pub.checksum, note=note, error="", retry_at=None)
        return self.finish(release_id, name, state, "", message=message or note, before=pub)

    def settle(self, release_id: str, name: str, remote: RemoteStatus) -> ChannelResult | None:
        """A publication left ``processing``, once the channel says it is final."""
        if remote.state is State.LIVE:
            url = remote.url or (pub.url if (pub := self.store.get_publication(release_id, name)) else "")
            return self.record(release_id, name, State.LIVE, remote.remote_id, remote.url, remote.checksum,
                               remote.detail, message="now live" + (f": {url}" if url else ""))
        if remote.state is State.FAILED:
            return self.finish(release_id, name, State.FAILED, redact(
                remote.detail or "; ".join(remote.drift) or "the channel reports a failure"))
        return None

    def finish(self, release_id: str, name: str, state: State, error: str, *,
               retry_at: datetime | None = None, message: str = "", quota: bool = False,
               before: Publication | None = None) -> ChannelResult:
        fields: dict[str, object] = {"state": state}
        if state in (State.FAILED, State.DEFERRED):
            fields.update(error=error, retry_at=retry_at)
        if before is None and self.notifier.active:
            before = self.store.get_publication(release_id, name)
        pub = self.store.update_publication(release_id, name, **fields)
        self.notifier.outcome(self.store, before, pub, quota=quota)
        text = error or message or state
        self.store.add_event(release_id, state, text, name)
        log.info("%s on %s: %s%s", release_id, name, state, f" ({text})" if text != state else "")
        self.reporter.channel(name, state, text)
        return ChannelResult.of(pub)

    def gone(self, release_id: str, name: str, verb: Verb) -> ChannelResult:
        """A channel no longer in the config: recorded as failed, with what to do."""
        pub = self.store.get_publication(release_id, name)
        remote = f" (remote id {pub.remote_id})" if pub and pub.remote_id else ""
        where = self.config.path.name
        return self.finish(release_id, name, State.FAILED,
                           f"cannot {verb}: channel '{name}' is no longer in {where}{remote}; "
                           f"add it back to the config, or {verb} it by hand")

    def links(self, release_id: str, exclude: str) -> dict[str, str]:
        """Public URLs of the release's other channels: websites first, then YouTube, then the rest."""
        order = list(self.config.options)
        pubs = [p for p in self.store.publications(release_id)
                if p.channel != exclude and p.url and p.state in SHOWN]
        pubs.sort(key=lambda p: (LINK_RANK.get(p.kind, 2),
                                 order.index(p.channel) if p.channel in order else len(order)))
        return {p.channel: p.url for p in pubs}


class Stored:
    """A recorded release under its lock, and the verb working on it (``Engine.on_release``)."""

    def __init__(self, engine: Engine, verb: Verb, release: Release, master: MasterInfo,
                 pubs: list[Publication]) -> None:
        self.engine, self.verb, self.release, self.master, self.pubs = engine, verb, release, master, pubs

    @property
    def created(self) -> datetime:
        """When the release was first recorded."""
        return self.engine.store.release_created(self.release.id) or self.engine.now()

    def run(self, calls: dict[str, Call], options: StepOptions = StepOptions(), *,
            note: str | None = "") -> RunResult:
        """Run ``calls`` (channel -> adapter call) and report every publication of the selection:
        those not called as they stand, those gone from the config as failed. The verb is logged
        with ``note`` (None: the caller logs it when done)."""
        engine, rid = self.engine, self.release.id
        channels, missing = engine.adapters(self.release, list(calls))
        if note is not None:
            engine.store.add_event(rid, self.verb, note or f"{self.verb} of {', '.join(calls) or 'nothing'}")
        steps = {n: Step(ch, calls[n], options) for n, ch in channels.items()}
        result = engine.run_steps(self.release, self.master, steps)
        result.results += [engine.gone(rid, n, self.verb) for n in missing]
        result.results += [ChannelResult.of(p) for p in self.pubs if p.channel not in calls]
        result.order([p.channel for p in self.pubs])
        return result
