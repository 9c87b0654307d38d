"""Running independent jobs in parallel (starts, bootstrap draws, replications) with joblib.

:func:`run_parallel` (results in order) and :func:`iter_parallel` (results as they finish) are the
only places simfit starts parallel jobs. Backends: ``loky`` (processes, the default),
``multiprocessing``, ``threading``, and ``dask`` (a dask.distributed cluster; the optional
``dask`` extra). Worker processes limit their Numba threads so that workers x threads does not
exceed the cores: the outer level parallelises jobs, the inner level units within one job.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence

import numba
from joblib import Parallel, delayed, parallel_config

from simfit.errors import SimfitError

__all__ = ["run_parallel", "iter_parallel", "BACKENDS"]

BACKENDS = ("loky", "multiprocessing", "threading", "dask")


def _pinned(threads: int, func: Callable, args: tuple):
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return func(*args)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise SimfitError(f"Unknown parallel backend {backend!r}; choose one of {', '.join(BACKENDS)}.")


@contextlib.contextmanager
def _dask_client(scheduler: str | None, n_jobs: int):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SimfitError(
            "The dask backend needs dask.distributed: pip install 'simfit[dask]'."
        ) from None
    if scheduler:
        client = Client(scheduler)
        cluster = None
    else:
        cluster = LocalCluster(n_workers=max(1, n_jobs), threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        with parallel_config(backend="dask"):
            yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def iter_parallel(
    func: Callable,
    tasks: Sequence[tuple],
    n_jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    inner_threads: int | None = None,
) -> Iterator:
    """Yield ``func(*t)`` for every task as soon as it finishes (in completion order).

    Parameters
    ----------
    func : callable
        Picklable (module-level) function.
    tasks : sequence of tuple
        Arguments of each call.
    n_jobs : int
        Workers; 1 runs in this process, one task after another (unless ``backend="dask"``).
    backend : {"loky", "multiprocessing", "threading", "dask"}
    scheduler : str, optional
        Address of a dask.distributed scheduler; a local cluster of ``n_jobs`` processes if omitted.
    inner_threads : int, optional
        Numba threads per worker; by default the cores divided among the workers.
    """
    _check_backend(backend)
    tasks = list(tasks)
    if not tasks:
        return
    if backend != "dask" and (n_jobs == 1 or len(tasks) == 1):
        for t in tasks:
            yield func(*t)
        return
    workers = (os.cpu_count() or 1) if n_jobs in (-1, None) else max(1, int(n_jobs))
    threads = inner_threads or max(1, (os.cpu_count() or 1) // workers)
    jobs = (delayed(_pinned)(threads, func, t) for t in tasks)
    if backend == "dask":
        with _dask_client(scheduler, workers):
            yield from Parallel(n_jobs=-1, return_as="generator_unordered")(jobs)
        return
    if backend == "threading":
        # Threads share the process's Numba thread pool: do not shrink it per task.
        jobs = (delayed(func)(*t) for t in tasks)
    yield from Parallel(n_jobs=min(workers, len(tasks)), backend=backend, return_as="generator_unordered")(jobs)


def run_parallel(
    func: Callable,
    tasks: Sequence[tuple],
    n_jobs: int = 1,
    backend: str = "loky",
    inner_threads: int | None = None,
    scheduler: str | None = None,
) -> list:
    """``[func(*t) for t in tasks]``, in task order, run by ``n_jobs`` joblib workers (see
    :func:`iter_parallel` for the arguments)."""
    _check_backend(backend)
    tasks = list(tasks)
    if backend != "dask" and (n_jobs == 1 or len(tasks) <= 1):
        return [func(*t) for t in tasks]
    indexed = [(k, func, t) for k, t in enumerate(tasks)]
    out = dict(iter_parallel(_indexed, indexed, n_jobs, backend, scheduler, inner_threads))
    return [out[k] for k in range(len(tasks))]


def _indexed(k: int, func: Callable, args: tuple):
    return k, func(*args)
