"""Events name who acted; a store made before events had an actor gains the column in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from publisher.accounts import Role
from publisher.store import Store, sqlite_url

OLD_EVENTS = """CREATE TABLE events (id INTEGER NOT NULL PRIMARY KEY, at DATETIME NOT NULL,
    release_id VARCHAR(64) NOT NULL, channel VARCHAR(64) NOT NULL, action VARCHAR(32) NOT NULL,
    message TEXT NOT NULL)"""


def test_an_old_store_gains_the_actor_column_and_keeps_its_events(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute(OLD_EVENTS)
        db.execute("INSERT INTO events (at, release_id, channel, action, message) "
                   "VALUES ('2026-01-02 03:04:05', 'r1', '', 'release', 'from before')")
    store = Store(sqlite_url(tmp_path))
    store.as_actor("alice").add_event("r1", "withdraw", "taken down")
    store.add_event("r1", "live", "by the service")
    assert [(e.action, e.actor, e.message) for e in store.events("r1")] == [
        ("release", "", "from before"), ("withdraw", "alice", "taken down"), ("live", "", "by the service")]
    assert store.last_actor("r1", ("withdraw",)) == "alice" and store.actor == ""


def test_roles_are_cumulative() -> None:
    assert [r.value for r in Role] == ["viewer", "publisher", "approver", "admin"]
    assert Role.admin.allows(Role.approver) and Role.approver.allows(Role.publisher)
    assert not Role.publisher.allows(Role.approver) and not Role.viewer.allows(Role.publisher)
