"""The pure helpers of the benchmarks (their numbers are only as good as these)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from fnpgrade.datasets.synthetic import MIRROR_68
from fnpgrade.preprocessing.landmarks import IBUG68_TO_49

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def identity_bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("bench_identity_generalisation",
                                                      BENCHMARKS / "bench_identity_generalisation.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def _symmetric_face68(rng, centre=128.0):
    """68 points mirror-symmetric about x = centre (iBUG numbering)."""
    pts = rng.uniform(60, 200, size=(68, 2))
    mate = pts[MIRROR_68]
    return np.c_[(pts[:, 0] + 2 * centre - mate[:, 0]) / 2, (pts[:, 1] + mate[:, 1]) / 2]


def _similarity(points, scale, degrees, shift):
    a = np.deg2rad(degrees)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return points @ rot.T + shift


def test_stabilise_undoes_head_motion(identity_bench):
    rng = np.random.default_rng(0)
    face = rng.uniform(0, 200, size=(49, 2))
    frames = np.stack([_similarity(face, s, d, t) for s, d, t in
                       [(1.0, 0.0, (0, 0)), (1.05, 3.0, (4, -2)), (0.97, -5.0, (-3, 6))]])
    rigid = list(range(10, 20))
    np.testing.assert_allclose(identity_bench._stabilise(frames, rigid), np.stack([face] * 3), atol=1e-9)


def test_asymmetry_features_measure_one_sided_weakness(identity_bench):
    rng = np.random.default_rng(1)
    rest = _symmetric_face68(rng)
    brows = np.zeros_like(rest)
    brows[17:27, 1] = -6.0                      # both brows rise 6 px
    weak = brows.copy()
    weak[17:22] *= 0.5                          # the image-left brow only half as far

    def clip(move):
        frames = np.stack([rest + k / 3 * move for k in range(4)])
        return identity_bench.asymmetry_features(frames[:, IBUG68_TO_49])

    n_pairs = len(identity_bench._pairs49())
    sym, asym = clip(brows), clip(weak)
    log_ratio = slice(4 * n_pairs, 5 * n_pairs)   # after the mean and max shape differences (x, y each)
    # a symmetric face moving symmetrically: every difference is 0 (the last block is the pairs' total movement)
    np.testing.assert_allclose(sym[:-n_pairs], 0.0, atol=1e-6)
    assert sym[-n_pairs:].max() > 0.05
    brow_pairs = [i for i, (a, b) in enumerate(identity_bench._pairs49()) if a < 10 and b < 10]
    assert len(brow_pairs) == 5
    # movement of each left brow point is half its partner's: |log ratio| ~ log 2, other pairs 0
    np.testing.assert_allclose(asym[log_ratio][brow_pairs], np.log(2), atol=0.01)
    others = np.setdiff1d(np.arange(n_pairs), brow_pairs)
    np.testing.assert_allclose(asym[log_ratio][others], 0.0, atol=1e-6)
