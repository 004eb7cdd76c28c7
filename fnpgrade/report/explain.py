"""What moved the grade: measure contributions for the clinical grader, occlusion and Grad-CAM for the network.

Both explanations answer "how much lower would the probability of the
reported grade be without this?", on the video's own windows:

* **Clinical grader** (measures -> classifier): each measure that compares the
  two sides is set to the value a perfectly symmetric face gives it (a ratio
  to 1, a log ratio or an asymmetry to 0, the weaker side's movement to the
  stronger side's), in every window, and the video's mean probability of the
  reported grade is taken again; the drop is that measure's contribution.
  The same is done for all measures of a region at once. Measures of how far
  the stronger side moved and the noise reference have no symmetric value and
  are not scored. Works with any classifier (no tree internals), costs one
  prediction per measure, and is not additive: measures that carry the same
  information share it (set one, the others still tell).
* **PHCNN-LSTM** (and the other networks): each branch's input (face, brow,
  mouth) is replaced by flat grey in every window (occlusion), and each frame
  position of the windows in turn; Grad-CAM (Selvaraju et al. 2017) on the
  face branch's last convolutions shows where in the face the grade's logit
  rises, for the worst window's frames.
"""

from __future__ import annotations

import numpy as np

__all__ = ["symmetric_values", "explain_measures", "explain_network", "face_branch"]

#: Grey that the networks' normalisation maps to about 0: an occluded input carries no signal.
GREY = 128


def _symmetric_column(name, names):
    """How to make measure ``name`` symmetric: a constant, another column's name, or None (no symmetric value)."""
    if name.endswith("_peak_weak") or name == "eye_closure_weak":
        return name[: -len("weak")] + "strong"
    if name == "side_agreement":  # on a symmetric face the readings split evenly between the sides
        return 0.5
    if name.endswith("_ratio") and not name.endswith("_log_ratio_affected"):
        return 1.0
    if name.endswith("_log_ratio_affected") or "asymmetry" in name:
        return 0.0
    return None


def symmetric_values(X, names):
    """The measures of a perfectly symmetric face with the same movement as ``X``'s stronger side.

    Parameters
    ----------
    X : ndarray, shape (n, n_measures)
    names : sequence of str
        :data:`~fnpgrade.measures.VIDEO_FEATURE_NAMES` (or a subset in that naming).

    Returns
    -------
    symmetric : ndarray, shape (n, n_measures)
        NaN where a measure has no symmetric value.
    """
    X = np.asarray(X, float)
    names = [str(n) for n in names]
    out = np.full_like(X, np.nan)
    for j, name in enumerate(names):
        rule = _symmetric_column(name, names)
        if isinstance(rule, str):
            if rule in names:
                out[:, j] = X[:, names.index(rule)]
        elif rule is not None:
            out[:, j] = rule
    return out


def _region_of(name):
    from .regions import CLINICAL_REGIONS

    for key, _, parts, _ in CLINICAL_REGIONS:
        if any(name.startswith(p + "_") for p in parts):
            return key
    name = name[len("rest_"):] if name.startswith("rest_") else name
    if name.startswith(("eye_closure", "eye_change", "eye_aperture", "lower_lid")):
        return "eye"
    if name.startswith(("commissure", "mouth_corner")):
        return "mouth"
    if name.startswith("nose_wing"):
        return "midface"
    return None


def explain_measures(model, X, names, label_index, n_top=10):
    """Contributions of the measures to the probability of the reported grade.

    Parameters
    ----------
    model : estimator
        The pipeline's steps after the measures (``predict_proba`` on measures).
    X : ndarray, shape (n_windows, n_measures)
        The video's measures, one row per window.
    names : sequence of str
        Measure names.
    label_index : int
        Column of the reported grade in ``model.predict_proba``.
    n_top : int, default=10

    Returns
    -------
    explanation : dict
        ``method``, ``base`` (mean probability of the grade), ``measures``
        (the ``n_top`` largest contributions: ``measure``, ``value`` (median
        over windows), ``symmetric`` (median symmetric value),
        ``contribution``), ``regions`` (``region`` -> contribution of all its
        measures together).
    """
    X = np.asarray(X, float)
    names = [str(n) for n in names]
    symmetric = symmetric_values(X, names)

    def symmetric_in(columns):
        changed = X.copy()
        for j in columns:
            changed[:, j] = np.where(np.isnan(symmetric[:, j]), X[:, j], symmetric[:, j])
        return changed

    measured = [j for j in range(len(names)) if not np.all(np.isnan(symmetric[:, j]))]
    region_columns = {key: [j for j in measured if _region_of(names[j]) == key]
                      for key in ("forehead", "eye", "midface", "mouth")}
    region_columns = {key: columns for key, columns in region_columns.items() if columns}
    variants = [X] + [symmetric_in([j]) for j in measured] + [symmetric_in(c) for c in region_columns.values()]
    # one prediction for every variant's rows (the model scores each row on its own): the mean per variant
    proba = np.asarray(model.predict_proba(np.vstack(variants)), float)[:, label_index]
    means = [float(np.mean(block)) for block in np.split(proba, len(variants))]
    base = means[0]
    rows = [{"measure": names[j], "value": round(float(np.nanmedian(X[:, j])), 4),
             "symmetric": round(float(np.nanmedian(symmetric[:, j])), 4),
             "contribution": round(base - mean, 4)} for j, mean in zip(measured, means[1:])]
    rows.sort(key=lambda r: -abs(r["contribution"]))
    regions = {key: round(base - mean, 4) for key, mean in zip(region_columns, means[1 + len(measured):])}
    return {"kind": "measures", "base": round(base, 4), "measures": rows[:n_top], "regions": regions,
            "method": "each side-comparing measure set to its symmetric-face value in every window; contribution = "
                      "drop in the video's mean probability of the reported grade (not additive)"}


