"""Three-level logistic growth: measurements over time of plots within sites.

Plot ``j`` of site ``s`` grows as ``K_sj / (1 + exp(-r (t - t_mid)))`` and is measured at times
``t`` (covariate ``time``) with noise ``N(0, sigma^2)``. Asymptotes vary at two levels:
``log K_s ~ N(log_K, site_sd^2)`` between sites and ``log K_sj ~ N(log K_s, plot_sd^2)`` between
plots of a site; the growth rate ``r`` and the midpoint ``t_mid`` are shared. The model recovers
the variance at each level: ``site_sd``, ``plot_sd`` and ``sigma``.

Statistics per site (a unit): the mean and the between-plot variance of the plots' log mean
levels, the measurement-noise variance from second differences within plots, and two shape ratios
(early and middle thirds of the series over the last third); their means and spreads across sites.
Second differences and thirds follow the rows of each plot in order: rows must be sorted by time.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simfit import statistics as st
from simfit.data import Panel
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import Normal, population_level
from simfit.random import fill_normal

PARAMS = (
    Param("log_K", start=2.0),
    Param("site_sd", bounds=(0.0, math.inf), start=0.2),
    Param("plot_sd", bounds=(0.0, math.inf), start=0.2),
    Param("r", bounds=(0.0, math.inf), start=1.0),
    Param("t_mid", start=5.0),
    Param("sigma", bounds=(0.0, math.inf), start=1.0),
)


@njit(cache=True, error_model="numpy")
def growth_measurements(psi, theta, x, args, rng, y):
    """Observation kernel for one plot: ``theta = (log K_plot,)``; ``x[:, 0]`` times; ``args`` =
    indices of ``r``, ``t_mid`` and ``sigma`` in ``psi``."""
    r = psi[int(args[0])]
    mid = psi[int(args[1])]
    sigma = psi[int(args[2])]
    k = math.exp(theta[0])
    fill_normal(rng, y[:, 0], 0.0, sigma)
    for j in range(y.shape[0]):
        y[j, 0] += k / (1.0 + math.exp(-r * (x[j, 0] - mid)))


def model() -> Model:
    """The three-level growth model."""
    site = population_level("site", [Normal("log_K_site", "log_K", "site_sd")], PARAMS)
    plot = population_level("plot", [Normal("log_K_plot", "log_K_site", "plot_sd")], PARAMS, parent=site)
    names = [p.name for p in PARAMS]
    return Model(
        params=PARAMS,
        levels=(site, plot),
        observations=Observations(
            growth_measurements, values=("y",), args=tuple(names.index(n) for n in ("r", "t_mid", "sigma")), covariates=("time",)
        ),
        name="growth",
        description=__doc__.splitlines()[0],
    )


@njit(cache=True, error_model="numpy")
def site_summary_kernel(y, x, groups, args, work, out):
    """args = (column,): for one site (groups = its plots): mean and variance over plots of the
    log plot means, noise variance from second differences, early/late and middle/late ratios."""
    col = int(args[0])
    n_plots = groups.shape[0] - 1
    s1 = 0.0
    s2 = 0.0
    d2 = 0.0
    nd = 0
    early = 0.0
    middle = 0.0
    late = 0.0
    for g in range(n_plots):
        lo = groups[g]
        hi = groups[g + 1]
        n = hi - lo
        total = 0.0
        for j in range(lo, hi):
            total += y[j, col]
        level = math.log(total / n) if total > 0.0 else np.nan
        s1 += level
        s2 += level * level
        for j in range(lo + 1, hi - 1):
            d = y[j + 1, col] - 2.0 * y[j, col] + y[j - 1, col]
            d2 += d * d
            nd += 1
        third = n // 3
        for j in range(third):
            early += y[lo + j, col]
            middle += y[lo + third + j, col]
            late += y[hi - third + j, col]
    out[0] = s1 / n_plots
    out[1] = (s2 - s1 * s1 / n_plots) / (n_plots - 1) if n_plots > 1 else np.nan
    out[2] = d2 / (6.0 * nd) if nd > 0 else np.nan  # E[(second difference)^2] = 6 sigma^2 + curvature
    out[3] = early / late if late > 0.0 else np.nan
    out[4] = middle / late if late > 0.0 else np.nan


def site_summary(value="y") -> st.UnitStatistic:
    """Per-site summary (labels ``level``, ``plot_var``, ``noise_var``, ``early``, ``middle``)."""
    return st.UnitStatistic(
        kernel=site_summary_kernel,
        labels=("level", "plot_var", "noise_var", "early", "middle"),
        value=value,
        args=lambda layout: [layout.value(value)],
    )


def statistics() -> st.Statistics:
    """Means and sds across sites of the site summaries."""
    return st.Statistics(unit=[site_summary()], across=["mean", "sd"])


def design(n_sites: int = 30, n_times: int = 10, n_plots: int = 5) -> Panel:
    """``n_sites`` sites of ``n_plots`` plots, each measured at times 0, 1, ..., n_times - 1."""
    times = np.arange(float(n_times))
    n_groups = n_sites * n_plots
    base = Panel.balanced(n_sites, n_times, n_groups=n_plots)
    return Panel(
        values=None,
        nesting=base.nesting,
        covariates=np.tile(times, n_groups),
        value_names=("y",),
        covariate_names=("time",),
    )
