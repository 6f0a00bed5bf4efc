"""Where the one encode spends its time on this machine, for the seed's seven channels.

Runs publisher's own ffmpeg command for the seed's missing renditions, then variants of it, and
prints wall and ffmpeg CPU seconds of each (CPU is the dependable column when other work shares
the machine): the decode alone, the loudness measurement pass, the whole encode, the encode
without the 360p rung, without the burned-in subtitles, with x264 limited to 1 or 2 threads per
encoder, and with ffmpeg's filter graph on one thread.

    python benchmarks/encode_parts.py [--duration 8]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, not installed

from benchmarks.transcode import SEED, make_inputs, timed  # noqa: E402
from publisher.transcode import Transcoder  # noqa: E402
from publisher.transcode import ffmpeg as ff  # noqa: E402
from publisher.transcode.loudness import measure, measure_args  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=8, help="master length in seconds (default 8)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="publisher-parts-"))
    try:
        release, master = make_inputs(root, args.duration, "1920x1080", 25)
        t = Transcoder(root / "cache")
        plan = t.plan(release, master, SEED)
        jobs = [plan.jobs[i.key] for i in plan.items if plan.jobs[i.key].encodes]
        work = root / "work"
        work.mkdir()
        base = t._encodes(jobs, work)
        loud = measure(master, root / "cache", "ffmpeg")
        fontsdir = t._fontsdir(base)

        def encode(encodes: list[ff.Encode], extra: list[str] | None = None) -> Callable[[], None]:
            def run() -> None:
                argv = ff.build_args(master, encodes, loud, "ffmpeg", fontsdir, verify=True)
                if extra:
                    argv = [argv[0], *extra, *argv[1:]]
                subprocess.run(argv, cwd=work, check=True, capture_output=True)
            return run

        def with_threads(n: int) -> Callable[[], None]:
            original = ff.video_options

            def run() -> None:
                ff.video_options = lambda spec, fps: {**original(spec, fps), "threads": n}  # type: ignore[assignment]
                try:
                    encode(base)()
                finally:
                    ff.video_options = original  # type: ignore[assignment]
            return run

        no_360 = [e for e in base if e.spec.height != 360]
        no_burn = [replace(e, burn_file="") if e.burn_file else e for e in base]
        rows: list[tuple[str, Callable[[], Any]]] = [
            ("decode only", lambda: subprocess.run(
                ["ffmpeg", "-v", "error", "-i", str(master.path), "-f", "null", "-"], check=True)),
            ("loudness measurement pass", lambda: subprocess.run(measure_args(master, "ffmpeg"), check=True,
                                                                 capture_output=True)),
            (f"publisher's encode ({len(base)} encoders)", encode(base)),
            ("  without the 360p rung", encode(no_360)),
            ("  without burned-in subtitles", encode(no_burn)),
            ("  x264 with 1 thread per encoder", with_threads(1)),
            ("  x264 with 2 threads per encoder", with_threads(2)),
            ("  filter graph on 1 thread", encode(base, ["-filter_complex_threads", "1"])),
        ]
        print(f"master: 1920x1080 25 fps, {args.duration:g} s; encoders: "
              + ", ".join(f"{e.spec.width}x{e.spec.height}" + (" burn" if e.burn_file else "") for e in base))
        width = max(len(name) for name, _ in rows)
        print(f"{'':<{width}}  {'wall':>7}    {'ffmpeg CPU':>10}")
        for name, fn in rows:
            wall, cpu = timed(fn)
            print(f"{name:<{width}}  {wall:7.1f} s  {cpu:8.1f} s", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
