"""Crash points for resilience tests: ``PUBLISHER_CRASH_AT=journal:3`` kills this process with
SIGKILL right after its third journal write, exactly as a power cut or OOM kill would.

Pause points: ``PUBLISHER_PAUSE_AT=checked:/tmp/flag`` makes the process create ``/tmp/flag`` at that
point and wait until the file is gone, so a test can change the world between two steps (replace
a file after it was checked) of a real process."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

_counts: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    spec = os.environ.get("PUBLISHER_CRASH_AT", "")
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] >= int(count or "1"):
            os.kill(os.getpid(), signal.SIGKILL)


def pause_point(name: str, limit: float = 300.0) -> None:
    point, _, flag = os.environ.get("PUBLISHER_PAUSE_AT", "").partition(":")
    if point != name or not flag:
        return
    path = Path(flag)
    path.write_text(str(os.getpid()), encoding="utf-8")
    deadline = time.monotonic() + limit
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
