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

from publisher.checks import Prepared, build_channels
from publisher.config import SiteConfig
from publisher.context import Context
from publisher.locks import RedisLocks
from publisher.orchestrator import ChannelResult, Orchestrator, RunResult

log = logging.getLogger("publisher.worker")
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
    ctx = _context
    store, config = ctx.store, ctx.config
    release, master = store.get_release(release_id), store.get_master(release_id)
    if release is None or master is None or channel not in config.options:
        log.error("step %s/%s: release or channel unknown here; dropped", release_id, channel)
        return
    channels, problems = build_channels(config, release, [channel], ctx.state_dir)
    if problems:
        store.update_publication(release_id, channel, state="failed", error=str(problems[0]))
        return
    locks = RedisLocks(config.settings.broker or "", lease_seconds=config.settings.broker_heartbeat_ms / 1000)
    orch = Orchestrator(config, store, ctx.state_dir, locks=locks)
    with locks.hold(f"step-{release_id}-{channel}"):
        result = orch.run(release, master, channels)
    for r in result.results:
        log.info("step %s/%s: %s %s", release_id, channel, r.state, r.error)


def _actor(broker: RedisBroker) -> Any:
    return dramatiq.actor(broker=broker, actor_name="publish_step", queue_name=QUEUE,
                          max_retries=3, time_limit=STEP_TIME_LIMIT_MS)(publish_step)


def enqueue(orch: Orchestrator, manifest: Path, only: list[str] | None = None) -> RunResult:
    """Check and record the release, then send one message per channel with work to do."""
    prep = orch.prepare(manifest, only)
    if orch.approval_gap(prep):
        return orch.submit(prep)
    return enqueue_prepared(orch, prep)


def enqueue_prepared(orch: Orchestrator, prep: Prepared) -> RunResult:
    """Record a prepared (and, where required, approved) release and send its steps."""
    result = RunResult(prep.release.id, warnings=prep.warnings)
    with orch.lock(prep.release.id):
        orch.store.save_release(prep.release, prep.master, prep.hashes)
        todo = orch.select(prep.release, prep.channels, result)
        actor = _actor(make_broker(orch.config))
        for name in todo:
            actor.send(prep.release.id, name)
            orch.store.add_event(prep.release.id, "queued", "sent to the workers", name)
            pub = orch.store.get_publication(prep.release.id, name)
            assert pub is not None
            result.results.append(ChannelResult.of(pub))
    return result


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
