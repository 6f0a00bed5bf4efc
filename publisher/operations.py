"""Operations on what is already released: retry, update, withdraw, cancel, approve, verify.

Each works from the state store (the stored release, master facts and publications), takes the
per-release lock around changes, goes through ``Orchestrator.attempt`` so the core's retries and
records apply, and returns data (``RunResult`` and friends); only the CLI prints.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from publisher.checks import Prepared, build_channels, content_hashes, prepare
from publisher.contract import Channel, Job, Journal, redact
from publisher.errors import FourEyes, InputError, PublisherError
from publisher.models import MasterInfo, Problem, Publication, Release, Rendition
from publisher.orchestrator import AWAITING, ChannelResult, Orchestrator, RunResult

log = logging.getLogger("publisher.operations")
GONE = ("withdrawn", "cancelled")
RETRYABLE = ("failed", "deferred", "pending", "processing")


def stored(orch: Orchestrator, release_id: str) -> tuple[Release, MasterInfo]:
    """The release and master facts as last released; an unknown id is bad input."""
    release = orch.store.get_release(release_id)
    master = orch.store.get_master(release_id)
    if release is None or master is None:
        known = orch.store.release_ids()[-5:]
        hint = f"known releases include: {', '.join(known)}" if known else "nothing is released yet"
        raise InputError(Problem("", "RELEASE", f"no release '{release_id}' in the state store",
                                 f"check the id ({hint}); `publisher status` lists them"))
    return release, master


def publications(orch: Orchestrator, release_id: str, channel: str | None) -> list[Publication]:
    pubs = orch.store.publications(release_id)
    if channel:
        pubs = [p for p in pubs if p.channel == channel]
        if not pubs:
            names = ", ".join(p.channel for p in orch.store.publications(release_id)) or "none"
            raise InputError(Problem("", "--channel", f"{release_id} has no publication on '{channel}'",
                                     f"use one of: {names}"))
    return pubs


def adapters(orch: Orchestrator, release: Release, names: list[str]) -> tuple[dict[str, Channel], list[str]]:
    """Adapters for the channels still in the config, and the names that are no longer there."""
    present = [n for n in names if n in orch.config.options]
    channels, problems = build_channels(orch.config, release, present, orch.state_dir)
    if problems:
        raise InputError(problems)
    return channels, [n for n in names if n not in orch.config.options]


def gone_from_config(orch: Orchestrator, release_id: str, name: str, verb: str) -> ChannelResult:
    pub = orch.store.get_publication(release_id, name)
    remote = f" (remote id {pub.remote_id})" if pub and pub.remote_id else ""
    return orch.finish(release_id, name, "failed",
                       f"cannot {verb}: channel '{name}' is no longer in {orch.config.path.name}{remote}; "
                       f"add it back to the config, or {verb} it by hand")


def renditions_for(orch: Orchestrator, release: Release, master: MasterInfo,
                   channels: dict[str, Channel]) -> dict[str, dict[str, Rendition]]:
    """Each channel's renditions by profile, encoding whatever the cache does not have yet."""
    requests = {name: orch.requests_for(ch, release) for name, ch in channels.items()}
    transcoder = orch.transcoder()
    plan = transcoder.plan(release, master, requests)
    ready = transcoder.run(plan, on_progress=orch.reporter.progress)
    for r in ready.values():
        orch.store.record_rendition(r.key, r.profile, r.folder, release.id)
    return {name: {req.profile: ready[plan.key_for(name, req)] for req in reqs}
            for name, reqs in requests.items()}


# --- retry ----------------------------------------------------------------------------------------
def retry(orch: Orchestrator, release_id: str, channel: str | None = None) -> RunResult:
    """Continue failed, deferred or interrupted publications from their journals.

    With ``--channel`` a cancelled publication is taken up again too (it undoes a cancel).
    """
    release, master = stored(orch, release_id)
    awaiting(orch, release_id)
    wanted = RETRYABLE + (("cancelled",) if channel else ())
    pubs = publications(orch, release_id, channel)
    todo = [p.channel for p in pubs if p.state in wanted]
    result = RunResult(release_id)
    with orch.lock(release_id):
        channels, missing = adapters(orch, release, todo)
        orch.store.add_event(release_id, "retry", f"retry of {', '.join(todo) or 'nothing'}")
        if channels:
            result = orch.run(release, master, channels, force=True)
        result.results += [gone_from_config(orch, release_id, n, "retry") for n in missing]
    for p in pubs:
        if p.channel not in todo:
            result.results.append(ChannelResult.of(p))
            result.warnings.append(f"{p.channel}: {p.state}, nothing to retry")
    return result


