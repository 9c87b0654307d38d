"""Dynamic panel AR(1) with heterogeneous persistence.

``y_it = alpha_i + rho_i y_i,t-1 + e_it`` with unit effects ``alpha_i ~ N(0, 1)`` (nuisance: they
are not estimated), persistence ``rho_i = expit(m + s z_i)`` in (0, 1), shocks
``e_it ~ N(0, sigma^2)`` and a stationary start ``y_i0 ~ N(alpha_i / (1 - rho_i),
sigma^2 / (1 - rho_i^2))``; ``T`` observations per unit after the start.

The auxiliary model is the within-group (fixed-effects) OLS estimator of each unit's persistence:
in short panels it is biased downward (Nickell 1981; Kendall 1954 per unit), and indirect
inference removes that bias by applying the same estimator to simulated panels.
:func:`population_mean_persistence` gives the estimand ``E[rho_i]``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simfit import statistics as st
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import LogitNormal, Normal, population_level
from simfit.random import fill_normal, normal

PARAMS = (
    Param("m", start=0.0),
    Param("s", bounds=(0.0, math.inf), start=0.5),
    Param("sigma", bounds=(0.0, math.inf), start=1.0),
)


@njit(cache=True, error_model="numpy")
def ar1_series(psi, theta, x, args, rng, y):
    """Observation kernel: ``theta = (alpha, rho)``; a stationary start, then ``y.shape[0]``
    periods of the AR(1) with shock sd ``psi[args[0]]``."""
    sigma = psi[int(args[0])]
    alpha = theta[0]
    rho = min(theta[1], 1.0 - 1e-12)  # the logit link rounds to 1 far out; keep the start finite
    prev = alpha / (1.0 - rho) + sigma / math.sqrt(1.0 - rho * rho) * normal(rng)
    fill_normal(rng, y[:, 0], 0.0, sigma)
    for t in range(y.shape[0]):
        prev = alpha + rho * prev + y[t, 0]
        y[t, 0] = prev


def model() -> Model:
    """The dynamic panel with parameters ``m``, ``s`` (logit scale of persistence) and ``sigma``."""
    unit = population_level("unit", [Normal("alpha", 0.0, 1.0), LogitNormal("rho", "m", "s")], PARAMS)
    return Model(
        params=PARAMS,
        levels=(unit,),
        observations=Observations(ar1_series, values=("y",), args=(2.0,)),
        name="dynamic_panel",
        description=__doc__.splitlines()[0],
    )


@njit(cache=True, error_model="numpy")
def within_sums_kernel(y, x, groups, args, work, out):
    """args = (column,): sums of the unit's within-demeaned lag products ``(Sxy, Sxx)`` of
    ``y_t`` on ``y_t-1``, for the pooled within-group (LSDV) estimator ``sum Sxy / sum Sxx``."""
    col = int(args[0])
    n = y.shape[0]
    if n < 2:  # no (lag, value) pair: contributes nothing to the pooled sums
        out[0] = 0.0
        out[1] = 0.0
        return
    mx = 0.0
    my = 0.0
    for t in range(1, n):
        mx += y[t - 1, col]
        my += y[t, col]
    mx /= n - 1
    my /= n - 1
    sxy = 0.0
    sxx = 0.0
    for t in range(1, n):
        dx = y[t - 1, col] - mx
        sxy += dx * (y[t, col] - my)
        sxx += dx * dx
    out[0] = sxy
    out[1] = sxx


@njit(cache=True, error_model="numpy")
def ratio_of_sums_kernel(u, columns, args, work, out):
    """columns = (numerator, denominator): ``sum numerator / sum denominator`` over units."""
    a = 0.0
    b = 0.0
    for i in range(u.shape[0]):
        a += u[i, columns[0]]
        b += u[i, columns[1]]
    out[0] = a / b if b > 0.0 else np.nan


def pooled_within_ar1(value="y") -> st.Pooled:
    """The pooled within-group (LSDV) AR(1) estimator over all units (``pooled:y.within_ar1``)."""
    part = st.UnitStatistic(
        kernel=within_sums_kernel, labels=("sxy", "sxx"), value=value, args=lambda layout: [layout.value(value)], hidden=True
    )
    return st.Pooled(part, lambda inputs: st.Aggregate(ratio_of_sums_kernel, inputs, (f"pooled:{value}.within_ar1",)))


def statistics() -> st.Statistics:
    """Mean and sd across units of each unit's within-OLS persistence, sample variance and lag-2
    autocorrelation, and the pooled within estimator. None of them depends on the unit effects
    ``alpha_i`` (the OLS intercepts, which do, are left out of the aggregates)."""
    used = ("y.ar1", "y.var", "y.acf2")
    return st.Statistics(
        unit=[st.ar(1), st.var(), st.autocorr([2])],
        across=[],
        extra=[st.mean_of(*used), st.sd_of(*used)],
        pooled=[pooled_within_ar1()],
    )


def population_mean_persistence(m: float, s: float, nodes: int = 64) -> float:
    """``E[expit(m + s Z)]``, Z standard normal (Gauss-Hermite quadrature)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return float(np.sum(w / (1.0 + np.exp(-(m + s * x)))) / math.sqrt(2.0 * math.pi))


def nickell_bias(rho: float, periods: int) -> float:
    """Large-N bias of the pooled within-group AR(1) estimator with ``periods`` (lag, value) pairs
    per unit, i.e. observations per unit minus one (Nickell 1981, eq. 18)."""
    t = periods
    h = (1.0 - (1.0 - rho**t) / (t * (1.0 - rho))) / (t - 1.0)
    return -(1.0 + rho) * h / (1.0 - 2.0 * rho * h / (1.0 - rho))
