"""The classifier's random streams: torch's global generators forked and seeded per run and per epoch.

Weight initialisation, dropout and ``mirror_augment`` draw from torch's global
generators and take no generator argument. The classifier forks them
(``torch.random.fork_rng``, so the caller's state is the same afterwards) and
seeds them from its own seed: the weights from ``seed_``, each epoch from
``(seed_, epoch)``, so an epoch draws the same numbers whether the run was
interrupted and resumed before it or not.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["seed_torch", "forked_torch_rng", "derived_seed"]


def derived_seed(*entropy):
    """A 31-bit seed that depends on ``entropy`` (ints) only, e.g. ``derived_seed(seed, epoch)``."""
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1)[0] >> 1)


def seed_torch(seed, device):
    """Seed torch's CPU generator, and ``device``'s when it is a GPU, with ``seed``."""
    torch.default_generator.manual_seed(int(seed))
    device = torch.device(device)
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(int(seed))


@contextmanager
def forked_torch_rng(device):
    """Run with torch's CPU generator (and ``device``'s, a GPU) forked: the caller's state is restored after."""
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        yield
