"""Publications left ``processing`` (a WeChat article still publishing, a draft awaiting an
editor, a video the service is still processing): ``publisher run`` asks the channel's ``status``
now and then and records the answer when it is final (``live`` or ``failed``).

Each check holds the release's lock, as every verb does; a release another process is working on
is looked at next time. ``status`` may advance the adapter's journal (WeChat's ``freepublish/get``
answer), so the journal is saved as for any verb.
"""

from __future__ import annotations

import logging

from publisher.contract import Job, Journal, redact
from publisher.engine.operations import adapters
from publisher.engine.orchestrator import Orchestrator
from publisher.errors import InputError, PublisherError

log = logging.getLogger("publisher.engine.polling")


def poll_processing(orch: Orchestrator) -> list[str]:
    """Check every ``processing`` publication once. Returns a line for each one that settled."""
    lines: list[str] = []
    for p in orch.store.publications(state="processing"):
        try:
            with orch.lock(p.release):
                line = poll_one(orch, p.release, p.channel)
        except InputError as exc:
            if "another publisher process" not in str(exc):
                log.warning("%s/%s: %s", p.release, p.channel, redact(str(exc)))
            continue
        except PublisherError as exc:  # cannot ask now (network, auth): asked again next time
            log.warning("%s/%s: status check failed: %s", p.release, p.channel, redact(str(exc)))
            continue
        if line:
            lines.append(line)
    return lines


def poll_one(orch: Orchestrator, release_id: str, name: str) -> str:
    """Ask one ``processing`` publication's channel (the caller holds the lock)."""
    store = orch.store
    pub = store.get_publication(release_id, name)
    release = store.get_release(release_id)
    if pub is None or pub.state != "processing" or release is None or name not in orch.config.options:
        return ""
    channels, _ = adapters(orch, release, [name])

    def save(data: dict[str, object]) -> None:
        store.save_journal(release_id, name, data)

    job = Job(release=release, journal=Journal(pub.journal, save), publication=pub,
              links=orch.links(release_id, name), clock=orch.clock)
    remote = channels[name].status(job)
    if remote.state == "live":
        store.update_publication(release_id, name, state="live", remote_id=remote.remote_id or pub.remote_id,
                                 url=remote.url or pub.url, checksum=remote.checksum or pub.checksum,
                                 note=remote.detail, error="", retry_at=None)
        message = f"now live{': ' + (remote.url or pub.url) if remote.url or pub.url else ''}"
        store.add_event(release_id, "live", message, name)
        return f"{release_id}: {name} {message}"
    if remote.state == "failed":
        error = redact(remote.detail or "; ".join(remote.drift) or "the channel reports a failure")
        store.update_publication(release_id, name, state="failed", error=error)
        store.add_event(release_id, "failed", error, name)
        return f"{release_id}: {name} failed: {error}"
    return ""
