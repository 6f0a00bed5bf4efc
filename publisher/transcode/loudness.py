"""EBU R128 loudness: one measurement pass per master, shared by every rendition's second pass.

The measurement (``loudnorm`` first pass, audio only) describes the input, not the target, so one
pass serves every target LUFS. It is stored in the cache by the master's sha256; a second release
of the same master runs no ffmpeg at all.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from publisher.errors import TranscodeError
from publisher.models import MasterInfo


@dataclass(frozen=True)
class Measurement:
    input_i: float
    input_tp: float
    input_lra: float
    input_thresh: float


def measure_args(master: MasterInfo, ffmpeg: str) -> list[str]:
    return [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-v", "info", "-i", "file:" + str(master.path),
            "-map", "0:a:0", "-vn", "-af", "loudnorm=print_format=json", "-f", "null", "-"]


def measure(master: MasterInfo, cache_root: Path, ffmpeg: str) -> Measurement | None:
    """The master's loudness, measured once (None when it has no audio or only silence)."""
    if not master.has_audio:
        return None
    stored = cache_root / "loudness" / f"{master.sha256}.json"
    if stored.is_file():
        try:
            data = json.loads(stored.read_text(encoding="utf-8"))
            return Measurement(**data) if data else None
        except (ValueError, TypeError):
            stored.unlink()
    proc = subprocess.run(measure_args(master, ffmpeg), capture_output=True, text=True, check=False)
    found = re.findall(r"\{[^{}]*\"input_i\"[^{}]*\}", proc.stderr)
    if proc.returncode != 0 or not found:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise TranscodeError(f"measuring the loudness of {master.path} failed:\n{tail}")
    raw = json.loads(found[-1])
    values = {k: float(raw[k]) for k in ("input_i", "input_tp", "input_lra", "input_thresh")}
    result = Measurement(**values) if all(math.isfinite(v) for v in values.values()) \
        and values["input_i"] > -70 else None  # silence: nothing to normalise
    stored.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = stored.with_suffix(".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        f.write(json.dumps(asdict(result) if result else {}))
    tmp.replace(stored)
    return result


def loudnorm_options(m: Measurement, target: float, true_peak: float, lra: float) -> dict[str, str]:
    """Second-pass ``loudnorm`` options: the shared measurement plus this rendition's target."""
    return {
        "I": f"{target:.1f}", "TP": f"{true_peak:.1f}", "LRA": f"{lra:.1f}",
        "measured_I": f"{m.input_i:.2f}", "measured_TP": f"{m.input_tp:.2f}",
        "measured_LRA": f"{m.input_lra:.2f}", "measured_thresh": f"{m.input_thresh:.2f}",
        "linear": "true",
    }


def forget_loudness(master: MasterInfo, cache_root: Path) -> None:
    """Drop the stored measurement of a master that turned out not to decode."""
    (cache_root / "loudness" / f"{master.sha256}.json").unlink(missing_ok=True)
