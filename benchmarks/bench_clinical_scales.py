"""Sunnybrook and eFACE-style scores from the measures, against known truth.

Two data sets, neither of patients:

* SYNTHETIC examinations: ``make_palsy_clips`` subjects, 7 clips each, one
  per expression of the examination (rest, brow raise, gentle and tight eye
  closure, smile, lip pucker, nose wrinkle); the generator knows each
  region's remaining strength (``HB_WEAKNESS``) and the resting droop. The
  truth is scored with the same cut-points from the true strengths
  (voluntary: the strength; resting: the droop). No model is trained, so
  every subject is "held out".
* SIMULATED palsy on REAL video: the 48 real-motion videos
  (``make_real_motion_palsy``, 6 fps), each scored as a whole-video
  examination; the composite should fall as the grade rises (Spearman), and
  the healthy originals should score >= 90 with side "none".

Run: ``python benchmarks/bench_clinical_scales.py`` (reuses the measurements
``bench_real_motion.py`` cached under the data home; makes them if absent).
Writes ``benchmarks/results/clinical_scales.json``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import machine, markdown_table, write_json


def truth_scores(hb):
    """Sunnybrook voluntary items, composite and eFACE dynamic from the generator's true strengths."""
    from fnpgrade.clinical.sunnybrook import REST_OFFSET_IOD, VOLUNTARY_STEPS
    from fnpgrade.datasets.expressions import HB_WEAKNESS

    w = HB_WEAKNESS[int(hb)]
    strengths = {"brow_raise": w["forehead"], "gentle_eye_closure": w["eye"], "open_smile": w["mouth"],
                 "snarl": w["mouth"], "lip_pucker": w["mouth"]}
    items = {k: 1 + int(np.searchsorted(VOLUNTARY_STEPS, v, side="right")) for k, v in strengths.items()}
    droop = w["droop"]
    resting = (2 if droop >= 2 * REST_OFFSET_IOD else int(droop >= REST_OFFSET_IOD)) + int(droop >= REST_OFFSET_IOD)
    dynamic = 100 * np.mean([w["forehead"], w["eye"], w["eye"], w["mouth"], w["mouth"]])
    return items, 4 * sum(items.values()) - 5 * resting, dynamic


