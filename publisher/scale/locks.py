"""Locks for several machines (with ``broker: redis://...``): each lock is a Redis lease that a
keeper thread renews while it is held, so a worker killed with SIGKILL frees it when the lease runs
out instead of blocking the step forever."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from publisher.engine.locks import Busy


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
