"""The foundation slice end to end through the CLI: check, plan, release to a website folder,
status; and a catalogue of bad input, each refused with its message and nothing written."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project
from tests.media import make_master


def website(proj: Project) -> Path:
    target = proj.root / "www"
    proj.add_channel("ocmfa-web", {"kind": "website", "target": str(target),
                                   "public_url": "https://www.example.gov.hk/videos/"})
    return target


def state_untouched(proj: Project, target: Path) -> None:
    db = proj.state_dir / "state.db"
    assert not db.exists() or db.stat().st_size == 0 or _no_rows(db)
    assert not target.exists() or not any(p.is_file() for p in target.rglob("*"))


def _no_rows(db: Path) -> bool:
    import sqlite3

    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        if "publications" not in tables:
            return True
        return int(conn.execute("select count(*) from publications").fetchone()[0]) == 0


def test_release_to_website_folder(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = website(proj)
    proj.write()
    checked = cli(proj, "check", proj.manifest_path)
    assert checked.exit_code == 0, checked.output
    assert "640x360" in checked.stdout and "ocmfa-web (website)" in checked.stdout
    planned = cli(proj, "plan", proj.manifest_path)
    assert planned.exit_code == 0, planned.output
    assert "web-mp4" in planned.stdout
    assert not (proj.state_dir / "state.db").exists() or _no_rows(proj.state_dir / "state.db")
    result = cli(proj, "release", proj.manifest_path)
    assert result.exit_code == 0, result.output
    folder = target / proj.manifest["id"]
    video = folder / "video.mp4"
    assert video.is_file() and (folder / "poster.jpg").is_file()
    for lang in ("en", "zh-Hant", "zh-Hans"):
        assert (folder / "captions" / f"{lang}.vtt").read_text(encoding="utf-8").startswith("WEBVTT")
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "Consular Protection" in page and 'lang="en"' in page
    sums = (folder / "SHA256SUMS").read_text()
    for line in sums.splitlines():
        digest, name = line.split(maxsplit=1)
        assert hashlib.sha256((folder / name.lstrip("*")).read_bytes()).hexdigest() == digest
    rows = json.loads(cli(proj, "status", "--json").stdout)
    assert [(r["channel"], r["state"]) for r in rows] == [("ocmfa-web", "live")]
    row = rows[0]
    assert row["checksum"] == hashlib.sha256(video.read_bytes()).hexdigest()
    assert row["url"] == f"https://www.example.gov.hk/videos/{proj.manifest['id']}/"
    assert row["updated_at"].endswith("+00:00")
    assert (proj.state_dir / "state.db").stat().st_mode & 0o077 == 0


def _bad_yaml_duplicate(proj: Project) -> str:
    proj.manifest_path.write_text(proj.manifest_path.read_text(encoding="utf-8") + "id: again\n",
                                  encoding="utf-8")
    return "duplicate key 'id'"


def _missing_file(proj: Project) -> str:
    proj.manifest["thumbnail"] = "nowhere.png"
    proj.write()
    return "file 'nowhere.png' does not exist"


def _path_escape(proj: Project) -> str:
    proj.manifest["captions"]["en"] = "../../../../etc/hostname"
    proj.write()
    return "captions.en"


def _zoneless(proj: Project) -> str:
    proj.manifest["publish_at"] = "2026-12-01T10:00:00"
    proj.write()
    return "has no time zone"


def _big5(proj: Project) -> str:
    path = proj.manifest_path.parent / "subs" / "zh-Hant.vtt"
    path.write_bytes(path.read_text(encoding="utf-8").encode("big5"))
    return "Big5"


def _truncated(proj: Project) -> str:
    master = proj.manifest_path.parent / "master.mp4"
    tmp = proj.root / "full.mp4"
    make_master(tmp)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp), "-c", "copy", "-movflags", "+faststart",
                    str(master)], check=True)
    data = master.read_bytes()
    master.write_bytes(data[: len(data) * 6 // 10])
    return "master.mp4"


def _secret_0644(proj: Project) -> str:
    secret = proj.root / "yt.json"
    secret.write_text('{"client_id": "x", "client_secret": "s3cr3t-value", "refresh_token": "r",'
                      ' "token_uri": "https://127.0.0.1:9/token"}')
    secret.chmod(0o644)
    proj.add_channel("immd-youtube", {"kind": "youtube", "credentials": str(secret)})
    proj.write()
    return "chmod 600"


def _unknown_channel(proj: Project) -> str:
    proj.manifest["channels"] = ["ocmfa-web", "no-such-channel"]
    proj.write()
    return "channel 'no-such-channel' is not in publisher.yaml"


@pytest.mark.parametrize("breaker", [_bad_yaml_duplicate, _missing_file, _path_escape, _zoneless, _big5,
                                     _truncated, _secret_0644, _unknown_channel],
                         ids=lambda f: f.__name__.strip("_"))
def test_bad_input_refused_and_nothing_written(project: Callable[[], Project], cli: Any,
                                               breaker: Callable[[Project], str]) -> None:
    proj = project()
    target = website(proj)
    proj.write()
    expected = breaker(proj)
    for verb in ("check", "release"):
        result = cli(proj, verb, proj.manifest_path)
        assert result.exit_code == 2, result.output
        assert expected in result.stderr, result.stderr
        assert "s3cr3t-value" not in result.output
    state_untouched(proj, target)


def test_bad_input_after_publishing_changes_nothing(project: Callable[[], Project], cli: Any) -> None:
    proj = project()
    target = website(proj)
    proj.write()
    assert cli(proj, "release", proj.manifest_path).exit_code == 0
    before = json.loads(cli(proj, "status", "--json").stdout)
    files = sorted((p.relative_to(target), p.stat().st_mtime_ns) for p in target.rglob("*") if p.is_file())
    _zoneless(proj)
    assert cli(proj, "release", proj.manifest_path).exit_code == 2
    assert json.loads(cli(proj, "status", "--json").stdout) == before
    assert sorted((p.relative_to(target), p.stat().st_mtime_ns) for p in target.rglob("*") if p.is_file()) \
        == files


def test_init_writes_examples_that_load(tmp_path: Path, cli: Any, project: Callable[[], Project]) -> None:
    from publisher.inputs.config import load_config

    proj = project()
    result = cli(proj, "init", tmp_path / "new")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "new" / "publisher.yaml")
    assert config.options["ocmfa-web"].kind == "website"
    assert "publish_at" in (tmp_path / "new" / "release.yaml").read_text(encoding="utf-8")
