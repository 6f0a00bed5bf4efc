"""Long actions started from the console (release, retry, approve, check...) run here, in
background threads, so a request returns at once; pages follow a task by its id.

Tasks live in this process's memory (the state store's event history is the lasting record).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from publisher.contract import redact
from publisher.errors import PublisherError

log = logging.getLogger("publisher.console")
KEEP = 200  # finished tasks remembered


class TaskState(StrEnum):
    running = "running"
    done = "done"
    failed = "failed"


@dataclass
class Outcome:
    """What a finished task says: a headline, lines of detail, and whether it went well."""

    ok: bool
    headline: str
    lines: list[str] = field(default_factory=list)
    table: list[dict[str, str]] = field(default_factory=list)
    release: str = ""  # the release it concerns, once known


@dataclass
class Task:
    id: int
    what: str
    subject: str  # a release id or a manifest path
    user: str
    started: datetime
    state: TaskState = TaskState.running
    progress: float = 0.0
    news: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    finished: datetime | None = None

    def say(self, line: str) -> None:
        self.news.append(redact(line))
        del self.news[:-50]


class Tasks:
    def __init__(self, workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="console-task")
        self._tasks: dict[int, Task] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, what: str, subject: str, user: str, work: Callable[[Task], Outcome]) -> Task:
        task = Task(next(self._ids), what, subject, user, datetime.now(UTC))
        with self._lock:
            self._tasks[task.id] = task
        log.info("%s starts %s of %s (task %d)", user, what, subject, task.id)
        self._pool.submit(self._run, task, work)
        return task

    def _run(self, task: Task, work: Callable[[Task], Outcome]) -> None:
        try:
            outcome = work(task)
        except PublisherError as exc:
            outcome = Outcome(False, f"{task.what} refused", redact(str(exc)).splitlines())
        except Exception as exc:
            log.exception("task %d (%s of %s) failed", task.id, task.what, task.subject)
            outcome = Outcome(False, f"{task.what} failed: internal error",
                              [redact(f"{type(exc).__name__}: {exc}")])
        task.outcome = outcome
        task.finished = datetime.now(UTC)
        task.state = TaskState.done if outcome.ok else TaskState.failed
        log.info("task %d (%s of %s by %s): %s", task.id, task.what, task.subject, task.user,
                 outcome.headline)
        with self._lock:
            done = [t for t in self._tasks.values() if t.finished]
            for old in done[:-KEEP]:
                del self._tasks[old.id]

    def get(self, task_id: int) -> Task | None:
        return self._tasks.get(task_id)

    def about(self, subject: str) -> list[Task]:
        """Tasks on one release or manifest, newest first."""
        with self._lock:
            found = [t for t in self._tasks.values() if t.subject == subject]
        return sorted(found, key=lambda t: t.id, reverse=True)

    def running(self) -> list[Task]:
        with self._lock:
            return [t for t in self._tasks.values() if t.state == TaskState.running]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
