"""grade_videos: a fitted grader applied to real videos one by one, as `fnpgrade predict` does."""

import numpy as np
import pytest

from fnpgrade import grade_videos, make_measures_pipeline, make_palsy_clips
from fnpgrade.preprocessing.detect import FaceCoverageError


@pytest.fixture(scope="module")
def grader():
    pytest.importorskip("mediapipe")
    X, y, _ = make_palsy_clips(n_subjects=6, clips_per_subject=3, random_state=0)  # SYNTHETIC
    # no_face="blank" as a study's training would use: grade_videos must still never grade a faceless video
    return make_measures_pipeline(no_face="blank", fps=6, random_state=0).fit(X, y)


def test_each_video_is_graded_or_named_with_why(grader, pyfeat_path, tmp_path):
    face, no_face, missing = pyfeat_path("single_face.mp4"), pyfeat_path("no_face.mp4"), str(tmp_path / "gone.mp4")
    seen = []
    rows, failures = grade_videos(grader, [face, no_face, missing],
                                  on_result=lambda video, row, failure: seen.append((video, row is None)))
    assert seen == [(face, False), (no_face, True), (missing, True)]
    (row,) = rows
    # the same numbers as the pipeline's own predict_proba on that video
    expected = grader.predict_proba([face])[0]
    assert row["video"] == face and row["level"] == grader.classes_[np.argmax(expected)]
    assert [row["probabilities"][c] for c in grader.classes_] == pytest.approx(expected, abs=1e-4)
    assert row["coverage"] > 0.9 and row["n_frames_read"] > 0
    assert [f["video"] for f in failures] == [no_face, missing]
    assert isinstance(failures[0]["error"], FaceCoverageError) and failures[0]["error"].n_found == 0
    assert "verified in 0 of its 24 frames" in failures[0]["reason"] and "too few to grade" in failures[0]["reason"]
    # the reason does not repeat the video's name (the row has it) and says what to do
    assert isinstance(failures[1]["error"], FileNotFoundError)
    assert failures[1]["reason"] == "no such video file or frame folder; check the path."
    assert grader.steps[0][1].no_face == "blank"  # the pipeline is left as it was


def test_per_window_needs_a_grader_of_windows(grader, pyfeat_path):
    with pytest.raises(TypeError, match="per_window needs a grader that scores windows"):
        grade_videos(grader, [pyfeat_path("single_face.mp4")], per_window=True)
    with pytest.raises(TypeError, match="first step is not a FaceDetector"):
        grade_videos(grader[1:], [pyfeat_path("single_face.mp4")])
