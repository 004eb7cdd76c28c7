"""Preprocessing speed: frames per second of face detection (and landmarks + ROI crops) on 640x480 frames.

Compares per-frame detection (``detect_every=1``, the baseline) with tracking
(``detect_every=10``: a whole-frame search every 10 frames, a window search in
between), each with ``n_jobs=1`` and ``n_jobs=2`` (clips in parallel), all in one
run on one machine, and reports each speed as a ratio to the per-frame baseline.

The clips are a real face photo (scikit-image's astronaut) drifting and
zooming slowly on 640x480 frames, held in memory, so decoding is not measured.

    python benchmarks/bench_preprocessing.py            # table + benchmarks/results/bench_preprocessing.json
    python benchmarks/bench_preprocessing.py --quick    # fewer frames, one repeat
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import markdown_table, write_json  # noqa: E402

from fnpgrade import FaceDetector, LandmarkROICropper  # noqa: E402
from fnpgrade.datasets.media import package_faces  # noqa: E402


def make_clips(n_clips, n_frames, seed=0):
    """``n_clips`` clips of ``n_frames`` 640x480 frames: the astronaut swaying and zooming slowly.

    The face (about 90 px at 640x480) moves up to 2 px per frame on a smooth
    path that keeps it inside the frame, as in a talking-head video.
    """
    face = package_faces()["astronaut"]
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n_clips):
        phase = rng.uniform(0, 2 * np.pi, size=3)
        clip = np.empty((n_frames, 480, 640, 3), np.uint8)
        for t in range(n_frames):
            scale = 0.75 + 0.08 * np.sin(t / 25.0 + phase[2])
            matrix = np.array([[scale, 0, 320 - 256 * scale], [0, scale, 240 - 256 * scale]])
            matrix[:, 2] += [60 * np.sin(t / 30.0 + phase[0]), 30 * np.sin(t / 20.0 + phase[1])]
            clip[t] = cv2.warpAffine(face, matrix, (640, 480), borderMode=cv2.BORDER_CONSTANT,
                                     borderValue=(90, 90, 90))
        clips.append(clip)
    return clips


def time_transform(step, X, repeats):
    """Best-of-``repeats`` wall and CPU (this process) times of ``step.transform(X)``, after a warm-up call."""
    step.transform(X[:1] if len(X) > 1 else X)  # warm-up: models loaded, joblib workers started
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = step.transform(X)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(times), min(cpu), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4, help="clips per run (default 4)")
    parser.add_argument("--frames", type=int, default=100, help="frames per clip (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs (default 3)")
    parser.add_argument("--detect-every", type=int, default=10, help="tracking setting (default 10)")
    parser.add_argument("--quick", action="store_true", help="2 clips x 40 frames, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.frames, args.repeats = 2, 40, 1

    X = make_clips(args.clips, args.frames)
    n_total = args.clips * args.frames
    load_before = os.getloadavg()
    rows = []
    for label, every in (("per-frame detection", 1), (f"tracking (detect_every={args.detect_every})", args.detect_every)):
        for n_jobs in (1, 2):
            detector = FaceDetector(detect_every=every, n_jobs=n_jobs).fit()
            seconds, cpu_seconds, tracks = time_transform(detector, X, args.repeats)
            found = sum(int(t.found.sum()) for t in tracks)
            full = sum(r["n_full_detections"] for r in detector.transform_report_)
            cropper = LandmarkROICropper(n_jobs=n_jobs).fit()
            crop_seconds, _, _ = time_transform(cropper, tracks, args.repeats)
            rows.append({"mode": label, "detect_every": every, "n_jobs": n_jobs, "frames": n_total,
                         "found": found, "full_searches": full, "detector_fps": n_total / seconds,
                         "detector+cropper_fps": n_total / (seconds + crop_seconds),
                         # CPU seconds of this process: all the work when n_jobs=1 (less sensitive to other
                         # load on a shared machine); meaningless for n_jobs=2 (work runs in workers)
                         "detector_cpu_fps": n_total / cpu_seconds if n_jobs == 1 else None})
    baseline = rows[0]["detector_fps"]
    for row in rows:
        row["x_baseline"] = row["detector_fps"] / baseline
    columns = ["mode", "n_jobs", "frames", "found", "full_searches", "detector_fps", "x_baseline",
               "detector+cropper_fps", "detector_cpu_fps"]
    print(f"FaceDetector on {args.clips} clips x {args.frames} frames of 640x480 (haar, detect_width=320); "
          f"best of {args.repeats}; x_baseline = detector fps / per-frame n_jobs=1 fps, same run.")
    print(markdown_table(rows, columns))
    load_after = os.getloadavg()
    print(f"load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs "
          "(other work on the machine slows every row; compare rows, and detector_cpu_fps)")
    path = write_json("bench_preprocessing", {
        "settings": {"clips": args.clips, "frames_per_clip": args.frames, "repeats": args.repeats,
                     "frame_size": [480, 640], "backend": "haar", "detect_width": 320,
                     "opencv_threads": cv2.getNumThreads()},
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        "rows": rows,
    })
    print(f"written: {path}")
    return rows


if __name__ == "__main__":
    main()