def main(argv=None):
    from scipy.stats import pearsonr, spearmanr

    import joblib

    from bench_real_motion import measure_paths
    from fnpgrade import make_palsy_clips
    from fnpgrade.clinical import measure_examination, score_examination
    from fnpgrade.config import get_data_home
    from fnpgrade.datasets.realmotion import make_real_motion_palsy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic-subjects", type=int, default=36)
    args = parser.parse_args(argv)
    start = time.time()
    cache = get_data_home() / "bench_cache" / "real_motion"
    cache.mkdir(parents=True, exist_ok=True)

    # synthetic examinations: 7 clips per subject, one per expression; the clips are 4-frame windows of the
    # expression (none passes through rest), so each is measured against the subject's rest clip
    file = cache / f"clinical_exams_{args.synthetic_subjects}_v3.joblib"
    if file.exists():
        exams, info = joblib.load(file)
    else:
        X, _, _, info = make_palsy_clips(n_subjects=args.synthetic_subjects, clips_per_subject=7, target="hb",
                                         random_state=0, return_info=True)
        exams = {}
        for subject in np.unique(info["subject"]):
            pick = np.flatnonzero(info["subject"] == subject)
            exams[int(subject)] = measure_examination({info["expression"][k]: X[k] for k in pick},
                                                      against="rest_video")
        info = {k: info[k] for k in ("subject", "hb")}
        joblib.dump((exams, info), file)
    subject_hb = {int(s): int(h) for s, h in zip(info["subject"], info["hb"])}
    rows, items_measured, items_true = [], [], []
    for subject, exam in exams.items():
        scores = score_examination(exam)
        t_items, t_composite, t_dynamic = truth_scores(subject_hb[subject])
        sb = scores["sunnybrook"]
        for name, item in sb["voluntary"]["items"].items():
            if item["score"] is not None:
                items_measured.append(item["score"])
                items_true.append(t_items[name])
        rows.append({"subject": subject, "hb": subject_hb[subject], "composite": sb["composite"],
                     "true_composite": t_composite, "eface_dynamic": scores["eface"]["dynamic"]["score"],
                     "true_dynamic": t_dynamic, "side": scores["affected_side"]})
    complete = [r for r in rows if r["composite"] is not None and r["eface_dynamic"] is not None]
    synthetic = {
        "n_subjects": len(rows), "n_scored": len(complete),
        "voluntary_items_r": round(float(pearsonr(items_measured, items_true)[0]), 3),
        "composite_r": round(float(pearsonr([r["composite"] for r in complete],
                                            [r["true_composite"] for r in complete])[0]), 3),
        "eface_dynamic_r": round(float(pearsonr([r["eface_dynamic"] for r in complete],
                                                [r["true_dynamic"] for r in complete])[0]), 3),
        "healthy_composite_min": min((r["composite"] for r in complete if r["hb"] == 1), default=None),
    }
    print("SYNTHETIC examinations:", synthetic, flush=True)

    # real-motion videos, each a whole-video examination
    data = make_real_motion_palsy(fps=(6.0,), verbose=True)
    real = measure_paths(data["path"], cache=cache)
    per_video = []
    for i, m in enumerate(real):
        scores = score_examination({"whole_video": m})
        per_video.append({"recording": str(data["recording"][i]), "hb": int(data["hb"][i]),
                          "kind": str(data["kind"][i]), "composite": scores["sunnybrook"]["composite"],
                          "composite_estimate": scores["sunnybrook"]["composite_estimate"],
                          "lacks": scores["sunnybrook"]["lacks"],
                          "eface_total": scores["eface"]["total"], "eface_dynamic": scores["eface"]["dynamic"]["score"],
                          "side": scores["affected_image_side"], "true_side": str(data["image_side"][i])})
    hb = np.array([r["hb"] for r in per_video])
    # a whole video seldom holds all five expressions: the estimate from the items it shows
    composite = np.array([np.nan if r["composite_estimate"] is None else r["composite_estimate"] for r in per_video],
                         float)
    dynamic = np.array([np.nan if r["eface_dynamic"] is None else r["eface_dynamic"] for r in per_video], float)
    ok = np.isfinite(composite)
    originals = [r for r in per_video if r["kind"] == "original"]
    realmotion = {
        "n_videos": len(per_video), "n_scored": int(ok.sum()),
        "n_complete": sum(r["composite"] is not None for r in per_video),
        "composite_estimate_spearman_with_hb": round(float(spearmanr(composite[ok], hb[ok])[0]), 3),
        "eface_dynamic_spearman_with_hb": round(float(spearmanr(dynamic[np.isfinite(dynamic)],
                                                                hb[np.isfinite(dynamic)])[0]), 3),
        "originals_composite_estimate": [r["composite_estimate"] for r in originals],
        "originals_side_none": sum(r["side"] == "none" for r in originals),
        "median_composite_per_hb": {int(g): float(np.nanmedian(composite[hb == g])) for g in np.unique(hb)},
    }
    print("SIMULATED palsy on REAL video:", realmotion, flush=True)
    print(markdown_table([{"data": "synthetic examinations (7 expression clips per subject)",
                           "voluntary items r": synthetic["voluntary_items_r"], "composite r": synthetic["composite_r"],
                           "eFACE dynamic r": synthetic["eface_dynamic_r"]}],
                         ["data", "voluntary items r", "composite r", "eFACE dynamic r"]))
    print(markdown_table([{"grade": f"HB{g}", "n": int((hb == g).sum()), "median composite estimate": v}
                          for g, v in realmotion["median_composite_per_hb"].items()], ["grade", "n", "median composite estimate"]))
    write_json("clinical_scales", {"machine": machine(), "seconds": round(time.time() - start, 1),
                                   "synthetic": synthetic, "synthetic_subjects": rows, "real_motion": realmotion,
                                   "real_motion_videos": per_video,
                                   "data": "SYNTHETIC examinations; SIMULATED palsy on REAL video"})


if __name__ == "__main__":
    main()
