"""A full disk under the rendition cache or the state dir (a small tmpfs mounted here; skipped with
the reason where mounting is not allowed): a clean error that names the space problem, no
traceback, a state store that still opens and passes ``PRAGMA integrity_check``, no half cache
entry, and a rerun that finishes once space is back."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Project

ROOT = Path(__file__).resolve().parent.parent
SPACE_WORDS = ("no space", "disk is full", "is full", "disk full", "out of space", "not enough space",
               "free space", "enospc")


@contextlib.contextmanager
def small_fs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mount.stderr.strip() or 'mount failed'}); "
                    "the disk-full tests need root and mount permission")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Write a filler file until the filesystem is full (or only about ``leave`` bytes are free)."""
    filler = folder / "filler"
    st = os.statvfs(folder)
    target = max(0, st.f_bavail * st.f_frsize - leave)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written, size = 0, 1 << 16
    try:
        while size >= 512 and (leave == 0 or written < target):
            try:
                written += os.write(fd, b"\0" * (size if leave == 0 else min(size, target - written)))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                size //= 2
    finally:
        os.close(fd)
    return filler


def run(proj: Project, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a child process, as an operator would run it (so a full log disk is real)."""
    return subprocess.run([sys.executable, "-m", "publisher", *args], env=proj.env(), cwd=ROOT,
                          capture_output=True, text=True, timeout=240)


def assert_clean_space_error(result: subprocess.CompletedProcess[str]) -> None:
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert "Traceback" not in text, f"a raw traceback instead of a message:\n{text[-3000:]}"
    assert "--- Logging error ---" not in text, f"the logger crashed on the full disk:\n{text[-3000:]}"
    assert any(w in text.lower() for w in SPACE_WORDS), f"no word about disk space:\n{text[-3000:]}"


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def publications(db: Path) -> list[tuple[str, str, str]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [tuple(r) for r in conn.execute("select release_id, channel, state from publications")]


def website(proj: Project) -> Path:
    target = proj.root / "www"
    proj.add_channel("web", {"kind": "website", "target": str(target),
                             "public_url": "https://www.example.gov.hk/videos/"})
    return target


def cache_entries(cache: Path) -> tuple[list[Path], list[Path]]:
    """(complete entries, anything else that is not the lock file)."""
    good: list[Path] = []
    other: list[Path] = []
    for entry in cache.iterdir() if cache.is_dir() else []:
        if entry.name in (".lock", "filler"):
            continue
        if entry.name == "sources" and entry.is_dir():  # read-only snapshots named by their sha256
            for f in entry.iterdir():
                digest = hashlib.sha256(f.read_bytes()).hexdigest()
                (good if f.name.split(".")[0] == digest else other).append(f)
            continue
        if entry.name == "loudness" and entry.is_dir():  # one JSON measurement per master
            for f in entry.iterdir():
                complete = f.suffix == ".json" and json.loads(f.read_text(encoding="utf-8"))
                (good if complete else other).append(f)
            continue
        manifest = entry / "manifest.json"
        if entry.is_dir() and manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            assert all((entry / f["name"]).stat().st_size == f["bytes"] for f in data["files"]), entry
            good.append(entry)
        else:
            other.append(entry)
    return good, other


def test_full_rendition_cache(project: Callable[[], Project], tmp_path: Path) -> None:
    with small_fs(tmp_path / "cache", "400k") as cache:
        proj = project()
        proj.settings["cache_dir"] = str(cache)
        target = website(proj)
        proj.write()
        result = run(proj, "release", str(proj.manifest_path))
        assert_clean_space_error(result)
        good, other = cache_entries(cache)
        assert other == [], f"half cache entries left behind: {other}"
        assert not (target / proj.manifest["id"]).exists()
        db = proj.state_dir / "state.db"
        assert integrity(db) == "ok"
        assert all(state in ("failed", "deferred", "pending") for _, _, state in publications(db))
    # space is back (the default cache): the same command finishes
    proj.settings["cache_dir"] = str(tmp_path / "big-cache")
    proj.write()
    again = run(proj, "release", str(proj.manifest_path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert (target / proj.manifest["id"] / "video.mp4").is_file()


def test_full_state_dir(project: Callable[[], Project], tmp_path: Path) -> None:
    with small_fs(tmp_path / "state", "2m") as state:
        proj = project()
        proj.state_dir = state
        target = website(proj)
        proj.write()
        first = run(proj, "release", str(proj.manifest_path))
        assert first.returncode == 0, first.stdout + first.stderr
        # a second release onto the now full disk
        proj.manifest["id"] = "second-release-2026"
        proj.write()
        filler = fill(state)
        result = run(proj, "release", str(proj.manifest_path))
        assert_clean_space_error(result)
        filler.unlink()
        db = state / "state.db"
        assert integrity(db) == "ok"
        rows = publications(db)
        assert ("consular-protection-2026", "web", "live") in rows
        assert not (target / "second-release-2026" / "index.html").exists() or \
            ("second-release-2026", "web", "live") in rows, "published but not recorded"
        again = run(proj, "release", str(proj.manifest_path))
        assert again.returncode == 0, again.stdout + again.stderr
        assert ("second-release-2026", "web", "live") in publications(db)
        assert integrity(db) == "ok"


def test_state_dir_fills_up_during_the_run(project: Callable[[], Project], tmp_path: Path) -> None:
    """Room for the store to open, not for the whole run: every outcome is clean and resumable."""
    with small_fs(tmp_path / "state", "2m") as state:
        proj = project()
        proj.state_dir = state
        target = website(proj)
        proj.write()
        assert run(proj, "check", str(proj.manifest_path)).returncode == 0
        filler = fill(state, leave=48 * 1024)
        result = run(proj, "release", str(proj.manifest_path))
        text = result.stdout + result.stderr
        if result.returncode != 0:
            assert_clean_space_error(result)
        assert "Traceback" not in text
        filler.unlink()
        db = state / "state.db"
        if db.exists() and db.stat().st_size:
            assert integrity(db) == "ok"
        again = run(proj, "release", str(proj.manifest_path))
        assert again.returncode == 0, again.stdout + again.stderr
        assert (target / proj.manifest["id"] / "video.mp4").is_file()
        assert publications(db) == [(proj.manifest["id"], "web", "live")]
