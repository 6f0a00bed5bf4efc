"""Operations through the CLI: approve, update, withdraw, retry, schedule cancel, status --verify.

Uses the real ``drop`` channel kind from test_scheduler (files in a folder, no encodes) and, for
update and withdraw, the real ``website`` channel.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from publisher.store import Store, sqlite_url
from tests.conftest import Project
from tests.media import make_master
from tests.test_scheduler import drop, iso, lines, state_of


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def rows(cli: Any, proj: Project, *args: str) -> list[dict[str, str]]:
    result = cli(proj, "status", "--json", *args)
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def snapshot(proj: Project) -> tuple[list[Any], list[Any]]:
    with sqlite3.connect(proj.state_dir / "state.db") as db:
        return (list(db.execute("select * from publications order by channel")),
                list(db.execute("select * from releases")))


def test_four_eyes_submit_then_approve_by_another_person_runs_the_release(
        project: Callable[[], Project], cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = project()
    target = drop(proj)
    proj.settings["require_approval"] = True
    proj.write()
    rid = proj.manifest["id"]
    monkeypatch.setenv("LOGNAME", "alice")
    submitted = cli(proj, "release", proj.manifest_path)
    assert submitted.exit_code == 0, submitted.output
    assert "awaiting approval" in submitted.output and "other than alice" in submitted.output
    assert [(r["state"], r["note"]) for r in rows(cli, proj)] == [("pending", "awaiting approval")]
    assert not (target / rid).exists()
    store = Store(sqlite_url(proj.state_dir))
    assert store.release_hashes(rid)["master"] == store.get_master(rid).sha256  # type: ignore[union-attr]
    assert cli(proj, "retry", rid).exit_code == 2 and not (target / rid).exists()
    own = cli(proj, "approve", proj.manifest_path)
    assert own.exit_code == 2 and "alice submitted" in own.output
    assert store.approval(rid) is None
    monkeypatch.setenv("LOGNAME", "bob")
    approved = cli(proj, "approve", proj.manifest_path, "--by", "Chan Tai Man")
    assert approved.exit_code == 0, approved.output
    for name in ("manifest", "master", "captions.en", "captions.zh-Hant", "captions.zh-Hans", "thumbnail"):
        assert name in approved.stdout
    assert (target / rid / "index.html").exists()  # approval released it
    assert [r["state"] for r in rows(cli, proj)] == ["live"]
    who, _, hashes = store.approval(rid) or ("", None, {})
    assert who == "bob" and len(hashes["master"]) == 64
    events = store.events(rid)
    assert ("submit", "alice") in [(e.action, e.actor) for e in events]
    assert any(e.action == "approve" and e.actor == "bob" and "Chan Tai Man" in e.message for e in events)
    # content changed after its approval is refused, naming the file; nothing is sent
    caption = proj.manifest_path.parent / "subs" / "en.srt"
    caption.write_text(caption.read_text(encoding="utf-8").replace("Travel safely.", "Travel safe!"),
                       encoding="utf-8")
    monkeypatch.setenv("LOGNAME", "alice")
    changed = cli(proj, "release", proj.manifest_path)
    assert changed.exit_code == 2, changed.output
    assert "subs/en.srt" in changed.output
    assert "captions.en" in changed.output and "bob" in changed.output
    assert "captions.zh-Hant" not in changed.output
    # the approver may not release what they approved themselves
    monkeypatch.setenv("LOGNAME", "bob")
    again = cli(proj, "approve", proj.manifest_path)
    assert again.exit_code == 0 and "changed" in again.stdout, again.output
    assert "another person" in cli(proj, "release", proj.manifest_path).output
    monkeypatch.setenv("LOGNAME", "carol")
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert [e.action for e in store.events(rid)].count("approve") == 2


def test_update_pushes_metadata_and_refuses_a_new_master(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    web = proj.root / "www"
    proj.add_channel("web", {"kind": "website", "target": str(web),
                             "public_url": "https://www.example.gov.hk/videos/"})
    target = drop(proj)
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    proj.manifest["title"]["en"] = "Consular Protection: Know Before You Go"
    proj.write()
    updated = cli(proj, "update", proj.manifest_path)
    assert updated.exit_code == 0, updated.output
    assert "Know Before You Go" in (web / rid / "index.html").read_text(encoding="utf-8")
    assert "Know Before You Go" in (target / rid / "index.html").read_text(encoding="utf-8")
    assert {r["channel"]: r["state"] for r in rows(cli, proj)} == {"web": "live", "drop-a": "live"}
    stored = Store(sqlite_url(proj.state_dir)).get_release(rid)
    assert stored is not None and stored.title["en"].endswith("Know Before You Go")

    before = snapshot(proj)
    page = (web / rid / "index.html").read_bytes()
    make_master(proj.manifest_path.parent / "master.mp4", seconds=3)
    refused = cli(proj, "update", proj.manifest_path)
    assert refused.exit_code == 2
    assert "new release version" in refused.output and "master" in refused.output
    assert f"{rid}-v2" in refused.output
    assert snapshot(proj) == before and (web / rid / "index.html").read_bytes() == page


def test_withdraw_everywhere_and_a_channel_gone_from_the_config(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    a, b, c = drop(proj, "drop-a"), drop(proj, "drop-b"), drop(proj, "drop-c")
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    del proj.channels["drop-c"]
    proj.write()
    result = cli(proj, "withdraw", rid, "--yes")
    assert result.exit_code == 1, result.output  # drop-c could not be reached
    assert "no longer in publisher.yaml" in result.stdout
    assert not (a / rid).exists() and not (b / rid).exists() and (c / rid).exists()
    states = {r["channel"]: (r["state"], r["error"]) for r in rows(cli, proj)}
    assert states["drop-a"][0] == states["drop-b"][0] == "withdrawn"
    assert states["drop-c"][0] == "failed" and "drop-c" in states["drop-c"][1]
    again = cli(proj, "withdraw", rid, "--channel", "drop-a", "--yes")
    assert again.exit_code == 0 and lines(a, rid).count("withdrawn") == 1
    unknown = cli(proj, "withdraw", "no-such-release")
    assert unknown.exit_code == 2 and "no release 'no-such-release'" in unknown.output


def test_withdraw_takes_a_website_down(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    web = proj.root / "www"
    proj.add_channel("web", {"kind": "website", "target": str(web),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert (web / rid / "video.mp4").exists()
    result = cli(proj, "withdraw", rid, "--yes")
    assert result.exit_code == 0, result.output
    assert not (web / rid).exists()
    assert rows(cli, proj)[0]["state"] == "withdrawn"


def test_retry_continues_a_failed_publication(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    a, b = drop(proj, "drop-a"), drop(proj, "drop-b")
    b.mkdir()
    (b / "BROKEN").write_text("file too large")
    proj.write()
    rid = proj.manifest["id"]
    first = cli(proj, "release", proj.manifest_path)
    assert first.exit_code == 1
    assert {r["channel"]: r["state"] for r in rows(cli, proj)} == {"drop-a": "live", "drop-b": "failed"}
    assert "file too large" in rows(cli, proj, "--channel", "drop-b")[0]["error"]
    (b / "BROKEN").unlink()
    retried = cli(proj, "retry", rid)
    assert retried.exit_code == 0, retried.output
    assert {r["channel"]: r["state"] for r in rows(cli, proj)} == {"drop-a": "live", "drop-b": "live"}
    assert [x.split()[0] for x in lines(a, rid)] == ["live"]  # the live one was left alone
    assert rows(cli, proj, "--channel", "drop-b")[0]["error"] == ""


def test_schedule_cancel_stops_an_embargo(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    a = drop(proj)
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(hours=3))
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert rid in cli(proj, "schedule", "list").stdout
    cancelled = cli(proj, "schedule", "cancel", rid, "--channel", "drop-a", "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    assert state_of(cli, proj) == {"drop-a": "cancelled"}
    assert "nothing scheduled" in cli(proj, "schedule", "list").stdout
    assert not (a / rid).exists()
    wrong = cli(proj, "schedule", "cancel", rid, "--channel", "nope")
    assert wrong.exit_code == 2 and "drop-a" in wrong.output


def test_status_verify_flags_drift(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    a, b = drop(proj, "drop-a"), drop(proj, "drop-b")
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    clean = cli(proj, "status", "--verify")
    assert clean.exit_code == 0, clean.output
    shutil.rmtree(b / rid)  # someone removed it by hand
    (a / rid / "index.html").write_text("<h1>defaced</h1>", encoding="utf-8")
    drifted = cli(proj, "status", "--verify")
    assert drifted.exit_code == 1
    out = drifted.stdout
    assert "checksum: store has" in out and "store says live, channel says withdrawn" in out


def test_update_of_an_embargoed_release_updates_the_staged_copy_and_moves_the_time(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    a = drop(proj)
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    proj.manifest["publish_at"] = iso(first)
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    later = first + timedelta(hours=2)
    proj.manifest["publish_at"] = iso(later)
    proj.manifest["title"]["en"] = "Consular Protection (revised)"
    proj.write()
    result = cli(proj, "update", proj.manifest_path)
    assert result.exit_code == 0, result.output
    assert "(revised)" in (a / ".staging" / rid / "index.html").read_text(encoding="utf-8")
    assert not (a / rid).exists()
    row = rows(cli, proj)[0]
    assert row["state"] == "scheduled" and datetime.fromisoformat(row["publish_at"]) == later
    assert later.astimezone(ZoneInfo("Asia/Hong_Kong")).strftime("%H:%M:%S HKT") in cli(
        proj, "schedule", "list").stdout


def test_status_verify_as_json(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    a = drop(proj, "drop-a")
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    clean = cli(proj, "status", "--verify", "--json")
    assert clean.exit_code == 0, clean.output
    row = json.loads(clean.stdout)[0]
    assert row["state"] == row["remote_state"] == "live" and row["drift"] == []
    shutil.rmtree(a / rid)
    drifted = cli(proj, "status", "--verify", "--json")
    assert drifted.exit_code == 1
    assert json.loads(drifted.stdout)[0]["drift"] == ["state: store says live, channel says withdrawn"]
