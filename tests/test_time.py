"""Time at the seams: publish_at in the past or far away, repeat rules checked in full, every
problem at once, stored times no report can show, overdue embargoes and the service heartbeat.

Uses the ``drop`` channel kind of test_scheduler (files in a folder, no encodes).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from publisher.store import Store, sqlite_url
from tests.conftest import Project
from tests.test_hostile_input import no_network
from tests.test_scheduler import drop, iso, service, state_of, wait_for


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def recorded(proj: Project) -> int:
    db = proj.state_dir / "state.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master")}
        return int(conn.execute("select count(*) from releases").fetchone()[0]) if "releases" in tables else 0


# --- publish_at in the past -------------------------------------------------------------------------
def test_a_past_publish_at_is_refused_for_a_new_release_unless_now(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj)
    rid = proj.manifest["id"]
    proj.manifest["publish_at"] = iso(datetime.now(UTC) - timedelta(days=365, hours=3))  # a mistyped year
    proj.write()
    for verb in ("check", "release"):
        result = cli(proj, verb, proj.manifest_path)
        assert result.exit_code == 2, result.output
        assert re.search(r"publish_at: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d HKT has passed \(1 y 0 d ago\)",
                         result.output), result.output
        assert "publisher release --now" in result.output and str(proj.manifest_path) in result.output
    assert recorded(proj) == 0 and not (target / rid).exists()
    now = cli(proj, "release", "--now", proj.manifest_path)
    assert now.exit_code == 0, now.output
    assert (target / rid / "index.html").exists() and state_of(cli, proj) == {"drop-a": "live"}
    # recorded now: a re-run (to resume or converge) and `check` accept the passed time
    assert cli(proj, "check", proj.manifest_path).exit_code == 0
    again = cli(proj, "release", proj.manifest_path)
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_check_with_a_database_server_warns_instead_of_connecting(project: Callable[[], Project],
                                                                    cli: Any) -> None:
    proj = project()
    drop(proj)
    proj.settings["store"] = "postgresql+psycopg://publisher@127.0.0.1:9/publisher"
    proj.manifest["publish_at"] = iso(datetime.now(UTC) - timedelta(days=2))
    proj.write()
    with no_network() as attempts:
        result = cli(proj, "check", proj.manifest_path)
    assert not attempts and result.exit_code == 0, result.output
    assert "has passed: `publisher release` refuses it unless this release is recorded" in result.output


def test_now_with_a_publish_at_still_to_come_is_refused(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    drop(proj)
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(hours=2))
    proj.write()
    result = cli(proj, "release", "--now", proj.manifest_path)
    assert result.exit_code == 2 and "is still to come" in result.output
    assert recorded(proj) == 0


def test_a_recorded_release_whose_time_has_passed_is_not_refused(project: Callable[[], Project],
                                                                   cli: Any) -> None:
    proj = project()
    target = drop(proj)
    rid = proj.manifest["id"]
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(hours=1))
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert state_of(cli, proj) == {"drop-a": "scheduled"}
    proj.manifest["publish_at"] = iso(datetime.now(UTC) - timedelta(minutes=10))  # its time has passed
    proj.write()
    assert cli(proj, "check", proj.manifest_path).exit_code == 0
    resumed = cli(proj, "release", proj.manifest_path)
    assert resumed.exit_code == 0, resumed.output
    assert (target / rid / "index.html").exists() and state_of(cli, proj) == {"drop-a": "live"}


# --- far dates ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value"), [
    ("publish_at", "9999-12-31T23:59:59-14:00"),
    ("publish_at", "0001-01-01T00:00:00-05:00"),  # year 1 in a western zone
    ("publish_at", "FAR"),  # six years ahead
    ("signage", {"end": "9998-01-01T00:00:00+08:00"}),
    ("repeat", [{"channels": ["drop-a"], "every": "1d", "until": "2999-01-01T00:00:00+08:00"}]),
])
def test_far_dates_are_refused_with_the_accepted_window(project: Callable[[], Project], cli: Any,
                                                        key: str, value: Any) -> None:
    proj = project()
    drop(proj)
    proj.manifest[key] = iso(datetime.now(UTC) + timedelta(days=6 * 365)) if value == "FAR" else value
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2, result.output
    assert "outside the times publisher accepts: from 2000-01-01 to 5 years ahead" in result.output
    assert key in result.output and "Traceback" not in result.output


# --- repeat rules, and every problem at once ----------------------------------------------------------
def test_repeat_rules_are_checked_in_full_with_line_and_fix(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    drop(proj)
    proj.manifest["repeat"] = [
        {"channels": ["drop-a"], "cron": "0 10 1 *"},
        {"channels": ["drop-a"], "cron": "0 9 31 2 *"},
        {"channels": ["drop-a"], "every": "0m"},
        {"channels": ["drop-a"], "every": "99999999999w"},
        {"channels": ["drop-a"], "every": "1d", "window": "25:00-26:00"},
        {"channels": ["drop-a"], "every": "1d", "window": "09:00-09:00"},
        {"channels": ["nowhere"], "every": "1d"},
        {"channels": ["drop-a"], "cron": "0 9 * * 8", "timezone": "Asia/Kowloon"},
    ]
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2, result.output
    out = result.output
    assert re.search(r"release\.yaml:\d+: repeat\[0\]\.cron: cron '0 10 1 \*': a cron expression has "
                     r"5 fields", out)
    assert "e.g. '0 10 1 * *'" in out  # the fix
    assert "repeat[1].cron" in out and "never fires" in out
    assert "repeat[2].every: '0m' is no time at all" in out
    assert "repeat[3].every: '99999999999w' is longer than 5 years" in out
    assert "repeat[4].window: '25:00-26:00' is not a daily window" in out
    assert "repeat[5].window" in out and "same time" in out
    assert "repeat[7].timezone: unknown time zone 'Asia/Kowloon'" in out
    assert "repeat[7].cron" in out and "not a weekday" in out
    # the channel names are checked against the config once the manifest itself is right
    proj.manifest["repeat"] = [{"channels": ["nowhere"], "every": "1d"}]
    proj.write()
    named = cli(proj, "check", proj.manifest_path)
    assert named.exit_code == 2 and "repeat[0].channels" in named.output and "'nowhere'" in named.output


def test_check_reports_every_problem_at_once(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    drop(proj)
    proj.manifest["colour"] = "blue"
    proj.manifest["master"] = "missing.mp4"
    proj.manifest["publish_at"] = "2027-06-01T10:00:00"
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if str(proj.manifest_path) in line]
    assert len(errors) == 3, result.output
    assert any("colour: unknown key" in e for e in errors)
    assert any("master: file 'missing.mp4' does not exist" in e for e in errors)
    assert any("publish_at: '2027-06-01T10:00:00' has no time zone" in e for e in errors)


# --- what is stored never breaks a report or the service -----------------------------------------------
def _store_publish_at(proj: Project, rid: str, when: datetime) -> None:
    """Move a stored release's publish time (its record and its scheduled publications) to
    ``when``, as a damaged store, an older version or a passing clock may leave it."""
    with sqlite3.connect(proj.state_dir / "state.db") as db:
        data = json.loads(db.execute("select release_json from releases where id = ?", (rid,)).fetchone()[0])
        data["publish_at"] = when.isoformat()
        db.execute("update releases set release_json = ? where id = ?", (json.dumps(data), rid))
        db.execute("update publications set publish_at = ?, state = 'scheduled' where release_id = ?",
                   (when.replace(tzinfo=None).isoformat(" "), rid))


@pytest.mark.parametrize(("zone", "when"), [
    ("Pacific/Kiritimati", datetime(9999, 12, 31, 23, 0, tzinfo=UTC)),
    ("America/New_York", datetime(1, 1, 1, 1, 0, tzinfo=UTC)),
])
def test_times_no_zone_can_show_never_crash_a_report_or_the_service(
        project: Callable[[], Project], cli: Any, zone: str, when: datetime) -> None:
    proj = project()
    drop(proj)
    proj.settings["timezone"] = zone
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    _store_publish_at(proj, rid, when)
    shown = when.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds") + " UTC"
    table = cli(proj, "status")
    assert table.exit_code == 0 and shown in table.output, table.output
    page = cli(proj, "status", "--html", "-")
    assert page.exit_code == 0 and shown in page.output
    for fmt in ("--json", "--csv"):
        assert cli(proj, "status", fmt).exit_code == 0
    listed = cli(proj, "schedule", "list")
    assert listed.exit_code == 0 and rid in listed.output and shown in listed.output
    svc = service(proj, poll=0.3)
    svc.start()
    try:
        if when.year == 1:  # long past: it goes live at once
            assert wait_for(lambda: state_of(cli, proj) == {"drop-a": "live"}, timeout=10)
        else:  # planned for then, and the service keeps going
            assert wait_for(lambda: svc.scheduler.get_job(f"embargo:{rid}") is not None, timeout=5)
            time.sleep(1)
            assert svc.scheduler.get_job(f"embargo:{rid}") is not None
            assert state_of(cli, proj) == {"drop-a": "scheduled"}
    finally:
        svc.stop()


def test_one_release_that_cannot_be_planned_never_stops_the_others(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj)
    drop(proj, "drop-gone")
    base = dict(proj.manifest)
    later = iso(datetime.now(UTC) + timedelta(hours=1))

    def release(rid: str, **changes: Any) -> None:
        proj.manifest = {**base, "id": rid, **changes}
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
        assert result.exit_code == 0, result.output

    release("broken-rule", channels=["drop-a"], repeat=[{"channels": ["drop-a"], "every": "1d"}])
    release("damaged-record", channels=["drop-a"], publish_at=later)
    release("channel-gone", channels=["drop-gone"], publish_at=later)
    good_at = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    del proj.channels["drop-gone"]  # the config loses a channel an embargo still waits for
    release("good-release", channels=["drop-a"], publish_at=iso(good_at))
    past = datetime.now(UTC) - timedelta(minutes=1)
    _store_publish_at(proj, "channel-gone", past)
    _store_publish_at(proj, "damaged-record", past)
    with sqlite3.connect(proj.state_dir / "state.db") as db:  # what an older version may have stored
        text = db.execute("select release_json from releases where id = 'broken-rule'").fetchone()[0]
        broken = text.replace('"cron":null', '"cron":"0 10 1 *"').replace('"every":"1d"', '"every":null')
        db.execute("update releases set release_json = ? where id = 'broken-rule'", (broken,))
        db.execute("update releases set release_json = '{\"id\": \"damaged' where id = 'damaged-record'")
    listed = cli(proj, "schedule", "list")
    assert listed.exit_code == 0, listed.output
    assert "broken-rule" in listed.output and "cannot be planned" in listed.output
    store = Store(sqlite_url(proj.state_dir))
    svc = service(proj, poll=0.3)
    svc.start()
    try:
        assert wait_for(lambda: (target / "good-release" / "index.html").exists(), timeout=10)
        assert datetime.now(UTC) >= good_at
        damaged = lambda: store.get_publication("damaged-record", "drop-a")  # noqa: E731
        assert wait_for(lambda: "cannot be read" in getattr(damaged(), "error", ""), timeout=10)
    finally:
        svc.stop()
    rows = {(r["release"], r["channel"]): r for r in json.loads(cli(proj, "status", "--json").stdout)}
    assert rows[("good-release", "drop-a")]["state"] == "live"
    assert "the service cannot plan this release" in rows[("broken-rule", "drop-a")]["error"]
    assert "5 fields" in rows[("broken-rule", "drop-a")]["error"]
    assert rows[("channel-gone", "drop-gone")]["state"] == "failed"
    assert "no longer in" in rows[("channel-gone", "drop-gone")]["error"]
    assert "cannot be read" in cli(proj, "status", "--html", "-").output


# --- overdue and the heartbeat ----------------------------------------------------------------------
def test_an_embargo_past_its_time_shows_as_overdue(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    drop(proj)
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(hours=1))
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert "overdue" not in cli(proj, "status").output
    _store_publish_at(proj, proj.manifest["id"], datetime.now(UTC) - timedelta(minutes=5))  # no service ran
    assert "overdue" in cli(proj, "status").output
    row = json.loads(cli(proj, "status", "--json").stdout)[0]
    assert row["state"] == "scheduled" and row["note"].startswith("overdue: its publish time passed 5 min")
    assert "overdue" in cli(proj, "status", "--csv").output
    assert "overdue" in cli(proj, "status", "--html", "-").output


def test_release_warns_when_no_service_is_alive_to_lift_the_embargo(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    drop(proj)
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(hours=1))
    proj.write()
    alone = cli(proj, "release", proj.manifest_path)
    assert alone.exit_code == 0
    assert "no `publisher run` service is alive (none has used this state store yet): drop-a" in alone.output
    svc = service(proj, poll=0.3)
    svc.start()
    try:
        store = Store(sqlite_url(proj.state_dir))
        assert wait_for(lambda: store.last_beat() is not None, timeout=5)
        proj.manifest["id"] = "second-release"
        proj.write()
        watched = cli(proj, "release", proj.manifest_path)
        assert watched.exit_code == 0 and "service is alive" not in watched.output
    finally:
        svc.stop()
    with sqlite3.connect(proj.state_dir / "state.db") as db:  # the service stopped an hour ago
        db.execute("update service_heartbeats set at = ?",
                   ((datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat(" "),))
    proj.manifest["id"] = "third-release"
    proj.write()
    late = cli(proj, "release", proj.manifest_path)
    assert "the last one was seen 1 h 0 min ago" in late.output
