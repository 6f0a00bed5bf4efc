"""The crash harness in miniature (CI): 2 releases x 2 channels, 5 SIGKILLs at random instants;
no duplicate remote object, no lost publication, no checksum mismatch. The full run (20 x 5,
>= 100 kills) is ``python benchmarks/crash_harness.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _harness() -> object:
    spec = importlib.util.spec_from_file_location("crash_harness", ROOT / "benchmarks" / "crash_harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_harness"] = module
    spec.loader.exec_module(module)
    return module


def test_short_crash_harness(tmp_path: Path, master_file: Path) -> None:
    harness = _harness()
    figures = harness.run_harness(tmp_path, releases=2, channels=2, kills=5, seed=7,  # type: ignore[attr-defined]
                                  master=master_file, log=lambda _: None)
    print(figures.report())
    assert figures.duplicates == 0, figures.problems
    assert figures.lost == 0, figures.problems
    assert figures.mismatches == 0, figures.problems
    assert figures.kills >= 3, figures.report()  # a planned kill may come after the run finished
    assert len(figures.channels) == 2
