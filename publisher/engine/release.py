"""The verbs that start from a manifest: release, update and approve.

``release`` checks everything on snapshots of the files (what was checked is what is published),
then either records the release awaiting approval (four eyes: nothing sent) or records it and
runs a step per channel with work to do. A re-run converges: a channel carrying an older version
of the texts or files gets an update, an unchanged one nothing, and a changed master is refused
(a new master is a new release).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from publisher.contract import Embargo
from publisher.engine import drafts
from publisher.engine.content import CONTENT, changes, fingerprint, master_changed
from publisher.engine.engine import Engine, Step
from publisher.engine.faults import pause_point
from publisher.engine.pipeline import CHECKED
from publisher.engine.results import Call, ChannelResult, RunResult, Verb
from publisher.errors import FourEyes, InputError, StoreError
from publisher.inputs.checks import Prepared, prepare
from publisher.inputs.manifest import PastCheck
from publisher.inputs.media import decode_check
from publisher.inputs.snapshots import Snapshots
from publisher.models import GONE, SHOWN, MasterInfo, Problem, Publication, Release, State
from publisher.times import local, span

AWAITING = "awaiting approval"
ALIVE_POLLS = 3  # a `publisher run` is alive when it looked at the store within this many polls


def check(engine: Engine, manifest: Path, only: list[str] | None = None, *, now: bool = False,
          snapshots: Snapshots | None = None, decode: bool = True) -> Prepared:
    """Everything that can be known before anything is sent. A publish_at that has passed is
    refused for a release not recorded yet, unless ``now`` (`release --now`: publish at once).
    ``decode=False`` leaves the master's full decode pass to the encode (``release``)."""
    past = None if now else PastCheck(engine.config.zone, engine.store.has_release, engine.now())
    prep = prepare(engine.config, manifest, engine.state_dir, only, past, snapshots, engine.store.accounts,
                   decode=decode)
    at = prep.release.publish_at
    if now and at is not None and at > engine.now():
        raise InputError(Problem(
            str(prep.release.manifest_path), "publish_at",
            f"--now publishes a release whose publish_at has passed, but {local(at, engine.config.zone)}"
            " is still to come", "leave out --now to keep the embargo, or change publish_at"))
    return prep


def admit(engine: Engine, manifest: Path, only: list[str] | None = None, *, now: bool = False,
          snapshots: Snapshots | None = None, decode: bool = True) -> Prepared:
    """Check the release on snapshots of its files. A refused release leaves no snapshot behind."""
    snapshots = snapshots or engine.snapshots()
    try:
        prep = check(engine, manifest, only, now=now, snapshots=snapshots, decode=decode)
        refuse_changed_since_approval(engine, prep)
    except InputError:
        snapshots.discard_new()
        raise
    return prep


def decode_master(engine: Engine, prep: Prepared, snapshots: Snapshots) -> None:
    """The full decode pass that ``admit(decode=False)`` left out, here and now."""
    if prep.decoded:
        return
    try:
        decode_check(snapshots.find(prep.release.master, prep.master.sha256), shown_as=prep.release.master)
    except InputError:
        snapshots.discard_new()
        raise
    prep.decoded = True


#: runs a release's steps: here and now (``Engine.run_steps``), or on the workers (scale-out)
Dispatch = Callable[[Release, MasterInfo, dict[str, Step]], RunResult]


def release(engine: Engine, manifest: Path, only: list[str] | None = None, *, now: bool = False,
            dispatch: Dispatch | None = None) -> RunResult:
    snapshots = engine.snapshots()
    prep = admit(engine, manifest, only, now=now, snapshots=snapshots, decode=False)
    if approval_gap(engine, prep) or dispatch is not None:
        decode_master(engine, prep, snapshots)
    if approval_gap(engine, prep):
        return submit(engine, prep)
    pause_point("checked")
    try:
        return launch(engine, prep, dispatch=dispatch)
    except InputError:
        snapshots.discard_new()
        raise


