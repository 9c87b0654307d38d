"""Kernels that write past their outputs only for some parameters (run in a subprocess by
tests/test_engine_safety.py: a failure there must be an error, never a crash)."""

import sys

from numba import njit

import simfit
from simfit import statistics as st
from simfit.models import random_intercept


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


def main(where: str, far: int) -> None:
    ri = random_intercept.model()
    if where == "observations":
        model = simfit.Model(ri.params, ri.levels, simfit.Observations(sloppy_observations, values=("y",), args=(far,)))
        stats = random_intercept.statistics()
    else:
        model = ri
        stats = st.Statistics(unit=[st.UnitStatistic(sloppy_statistic, ("first",), args=(1 + far,)), st.mean()], across=["mean", "sd"])
    sim = simfit.Simulator(model, simfit.Panel.balanced(20, 5), stats)
    sim.statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, n_sims=2, seed=1)
    try:
        sim.statistics({"mu": 8.0, "tau": 0.5, "sigma": 1.0}, n_sims=2, seed=1)
    except simfit.SimfitError as exc:
        print(f"{type(exc).__name__}: {exc}")
        return
    print("no error")


if __name__ == "__main__":
    for far in sys.argv[2:]:  # one process, several cases: the kernels compile once
        main(sys.argv[1], int(far))
