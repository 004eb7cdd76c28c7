"""Peak memory of a paper-scale fit, in RAM against the on-disk clip store, and of a fit on 10x the data.

Each fit runs in a subprocess of its own (peak RSS from ``getrusage`` of that
process), on synthetic windows (memory is measured, not accuracy): 4 frames,
face 128x128 and brow/mouth 40x120, smooth images with a little noise. Rows:

- ``ram``: the clips in memory (``WindowedClip`` lists), as ``fit`` takes them
  today (the baseline of the ratio column);
- ``store``: the same windows written to a :class:`~fnpgrade.scale.store.ClipStore`
  and read lazily, a batch at a time;
- ``store x10``: ten times the paper's windows from the store.

Each with ``activation_checkpointing`` off and/or on. Every fit has the
classifier's defaults (validation split of 20% of the clips) and is cut after
``--max-batches`` training and validation batches (the peak is reached in the
first batches: the activations of one batch and the optimizer state do not
grow after that); the end-of-fit batch-norm recalibration (a forward pass over
every training window, no gradients) is switched off, as it would take longer
than the fit and holds less memory than a training step.

    python benchmarks/bench_memory_scale.py                      # all rows, batch 64, width 1.0
    python benchmarks/bench_memory_scale.py --rows ram,store --checkpointing on
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown_table, peak_rss_gb, write_json  # noqa: E402

PAPER_WINDOWS = 5420
LEVELS = np.array(["I", "II", "III"])


def make_clips(n_windows, windows_per_clip=4, length=4, seed=0):
    """Windowed clips (uint8) of smooth images with a little noise; the level sets the brightness."""
    from fnpgrade.clips import WindowedClip

    rng = np.random.default_rng(seed)
    ramp = {shape: np.linspace(0, 60, shape[1], dtype=np.float32)[None, None, None, :, None]
            for shape in ((128, 128), (40, 120))}
    X, y, total, i = [], [], 0, 0
    while total < n_windows:
        w = min(windows_per_clip, n_windows - total)
        base = 40 + 60 * (i % 3)

        def image(h, width):
            noise = rng.integers(0, 12, (w, length, h, width, 3), dtype=np.uint8)
            return (noise + base + ramp[(h, width)]).astype(np.uint8)

        X.append(WindowedClip(image(128, 128), image(40, 120), image(40, 120), source=f"clip{i}"))
        y.append(LEVELS[i % 3])
        total += w
        i += 1
    return X, np.array(y, dtype=object)


def write_store(path, n_windows, repeat=1):
    """A store of ``n_windows`` windows; with ``repeat`` the same clips are written under ``repeat`` keys each."""
    from fnpgrade.scale.store import ClipStore

    X, y = make_clips(n_windows)
    store = ClipStore(path)
    for r in range(repeat):
        for i, (clip, label) in enumerate(zip(X, y)):
            store.write(f"r{r:02d}-c{i:05d}", clip, label=label, subject=f"s{r}-{i // 7}")
    return store


def current_rss_gb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 ** 3


def child(args):
    """One fit in this process; print its numbers as JSON."""
    from bench_training import FirstBatches  # a WindowLoader cut after max_batches batches

    from fnpgrade import PHCNNClassifier, Runtime

    if args.source == "ram":
        X, y = make_clips(PAPER_WINDOWS)
        groups = None
    else:
        from fnpgrade.scale.store import ClipStore

        store = ClipStore(args.source, mode="r")
        X, y, groups = store.clips(), store.labels(), store.subjects()
    n_windows = sum(c.n_windows for c in X)
    rss_data = current_rss_gb()
    clf = PHCNNClassifier(width=args.width, batch_size=args.batch_size, max_epochs=1, verbose=0, random_state=0,
                          runtime=Runtime(activation_checkpointing=args.checkpointing == "on"),
                          callbacks__bn_recalibration=None,
                          iterator_train=FirstBatches, iterator_train__max_batches=args.max_batches,
                          iterator_valid=FirstBatches, iterator_valid__max_batches=args.max_batches)
    start = time.perf_counter()
    clf.fit(X, y, groups=groups)
    print(json.dumps({"n_windows": n_windows, "rss_with_data_gb": rss_data, "peak_rss_gb": peak_rss_gb(),
                      "fit_s": time.perf_counter() - start}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="ram,store,store x10")
    parser.add_argument("--checkpointing", choices=("off", "on", "both"), default="both")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-batches", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="where the stores are written (default: a temporary folder)")
    parser.add_argument("--out", default="memory_scale")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", default="ram", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fnpgrade-memory-"))
    rows, stores = [], {}
    settings = ("off", "on") if args.checkpointing == "both" else (args.checkpointing,)
    try:
        for row in [r.strip() for r in args.rows.split(",")]:
            source = "ram"
            if row != "ram":
                repeat = 10 if row == "store x10" else 1
                path = workdir / f"store{repeat}.zarr"
                if repeat not in stores:
                    start = time.perf_counter()
                    write_store(path, PAPER_WINDOWS, repeat=repeat)
                    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024 ** 3
                    stores[repeat] = {"write_s": time.perf_counter() - start, "disk_gb": size}
                source = str(path)
            for checkpointing in settings:
                cmd = [sys.executable, __file__, "--child", "--source", source, "--width", str(args.width),
                       "--batch-size", str(args.batch_size), "--max-batches", str(args.max_batches),
                       "--checkpointing", checkpointing]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                result = {"data": row, "activation_checkpointing": checkpointing,
                          **json.loads(out.strip().splitlines()[-1])}
                rows.append(result)
                print(markdown_table([result], list(result)), flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    base = {r["activation_checkpointing"]: r["peak_rss_gb"] for r in rows if r["data"] == "ram"}
    for r in rows:
        r["peak_vs_ram_same_checkpointing"] = (r["peak_rss_gb"] / base[r["activation_checkpointing"]]
                                               if r["activation_checkpointing"] in base else None)
    print("\nPeak RSS of fit (width %.2g, batch %d, %d batches; GiB):\n" % (args.width, args.batch_size,
                                                                         args.max_batches))
    print(markdown_table(rows, ["data", "activation_checkpointing", "n_windows", "rss_with_data_gb", "peak_rss_gb",
                                "peak_vs_ram_same_checkpointing", "fit_s"]))
    print("stores:", stores)
    path = write_json(args.out, {"args": vars(args), "rows": rows, "stores": stores, "machine": machine()})
    print(f"JSON: {path}")


if __name__ == "__main__":
    main()
