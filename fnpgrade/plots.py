"""Figures: confusion matrices, per-fold scores, ROI montages, clip strips.

Every function draws with matplotlib's non-interactive Agg backend, writes a PNG
when ``path`` is given and returns the matplotlib ``Figure``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_confusion_matrix", "plot_fold_scores", "plot_learning_curves", "new_figure"]


def new_figure(figsize):
    """A matplotlib ``Figure`` drawn by Agg through the object API (no global pyplot state; works headless)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, dpi=120):
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return fig


def plot_confusion_matrix(y_true, y_pred, labels=None, path=None, title="Confusion matrix", normalize=None):
    """Draw a confusion matrix of severity levels.

    Parameters
    ----------
    y_true, y_pred : array-like
        True and predicted labels (e.g. levels "I", "II", "III").
    labels : sequence, optional
        Label order; defaults to the sorted union of both.
    path : str or path-like, optional
        Write a PNG there.
    title : str
    normalize : {None, "true", "pred", "all"}
        As in :func:`sklearn.metrics.confusion_matrix`.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    if labels is None:
        labels = sorted(set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist()), key=str)
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    fig = new_figure((4.2, 3.8))
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(matrix, display_labels=labels).plot(ax=ax, colorbar=False,
                                                               values_format=".2f" if normalize else "d")
    ax.set_title(title)
    return _save(fig, path)


def _fold_table(scores, metrics=None):
    """Per-fold scores as ``{name: 1-D array}`` from the shapes users have at hand.

    Accepts the dict ``cross_validate`` returns (``test_<metric>`` keys; other
    keys such as ``fit_time`` are ignored), a list of per-fold dicts such as
    :func:`fnpgrade.metrics.grading_report` outputs, or a plain
    ``{name: sequence}`` mapping (e.g. fold accuracies per architecture).
    """
    if isinstance(scores, dict):
        tests = {k[len("test_"):]: v for k, v in scores.items() if k.startswith("test_")}
        table = tests or dict(scores)
    else:
        rows = list(scores)
        if not rows or not all(isinstance(r, dict) for r in rows):
            raise ValueError("scores must be a cross_validate dict, a list of per-fold dicts or a "
                             f"{{name: fold values}} dict; got {type(scores).__name__}.")
        table = {k: [r[k] for r in rows] for k in rows[0]}
    # Only scalar-per-fold entries can be drawn (grading_report also has a nested 'per_level').
    table = {k: np.asarray(v, dtype=float) for k, v in table.items()
             if np.ndim(v) == 1 and np.asarray(v).dtype.kind in "fiub"}
    if metrics is not None:
        missing = [m for m in metrics if m not in table]
        if missing:
            raise ValueError(f"metrics {missing} not in scores; available: {sorted(table)}.")
        table = {m: table[m] for m in metrics}
    if not table:
        raise ValueError("scores holds no per-fold numbers to plot.")
    return table


def plot_fold_scores(scores, metrics=None, path=None, title="Scores per fold", reference=None):
    """Bar chart of scores per cross-validation fold, with each score's mean.

    The spread across folds matters as much as the mean when folds are split
    by subject: with few subjects, one fold can hold most of a level.

    Parameters
    ----------
    scores : dict or list of dict
        The output of :func:`sklearn.model_selection.cross_validate` (its
        ``test_*`` entries are drawn), a list with one score dict per fold
        (e.g. :func:`fnpgrade.metrics.grading_report`), or ``{name: fold values}``
        (e.g. fold accuracies per architecture).
    metrics : sequence of str, optional
        Which scores to draw (default: all per-fold numbers found).
    path : str or path-like, optional
        Write a PNG there.
    title : str
    reference : dict, optional
        ``{name: value}`` drawn as dotted lines, e.g. the paper's Table IV means.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> from fnpgrade.plots import plot_fold_scores
    >>> fig = plot_fold_scores({"test_accuracy": [0.8, 0.9, 0.7], "test_qwk": [0.6, 0.8, 0.5]})
    >>> fig.axes[0].get_ylabel()
    'score'
    """
    table = _fold_table(scores, metrics)
    names = list(table)
    n_folds = max(len(v) for v in table.values())
    fig = new_figure((max(4.5, 1.1 * n_folds + 2.5), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    colors = [f"C{i % 10}" for i in range(len(names))]
    for i, name in enumerate(names):
        values = table[name]
        x = np.arange(len(values)) + (i - (len(names) - 1) / 2) * width
        ax.bar(x, values, width=width, color=colors[i],
               label=f"{name} ({np.mean(values):.3f} +- {np.std(values):.3f})")
        ax.axhline(np.mean(values), color=colors[i], linestyle="--", linewidth=1)
        if reference and name in reference:
            ax.axhline(reference[name], color=colors[i], linestyle=":", linewidth=1.5)
    ax.set_xticks(np.arange(n_folds), [f"fold {i + 1}" for i in range(n_folds)])
    lows = [min(0.0, float(np.min(v))) for v in table.values()]  # kappa can be negative
    ax.set_ylim(min(lows), 1.05 if max(float(np.max(v)) for v in table.values()) <= 1 else None)
    ax.set_ylabel("score")
    ax.set_title(title)
    note = "dashed: mean" + (", dotted: reference" if reference else "")
    # outside the axes: with several architectures a legend inside would hide bars
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=note, title_fontsize=7)
    return _save(fig, path)


def _history_of(history):
    # Accept the history itself, a fitted PHCNNClassifier, or a fitted pipeline ending in one.
    if hasattr(history, "steps"):
        history = history.steps[-1][1]
    if hasattr(history, "history") and not isinstance(history, list):
        history = history.history
    rows = list(history)
    if not rows or not isinstance(rows[0], dict):
        raise ValueError("history must be a skorch History (a list of per-epoch dicts), a fitted "
                         "PHCNNClassifier or a pipeline ending in one; got "
                         f"{type(history).__name__} with {len(rows)} epochs.")
    return rows


def plot_learning_curves(history, path=None, keys=None, title="Learning curves"):
    """Losses and validation scores per epoch, from a skorch history.

    Parameters
    ----------
    history : skorch.history.History, PHCNNClassifier or Pipeline
        ``clf.history`` after fitting, or the fitted classifier / pipeline.
    path : str or path-like, optional
        Write a PNG there.
    keys : sequence of str, optional
        Per-epoch numbers to draw. Default: every number skorch recorded except
        bookkeeping (``epoch``, ``dur``, ``*_best``, ``*_count``, learning rate). Keys ending
        in ``loss`` go on the left axis, scores on the right one.
    title : str

    Returns
    -------
    fig : matplotlib.figure.Figure

    Notes
    -----
    The epoch kept as the final model (the last ``event_best`` flag of
    :class:`~fnpgrade.PHCNNClassifier`'s best-epoch checkpoint, else skorch's
    ``valid_loss_best`` / ``valid_acc_best`` flags) is marked with a vertical line.

    Examples
    --------
    >>> from fnpgrade.plots import plot_learning_curves
    >>> history = [{"epoch": 1, "train_loss": 1.1, "valid_loss": 1.0, "valid_acc": 0.5},
    ...            {"epoch": 2, "train_loss": 0.9, "valid_loss": 0.95, "valid_acc": 0.6}]
    >>> fig = plot_learning_curves(history)
    >>> len(fig.axes)
    2
    """
    rows = _history_of(history)
    epochs = np.array([row.get("epoch", i + 1) for i, row in enumerate(rows)])
    if keys is None:
        skip = {"epoch", "dur", "batches", "lr", "event_lr", "event_best"}
        keys = [k for k in rows[-1] if k not in skip and not k.endswith(("_best", "_lr", "_count"))
                and isinstance(rows[-1][k], (int, float, np.number)) and not isinstance(rows[-1][k], bool)]
    keys = list(keys)
    if not keys:
        raise ValueError(f"no per-epoch numbers to plot; the history has keys {sorted(rows[-1])}.")

    def series(key):
        return np.array([row.get(key, np.nan) for row in rows], dtype=float)

    fig = new_figure((5.2, 3.6))
    ax = fig.add_subplot()
    right = ax.twinx()
    for i, key in enumerate(keys):
        target = ax if key.endswith("loss") else right
        target.plot(epochs, series(key), marker="o", markersize=3, color=f"C{i % 10}", label=key,
                    linestyle="-" if target is ax else "--")
    # The kept epoch: the last one a flag marks, the classifier's best-epoch checkpoint's first.
    best, why = None, "kept"
    for flag in ("event_best", "valid_loss_best", "valid_acc_best"):
        flagged = [row.get("epoch", i + 1) for i, row in enumerate(rows) if row.get(flag)]
        if best is None and flagged:
            best, why = flagged[-1], "kept" if flag == "event_best" else flag
    if best is not None:
        ax.axvline(best, color="grey", linestyle=":", linewidth=1)
        ax.text(best, ax.get_ylim()[1], f" best epoch ({why})", fontsize=7, va="top", color="grey")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    right.set_ylabel("score")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + right.get_legend_handles_labels()[1]
    ax.legend(handles, labels, fontsize=7, loc="center right")
    ax.set_title(title)
    return _save(fig, path)


def clip_strip(X, labels=None, n_per_label=None, captions=None, max_frames=4, path=None,
               title="Example clips", random_state=None):
    """Draw clips as rows of frames, e.g. a few synthetic clips per grade.

    Parameters
    ----------
    X : list of ndarray (T, H, W, 3) or of RegionClip
        Clips (RegionClips show their face crops).
    labels : array-like, optional
        A label per clip (grade or level); shown at the start of each row.
    n_per_label : int, optional
        Show this many clips per label (drawn with ``random_state``, labels
        in sorted order) instead of all clips.
    captions : list of str, optional
        Extra text per clip (e.g. the expression), shown after the label.
    max_frames : int, default=4
        Frames shown per clip (evenly spaced when the clip is longer).
    path : str or path-like, optional
        Write a PNG here.
    title : str
    random_state : int, RandomState instance or None

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade.plots import clip_strip
    >>> X = [np.zeros((4, 32, 32, 3), np.uint8) + v for v in (0, 100, 200)]
    >>> fig = clip_strip(X, labels=["I", "II", "III"])
    >>> len(fig.axes)
    12
    """
    from sklearn.utils import check_random_state

    frames = [np.asarray(getattr(clip, "face", clip)) for clip in X]
    if not frames:
        raise ValueError("clip_strip needs at least one clip.")
    for i, f in enumerate(frames):
        if f.ndim != 4 or f.shape[-1] != 3:
            raise ValueError(f"X[{i}] must be a (T, H, W, 3) clip or a RegionClip; got shape {f.shape}.")
    labels = None if labels is None else list(labels)
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"labels has {len(labels)} entries for {len(frames)} clips.")
    index = list(range(len(frames)))
    if n_per_label is not None:
        if labels is None:
            raise ValueError("n_per_label needs labels.")
        rng = check_random_state(random_state)
        index = []
        for label in sorted(set(labels), key=str):
            members = [i for i, v in enumerate(labels) if v == label]
            index.extend(sorted(rng.choice(members, size=min(n_per_label, len(members)), replace=False).tolist()))
    n_cols = min(max_frames, max(len(frames[i]) for i in index))
    fig = new_figure((1.6 * n_cols + 0.4, 1.6 * len(index) + 0.4))
    for r, i in enumerate(index):
        clip = frames[i]
        picks = np.unique(np.linspace(0, len(clip) - 1, min(n_cols, len(clip))).round().astype(int))
        for c in range(n_cols):
            ax = fig.add_subplot(len(index), n_cols, r * n_cols + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(picks):
                ax.imshow(clip[picks[c]])
            else:
                ax.axis("off")
            if c == 0:
                text = "" if labels is None else str(labels[i])
                if captions is not None:
                    text = f"{text}\n{captions[i]}" if text else str(captions[i])
                ax.set_ylabel(text, fontsize=8)
            if r == 0 and c < len(picks):
                ax.set_title(f"frame {picks[c]}", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


__all__.append("clip_strip")


def roi_montage(region_clip, path=None, max_frames=8, landmarks=True, title=None, frame_labels=None):
    """Per frame: the face crop with its 49 landmarks, the brow ROI and the mouth ROI.

    One row per frame (at most ``max_frames``, evenly spaced): the face crop
    (landmarks drawn, coloured by component: brows, nose, eyes, mouth), then the
    eye-brow and mouth crops. Frames where the detector did not find the face
    (``found`` False: interpolated or blank) are marked in their row's label.

    Parameters
    ----------
    region_clip : RegionClip
        One clip from :class:`~fnpgrade.LandmarkROICropper`.
    path : str or path-like, optional
        Write a PNG there.
    max_frames : int, default=8
        Rows drawn at most.
    landmarks : bool, default=True
        Draw the 49 landmarks on the face crop (needs ``face_landmarks``).
    title : str, optional
        Figure title; defaults to the file name of the clip's source.
    frame_labels : sequence of str, optional
        One label per frame of ``region_clip`` (e.g. ``"frame 120, 5.00 s"``:
        where the frame is in the video, as ``fnpgrade preview`` writes);
        default ``"frame t"`` with ``t`` the frame's position in the clip.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from fnpgrade import RegionClip
    >>> from fnpgrade.plots import roi_montage
    >>> clip = RegionClip(np.zeros((2, 128, 128, 3), np.uint8), np.zeros((2, 40, 120, 3), np.uint8),
    ...                   np.zeros((2, 40, 120, 3), np.uint8), np.zeros((2, 49, 2)),
    ...                   face_landmarks=np.full((2, 49, 2), 64.0))
    >>> fig = roi_montage(clip, frame_labels=["frame 30, 1.00 s", "frame 60, 2.00 s"])
    >>> len(fig.axes), fig.axes[0].get_title()
    (6, 'frame 30, 1.00 s')
    """
    from .clips import RegionClip

    if not isinstance(region_clip, RegionClip):
        raise TypeError(f"roi_montage expects one RegionClip (an element of LandmarkROICropper's output); "
                        f"got {type(region_clip).__name__}. For a list, pass clips[i].")
    n = region_clip.n_frames
    if frame_labels is not None and len(frame_labels) != n:
        raise ValueError(f"frame_labels has {len(frame_labels)} labels for a clip of {n} frames; give one per frame.")
    frames = np.unique(np.linspace(0, n - 1, min(n, max(1, int(max_frames)))).round().astype(int))
    groups = {"brows": (0, 10, "tab:orange"), "nose": (10, 19, "tab:green"), "eyes": (19, 31, "tab:cyan"),
              "mouth": (31, 49, "tab:red")}
    # Sizes in inches, so the images fill their cells: a square face beside two 3:1 ROIs stacked with a
    # gap for the first row's ROI titles; no band of empty figure anywhere.
    face_w, roi_w, label_h, gap_w, roi_gap = 1.7, 2.25, 0.3, 0.15, 0.2
    top_h, legend_h = 0.4, 0.35
    width, height = face_w + gap_w + roi_w + 0.1, top_h + len(frames) * (face_w + label_h) + legend_h
    fig = new_figure((width, height))
    grid = fig.add_gridspec(len(frames), 2, width_ratios=[face_w, roi_w], left=0.05 / width,
                            right=1 - 0.05 / width, top=1 - top_h / height, bottom=legend_h / height,
                            wspace=gap_w / ((face_w + roi_w) / 2), hspace=label_h / face_w)
    roi_h = (face_w - roi_gap) / 2
    # each stack read once (a long video's frames are made again from the file when read)
    images = {key: getattr(region_clip, key)[frames] for key in ("face", "brow", "mouth")}
    for row, t in enumerate(frames):
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(images["face"][row])
        if landmarks and region_clip.face_landmarks is not None and np.all(np.isfinite(region_clip.face_landmarks[t])):
            for name, (lo, hi, color) in groups.items():
                pts = region_clip.face_landmarks[t, lo:hi]
                ax.scatter(pts[:, 0], pts[:, 1], s=4, c=color, label=name if row == 0 else None)
        status = "" if region_clip.found[t] else " (not detected)"
        label = f"frame {t}" if frame_labels is None else str(frame_labels[t])
        ax.set_title(f"{label}{status}", fontsize=7, pad=3)
        ax.axis("off")
        inner = grid[row, 1].subgridspec(2, 1, hspace=roi_gap / roi_h)
        for k, (key, name) in enumerate((("brow", "eye-brow ROI"), ("mouth", "mouth ROI"))):
            sub = fig.add_subplot(inner[k])
            sub.imshow(images[key][row], aspect="auto")
            if row == 0:  # once, as column headings: per row they would sit on the crop above
                sub.set_title(name, fontsize=6, pad=2)
            sub.axis("off")
    if landmarks and region_clip.face_landmarks is not None:
        handles, labels = fig.axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=6, frameon=False,
                       bbox_to_anchor=(0.5, 0.0))
    if title is None:  # the file's name (and slice, "[s:e]"), not the machine's path to it
        source = str(region_clip.source or "RegionClip")
        path_part = source.split("[")[0]
        title = Path(path_part).name + source[len(path_part):]
    fig.suptitle(title, fontsize=8, y=1 - 0.12 / height, va="top")
    return _save(fig, path)


__all__.append("roi_montage")
