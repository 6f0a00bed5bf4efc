"""The youtube channel through the CLI: release, quota deferral (exit 75), sign-in trouble."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from publisher.store import Store, sqlite_url
from tests.conftest import Project
from tests.fakes.youtube_server import YouTubeFake


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[YouTubeFake]:
    with YouTubeFake(tmp_path / "fake") as f:
        yield f


@pytest.fixture
def proj(project: Callable[[], Project], fake: YouTubeFake) -> Project:
    p = project()
    fake.write_credentials(p.root / "secrets" / "yt.json")
    p.add_channel("yt", {"kind": "youtube", "credentials": "secrets/yt.json", "api_root": fake.url,
                         "ca_bundle": str(fake.certfile), "chunk_mib": 0.25, "timeout": 10})
    p.settings["retry"] = {"attempts": 3, "base_seconds": 0.05, "max_seconds": 0.1}
    p.write()
    return p


def rows(cli: Any, proj: Project) -> dict[str, Any]:
    result = cli(proj, "status", "--json")
    assert result.exit_code == 0, result.output
    return {r["channel"]: r for r in json.loads(result.stdout)}


def test_release_plan_and_rerun(cli: Any, proj: Project, fake: YouTubeFake) -> None:
    plan = cli(proj, "plan", proj.manifest_path)
    assert plan.exit_code == 0, plan.output
    assert "captions.insert" in plan.output and fake.model.log == []
    quota = Store(sqlite_url(proj.state_dir)).accounts
    assert quota.update("youtube-quota:yt", dict) == {}  # planning spends nothing
    first = cli(proj, "release", proj.manifest_path)
    assert first.exit_code == 0, first.output
    # the budget is kept in the state store, for every process using the project; no file elsewhere
    spent = quota.update("youtube-quota:yt", dict)
    assert spent["uploads"] == 1 and spent["units"] >= 1200
    assert not (proj.state_dir / "channels" / "_quota").exists()
    row = rows(cli, proj)["yt"]
    assert row["state"] == "live" and row["url"].endswith(row["remote_id"])
    vid = row["remote_id"]
    assert fake.live_videos() == [vid]
    v = fake.model.videos[vid]
    assert sorted(c["snippet"]["language"] for c in v.captions.values()) == ["en", "zh-Hans", "zh-Hant"]
    assert v.thumbnail.startswith(b"\xff\xd8")
    assert v.localizations["zh-Hant"]["title"] == "領事保護"
    assert row["checksum"] == hashlib.sha256(fake.model.video_bytes(vid)).hexdigest()
    calls = len(fake.model.log)
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    assert len(fake.model.log) == calls  # a published release uploads nothing


def test_quota_exhausted_is_deferred_with_exit_75(cli: Any, proj: Project, fake: YouTubeFake) -> None:
    fake.model.unit_limit = 500
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 75, result.output
    row = rows(cli, proj)["yt"]
    assert row["state"] == "deferred" and "quota" in row["error"]
    assert fake.calls("videos.insert") == 1
    calls = len(fake.model.log)
    again = cli(proj, "release", proj.manifest_path)  # held until Pacific midnight: no calls
    assert again.exit_code == 75
    assert len(fake.model.log) == calls


def test_revoked_sign_in_names_the_auth_command(cli: Any, proj: Project, fake: YouTubeFake) -> None:
    fake.model.revoke_refresh_tokens()
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 1
    row = rows(cli, proj)["yt"]
    assert row["state"] == "failed" and "publisher auth yt" in row["error"]
    text = result.output + json.dumps(row)
    assert fake.model.client_secret not in text
    assert json.loads((proj.root / "secrets" / "yt.json").read_text())["refresh_token"] not in text


def test_check_refuses_youtube_rules(cli: Any, proj: Project, fake: YouTubeFake) -> None:
    proj.manifest["title"]["en"] = "T" * 101
    proj.manifest["description"]["zh-Hans"] = "领" * 1700
    proj.write()
    result = cli(proj, "check", proj.manifest_path)
    assert result.exit_code == 2
    assert "title.en" in result.output and "description.zh-Hans" in result.output
    assert fake.model.log == []
