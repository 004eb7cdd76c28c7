"""Landmark backends against the synthetic generator's true landmarks: dlib vs MediaPipe Face Mesh.

What decides whether the measures of the face use ``landmarks="mediapipe"``:
how well each backend reads the quantities a palsy grader needs, per frame,
against the truth the generator knows (``make_palsy_clips(return_info=True)``):

* ``lid r``          -- eyelid aperture of each eye (mean of the two upper-lower
  lid distances, / inter-ocular distance) vs the true aperture (Pearson r over
  frames x eyes);
* ``lid diff r``     -- left minus right eye aperture vs the true difference;
* ``lid diff slope`` -- least-squares slope of that difference on the truth
  (1 reads the whole asymmetry; a shape prior pulling faces toward symmetry
  reads less);
* ``corner dy r`` / ``corner dx r`` -- mouth corners: left minus right height
  (vertical) and left minus right distance from the face's midline
  (horizontal), in the face's frame (roll removed on the eye line), vs truth;
* ``nme``            -- mean point error of the paper's 49 points / true
  inter-ocular distance;
* ``missed``         -- frames the detector found but the backend returned no
  landmarks for (NaN);
* ``ms/frame``       -- landmark time per frame (the detector's time is apart:
  both backends get the same Haar boxes from ``fnpgrade.FaceDetector``).

A second table gives the left/right differences per expression (eye closure
is where the lid difference matters, smiling where the mouth corners do).

Every measure is computed from the backend's own 68 points exactly as from the
true ones. SYNTHETIC DATA: real faces warped by the generator; the truth is
the generator's, which places landmarks in dlib's (iBUG) convention.

    OMP_NUM_THREADS=1 python benchmarks/bench_landmarks.py            # table + results/landmarks.json
    OMP_NUM_THREADS=1 python benchmarks/bench_landmarks.py --quick    # a smaller run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, markdown_table, write_json  # noqa: E402

from fnpgrade import FaceDetector, make_palsy_clips  # noqa: E402
from fnpgrade.preprocessing.landmarks import IBUG68_TO_49, get_landmark_backend  # noqa: E402
from fnpgrade.preprocessing.roi import detector_box_to_dlib  # noqa: E402

#: iBUG 68 upper/lower lid pairs of each eye: image-left eye (36-41), image-right eye (42-47).
LID_PAIRS = {"left": [(37, 41), (38, 40)], "right": [(43, 47), (44, 46)]}


def face_frame(points):
    """Points ``(N, 68, 2)`` in each face's frame: origin between the eyes, x along the eye line, / IOD."""
    left, right = points[:, 36:42].mean(axis=1), points[:, 42:48].mean(axis=1)
    axis = right - left
    iod = np.linalg.norm(axis, axis=1)
    cos, sin = axis[:, 0] / iod, axis[:, 1] / iod
    rel = points - ((left + right) / 2)[:, None]
    x = rel[..., 0] * cos[:, None] + rel[..., 1] * sin[:, None]
    y = -rel[..., 0] * sin[:, None] + rel[..., 1] * cos[:, None]
    return np.stack([x, y], axis=-1) / iod[:, None, None]


def measures(points):
    """Per-frame measures of ``(N, 68, 2)`` landmarks (see the module docstring)."""
    f = face_frame(points)
    aperture = {side: np.mean([np.linalg.norm(f[:, a] - f[:, b], axis=1) for a, b in pairs], axis=0)
                for side, pairs in LID_PAIRS.items()}
    midline = f[:, 27:31, 0].mean(axis=1)  # nose bridge: the face's vertical midline
    return {
        "lid": np.concatenate([aperture["left"], aperture["right"]]),
        "lid_diff": aperture["left"] - aperture["right"],
        "corner_dy": f[:, 48, 1] - f[:, 54, 1],
        "corner_dx": (midline - f[:, 48, 0]) - (f[:, 54, 0] - midline),
    }


def landmark_frames(tracks, backend):
    """Landmarks ``(N, 68, 2)`` in source pixels on every frame the detector found, and seconds spent."""
    out, seconds = [], 0.0
    for track in tracks:
        n = track.n_frames
        boxes = track.to_crop(detector_box_to_dlib(track.boxes, track.backend).reshape(n, 2, 2)).reshape(n, 4)
        for t in np.flatnonzero(track.found):
            start = time.perf_counter()
            in_crop = backend.predict(track.crops[t], boxes[t])
            seconds += time.perf_counter() - start
            out.append(track.to_source(in_crop, int(t)))
    return np.array(out), seconds


def pearson(a, b):
    keep = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[keep], b[keep])[0, 1])


