"""What another Unix user sees of the files publisher writes: modes, and reads as that user."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process umask (also inherited by servers started inside the block)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def reads(user: str, path: Path) -> bool:
    """True when ``user`` can read ``path`` (``runuser -u USER -- cat PATH``)."""
    if os.geteuid() != 0:
        pytest.fail("reading as another user needs root (runuser); the test suite runs as root")
    proc = subprocess.run(["runuser", "-u", user, "--", "cat", str(path)], capture_output=True, check=False)
    return proc.returncode == 0 and proc.stdout == path.read_bytes()


def modes(root: Path, skip: str = ".publisher-staging") -> dict[str, int]:
    """Permission bits of ``root`` ('.') and of everything under it, by relative path."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not rel.startswith(skip):
            out[rel] = stat.S_IMODE(path.lstat().st_mode)
    return out


def public_modes(root: Path, folder: int = 0o755, file: int = 0o644) -> list[str]:
    """Everything under ``root`` whose mode is not the public one: empty when all is right."""
    return [f"{rel} {mode:04o}" for rel, mode in modes(root).items()
            if mode != (folder if (root / rel).is_dir() else file)]


def others_can_read(path: Path, top: Path) -> bool:
    """By mode bits: any user can read ``path`` and enter every folder from ``top`` down to it."""
    folders = [p for p in path.parents if p == top or top in p.parents]
    return bool(path.stat().st_mode & 0o004) and all(f.stat().st_mode & 0o005 == 0o005 for f in folders)
