"""Running independent jobs in parallel (starts, bootstrap draws, replications) with joblib.

One function, :func:`run_parallel`, is the only place simfit starts parallel jobs. Worker
processes limit their Numba threads so that ``n_jobs`` processes x threads does not exceed the
cores (the outer level parallelises jobs, the inner level units within one job).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numba
from joblib import Parallel, delayed

from simfit.errors import SimfitError

__all__ = ["run_parallel", "BACKENDS"]

BACKENDS = ("loky", "multiprocessing")


def _pinned(threads: int, func: Callable, args: tuple):
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return func(*args)


def run_parallel(
    func: Callable,
    tasks: Sequence[tuple],
    n_jobs: int = 1,
    backend: str = "loky",
    inner_threads: int | None = None,
) -> list:
    """``[func(*t) for t in tasks]``, in order, run by ``n_jobs`` joblib workers.

    Parameters
    ----------
    func : callable
        Picklable (module-level) function.
    tasks : sequence of tuple
        Arguments of each call.
    n_jobs : int
        Number of workers; 1 runs in this process.
    backend : {"loky", "multiprocessing"}
        joblib process backend.
    inner_threads : int, optional
        Numba threads per worker; by default the cores divided among the workers.
    """
    tasks = list(tasks)
    if n_jobs == 1 or len(tasks) <= 1:
        return [func(*t) for t in tasks]
    if backend not in BACKENDS:
        raise SimfitError(f"Unknown parallel backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    n_jobs = len(tasks) if n_jobs in (-1, None) else min(int(n_jobs), len(tasks))
    threads = inner_threads or max(1, (os.cpu_count() or 1) // n_jobs)
    return Parallel(n_jobs=n_jobs, backend=backend)(delayed(_pinned)(threads, func, t) for t in tasks)