# --- update ---------------------------------------------------------------------------------------
def update(orch: Orchestrator, manifest: Path) -> RunResult:
    """Push changed titles, descriptions, captions and thumbnail to every live (or staged) copy."""
    prep = prepare(orch.config, manifest, orch.state_dir)
    release = prep.release
    old_release, old_master = stored(orch, release.id)
    if old_master.sha256 != prep.master.sha256:
        raise InputError(Problem(
            str(release.manifest_path), "master",
            f"the master changed (sha256 {old_master.sha256[:12]}… → {prep.master.sha256[:12]}…): "
            "a changed master is a new release version, not an update",
            f"give the manifest a new id (e.g. {release.id}-v2) and run `publisher release`"))
    if orch.approval_gap(prep):
        orch.store.add_event(release.id, "submit", f"update {AWAITING}")
        orch.check_approval(prep)
    result = RunResult(release.id, warnings=list(prep.warnings))
    with orch.lock(release.id):
        pubs = {p.channel: p for p in orch.store.publications(release.id)}
        targets = [n for n, p in pubs.items() if p.state in ("live", "scheduled")]
        channels, missing = adapters(orch, release, targets)
        orch.store.save_release(release, prep.master, prep.hashes)
        orch.store.add_event(release.id, "update", f"update of {', '.join(targets) or 'nothing'}")
        if release.publish_at != old_release.publish_at:
            moved = [n for n, p in pubs.items() if p.state not in ("live", "withdrawn", "cancelled")]
            for name in moved:  # the scheduler plans from these
                orch.store.update_publication(release.id, name, publish_at=release.publish_at)
            orch.store.add_event(release.id, "embargo", f"publish time moved from {old_release.publish_at} "
                                 f"to {release.publish_at} for {', '.join(moved) or 'nothing'}")
        renditions = renditions_for(orch, release, prep.master, channels) if channels else {}
        for name, ch in channels.items():
            result.results.append(orch.attempt(
                release, name, ch, "update", renditions=renditions[name],
                stage_only=pubs[name].state == "scheduled"))
        result.results += [gone_from_config(orch, release.id, n, "update") for n in missing]
    for name, p in pubs.items():
        if name not in targets:
            result.results.append(ChannelResult.of(p))
            result.warnings.append(f"{name}: {p.state}, not updated (it is not live)")
    for name in prep.channels:
        if name not in pubs:
            result.warnings.append(f"{name}: not released yet; run `publisher release --only {name}`")
    return result


# --- withdraw and cancel --------------------------------------------------------------------------
def withdraw(orch: Orchestrator, release_id: str, channel: str | None = None,
             keep_private: bool = False) -> RunResult:
    """Take the release down on every channel (or one) by its stored remote ids."""
    release, _ = stored(orch, release_id)
    pubs = publications(orch, release_id, channel)
    result = RunResult(release_id)
    with orch.lock(release_id):
        todo = [p.channel for p in pubs if p.state not in GONE]
        channels, missing = adapters(orch, release, todo)
        orch.store.add_event(release_id, "withdraw", f"withdraw from {', '.join(todo) or 'nothing'}"
                             + (" (keep private)" if keep_private else ""))
        for name, ch in channels.items():
            result.results.append(orch.attempt(release, name, ch, "withdraw",
                                               extra={"keep_private": keep_private}))
        result.results += [gone_from_config(orch, release_id, n, "withdraw") for n in missing]
    for p in pubs:
        if p.channel not in todo:
            result.results.append(ChannelResult.of(p))
    order = [p.channel for p in pubs]
    result.results.sort(key=lambda r: order.index(r.channel) if r.channel in order else len(order))
    return result


def cancel(orch: Orchestrator, release_id: str, channel: str | None = None) -> RunResult:
    """Cancel what has not gone live yet (embargoed, pending, deferred).

    Channels whose service flips an embargo itself (YouTube's publishAt) are told to keep the
    item private, so nothing goes public behind publisher's back. Live copies are left alone:
    that is `withdraw`.
    """
    release, _ = stored(orch, release_id)
    pubs = publications(orch, release_id, channel)
    result = RunResult(release_id)
    with orch.lock(release_id):
        todo = [p for p in pubs if p.state in ("scheduled", "pending", "deferred", "failed")]
        channels, _missing = adapters(orch, release, [p.channel for p in todo])
        for p in todo:
            ch = channels.get(p.channel)
            if ch is not None and ch.embargo == "service" and p.state == "scheduled":
                r = orch.attempt(release, p.channel, ch, "withdraw",
                                 extra={"keep_private": True, "cancel": True})
                if r.state == "failed":
                    result.results.append(r)
                    continue
            result.results.append(orch.finish(release_id, p.channel, "cancelled", "",
                                              message=f"cancelled (was {p.state})"))
        for p in pubs:
            if p not in todo:
                result.results.append(ChannelResult.of(p))
                if p.state == "live":
                    result.warnings.append(f"{p.channel} is already live; use `publisher withdraw`")
    return result


