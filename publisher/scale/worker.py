"""Scale-out on Dramatiq with Redis: each (release, channel) step is a message.

``publisher release`` with ``broker: redis://...`` checks and records the release, then sends one
message per channel that has work; ``publisher worker`` processes run them. Steps are idempotent
through the state store (a step resumes from its journal and skips what is live), so a message
redelivered after a worker died never duplicates anything. A Redis lease makes sure only one worker
runs a given step at a time; the rendition cache's own lock keeps workers sharing it from encoding
the same rendition twice. The cache should be shared storage when workers run on several
machines, otherwise each machine encodes once for itself.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from publisher.engine import verbs
from publisher.engine.context import Context
from publisher.engine.engine import Engine, Step
from publisher.engine.release import Dispatch
from publisher.engine.results import ChannelResult, RunResult, Verb
from publisher.inputs.config import SiteConfig
from publisher.models import MasterInfo, Release
from publisher.scale.locks import RedisLocks

log = logging.getLogger("publisher.scale.worker")
QUEUE = "publisher"
STEP_TIME_LIMIT_MS = 6 * 3600 * 1000  # a long upload on a slow line is not a hung worker


def make_broker(config: SiteConfig) -> RedisBroker:
    assert config.settings.broker
    return RedisBroker(url=config.settings.broker, heartbeat_timeout=config.settings.broker_heartbeat_ms,
                       maintenance_chance=100_000)


_context: Context | None = None


def publish_step(release_id: str, channel: str) -> None:
    """One (release, channel) step, run by a worker."""
    assert _context is not None, "publish_step runs inside `publisher worker`"
    config = _context.config
    locks = RedisLocks(config.settings.broker or "", lease_seconds=config.settings.broker_heartbeat_ms / 1000)
    engine = Engine(config, _context.store, _context.state_dir, locks=locks)
    if _context.store.get_publication(release_id, channel) is None:
        log.error("step %s/%s: no such publication in the store; dropped", release_id, channel)
        return
    for r in verbs.step(engine, release_id, channel).results:
        log.info("step %s/%s: %s %s", release_id, channel, r.state, r.error)


def _actor(broker: RedisBroker) -> Any:
    return dramatiq.actor(broker=broker, actor_name="publish_step", queue_name=QUEUE,
                          max_retries=3, time_limit=STEP_TIME_LIMIT_MS)(publish_step)


def to_workers(engine: Engine) -> Dispatch:
    """Run a release's steps on the workers: one message per step (``release(dispatch=...)``)."""
    actor = _actor(make_broker(engine.config))

    def dispatch(release: Release, master: MasterInfo, steps: dict[str, Step]) -> RunResult:
        result = RunResult(release.id)
        for name in steps:
            actor.send(release.id, name)
            engine.store.add_event(release.id, Verb.QUEUED, "sent to the workers", name)
            pub = engine.store.get_publication(release.id, name)
            assert pub is not None
            result.results.append(ChannelResult.of(pub))
        return result

    return dispatch


def run_worker(config_path: Path, state_dir: Path, threads: int = 1) -> None:
    """Run one worker process until SIGTERM or SIGINT."""
    global _context
    _context = Context(config_path, state_dir)
    broker = make_broker(_context.config)
    _actor(broker)
    worker = dramatiq.Worker(broker, worker_threads=threads, queues={QUEUE})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    log.info("worker started with %d thread(s)", threads)
    stop.wait()
    worker.stop()
