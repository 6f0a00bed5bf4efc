"""Notifications: one message per event that needs a person, to the config's ``notify:`` URLs
(apprise: mail, Teams, Slack, ntfy, a JSON webhook, ...).

A message names the release (id and title), the channel, the state and what to do, with every
known secret redacted. Delivery is off the critical path: messages go onto a queue that one
background thread sends with a short timeout; a message that cannot be delivered is logged and
dropped. The queue is flushed, within a bound, when a command ends and when the process exits.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from publisher.contract import redact, remember_secret
from publisher.inputs.config import Alert, NotifyTarget, SiteConfig, quiet_apprise
from publisher.models import GONE, Publication, State
from publisher.store import Store
from publisher.times import local

log = logging.getLogger("publisher.notify")
TIMEOUT = 5.0  # seconds to connect, and again to read, per delivery
FLUSH_SECONDS = 10.0  # the longest a command's end waits for messages still queued


@dataclass(frozen=True)
class Notice:
    alert: Alert
    release: str
    title: str
    channel: str
    state: str
    detail: str
    fix: str

    @property
    def subject(self) -> str:
        where = f" on {self.channel}" if self.channel else ""
        return redact(f"publisher: {self.release} {self.state}{where}")

    @property
    def body(self) -> str:
        lines = [f"Release: {self.release} ({self.title})" if self.title else f"Release: {self.release}"]
        if self.channel:
            lines.append(f"Channel: {self.channel}")
        lines.append(f"State: {self.state}")
        if self.detail:
            lines.append(f"What happened: {self.detail}")
        lines.append(f"What to do: {self.fix}")
        return redact("\n".join(lines))


class Notifier:
    """Turns outcomes into notices for the targets that want them (a no-op without ``notify:``)."""

    def __init__(self, config: SiteConfig) -> None:
        self.targets = list(config.settings.notify)
        self.zone: ZoneInfo = config.zone
        self._announced: set[str] = set()
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.targets)

    def wants(self, alert: Alert) -> bool:
        return any(alert in t.events for t in self.targets)

    def send(self, notice: Notice) -> None:
        for i, target in enumerate(self.targets):
            if notice.alert in target.events:
                _outbox().put((i, target, notice))

    def when(self, at: datetime | None) -> str:
        return local(at, self.zone) if at else "later"

    def outcome(self, store: Store, before: Publication | None, pub: Publication, *,
                quota: bool = False) -> None:
        """A channel's recorded outcome: failed, deferred (or held by a quota) and, once every
        channel of the release is live, live. Never raises: publishing goes on whatever happens."""
        if not self.active:
            return
        try:
            self._outcome(store, before, pub, quota)
        except Exception:
            log.warning("notification for %s/%s not sent", pub.release, pub.channel, exc_info=True)

    def _outcome(self, store: Store, before: Publication | None, pub: Publication, quota: bool) -> None:
        rid, name = pub.release, pub.channel
        if before is not None and before.state is pub.state and before.error == pub.error:
            return  # nothing new to tell a person
        if pub.state is State.FAILED and self.wants(Alert.FAILED):
            self.send(Notice(Alert.FAILED, rid, title_of(store, rid), name, pub.state, pub.error,
                             f"fix what the error says, then run `publisher retry {rid} --channel {name}`"))
        elif pub.state is State.DEFERRED and quota and self.wants(Alert.QUOTA):
            self.send(Notice(Alert.QUOTA, rid, title_of(store, rid), name, "deferred (quota used up)",
                             pub.error, f"nothing, unless it is urgent: publisher tries again at "
                             f"{self.when(pub.retry_at)}; a higher quota from the provider lifts the limit"))
        elif pub.state is State.DEFERRED and not quota and self.wants(Alert.DEFERRED):
            again = self.when(pub.retry_at)
            self.send(Notice(Alert.DEFERRED, rid, title_of(store, rid), name, pub.state, pub.error,
                             f"nothing, unless it persists: publisher tries again at {again} (keep "
                             f"`publisher run` going), or run `publisher retry {rid} --channel {name}`"))
        elif pub.state is State.LIVE and self.wants(Alert.LIVE):
            pubs = [p for p in store.publications(rid) if p.state not in GONE]
            if pubs and all(p.state is State.LIVE for p in pubs) and self._first_time(rid):
                self.send(Notice(Alert.LIVE, rid, title_of(store, rid), "", "live everywhere",
                                 ", ".join(f"{p.channel}: {p.url or 'live'}" for p in pubs), "nothing"))

    def _first_time(self, release_id: str) -> bool:
        """Whether "live everywhere" is news (channels going live at once each see every one live)."""
        with self._lock:
            if release_id in self._announced:
                return False
            self._announced.add(release_id)
            return True

    def about(self, store: Store, alert: Alert, release_id: str, detail: str, fix: str, *,
              channel: str = "", state: str = "") -> None:
        """A notice about a release as a whole (an overdue embargo, a repeat rule that could not run)."""
        if not self.wants(alert):
            return
        try:
            self.send(Notice(alert, release_id, title_of(store, release_id), channel, state or alert,
                             detail, fix))
        except Exception:
            log.warning("notification for %s not sent", release_id, exc_info=True)


def title_of(store: Store, release_id: str) -> str:
    try:
        release = store.get_release(release_id)
    except Exception:
        return ""
    return release.text("title") if release else ""


# --- delivery ------------------------------------------------------------------------------------
_queue: queue.Queue[tuple[int, NotifyTarget, Notice]] | None = None
_queue_lock = threading.Lock()


def _outbox() -> queue.Queue[tuple[int, NotifyTarget, Notice]]:
    global _queue
    with _queue_lock:
        if _queue is None:
            _queue = queue.Queue()
            threading.Thread(target=_deliver_all, args=(_queue,), name="notify", daemon=True).start()
            atexit.register(_at_exit)
        return _queue


def _deliver_all(outbox: queue.Queue[tuple[int, NotifyTarget, Notice]]) -> None:
    while True:
        index, target, notice = outbox.get()
        try:
            deliver(index, target, notice)
        except Exception as exc:
            log.warning("notify[%d]: notification about %s not delivered: %s", index, notice.release,
                        redact(f"{type(exc).__name__}: {exc}"))
        finally:
            outbox.task_done()


def deliver(index: int, target: NotifyTarget, notice: Notice) -> None:
    """Send one notice; a failure is logged (the URL, which may carry a token, never is)."""
    import apprise

    quiet_apprise()
    url = target.address()
    name = f"notify[{index}]" + (f" (url_env {target.url_env})" if target.url_env else "")
    if not url:
        log.warning("%s: the environment variable %s is not set; notification about %s not sent",
                    name, target.url_env, notice.release)
        return
    if target.url_env:
        remember_secret(url)
    scheme = url.split("://", 1)[0]
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        log.warning("%s: apprise does not know this %s:// URL; notification about %s not sent",
                    name, scheme, notice.release)
        return
    plugin.socket_connect_timeout = plugin.socket_read_timeout = TIMEOUT
    kind = apprise.NotifyType.SUCCESS if notice.alert is Alert.LIVE else (
        apprise.NotifyType.FAILURE if notice.alert is Alert.FAILED else apprise.NotifyType.WARNING)
    # plain text: a target that renders Markdown or HTML (Slack, Teams, mail) shows an author's
    # title as written, never as a link, a mention or markup
    if plugin.notify(body=notice.body, title=notice.subject, notify_type=kind,
                     body_format=apprise.NotifyFormat.TEXT):
        log.info("%s: told %s:// about %s (%s)", name, scheme, notice.release, notice.alert)
    else:
        log.warning("%s: notification about %s (%s) could not be delivered to %s://; publishing goes on",
                    name, notice.release, notice.alert, scheme)


def flush(timeout: float = FLUSH_SECONDS) -> bool:
    """Wait (at most ``timeout`` seconds) for queued messages to be sent; True if none is left."""
    global _given_up
    outbox = _queue
    if outbox is None:
        return True
    deadline = time.monotonic() + timeout
    with outbox.all_tasks_done:
        while outbox.unfinished_tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("%d notification(s) not sent: gave up waiting after %g s",
                            outbox.unfinished_tasks, timeout)
                _given_up = True
                return False
            outbox.all_tasks_done.wait(left)
    _given_up = False
    return True


_given_up = False  # the last flush timed out: the process's exit does not wait a second time


def _at_exit() -> None:
    if not _given_up:
        flush()
