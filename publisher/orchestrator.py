"""The core loop: transcode once, publish through every channel, record everything.

*What* is the release (``publisher.release``), *how* are the channel adapters and the
transcoder, *when* is the scheduler; this module only runs a release now. It records the
intent before each side effect and the result right after, owns retries with backoff, and turns
adapter errors into publication states (failed, deferred). It never prints: a ``Reporter``
receives progress and per-channel news, and results come back as data.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from publisher.checks import Prepared, prepare
from publisher.config import SiteConfig
from publisher.contract import Channel, Job, Journal, redact
from publisher.errors import InputError, PublisherError, RateLimited, Transient
from publisher.faults import crash_point
from publisher.locks import Busy, FileLocks, Locks
from publisher.models import MasterInfo, Problem, Publication, Release, Rendition, RenditionRequest, State
from publisher.store import Store, utcnow
from publisher.transcode import Transcoder

log = logging.getLogger("publisher")
AWAITING = "awaiting approval"
ACTIVE: tuple[State, ...] = ("pending", "scheduled", "processing", "live", "deferred", "failed")


class Reporter:
    """Receives news while a release runs. The CLI subclasses it to draw progress bars."""

    def progress(self, fraction: float, text: str) -> None:
        """Transcode progress, 0..1."""

    def channel(self, name: str, state: str, message: str = "") -> None:
        """A channel changed state or made an attempt."""


@dataclass
class ChannelResult:
    channel: str
    kind: str
    state: State
    remote_id: str = ""
    url: str = ""
    checksum: str = ""
    error: str = ""
    note: str = ""

    @classmethod
    def of(cls, pub: Publication) -> ChannelResult:
        return cls(pub.channel, pub.kind, pub.state, pub.remote_id, pub.url, pub.checksum, pub.error,
                   pub.note)


@dataclass
class RunResult:
    release: str
    results: list[ChannelResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        states = {r.state for r in self.results}
        if "failed" in states:
            return 1
        if "deferred" in states:
            return 75
        return 0


class Orchestrator:
    def __init__(self, config: SiteConfig, store: Store, state_dir: Path, *,
                 reporter: Reporter | None = None, now: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], None] = time.sleep, locks: Locks | None = None) -> None:
        self.config = config
        self.store = store
        self.state_dir = state_dir
        self.reporter = reporter or Reporter()
        self.now = now
        self.sleep = sleep
        self.locks: Locks = locks or FileLocks(state_dir / "locks")

    @property
    def cache_dir(self) -> Path:
        value = self.config.settings.cache_dir
        return self.config.resolve(value) if value else self.state_dir / "renditions"

    def transcoder(self) -> Transcoder:
        return Transcoder(self.cache_dir)

    def prepare(self, manifest: Path, only: list[str] | None = None) -> Prepared:
        return prepare(self.config, manifest, self.state_dir, only)

    @staticmethod
    def requests_for(channel: Channel, release: Release) -> list[RenditionRequest]:
        """The channel's rendition requests with its config's ``encoding`` overrides merged in."""
        out = []
        for req in channel.renditions(release):
            extra = channel.options.encoding.get(req.profile, {})
            out.append(req.model_copy(update={"params": {**extra, **req.params}}) if extra else req)
        return out

    # --- release ---------------------------------------------------------------------------------
    @property
    def actor(self) -> str:
        """The person this run acts for (the console login, or the Unix user on the CLI)."""
        return self.store.actor

    def release(self, manifest: Path, only: list[str] | None = None) -> RunResult:
        prep = self.prepare(manifest, only)
        if self.approval_gap(prep):
            return self.submit(prep)
        return self.launch(prep)

    def launch(self, prep: Prepared) -> RunResult:
        """Record and run a prepared release (approval, where required, already checked)."""
        with self.lock(prep.release.id):
            self.store.save_release(prep.release, prep.master, prep.hashes)
            self.store.add_event(prep.release.id, "release",
                                 f"release of {prep.master.sha256[:12]} to {', '.join(prep.channels)}")
            result = self.run(prep.release, prep.master, prep.channels)
        result.warnings = prep.warnings
        return result

    def approval_gap(self, prep: Prepared) -> str:
        """Why this content may not run yet: "" when it may (no approval needed, or approved
        for exactly these hashes by someone other than the person releasing it)."""
        if not self.config.settings.require_approval:
            return ""
        approval = self.store.approval(prep.release.id)
        if approval is None:
            return "it is not approved yet"
        who, at, hashes = approval
        changed = sorted(k for k in set(hashes) | set(prep.hashes) if hashes.get(k) != prep.hashes.get(k))
        if changed:
            return f"{', '.join(changed)} changed since {who} approved it on {at:%Y-%m-%d %H:%M} UTC"
        if self.actor and who == self.actor:
            return f"{who} approved it, so another person must release it (four eyes)"
        return ""

    def submit(self, prep: Prepared) -> RunResult:
        """Record the release as pending, awaiting approval, with its content hashes; send nothing."""
        rid = prep.release.id
        reason = self.approval_gap(prep)
        with self.lock(rid):
            self.store.save_release(prep.release, prep.master, prep.hashes)
            result = RunResult(rid, warnings=list(prep.warnings))
            for name, ch in prep.channels.items():
                pub = self.store.ensure_publication(rid, name, ch.kind, prep.release.publish_at)
                if pub.state in ("pending", "failed", "deferred", "cancelled"):
                    pub = self.store.update_publication(rid, name, state="pending", note=AWAITING,
                                                        error="", retry_at=None)
                result.results.append(ChannelResult.of(pub))
            self.store.add_event(rid, "submit", f"{AWAITING}: {reason}; content " + ", ".join(
                f"{k} {v[:12]}" for k, v in sorted(prep.hashes.items())))
        who = f"an approver other than {self.actor}" if self.actor else "an approver"
        result.warnings.append(f"{rid} is recorded and {AWAITING} ({reason}); nothing was sent. "
                               f"{who} runs `publisher approve {prep.release.manifest_path}`, "
                               "and it is released then")
        return result

    def check_approval(self, prep: Prepared) -> None:
        gap = self.approval_gap(prep)
        if gap:
            raise InputError(Problem(str(prep.release.manifest_path), "", f"not approved: {gap}",
                                     "have this content approved with `publisher approve` by "
                                     "someone other than the person who runs it"))

    def run(self, release: Release, master: MasterInfo, channels: dict[str, Channel],
            *, force: bool = False) -> RunResult:
        """Publish ``release`` to ``channels``, resuming whatever was started before."""
        now = self.now()
        stage_only = bool(release.publish_at and release.publish_at > now)
        result = RunResult(release.id)
        todo = self.select(release, channels, result, force=force)
        if not todo:
            return result
        requests = {name: self.requests_for(ch, release) for name, ch in todo.items()}
        transcoder = self.transcoder()
        plan = transcoder.plan(release, master, requests)
        ready: dict[str, Rendition] = {}
        signals = {item.key: threading.Event() for item in plan.items}
        failure: list[str] = []

        def on_ready(r: Rendition) -> None:
            ready[r.key] = r
            self.store.record_rendition(r.key, r.profile, r.folder, release.id)
            signals[r.key].set()

        def encode() -> None:
            try:
                # run() itself re-checks the cache and holds the cache's lock while it encodes,
                # so processes sharing a cache never encode the same rendition twice.
                transcoder.run(plan, on_ready=on_ready, on_progress=self.reporter.progress)
            except Exception as exc:  # reported per channel below
                failure.append(redact(str(exc)))
                log.error("transcode failed: %s", redact(str(exc)))
                log.debug("transcode failure details", exc_info=True)
            finally:
                for s in signals.values():
                    s.set()

        def work(name: str, ch: Channel) -> ChannelResult:
            keys = {req.profile: plan.key_for(name, req) for req in requests[name]}
            for key in keys.values():
                signals[key].wait()
            missing = [p for p, k in keys.items() if k not in ready]
            if missing:
                reason = failure[0] if failure else "rendition missing"
                return self.finish(release.id, name, "failed", f"transcode of {', '.join(missing)} "
                                   f"failed: {reason}")
            renditions = {p: ready[k] for p, k in keys.items()}
            return self.attempt(release, name, ch, "publish", renditions=renditions, stage_only=stage_only)

        encoder = threading.Thread(target=encode, name="transcode", daemon=True)
        encoder.start()
        first = {n: c for n, c in todo.items() if not c.needs_links}
        last = {n: c for n, c in todo.items() if c.needs_links}
        with ThreadPoolExecutor(self.config.settings.concurrency, thread_name_prefix="publish") as pool:
            for wave in (first, last):
                futures = [pool.submit(work, n, c) for n, c in wave.items()]
                result.results += [f.result() for f in futures]
        encoder.join()
        order = list(channels)
        result.results.sort(key=lambda r: order.index(r.channel))
        return result

    def select(self, release: Release, channels: dict[str, Channel], result: RunResult, *,
               force: bool = False) -> dict[str, Channel]:
        """The channels with work to do; the others go straight into ``result`` as they are."""
        now = self.now()
        stage_only = bool(release.publish_at and release.publish_at > now)
        todo: dict[str, Channel] = {}
        for name, ch in channels.items():
            pub = self.store.ensure_publication(release.id, name, ch.kind, release.publish_at)
            done = pub.state == "live" or (pub.state == "scheduled" and stage_only)
            held = pub.state == "deferred" and pub.retry_at is not None and pub.retry_at > now
            if not force and (done or held or pub.state == "cancelled"):
                self.reporter.channel(name, pub.state, "nothing to do")
                result.results.append(ChannelResult.of(pub))
            else:
                todo[name] = ch
        return todo

    # --- one adapter call, with the core's retries ----------------------------------------------
    def attempt(self, release: Release, name: str, ch: Channel, verb: str, *,
                renditions: dict[str, Rendition] | None = None, stage_only: bool = False,
                extra: dict[str, object] | None = None) -> ChannelResult:
        pub = self.store.get_publication(release.id, name)
        assert pub is not None

        def save(data: dict[str, object]) -> None:
            self.store.save_journal(release.id, name, data)
            crash_point("journal")

        job = Job(release=release, journal=Journal(pub.journal, save), renditions=renditions or {},
                  stage_only=stage_only, publication=pub, links=self.links(release.id, name),
                  extra=dict(extra or {}), now=self.now)
        policy = self.config.settings.retry
        last_error = ""
        for n in range(policy.attempts):
            self.store.update_publication(release.id, name, attempts=pub.attempts + n + 1)
            self.store.add_event(release.id, verb, f"attempt {n + 1}", name)
            self.reporter.channel(name, "working", f"{verb} attempt {n + 1}")
            try:
                outcome = getattr(ch, verb)(job)
            except Transient as exc:
                last_error = redact(str(exc))
                self.store.add_event(release.id, "transient", last_error, name)
                if n + 1 < policy.attempts:
                    self.sleep(self.backoff(n))
                continue
            except RateLimited as exc:
                retry_at = exc.retry_at or self.now() + timedelta(minutes=policy.defer_minutes)
                return self.finish(release.id, name, "deferred", redact(str(exc)), retry_at=retry_at)
            except PublisherError as exc:
                return self.finish(release.id, name, "failed", redact(str(exc)))
            except Exception as exc:
                log.exception("%s on %s", verb, name)
                return self.finish(release.id, name, "failed",
                                   redact(f"internal error in the {ch.kind} adapter: "
                                          f"{type(exc).__name__}: {exc}"))
            self.store.update_publication(
                release.id, name, state=outcome.state, remote_id=outcome.remote_id or pub.remote_id,
                url=outcome.url or pub.url, checksum=outcome.checksum or pub.checksum,
                note=outcome.note, error="", retry_at=None)
            return self.finish(release.id, name, outcome.state, "", message=outcome.note)
        retry_at = self.now() + timedelta(minutes=policy.defer_minutes)
        return self.finish(release.id, name, "deferred",
                           f"gave up for now after {policy.attempts} attempts: {last_error}",
                           retry_at=retry_at)

    def backoff(self, attempt: int) -> float:
        policy = self.config.settings.retry
        return float(min(policy.max_seconds, policy.base_seconds * 2 ** attempt) * random.uniform(0.5, 1.0))

    def finish(self, release_id: str, name: str, state: State, error: str, *,
               retry_at: datetime | None = None, message: str = "") -> ChannelResult:
        fields: dict[str, object] = {"state": state}
        if state in ("failed", "deferred"):
            fields.update(error=error, retry_at=retry_at)
        pub = self.store.update_publication(release_id, name, **fields)
        text = error or message or state
        self.store.add_event(release_id, state, text, name)
        log.info("%s on %s: %s%s", release_id, name, state, f" ({text})" if text != state else "")
        self.reporter.channel(name, state, text)
        return ChannelResult.of(pub)

    def links(self, release_id: str, exclude: str) -> dict[str, str]:
        """Live URLs of the release's other channels: websites first, then YouTube, then the rest."""
        rank = {"website": 0, "youtube": 1}
        pubs = [p for p in self.store.publications(release_id)
                if p.channel != exclude and p.url and p.state in ("live", "scheduled", "processing")]
        pubs.sort(key=lambda p: (rank.get(p.kind, 2), list(self.config.options).index(p.channel)
                                 if p.channel in self.config.options else 99))
        return {p.channel: p.url for p in pubs}

    @contextmanager
    def lock(self, release_id: str) -> Iterator[None]:
        """One process at a time per release."""
        try:
            with self.locks.hold(f"release-{release_id}", wait=False):
                yield
        except Busy:
            raise InputError(f"another publisher process is working on {release_id}; "
                             "wait for it to finish") from None
