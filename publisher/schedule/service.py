"""`publisher run`: the service that completes embargoes, takes up deferred work and repeats releases.

The state store is the truth. Jobs are derived from it at start-up and every ``poll`` seconds
(``publisher.schedule.planning``) and kept only in memory (APScheduler 3.11, MemoryJobStore, never pickled):

* ``embargo:<release>`` — a DateTrigger at the release's ``publish_at`` for its ``scheduled``
  publications: ``Orchestrator.run`` makes them live (stage_only is False once the time has come).
  Channels whose service flips the embargo itself (YouTube's publishAt) are confirmed the same way.
* ``retry:<release>:<channel>`` — a DateTrigger at a ``deferred`` publication's ``retry_at``.
* ``repeat:<release>:<n>`` — the manifest's ``repeat[n]`` rule: a CronTrigger (wall-clock, in the
  rule's zone) or an IntervalTrigger (``every``: exact elapsed time), ending at ``until``.
  Cron weekdays count as crontab does (0 or 7 = Sunday), not as APScheduler 3 (0 = Monday). A
  wall-clock time that occurs twice (clocks going back) fires once; one that does not exist that
  day (clocks going forward) fires an hour later, once.

Misfire policy: every job has ``coalesce=True`` and ``misfire_grace_time=None``: a run that was
due while the service was down runs once, as soon as it is back, however late, never N times.
For repeat rules the last run is read back from the event log, so missed runs are counted across
restarts and the ``repeat`` event says how many were folded into one. A publish time passed
during downtime publishes at once on start-up; the state (``live``) keeps it from running twice.

A repeat run re-publishes to each of the rule's channels that is live: it calls the adapter's
``publish`` through ``Orchestrator.attempt`` with ``job.options.repeat`` = the occurrence (its time
and, for a rule with a window, today's window). An adapter that can re-post (a new app-feed item, a new
WeChat article, a signage playlist entry for today's window) does so once per occurrence; any
other adapter's idempotent ``publish`` just confirms the copy is still live. A failed repeat
leaves the publication ``live`` and records the error. A rule with a ``window`` runs only inside
its daily window (in the rule's zone). A re-post the channel is still finishing (a new WeChat
article being published or awaiting an editor) leaves the publication ``processing``.

Publications left ``processing`` are asked for their status every ``processing_poll`` seconds
(``publisher.engine.polling``) and recorded ``live`` or ``failed`` once the channel says so.

Isolation: a release that cannot be planned is logged once and its publications' ``error`` says
why (cleared when it can be planned again); a job that fails is retried after ``ERROR_DELAY`` with
its error on the publications. Neither holds up any other release. On every poll the service
writes a heartbeat (``Store.beat``), by which `publisher release` knows whether one is alive.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from publisher.contract import Occurrence, StepOptions
from publisher.engine.operations import adapters, gone_from_config, renditions_for, stored
from publisher.engine.orchestrator import Orchestrator, Reporter
from publisher.engine.polling import poll_processing
from publisher.errors import InputError, PublisherError
from publisher.inputs.config import SiteConfig
from publisher.inputs.rules import in_window, occurrences, repeat_trigger, window_today
from publisher.schedule.planning import Plan, PlannedJob, last_repeat, plan, planned_jobs, repeat_start
from publisher.store import PublicationRow, ReleaseRow, Store, utcnow

__all__ = ["Plan", "PlannedJob", "Service", "plan", "planned_jobs", "repeat_run"]

log = logging.getLogger("publisher.schedule.service")
#: the start of a publication's error while the service cannot plan its release
UNPLANNED = "the service cannot plan this release: "
BUSY_DELAY = timedelta(seconds=0.5)  # when another process holds the release's lock
ERROR_DELAY = timedelta(seconds=30)  # after an unexpected error in a job
AGAIN_DELAY = timedelta(seconds=5)  # before running a job again that is still wanted after it ran


# --- the service ---------------------------------------------------------------------------------
class Service:
    """Runs the jobs the store asks for. ``notify`` receives one line per thing done (the CLI prints)."""

    def __init__(self, config: SiteConfig, store: Store, state_dir: Path, *, poll: float = 2.0,
                 notify: Callable[[str], None] | None = None, reporter: Reporter | None = None,
                 leader: Callable[[], bool] | None = None, processing_poll: float = 60.0) -> None:
        self.config = config
        self.store = store
        self.state_dir = state_dir
        self.poll = poll
        self.processing_poll = processing_poll
        self.notify = notify or (lambda text: log.info("%s", text))
        self.reporter = reporter or Reporter()
        self.scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(8)},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1})
        self._sync_lock = threading.Lock()
        self._signatures: dict[str, str] = {}
        self._running: set[str] = set()
        self._not_before: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._poller: threading.Thread | None = None
        #: with several instances (scale-out), only the one for which ``leader()`` is True runs jobs
        self.leader = leader
        self._leading: bool | None = None
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._problems: dict[str, str] | None = None  # None: not looked yet (stale notes to clear)

    def orchestrator(self) -> Orchestrator:
        return Orchestrator(self.config, self.store, self.state_dir, reporter=self.reporter)

    def start(self) -> None:
        self.scheduler.start()
        self._stop.clear()
        self.sync()
        self.scheduler.add_job(self._poll_processing, "interval", seconds=self.processing_poll,
                               id="processing", name="ask channels about processing publications",
                               next_run_time=utcnow(), replace_existing=True)
        self._poller = threading.Thread(target=self._poll_loop, name="publisher-sync", daemon=True)
        self._poller.start()
        self.notify(f"service started; polling the store every {self.poll:g} s")

    def stop(self, wait: bool = True) -> None:
        # The poller is stopped first: APScheduler's shutdown holds its job-store lock while it
        # waits for running jobs, so nothing may call into the scheduler from then on.
        self._stop.set()
        self._wake.set()
        if self._poller is not None:
            self._poller.join()
            self._poller = None
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        self.notify("service stopped")

    def serve(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT)."""
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    def _poll_loop(self) -> None:
        """Look at the store every ``poll`` seconds, or at once when a job asks (``_wake``)."""
        while not self._stop.is_set():
            self._wake.wait(self.poll)
            self._wake.clear()
            if not self._stop.is_set():
                self.sync()

    def sync(self) -> None:
        """Make the scheduler's jobs match what the store says should happen."""
        try:
            self.store.beat(self.instance, self.poll)
            leading = self.leader() if self.leader is not None else True
            planned = plan(self.store) if leading else Plan([], {})
            if leading:
                self._report(planned.problems)
        except Exception:
            log.exception("cannot read the state store; will try again")
            return
        wanted = planned.jobs
        if leading != self._leading:
            self._leading = leading
            if self.leader is not None:
                self.notify("leading: this instance runs the jobs" if leading
                            else "standby: another instance leads; taking over if it stops")
        with self._sync_lock:
            now = utcnow()
            ids = {j.id for j in wanted}
            for job_id in list(self._signatures):
                if job_id not in ids:
                    self._signatures.pop(job_id)
                    if self.scheduler.get_job(job_id):
                        self.scheduler.remove_job(job_id)
            for j in wanted:
                if j.id in self._running:
                    continue
                present = self.scheduler.get_job(j.id) is not None
                if present and self._signatures.get(j.id) == j.signature:
                    continue
                hold = self._not_before.get(j.id)
                start = max(j.next_run, hold) if hold and hold > now else j.next_run
                try:
                    self.scheduler.add_job(self._run, trigger=j.trigger, args=(j,), id=j.id,
                                           name=j.description, next_run_time=start, replace_existing=True)
                except Exception as exc:  # one job the scheduler cannot hold does not stop the others
                    log.exception("job %s", j.id)
                    self._note(j.release, f"{type(exc).__name__}: {exc}")
                self._signatures[j.id] = j.signature

    def _report(self, problems: dict[str, str]) -> None:
        """Log a release that cannot be planned once, and show why in its publications' error;
        clear that when it can be planned again."""
        known = self._problems
        if known is None:  # first look: clear what an earlier run noted and is no longer true
            q = select(PublicationRow.release_id).where(PublicationRow.error.like(UNPLANNED + "%"))
            with self.store.session() as s:
                known = {rid: "" for rid in s.scalars(q)}
        for rid, why in problems.items():
            if known.get(rid) != why:
                log.error("%s cannot be planned: %s", rid, why)
                self.notify(f"{rid}: cannot be planned; its jobs wait until it is fixed: {why}")
                self._note(rid, why)
        for rid in set(known) - set(problems):
            self._note(rid, "")
        self._problems = dict(problems)

    def _note(self, release_id: str, why: str) -> None:
        for p in self.store.publications(release_id):
            if why and p.state not in ("withdrawn", "cancelled") and p.error != UNPLANNED + why:
                self.store.update_publication(release_id, p.channel, error=UNPLANNED + why)
            elif not why and p.error.startswith(UNPLANNED):
                self.store.update_publication(release_id, p.channel, error="")

    def _poll_processing(self) -> None:
        if self._leading is False or self._stop.is_set():
            return
        try:
            for line in poll_processing(self.orchestrator()):
                self.notify(line)
        except Exception:
            log.exception("checking processing publications; will try again")
        self._wake.set()  # a publication that went live may have repeat rules to plan

    def _run(self, job: PlannedJob) -> None:
        with self._sync_lock:
            self._running.add(job.id)
        try:
            if job.kind == "embargo":
                self._embargo(job)
            elif job.kind == "retry":
                self._retry(job)
            else:
                self._repeat(job)
            # an embargo or retry that is still wanted after running (the channel said "not yet")
            # is looked at again after a pause, not in a tight loop
            self._not_before[job.id] = utcnow() + AGAIN_DELAY
        except InputError as exc:
            if "another publisher process" in str(exc):
                self._not_before[job.id] = utcnow() + BUSY_DELAY
            else:
                self._failed(job, str(exc))
        except PublisherError as exc:
            self._failed(job, str(exc))
        except Exception as exc:
            log.exception("job %s", job.id)
            self._failed(job, f"{type(exc).__name__}: {exc}")
        finally:
            with self._sync_lock:
                self._running.discard(job.id)
                self._signatures.pop(job.id, None)  # re-derive it from the store at once
            self._wake.set()

    def _failed(self, job: PlannedJob, message: str) -> None:
        self._not_before[job.id] = utcnow() + ERROR_DELAY
        text = f"{job.kind} job failed (tried again in {ERROR_DELAY.seconds} s): {message}"
        try:
            self.store.add_event(job.release, "error", text)
            for name in job.channels:
                if self.store.get_publication(job.release, name) is not None:
                    self.store.update_publication(job.release, name, error=text)
        except Exception:
            log.exception("recording the failure of %s", job.id)
        self.notify(f"{job.release}: {text}")

    def _embargo(self, job: PlannedJob) -> None:
        orch = self.orchestrator()
        with orch.lock(job.release):
            release, master = stored(orch, job.release)
            names = [p.channel for p in self.store.publications(job.release, state="scheduled")]
            if not names:
                return  # done meanwhile (another process, or a cancel)
            if release.publish_at and release.publish_at > utcnow():
                return  # the time moved (an update); the next sync plans the new one
            started = utcnow()
            channels, missing = adapters(orch, release, names)
            result = orch.run(release, master, channels) if channels else None  # stage_only is now False
            for name in missing:
                gone_from_config(orch, release.id, name, "publish")
            lag = (started - release.publish_at).total_seconds() if release.publish_at else 0.0
            states = ", ".join(f"{r.channel} {r.state}" for r in result.results) if result else "nothing"
            late = " (late: the service was not running at the publish time)" if lag > 5 else ""
            self.store.add_event(release.id, "embargo", f"publish time reached; started {lag:.2f} s "
                                 f"after it{late}: {states}")
            self.notify(f"{release.id}: embargo lifted ({lag:.2f} s after the time): {states}")

    def _retry(self, job: PlannedJob) -> None:
        orch = self.orchestrator()
        name = job.channels[0]
        with orch.lock(job.release):
            release, master = stored(orch, job.release)
            pub = self.store.get_publication(job.release, name)
            if pub is None or pub.state != "deferred":
                return
            channels, missing = adapters(orch, release, [name])
            if missing:
                gone_from_config(orch, release.id, name, "retry")
                return
            result = orch.run(release, master, channels)
            for r in result.results:
                self.notify(f"{release.id}: retried {r.channel}: {r.state} {r.error}".rstrip())

    def _repeat(self, job: PlannedJob) -> None:
        orch = self.orchestrator()
        with orch.lock(job.release):
            self.notify(repeat_run(orch, job.release, job.rule))


