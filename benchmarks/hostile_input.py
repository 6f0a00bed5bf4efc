"""Hostile input, the long run: hypothesis-generated manifests, manifests with overrides for a
channel of every kind, caption files, site configs, dates and repeat rules (10 000 of each by
default) through load_release / check_captions (and the WebVTT and ASS writers) / load_config /
the service's trigger code, and a share of them through `publisher check`.
Counts how many were accepted, refused with an InputError, and anything else (crashes, network
access), printing one sample of each crash kind. Exit 1 if anything but accept/refuse happened.

    python benchmarks/hostile_input.py [--examples 10000] [--cli-examples 300] [--only NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.media import make_master  # noqa: E402
from tests.test_hostile_input import (  # noqa: E402
    caption_files,
    configs,
    hostile_folder,
    manifests,
    override_manifests,
    plausible_manifests,
    times_and_rules,
    try_caption,
    try_check,
    try_check_with,
    try_config,
    try_manifest,
    try_times,
)


def campaign(name: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], str],
             examples: int) -> tuple[Counter[str], dict[str, str]]:
    counts: Counter[str] = Counter()
    samples: dict[str, str] = {}

    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value: Any) -> None:
        try:
            counts[check(value)] += 1
        except BaseException as exc:  # counted, not raised: the run goes on
            if isinstance(exc, KeyboardInterrupt):
                raise
            kind = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            key = kind.split(":")[0] + ":" + kind.split(":")[1][:40] if ":" in kind else kind
            counts["CRASH " + key] += 1
            samples.setdefault(key, f"{kind}\n    input: {value!r}"[:1500])

    start = time.monotonic()
    run()
    took = time.monotonic() - start
    total = sum(counts.values())
    print(f"{name}: {total} examples in {took:.0f} s ({total / max(took, 1e-9):.0f}/s)")
    for key, n in counts.most_common():
        print(f"  {n:6d}  {key}")
    return counts, samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--cli-examples", type=int, default=300)
    parser.add_argument("--only", help="run only the campaigns whose name contains this")
    args = parser.parse_args()
    crashes = 0
    all_samples: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = Path(tmp)
        stub = hostile_folder(root / "stub")
        check_root = root / "check"
        hostile_folder(check_root, make_master(root / "master.mp4", seconds=2))
        runs: list[tuple[str, st.SearchStrategy[Any], Callable[[Any], str], int]] = [
            ("manifests (load_release)", manifests, lambda raw: try_manifest(stub, raw), args.examples),
            ("manifests with overrides (load_release)", override_manifests,
             lambda raw: try_manifest(stub, raw), args.examples),
            ("caption files (check_captions, WebVTT and ASS writers)", caption_files(),
             lambda raw: try_caption(stub, raw), args.examples),
            ("site configs (load_config)", configs, lambda raw: try_config(stub.parent, raw), args.examples),
            ("dates and repeat rules (load_release, triggers)", times_and_rules,
             lambda raw: try_times(stub, raw), args.examples),
            ("publisher check (CLI)", st.tuples(manifests, st.none() | configs),
             lambda pair: try_check(check_root, pair[0], pair[1]), args.cli_examples),
            ("dates and repeat rules through publisher check (CLI)", times_and_rules,
             lambda raw: try_check(check_root, raw, None), args.cli_examples),
            ("publisher check, overrides and captions (CLI)",
             st.tuples(override_manifests | plausible_manifests, st.none() | caption_files()),
             lambda pair: try_check_with(check_root, pair[0], pair[1]), args.cli_examples),
        ]
        for name, strategy, check, n in runs:
            if args.only and args.only not in name:
                continue
            counts, samples = campaign(name, strategy, check, n)
            crashes += sum(v for k, v in counts.items() if k.startswith("CRASH"))
            all_samples.update(samples)
    for text in all_samples.values():
        print("sample:", text)
    print(f"uncaught exceptions or network access: {crashes}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
