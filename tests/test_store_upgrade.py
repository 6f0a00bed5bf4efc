"""A state store made by publisher 0.1 (tests/data/state-v0.1.db: the demo release, withdrawn,
and an embargoed release with an approval and a repeat rule, made by that version's own CLI)
opens in place: migrated by Alembic, every record kept; and its YouTube quota ledger files move
into the store once."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from publisher.engine.context import move_quota_ledgers
from publisher.models import State
from publisher.store import Store, sqlite_url
from publisher.store.migrate import HEAD, current

OLD = Path(__file__).parent / "data" / "state-v0.1.db"


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0]  # noqa: S608
                for t in ("releases", "publications", "renditions", "approvals", "events")}


def test_a_store_made_by_0_1_upgrades_in_place_keeping_every_record(tmp_path: Path) -> None:
    shutil.copy(OLD, tmp_path / "state.db")
    before = counts(tmp_path / "state.db")
    assert before["events"] > 0 and before["approvals"] == 1
    store = Store(sqlite_url(tmp_path))
    assert current(store.engine) == HEAD
    assert counts(tmp_path / "state.db") == before
    pubs = {p.release: p for p in store.publications()}
    assert pubs["consular-protection-demo"].state is State.WITHDRAWN
    embargoed = pubs["embargoed-demo"]
    assert embargoed.state is State.SCHEDULED and embargoed.publish_at is not None
    assert embargoed.journal.get("staging")  # the adapter's checkpoints survive
    release = store.get_release("embargoed-demo")
    assert release is not None and release.repeat and release.repeat[0].cron == "0 10 1 * *"
    assert [rid for rid, _, _ in store.repeating()] == ["embargoed-demo"]  # flagged by the migration
    who, _, hashes = store.approval("embargoed-demo") or ("", None, {})
    assert who == "comms officer" and len(hashes["master"]) == 64
    assert all(e.actor == "" for e in store.events())  # 0.1 recorded no actor
    store.add_event("embargoed-demo", "release", "after the upgrade")
    again = Store(sqlite_url(tmp_path))  # opening an upgraded store changes nothing
    assert counts(tmp_path / "state.db")["events"] == before["events"] + 1
    assert current(again.engine) == HEAD


def test_quota_ledger_files_move_into_the_store_once(tmp_path: Path) -> None:
    folder = tmp_path / "channels" / "_quota"
    folder.mkdir(parents=True)
    (folder / "immd-project.json").write_text(json.dumps({"day": "2026-12-03", "units": 1300, "uploads": 2}))
    store = Store(sqlite_url(tmp_path))
    move_quota_ledgers(tmp_path, store)
    assert store.update_account("youtube-quota:immd-project", dict) == {
        "day": "2026-12-03", "units": 1300, "uploads": 2}
    assert not (folder / "immd-project.json").exists() and (folder / "immd-project.json.moved").exists()
    (folder / "immd-project.json").write_text(json.dumps({"day": "2026-12-03", "units": 1, "uploads": 0}))
    move_quota_ledgers(tmp_path, store)  # the store's record is never overwritten by a file
    assert store.update_account("youtube-quota:immd-project", dict)["units"] == 1300
