"""The report's pictures, as PNG bytes (matplotlib's Agg backend, nothing on screen)."""

from __future__ import annotations

import io

import numpy as np

from ..plots import new_figure

__all__ = ["to_png", "timeline_figure", "regions_figure", "measures_explanation_figure",
           "network_explanation_figure", "gradcam_figure"]

_LEVEL_COLOURS = ["tab:green", "tab:orange", "tab:red", "tab:purple", "tab:brown", "black"]


def to_png(fig, dpi=100):
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def timeline_figure(grade, gaps, duration_s, lids=None):
    """Window probabilities over the video, gaps without a face shaded, worst windows marked.

    Parameters
    ----------
    grade : dict
        From :func:`fnpgrade.report.timeline.grade_over_time`.
    gaps : list of dict
        From :func:`fnpgrade.report.timeline.face_gaps`.
    duration_s : float
    lids : dict or None
        ``{patient side: (seconds, lid opening)}`` drawn in a second panel.
    """
    windows = grade["windows"]
    classes = list(grade["probabilities"])
    rows = 2 if lids else 1
    fig = new_figure((9, 2.6 * rows + 0.4))
    axes = [fig.add_subplot(rows, 1, k + 1) for k in range(rows)]
    ax = axes[0]
    for k, c in enumerate(classes):
        xs, ys = [], []
        for w in windows:
            xs += [w["start_s"], w["end_s"], np.nan]
            ys += [w["probabilities"][c]] * 2 + [np.nan]
        ax.plot(xs, ys, color=_LEVEL_COLOURS[k % len(_LEVEL_COLOURS)], linewidth=2.2, label=f"P({c})")
    for i in grade["worst"]:
        ax.axvspan(windows[i]["start_s"], windows[i]["end_s"], color="tab:red", alpha=0.12, linewidth=0)
    for a in axes:
        for g in gaps:
            a.axvspan(g["start_s"], g["end_s"], facecolor="0.6", alpha=0.45, hatch="//", edgecolor="0.4",
                      linewidth=0)
        a.set_xlim(0, max(duration_s, 1e-3))
    if gaps:
        ax.text((gaps[0]["start_s"] + gaps[0]["end_s"]) / 2, 0.97, "no face", fontsize=8, color="0.2", va="top",
                ha="center")
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("probability")
    if grade.get("label") is not None:
        ax.set_title(f"Grade over time (the video: {grade['label']}): each stretch's probabilities; red: worst "
                     "stretches, grey: no face", fontsize=9)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.set_title("No model, no grade; grey: no face", fontsize=9)
    if lids:
        colours = {"left": "tab:blue", "right": "tab:purple"}
        for side, (seconds, opening) in lids.items():
            axes[1].plot(seconds, opening, ".", color=colours[side], markersize=4,
                         label=f"patient's {side} eye")
        axes[1].set_ylabel("lid opening\n(/ eye width)")
        axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[-1].set_xlabel("seconds in the video")
    return fig


def regions_figure(regions, affected):
    """Each region's movement on the patient's left and right, with the affected side's percent."""
    fig = new_figure((7.5, 2.8))
    ax = fig.add_subplot()
    names = [r["name"] for r in regions]
    y = np.arange(len(regions))
    left = [r["movement"]["left"] for r in regions]
    right = [r["movement"]["right"] for r in regions]
    ax.barh(y - 0.2, left, height=0.38, color="tab:blue", label="patient's left")
    ax.barh(y + 0.2, right, height=0.38, color="tab:purple", label="patient's right")
    top = max(left + right + [1e-6])
    for k, r in enumerate(regions):
        text = "did not move" if r["percent"] is None else f"{r['compared_side']}: {r['percent']:.0f}%"
        ax.text(top * 1.02, k, text, va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.35)
    ax.set_xlabel("peak movement from the rest face (inter-ocular distances)")
    ax.set_title("Movement per region and side" + (f" (affected: patient's {affected})" if affected != "none"
                                                   else " (no side clearly affected)"), fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def measures_explanation_figure(explanation, label):
    """Horizontal bars: how much each measure's asymmetry raised the probability of the grade."""
    rows = explanation["measures"]
    fig = new_figure((7.5, 0.32 * max(len(rows), 3) + 1.0))
    ax = fig.add_subplot()
    values = [r["contribution"] for r in rows]
    ax.barh(np.arange(len(rows)), values, color=["tab:red" if v > 0 else "tab:blue" for v in values])
    ax.set_yticks(np.arange(len(rows)), [r["measure"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"drop in P({label}) when the measure is made symmetric")
    ax.set_title("Measures that moved the grade", fontsize=9)
    return fig


def network_explanation_figure(explanation, seconds, label):
    """Branch occlusion bars and the frame-occlusion strip over the video's windows."""
    fig = new_figure((9, 3.2))
    grid = fig.add_gridspec(1, 2, width_ratios=[1, 2.4], wspace=0.35)
    ax = fig.add_subplot(grid[0])
    names = list(explanation["branches"])
    values = [explanation["branches"][n] for n in names]
    ax.bar(names, values, color=["tab:red" if v > 0 else "tab:blue" for v in values])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_ylabel(f"drop in P({label})")
    ax.set_title("Branch occluded", fontsize=9)
    ax = fig.add_subplot(grid[1])
    frames = np.array([[np.nan if v is None else v for v in row] for row in explanation["frames"]], float)
    for (start, end), row in zip(seconds, frames):
        if np.all(np.isnan(row)):
            continue
        edges = np.linspace(start, end, len(row) + 1)
        ax.bar(edges[:-1], row, width=np.diff(edges), align="edge",
               color=["tab:red" if v > 0 else "tab:blue" for v in np.nan_to_num(row)])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("seconds in the video")
    ax.set_title("Frame occluded (each frame of each window)", fontsize=9)
    return fig


def gradcam_figure(faces, cam, labels):
    """Grad-CAM heat maps over one window's face crops."""
    import matplotlib

    n = len(faces)
    fig = new_figure((2.0 * n, 2.3))
    cmap = matplotlib.colormaps["jet"]
    for k in range(n):
        ax = fig.add_subplot(1, n, k + 1)
        ax.imshow(faces[k])
        ax.imshow(cmap(cam[k])[..., :3], alpha=0.45)
        ax.set_title(labels[k], fontsize=8)
        ax.axis("off")
    fig.suptitle("Grad-CAM on the face branch (worst window): red = raised the grade", fontsize=9)
    return fig