def face_branch(module):
    """The network's face branch (a conv stack ``features`` then FC ``head``), or None."""
    for candidate in (getattr(getattr(module, "features", None), "face", None), getattr(module, "branch", None)):
        if candidate is not None and hasattr(candidate, "features"):
            return candidate
    return None


def _batch(clips, inputs):
    batch = {}
    for name in inputs:
        arrays = [getattr(c, name) for c in clips]
        if any(a is None for a in arrays):
            raise ValueError(f"the network reads '{name}' but the windows have none.")
        batch[name] = np.concatenate(arrays)
    return batch


def _probabilities(module, batch, device):
    import torch

    with torch.inference_mode():
        tensors = {k: torch.as_tensor(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}
        return torch.softmax(module(**tensors).float(), dim=-1).cpu().numpy()


def explain_network(classifier, clips, label_index, window_of_interest=0, max_windows=64):
    """Branch and frame occlusion over a video's windows, and Grad-CAM on the face branch.

    Parameters
    ----------
    classifier : PHCNNClassifier
        Fitted.
    clips : list of WindowedClip
        The video's windows (each clip one or more windows).
    label_index : int
        Class of the reported grade.
    window_of_interest : int, default=0
        Window (in the order of ``clips``' windows) for Grad-CAM: the worst one.
    max_windows : int, default=64
        Frame occlusion runs on at most this many windows (evenly spread).

    Returns
    -------
    explanation : dict
        ``kind`` ("network"), ``base``, ``branches`` (input -> drop in the
        mean probability when it is grey), ``frames`` (``(n_windows, L)``
        drops when each frame position is grey in all image inputs, as a list
        of lists, NaN for windows not analysed), ``gradcam`` (``(L, H, W)``
        float array in 0-1 for the window of interest, or None; not in JSON),
        ``method``.
    """
    import torch

    module = getattr(classifier.module_, "_orig_mod", classifier.module_)
    module.eval()
    device = next(module.parameters()).device
    inputs = tuple(getattr(module, "inputs", ("face", "brow", "mouth")))
    batch = _batch(clips, inputs)
    proba = _probabilities(module, batch, device)[:, label_index]
    base = float(proba.mean())
    images = [n for n in inputs if n in ("face", "brow", "mouth")]
    branches = {}
    for name in inputs:
        occluded = dict(batch)
        occluded[name] = (np.full_like(batch[name], GREY) if name in images else np.zeros_like(batch[name]))
        branches[name] = round(base - float(_probabilities(module, occluded, device)[:, label_index].mean()), 4)
    n_windows, length = batch[images[0]].shape[:2]
    frames = np.full((n_windows, length), np.nan)
    chosen = np.unique(np.linspace(0, n_windows - 1, min(n_windows, max_windows)).round().astype(int))
    for t in range(length):
        occluded = {k: v[chosen].copy() for k, v in batch.items()}
        for name in images:
            occluded[name][:, t] = GREY
        frames[chosen, t] = proba[chosen] - _probabilities(module, occluded, device)[:, label_index]
    gradcam = _gradcam(module, {k: v[window_of_interest:window_of_interest + 1] for k, v in batch.items()},
                       label_index, device)
    del torch
    return {"kind": "network", "base": round(base, 4), "branches": branches,
            "frames": [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in frames],
            "gradcam": gradcam,
            "method": "occlusion: an input (or a frame position) replaced by flat grey in the windows; value = drop "
                      "in the mean probability of the reported grade. Grad-CAM on the face branch's last "
                      "convolutions for the worst window."}


def _gradcam(module, batch, label_index, device):
    """Grad-CAM of one window's frames on the face branch: ``(L, H, W)`` in 0-1, or None without a face branch."""
    import torch
    import torch.nn.functional as F

    branch = face_branch(module)
    if branch is None or "face" not in batch:
        return None
    store = {}

    def keep(_, __, output):
        output.retain_grad()
        store["activation"] = output

    handle = branch.features.register_forward_hook(keep)
    try:
        # cuDNN's LSTM backward refuses eval mode; the plain kernels do not
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            tensors = {k: torch.as_tensor(np.ascontiguousarray(v)).to(device) for k, v in batch.items()}
            logits = module(**tensors).float()
            module.zero_grad(set_to_none=True)
            logits[0, label_index].backward()
    finally:
        handle.remove()
    activation = store["activation"]
    weights = activation.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    size = batch["face"].shape[2:4]
    cam = F.interpolate(cam, size=size, mode="bilinear", align_corners=False)[:, 0].detach().cpu().numpy()
    module.zero_grad(set_to_none=True)
    top = cam.max()
    return cam / top if top > 0 else cam
