"""Leader election for ``publisher run``: several instances may run, one fires jobs.

With PostgreSQL as the store, leadership is a session-level advisory lock held on a dedicated
connection: when the leader's process or machine dies, the server drops the session and the lock,
and a standby's next ``try_acquire`` wins. With SQLite (one machine) an fcntl lock in the state
dir does the same for processes on that machine.
"""

from __future__ import annotations

import fcntl
import logging
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from publisher.store import Store

log = logging.getLogger("publisher.scale.leader")
LOCK_KEY = 0x7075626C  # "publ"


class Leadership:
    def __init__(self, store: Store, state_dir: Path) -> None:
        self.store = store
        self.state_dir = state_dir
        self._conn: Any = None
        self._file: IO[str] | None = None

    @property
    def postgres(self) -> bool:
        return self.store.engine.dialect.name == "postgresql"

    def try_acquire(self) -> bool:
        """True when this process leads (now or already). Cheap enough to call every few seconds."""
        if self.postgres:
            return self._try_postgres()
        if self._file is None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fh = open(self.state_dir / "scheduler.lock", "w")  # noqa: SIM115 - held for the process life
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                return False
            self._file = fh
        return True

    def _try_postgres(self) -> bool:
        try:
            if self._conn is not None:
                self._conn.execute(text("select 1"))
                return True
            conn = self.store.engine.connect()
            got = conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
            conn.commit()
            if got:
                self._conn = conn
                log.info("this scheduler is now the leader")
                return True
            conn.close()
            return False
        except SQLAlchemyError as exc:
            log.warning("lost contact with the store; leadership dropped: %s", exc)
            self._drop()
            return False

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
            except SQLAlchemyError:
                log.debug("closing a dead leader connection failed", exc_info=True)
            self._conn = None

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("select pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                self._conn.close()
            except SQLAlchemyError:
                log.debug("unlock failed; the server frees it with the session", exc_info=True)
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None
