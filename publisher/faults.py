"""Crash points for resilience tests: ``PUBLISHER_CRASH_AT=journal:3`` kills this process with
SIGKILL right after its third journal write, exactly as a power cut or OOM kill would."""

from __future__ import annotations

import os
import signal
import threading

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
