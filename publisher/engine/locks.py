"""Named locks: one process at a time per release, one worker at a time per step.

``FileLocks`` (fcntl) serve every process on one machine and are the embedded default.
``RedisLocks`` serve several machines (with ``broker: redis://...``); each lock is a lease that
a keeper thread renews while it is held, so a worker killed with SIGKILL frees it when the lease
runs out instead of blocking the release forever.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import threading
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


class RedisLocks:
    def __init__(self, url: str, *, lease_seconds: float = 30.0) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.lease = lease_seconds

    @contextmanager
    def hold(self, name: str, *, wait: bool = True) -> Iterator[None]:
        from redis.exceptions import LockError

        lock = self.client.lock(f"publisher:lock:{name}", timeout=self.lease, blocking=wait,
                                thread_local=False,  # the keeper thread renews it
                                blocking_timeout=None if wait else 0)
        if not lock.acquire():
            raise Busy(name)
        stop = threading.Event()

        def keep() -> None:
            while not stop.wait(self.lease / 3):
                try:
                    lock.reacquire()
                except LockError:  # lost the lease; nothing more to renew
                    return

        keeper = threading.Thread(target=keep, name=f"lease-{name}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            stop.set()
            keeper.join()
            with contextlib.suppress(LockError):  # the lease already expired: nothing to free
                lock.release()
