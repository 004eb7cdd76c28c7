"""Training and inference speed of PHCNNClassifier against a plain eager float32 PyTorch loop; peak memory.

The baseline is what a straightforward PyTorch script does with the same
network (paper-size PHCNN-LSTM by default): a ``torch.utils.data.DataLoader``
with default collate over per-window ``__getitem__``, the ``uint8`` batch
converted to float32 on the host, default torch settings (NCHW, fp32, one
thread per core), SGD with the paper's settings, ``torch.no_grad`` for
inference. The candidate is ``PHCNNClassifier`` with its defaults:
``fit`` (one epoch, data loading, initialisation and the end-of-epoch
bookkeeping included) and ``predict_proba``. Both run on the same synthetic
windows in the same process, repetitions interleaved (baseline, candidate,
baseline, ...), so machine load hits both alike; the speed-ups are the medians
of the per-repetition ratios.

    python benchmarks/bench_training.py                     # speed, paper-size network, batch 64
    python benchmarks/bench_training.py --batches 1 --repeats 1 --width 0.25   # a quick look
    python benchmarks/bench_training.py --scale paper       # + peak RSS of a fit on 5420 windows
    python benchmarks/bench_training.py --scale paper --skip-speed --max-batches 3 --memory-batch-sizes 64,16,8
                                                            # peak RSS only, checkpointing off and on, 3 batch sizes
    python benchmarks/bench_training.py --device cuda       # on a GPU
    python benchmarks/bench_training.py --accuracy          # fp32 baseline settings vs defaults, small task
    python benchmarks/bench_training.py --levers --batch-size 8 --repeats 2   # each lever alone (network only)
    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --levers --compile --batch-size 8 --repeats 3
                                                            # + torch.compile (inductor) rows, compile time apart
    OMP_NUM_THREADS=1 python benchmarks/bench_training.py --checkpointing-cost --batch-size 8 --repeats 5
    python benchmarks/bench_training.py --saved-bytes       # activations kept for backward, per branch, off vs on
                                                            # step time, activation_checkpointing off vs on

Writes ``benchmarks/results/bench_training.json`` (``--scale paper``:
``bench_training_paper.json``) with ``device, train_windows_per_s,
train_speedup_vs_eager_fp32, infer_windows_per_s, infer_speedup_vs_eager_fp32,
peak_rss_gb``. The paper-scale memory runs (``paper_scale_fits``) record, per
batch size and ``activation_checkpointing`` setting (``--checkpointing``;
both by default, each ``fit`` in a subprocess of its own): the peak RSS, the
RSS with the data loaded before ``fit``, and the RSS sampled at the end of
every batch and epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, markdown_table, peak_rss_gb, write_json  # noqa: E402

from fnpgrade.classifier import PHCNNClassifier  # noqa: E402
from fnpgrade.nn.runtime import Runtime  # noqa: E402
from fnpgrade.clips import WindowedClip  # noqa: E402
from fnpgrade.nn import build_network  # noqa: E402
from fnpgrade.nn.data import WindowLoader  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

LEVELS = np.array(["I", "II", "III"])
PAPER_WINDOWS = 5420


def make_clips(n_windows, windows_per_clip=4, length=4, seed=0):
    """Synthetic windowed clips (uint8), the level sets the brightness; ``n_windows`` windows in all."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    i = 0
    while sum(c.n_windows for c in X) < n_windows:
        w = min(windows_per_clip, n_windows - sum(c.n_windows for c in X))
        level = i % 3
        base = np.uint8(50 + 70 * level)
        face = rng.integers(0, 50, (w, length, 128, 128, 3), dtype=np.uint8)
        face[:, :, :64] += base
        brow = rng.integers(0, 50, (w, length, 40, 120, 3), dtype=np.uint8) + base
        mouth = rng.integers(0, 50, (w, length, 40, 120, 3), dtype=np.uint8) + base
        X.append(WindowedClip(face, brow, mouth, source=f"clip{i}"))
        y.append(LEVELS[level])
        i += 1
    return X, np.array(y, dtype=object)


class PlainWindows(torch.utils.data.Dataset):
    """What a plain script writes: one window per ``__getitem__``, default collate stacks them."""

    def __init__(self, clips, y):
        self.items = [(c, w, label) for c, label in zip(clips, y) for w in range(c.n_windows)]
        self.codes = {label: i for i, label in enumerate(LEVELS)}

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        clip, w, label = self.items[i]
        x = {name: torch.from_numpy(np.ascontiguousarray(getattr(clip, name)[w])) for name in ("face", "brow", "mouth")}
        return x, self.codes[label]


