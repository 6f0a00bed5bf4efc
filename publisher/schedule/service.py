"""`publisher run`: the service that completes embargoes, takes up deferred work and repeats releases.

The state store is the truth. Jobs are derived from it at start-up and every ``poll`` seconds
(``publisher.schedule.planning``) and kept only in memory (APScheduler 3.11, MemoryJobStore, never pickled):

* ``embargo:<release>`` — a DateTrigger at the release's ``publish_at`` for its ``scheduled``
  publications: ``verbs.go_live`` makes them live.
  Channels whose service flips the embargo itself (YouTube's publishAt) are confirmed the same way.
* ``retry:<release>:<channel>`` — a DateTrigger at a ``deferred`` publication's ``retry_at``.
* ``repeat:<release>:<n>`` — the manifest's ``repeat[n]`` rule: a CronTrigger (wall-clock, in the
  rule's zone) or an IntervalTrigger (``every``: exact elapsed time), ending at ``until``.
  Cron weekdays count as crontab does (0 or 7 = Sunday), not as APScheduler 3 (0 = Monday). A
  wall-clock time that occurs twice (clocks going back) fires once; one that does not exist that
  day (clocks going forward) fires an hour later, once.

Misfire policy: every job has ``coalesce=True`` and ``misfire_grace_time=None``: a run that was
due while the service was down runs once, as soon as it is back, however late, never N times.
For repeat rules the last run is kept in the store (``repeat_runs``), so missed runs are counted
across restarts and the ``repeat`` event says how many were folded into one. A publish time passed
during downtime publishes at once on start-up; the state (``live``) keeps it from running twice.

A repeat run re-publishes to each of the rule's channels that is live: it calls the adapter's
``publish`` (``verbs.repeat``) with ``job.options.repeat`` = the occurrence (its time
and, for a rule with a window, today's window). An adapter that can re-post (a new app-feed item, a new
WeChat article, a signage playlist entry for today's window) does so once per occurrence; any
other adapter's idempotent ``publish`` just confirms the copy is still live. A failed repeat
leaves the publication ``live`` and records the error. A rule with a ``window`` runs only inside
its daily window (in the rule's zone). A re-post the channel is still finishing (a new WeChat
article being published or awaiting an editor) leaves the publication ``processing``.

Publications left ``processing`` are asked for their status every ``processing_poll`` seconds
(``verbs.poll``) and recorded ``live`` or ``failed`` once the channel says so; every channel's
``housekeeping`` runs as often (ended signage items leave the playlists).

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

from publisher.engine import verbs
from publisher.engine.engine import Engine
from publisher.engine.results import Quiet, Reporter
from publisher.errors import PublisherError, ReleaseBusy
from publisher.inputs.config import Alert, SiteConfig
from publisher.models import GONE, State
from publisher.notify import Notifier
from publisher.schedule.planning import Kind, Plan, PlannedJob, plan
from publisher.store import Store, utcnow

log = logging.getLogger("publisher.schedule.service")
#: the start of a publication's error while the service cannot plan its release
UNPLANNED = "the service cannot plan this release: "
BUSY_DELAY = timedelta(seconds=0.5)  # when another process holds the release's lock
ERROR_DELAY = timedelta(seconds=30)  # after an unexpected error in a job
AGAIN_DELAY = timedelta(seconds=5)  # before running a job again that is still wanted after it ran
OVERDUE = timedelta(minutes=2)  # an embargo not lifted this long after its time needs a person


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
        self.reporter: Reporter = reporter or Quiet()
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
        self.notifier = Notifier(config)
        self._overdue: set[tuple[str, str, datetime]] = set()  # told once per service run

    def engine(self) -> Engine:
        return Engine(self.config, self.store, self.state_dir, reporter=self.reporter)

    def start(self) -> None:
        self.scheduler.start()
        self._stop.clear()
        self.sync()
        self.scheduler.add_job(self._upkeep, "interval", seconds=self.processing_poll,
                               id="upkeep", name="ask channels about processing publications; housekeeping",
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
            known = {p.release: "" for p in self.store.publications(error_prefix=UNPLANNED)}
        for rid, why in problems.items():
            if known.get(rid) != why:
                log.error("%s cannot be planned: %s", rid, why)
                self.notify(f"{rid}: cannot be planned; its jobs wait until it is fixed: {why}")
                self.notifier.about(self.store, Alert.REPEAT, rid, f"its repeat rules cannot be planned: "
                                    f"{why}", "correct the manifest, then run `publisher release` again")
                self._note(rid, why)
        for rid in set(known) - set(problems):
            self._note(rid, "")
        self._problems = dict(problems)

    def _note(self, release_id: str, why: str) -> None:
        for p in self.store.publications(release_id):
            if why and p.state not in GONE and p.error != UNPLANNED + why:
                self.store.update_publication(release_id, p.channel, error=UNPLANNED + why)
            elif not why and p.error.startswith(UNPLANNED):
                self.store.update_publication(release_id, p.channel, error="")

    def _upkeep(self) -> None:
        if self._leading is False or self._stop.is_set():
            return
        self._tell_overdue()
        for work in (verbs.poll, verbs.housekeeping):
            try:
                for line in work(self.engine()):
                    self.notify(line)
            except Exception:
                log.exception("%s; will try again", work.__name__)
        self._wake.set()  # a publication that went live may have repeat rules to plan

    def _tell_overdue(self) -> None:
        """Tell a person, once, about each embargo still not lifted ``OVERDUE`` after its time."""
        if not self.notifier.wants(Alert.OVERDUE):
            return
        try:
            late = [p for p in self.store.publications(state=State.SCHEDULED)
                    if p.publish_at is not None and p.publish_at < utcnow() - OVERDUE]
        except Exception:
            log.exception("cannot read the state store; will try again")
            return
        for p in late:
            key = (p.release, p.channel, p.publish_at or utcnow())
            if key not in self._overdue:
                self._overdue.add(key)
                self.notifier.about(
                    self.store, Alert.OVERDUE, p.release,
                    f"the embargo ended at {self.notifier.when(p.publish_at)} and it is not live yet"
                    + (f": {p.error}" if p.error else ""),
                    f"see `publisher status {p.release}` (is every channel reachable?); `publisher retry "
                    f"{p.release} --channel {p.channel}` tries again", channel=p.channel, state="overdue")

    def _run(self, job: PlannedJob) -> None:
        with self._sync_lock:
            self._running.add(job.id)
        try:
            engine = self.engine()
            if job.kind is Kind.EMBARGO:
                line = verbs.go_live(engine, job.release)
            elif job.kind is Kind.RETRY:
                line = "; ".join(f"{job.release}: retried {r.channel}: {r.state} {r.error}".rstrip()
                                 for r in verbs.resume(engine, job.release, job.channels[0]).results)
            else:
                line = verbs.repeat(engine, job.release, job.rule)
            if line:
                self.notify(line)
            # an embargo or retry that is still wanted after running (the channel said "not yet")
            # is looked at again after a pause, not in a tight loop
            self._not_before[job.id] = utcnow() + AGAIN_DELAY
        except ReleaseBusy:
            self._not_before[job.id] = utcnow() + BUSY_DELAY
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
        if job.kind is Kind.REPEAT:
            self.notifier.about(self.store, Alert.REPEAT, job.release,
                                f"repeat rule {job.rule} could not run: {message}",
                                f"publisher tries again in {ERROR_DELAY.seconds} s; if it keeps failing, "
                                "correct the rule or the channel and run `publisher release` again")
