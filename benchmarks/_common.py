"""Shared helpers for the benchmark scripts: machine description, tables, JSON output."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine():
    """A short description of the machine the numbers came from."""
    info = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as handle:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    # the flags that decide how fast (and whether natively) bf16 and wide vectors run
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next(line.split(":", 1)[1].split() for line in handle if line.startswith("flags"))
        info["cpu_flags"] = [flag for flag in wanted if flag in flags]
    except (OSError, StopIteration):
        info["cpu_flags"] = []
    return info


def peak_rss_gb():
    """Peak resident memory of this process so far, in GB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1024 ** 2) if sys.platform != "darwin" else kb / 1024 ** 3


def markdown_table(rows, columns):
    """Rows (dicts) as a markdown table; floats with 3 significant decimals."""
    def cell(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_json(name, payload):
    """Write ``payload`` (plus the machine) to ``benchmarks/results/<name>.json``; return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    if isinstance(payload, dict):
        payload = {"machine": machine(), **payload}
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
