"""Re-running `publisher release` converges: edits go out as updates, an unchanged manifest sends
nothing, a changed master is refused. (Every kind against its real server or fake:
tests/conformance, ``test_rerelease_of_an_edited_manifest_converges``.) Uses the ``drop`` kind."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from publisher.engine.content import CONTENT
from tests.conftest import Project
from tests.media import make_master
from tests.test_scheduler import drop, iso, state_of


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def page(target: Any, rid: str, staged: bool = False) -> str:
    folder = target / ".staging" / rid if staged else target / rid
    return str((folder / "index.html").read_text(encoding="utf-8"))


def test_an_embargoed_release_gets_its_edits_while_staged(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj)
    rid = proj.manifest["id"]
    proj.manifest["publish_at"] = iso(datetime.now(UTC) + timedelta(hours=1))
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    proj.manifest["title"]["en"] = "Consular Protection, revised"
    proj.manifest["tags"] = ["consular protection"]
    proj.write()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    assert "changed since the last release: title.en, tags" in result.output
    assert "Consular Protection, revised" in page(target, rid, staged=True)
    assert state_of(cli, proj) == {"drop-a": "scheduled"} and not (target / rid).exists()


def test_publications_from_before_fingerprints_converge_too(project: Callable[[], Project], cli: Any) -> None:
    """A store written by a version that did not record what each channel carries."""
    proj = project()
    target = drop(proj)
    rid = proj.manifest["id"]
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    with sqlite3.connect(proj.state_dir / "state.db") as db:
        journal = json.loads(db.execute("select journal from publications").fetchone()[0])
        assert CONTENT in journal
        del journal[CONTENT]
        db.execute("update publications set journal = ?", (json.dumps(journal),))
    before = (target / rid / "index.html").stat().st_mtime_ns
    same = cli(proj, "release", proj.manifest_path)
    assert same.exit_code == 0 and "nothing to do" in same.output
    assert (target / rid / "index.html").stat().st_mtime_ns == before
    proj.manifest["title"]["en"] = "Consular Protection (2027)"
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert "Consular Protection (2027)" in page(target, rid)


def test_a_changed_master_is_a_new_version_and_refused(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = drop(proj)
    rid = proj.manifest["id"]
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    before = page(target, rid)
    make_master(proj.manifest_path.parent / "master.mp4", seconds=3)
    proj.manifest["title"]["en"] = "Another video"
    proj.write()
    refused = cli(proj, "release", proj.manifest_path)
    assert refused.exit_code == 2, refused.output
    assert "the master changed" in refused.output and f"{rid}-v2" in refused.output
    assert page(target, rid) == before
    proj.manifest["id"] = f"{rid}-v2"
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert "Another video" in page(target, f"{rid}-v2")
