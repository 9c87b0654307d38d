"""Hierarchical g-and-k distribution (defined by its quantile function only).

Observations of unit ``i`` are ``Q(z) = A_i + B_i (1 + c tanh(g z / 2)) (1 + z^2)^k z`` with
``z`` standard normal and ``c = 0.8``: ``g`` skews and ``k`` thickens the tails. Unit locations
``A_i ~ N(A_mu, A_sd^2)``, unit scales ``B_i = exp(log_B + B_sd * z_i)``; ``g`` and ``k`` are
shared. The density has no closed form, the classic case for simulation-based inference
(classic values A = 3, B = 1, g = 2, k = 0.5).

Statistics per unit are robust, built from the octiles ``E1..E7``: the median ``E4`` (location),
the log of ``E6 - E2`` (scale), Bowley's skewness ``(E6 + E2 - 2 E4) / (E6 - E2)`` and Moors'
kurtosis ``((E7 - E5) + (E3 - E1)) / (E6 - E2)``; their mean and spread across units.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simfit import statistics as st
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import LogNormal, Normal, population_level
from simfit.random import load, normal_from, store
from simfit.statistics._numeric import sorted_column, sorted_quantile

C = 0.8

PARAMS = (
    Param("A_mu", start=2.5),
    Param("A_sd", bounds=(0.0, math.inf), start=0.5),
    Param("log_B", start=0.0),
    Param("B_sd", bounds=(0.0, math.inf), start=0.3),
    Param("g", start=1.0),
    Param("k", bounds=(0.0, 5.0), start=0.3),
)


@njit(cache=True, error_model="numpy")
def gk_observations(psi, theta, x, args, rng, y):
    """Observation kernel: ``theta = (A, B)``; ``args = (c, index of g, index of k)``."""
    c = args[0]
    g = psi[int(args[1])]
    k = psi[int(args[2])]
    a = theta[0]
    b = theta[1]
    state = load(rng)
    for j in range(y.shape[0]):
        z, state = normal_from(state)
        y[j, 0] = a + b * (1.0 + c * math.tanh(0.5 * g * z)) * (1.0 + z * z) ** k * z
    store(rng, state)


def model() -> Model:
    """The hierarchical g-and-k model."""
    unit = population_level("unit", [Normal("A", "A_mu", "A_sd"), LogNormal("B", "log_B", "B_sd")], PARAMS)
    names = [p.name for p in PARAMS]
    return Model(
        params=PARAMS,
        levels=(unit,),
        observations=Observations(gk_observations, values=("y",), args=(C, names.index("g"), names.index("k"))),
        name="gandk",
        description=__doc__.splitlines()[0],
    )


@njit(cache=True, error_model="numpy")
def octile_summary_kernel(y, x, groups, args, work, out):
    """args = (column,): median, log octile spread, Bowley skewness, Moors kurtosis."""
    n = y.shape[0]
    v = sorted_column(y, int(args[0]), work)
    e = work[n : n + 8]
    for j in range(1, 8):
        e[j] = sorted_quantile(v, n, j / 8.0)
    spread = e[6] - e[2]
    out[0] = e[4]
    if spread > 0.0:
        out[1] = math.log(spread)
        out[2] = (e[6] + e[2] - 2.0 * e[4]) / spread
        out[3] = ((e[7] - e[5]) + (e[3] - e[1])) / spread
    else:
        out[1] = np.nan
        out[2] = np.nan
        out[3] = np.nan


def octile_summary(value="y") -> st.UnitStatistic:
    """Robust per-unit summary from octiles (labels ``median``, ``log_spread``, ``bowley``,
    ``moors``)."""
    return st.UnitStatistic(
        kernel=octile_summary_kernel,
        labels=("median", "log_spread", "bowley", "moors"),
        value=value,
        args=lambda layout: [layout.value(value)],
        work=lambda n: n + 8,
    )


def statistics() -> st.Statistics:
    """Mean and sd across units of the octile summaries."""
    return st.Statistics(unit=[octile_summary()], across=["mean", "sd"])


def quantile(u, a, b, g, k, c=C):
    """The g-and-k quantile function (vectorised NumPy), for checks and plots."""
    from scipy.stats import norm

    z = norm.ppf(u)
    return a + b * (1.0 + c * np.tanh(0.5 * g * z)) * (1.0 + z * z) ** k * z
