"""Scale-out on a real engine: Dramatiq workers on a real redis-server, a worker killed with
SIGKILL in mid-step, and every publication completed exactly once. PostgreSQL as the store with
advisory-lock leader election, when PostgreSQL is installed."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from publisher.store import Store
from tests.conftest import Project
from tests.servers.postgres_server import pg_bin, postgres_server
from tests.servers.redis_server import redis_server

ROOT = Path(__file__).parent.parent
CHANNELS = ("ocmfa-web", "sb-web", "immd-web")


def _second_release(proj: Project) -> Path:
    src = proj.manifest_path.parent
    dst = proj.root / "release2"
    shutil.copytree(src, dst)
    manifest = dict(proj.manifest, id="travel-safety-2026")
    (dst / "release.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    return dst / "release.yaml"


def _worker(proj: Project, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "publisher", "worker"], cwd=ROOT,
                            env={**proj.env(), **(extra_env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_workers_complete_every_step_once_despite_a_killed_worker(
        project: Callable[[], Project], cli: Any, tmp_path: Path) -> None:
    proj = project()
    with redis_server(tmp_path / "redis") as url:
        proj.settings.update(broker=url, broker_heartbeat_ms=1500)
        for name in CHANNELS:
            proj.add_channel(name, {"kind": "website", "target": str(proj.root / "www" / name),
                                    "public_url": f"https://{name}.example.gov.hk/videos/"})
        proj.write()
        second = _second_release(proj)
        # One worker dies (SIGKILL, as an OOM kill would) right after its second checkpoint.
        doomed = _worker(proj, {"PUBLISHER_CRASH_AT": "journal:2"})
        workers = [_worker(proj), _worker(proj)]
        try:
            for manifest in (proj.manifest_path, second):
                queued = cli(proj, "release", manifest)
                assert queued.exit_code == 0, queued.output
            deadline = time.monotonic() + 240
            rows: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                rows = json.loads(cli(proj, "status", "--json").stdout)
                if len(rows) == 6 and all(r["state"] == "live" for r in rows):
                    break
                time.sleep(1)
            assert len(rows) == 6 and all(r["state"] == "live" for r in rows), rows
            assert doomed.wait(5) == -signal.SIGKILL
        finally:
            for w in [doomed, *workers]:
                if w.poll() is None:
                    w.send_signal(signal.SIGTERM)
            for w in [doomed, *workers]:
                try:
                    w.wait(20)
                except subprocess.TimeoutExpired:
                    w.kill()
    store = Store(f"sqlite:///{proj.state_dir / 'state.db'}")
    for rid in (proj.manifest["id"], "travel-safety-2026"):
        for name in CHANNELS:
            lives = [e for e in store.events(rid) if e.channel == name and e.action == "live"]
            assert len(lives) == 1, (rid, name, lives)  # completed exactly once
            site = proj.root / "www" / name
            assert (site / rid / "video.mp4").is_file()
    for name in CHANNELS:
        releases = sorted(p.name for p in (proj.root / "www" / name).iterdir()
                          if p.is_dir() and not p.name.startswith("."))
        assert releases == sorted([proj.manifest["id"], "travel-safety-2026"])


@pytest.mark.skipif(pg_bin() is None, reason="PostgreSQL is not installed (apt-get install postgresql)")
def test_postgres_store_and_one_leader(project: Callable[[], Project], cli: Any, tmp_path: Path) -> None:
    from publisher.scale.leader import Leadership

    proj = project()
    with postgres_server(tmp_path / "pg") as url:
        proj.settings["store"] = url
        proj.add_channel("ocmfa-web", {"kind": "website", "target": str(proj.root / "www"),
                                       "public_url": "https://www.example.gov.hk/videos/"})
        proj.write()
        result = cli(proj, "release", proj.manifest_path)
        assert result.exit_code == 0, result.output
        rows = json.loads(cli(proj, "status", "--json").stdout)
        assert [(r["channel"], r["state"]) for r in rows] == [("ocmfa-web", "live")]
        assert not (proj.state_dir / "state.db").exists()
        first, second = Leadership(Store(url), tmp_path / "a"), Leadership(Store(url), tmp_path / "b")
        assert first.try_acquire() is True
        assert second.try_acquire() is False
        assert first.try_acquire() is True  # still the leader
        first.release()
        assert second.try_acquire() is True  # a standby takes over
        second.release()
        # The leader's process dies: the server drops its session and the lock with it.
        probe = subprocess.run([sys.executable, "-c", (
            "import os, sys; from pathlib import Path; from publisher.store import Store;"
            "from publisher.scale.leader import Leadership;"
            f"l = Leadership(Store({url!r}), Path({str(tmp_path / 'c')!r}));"
            "assert l.try_acquire(); os.kill(os.getpid(), 9)")], cwd=ROOT)
        assert probe.returncode == -9
        deadline = time.monotonic() + 10
        while not first.try_acquire():
            assert time.monotonic() < deadline, "the dead leader's lock was never freed"
            time.sleep(0.2)
        first.release()
