"""run_parallel keeps order and results across backends and worker counts."""

import numpy as np

import simfit
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
