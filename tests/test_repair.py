"""`publisher repair` when a whole copy was removed by hand: reported, and sent again only with
``--reupload``. (What a repair mends without the flag — a caption file, a YouTube caption track, a
screen's video — is in tests/conformance, ``test_status_verify_matches_store_and_repair_mends_damage``.)"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.fakes.youtube_server import YouTubeFake


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")


def row(cli: Any, proj: Project) -> dict[str, str]:
    return dict(json.loads(cli(proj, "status", "--json").stdout)[0])


def test_a_video_deleted_on_youtube_is_uploaded_again_only_with_reupload(
        project: Callable[[], Project], cli: Any, tmp_path: Path) -> None:
    with YouTubeFake(tmp_path / "youtube") as fake:
        proj = project()
        proj.add_channel("yt", {"kind": "youtube", "api_root": fake.url, "ca_bundle": str(fake.certfile),
                                "credentials": str(fake.write_credentials(tmp_path / "secrets" / "yt.json")),
                                "chunk_mib": 0.25, "timeout": 10})
        proj.write()
        rid = proj.manifest["id"]
        assert cli(proj, "release", proj.manifest_path).exit_code == 0
        vid = row(cli, proj)["remote_id"]
        with fake.model.lock:
            fake.model.videos[vid].deleted = True  # someone deleted it in YouTube Studio
        found = cli(proj, "status", "--verify")
        assert found.exit_code == 1
        assert f"video {vid} is gone from YouTube" in found.output
        assert f"publisher repair {rid} --channel yt --reupload" in found.output
        uploads = fake.calls("videos.insert")
        refused = cli(proj, "repair", rid, "--channel", "yt")
        assert refused.exit_code == 1, refused.output
        assert "not sent again without --reupload" in refused.output
        assert fake.calls("videos.insert") == uploads and fake.live_videos() == []
        again = cli(proj, "repair", rid, "--channel", "yt", "--reupload")
        assert again.exit_code == 0, again.output
        [new] = fake.live_videos()
        assert new != vid and row(cli, proj)["remote_id"] == new and row(cli, proj)["state"] == "live"
        with fake.model.lock:
            video = fake.model.videos[new]
            assert len(video.captions) == 3 and video.thumbnail
        assert cli(proj, "status", "--verify").exit_code == 0


def test_a_website_folder_removed_by_hand_is_rebuilt_only_with_reupload(
        project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    web = proj.root / "www"
    proj.add_channel("web", {"kind": "website", "target": str(web),
                             "public_url": "https://www.example.gov.hk/videos/"})
    proj.write()
    rid = proj.manifest["id"]
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    sums = (web / rid / "SHA256SUMS").read_text(encoding="utf-8")
    shutil.rmtree(web / rid)
    found = cli(proj, "status", "--verify")
    assert found.exit_code == 1 and f"publisher repair {rid} --channel web --reupload" in found.output
    assert cli(proj, "repair", rid).exit_code == 1 and not (web / rid).exists()
    assert cli(proj, "repair", rid, "--reupload").exit_code == 0
    assert (web / rid / "SHA256SUMS").read_text(encoding="utf-8") == sums
    assert cli(proj, "status", "--verify").exit_code == 0
