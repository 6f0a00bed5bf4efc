"""kill -9 of publisher at random points of the upload and metadata steps, then rerun:
exactly one video, byte-identical, all captions, one thumbnail, one playlist entry."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes import youtube_run as run
from tests.fakes.youtube_server import YouTubeFake
from tests.test_youtube import assert_complete, options

ROOT = Path(__file__).resolve().parents[1]


class Child:
    """publisher in its own process: forked (fast, for the runs that get killed) or a fresh
    interpreter (for the rerun: only what is on disk carries over)."""

    def __init__(self, folder: Path, fresh: bool) -> None:
        self.proc: subprocess.Popen[bytes] | multiprocessing.process.BaseProcess
        if fresh:
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.youtube_run", str(folder)],
                                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        else:
            self.proc = multiprocessing.get_context("fork").Process(target=_forked, args=(folder,))
            self.proc.start()
        assert self.proc.pid is not None
        self.pid: int = self.proc.pid

    def wait(self) -> tuple[int, str]:
        if isinstance(self.proc, subprocess.Popen):
            out, _ = self.proc.communicate(timeout=60)
            return self.proc.returncode, out.decode()
        self.proc.join(60)
        return int(self.proc.exitcode or 0), ""


def _forked(folder: Path) -> None:
    logging.disable(logging.CRITICAL)
    os._exit(run.main(folder))


def run_killed_at(fake: YouTubeFake, folder: Path, event: int | tuple[str, str, int],
                  fresh: bool = False) -> bool:
    """Run the child and SIGKILL it at the server's ``event``-th request event (or at the n-th
    (call, phase) event, e.g. ("chunk", "done", 4)); True if it was killed."""
    seen: list[tuple[str, str]] = []
    proc = Child(folder, fresh)

    def hook(call: str, phase: str) -> None:
        seen.append((call, phase))
        hit = (len(seen) == event if isinstance(event, int)
               else (call, phase) == event[:2] and seen.count((call, phase)) == event[2])
        if hit:
            os.kill(proc.pid, signal.SIGKILL)

    fake.server.hook = hook
    try:
        code, out = proc.wait()
    finally:
        fake.server.hook = None
    fake.wait_idle()
    if code == -signal.SIGKILL:
        return True
    assert code == 0, out
    return False


# the points where losing the process is most dangerous, then random ones
TARGETED: list[list[tuple[str, str, int]]] = [
    [("videos.insert", "done", 1), ("chunk", "done", 3), ("chunk", "start", 1)],
    [("chunk", "done", 4), ("captions.insert", "done", 2), ("thumbnails.set", "done", 1),
     ("playlistItems.insert", "start", 1)],
]


@pytest.mark.parametrize("plan", [TARGETED[0], TARGETED[1], 7, 2026], ids=["upload", "steps", "r7", "r2026"])
def test_kill_then_rerun(tmp_path: Path, master_file: Path, plan: list[tuple[str, str, int]] | int) -> None:
    rnd = random.Random(plan) if isinstance(plan, int) else None
    folder = tmp_path / "rel"
    run.prepare(folder, master_file)
    with YouTubeFake(tmp_path / "fake") as fake:
        setup = {"options": dict(options(fake, folder), kind="youtube")}
        (folder / "setup.json").write_text(json.dumps(setup), encoding="utf-8")
        kills = 0
        # a clean run makes ~26 request events (start and done of each request)
        points: list[int | tuple[str, str, int]] = (
            [rnd.randint(1, 26) for _ in range(4)] if rnd else list(plan))  # type: ignore[arg-type]
        for point in points:
            kills += run_killed_at(fake, folder, point)
        assert kills >= (2 if rnd else len(points))
        assert not run_killed_at(fake, folder, 10**6, fresh=True)  # the rerun, untouched
        outcome = json.loads((folder / "outcome.json").read_text())
        assert outcome["state"] == "live"
        assert_complete(fake, folder, outcome["remote_id"])
        assert outcome["checksum"] == run.sha(folder / "yt" / "master.mp4")
        # and once more: nothing is uploaded again
        chunks = fake.calls("chunk")
        assert not run_killed_at(fake, folder, 10**6)
        assert fake.calls("chunk") == chunks and len(fake.live_videos()) == 1
