"""Kernels that write past their outputs only for some parameters (run in a subprocess by
tests/test_engine_safety.py: a failure there must be an error, never a crash)."""

import sys

import numpy as np
from numba import njit

import simfit
from simfit import statistics as st
from simfit.models import random_intercept, three_level


@njit(cache=True)
def sloppy_observations(psi, theta, x, args, rng, y):
    n = y.shape[0]
    for k in range(n):
        y[k, 0] = theta[0] + 0.1 * k
    if psi[0] > 5.0:
        y[n + int(args[0]), 0] = 1.0  # past its output, only for large mu


@njit(cache=True)
def sloppy_statistic(y, x, groups, args, work, out):
    out[0] = y[0, 0]
    if y[0, 0] > 5.0:
        out[int(args[0])] = 1.0  # past its one output, only for large values


@njit(cache=True)
def sloppy_reader(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        y[k, 0] = theta[-1] + x[k, 0]
        if psi[0] > 5.0:
            y[k, 0] += x[k, 1 + int(args[0])]  # past its one covariate, only for large mu


def main(where: str, far: int) -> None:
    ri = random_intercept.model()
    base = three_level.model() if where == "reads-three-level" else ri
    design = simfit.Panel.balanced(20, 5)
    if where == "observations":
        model = simfit.Model(ri.params, ri.levels, simfit.Observations(sloppy_observations, values=("y",), args=(far,)))
        stats = random_intercept.statistics()
    elif where.startswith("reads"):  # reads outside x: its message must not say it writes outside y
        model = simfit.Model(base.params, base.levels, simfit.Observations(sloppy_reader, values=("y",), covariates=("x0",), args=(far,)))
        stats = st.Statistics(unit=[st.mean()], across=["mean", "sd"])
        groups = 3 if base is not ri else None
        design = simfit.Panel.balanced(20, 5, n_groups=groups, covariates=np.ones((20 * 5 * (groups or 1), 1)), covariate_names=["x0"])
    else:
        model = ri
        stats = st.Statistics(unit=[st.UnitStatistic(sloppy_statistic, ("first",), args=(1 + far,)), st.mean()], across=["mean", "sd"])
    sim = simfit.Simulator(model, design, stats)
    start = dict(zip(model.param_names, model.params.start))
    sim.statistics({**start, "mu": 1.0}, n_sims=2, seed=1)
    try:
        sim.statistics({**start, "mu": 8.0}, n_sims=2, seed=1)
    except simfit.SimfitError as exc:
        print(f"{type(exc).__name__}: {exc}")
        return
    print("no error")


if __name__ == "__main__":
    for far in sys.argv[2:]:  # one process, several cases: the kernels compile once
        main(sys.argv[1], int(far))
