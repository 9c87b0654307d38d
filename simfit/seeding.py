"""Seeds for sub-tasks, derived deterministically from a user's seed.

Every random sub-task of a fit or study (common random numbers, covariance simulations, bootstrap
datasets, global-search points) draws from keys derived from ``(seed, tags...)``, so results
depend only on the seed, never on the order or the number of workers that run the sub-tasks.
"""

from __future__ import annotations

import numpy as np

__all__ = ["derive_seed"]


def derive_seed(seed: int, *tags: int) -> int:
    """A seed for a sub-task, derived deterministically from ``seed`` and integer ``tags``."""
    state = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(t) for t in tags)).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))
