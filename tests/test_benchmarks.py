"""The release benchmark runs end to end on a very short master and prints every figure line.
It measures; this only checks that it works (no timings are asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_release_benchmark_runs_on_a_short_master() -> None:
    args = [sys.executable, str(ROOT / "benchmarks" / "release.py"), "--seconds", "2", "--size", "640x360",
            "--skip-naive", "--upload-mb", "4"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for line in ("floor command", "one-process floor", "publisher release, whole", "of which the transcode",
                 "second release, same master", "release / floor", "release / max(transcode, slowest upload)",
                 "WebDAV upload of"):
        assert line in out, out
    for channel in ("immd-youtube", "sb-web", "immd-web", "ocmfa-web", "consular-wechat", "safeguard-feed",
                    "immd-signage"):
        assert f"  {channel} " in out and "live" in out.split(f"  {channel} ")[1].splitlines()[0], out
    assert "encodes in the second release                  0" in out, out
