"""Running independent jobs in parallel (starts, bootstrap draws, replications) with joblib.

:func:`run_parallel` (results in order) and :func:`iter_parallel` (results as they finish) are the
only places simfit starts parallel jobs. Backends: ``loky`` (processes, the default),
``multiprocessing``, ``threading``, and ``dask`` (a dask.distributed cluster; the optional
``dask`` extra). Worker processes limit their Numba threads so that workers x threads does not
exceed the cores: the outer level parallelises jobs, the inner level units within one job.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import numba
from joblib import Parallel, delayed, parallel_config

from simfit.errors import SimfitError

__all__ = ["run_parallel", "iter_parallel", "dask_client", "BACKENDS"]

BACKENDS = ("loky", "multiprocessing", "threading", "dask")


_WATCHING: list[int] = []


def _watch_parent() -> None:
    """In a worker process: exit when the process that started it is gone (killed with -9, its
    workers would otherwise idle on, holding their memory)."""
    if _WATCHING and _WATCHING[0] == os.getpid():
        return
    _WATCHING[:] = [os.getpid()]
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="simfit-parent-watch", daemon=True).start()


def _pinned(threads: int, func: Callable, args: tuple):
    _watch_parent()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return func(*args)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise SimfitError(f"Unknown parallel backend {backend!r}; choose one of {', '.join(BACKENDS)}.")


#: Dask clients of this process, by scheduler address (or local cluster size): one per run,
#: reused by every parallel call in it (starting a local cluster costs seconds), closed at exit.
_CLIENTS: dict = {}


def _close_clients() -> None:
    for client, cluster in _CLIENTS.values():
        with contextlib.suppress(Exception):
            client.close()
            if cluster is not None:
                cluster.close()
    _CLIENTS.clear()


def dask_client(scheduler: str | None, n_jobs: int, timeout: float = 30.0):
    """The process's dask client for ``scheduler`` (a local cluster of ``n_jobs`` processes when
    None), started on first use and reused afterwards; ``timeout`` (s) to reach a scheduler."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SimfitError("The dask backend needs dask.distributed: pip install 'simfit[dask]'.") from None
    key = scheduler or ("local", max(1, n_jobs))
    entry = _CLIENTS.get(key)
    if entry is not None and entry[0].status == "running":
        return entry[0]
    if not _CLIENTS:
        atexit.register(_close_clients)
    if scheduler:
        try:
            client, cluster = Client(scheduler, timeout=timeout), None
        except (OSError, TimeoutError) as exc:
            raise SimfitError(f"Cannot reach the dask scheduler at {scheduler}: {exc}.") from None
    else:
        try:
            cluster = LocalCluster(n_workers=max(1, n_jobs), threads_per_worker=1, processes=True, dashboard_address=None)
        except Exception as exc:  # e.g. "Nanny failed to start" from a script without a main guard
            raise SimfitError(
                f"Starting a local dask cluster failed ({type(exc).__name__}: {exc}). Worker processes import your "
                "script: put its top-level code under `if __name__ == \"__main__\":`, or pass scheduler='tcp://...' "
                "for a running cluster."
            ) from None
        client = Client(cluster)
    _CLIENTS[key] = (client, cluster)
    return client


@contextlib.contextmanager
def _dask_client(scheduler: str | None, n_jobs: int):
    client = dask_client(scheduler, n_jobs)
    with parallel_config(backend="dask", client=client):
        yield client


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
