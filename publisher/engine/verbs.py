"""The verbs that work on a recorded release: retry, withdraw, cancel, verify, repair, and the
service's go-live, repeat, poll and housekeeping, and a scale-out worker's step.

Each takes the release's lock and the stored release through ``Engine.on_release`` and runs its
steps through ``Engine.run_steps``; none repeats that sequence itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from publisher.contract import Embargo, Job, Journal, Occurrence, StepOptions, redact
from publisher.engine.engine import Engine
from publisher.engine.release import awaiting
from publisher.engine.results import Call, ChannelResult, RunResult, Verb
from publisher.errors import PublisherError, ReleaseBusy
from publisher.inputs.rules import in_window, occurrences, repeat_trigger, window_today
from publisher.models import GONE, Publication, Release, State

log = logging.getLogger("publisher.engine")
RETRYABLE = (State.FAILED, State.DEFERRED, State.PENDING, State.PROCESSING)
NOT_LIVE_YET = (State.SCHEDULED, State.PENDING, State.DEFERRED, State.FAILED)


def retry(engine: Engine, release_id: str, channel: str | None = None) -> RunResult:
    """Continue failed, deferred or interrupted publications from their journals.
    With ``--channel`` a cancelled publication is taken up again too (it undoes a cancel)."""
    awaiting(engine, release_id)
    return _take_up(engine, release_id, channel, RETRYABLE + ((State.CANCELLED,) if channel else ()))


def resume(engine: Engine, release_id: str, channel: str) -> RunResult:
    """The service taking up a deferred publication at its retry time."""
    return _take_up(engine, release_id, channel, (State.DEFERRED,))


def _take_up(engine: Engine, release_id: str, channel: str | None, wanted: tuple[State, ...]) -> RunResult:
    with engine.on_release(release_id, Verb.RETRY, channel) as work:
        todo = [p.channel for p in work.pubs if p.state in wanted]
        result = work.run({name: Call.PUBLISH for name in todo})
    result.warnings += [f"{p.channel}: {p.state}, nothing to retry"
                        for p in work.pubs if p.channel not in todo]
    return result


def withdraw(engine: Engine, release_id: str, channel: str | None = None,
             keep_private: bool = False) -> RunResult:
    """Take the release down on every channel (or one) by its stored remote ids."""
    with engine.on_release(release_id, Verb.WITHDRAW, channel) as work:
        todo = [p.channel for p in work.pubs if p.state not in GONE]
        note = f"withdraw from {', '.join(todo) or 'nothing'}" + (" (keep private)" if keep_private else "")
        return work.run({name: Call.WITHDRAW for name in todo}, StepOptions(keep_private=keep_private),
                        note=note)


def cancel(engine: Engine, release_id: str, channel: str | None = None) -> RunResult:
    """Cancel what has not gone live yet (embargoed, pending, deferred, failed).

    A channel whose service lifts the embargo itself (YouTube's publishAt) is told to keep the
    item private, so nothing goes public behind publisher's back. Live copies are left alone:
    that is `withdraw`.
    """
    with engine.on_release(release_id, Verb.CANCEL, channel) as work:
        todo = [p for p in work.pubs if p.state in NOT_LIVE_YET]
        channels, _ = engine.adapters(work.release, [p.channel for p in todo])
        private = {p.channel: Call.WITHDRAW for p in todo if p.state is State.SCHEDULED
                   and p.channel in channels and channels[p.channel].embargo is Embargo.SERVICE}
        result = work.run(private, StepOptions(keep_private=True), note=f"cancel of "
                          f"{', '.join(p.channel for p in todo) or 'nothing'}")
        failed = {r.channel for r in result.results if r.channel in private and r.state is State.FAILED}
        done = {p.channel: engine.finish(release_id, p.channel, State.CANCELLED, "",
                                         message=f"cancelled (was {p.state})")
                for p in todo if p.channel not in failed}
    result.results = [done.get(r.channel, r) for r in result.results]
    result.warnings += [f"{p.channel} is already live; use `publisher withdraw`"
                        for p in work.pubs if p.state is State.LIVE]
    return result


def go_live(engine: Engine, release_id: str) -> str:
    """The embargo's time has come: make every staged channel live. Returns what was done."""
    with engine.on_release(release_id, Verb.GO_LIVE) as work:
        release = work.release
        names = [p.channel for p in work.pubs if p.state is State.SCHEDULED]
        if not names or (release.publish_at and release.publish_at > engine.now()):
            return ""  # done meanwhile (another process, a cancel), or the time moved later
        started = engine.now()
        channels, missing = engine.adapters(release, names)
        result = RunResult(release_id)
        result.results += engine.run_steps(release, work.master,
                                           engine.plan_publish(release, channels, result)).results
        result.results += [engine.gone(release_id, n, Verb.GO_LIVE) for n in missing]
        lag = (started - release.publish_at).total_seconds() if release.publish_at else 0.0
        states = ", ".join(f"{r.channel} {r.state}" for r in result.results) or "nothing"
        late = " (late: the service was not running at the publish time)" if lag > 5 else ""
        engine.store.add_event(release_id, Verb.GO_LIVE, f"publish time reached; started {lag:.2f} s "
                               f"after it{late}: {states}")
    return f"{release_id}: embargo lifted ({lag:.2f} s after the time): {states}"


def step(engine: Engine, release_id: str, channel: str) -> RunResult:
    """One (release, channel) publish step, as a scale-out worker runs it (under the step's
    own lock, so several workers can work on one release's channels at once)."""
    with engine.lock(release_id, channel, wait=True):
        release, master = engine.stored(release_id)
        channels, missing = engine.adapters(release, [channel])
        result = RunResult(release_id)
        steps = engine.plan_publish(release, channels, result)
        result.results += engine.run_steps(release, master, steps).results
        result.results += [engine.gone(release_id, n, Verb.RELEASE) for n in missing]
    return result


# --- verify and repair ----------------------------------------------------------------------------
@dataclass
class Verified:
    release: str
    channel: str
    stored_state: State
    remote_state: State | None  # None: the channel could not be asked
    drift: list[str]
    detail: str = ""

    @property
    def repair_command(self) -> str:
        """The command that repairs what was found on a live publication ("" when none can)."""
        if not self.drift or self.stored_state is not State.LIVE or self.remote_state is None:
            return ""
        gone = " --reupload" if self.remote_state is State.WITHDRAWN else ""
        return f"publisher repair {self.release} --channel {self.channel}{gone}"


def verify(engine: Engine, pubs: Iterable[Publication]) -> list[Verified]:
    """Ask each channel what is there now and compare it with the store. Changes nothing."""
    out: list[Verified] = []
    releases: dict[str, Release | None] = {}
    for p in pubs:
        if p.state in (State.PENDING, State.CANCELLED):
            continue
        if p.release not in releases:
            releases[p.release] = engine.store.get_release(p.release)
        release = releases[p.release]
        if release is None or p.channel not in engine.config.options:
            out.append(Verified(p.release, p.channel, p.state, None,
                                [f"channel '{p.channel}' is no longer in the config"]))
            continue
        try:
            channels, _ = engine.adapters(release, [p.channel])
            remote = channels[p.channel].status(Job(release=release, journal=Journal(p.journal),
                                                    publication=p, clock=engine.clock))
        except PublisherError as exc:
            out.append(Verified(p.release, p.channel, p.state, None,
                                [f"could not ask the channel: {redact(str(exc))}"]))
            continue
        drift = list(remote.drift)
        if remote.state != p.state and not _expected_difference(p, remote.state, engine.now()):
            drift.append(f"state: store says {p.state}, channel says {remote.state}")
        for name in ("remote_id", "url", "checksum"):
            mine, theirs = getattr(p, name), getattr(remote, name)
            if mine and theirs and mine != theirs and p.state is State.LIVE:
                drift.append(f"{name}: store has {mine}, channel has {theirs}")
        out.append(Verified(p.release, p.channel, p.state, remote.state, drift, remote.detail))
    return out


def _expected_difference(p: Publication, remote: State, now: datetime) -> bool:
    """Differences that are not drift: work in progress, or a service that lifted its own embargo."""
    if p.state in (State.FAILED, State.DEFERRED) and remote is State.PENDING:
        return True
    if {p.state, remote} == {State.LIVE, State.PROCESSING}:
        return True
    return (p.state is State.SCHEDULED and remote is State.LIVE and p.publish_at is not None
            and p.publish_at <= now)


def repair(engine: Engine, release_id: str, channel: str | None = None,
           reupload: bool = False) -> tuple[RunResult, list[Verified]]:
    """Send again what a live channel is missing or has different (files from the rendition
    cache, YouTube captions and metadata). A copy removed from the channel altogether is sent
    again only with ``reupload``. Returns the result and what ``verify`` finds afterwards."""
    with engine.on_release(release_id, Verb.REPAIR, channel) as work:
        found = {v.channel: v for v in verify(engine, [p for p in work.pubs if p.state is State.LIVE])}
        todo, warnings = [], []
        for name, v in found.items():
            command = v.repair_command
            if command and ("--reupload" not in command or reupload):
                todo.append(name)
            elif command:
                warnings.append(f"{name}: {'; '.join(v.drift)}; not sent again without --reupload: "
                                f"`{command}`")
        note = "; ".join(f"{n}: {'; '.join(found[n].drift)}" for n in todo) or "nothing to repair"
        result = work.run({name: Call.PUBLISH for name in todo}, StepOptions(repair=True, reupload=reupload),
                          note=note)
    result.warnings += warnings
    after = verify(engine, [p for p in engine.store.publications(release_id) if p.channel in found])
    return result, after


# --- the service's upkeep -------------------------------------------------------------------------
def repeat(engine: Engine, release_id: str, rule: int) -> str:
    """One run of the release's ``repeat[rule]``. Returns what the event log says."""
    store, zone = engine.store, engine.config.zone
    with engine.on_release(release_id, Verb.REPEAT) as work:
        release = work.release
        if rule >= len(release.repeat):
            return f"{release_id}: repeat rule {rule} no longer exists"
        spec, now = release.repeat[rule], engine.now()
        base = store.last_repeat(release_id, rule) or max(release.publish_at or work.created, work.created)
        due = occurrences(repeat_trigger(spec), base, now)
        occurrence = due[-1] if due else now
        missed = ""
        if len(due) > 1:
            first, last = (f"{t.astimezone(zone):%Y-%m-%d %H:%M %Z}" for t in (due[0], due[-2]))
            missed = (f"; {len(due) - 1} earlier run(s) were missed while the service was down "
                      f"({first} … {last}) and were coalesced into this one")
        head = f"rule {rule}: run for {occurrence.astimezone(zone):%Y-%m-%d %H:%M %Z}"
        if not in_window(spec, now):
            message = f"{head} skipped, outside the window {spec.window} ({spec.timezone}){missed}"
            store.record_repeat(release_id, rule, now, message)
            return f"{release_id}: {message}"
        live = {p.channel for p in work.pubs if p.state is State.LIVE}
        names = [c for c in spec.channels if c in live and c in engine.config.options]
        options = StepOptions(repeat=Occurrence(occurrence, window_today(spec, now)))
        result = work.run({n: Call.PUBLISH for n in names}, options, note=None)
        outcome = []
        for r in (r for r in result.results if r.channel in names):
            if r.state not in (State.LIVE, State.PROCESSING):  # a failed re-post leaves the copy live
                store.update_publication(release_id, r.channel, state=State.LIVE,
                                         error=f"repeat run of {occurrence.isoformat()} failed: {r.error}")
            done = {State.LIVE: "re-published", State.PROCESSING: f"re-publishing ({r.note or 'processing'})"}
            outcome.append(f"{r.channel} {done.get(r.state, 'failed: ' + r.error)}")
        outcome += [f"{c} skipped (no longer in the config)" for c in spec.channels
                    if c in live and c not in engine.config.options]
        outcome += [f"{c} skipped (not live)" for c in spec.channels if c not in live]
        message = f"{head}: {'; '.join(outcome) or 'nothing to do'}{missed}"
        store.record_repeat(release_id, rule, now, message)
    return f"{release_id}: {message}"


def poll(engine: Engine) -> list[str]:
    """Ask the channel of every ``processing`` publication once; record the final answers.
    Returns a line for each one that settled. A release another process holds is asked next time."""
    lines: list[str] = []
    for p in engine.store.publications(state=State.PROCESSING):
        try:
            with engine.on_release(p.release, Verb.POLL, p.channel) as work:
                pub = work.pubs[0]
                if pub.state is not State.PROCESSING or p.channel not in engine.config.options:
                    continue
                channels, _ = engine.adapters(work.release, [p.channel])

                def save(data: dict[str, object], rid: str = p.release, name: str = p.channel) -> None:
                    engine.store.save_journal(rid, name, data)

                job = Job(release=work.release, journal=Journal(pub.journal, save), publication=pub,
                          links=engine.links(p.release, p.channel), clock=engine.clock)
                settled = engine.settle(p.release, p.channel, channels[p.channel].status(job))
        except ReleaseBusy:
            continue
        except PublisherError as exc:  # cannot ask now (network, auth): asked again next time
            log.warning("%s/%s: status check failed: %s", p.release, p.channel, redact(str(exc)))
            continue
        if settled is not None:
            lines.append(_settled_line(p.release, settled))
    return lines


def _settled_line(release_id: str, r: ChannelResult) -> str:
    if r.state is State.LIVE:
        return f"{release_id}: {r.channel} now live" + (f": {r.url}" if r.url else "")
    return f"{release_id}: {r.channel} failed: {r.error}"


def housekeeping(engine: Engine) -> list[str]:
    """Periodic upkeep of every configured channel (e.g. ended signage items leave the playlists),
    and of the previews under the state folder."""
    from publisher.engine.preview import KEEP, expire_previews

    lines = [f"preview of {rid} removed ({KEEP.days} days old)"
             for rid in expire_previews(engine.state_dir, engine.now())]
    for name in engine.config.options:
        try:
            lines += [f"{name}: {line}" for line in engine.adapter(name).housekeeping(engine.now())]
        except PublisherError as exc:
            log.warning("%s: housekeeping failed: %s", name, redact(str(exc)))
    return lines
