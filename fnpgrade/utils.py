"""Small validation helpers shared by the estimators."""

from __future__ import annotations

import io
import threading

import numpy as np

__all__ = ["check_clip_list", "clip_name", "threaded_map"]


def clip_name(clip, index):
    """The name of clip ``index`` for messages: its ``source`` when it has one, else ``X[index]``."""
    source = getattr(clip, "source", "") or ""
    return str(source) if source else f"X[{index}]"


def check_clip_list(X, expected_type, where):
    """Check that ``X`` is a non-empty sequence of ``expected_type`` and return it as a list.

    Raises a ValueError naming the first clip of the wrong type and the step
    that would have produced the right one.
    """
    if isinstance(X, np.ndarray) and X.dtype != object:
        raise TypeError(
            f"{where}: expected a list of {expected_type.__name__}, one per clip; got an array of shape "
            f"{X.shape}. Pass the output of the previous pipeline step."
        )
    try:
        clips = list(X)
    except TypeError:
        raise TypeError(f"{where}: expected a list of {expected_type.__name__}; got {type(X).__name__}.") from None
    if not clips:
        raise ValueError(f"{where}: X is empty; at least one clip is needed.")
    for index, clip in enumerate(clips):
        if not isinstance(clip, expected_type):
            raise TypeError(
                f"{where}: X[{index}] is a {type(clip).__name__}, not a {expected_type.__name__}. "
                "Run the pipeline's earlier steps first (make_phcnn_pipeline chains them)."
            )
    return clips


def _is_missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, float or numpy, is the only value unequal to itself
    except (TypeError, ValueError):
        return False


def check_labels(y, n_clips, groups=None, where="fit"):
    """Check one label (and one subject) per clip; warn when a subject has several labels.

    Parameters
    ----------
    y : array-like, shape (n_clips,)
    n_clips : int
    groups : array-like, shape (n_clips,), optional
        Subject ids.
    where : str
        The caller, for messages.

    Returns
    -------
    y, groups : ndarray
        ``groups`` is ``None`` when not given.

    Raises
    ------
    ValueError
        Wrong lengths, or missing (None / NaN) labels or subjects, naming the clips.

    Warns
    -----
    UserWarning
        When a subject appears with two different labels: in the paper's
        protocol a subject has one House-Brackmann grade.
    """
    # Look at the values as given: np.asarray(["I", nan]) would turn the NaN into the string "nan".
    values = y if isinstance(y, np.ndarray) else np.asarray(y, dtype=object)
    if values.ndim != 1 or len(values) != n_clips:
        raise ValueError(f"{where}: y must hold one label per clip: X has {n_clips} clips, y has shape "
                         f"{values.shape}.")
    missing = [i for i, v in enumerate(values.tolist()) if _is_missing(v)]
    if missing:
        raise ValueError(f"{where}: y has no label (None or NaN) for clip(s) {missing[:10]}; label every clip or "
                         "drop the unlabelled ones.")
    y = np.asarray(y)
    if groups is None:
        return y, None
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != n_clips:
        raise ValueError(f"{where}: groups must hold one subject per clip: X has {n_clips} clips, groups has "
                         f"shape {groups.shape}.")
    missing = [i for i, v in enumerate(groups.tolist()) if _is_missing(v)]
    if missing:
        raise ValueError(f"{where}: groups has no subject (None or NaN) for clip(s) {missing[:10]}.")
    labels_of = {}
    for subject, label in zip(groups.tolist(), y.tolist()):
        labels_of.setdefault(subject, set()).add(label)
    mixed = {s: sorted(map(str, labels)) for s, labels in labels_of.items() if len(labels) > 1}
    if mixed:
        import warnings

        shown = dict(list(mixed.items())[:5])
        warnings.warn(f"{where}: {len(mixed)} subject(s) appear with more than one label, e.g. {shown}. In the "
                      "paper's protocol a subject has one House-Brackmann grade; check the labels.", UserWarning,
                      stacklevel=3)
    return y, groups


#: Set to ``1`` (``fnpgrade --debug`` does) to let third-party libraries' native log lines through.
THIRD_PARTY_LOGS_ENV = "FNPGRADE_THIRD_PARTY_LOGS"