def launch(engine: Engine, prep: Prepared, *, on_approval: bool = False,
           dispatch: Dispatch | None = None) -> RunResult:
    """Record and run a prepared release (approval, where required, already checked).
    ``on_approval``: the approval starts it, which does not make the approver its submitter."""
    event = (Verb.LAUNCH, f"released on approval by {engine.actor or 'an approver'}: "
             f"{prep.master.sha256[:12]} to {', '.join(prep.channels)}") if on_approval else None
    with engine.lock(prep.release.id):
        # a new master is checked in the encode's read; a run killed before its check ended left
        # no CHECKED event, so the next one checks again
        fresh = not engine.store.has_release(prep.release.id)
        unchecked = not prep.decoded and (fresh or not any(
            e.action == CHECKED for e in engine.store.events(prep.release.id)))
        changed = record(engine, prep, event)
        result = RunResult(prep.release.id)
        steps = engine.plan_publish(prep.release, prep.channels, result)
        try:
            if dispatch is not None:
                run = dispatch(prep.release, prep.master, steps)
            else:
                run = engine.run_steps(prep.release, prep.master, steps, unchecked=unchecked)
        except InputError:
            if unchecked and fresh:  # the master does not decode: as if this run had never been
                engine.store.forget_release(prep.release.id)
            raise
    result.results += run.results
    result.order(list(prep.channels))
    result.changes = changed
    result.warnings = prep.warnings + unattended(engine, prep) + drafts.warning(engine.store, prep.release,
                                                                               prep.hashes)
    return result


def record(engine: Engine, prep: Prepared, event: tuple[Verb, str] | None = None) -> list[str]:
    """Record the release (the caller holds its lock). A re-run refuses a changed master and
    returns what changed since the last run; those edits then go to every channel.
    ``event`` is the (verb, message) to log instead of the release's own."""
    store, rid = engine.store, prep.release.id
    try:
        old, master = store.get_release(rid), store.get_master(rid)
    except StoreError:
        old = master = None  # a damaged record is replaced by this one
    if master is not None and master.sha256 != prep.master.sha256:
        raise master_changed(prep.release, master.sha256, prep.master.sha256)
    edits: list[str] = []
    if old is not None:
        old_hashes = store.release_hashes(rid)
        edits = changes(old, old_hashes, prep.release, prep.hashes)
        sent = fingerprint(old, old_hashes)
        for pub in store.publications(rid):  # sent before fingerprints were recorded
            if pub.state in SHOWN and CONTENT not in pub.journal:
                store.save_journal(rid, pub.channel, {**pub.journal, CONTENT: sent})
    store.save_release(prep.release, prep.master, prep.hashes)
    changed = f"; changed: {', '.join(edits)}" if edits else ""
    title = " ".join(prep.release.text("title").split()) or rid
    store.add_event(rid, *(event or (Verb.RELEASE, f"release of “{title}” to "
                                                   f"{', '.join(prep.channels)}{changed}")))
    return edits


def unattended(engine: Engine, prep: Prepared) -> list[str]:
    """A warning when embargoed channels wait for a `publisher run` that is not running."""
    release = prep.release
    embargoed = release.publish_at is not None and release.publish_at > engine.now()
    waiting = [name for name, ch in prep.channels.items() if embargoed and ch.embargo is not Embargo.SERVICE]
    beat = engine.store.last_beat() if waiting else None
    age = (engine.now() - beat[0]).total_seconds() if beat else 0.0
    if not waiting or (beat is not None and age <= max(ALIVE_POLLS * beat[1], 10.0)):
        return []
    seen = f"the last one was seen {span(age)} ago" if beat else "none has used this state store yet"
    return [f"no `publisher run` service is alive ({seen}): {', '.join(waiting)} will not go live at "
            "publish_at until one runs; start it (see the README, \"The service\")"]


# --- four eyes ------------------------------------------------------------------------------------
def approval_gap(engine: Engine, prep: Prepared) -> str:
    """Why this content may not run yet: "" when it may (no approval needed, or approved for
    exactly these hashes by someone other than the person releasing it)."""
    if not engine.config.settings.require_approval:
        return ""
    approval = engine.store.approval(prep.release.id)
    if approval is None:
        return "it is not approved yet"
    who, at, hashes = approval
    changed = _changed(hashes, prep.hashes)
    if changed:
        return f"{', '.join(changed)} changed since {who} approved it on {at:%Y-%m-%d %H:%M} UTC"
    if engine.actor and who == engine.actor:
        return f"{who} approved it, so another person must release it (four eyes)"
    return ""


