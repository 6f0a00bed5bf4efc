"""One run of a release's steps: the encode in the background, each step as soon as it can start.

The critical path of a release is the encode, so everything else is fitted around it:

- a new master's full decode check is the encode's own read (``ffmpeg -xerror``), not a pass
  before it; until it has passed, nothing is sent anywhere public;
- a channel that can send privately (``private_first``: YouTube, its master passed through as
  is) uploads at once, kept private, and is made public once the check passed (deleted if the
  master fails it);
- every other step starts as soon as its own renditions exist, at most ``concurrency`` at once;
  a step waiting for renditions or for other channels holds no upload slot;
- a channel that links to the others (``needs_links``) starts with them and waits for their
  URLs only where it needs them (``Job.other_links``): WeChat uploads its video and cover
  while the websites publish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from publisher.contract import Channel, StepOptions, redact
from publisher.engine.faults import pause_point
from publisher.engine.results import Call, ChannelResult, Reporter, RunResult
from publisher.errors import InputError
from publisher.inputs.config import SiteConfig
from publisher.models import MasterInfo, Release, Rendition, RenditionRequest, State
from publisher.store import Store
from publisher.transcode import Transcoder

log = logging.getLogger("publisher")
#: the event recorded once a release's master decoded to the end in the encode's read
CHECKED = "checked"


@dataclass(frozen=True)
class Step:
    """One adapter call a verb asks for."""

    channel: Channel
    call: Call
    options: StepOptions = StepOptions()


class Engine(Protocol):
    """What a pipeline uses of ``publisher.engine.engine.Engine``."""

    store: Store
    reporter: Reporter
    config: SiteConfig

    def now(self) -> datetime: ...
    def requests_for(self, channel: Channel, release: Release) -> list[RenditionRequest]: ...
    def transcoder(self) -> Transcoder: ...
    def checked(self, release: Release, master: MasterInfo) -> tuple[Release, MasterInfo]: ...
    def links(self, release_id: str, exclude: str) -> dict[str, str]: ...
    def finish(self, release_id: str, name: str, state: State, error: str) -> ChannelResult: ...
    def step(self, release: Release, name: str, channel: Channel, call: Call,
             renditions: dict[str, Rendition], options: StepOptions,
             await_links: Callable[[], dict[str, str]] | None = None) -> ChannelResult: ...


class Pipeline:
    def __init__(self, engine: Engine, release: Release, master: MasterInfo, steps: dict[str, Step],
                 unchecked: bool) -> None:
        self.engine, self.release, self.steps, self.unchecked = engine, release, steps, unchecked
        self.stage_only = bool(release.publish_at and release.publish_at > engine.now())
        media = {n: s for n, s in steps.items() if s.call is not Call.WITHDRAW}
        self.requests = {n: engine.requests_for(s.channel, release) for n, s in media.items()}
        self.transcoder = engine.transcoder()
        self.plan = self.transcoder.plan(*engine.checked(release, master), self.requests) if media else None
        self.ready: dict[str, Rendition] = {}
        self.signals = {item.key: threading.Event() for item in (self.plan.items if self.plan else [])}
        self.failure: list[str] = []
        self.refused: list[InputError] = []
        self.verdict = threading.Event()  # the check's verdict, or the encode ended without one
        self.verified = threading.Event()
        if not unchecked or self.plan is None:
            self.verdict.set()
            self.verified.set()
        self.gate = threading.BoundedSemaphore(engine.config.settings.concurrency)
        self.lock = threading.Lock()
        self.unlinked = sum(1 for s in steps.values() if not s.channel.needs_links)
        self.others_done = threading.Event()
        if not self.unlinked:
            self.others_done.set()

    def run(self) -> RunResult:
        result = RunResult(self.release.id)
        if not self.steps:
            return result
        encoder = threading.Thread(target=self.encode, name="transcode", daemon=True) if self.plan else None
        if encoder is not None:
            encoder.start()
        with ThreadPoolExecutor(len(self.steps), thread_name_prefix="step") as pool:
            futures = [pool.submit(self.work, n, s) for n, s in self.steps.items()]
            done = [f.result() for f in futures]
        if encoder is not None:
            encoder.join()
        if self.refused:
            raise self.refused[0]
        result.results += [r for r in done if r is not None]
        result.order(list(self.steps))
        return result

    # --- the encode ----------------------------------------------------------------------------
    def on_ready(self, r: Rendition) -> None:
        self.ready[r.key] = r
        self.engine.store.record_rendition(r.key, r.profile, r.folder, self.release.id)
        self.signals[r.key].set()
        pause_point("ready")

    def on_verified(self) -> None:
        self.verified.set()
        self.verdict.set()

    def encode(self) -> None:
        assert self.plan is not None
        store, rid = self.engine.store, self.release.id
        started = time.monotonic()
        try:  # run() holds the cache's lock while it encodes: a shared cache encodes once
            self.transcoder.run(self.plan, on_ready=self.on_ready, on_progress=self.engine.reporter.progress,
                                verify_as=self.release.master if self.unchecked else None,
                                on_verified=self.on_verified)
            if self.plan.to_encode:
                store.add_event(rid, "transcode", f"made {len(self.plan.to_encode)} renditions "
                                f"in {time.monotonic() - started:.1f} s")
            if self.unchecked:
                store.add_event(rid, CHECKED, "the master decodes to the end")
        except InputError as exc:  # the master does not decode to the end
            self.refused.append(exc)
        except Exception as exc:  # reported on each channel that waited for it
            self.failure.append(redact(str(exc)))
            log.error("transcode failed: %s", redact(str(exc)))
            log.debug("transcode failure details", exc_info=True)
        finally:
            self.verdict.set()
            for s in self.signals.values():
                s.set()

    # --- the steps -----------------------------------------------------------------------------
    def await_links(self, name: str) -> dict[str, str]:
        self.gate.release()  # a waiting channel holds no upload slot
        try:
            self.others_done.wait()
        finally:
            self.gate.acquire()
        return self.engine.links(self.release.id, name)

    def work(self, name: str, step: Step) -> ChannelResult | None:
        try:
            return self._work(name, step)
        finally:
            if not step.channel.needs_links:
                with self.lock:
                    self.unlinked -= 1
                    if self.unlinked == 0:
                        self.others_done.set()

    def _work(self, name: str, step: Step) -> ChannelResult | None:
        engine, rid, plan = self.engine, self.release.id, self.plan
        wanted = self.requests.get(name, []) if plan else []
        keys = {req.profile: plan.key_for(name, req) for req in wanted} if plan else {}
        options = replace(step.options, stage_only=self.stage_only and step.call is not Call.WITHDRAW)
        early = self.send_privately(name, step, keys, options)
        for key in keys.values():
            self.signals[key].wait()
        self.verdict.wait()
        if self.refused or not self.verified.is_set():
            if early:  # the master failed its check (or was not checked): take back what was sent
                engine.step(self.release, name, step.channel, Call.WITHDRAW, {}, StepOptions())
            if self.refused:
                return None
            return engine.finish(rid, name, State.FAILED, "the master could not be checked: "
                                 + (self.failure[0] if self.failure else "the transcode stopped"))
        missing = [p for p, k in keys.items() if k not in self.ready]
        if missing:
            reason = self.failure[0] if self.failure else "rendition missing"
            return engine.finish(rid, name, State.FAILED,
                                 f"transcode of {', '.join(missing)} failed: {reason}")
        renditions = {p: self.ready[k] for p, k in keys.items()}
        links = (lambda: self.await_links(name)) if step.channel.needs_links else None
        with self.gate:
            r = engine.step(self.release, name, step.channel, step.call, renditions, options, links)
            if step.call is Call.UPDATE and r.state is State.SCHEDULED and not self.stage_only:
                r = engine.step(self.release, name, step.channel, Call.PUBLISH, renditions, step.options,
                                links)
        return r

    def send_privately(self, name: str, step: Step, keys: dict[str, str], options: StepOptions) -> bool:
        """While the master is checked, a ``private_first`` channel sends its main rendition (the
        first it asks for) where nobody else sees it. True when it did."""
        main = next(iter(keys.values()), "")
        if not (step.channel.private_first and step.call is Call.PUBLISH and main):
            return False
        self.signals[main].wait()
        if self.verdict.is_set() or main not in self.ready:
            return False
        with self.gate:
            self.engine.step(self.release, name, step.channel, step.call,
                             {p: self.ready[k] for p, k in keys.items() if k in self.ready},
                             replace(options, private=True))
        return True
