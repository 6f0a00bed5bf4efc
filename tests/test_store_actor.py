"""Events name who acted (a store made by 0.1 gains the column: tests/test_store_upgrade.py), and
console roles are cumulative."""

from __future__ import annotations

from pathlib import Path

from publisher.roles import Role
from publisher.store import Store, sqlite_url


def test_events_name_who_acted(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path))
    store.as_actor("alice").add_event("r1", "withdraw", "taken down")
    store.add_event("r1", "live", "by the service")
    assert [(e.action, e.actor, e.message) for e in store.events("r1")] == [
        ("withdraw", "alice", "taken down"), ("live", "", "by the service")]
    assert store.last_actor("r1", ("withdraw",)) == "alice" and store.actor == ""


def test_roles_are_cumulative() -> None:
    assert [r.value for r in Role] == ["viewer", "publisher", "approver", "admin"]
    assert Role.admin.allows(Role.approver) and Role.approver.allows(Role.publisher)
    assert not Role.publisher.allows(Role.approver) and not Role.viewer.allows(Role.publisher)

