"""Preprocess many videos into a :class:`~fnpgrade.scale.store.ClipStore`, on a Dask cluster or here.

Each video is one task: the pipeline's preprocessing steps (detector,
cropper, measures, windower: everything before the classifier) run on it and
the windows are written to the store by the worker itself, so only a short
status travels back. A video that fails (no face, unreadable file) is named in
the summary with its error and the others go on; videos already complete in
the store are skipped, so a run that stopped is resumed by running it again.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.base import clone

from ..io import ClipRef
from .store import ClipStore, clip_key

__all__ = ["preprocess_to_store", "PreprocessSummary", "fit_without_clips"]


@dataclass
class PreprocessSummary:
    """What a :func:`preprocess_to_store` run did.

    Attributes
    ----------
    written : list of str
        Keys written by this run (damaged entries found are among them: redone).
    skipped : list of str
        Keys already complete in the store (not redone).
    failed : dict
        ``{source: "ErrorType: message"}`` of the videos that could not be preprocessed.
    seconds : float
    """

    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self):
        lines = [f"{len(self.written)} written, {len(self.skipped)} already in the store, {len(self.failed)} failed "
                 f"({self.seconds:.0f} s)"]
        lines += [f"  FAILED {source}: {error}" for source, error in self.failed.items()]
        return "\n".join(lines)


def _report_of(steps):
    """The per-clip reports of a one-clip transform, by step name (JSON-friendly)."""
    out = {}
    for name, step in steps.steps:
        report = getattr(step, "transform_report_", None)
        if report:
            out[name] = report[0]
    return out


_THREAD = threading.local()


def _thread_copy(steps):
    """This thread's own copy of ``steps``, made on its first task.

    A Dask worker with several threads runs several tasks on the one scattered
    ``steps``, and each step keeps its last clip's report in
    ``transform_report_``: shared, one video's report could be stored with
    another's windows. A copy per task would pay the steps' set-up (0.5-0.8 s
    measured) for every video; one per thread pays it once.
    """
    copies = getattr(_THREAD, "copies", None)
    if copies is None:
        copies = _THREAD.copies = {}
    if id(steps) not in copies:
        if len(copies) >= 4:  # copies of earlier runs' steps
            copies.pop(next(iter(copies)))
        copies[id(steps)] = (steps, copy.deepcopy(steps))  # ``steps`` held: its id is not reused meanwhile
    return copies[id(steps)][1]


def _absolute(source):
    """``source`` with an absolute path: a worker's working folder is not the client's.

    With a relative path each worker would read, and write the store, in its own working folder: on a
    cluster the client then finds none of the clips the workers reported written.
    """
    if isinstance(source, ClipRef):  # a span of a video
        return dataclasses.replace(source, path=str(Path(source.path).absolute()))
    return str(Path(source).absolute())


def _preprocess_one(steps, store_path, source, key, label, subject):
    """Run ``steps`` on one video and write it to the store; return ``(key, None)`` or ``(key, error)``."""
    try:
        steps = _thread_copy(steps)
        windows = steps.transform([source])
        ClipStore(store_path).write(key, windows[0], label=label, subject=subject, report=_report_of(steps))
        return key, None
    except Exception as error:  # noqa: BLE001 -- one bad video must not stop the others; it is named
        return key, f"{type(error).__name__}: {error}"


def preprocess_to_store(sources, store, pipeline, labels=None, subjects=None, client=None, verify=False,
                        progress=True):
    """Preprocess videos into ``store``, each video a task on ``client`` (or here, one after another).

    Parameters
    ----------
    sources : list of str, Path or ClipRef
        Video files, frame folders, or clips of videos (``ClipRef``).
    store : ClipStore or str or Path
        Where the windows go (on a cluster: a folder every worker can write).
    pipeline : Pipeline
        A fnpgrade pipeline (``make_phcnn_pipeline(...)``); its steps before
        the classifier are run (they learn nothing in ``fit``: fitting loads
        their models).
    labels, subjects : sequence or None
        Grade and subject of each source, kept with its windows.
    client : dask.distributed.Client or None
        Run the videos as tasks on this cluster; ``None`` runs them here.
    verify : bool, default=False
        Also read every entry already in the store and redo those whose data
        no longer match their checksum (:meth:`ClipStore.verify`). Without it,
        entries that were not finished, or whose arrays are missing or
        shorter than written (:meth:`ClipStore.intact`), are redone.
    progress : bool, default=True
        Print one line per finished video.

    Returns
    -------
    PreprocessSummary
        Keys written and skipped, and the failures, each named with its error.
    """
    start = time.perf_counter()
    store = store if isinstance(store, ClipStore) else ClipStore(store)
    # paths as text; ClipRefs (a clip of a longer video, from --clip-length) travel as they are
    sources = [s if isinstance(s, ClipRef) else str(s) for s in sources]
    n = len(sources)
    for name, values in (("labels", labels), ("subjects", subjects)):
        if values is not None and len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries for {n} videos; give one per video.")
    steps = pipeline[:-1] if hasattr(pipeline, "steps") and pipeline.steps[-1][0] == "classifier" else pipeline
    steps = clone(steps)
    fit_without_clips(steps)
    store.check_preprocessing(steps)
    summary = PreprocessSummary()
    for key in store.incomplete():  # a run stopped while writing these: redo them
        store.remove(key)
    todo = []
    for i, source in enumerate(sources):
        key = clip_key(str(source))
        if key in store and store.intact(key) and (not verify or store.verify(key)):
            summary.skipped.append(key)
        else:
            todo.append((source, key, None if labels is None else labels[i], None if subjects is None else subjects[i]))
    sources_of = {key: str(source) for source, key, _, _ in todo}

    def record(key, error, done):
        if error is None:
            summary.written.append(key)
        else:
            summary.failed[sources_of[key]] = error
        if progress:
            print(f"[{done}/{len(todo)}] {sources_of[key]}: {'ok' if error is None else 'FAILED ' + error}",
                  flush=True)

    store_path = str(store.path)  # absolute (ClipStore makes it so): workers have other working folders
    if client is None:
        for done, (source, key, label, subject) in enumerate(todo, start=1):
            record(*_preprocess_one(steps, store_path, _absolute(source), key, label, subject), done)
    else:
        from dask.distributed import as_completed

        # the steps travel once (scattered), without their models: each worker loads them on first use
        steps_future = client.scatter(steps, broadcast=True)
        futures = [client.submit(_preprocess_one, steps_future, store_path, _absolute(source), key, label, subject,
                                 key=f"fnpgrade-preprocess-{key}", pure=False)
                   for source, key, label, subject in todo]
        for done, future in enumerate(as_completed(futures), start=1):
            record(*future.result(), done)
    summary.seconds = time.perf_counter() - start
    return summary


def fit_without_clips(steps):
    """``fit`` of the preprocessing steps learns nothing (they are fitted on no clips); samplers act only in training."""
    from ..pipeline import acts_at_prediction

    for _, step in steps.steps:
        if acts_at_prediction(step):
            step.fit(None)
