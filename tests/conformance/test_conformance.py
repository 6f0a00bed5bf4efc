"""One suite every channel kind must pass, as rclone's backends do: publish, re-publish is a
no-op, re-releasing an edited manifest converges, resume after a kill, embargo, update, withdraw,
status and repair. Each kind brings its own real or loopback environment in ``env_<kind>.py``
(see ``base.py``)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.base import ConformanceEnv
from tests.conftest import Project

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _environments() -> list[Any]:
    params = []
    for path in sorted(HERE.glob("env_*.py")):
        mod = importlib.import_module(f"tests.conformance.{path.stem}")
        envs: dict[str, Callable[[Path], AbstractContextManager[ConformanceEnv]]] = getattr(
            mod, "ENVIRONMENTS", {"": getattr(mod, "environment", None)})
        for label, factory in envs.items():
            if factory is not None:
                name = f"{mod.KIND}-{label}" if label else mod.KIND
                params.append(pytest.param((mod.KIND, factory), id=name))
    return params


@pytest.fixture(params=_environments())
def conf(request: pytest.FixtureRequest, tmp_path: Path, project: Callable[[], Project],
         monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ConformanceEnv, Project]]:
    kind, factory = request.param
    with factory(tmp_path / "env") as env:
        for k, v in env.env.items():
            monkeypatch.setenv(k, v)
        proj = project()
        proj.add_channel("chan", dict(env.channel_config))
        proj.settings["retry"] = {"attempts": 4, "base_seconds": 0.05, "max_seconds": 0.2}
        proj.write()
        yield env, proj


def status(cli: Any, proj: Project) -> dict[str, Any]:
    result = cli(proj, "status", "--json")
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads(result.stdout) if r["channel"] == "chan"]
    assert len(rows) == 1
    return rows[0]


def test_publish_then_republish_is_noop(conf: Any, cli: Any) -> None:
    env, proj = conf
    rid = proj.manifest["id"]
    first = cli(proj, "release", proj.manifest_path)
    assert first.exit_code == 0, first.output
    row = status(cli, proj)
    assert row["state"] == "live", row
    assert len(row["checksum"]) == 64 and row["remote_id"] and row["url"]
    assert env.is_public(rid)
    assert len(env.remote_objects(rid)) == 1
    before = row["updated_at"]
    second = cli(proj, "release", proj.manifest_path)
    assert second.exit_code == 0, second.output
    assert len(env.remote_objects(rid)) == 1
    assert status(cli, proj)["updated_at"] == before  # nothing was touched


def test_rerelease_of_an_edited_manifest_converges(conf: Any, cli: Any) -> None:
    env, proj = conf
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    before = env.activity()
    same = cli(proj, "release", proj.manifest_path)
    assert same.exit_code == 0 and "changed since" not in same.output
    assert env.activity() == before  # the unchanged manifest sent nothing at all
    proj.manifest["title"]["en"] = "Consular Protection (edited)"
    proj.manifest["title"]["zh-Hans"] = "领事保护（修订）"
    proj.write()
    caption = proj.manifest_path.parent / "subs" / "en.srt"
    text = caption.read_text(encoding="utf-8")
    caption.write_text(text.replace("Travel safely.", "Keep your passport safe."), encoding="utf-8")
    edited = cli(proj, "release", proj.manifest_path)
    assert edited.exit_code == 0, edited.output
    assert "changed since the last release: title.en, title.zh-Hans, captions.en" in edited.output
    assert env.public_title(rid) in ("Consular Protection (edited)", "领事保护（修订）")
    if env.public_caption is not None:
        assert "Keep your passport safe." in env.public_caption(rid, "en")
    assert len(env.remote_objects(rid)) == 1
    assert status(cli, proj)["state"] == "live"
    after = env.activity()
    again = cli(proj, "release", proj.manifest_path)
    assert again.exit_code == 0 and env.activity() == after  # converged: nothing more to send
    verify = cli(proj, "status", "--verify")
    assert verify.exit_code == 0, verify.output


@pytest.mark.parametrize("crash_after", [1, 3])
def test_resume_after_kill(conf: Any, cli: Any, crash_after: int) -> None:
    env, proj = conf
    rid = proj.manifest["id"]
    killed = subprocess.run(
        [sys.executable, "-m", "publisher", "release", str(proj.manifest_path)],
        env={**proj.env(), "PUBLISHER_CRASH_AT": f"journal:{crash_after}"},
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode in (-9, 0), killed.stderr  # 0: finished before that many checkpoints
    rerun = cli(proj, "release", proj.manifest_path)
    assert rerun.exit_code == 0, rerun.output
    assert status(cli, proj)["state"] == "live"
    assert len(env.remote_objects(rid)) == 1
    assert env.is_public(rid)


def test_embargo_stages_without_going_public(conf: Any, cli: Any) -> None:
    env, proj = conf
    rid = proj.manifest["id"]
    proj.manifest["publish_at"] = (datetime.now(UTC) + timedelta(days=2)).isoformat(timespec="seconds")
    proj.write()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    assert status(cli, proj)["state"] == "scheduled"
    assert not env.is_public(rid)
    again = cli(proj, "release", proj.manifest_path)
    assert again.exit_code == 0
    assert len(env.remote_objects(rid)) <= 1


def test_update_then_withdraw(conf: Any, cli: Any) -> None:
    env, proj = conf
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    proj.manifest["title"]["en"] = "Consular Protection (updated)"
    proj.manifest["title"]["zh-Hans"] = "领事保护（更新）"
    proj.write()
    updated = cli(proj, "update", proj.manifest_path)
    assert updated.exit_code == 0, updated.output
    assert env.public_title(rid) in ("Consular Protection (updated)", "领事保护（更新）")
    assert len(env.remote_objects(rid)) == 1
    gone = cli(proj, "withdraw", rid, "--yes")
    assert gone.exit_code == 0, gone.output
    assert status(cli, proj)["state"] == "withdrawn"
    assert not env.is_public(rid)
    assert env.remote_objects(rid) == []
    assert cli(proj, "withdraw", rid, "--yes").exit_code == 0  # withdrawing twice is not an error


def test_status_verify_matches_store_and_repair_mends_damage(conf: Any, cli: Any) -> None:
    env, proj = conf
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    verify = cli(proj, "status", "--verify", "--json")
    assert verify.exit_code == 0, verify.output
    rows = [r for r in json.loads(verify.stdout) if r["channel"] == "chan"]
    assert rows and rows[0]["state"] == "live"
    assert not rows[0].get("drift"), rows[0]
    if env.damage is None:
        return
    caption = env.public_caption(rid, "en") if env.public_caption else ""
    env.damage(rid)
    found = cli(proj, "status", "--verify")
    assert found.exit_code == 1, found.output
    assert f"publisher repair {rid} --channel chan" in found.output
    repaired = cli(proj, "repair", rid, "--channel", "chan")
    assert repaired.exit_code == 0, repaired.output
    assert cli(proj, "status", "--verify").exit_code == 0
    if env.public_caption is not None:
        assert env.public_caption(rid, "en") == caption
    assert len(env.remote_objects(rid)) == 1 and status(cli, proj)["state"] == "live"
