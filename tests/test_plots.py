"""Every plot writes a non-empty PNG (and returns its Figure)."""

import numpy as np
import pytest

from fnpgrade import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert len(data) > 1000, f"{path} is suspiciously small ({len(data)} bytes)"


def _region_clip(n_frames=4, seed=0):
    from fnpgrade import RegionClip

    rng = np.random.default_rng(seed)
    return RegionClip(face=rng.integers(0, 255, (n_frames, 128, 128, 3), dtype=np.uint8),
                      brow=rng.integers(0, 255, (n_frames, 40, 120, 3), dtype=np.uint8),
                      mouth=rng.integers(0, 255, (n_frames, 40, 120, 3), dtype=np.uint8),
                      landmarks=rng.uniform(20, 100, (n_frames, 49, 2)),
                      face_landmarks=rng.uniform(20, 100, (n_frames, 49, 2)))


def test_confusion_matrix_png(tmp_path):
    path = tmp_path / "cm.png"
    fig = plots.plot_confusion_matrix(["I", "II", "III", "II"], ["I", "III", "III", "II"], path=path)
    _assert_png(path)
    # the counts are drawn, not only the axes
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("1") >= 3


@pytest.mark.parametrize("scores", [
    {"test_accuracy": np.array([0.8, 0.9, 0.7]), "test_qwk": np.array([0.6, -0.1, 0.5]),
     "fit_time": np.array([1.0, 2.0, 3.0])},
    [{"accuracy": 0.8, "qwk": 0.5, "per_level": {}}, {"accuracy": 0.6, "qwk": 0.4, "per_level": {}}],
    {"phcnn-lstm": [0.9, 0.95], "lstm": [0.7, 0.8]},
], ids=["cross_validate", "fold_reports", "per_arch"])
def test_fold_scores_png(tmp_path, scores):
    path = tmp_path / "folds.png"
    fig = plots.plot_fold_scores(scores, path=path, reference={"accuracy": 0.9481})
    _assert_png(path)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert not any("fit_time" in t for t in legend)  # timings are not scores
    assert len(legend) == 2


def test_fold_scores_rejects_unknown_metric():
    with pytest.raises(ValueError, match="not in scores"):
        plots.plot_fold_scores({"test_accuracy": [0.5]}, metrics=["f1"])


def test_learning_curves_png(tmp_path):
    from skorch.history import History

    history = History()
    for epoch, (tl, vl, acc) in enumerate([(1.1, 1.0, 0.4), (0.8, 0.9, 0.6), (0.6, 0.95, 0.55)], 1):
        history.new_epoch()
        for key, value in (("epoch", epoch), ("train_loss", tl), ("valid_loss", vl), ("valid_acc", acc),
                           ("dur", 0.1), ("valid_loss_best", epoch == 2)):
            history.record(key, value)
    path = tmp_path / "curves.png"
    fig = plots.plot_learning_curves(history, path=path)
    _assert_png(path)
    labels = [line.get_label() for ax in fig.axes for line in ax.get_lines()]
    assert {"train_loss", "valid_loss", "valid_acc"} <= set(labels)
    assert "dur" not in labels


def test_learning_curves_rejects_empty():
    with pytest.raises(ValueError, match="history"):
        plots.plot_learning_curves([])


def test_roi_montage_png(tmp_path):
    path = tmp_path / "montage.png"
    plots.roi_montage(_region_clip(), path=path)
    _assert_png(path)


def test_clip_strip_png(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "strip.png"
    clips = [rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8) for _ in range(3)]
    fig = plots.clip_strip(clips, labels=["I", "II", "III"], path=path)
    _assert_png(path)
    assert len(fig.axes) == 3 * 4  # a row of 4 frames per clip


def _extent(fig, artist):
    fig.canvas.draw()
    return artist.get_window_extent(fig.canvas.get_renderer())


@pytest.mark.parametrize("n_frames", [1, 3, 8])
def test_roi_montage_titles_never_cover_a_crop_and_the_figure_has_no_empty_band(n_frames):
    """Before: each row's 'mouth ROI' title sat on the brow crop above it, and a third of the figure was empty."""
    fig = plots.roi_montage(_region_clip(n_frames))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    images = [ax for ax in fig.axes if ax.images]
    for ax in fig.axes:
        title = ax.title
        if not title.get_text():
            continue
        box = title.get_window_extent(renderer)
        for other in images:
            if other is not ax:
                assert not box.overlaps(other.get_window_extent(renderer)), (title.get_text(), other)
    # the crops fill the height but for the title, the frame labels and the legend (about 1 inch; the
    # old layout left 3.3 of 14.5 inches empty with 8 frames)
    top = max(ax.get_window_extent(renderer).y1 for ax in images)
    bottom = min(ax.get_window_extent(renderer).y0 for ax in images)
    assert (fig.bbox.height - (top - bottom)) / fig.dpi < 1.1
    # ROI titles once, as column headings
    titles = [ax.title.get_text() for ax in fig.axes]
    assert titles.count("eye-brow ROI") == titles.count("mouth ROI") == 1


def test_roi_montage_labels_frames_as_given():
    labels = [f"frame {30 * t}, {t:.2f} s" for t in range(4)]
    fig = plots.roi_montage(_region_clip(4), frame_labels=labels)
    assert [ax.title.get_text() for ax in fig.axes if ax.title.get_text().startswith("frame")] == labels
    with pytest.raises(ValueError, match="frame_labels has 2 labels for a clip of 4 frames"):
        plots.roi_montage(_region_clip(4), frame_labels=labels[:2])