def third_party_logs_shown():
    """Whether third-party native log lines are to be shown (``FNPGRADE_THIRD_PARTY_LOGS=1``)."""
    import os

    return os.environ.get(THIRD_PARTY_LOGS_ENV, "").strip() not in ("", "0")


class quiet_native_stderr:
    """Send whatever native code writes to file descriptor 2 to the null device, for the ``with`` block.

    MediaPipe's C++ (TensorFlow Lite, absl) writes its log lines straight to
    file descriptor 2 while a model loads and runs for the first time ("Created
    TensorFlow Lite XNNPACK delegate", "All log messages before
    absl::InitializeLog()", "Feedback manager requires a model with a single
    signature"); no environment variable set from Python silences them all.
    Python's ``sys.stderr`` is flushed first, so nothing written before the
    block is lost; the descriptor is restored on leaving, also on an error. With
    ``FNPGRADE_THIRD_PARTY_LOGS=1`` (``fnpgrade --debug``) it does nothing.

    Examples
    --------
    >>> from fnpgrade.utils import quiet_native_stderr
    >>> with quiet_native_stderr():
    ...     pass
    """

    # threads loading models at once share one redirection: the first in saves descriptor 2, the last out restores it
    _lock = threading.Lock()
    _depth = 0
    _saved = None

    def __enter__(self):
        import os
        import sys
        self._active = False
        if third_party_logs_shown():
            return self
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                try:
                    sys.stderr.flush()
                    saved = os.dup(2)
                    null = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(null, 2)
                    os.close(null)
                except (OSError, ValueError, AttributeError):  # no descriptor 2 (embedded interpreters)
                    return self
                cls._saved = saved
            cls._depth += 1
            self._active = True
        return self

    def __exit__(self, *exc_info):
        import os

        if not self._active:
            return False
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0 and cls._saved is not None:
                os.dup2(cls._saved, 2)
                os.close(cls._saved)
                cls._saved = None
        self._active = False
        return False


def progress_bar(**kwargs):
    """A tqdm bar on ``sys.stderr`` shown only on a terminal (tqdm's ``disable=None``).

    Redirected to a file or a pipe, the bar is off (its ``update`` still
    works). A terminal that reports no width (some embedded or emulated
    terminals say 0 columns, which tqdm turns into an empty bar) gets an
    80-column bar.

    Parameters
    ----------
    **kwargs
        Passed to :class:`tqdm.auto.tqdm` (``total``, ``desc``, ``unit``, ...).

    Returns
    -------
    bar : tqdm.tqdm
    """
    import os
    import sys

    from tqdm.auto import tqdm

    kwargs.setdefault("disable", None)
    kwargs.setdefault("file", sys.stderr)
    if "ncols" not in kwargs:
        try:
            if os.get_terminal_size(kwargs["file"].fileno()).columns <= 0:
                kwargs["ncols"] = 80
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass  # not a real terminal (tqdm decides from isatty) or no size to ask for: tqdm's own choice
    return tqdm(**kwargs)


def threaded_map(func, items, workers, max_pending=None):
    """Yield ``func(worker, item)`` for each of ``items``, in order, on one thread per worker.

    Each call runs on a thread holding one of ``workers`` (say, a loaded model)
    that no other call uses at the same time, so models that are not
    thread-safe but release the GIL (MediaPipe's graph) run side by side. Items
    are drawn from ``items`` only as results are taken, at most ``max_pending``
    (default: four per worker) ahead, so a long iterator of frames is never
    held whole. With one worker everything runs on the calling thread.
    """
    workers = list(workers)
    if len(workers) == 1:
        for item in items:
            yield func(workers[0], item)
        return
    import collections
    import queue
    from concurrent.futures import ThreadPoolExecutor

    free = queue.SimpleQueue()
    for worker in workers:
        free.put(worker)

    def run(item):
        worker = free.get()  # the pool runs at most len(workers) calls at once: one is always free
        try:
            return func(worker, item)
        finally:
            free.put(worker)

    limit = max_pending or 4 * len(workers)
    with ThreadPoolExecutor(max_workers=len(workers), thread_name_prefix="fnpgrade") as pool:
        pending = collections.deque()
        for item in items:
            pending.append(pool.submit(run, item))
            if len(pending) >= limit:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