def slope(pred, true):
    keep = np.isfinite(pred) & np.isfinite(true)
    return float(np.polyfit(true[keep], pred[keep], 1)[0])


def run(args):
    start = time.perf_counter()
    X, _, _, info = make_palsy_clips(n_subjects=args.subjects, clips_per_subject=args.clips,
                                     frames_per_clip=args.frames, random_state=args.seed, return_info=True)
    generate_s = time.perf_counter() - start
    start = time.perf_counter()
    tracks = FaceDetector().fit_transform(X)
    detect_s = time.perf_counter() - start
    # the frames the detector found (tracks may leave out frames: FaceTrack.frame_index says which are kept)
    kept = [track.frame_index[track.found] for track in tracks]
    truth = np.concatenate([marks[index] for marks, index in zip(info["landmarks"], kept)])
    expression = np.concatenate([[e] * len(index) for e, index in zip(info["expression"], kept)])
    true_measures = measures(truth)
    iod = np.linalg.norm(truth[:, 36:42].mean(1) - truth[:, 42:48].mean(1), axis=1)
    n_frames = int(sum(len(marks) for marks in info["landmarks"]))
    n_found = len(truth)

    rows, by_expression = [], []
    for name in args.backends:
        backend = get_landmark_backend(name).load()
        landmark_frames(tracks[:1], backend)  # warm-up: first calls allocate
        points, seconds = landmark_frames(tracks, backend)
        ok = np.isfinite(points).all(axis=(1, 2))
        got = measures(points)
        err = np.linalg.norm(points - truth, axis=2)[:, IBUG68_TO_49].mean(axis=1) / iod
        rows.append({
            "backend": name,
            "frames": n_found,
            "missed": int((~ok).sum()),
            "nme": float(np.nanmean(err)),
            "lid r": pearson(got["lid"], true_measures["lid"]),
            "lid diff r": pearson(got["lid_diff"], true_measures["lid_diff"]),
            "lid diff slope": slope(got["lid_diff"], true_measures["lid_diff"]),
            "corner dy r": pearson(got["corner_dy"], true_measures["corner_dy"]),
            "corner dx r": pearson(got["corner_dx"], true_measures["corner_dx"]),
            "corner dx slope": slope(got["corner_dx"], true_measures["corner_dx"]),
            "ms/frame": 1e3 * seconds / max(len(points), 1),
        })
        for expr in sorted(set(expression)):
            keep = expression == expr
            by_expression.append({
                "expression": expr, "backend": name, "frames": int(keep.sum()),
                "lid diff r": pearson(got["lid_diff"][keep], true_measures["lid_diff"][keep]),
                "corner dy r": pearson(got["corner_dy"][keep], true_measures["corner_dy"][keep]),
                "corner dx r": pearson(got["corner_dx"][keep], true_measures["corner_dx"][keep]),
            })
    by_expression.sort(key=lambda row: (row["expression"], row["backend"]))
    return rows, by_expression, {"n_clips": len(X), "n_frames": n_frames, "n_found": n_found,
                  "generate_s": generate_s, "detect_ms_per_frame": 1e3 * detect_s / n_frames,
                  "expressions": sorted(set(info["expression"]))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--clips", type=int, default=7, help="clips per subject (one expression each)")
    parser.add_argument("--frames", type=int, default=4, help="frames per clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", nargs="+", default=["dlib", "mediapipe"])
    parser.add_argument("--quick", action="store_true", help="4 subjects: a smoke run")
    parser.add_argument("--out", default="landmarks")
    args = parser.parse_args(argv)
    if args.quick:
        args.subjects = 4
    start = time.perf_counter()
    rows, by_expression, data = run(args)
    columns = ["backend", "frames", "missed", "nme", "lid r", "lid diff r", "lid diff slope", "corner dy r",
               "corner dx r", "corner dx slope", "ms/frame"]
    print(f"SYNTHETIC: {data['n_clips']} clips, {data['n_found']}/{data['n_frames']} frames with a face "
          f"(Haar, {data['detect_ms_per_frame']:.1f} ms/frame)\n")
    print(markdown_table(rows, columns))
    print("\nPer expression (left/right differences vs truth, r):\n")
    print(markdown_table(by_expression, ["expression", "backend", "frames", "lid diff r", "corner dy r",
                                         "corner dx r"]))
    seconds = time.perf_counter() - start
    info = machine()
    print(f"\nTotal {seconds:.0f} s on {info.get('cpu')} ({info.get('cpu_count')} CPUs)")
    path = write_json(args.out, {"synthetic": True, "args": vars(args), "data": data, "rows": rows,
                                 "by_expression": by_expression,
                                 "seconds": seconds})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
