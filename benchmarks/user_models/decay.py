"""Hierarchical exponential decay.

Model (unit i = 1..60, observation k at time t_k in (0.25, 0.5, 1, 2, 3, 4, 6, 8)):

    y_ik = A exp(-k_i t_k) + sigma e_ik,   e_ik ~ N(0, 1)
    log k_i ~ N(log_k, tau_k^2),           A = exp(log_A) common to all units

Truth: log_A = 1.6, log_k = -0.7, tau_k = 0.4, sigma = 0.3.

Statistics: each unit's own least-squares fit of the curve A exp(-k t) (``st.nls``, started at
A = 1, k = 1 with both bounded below by 0, as a user who does not know the data's scale would
write), then the mean and sd across units of every unit statistic. The mean of the units' log A
estimates identifies log_A, the mean of their log k estimates log_k, the sd of the log k
estimates (beyond the fit noise every unit shares) tau_k, and the units' log residual sd sigma.
"""

import math

import numpy as np
from numba import njit

import simfit
from simfit import statistics as st
from simfit.random import normal

TIMES = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0])
N_UNITS = 60

TRUTH = {"log_A": 1.6, "log_k": -0.7, "tau_k": 0.4, "sigma": 0.3}


@njit(cache=True, error_model="numpy")
def observe(psi, theta, x, args, rng, y):
    # psi = (log_A, log_k, tau_k, sigma); theta = (k_i,); x[:, 0] = time
    amplitude = math.exp(psi[0])
    for k in range(y.shape[0]):
        y[k, 0] = amplitude * math.exp(-theta[0] * x[k, 0]) + psi[3] * normal(rng)


@njit(cache=True, error_model="numpy")
def decay_curve(beta, x, args, out):
    for k in range(out.shape[0]):
        out[k] = beta[0] * math.exp(-beta[1] * x[k, 0])


def model():
    params = [
        simfit.Param("log_A"),
        simfit.Param("log_k"),
        simfit.Param("tau_k", bounds=(0, math.inf)),
        simfit.Param("sigma", bounds=(0, math.inf)),
    ]
    unit = simfit.population_level(
        "unit", [simfit.LogNormal("k", log_mean="log_k", log_sd="tau_k")], params
    )
    m = simfit.Model(params, [unit], simfit.Observations(observe, values=("y",), covariates=("time",)))
    stats = st.Statistics(
        unit=[st.nls(decay_curve, {"A": 1.0, "k": 1.0}, bounds={"A": (0, math.inf), "k": (0, math.inf)})],
        across=["mean", "sd"],
    )
    return m, stats


def design():
    return simfit.Panel.from_units(
        [np.zeros(TIMES.size)] * N_UNITS,
        covariates=[TIMES] * N_UNITS,
        value_names=["y"],
        covariate_names=["time"],
    ).design()
