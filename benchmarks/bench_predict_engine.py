"""The network's prediction by engine: plain eager float32, fnpgrade's torch default, ONNX Runtime.

One paper-size PHCNN-LSTM (``--width``), trained ``--epochs`` on SYNTHETIC
windows (so its probabilities are not all alike), predicts the same held-out
windows three ways, repetitions interleaved in one process so that machine
load hits all alike:

- **plain eager fp32**: ``bench_training.py``'s baseline (a DataLoader with
  default collate, float32 on the host, NCHW, ``torch.no_grad``);
- **fnpgrade, engine="torch"** (the default): ``predict_proba`` with the
  folded, NHWC copy under inference mode;
- **fnpgrade, engine="onnxruntime"**: ``Runtime(engine="onnxruntime")``; its
  first call (the export and the session) is timed apart, the rows are of
  later calls.

Speed-ups are medians of the per-repetition ratios to the plain loop; the
probabilities of the two fnpgrade engines are compared (largest difference,
same predicted level).

    python benchmarks/bench_predict_engine.py                  # paper size, batch 64, 3 repetitions
    python benchmarks/bench_predict_engine.py --threads 1      # one thread for every engine

Writes ``benchmarks/results/predict_engine.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, markdown_table, write_json  # noqa: E402
from bench_training import baseline_infer, make_clips  # noqa: E402

from fnpgrade.classifier import PHCNNClassifier  # noqa: E402
from fnpgrade.nn.runtime import Runtime  # noqa: E402


def timed(function):
    start = time.perf_counter()
    out = function()
    return time.perf_counter() - start, out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--windows", type=int, default=256, help="held-out windows predicted per repetition")
    parser.add_argument("--train-windows", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="threads of every engine (default: torch's)")
    parser.add_argument("--out", default="predict_engine")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    X, y = make_clips(args.train_windows, seed=0)
    X_test, y_test = make_clips(args.windows, seed=1)
    clf = PHCNNClassifier(width=args.width, batch_size=args.batch_size, max_epochs=args.epochs, train_split=None,
                          random_state=0, verbose=0).fit(X, y)
    engines = {"torch": Runtime(), "onnxruntime": Runtime(engine="onnxruntime")}
    first_call_s, _ = timed(lambda: clf.set_params(runtime=engines["onnxruntime"]).predict_proba(X_test[:1]))
    n = sum(c.n_windows for c in X_test)
    rows, proba = [], {}
    for rep in range(args.repeats):
        seconds = {"plain eager fp32": n / baseline_infer(clf.module_, X_test, y_test, args.batch_size, "cpu")}
        for name, runtime in engines.items():
            seconds[f"fnpgrade, engine={name!r}"], proba[name] = timed(
                lambda: clf.set_params(runtime=runtime).predict_proba(X_test))
        base = seconds["plain eager fp32"]
        rows += [{"repeat": rep, "path": path, "windows_per_s": n / s, "vs_plain_eager_fp32": base / s}
                 for path, s in seconds.items()]
    summary = []
    for path in dict.fromkeys(r["path"] for r in rows):
        mine = [r for r in rows if r["path"] == path]
        summary.append({"path": path, "windows/s": round(statistics.median(r["windows_per_s"] for r in mine), 1),
                        "x plain eager fp32": round(statistics.median(r["vs_plain_eager_fp32"] for r in mine), 2)})
    difference = float(np.abs(proba["onnxruntime"] - proba["torch"]).max())
    same_level = bool((proba["onnxruntime"].argmax(1) == proba["torch"].argmax(1)).all())
    print(f"{n} windows, paper width x{args.width:g}, batch {args.batch_size}, {threads} thread(s); "
          f"ONNX Runtime's first call (export + session) {first_call_s:.1f} s\n")
    print(markdown_table(summary, ["path", "windows/s", "x plain eager fp32"]))
    print(f"\nonnxruntime against torch: largest probability difference {difference:.2e}, "
          f"same level for every clip: {same_level}")
    write_json(args.out, {"machine": machine(), "width": args.width, "batch_size": args.batch_size,
                          "n_windows": n, "threads": threads, "repeats": args.repeats,
                          "onnxruntime_first_call_s": round(first_call_s, 2), "summary": summary,
                          "max_probability_difference": difference, "same_level_every_clip": same_level,
                          "repetitions": rows, "data": "SYNTHETIC windows; the network trained "
                                                       f"{args.epochs} epoch(s) on {args.train_windows}"})


if __name__ == "__main__":
    main()