def repeat_run(orch: Orchestrator, release_id: str, rule: int) -> str:
    """One run of ``repeat[rule]`` (the caller holds the lock). Returns what the event log says."""
    release, master = stored(orch, release_id)
    if rule >= len(release.repeat):
        return f"{release_id}: repeat rule {rule} no longer exists"
    spec = release.repeat[rule]
    now = orch.now()
    with orch.store.session() as s:
        created = s.scalar(select(ReleaseRow.created_at).where(ReleaseRow.id == release_id)) or now
    base = last_repeat(orch.store, release_id, rule) or repeat_start(release, created)
    due = occurrences(repeat_trigger(spec), base, now)
    occurrence = due[-1] if due else now
    zone = orch.config.zone
    missed = ""
    if len(due) > 1:
        first, last = (f"{t.astimezone(zone):%Y-%m-%d %H:%M %Z}" for t in (due[0], due[-2]))
        missed = (f"; {len(due) - 1} earlier run(s) were missed while the service was down "
                  f"({first} … {last}) and were coalesced into this one")
    head = f"rule {rule}: run for {occurrence.astimezone(zone):%Y-%m-%d %H:%M %Z}"
    if not in_window(spec, now):
        message = f"{head} skipped, outside the window {spec.window} ({spec.timezone}){missed}"
        orch.store.add_event(release_id, "repeat", message)
        return f"{release_id}: {message}"
    live = {p.channel: p for p in orch.store.publications(release_id, state="live")}
    names = [c for c in spec.channels if c in live]
    channels, missing = adapters(orch, release, names)
    step = StepOptions(repeat=Occurrence(occurrence, window_today(spec, now)))
    renditions = renditions_for(orch, release, master, channels) if channels else {}
    outcome = []
    for name, ch in channels.items():
        r = orch.attempt(release, name, ch, "publish", renditions=renditions[name], options=step)
        if r.state not in ("live", "processing"):  # processing: the polling finishes it
            orch.store.update_publication(release_id, name, state="live",
                                          error=f"repeat run of {occurrence.isoformat()} failed: {r.error}")
        done = {"live": "re-published", "processing": f"re-publishing ({r.note or 'processing'})"}
        outcome.append(f"{name} {done.get(r.state, 'failed: ' + r.error)}")
    outcome += [f"{n} skipped (no longer in the config)" for n in missing]
    skipped = [c for c in spec.channels if c not in live]
    outcome += [f"{c} skipped (not live)" for c in skipped]
    message = f"{head}: {'; '.join(outcome) or 'nothing to do'}{missed}"
    orch.store.add_event(release_id, "repeat", message)
    return f"{release_id}: {message}"
