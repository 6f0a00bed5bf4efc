"""`publisher status` over a generated store of 10 000 releases x 7 channels (70 000 publications).

Prints the median wall time of: the default table (the 20 most recently changed releases, the
whole command in-process, as the CLI runs it), the same in a fresh `publisher` process (Python
start-up and imports included), a `--state failed` filter, `--json` of every publication, and
one poll of the scheduler (``planned_jobs``), which `publisher run` does every 2 s.

    python benchmarks/status.py [--releases 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, not installed

from publisher.models import MasterInfo, Release
from publisher.schedule.planning import planned_jobs
from publisher.store import Store, sqlite_url
from publisher.store.rows import PublicationRow, ReleaseRow

CHANNELS = {"immd-youtube": "youtube", "ocmfa-web": "website", "immd-web": "website", "sb-web": "website",
            "hkgov-wechat": "wechat", "gov-app-feed": "website", "border-signage": "signage"}
TARGET_SECONDS = 0.5


def generate(state_dir: Path, releases: int) -> Store:
    store = Store(sqlite_url(state_dir))
    rnd = random.Random(8)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    master = MasterInfo(path=Path("/srv/masters/m.mov"), sha256="0" * 64, bytes=10**9, container="mov",
                        video_codec="prores", width=1920, height=1080, fps=25.0, duration=90.0)
    rel_rows, pub_rows = [], []
    for i in range(releases):
        rid = f"release-{i:05d}"
        created = base + timedelta(minutes=37 * i)
        release = Release(id=rid, manifest_path=Path(f"/srv/releases/{rid}/release.yaml"),
                          master=Path("/srv/masters/m.mov"), languages=["en", "zh-Hant", "zh-Hans"],
                          title={"en": f"Public information video {i}", "zh-Hant": "宣傳短片",
                                 "zh-Hans": "宣传短片"})
        rel_rows.append({"id": rid, "manifest_path": str(release.manifest_path), "master_sha256": "0" * 64,
                         "hashes": "{}", "master_json": master.model_dump_json(),
                         "release_json": release.model_dump_json(), "created_at": created,
                         "updated_at": created})
        for name, kind in CHANNELS.items():
            state = rnd.choices(["live", "withdrawn", "failed", "deferred", "scheduled"], [90, 4, 3, 2, 1])[0]
            pub_rows.append({
                "release_id": rid, "channel": name, "kind": kind, "state": state,
                "remote_id": f"{rid}/{name}", "url": f"https://www.example.gov.hk/{name}/{rid}/",
                "checksum": f"{i:064x}", "error": "quota exceeded" if state in ("failed", "deferred") else "",
                "note": "", "publish_at": None, "retry_at": created + timedelta(days=400)
                if state == "deferred" else None, "attempts": 1,
                "journal": json.dumps({"upload": "x" * 200}),
                "created_at": created, "updated_at": created + timedelta(seconds=rnd.randint(0, 3600))})
    with store.session() as s:
        s.execute(insert(ReleaseRow), rel_rows)
        s.execute(insert(PublicationRow), pub_rows)
    return store


def timed(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--releases", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    from typer.testing import CliRunner

    from publisher.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = root / "publisher.yaml"
        config.write_text("channels:\n" + "".join(
            f"  {n}:\n    kind: website\n    target: {root / n}\n    public_url: https://www.example.gov.hk/{n}/\n"
            for n in CHANNELS), encoding="utf-8")
        state = root / "state"
        t = time.perf_counter()
        store = generate(state, args.releases)
        took = time.perf_counter() - t
        print(f"generated {args.releases} releases x {len(CHANNELS)} channels in {took:.1f} s")
        env = {**os.environ, "PUBLISHER_CONFIG": str(config), "PUBLISHER_HOME": str(state), "COLUMNS": "200"}
        os.environ.update(env)
        runner = CliRunner()

        def cli(*argv: str) -> None:
            result = runner.invoke(app, list(argv), catch_exceptions=False)
            assert result.exit_code == 0, result.output

        figures = {
            "status (table, in-process)": timed(lambda: cli("status"), args.runs),
            "status --state failed (table)": timed(lambda: cli("status", "--state", "failed"), args.runs),
            "status --json (all 70 000 rows)": timed(lambda: cli("status", "--json"), args.runs),
            "scheduler poll (planned_jobs)": timed(lambda: planned_jobs(store), args.runs),
        }
        cmd = [sys.executable, "-c", "from publisher.cli import main; main()", "status"]
        figures["status (table, fresh process)"] = timed(
            lambda: subprocess.run(cmd, env=env, check=True, capture_output=True), args.runs)
    for name, seconds in figures.items():
        mark = ""
        if name.startswith("status (table"):
            mark = "  ok (< 0.5 s)" if seconds < TARGET_SECONDS else "  OVER the 0.5 s target"
        print(f"{name:36s} {seconds:7.3f} s{mark}")


if __name__ == "__main__":
    main()
