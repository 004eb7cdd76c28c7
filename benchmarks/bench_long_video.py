"""Memory stays bounded on long videos: stream a long 1080p video through FaceDetector.

Writes a synthetic 1080p video (a real face photo moving over a background), then
measures, each in a fresh process, the peak resident memory of
``FaceDetector(fps=6).fit_transform([video])`` on a short and on a long video.
The output (256x256 face crops of the kept frames) grows with the video by
design; streaming means the memory beyond it stays that of the short video
(ratio near 1), where holding the video whole would need ``frames x 6 MB``.

    python benchmarks/bench_long_video.py               # 10-minute video (slow: minutes)
    python benchmarks/bench_long_video.py --minutes 1   # quicker
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, write_json  # noqa: E402


def write_long_video(path, seconds, fps=30, size=(1920, 1080)):
    import cv2

    from fnpgrade.datasets.media import package_faces

    # the astronaut's head, large enough for the default detect_width (a 1080p frame is shrunk 6x)
    face = cv2.resize(package_faces()["astronaut"][20:240, 120:340], (720, 720))
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    background = np.tile(np.linspace(40, 200, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
    for t in range(int(seconds * fps)):
        frame = background.copy()
        x = int(600 + 200 * np.sin(t / 90.0))
        y = int(250 + 60 * np.cos(t / 70.0))
        frame[y:y + 720, x:x + 720] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


_CHILD = """
import sys, resource, time
from fnpgrade import FaceDetector
t = time.perf_counter()
tracks = FaceDetector(fps=6).fit_transform([sys.argv[1]])
seconds = time.perf_counter() - t
print(len(tracks[0].found), int(tracks[0].found.sum()), tracks[0].crops.nbytes, seconds,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(video):
    out = subprocess.run([sys.executable, "-c", _CHILD, str(video)], check=True, capture_output=True, text=True)
    frames, found, crop_bytes, seconds, rss_kb = out.stdout.split()[-5:]
    peak = int(rss_kb) / 1024 ** 2
    # The face crops are the detector's output and grow with the clip by design (256x256x3 per kept
    # frame); what streaming must keep constant is everything else.
    return {"frames_at_6fps": int(frames), "faces_found": int(found), "seconds": float(seconds),
            "peak_rss_gb": peak, "output_crops_gb": int(crop_bytes) / 1024 ** 3,
            "rss_minus_output_gb": peak - int(crop_bytes) / 1024 ** 3}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the long video")
    parser.add_argument("--short-seconds", type=float, default=20.0, help="length of the baseline video")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, seconds in (("short (baseline)", args.short_seconds), ("long", args.minutes * 60)):
            video = write_long_video(Path(tmp) / f"{label.split()[0]}.mp4", seconds)
            row = {"video": label, "seconds_of_video": seconds, "resolution": "1920x1080 @ 30 fps",
                   "size_mb": round(video.stat().st_size / 1e6, 1), **measure(video)}
            rows.append(row)
    ratio = rows[1]["rss_minus_output_gb"] / rows[0]["rss_minus_output_gb"]
    whole_gb = rows[1]["seconds_of_video"] * 30 * 1920 * 1080 * 3 / 1e9
    print(markdown_table(rows, ["video", "seconds_of_video", "size_mb", "frames_at_6fps", "faces_found",
                                "seconds", "peak_rss_gb", "output_crops_gb", "rss_minus_output_gb"]))
    print(f"\npeak RSS beyond the output crops, long / short: {ratio:.2f}  (holding the long video whole "
          f"would need {whole_gb:.0f} GB)")
    path = write_json("long_video", {"rows": rows, "rss_minus_output_ratio_long_vs_short": ratio,
                                     "whole_video_gb": whole_gb})
    print(f"written: {path}")


if __name__ == "__main__":
    main()
