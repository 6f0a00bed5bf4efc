"""Named locks: one process at a time per release, one worker at a time per step.

``FileLocks`` (fcntl) serve every process on one machine and are the embedded default;
``publisher.scale.locks.RedisLocks`` serve several machines.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class Busy(Exception):
    """The lock is held elsewhere and the caller asked not to wait."""


class Locks(Protocol):
    def hold(self, name: str, *, wait: bool = True) -> Any: ...


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class FileLocks:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def hold(self, name: str, *, wait: bool = True) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.folder / f"{_safe(name)}.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise Busy(name) from None
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
