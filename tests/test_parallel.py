"""run_parallel keeps order and results across backends and worker counts."""

import numpy as np
import pytest

import simfit
from simfit.errors import SimfitError
from simfit.estimation import fit
from simfit.models import random_intercept
from simfit.parallel import run_parallel


def square(x):
    return x * x


def test_order_and_values():
    tasks = [(k,) for k in range(7)]
    assert run_parallel(square, tasks, n_jobs=1) == run_parallel(square, tasks, n_jobs=2) == [k * k for k in range(7)]


def test_parallel_bootstrap_equals_sequential():
    model = random_intercept.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(30, 10)).simulate({"mu": 1, "tau": 0.5, "sigma": 1}, seed=1).panel(0)
    one = fit(model, data, random_intercept.statistics(), seed=2, bootstrap=4, n_jobs=1)
    two = fit(model, data, random_intercept.statistics(), seed=2, bootstrap=4, n_jobs=2)
    assert np.array_equal(one.bootstrap_estimates, two.bootstrap_estimates)


def _square(x):
    return x * x


def test_dask_runs_reuse_one_client_and_reach_a_scheduler_by_address():
    distributed = pytest.importorskip("dask.distributed")
    from simfit import parallel

    parallel._close_clients()
    first = run_parallel(_square, [(k,) for k in range(6)], n_jobs=2, backend="dask")
    client = parallel.dask_client(None, 2)
    second = run_parallel(_square, [(k,) for k in range(6)], n_jobs=2, backend="dask")
    assert first == second == [k * k for k in range(6)]
    assert parallel.dask_client(None, 2) is client and len(parallel._CLIENTS) == 1  # one cluster for the run
    parallel._close_clients()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert run_parallel(_square, [(3,), (4,)], n_jobs=1, backend="dask", scheduler=cluster.scheduler_address) == [9, 16]
        parallel._close_clients()
    with pytest.raises(SimfitError, match="Cannot reach the dask scheduler"):
        parallel.dask_client("tcp://127.0.0.1:1", 1, timeout=1)


def test_worker_processes_end_with_a_killed_parent():
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = Path(__file__).resolve().parent / "_orphan_workers.py"
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    pids = [int(p) for p in run.stdout.split()]
    assert pids and os.getpid() not in pids

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.time() + 20
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(alive(p) for p in pids), "workers outlived their killed parent"
