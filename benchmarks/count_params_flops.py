"""Parameters and FLOPs per window of every architecture (the table in docs/architectures.md).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward
pass of a single 4-frame window (128x128 face, two 40x120 regions) in eval mode:
convolutions and linear layers, 2 FLOPs per multiply-add. The counter does not
see inside the fused CPU LSTM kernel, so each LSTM adds its gate products
analytically: ``frames * 2 * 4 * hidden * (input + hidden)``. Batch norm, ReLU,
pooling, SE gates' elementwise scaling and the uint8 conversion are not counted
(a small fraction). Parameters are the trainable ones.

    python benchmarks/count_params_flops.py                  # paper width 1.0 and the demo's 0.25
    python benchmarks/count_params_flops.py --widths 1 0.125 --frames 4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import markdown_table, write_json  # noqa: E402

from fnpgrade.nn import ARCHITECTURES, build_network  # noqa: E402

INPUT_SIZES = {"face": (128, 128), "brow": (40, 120), "mouth": (40, 120)}


def count(arch, width, frames=4, n_classes=3):
    """``{"params": int, "gflops": float}`` of one window of ``frames`` frames."""
    net = build_network(arch, n_classes=n_classes, width=width).eval()
    params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    window = {name: torch.zeros((1, frames, h, w, 3), dtype=torch.uint8) for name, (h, w) in INPUT_SIZES.items()}
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(**window)
    flops = counter.get_total_flops()
    for lstm in (m for m in net.modules() if isinstance(m, torch.nn.LSTM)):
        flops += frames * 2 * 4 * lstm.hidden_size * (lstm.input_size + lstm.hidden_size)
    return {"params": params, "gflops": flops / 1e9}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--frames", type=int, default=4, help="frames per window (paper: 4)")
    parser.add_argument("--name", default="count_params_flops", help="JSON file name under benchmarks/results/")
    args = parser.parse_args(argv)

    rows = []
    for arch in ARCHITECTURES:
        for width in args.widths:
            numbers = count(arch, width, args.frames)
            rows.append({"arch": arch, "width": width, "params (M)": round(numbers["params"] / 1e6, 3),
                         "GFLOPs / window": round(numbers["gflops"], 3), "params": numbers["params"],
                         "gflops": numbers["gflops"]})
    print(f"Forward FLOPs of one {args.frames}-frame window, 3 classes:\n")
    print(markdown_table(rows, ["arch", "width", "params (M)", "GFLOPs / window"]))
    path = write_json(args.name, {"frames": args.frames, "rows": rows})
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
