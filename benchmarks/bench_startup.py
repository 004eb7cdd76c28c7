"""Start-up: how long the command line takes before it does anything, against loading torch in the same run.

``fnpgrade --help`` (and every command's argument parsing) should not wait on
torch or scikit-learn: they load when a command needs them. The yardstick,
timed in turn with it, is ``python -c "import torch"`` (what the command line
paid before the architectures' names were known without torch), so the ratio
holds on a noisy machine.

Run: ``python benchmarks/bench_startup.py`` (about 30 s). Writes ``benchmarks/results/startup.json``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from _common import machine, markdown_table, write_json

COMMANDS = {
    "fnpgrade --help": [sys.executable, "-m", "fnpgrade", "--help"],
    "fnpgrade report --help": [sys.executable, "-m", "fnpgrade", "report", "--help"],
    "import fnpgrade": [sys.executable, "-c", "import fnpgrade"],
    "import torch (yardstick)": [sys.executable, "-c", "import torch"],
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    seconds = {name: [] for name in COMMANDS}
    for _ in range(args.runs + 1):  # the first round warms the file cache and is dropped
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            seconds[name].append(time.perf_counter() - start)
    yardstick = statistics.median(seconds["import torch (yardstick)"][1:])
    rows = [{"command": name, "median s": round(statistics.median(times[1:]), 3),
             "ratio to import torch": round(statistics.median(times[1:]) / yardstick, 3)}
            for name, times in seconds.items()]
    print(markdown_table(rows, ["command", "median s", "ratio to import torch"]))
    write_json("startup", {"machine": machine(), "runs": args.runs, "rows": rows})


if __name__ == "__main__":
    main()
