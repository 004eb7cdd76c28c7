"""An on-disk store of preprocessed clips (zarr), read lazily by the classifier.

A study of thousands of videos does not fit in one process's memory as
``uint8`` windows (the paper's 5,420 windows are already 1.7 GB), and
preprocessing them (detection, landmarks, crops) takes far longer than one
training epoch. :class:`ClipStore` keeps the output of the preprocessing steps
(:class:`~fnpgrade.WindowedClip`: face, brow and mouth windows, per-frame
measures) on disk, one entry per clip, in the `zarr <https://zarr.dev>`_
format: chunked (one window per chunk, so a batch reads only its windows),
compressed (zstd), readable by many processes at once, and a standard any
language with a zarr reader opens.

Entries are append-only and resumable. An entry is written array by array
and marked complete last, with a checksum of its arrays; an entry without the
mark (a killed run), or whose arrays no longer match it, is found by
:meth:`ClipStore.incomplete` / :meth:`ClipStore.verify` and written again, so
a preprocessing run that stops resumes where it stopped
(:func:`~fnpgrade.scale.preprocess.preprocess_to_store`).

``ClipStore.clips()`` returns :class:`StoredWindowedClip` objects: a
:class:`~fnpgrade.WindowedClip` whose image arrays are the zarr arrays
themselves, so ``PHCNNClassifier.fit(store.clips(), store.labels())`` reads each
batch's windows from disk when it gathers them, and training memory does not
grow with the data set.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..clips import WindowedClip

__all__ = ["ClipStore", "StoredWindowedClip", "StoredArray", "clip_key", "FORMAT_VERSION"]

#: Version of the store's layout, written in its attributes (a newer layout is refused, not misread).
FORMAT_VERSION = 1

#: The image arrays of an entry (``uint8``, one window per chunk).
IMAGES = ("face", "brow", "mouth")


def _zarr():
    try:
        import zarr
    except ImportError as error:  # the "scale" extra
        raise ImportError("The clip store needs zarr: pip install 'fnpgrade[scale]' (or pip install 'zarr>=3').") \
            from error
    return zarr


def clip_key(source):
    """The store key of a clip: its file name (letters, digits, ``._-``) and a hash of its full path.

    Two videos with the same name in different folders get different keys; the
    same path always gets the same key (that is how a resumed run finds what is done).
    """
    source = str(source)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).name)[:80] or "clip"
    return f"{stem}-{hashlib.sha1(source.encode()).hexdigest()[:10]}"


def _checksum(arrays):
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


class StoredArray:
    """One image array of a stored clip (a zarr array) that names the clip when a window cannot be read.

    Read by ``clip.face[w]`` like the array itself; zarr's own error on a
    damaged chunk ("Zstd decompression error: invalid input data") says
    neither which of thousands of clips it is nor what to do.
    """

    def __init__(self, array, where, name):
        self.array, self.where, self.name = array, where, name

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)
    ndim = property(lambda self: self.array.ndim)

    def __len__(self):
        return self.array.shape[0]

    def __getitem__(self, item):
        try:
            return self.array[item]
        except Exception as error:  # a damaged or missing chunk, an unreachable file system: name the clip
            raise ValueError(
                f"{self.where}: '{self.name}' window(s) {item!r} cannot be read from the store "
                f"({type(error).__name__}: {error}). The entry is damaged: ClipStore.verify(key) finds such "
                "entries and preprocessing again (fnpgrade preprocess --verify) rewrites them.") from error

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[...], dtype=dtype)

    def __setstate__(self, state):
        # unpickled on another machine (a Dask worker): a store it does not see would read as zeros, since zarr
        # fills chunks it cannot find; refuse instead, naming the clip and the path
        self.__dict__.update(state)
        root = getattr(self.array.store, "root", None)
        if root is not None and not (Path(root) / self.array.path / "zarr.json").is_file():
            raise FileNotFoundError(
                f"{self.where}: the clip store is not at {Path(root)} on this machine; workers must see the store "
                "at the same path as the machine that opened it (shared storage).")

    def __repr__(self):
        return f"StoredArray({self.where}, {self.name!r}, shape={self.shape})"


@dataclass(frozen=True, eq=False)
class StoredWindowedClip(WindowedClip):
    """A :class:`~fnpgrade.WindowedClip` whose ``face``, ``brow`` and ``mouth`` stay on disk.

    The image arrays are zarr arrays: ``clip.face[w]`` reads window ``w`` (one
    chunk) and nothing else is held in memory. ``starts`` and ``measures`` are
    small and read when the clip is opened. Pickles as a reference to the
    store (a Dask worker or a DataLoader process reads the same files).
    """

    key: str = ""

    def __post_init__(self):
        where = (f"{self.source} (store entry {self.key!r})" if self.key and self.source
                 else self.source or self.key or "StoredWindowedClip")
        for name in IMAGES:
            array = getattr(self, name)
            if not isinstance(array, StoredArray):
                array = StoredArray(array, where, name)
                object.__setattr__(self, name, array)
            if array.ndim != 5 or array.shape[-1] != 3 or np.dtype(array.dtype) != np.uint8:
                raise ValueError(f"{where}: stored '{name}' has shape {array.shape} and dtype {array.dtype}; "
                                 "expected uint8 (W, L, H, W, 3). The store is damaged: rewrite this clip.")
        if len({getattr(self, name).shape[:2] for name in IMAGES}) != 1:
            raise ValueError(f"{where}: stored face, brow and mouth disagree in (W, L); rewrite this clip.")
        if self.measures is not None:
            object.__setattr__(self, "measures", np.asarray(self.measures, dtype=np.float32))

    def load(self):
        """The clip in memory, as a plain :class:`~fnpgrade.WindowedClip`."""
        return WindowedClip(face=self.face[...], brow=self.brow[...], mouth=self.mouth[...], starts=self.starts,
                            n_padded=self.n_padded, source=self.source, measures=self.measures)


class ClipStore:
    """Preprocessed clips on disk, one zarr group per clip, written once and read lazily.

    Parameters
    ----------
    path : str or Path
        Folder of the store (created if absent). On a cluster, a folder every
        worker and the training machine can read and write (a shared file
        system).
    mode : {"a", "r"}, default="a"
        ``"r"`` opens an existing store read-only.

    Examples
    --------
    >>> from fnpgrade.scale.store import ClipStore                   # doctest: +SKIP
    >>> store = ClipStore("study.zarr")                               # doctest: +SKIP
    >>> store.write("video_001", windowed_clip, label="II", subject="p01")   # doctest: +SKIP
    >>> PHCNNClassifier().fit(store.clips(), store.labels(), groups=store.subjects())  # doctest: +SKIP
    """

    def __init__(self, path, mode="a"):
        if mode not in ("a", "r"):
            raise ValueError(f"mode must be 'a' (append) or 'r' (read-only); got {mode!r}.")
        zarr = _zarr()
        # absolute: the clips carry this path when pickled to a Dask worker or a DataLoader process, whose working
        # folder may be another (zarr then finds no chunk there and reads zeros, without an error)
        self.path = Path(path).absolute()
        self.mode = mode
        if mode == "r" and not (self.path / "zarr.json").exists():
            raise FileNotFoundError(f"{self.path}: no clip store here (no zarr.json). Preprocess into it first: "
                                    "fnpgrade preprocess VIDEOS --store " + str(self.path))
        self._root = zarr.open_group(str(self.path), mode=mode)
        version = self._root.attrs.get("fnpgrade_store")
        if version is None and mode == "a":
            self._root.attrs["fnpgrade_store"] = FORMAT_VERSION
        elif version is not None and int(version) > FORMAT_VERSION:
            raise ValueError(f"{self.path}: store format {version} is newer than this fnpgrade reads "
                             f"({FORMAT_VERSION}); upgrade fnpgrade.")
        self._clips = self._root.require_group("clips") if mode == "a" else self._root.get("clips")

    def __repr__(self):
        return f"ClipStore({str(self.path)!r}, {len(self)} clips)"

    def __getstate__(self):  # zarr handles are reopened where the store is unpickled
        return {"path": str(self.path), "mode": self.mode}

    def __setstate__(self, state):
        self.__init__(state["path"], state["mode"])

    # ------------------------------------------------------------------ what is there
    def _entries(self):
        """``{key: complete?}`` of every entry, from one pass over the entries' metadata.

        zarr's ``group_keys()`` reads every member's metadata, so anything that
        calls it once per clip is quadratic in the size of the store (400
        clips took 27 s to open that way); one pass reads each entry once.
        """
        if self._clips is None:
            return {}
        return {name: "complete" in group.attrs for name, group in self._clips.groups()}

    def keys(self):
        """Keys of the complete entries, sorted."""
        return sorted(k for k, complete in self._entries().items() if complete)

    def incomplete(self):
        """Keys of entries a run started but did not finish (to be written again)."""
        return sorted(k for k, complete in self._entries().items() if not complete)

    def __len__(self):
        return len(self.keys())

    def __contains__(self, key):
        """True when ``key`` has a complete entry."""
        group = self._entry(key)
        return group is not None and "complete" in group.attrs

    def _entry(self, key):
        """Entry ``key``'s group (complete or not), or None; opens that entry only."""
        if self._clips is None:
            return None
        try:
            group = self._clips[key]
        except KeyError:
            return None
        return group if hasattr(group, "group_keys") else None

    def attrs(self, key):
        """The entry's metadata: ``source``, ``label``, ``subject``, ``report``, ``n_padded``, ``complete``."""
        return dict(self._group(key).attrs)

    def _group(self, key):
        group = self._entry(key)
        if group is None or "complete" not in group.attrs:
            state = "is not there" if group is None else "is incomplete (a run stopped while writing it)"
            raise KeyError(f"{self.path}: clip {key!r} {state}; preprocess it (again) into the store.")
        return group

    # ------------------------------------------------------------------ how the clips were made
    def check_preprocessing(self, steps):
        """Record the preprocessing steps' settings, or check that ``steps`` has those already recorded.

        A store holds the output of one preprocessing; windows of another
        (other crops, another window length) mixed into it would train a model
        that reads neither. The first writer records each step's class and
        parameters; later writers and :meth:`check_preprocessing` callers
        before training must have the same.

        Raises
        ------
        ValueError
            Naming the step and the parameters that differ.
        """
        described = _describe_steps(steps)
        recorded = self._root.attrs.get("preprocessing")
        if recorded is None:
            if self.mode == "a":
                self._root.attrs["preprocessing"] = described
            return described
        if recorded != described:
            differs = []
            for name in sorted(set(recorded) | set(described)):
                a, b = recorded.get(name) or {}, described.get(name) or {}
                if a == b:
                    continue
                pa, pb = a.get("params", {}), b.get("params", {})
                params = [f"{k} stored {pa.get(k)!r}, now {pb.get(k)!r}" for k in sorted(set(pa) | set(pb))
                          if pa.get(k) != pb.get(k)]
                differs.append(f"{name}: " + (", ".join(params) or f"stored {a.get('class')}, now {b.get('class')}"))
            raise ValueError(f"{self.path}: its clips were preprocessed with other settings ({'; '.join(differs)}). "
                             "Use the same settings, or another store.")
        return described

    # ------------------------------------------------------------------ writing
    def write(self, key, clip, label=None, subject=None, report=None):
        """Write one clip as entry ``key``, replacing an incomplete or earlier entry of that key.

        Parameters
        ----------
        key : str
            Entry name (:func:`clip_key` of the source by default in
            :func:`~fnpgrade.scale.preprocess.preprocess_to_store`).
        clip : WindowedClip
        label, subject : str, int or None
            The clip's grade and subject, kept for :meth:`labels` / :meth:`subjects`.
        report : dict or None
            What the preprocessing steps reported for the clip (frames read,
            faces found, ...), JSON-serialisable.
        """
        if self.mode == "r":
            raise PermissionError(f"{self.path} is open read-only; open it with mode='a' to write.")
        if not isinstance(clip, WindowedClip):
            raise TypeError(f"{key}: the store holds WindowedClip (the windower's output); got {type(clip).__name__}.")
        if key in self._clips:  # opens this entry only (no listing of the store)
            del self._clips[key]
        group = self._clips.create_group(key)
        arrays = {name: getattr(clip, name) for name in IMAGES}
        arrays["starts"] = np.asarray(clip.starts, dtype=np.int64)
        if clip.measures is not None:
            arrays["measures"] = np.asarray(clip.measures, dtype=np.float32)
        for name, value in arrays.items():
            value = np.asarray(value)
            # one window per chunk: a batch reads the windows it gathers and no others
            chunks = (1, *value.shape[1:]) if value.ndim >= 2 else value.shape
            array = group.create_array(name, shape=value.shape, dtype=value.dtype, chunks=chunks)
            array[...] = value
        group.attrs.update({"source": str(clip.source), "n_padded": int(clip.n_padded),
                            "label": None if label is None else _json_scalar(label),
                            "subject": None if subject is None else _json_scalar(subject),
                            "report": json.loads(json.dumps(report or {}, default=_json_default))})
        # written last: an entry without it was interrupted and is redone
        group.attrs["complete"] = {"checksum": _checksum(arrays), "n_windows": int(clip.n_windows)}
        return key

    # ------------------------------------------------------------------ reading
    def clip(self, key):
        """Entry ``key`` as a :class:`StoredWindowedClip` (images read lazily)."""
        group = self._group(key)
        attrs = group.attrs
        measures = group["measures"][...] if "measures" in group.array_keys() else None
        return StoredWindowedClip(face=group["face"], brow=group["brow"], mouth=group["mouth"],
                                  starts=group["starts"][...], n_padded=int(attrs.get("n_padded", 0)),
                                  source=str(attrs.get("source", "")), measures=measures, key=key)

    def clips(self, keys=None):
        """The clips of ``keys`` (default every complete entry, sorted), for ``fit`` and ``predict``."""
        return [self.clip(k) for k in (self.keys() if keys is None else keys)]

    def labels(self, keys=None):
        """Label of each clip of ``keys`` (ValueError naming the first entry without one)."""
        return self._column("label", keys)

    def subjects(self, keys=None):
        """Subject of each clip of ``keys`` (for subject-wise splits)."""
        return self._column("subject", keys)

    def _column(self, name, keys):
        keys = self.keys() if keys is None else list(keys)
        values = [self._group(k).attrs.get(name) for k in keys]
        missing = [k for k, v in zip(keys, values) if v is None]
        if missing:
            raise ValueError(f"{self.path}: {len(missing)} clip(s) have no {name}, e.g. {missing[0]!r}; write them "
                             f"with {name}=... (preprocess with a labels CSV).")
        return np.asarray(values, dtype=object if name == "subject" else None)

    def intact(self, key):
        """True when entry ``key`` is complete and its arrays are all there with the shapes written (cheap).

        Reads metadata only; :meth:`verify` also reads the data and checks its checksum.
        """
        if key not in self:
            return False
        group = self._clips[key]
        n_windows = group.attrs["complete"].get("n_windows")
        try:
            arrays = set(group.array_keys())
            if not {*IMAGES, "starts"} <= arrays:
                return False
            return all(group[name].shape[0] == n_windows for name in (*IMAGES, "starts"))
        except Exception:  # unreadable metadata
            return False

    def verify(self, key):
        """True when entry ``key`` is complete and its arrays still match the checksum written with it."""
        if key not in self:
            return False
        group = self._clips[key]
        names = list(IMAGES) + ["starts"] + (["measures"] if "measures" in group.array_keys() else [])
        try:
            arrays = {name: group[name][...] for name in names}
        except Exception:  # a chunk missing or unreadable
            return False
        return _checksum(arrays) == group.attrs["complete"].get("checksum")

    def remove(self, key):
        """Delete entry ``key`` (complete or not)."""
        if self.mode == "r":
            raise PermissionError(f"{self.path} is open read-only.")
        del self._clips[key]


def _describe_steps(steps):
    """``{step name: {"class": ..., "params": {...}}}`` of a pipeline's preprocessing steps, JSON-safe."""
    from ..pipeline import acts_at_prediction

    out = {}
    for name, step in steps.steps:
        if not acts_at_prediction(step):  # samplers act in training only
            continue
        params = {k: v for k, v in step.get_params(deep=False).items() if k not in ("n_jobs", "verbose", "progress")}
        out[name] = {"class": type(step).__name__, "params": json.loads(json.dumps(params, default=_json_default))}
    return out


def _json_scalar(value):
    return value.item() if isinstance(value, np.generic) else value


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