# --- approval -------------------------------------------------------------------------------------
@dataclass
class Approval:
    release: str
    approved_by: str
    hashes: dict[str, str]
    previous: dict[str, str] = field(default_factory=dict)  # the hashes approved before, if any
    prep: Prepared | None = None
    submitted: bool = False  # a submission was awaiting this approval


def awaiting(orch: Orchestrator, release_id: str) -> None:
    """Refuse to send anything of a release that is still awaiting approval."""
    if any(p.note == AWAITING for p in orch.store.publications(release_id, state="pending")):
        raise InputError(Problem("", "RELEASE", f"{release_id} is {AWAITING}",
                                 f"an approver other than {submitter(orch, release_id) or 'its submitter'} "
                                 "approves it, and it is released then"))


def submitter(orch: Orchestrator, release_id: str) -> str:
    """Who last submitted, released or changed the release."""
    return orch.store.last_actor(release_id, ("submit", "release", "update"))


def approve(orch: Orchestrator, manifest: Path, by: str | None = None,
            seen: dict[str, str] | None = None) -> Approval:
    """Record who approved exactly which bytes: master, captions, thumbnail and manifest.

    The approver is the person the orchestrator acts for (the console login, or the Unix user);
    ``by`` is only a label. With ``require_approval`` it must not be the person who submitted,
    released or last changed the release. ``seen`` binds the approval to the hashes the approver
    was shown: content that changed since is refused.
    """
    prep = prepare(orch.config, manifest, orch.state_dir)
    rid = prep.release.id
    who = orch.actor or getpass.getuser()
    label = (by or "").strip()
    hashes = content_hashes(prep.release, prep.master)
    if orch.config.settings.require_approval and submitter(orch, rid) == who:
        raise FourEyes(Problem(str(manifest), "", f"{who} submitted {rid}, so cannot also approve it",
                               "another person with the approver role approves it (four eyes)"))
    if seen is not None and seen != hashes:
        changed = sorted(k for k in set(seen) | set(hashes) if seen.get(k) != hashes.get(k))
        raise InputError(Problem(str(manifest), ", ".join(changed), "changed since you looked at it",
                                 "look at the release again and approve what it is now"))
    before = orch.store.approval(rid)
    waiting = any(p.note == AWAITING for p in orch.store.publications(rid, state="pending"))
    orch.store.save_approval(rid, who, hashes)
    shown = f"{who} (as {label})" if label and label != who else who
    orch.store.add_event(rid, "approve", f"approved by {shown}: " + ", ".join(
        f"{k} {v[:12]}" for k, v in sorted(hashes.items())))
    return Approval(rid, who, hashes, before[2] if before else {}, prep, waiting)


# --- verify ---------------------------------------------------------------------------------------
@dataclass
class Verified:
    release: str
    channel: str
    stored_state: str
    remote_state: str
    drift: list[str]
    detail: str = ""


def verify(orch: Orchestrator, pubs: list[Publication]) -> list[Verified]:
    """Ask each channel what is there now and compare it with the store. Changes nothing."""
    out: list[Verified] = []
    releases: dict[str, Release | None] = {}
    for p in pubs:
        if p.state in ("pending", "cancelled"):
            continue
        if p.release not in releases:
            releases[p.release] = orch.store.get_release(p.release)
        release = releases[p.release]
        if release is None or p.channel not in orch.config.options:
            out.append(Verified(p.release, p.channel, p.state, "unknown",
                                [f"channel '{p.channel}' is no longer in the config"]))
            continue
        try:
            channels, _ = adapters(orch, release, [p.channel])
            remote = channels[p.channel].status(Job(release=release, journal=Journal(p.journal),
                                                    publication=p, now=orch.now))
        except PublisherError as exc:
            out.append(Verified(p.release, p.channel, p.state, "unknown",
                                [f"could not ask the channel: {redact(str(exc))}"]))
            continue
        drift = list(remote.drift)
        if remote.state != p.state and not _expected_difference(p, remote.state, orch.now()):
            drift.append(f"state: store says {p.state}, channel says {remote.state}")
        for name in ("remote_id", "url", "checksum"):
            mine, theirs = getattr(p, name), getattr(remote, name)
            if mine and theirs and mine != theirs and p.state == "live":
                drift.append(f"{name}: store has {mine}, channel has {theirs}")
        out.append(Verified(p.release, p.channel, p.state, remote.state, drift, remote.detail))
    return out


def _expected_difference(p: Publication, remote: str, now: datetime) -> bool:
    """Differences that are not drift: work in progress, or a service that lifted its own embargo."""
    if p.state in ("failed", "deferred") and remote == "pending":
        return True
    if {p.state, remote} == {"live", "processing"}:
        return True
    return p.state == "scheduled" and remote == "live" and p.publish_at is not None and p.publish_at <= now