def submit(engine: Engine, prep: Prepared) -> RunResult:
    """Record the release as pending, awaiting approval, with its content hashes; send nothing."""
    store, rid = engine.store, prep.release.id
    reason = approval_gap(engine, prep)
    with engine.lock(rid):
        record(engine, prep, (Verb.SUBMIT, f"{AWAITING}: {reason}; content " + ", ".join(
            f"{k} {v[:12]}" for k, v in sorted(prep.hashes.items()))))
        result = RunResult(rid, warnings=prep.warnings + drafts.warning(store, prep.release, prep.hashes))
        for name, ch in prep.channels.items():
            pub = store.ensure_publication(rid, name, ch.kind, prep.release.publish_at)
            if pub.state in (State.PENDING, State.FAILED, State.DEFERRED, State.CANCELLED):
                pub = store.update_publication(rid, name, state=State.PENDING, note=AWAITING, error="",
                                               retry_at=None)
            result.results.append(ChannelResult.of(pub))
    who = f"an approver other than {engine.actor}" if engine.actor else "an approver"
    result.warnings.append(f"{rid} is recorded and {AWAITING} ({reason}); nothing was sent. "
                           f"{who} runs `publisher approve {prep.release.manifest_path}`, "
                           "and it is released then")
    return result


def refuse_changed_since_approval(engine: Engine, prep: Prepared) -> None:
    """Content approved, then changed: bad input naming each changed file, nothing recorded."""
    approval = engine.store.approval(prep.release.id) if engine.config.settings.require_approval else None
    if approval is None or not _changed(approval[2], prep.hashes):
        return
    who, at, hashes = approval
    r = prep.release
    files = {"manifest": r.manifest_path, "master": r.master, "thumbnail": r.thumbnail,
             **{f"captions.{lang}": p for lang, p in r.captions.items()}}
    raise InputError([Problem(
        str(files.get(key) or r.manifest_path), key,
        f"changed since {who} approved it on {at:%Y-%m-%d %H:%M} UTC (sha256 "
        f"{(hashes.get(key) or '-')[:12]}… approved, {(prep.hashes.get(key) or '-')[:12]}… now)",
        "have the new content approved with `publisher approve`, or put back the approved file")
        for key in _changed(hashes, prep.hashes)])


def check_approval(engine: Engine, prep: Prepared) -> None:
    refuse_changed_since_approval(engine, prep)
    gap = approval_gap(engine, prep)
    if gap:
        raise InputError(Problem(str(prep.release.manifest_path), "", f"not approved: {gap}",
                                 "have this content approved with `publisher approve` by "
                                 "someone other than the person who runs it"))


def awaiting(engine: Engine, release_id: str) -> None:
    """Refuse to send anything of a release that is still awaiting approval."""
    if any(p.note == AWAITING for p in engine.store.publications(release_id, state=State.PENDING)):
        raise InputError(Problem("", "RELEASE", f"{release_id} is {AWAITING}",
                                 f"an approver other than {submitter(engine, release_id) or 'its submitter'} "
                                 "approves it, and it is released then"))


def submitter(engine: Engine, release_id: str) -> str:
    """Who last submitted, released or changed the release."""
    return engine.store.last_actor(release_id, (Verb.SUBMIT, Verb.RELEASE, Verb.UPDATE))


@dataclass
class Approval:
    release: str
    approved_by: str
    hashes: dict[str, str]
    previous: dict[str, str] = field(default_factory=dict)  # the hashes approved before, if any
    prep: Prepared | None = None
    submitted: bool = False  # a submission was awaiting this approval
    drafts: list[str] = field(default_factory=list)  # machine drafts this approval reviews


