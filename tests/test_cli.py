"""The fnpgrade command, run in-process on real video files the test writes."""

import csv
import json

import numpy as np
import pytest

from fnpgrade import make_palsy_clips
from fnpgrade.cli import build_parser, main
from fnpgrade.io import write_video


@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory):
    """A YFP-style folder: mp4 videos of synthetic palsy clips and a labels CSV."""
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
    out = tmp_path_factory.mktemp("model") / "model.joblib"
    status = main(["train", "--data", str(video_dataset), "--width", "0.125", "--epochs", "1",
                   "--batch-size", "8", "--out", str(out)])
    assert status == 0 and out.exists()
    return out


def test_help_lists_every_subcommand():
    text = build_parser().format_help()
    for command in ("demo", "cv", "train", "predict", "preview"):
        assert command in text


def test_predict_prints_level_and_probabilities_as_json(trained_model, video_dataset, capsys):
    videos = [str(video_dataset / "clip0.avi"), str(video_dataset / "clip3.avi")]
    assert main(["predict", str(trained_model), *videos, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["video"] for r in rows] == videos
    for row in rows:
        assert row["level"] in ("I", "II", "III")
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert row["level"] == max(row["probabilities"], key=row["probabilities"].get)


def test_predict_exits_nonzero_naming_a_bad_video(trained_model, video_dataset, tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    status = main(["predict", str(trained_model), str(video_dataset / "clip1.avi"), str(broken)])
    captured = capsys.readouterr()
    assert status == 1
    assert "broken.mp4" in captured.err and "1 of 2 videos could not be graded" in captured.err
    assert "clip1.avi" in captured.out


def test_cv_reports_folds(video_dataset, tmp_path, capsys):
    out = tmp_path / "cv.json"
    status = main(["cv", "--data", str(video_dataset), "--folds", "2", "--width", "0.125", "--epochs", "1",
                   "--batch-size", "8", "--out", str(out)])
    assert status == 0
    folds = json.loads(out.read_text())["folds"]
    assert len(folds) == 2 and all(0 <= f["accuracy"] <= 1 for f in folds)
    assert "mean +- std" in capsys.readouterr().out


def test_cv_refuses_more_folds_than_subjects(video_dataset, capsys):
    assert main(["cv", "--data", str(video_dataset), "--folds", "9"]) == 2
    assert "subjects cannot fill 9" in capsys.readouterr().err


def test_cv_refuses_data_without_subject_ids(tmp_path, video_dataset, capsys):
    (tmp_path / "labels.csv").write_text("grade,path\n1,%s\n" % (video_dataset / "clip0.avi"))
    assert main(["cv", "--data", str(tmp_path)]) == 2
    assert "subject" in capsys.readouterr().err


def test_preview_writes_a_montage(video_dataset, tmp_path):
    out = tmp_path / "montage.png"
    assert main(["preview", str(video_dataset / "clip2.avi"), "--out", str(out), "--frames", "3"]) == 0
    assert out.stat().st_size > 1000
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_missing_model_file_is_a_clear_error(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.joblib"), "x.mp4"]) == 2
    assert "none.joblib" in capsys.readouterr().err
