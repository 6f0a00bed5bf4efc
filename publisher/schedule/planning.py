"""What the service should schedule, derived from the state store (see ``publisher.schedule.service``).

``plan`` is called at start-up and on every poll: a job for each release's embargo, each
deferred publication's retry and each repeat rule whose channels are live. A release that cannot
be planned is reported with its reason and left out; it never holds up another release.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from pydantic import ValidationError

from publisher.errors import InputError
from publisher.inputs.rules import repeat_trigger
from publisher.models import Release, State
from publisher.report import one_line
from publisher.store import Store


class Kind(StrEnum):
    EMBARGO = "embargo"  # make the staged channels live at publish_at
    RETRY = "retry"  # take up a deferred channel at retry_at
    REPEAT = "repeat"  # one run of a repeat rule


@dataclass(frozen=True)
class PlannedJob:
    id: str
    kind: Kind
    release: str
    channels: tuple[str, ...]
    trigger: BaseTrigger
    next_run: datetime  # UTC; may be in the past (overdue: runs as soon as the service sees it)
    signature: str  # changes when the job must be rebuilt
    description: str
    rule: int = -1


def repeat_start(release: Release, created: datetime) -> datetime:
    """Repeats count from the publish time (or from when the release was recorded, if later)."""
    return max(release.publish_at or created, created)


@dataclass
class Plan:
    jobs: list[PlannedJob]
    #: release id -> why it cannot be planned; every other release is planned as usual
    problems: dict[str, str]


def plan(store: Store, now: datetime | None = None) -> Plan:
    """The jobs the store asks for. A release that cannot be planned (a damaged record, a rule an
    older version accepted) is left out with the reason, so it never holds up the others."""
    jobs: list[PlannedJob] = []
    problems: dict[str, str] = {}
    embargo: dict[str, list[tuple[str, datetime]]] = {}
    for p in store.publications(state=State.SCHEDULED):
        if p.publish_at is not None:
            embargo.setdefault(p.release, []).append((p.channel, p.publish_at))
    for rid, items in embargo.items():
        at = min(a for _, a in items)
        names = tuple(sorted(c for c, _ in items))
        jobs.append(PlannedJob(f"embargo:{rid}", Kind.EMBARGO, rid, names, DateTrigger(at, UTC), at,
                               f"{at.isoformat()}|{names}", "go live"))
    for p in store.publications(state=State.DEFERRED):
        if p.retry_at is not None:
            jobs.append(PlannedJob(f"retry:{p.release}:{p.channel}", Kind.RETRY, p.release, (p.channel,),
                                   DateTrigger(p.retry_at, UTC), p.retry_at, p.retry_at.isoformat(),
                                   f"retry ({p.error.splitlines()[0] if p.error else 'deferred'})"))
    for rid, text, created in store.repeating():
        try:
            jobs += repeat_jobs(store, Release.model_validate_json(text), created)
        except ValidationError as exc:
            problems[rid] = f"its stored record cannot be read ({exc.errors()[0]['msg']})"
        except InputError as exc:
            problems[rid] = one_line(str(exc), 300)
        except Exception as exc:  # whatever a damaged record does, the other releases go on
            problems[rid] = f"{type(exc).__name__}: {one_line(str(exc), 300)}"
    jobs.sort(key=lambda j: (j.next_run, j.id))
    return Plan(jobs, problems)


def repeat_jobs(store: Store, release: Release, created: datetime) -> list[PlannedJob]:
    jobs = []
    live = {p.channel for p in store.publications(release.id, state=State.LIVE)}
    for i, spec in enumerate(release.repeat):
        names = tuple(c for c in spec.channels if c in live)
        if not names:
            continue
        trigger = repeat_trigger(spec)
        base = store.last_repeat(release.id, i) or repeat_start(release, created)
        first = trigger.get_next_fire_time(base, base)
        if first is None:
            continue
        what = f"cron '{spec.cron}'" if spec.cron else f"every {spec.every}"
        jobs.append(PlannedJob(f"repeat:{release.id}:{i}", Kind.REPEAT, release.id, names, trigger,
                               first.astimezone(UTC), f"{spec.model_dump_json()}|{names}",
                               f"repeat, {what} ({spec.timezone})", rule=i))
    return jobs


def planned_jobs(store: Store, now: datetime | None = None) -> list[PlannedJob]:
    return plan(store, now).jobs