def approve(engine: Engine, manifest: Path, by: str | None = None,
            seen: dict[str, str] | None = None) -> Approval:
    """Record who approved exactly which bytes: master, captions, thumbnail and manifest.

    The approver is the person the engine acts for (the console login, or the Unix user); ``by``
    is only a label. With ``require_approval`` it must not be the person who submitted, released
    or last changed the release. ``seen`` binds the approval to the hashes the approver was
    shown: content that changed since is refused.
    """
    snapshots = engine.snapshots()
    prep = check(engine, manifest, snapshots=snapshots)
    rid, hashes = prep.release.id, prep.hashes
    who = engine.actor or getpass.getuser()
    label = (by or "").strip()
    try:
        if engine.config.settings.require_approval and submitter(engine, rid) == who:
            raise FourEyes(Problem(str(manifest), "", f"{who} submitted {rid}, so cannot also approve it",
                                   "another person with the approver role approves it (four eyes)"))
        if seen is not None and seen != hashes:
            raise InputError(Problem(str(manifest), ", ".join(_changed(seen, hashes)),
                                     "changed since you looked at it",
                                     "look at the release again and approve what it is now"))
    except InputError:
        snapshots.discard_new()
        raise
    before = engine.store.approval(rid)
    reviewed = drafts.unreviewed(engine.store, prep.release, hashes)
    waiting = any(p.note == AWAITING for p in engine.store.publications(rid, state=State.PENDING))
    engine.store.save_approval(rid, who, hashes)
    shown = f"{who} (as {label})" if label and label != who else who
    engine.store.add_event(rid, Verb.APPROVE, f"approved by {shown}: " + ", ".join(
        f"{k} {v[:12]}" for k, v in sorted(hashes.items())))
    return Approval(rid, who, hashes, before[2] if before else {}, prep, waiting, reviewed)


# --- update ---------------------------------------------------------------------------------------
def update(engine: Engine, manifest: Path) -> RunResult:
    """Push changed titles, descriptions, captions and thumbnail to every live (or staged) copy."""
    snapshots = engine.snapshots()
    prep = check(engine, manifest, snapshots=snapshots)
    release = prep.release
    try:
        old_release, old_master = engine.stored(release.id)
        if old_master.sha256 != prep.master.sha256:
            raise master_changed(release, old_master.sha256, prep.master.sha256)
        refuse_changed_since_approval(engine, prep)
        if approval_gap(engine, prep):
            engine.store.add_event(release.id, Verb.SUBMIT, f"update {AWAITING}")
            check_approval(engine, prep)
    except InputError:
        snapshots.discard_new()
        raise
    with engine.on_release(release.id, Verb.UPDATE) as work:
        engine.store.save_release(release, prep.master, prep.hashes)
        _move_embargo(engine, old_release, release, work.pubs)
        work.release = release
        targets = [p.channel for p in work.pubs if p.state in (State.LIVE, State.SCHEDULED)]
        result = work.run({name: Call.UPDATE for name in targets})
    result.warnings = list(prep.warnings)
    for p in work.pubs:
        if p.channel not in targets:
            result.warnings.append(f"{p.channel}: {p.state}, not updated (it is not live)")
    recorded = {p.channel for p in work.pubs}
    result.warnings += [f"{name}: not released yet; run `publisher release --only {name}`"
                        for name in prep.channels if name not in recorded]
    return result


def _move_embargo(engine: Engine, old: Release, new: Release, pubs: list[Publication]) -> None:
    if new.publish_at == old.publish_at:
        return
    moved = [p.channel for p in pubs if p.state not in (State.LIVE, *GONE)]
    for name in moved:  # the service plans from these
        engine.store.update_publication(new.id, name, publish_at=new.publish_at)
    engine.store.add_event(new.id, Verb.GO_LIVE, f"publish time moved from {old.publish_at} to "
                           f"{new.publish_at} for {', '.join(moved) or 'nothing'}")


def _changed(approved: dict[str, str], now: dict[str, str]) -> list[str]:
    """The content keys whose hash differs from the approved one."""
    return sorted(k for k in set(approved) | set(now) if approved.get(k) != now.get(k))
