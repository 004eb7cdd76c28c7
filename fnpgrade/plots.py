"""Figures: confusion matrices, per-fold scores, ROI montages, clip strips.

Every function draws with matplotlib's non-interactive Agg backend, writes a PNG
when ``path`` is given and returns the matplotlib ``Figure``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_confusion_matrix"]


def _figure(figsize):
    # Agg through the object API: no global pyplot state, works headless.
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
    fig = _figure((4.2, 3.8))
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(matrix, display_labels=labels).plot(ax=ax, colorbar=False,
                                                               values_format=".2f" if normalize else "d")
    ax.set_title(title)
    return _save(fig, path)