def baseline_train(X, y, width, batch_size, device, seed=0):
    torch.manual_seed(seed)
    net = build_network("phcnn-lstm", n_classes=3, width=width).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9, weight_decay=2e-5)
    loss_fn = torch.nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(PlainWindows(X, y), batch_size=batch_size, shuffle=True)
    start = time.perf_counter()
    net.train()
    n = 0
    for xb, yb in loader:
        xb = {k: v.float().to(device) for k, v in xb.items()}  # float conversion on the host
        loss = loss_fn(net(**xb), yb.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += len(yb)
    _sync(device)
    return n / (time.perf_counter() - start), net


def baseline_infer(net, X, y, batch_size, device):
    loader = torch.utils.data.DataLoader(PlainWindows(X, y), batch_size=batch_size)
    net.eval()
    start = time.perf_counter()
    n = 0
    with torch.no_grad():
        for xb, _ in loader:
            xb = {k: v.float().to(device) for k, v in xb.items()}
            torch.softmax(net(**xb), dim=1).cpu()
            n += len(xb["face"])
    _sync(device)
    return n / (time.perf_counter() - start)


_RUNTIME_FIELDS = ("precision", "channels_last", "fuse_batchnorm", "activation_checkpointing", "n_threads")


def classifier_options(options):
    """``options`` as PHCNNClassifier keywords: the :class:`~fnpgrade.nn.runtime.Runtime` fields in ``runtime``."""
    runtime = {k: options[k] for k in _RUNTIME_FIELDS if k in options}
    rest = {k: v for k, v in options.items() if k not in _RUNTIME_FIELDS}
    return {**rest, "runtime": Runtime(**runtime)} if runtime else rest


def candidate(width, batch_size, device, max_epochs=1, **options):
    return PHCNNClassifier(width=width, batch_size=batch_size, max_epochs=max_epochs, train_split=None, verbose=0,
                           random_state=0, device=device, **classifier_options(options))


def candidate_train(X, y, width, batch_size, device, **options):
    clf = candidate(width, batch_size, device, **options)
    n = sum(c.n_windows for c in X)
    start = time.perf_counter()
    clf.fit(X, y)
    _sync(device)
    return n / (time.perf_counter() - start), clf


def candidate_infer(clf, X):
    n = sum(c.n_windows for c in X)
    start = time.perf_counter()
    clf.predict_proba(X)
    _sync(clf.device)
    return n / (time.perf_counter() - start)


def _sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def speed(args):
    """The eager fp32 loop against the classifier at each of ``--precisions``, interleaved per repetition."""
    X, y = make_clips(args.batch_size * args.batches)
    options = _options(args.options)
    precisions = [p for p in args.precisions.split(",") if p]
    rows = []
    # warm-up: first calls allocate and pick kernels (both paths share them)
    tiny = X[:max(1, 8 // 4)]
    baseline_train(tiny, y[:len(tiny)], args.width, 8, args.device)
    for precision in precisions:
        candidate_train(tiny, y[:len(tiny)], args.width, 8, args.device, **{**options, "precision": precision})
    for rep in range(args.repeats):
        b_train, net = baseline_train(X, y, args.width, args.batch_size, args.device, seed=rep)
        b_infer = baseline_infer(net, X, y, args.batch_size, args.device)
        for precision in precisions:
            c_train, clf = candidate_train(X, y, args.width, args.batch_size, args.device,
                                           **{**options, "precision": precision})
            c_infer = candidate_infer(clf, X)
            rows.append({"repeat": rep, "precision": precision, "eager_fp32_train": b_train,
                         "fnpgrade_train": c_train, "eager_fp32_infer": b_infer, "fnpgrade_infer": c_infer,
                         "train_ratio": c_train / b_train, "infer_ratio": c_infer / b_infer})
            print(markdown_table(rows[-1:], list(rows[-1])), flush=True)
    runtime = clf.runtime_
    resolved = {"channels_last_train": runtime.uses_channels_last(args.device, training=True),
                "channels_last_predict": runtime.uses_channels_last(args.device),
                "fuse_batchnorm": runtime.fuse_batchnorm, "n_threads": runtime.n_threads or torch.get_num_threads(),
                "activation_checkpointing": runtime.activation_checkpointing}
    per_precision = []
    for precision in precisions:
        mine = [r for r in rows if r["precision"] == precision]
        per_precision.append({
            "precision": precision, "resolved": Runtime(precision).resolved_precision(args.device),
            "train_windows_per_s": float(np.median([r["fnpgrade_train"] for r in mine])),
            "eager_fp32_train_windows_per_s": float(np.median([r["eager_fp32_train"] for r in mine])),
            "train_speedup_vs_eager_fp32": float(np.median([r["train_ratio"] for r in mine])),
            "infer_windows_per_s": float(np.median([r["fnpgrade_infer"] for r in mine])),
            "eager_fp32_infer_windows_per_s": float(np.median([r["eager_fp32_infer"] for r in mine])),
            "infer_speedup_vs_eager_fp32": float(np.median([r["infer_ratio"] for r in mine])),
        })
    # the headline keys are the first precision's (the default, fp32, unless --precisions says otherwise)
    return {
        "device": args.device, "machine": machine(),
        "width": args.width, "batch_size": args.batch_size, "n_windows": len(PlainWindows(X, y)),
        "repeats": args.repeats, "candidate_options": options, "candidate_resolved": resolved,
        **{k: v for k, v in per_precision[0].items() if k not in ("precision", "resolved")},
        "per_precision": per_precision,
        "repetitions": rows,
    }


class FirstBatches(WindowLoader):
    """A WindowLoader that stops after ``max_batches`` batches (``--max-batches``: a truncated epoch)."""

    def __init__(self, dataset, max_batches=None, **kwargs):
        super().__init__(dataset, **kwargs)
        self.max_batches = max_batches

    def __iter__(self):
        for i, batch in enumerate(super().__iter__()):
            if self.max_batches is not None and i >= self.max_batches:
                return
            yield batch


def current_rss_gb():
    """Resident memory of this process now, in GiB (Linux; None elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024 ** 3
    except (OSError, ValueError):
        return None


class RSSSampler(Callback):
    """Record the resident memory at the end of every batch (training and validation) and epoch."""

    def initialize(self):
        self.samples_ = []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        self.samples_.append(("train" if training else "valid", len(net.history), current_rss_gb()))

    def on_epoch_end(self, net, **kwargs):
        self.samples_.append(("epoch_end", len(net.history), current_rss_gb()))


def memory_child(args):
    """Run in a subprocess: hold the paper-scale data, fit, print the peak RSS (and samples) as JSON.

    The fit has the classifier's default validation split (20% of the clips,
    scored every epoch under ``inference_mode``) and ``--fit-epochs`` epochs,
    so the best-epoch copy of the weights (kept from the end of the first
    epoch) and a validation pass are inside the measurement. With
    ``--max-batches`` both the training and the validation passes stop after
    that many batches.
    """
    X, y = make_clips(PAPER_WINDOWS)
    data_gb = sum(c.face.nbytes + c.brow.nbytes + c.mouth.nbytes for c in X) / 1024 ** 3
    options = _options(args.options)
    options["activation_checkpointing"] = args.checkpointing == "on"
    if args.max_batches is not None:
        for prefix in ("iterator_train", "iterator_valid"):
            options[prefix] = FirstBatches
            options[prefix + "__max_batches"] = args.max_batches
    sampler = RSSSampler()
    clf = PHCNNClassifier(width=args.width, batch_size=args.batch_size, max_epochs=args.fit_epochs, verbose=0,
                          random_state=0, device=args.device, callbacks=[sampler], **classifier_options(options))
    rss_before = current_rss_gb()
    start = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - start
    print(json.dumps({"batch_size": args.batch_size, "activation_checkpointing": args.checkpointing == "on",
                      "data_gb": data_gb, "rss_before_fit_gb": rss_before, "peak_rss_gb": peak_rss_gb(),
                      "rss_after_fit_gb": current_rss_gb(), "fit_s": fit_s, "epochs": args.fit_epochs,
                      "n_windows": PAPER_WINDOWS, "max_batches": args.max_batches,
                      "rss_samples_gb": sampler.samples_}))


def memory(args):
    """One subprocess per (batch size, checkpointing) pair; returns their results."""
    results = []
    settings = ("off", "on") if args.checkpointing == "both" else (args.checkpointing,)
    for batch_size in [int(b) for b in (args.memory_batch_sizes or str(args.batch_size)).split(",")]:
        for checkpointing in settings:
            cmd = [sys.executable, __file__, "--memory-child", "--width", str(args.width), "--batch-size",
                   str(batch_size), "--device", args.device, "--options", args.options,
                   "--checkpointing", checkpointing, "--fit-epochs", str(args.fit_epochs)]
            if args.max_batches is not None:
                cmd += ["--max-batches", str(args.max_batches)]
            env = dict(os.environ)
            if args.malloc_mmap_threshold is not None:
                # glibc reads it at start-up: a fixed threshold also stops its dynamic raising (see the docs)
                env["MALLOC_MMAP_THRESHOLD_"] = str(args.malloc_mmap_threshold)
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            results[-1]["malloc_mmap_threshold"] = args.malloc_mmap_threshold
            row = {k: results[-1][k] for k in ("batch_size", "activation_checkpointing", "data_gb",
                                                "rss_before_fit_gb", "peak_rss_gb", "fit_s")}
            print(markdown_table([row], list(row)), flush=True)
    return results


def accuracy(args):
    """fp32 / NCHW / unfused (the baseline's settings) vs the defaults: test accuracy on a small learnable task.

    Width 0.25: at 0.125 some convolutions have one channel and ``channels_last="auto"`` stays NCHW.
    """
    rows = []
    for seed in range(args.seeds):
        X, y = make_clips(96, windows_per_clip=2, seed=seed)
        X_test, y_test = make_clips(48, windows_per_clip=2, seed=100 + seed)
        for name, options in (("fp32 NCHW unfused", dict(runtime=Runtime(channels_last=False, fuse_batchnorm=False))),
                              ("defaults", {})):
            clf = PHCNNClassifier(width=0.25, batch_size=8, lr=0.05, max_epochs=args.epochs, verbose=0,
                                  random_state=seed, device=args.device, **options).fit(X, y)
            rows.append({"seed": seed, "settings": name,
                         "test_accuracy": float(np.mean(clf.predict(X_test) == y_test)),
                         "final_train_loss": float(clf.history[-1, "train_loss"])})
            print(markdown_table(rows[-1:], list(rows[-1])), flush=True)
    return rows


def _no_dropout(module):
    """``module`` with every dropout's ``p`` set to 0 (so eager and compiled steps can be compared exactly)."""
    for m in module.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return module


def _max_diffs(reference, candidate):
    """Largest absolute difference, and that over the reference's largest magnitude, of two tensors."""
    diff = float((candidate.float() - reference.float()).abs().max())
    return diff, diff / max(float(reference.float().abs().max()), 1e-30)


def compile_levers(nets, batch, labels, modes, what):
    """Compile the inference and training modules of ``levers`` with ``torch.compile``; check them against eager.

    For every inductor ``mode``: the folded NHWC inference copy (what
    ``predict_proba`` runs) is compiled and its first call, under
    ``torch.inference_mode``, timed as the compile time; its outputs are
    compared with the eager copy's. For training, the NCHW fp32 network (the
    training path on CPU) is compiled and its first step (forward, backward,
    SGD step) timed; the compiled module shares its weights with the eager
    one, as the other levers do. The equality check of one training step runs
    on two further copies with dropout off (compiled code draws other random
    numbers than eager), so it compiles the training graph a second time.
    Fails soft: a mode that does not compile (no C++ compiler, an unsupported
    op) is recorded with its error and left out of the timings.

    Parameters
    ----------
    nets : dict
        ``{channels_last: (network, optimizer, folded copy)}`` as built by ``levers``.
    batch : dict of Tensor
        uint8 windows by input name.
    labels : Tensor
    modes : list of str
        ``torch.compile`` modes (``"default"`` = no mode argument).
    what : set of str
        ``"infer"`` and / or ``"train"``.

    Returns
    -------
    modules : dict
        ``{(mode, "infer" or "train"): compiled module}`` for the modes that compiled.
    report : list of dict
        Per mode and kind: ``compile_s``, the checks' maximum absolute and
        relative differences, or ``error``.
    """
    import copy

    modules, report = {}, []
    for mode in modes:
        kwargs = {} if mode == "default" else {"mode": mode}
        if "infer" in what:
            entry = {"mode": mode, "kind": "infer"}
            try:
                folded = nets[True][2]
                compiled = torch.compile(folded, **kwargs)
                with torch.inference_mode():
                    reference = folded(**batch)
                    start = time.perf_counter()
                    out = compiled(**batch)
                    entry["compile_s"] = time.perf_counter() - start  # first call: tracing + codegen + C++ build
                entry["max_abs_diff_logits"], entry["max_rel_diff_logits"] = _max_diffs(reference, out)
                modules[mode, "infer"] = compiled
            except Exception as error:  # noqa: BLE001 -- fail soft: record why and time the rest
                entry["error"] = f"{type(error).__name__}: {error}"[:2000]
            report.append(entry)
            print(entry, flush=True)
        if "train" in what:
            entry = {"mode": mode, "kind": "train"}
            try:
                net, opt, _ = nets[False]
                compiled = torch.compile(net, **kwargs)
                net.train()
                start = time.perf_counter()
                loss = torch.nn.functional.cross_entropy(compiled(**batch), labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
                entry["compile_s"] = time.perf_counter() - start  # forward and backward graphs are built here
                modules[mode, "train"] = (compiled, opt)
                # one step on the same weights, eager vs compiled, dropout off in both; batch-norm in train mode
                reference = _no_dropout(copy.deepcopy(net)).train()
                candidate = _no_dropout(copy.deepcopy(net)).train()
                for p in (*reference.parameters(), *candidate.parameters()):
                    p.grad = None  # deepcopy copies the timed step's gradients
                candidate_compiled = torch.compile(candidate, **kwargs)
                ref_loss = torch.nn.functional.cross_entropy(reference(**batch), labels)
                ref_loss.backward()
                start = time.perf_counter()
                cand_loss = torch.nn.functional.cross_entropy(candidate_compiled(**batch), labels)
                cand_loss.backward()
                entry["check_compile_s"] = time.perf_counter() - start
                entry["loss_eager"], entry["loss_compiled"] = ref_loss.item(), cand_loss.item()
                pairs = [(a.grad, b.grad) for a, b in zip(reference.parameters(), candidate.parameters())
                         if a.grad is not None]
                entry["max_abs_diff_grad"] = max(_max_diffs(a, b)[0] for a, b in pairs)
                entry["max_abs_grad"] = max(float(a.abs().max()) for a, _ in pairs)
                # over the norm of all gradients: per tensor, the conv biases before a batch norm have a true
                # gradient of 0, and any rounding difference is an infinite relative error there
                entry["rel_norm_diff_grad"] = float(torch.sqrt(sum(((b - a) ** 2).sum() for a, b in pairs))
                                                    / torch.sqrt(sum((a ** 2).sum() for a, _ in pairs)))
                stats = [_max_diffs(a, b) for a, b in zip(reference.buffers(), candidate.buffers())
                         if a.is_floating_point()]
                entry["max_abs_diff_bn_running_stats"] = max(s[0] for s in stats)
                del reference, candidate, candidate_compiled
            except Exception as error:  # noqa: BLE001 -- fail soft: record why and time the rest
                entry["error"] = f"{type(error).__name__}: {error}"[:2000]
            report.append(entry)
            print(entry, flush=True)
    return modules, report


def levers(args):
    """Each lever alone on the network (no data loading): windows/s of one train step and one inference batch.

    Configurations are timed in turn, ``--repeats`` rounds, best of each kept.
    With ``--compile``, ``torch.compile`` of the training network (NCHW fp32)
    and of the folded NHWC inference copy are added (see ``compile_levers``);
    their compile time is measured before the rounds, and their per-round
    ratios to the same module run eagerly are kept as well.

    Returns
    -------
    rows : list of dict
        ``lever, mode, windows_per_s, vs_baseline`` (best of the rounds).
    extra : dict
        ``rounds`` (every round's windows/s per lever and mode) and, with
        ``--compile``, ``compile`` (compile times, checks, errors) and
        ``compiled_vs_eager`` (median of the per-round ratios).
    """
    import copy

    from fnpgrade.nn.layers import fuse_batchnorm

    g = torch.Generator().manual_seed(0)
    b = args.batch_size
    batch = {n: torch.randint(0, 256, (b, 4, h, w, 3), dtype=torch.uint8, generator=g)
             for n, (h, w) in {"face": (128, 128), "brow": (40, 120), "mouth": (40, 120)}.items()}
    labels = torch.randint(0, 3, (b,), generator=g)
    default_threads = torch.get_num_threads()
    configs = [  # name, channels_last, bf16, threads, fused (inference only), compile mode (None: eager)
        ("eager fp32 NCHW (baseline)", False, False, default_threads, False, None),
        ("channels_last", True, False, default_threads, False, None),
        ("channels_last + 1 thread", True, False, 1, False, None),
        ("channels_last + bf16 autocast", True, True, default_threads, False, None),
        ("channels_last + folded BN (inference)", True, False, default_threads, True, None),
        ("channels_last + folded BN + 1 thread (inference)", True, False, 1, True, None),
    ]
    nets = {}
    for cl in (False, True):
        torch.manual_seed(0)
        net = build_network("phcnn-lstm", width=args.width)
        if cl:
            net.set_channels_last(True)
        nets[cl] = (net, torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9),
                    fuse_batchnorm(copy.deepcopy(net).eval()))
    extra = {}
    compiled = {}
    if args.compile:
        import tempfile

        # always an empty cache (inductor reads the variable at each lookup): the compile times are those of a
        # first run, not of a cache hit (with a warm cache the paper-size graphs took 7.7 s and 3.2 s, not 89 and 13)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_inductor_")
        what = set(args.compile_what.split(","))
        compiled, extra["compile"] = compile_levers(nets, batch, labels, args.compile_modes.split(","), what)
        extra["inductor_cache_dir"] = os.environ["TORCHINDUCTOR_CACHE_DIR"]
        for mode in args.compile_modes.split(","):
            suffix = "" if mode == "default" else f", mode={mode}"
            if (mode, "train") in compiled:  # timed in train mode only: the training path is NCHW fp32 on CPU
                configs.append((f"torch.compile NCHW fp32{suffix} (training)", False, False, default_threads,
                                False, mode))
            if (mode, "infer") in compiled:
                configs.append((f"channels_last + folded BN + torch.compile{suffix} (inference)", True, False,
                                default_threads, True, mode))

    def run(config, mode):
        _, cl, bf16, threads, fused, compile_mode = config
        net, opt, folded = nets[cl]
        if compile_mode is not None:
            if mode == "train":
                net, opt = compiled[compile_mode, "train"]
            else:
                folded = compiled[compile_mode, "infer"]
        torch.set_num_threads(threads)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if mode == "train":
                net.train()
                loss = torch.nn.functional.cross_entropy(net(**batch).float(), labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
            else:
                with torch.inference_mode():
                    (folded if fused else net.eval())(**batch)
        torch.set_num_threads(default_threads)
        return b / (time.perf_counter() - start)

    def modes_of(config):
        if config[5] is not None:
            return ("train",) if config[0].endswith("(training)") else ("infer",)
        return ("infer",) if config[4] else ("train", "infer")

    best, rounds = {}, []
    for rep in range(args.repeats + 1):  # round 0 warms up
        for config in configs:
            for mode in modes_of(config):
                speed_ = run(config, mode)
                if rep:
                    best[config[0], mode] = max(best.get((config[0], mode), 0), speed_)
                    rounds.append({"round": rep, "lever": config[0], "mode": mode, "windows_per_s": speed_})
    base = {mode: best[configs[0][0], mode] for mode in ("train", "infer")}
    rows = [{"lever": name, "mode": mode, "windows_per_s": v, "vs_baseline": v / base[mode]}
            for (name, mode), v in best.items()]
    extra["rounds"] = rounds
    if compiled:
        # the compiled module against the same module run eagerly, round by round (same load in both)
        eager_of = {"train": configs[0][0], "infer": "channels_last + folded BN (inference)"}
        by_round = {(r["round"], r["lever"], r["mode"]): r["windows_per_s"] for r in rounds}
        extra["compiled_vs_eager"] = []
        for config in configs:
            if config[5] is None:
                continue
            mode = modes_of(config)[0]
            ratios = [by_round[rep, config[0], mode] / by_round[rep, eager_of[mode], mode]
                      for rep in range(1, args.repeats + 1)]
            extra["compiled_vs_eager"].append({"lever": config[0], "mode": mode, "vs": eager_of[mode],
                                               "ratios": ratios, "median_ratio": float(np.median(ratios))})
    return rows, extra


def checkpointing_cost(args):
    """Time of one training step (forward, backward, SGD step) with ``activation_checkpointing`` off and on.

    The paper-size network (``--width``), no data loading, one batch of
    ``--batch-size`` windows; the two settings alternate on the same network
    and weights for ``--repeats`` rounds after a warm-up round, so load
    changes hit both alike. The ratio is the median of the per-round ratios.
    Thread count: torch's (set ``OMP_NUM_THREADS=1`` for one thread).
    """
    g = torch.Generator().manual_seed(0)
    b = args.batch_size
    batch = {n: torch.randint(0, 256, (b, 4, h, w, 3), dtype=torch.uint8, generator=g)
             for n, (h, w) in {"face": (128, 128), "brow": (40, 120), "mouth": (40, 120)}.items()}
    labels = torch.randint(0, 3, (b,), generator=g)
    torch.manual_seed(0)
    net = build_network("phcnn-lstm", width=args.width).train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    times = {False: [], True: []}
    for rep in range(args.repeats + 1):  # round 0 warms up
        for enabled in (False, True):
            net.set_activation_checkpointing(enabled)
            start = time.perf_counter()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(**batch), labels).backward()
            opt.step()
            _sync(args.device)
            if rep:
                times[enabled].append(time.perf_counter() - start)
    ratios = [on / off for on, off in zip(times[True], times[False])]
    return {"batch_size": b, "width": args.width, "threads": torch.get_num_threads(),
            "step_s_off": times[False], "step_s_on": times[True],
            "median_step_s_off": float(np.median(times[False])), "median_step_s_on": float(np.median(times[True])),
            "time_ratio_on_vs_off": float(np.median(ratios)), "ratios": ratios}


def saved_bytes(args):
    """Bytes autograd keeps from one training forward for the backward pass, per part of the network.

    Counted with ``torch.autograd.graph.saved_tensors_hooks`` (each storage
    once, attributed to the first module that saved it; parameters excluded),
    for ``activation_checkpointing`` off and on, at ``--batch-size``. Exact and
    independent of the machine's load; what it leaves out is what the backward
    pass allocates as it runs (gradients, and with checkpointing the
    recomputed tensors of one segment at a time).
    """
    g = torch.Generator().manual_seed(0)
    b = args.batch_size
    batch = {n: torch.randint(0, 256, (b, 4, h, w, 3), dtype=torch.uint8, generator=g)
             for n, (h, w) in {"face": (128, 128), "brow": (40, 120), "mouth": (40, 120)}.items()}
    torch.manual_seed(0)
    net = build_network("phcnn-lstm", width=args.width).train()
    parameters = {p.untyped_storage().data_ptr() for p in net.parameters()}
    current = ["input"]

    def part_of(name):
        parts = name.split(".")
        if parts[0] == "features" and len(parts) >= 2:
            return f"{parts[1]} FC" if len(parts) >= 3 and parts[2] == "head" else f"{parts[1]} convs"
        return "LSTM + classifier" if parts[0] == "head" else "other"

    # every module, parents included: a branch's hook runs before its first checkpoint saves the images
    for name, module in net.named_modules():
        if name not in ("", "features"):
            module.register_forward_pre_hook(lambda m, i, part=part_of(name): current.__setitem__(0, part))
    rows = []
    for enabled in (False, True):
        net.set_activation_checkpointing(enabled)
        seen, by_part = set(), {}

        def pack(tensor):
            key = tensor.untyped_storage().data_ptr()
            if key not in seen and key not in parameters:
                seen.add(key)
                by_part[current[0]] = by_part.get(current[0], 0) + tensor.untyped_storage().nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            out = net(**batch)
        del out
        for part, n in sorted(by_part.items()):
            rows.append({"activation_checkpointing": enabled, "part": part, "saved_gib": n / 1024 ** 3})
        rows.append({"activation_checkpointing": enabled, "part": "total",
                     "saved_gib": sum(by_part.values()) / 1024 ** 3})
    return rows


def _options(text):
    """``"channels_last=False,precision=fp32"`` -> dict (ints, floats, True/False/None understood)."""
    options = {}
    for item in filter(None, (text or "").split(",")):
        key, value = item.split("=", 1)
        for convert in (int, float):
            try:
                value = convert(value)
                break
            except ValueError:
                pass
        options[key] = {"True": True, "False": False, "None": None}.get(value, value) if isinstance(value, str) \
            else value
    return options


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=float, default=1.0, help="network width (1.0 = paper size)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=2, help="training batches (= windows / batch size) per run")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved baseline / candidate repetitions")
    parser.add_argument("--options", default="", help="PHCNNClassifier options, Runtime's among them, e.g. "
                        "channels_last=False,n_threads=1")
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="the classifier's precision values to time side by side (comma-separated)")
    parser.add_argument("--scale", choices=("speed", "paper"), default="speed",
                        help="paper: also the peak RSS of a fit on 5420 paper-size windows (subprocess)")
    parser.add_argument("--max-batches", type=int, default=None,
                        help="with --scale paper: stop the epoch after this many batches")
    parser.add_argument("--skip-speed", action="store_true", help="with --scale paper: memory only")
    parser.add_argument("--checkpointing", choices=("both", "off", "on"), default="both",
                        help="with --scale paper: activation_checkpointing of the memory fits (both: off, then on)")
    parser.add_argument("--memory-batch-sizes", default=None,
                        help="with --scale paper: comma-separated batch sizes of the memory fits (default --batch-size)")
    parser.add_argument("--malloc-mmap-threshold", type=int, default=None,
                        help="with --scale paper: run the memory fits with MALLOC_MMAP_THRESHOLD_ set to this (bytes)")
    parser.add_argument("--fit-epochs", type=int, default=2,
                        help="with --scale paper: epochs of the memory fits (2: the best-epoch copy is held in the "
                             "second)")
    parser.add_argument("--accuracy", action="store_true", help="fp32 settings vs defaults on a small task")
    parser.add_argument("--levers", action="store_true", help="each lever alone on the network (CPU)")
    parser.add_argument("--compile", action="store_true",
                        help="with --levers: add torch.compile of the training network and of the folded inference "
                             "copy (compile time recorded separately; an error is recorded, not raised)")
    parser.add_argument("--compile-modes", default="default",
                        help="with --compile: comma-separated torch.compile modes, e.g. "
                             "default,max-autotune-no-cudagraphs")
    parser.add_argument("--compile-what", default="infer,train",
                        help="with --compile: infer, train or infer,train")
    parser.add_argument("--saved-bytes", action="store_true",
                        help="bytes kept for the backward pass per part of the network, checkpointing off and on")
    parser.add_argument("--checkpointing-cost", action="store_true",
                        help="time of one training step with activation_checkpointing off and on (network only)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        return memory_child(args)
    load_start = os.getloadavg()
    print(f"machine: {machine()}; load average {load_start}", flush=True)
    if args.levers:
        rows, extra = levers(args)
        print(markdown_table(rows, list(rows[0])))
        if extra.get("compiled_vs_eager"):
            print(markdown_table(extra["compiled_vs_eager"], ["lever", "mode", "vs", "median_ratio"]))
        print("wrote", write_json("bench_training_levers", {"device": args.device, "batch_size": args.batch_size,
                                                            "width": args.width, "threads": torch.get_num_threads(),
                                                            "load_average_start": load_start,
                                                            "load_average": os.getloadavg(), "rows": rows, **extra}))
        return
    if args.saved_bytes:
        rows = saved_bytes(args)
        print(markdown_table(rows, list(rows[0])))
        print("wrote", write_json("bench_training_saved_bytes", {"device": args.device, "batch_size": args.batch_size,
                                                                 "width": args.width, "rows": rows}))
        return
    if args.checkpointing_cost:
        row = checkpointing_cost(args)
        summary = {k: row[k] for k in ("batch_size", "width", "threads", "median_step_s_off", "median_step_s_on",
                                       "time_ratio_on_vs_off")}
        print(markdown_table([summary], list(summary)))
        print("wrote", write_json("bench_training_checkpointing_cost",
                                  {"device": args.device, "load_average_start": load_start,
                                   "load_average_end": os.getloadavg(), **row}))
        return
    if args.accuracy:
        rows = accuracy(args)
        print(markdown_table(rows, list(rows[0])))
        print("wrote", write_json("bench_training_accuracy", {"device": args.device, "rows": rows}))
        return
    result = {"device": args.device, "load_average_start": os.getloadavg()}
    if not args.skip_speed:
        result.update(speed(args))
    result["peak_rss_gb"] = peak_rss_gb()
    if args.scale == "paper":
        fits = memory(args)
        # the headline number: the first batch size with the library's default (checkpointing off) where measured
        default = next((f for f in fits if not f["activation_checkpointing"]), fits[0])
        result["peak_rss_gb"] = default["peak_rss_gb"]
        result["paper_scale_fits"] = fits
        columns = ("batch_size", "activation_checkpointing", "malloc_mmap_threshold", "data_gb", "rss_before_fit_gb",
                   "peak_rss_gb", "rss_after_fit_gb", "fit_s")
        rows = [{k: f[k] for k in columns} for f in fits]
        print(markdown_table(rows, list(rows[0])))
    result["load_average_end"] = os.getloadavg()
    if result.get("per_precision"):
        print(f"CPU flags: {machine()['cpu_flags']}")
        print(markdown_table(result["per_precision"], list(result["per_precision"][0])))
    summary = {k: result.get(k) for k in ("device", "train_windows_per_s", "train_speedup_vs_eager_fp32",
                                          "infer_windows_per_s", "infer_speedup_vs_eager_fp32", "peak_rss_gb")}
    print(markdown_table([summary], list(summary)))
    name = "bench_training_paper" if args.scale == "paper" else "bench_training"
    print("wrote", write_json(name, result))


if __name__ == "__main__":
    main()
