"""Hierarchical logistic growth.

Model (plot i = 1..40, measured at t = 1, 2, ..., 10 weeks):

    y_ik = K_i / (1 + exp(-r (t_k - t_mid))) + sigma e_ik,   e_ik ~ N(0, 1)
    log K_i ~ N(log_K, tau_K^2),   r = exp(log_r),   t_mid common to all plots

Truth: log_K = log 20 = 2.996, tau_K = 0.3, log_r = log 0.8 = -0.223, t_mid = 5, sigma = 1.

Statistics: each plot's least-squares logistic fit (``st.nls``: K and r bounded below by 0, t_mid
free), then the mean and sd across plots of every unit statistic. The mean and sd of the log K
estimates identify log_K and tau_K, the mean of the log r estimates log_r, the mean of the t_mid
estimates t_mid, and the log residual sd sigma. The ten weeks cover the lag, the inflection and
most of the approach to the asymptote (y reaches 98% of K by week 10).
"""

import math

import numpy as np
from numba import njit

import simfit
from simfit import statistics as st
from simfit.random import normal

WEEKS = np.arange(1.0, 11.0)
N_UNITS = 40

TRUTH = {"log_K": math.log(20.0), "tau_K": 0.3, "log_r": math.log(0.8), "t_mid": 5.0, "sigma": 1.0}


@njit(cache=True, error_model="numpy")
def observe(psi, theta, x, args, rng, y):
    # psi = (log_K, tau_K, log_r, t_mid, sigma); theta = (K_i,); x[:, 0] = week
    r = math.exp(psi[2])
    for k in range(y.shape[0]):
        y[k, 0] = theta[0] / (1.0 + math.exp(-r * (x[k, 0] - psi[3]))) + psi[4] * normal(rng)


@njit(cache=True, error_model="numpy")
def logistic_curve(beta, x, args, out):
    for k in range(out.shape[0]):
        out[k] = beta[0] / (1.0 + math.exp(-beta[1] * (x[k, 0] - beta[2])))


def model():
    params = [
        simfit.Param("log_K", start=2.0),
        simfit.Param("tau_K", bounds=(0, math.inf), start=0.5),
        simfit.Param("log_r"),
        simfit.Param("t_mid", start=4.0),
        simfit.Param("sigma", bounds=(0, math.inf)),
    ]
    unit = simfit.population_level(
        "plot", [simfit.LogNormal("K", log_mean="log_K", log_sd="tau_K")], params
    )
    m = simfit.Model(params, [unit], simfit.Observations(observe, values=("biomass",), covariates=("week",)))
    stats = st.Statistics(
        unit=[
            st.nls(
                logistic_curve,
                {"K": 10.0, "r": 1.0, "t_mid": 5.0},
                bounds={"K": (0, math.inf), "r": (0, math.inf), "t_mid": (-math.inf, math.inf)},
            )
        ],
        across=["mean", "sd"],
    )
    return m, stats


def design():
    return simfit.Panel.from_units(
        [np.zeros(WEEKS.size)] * N_UNITS,
        covariates=[WEEKS] * N_UNITS,
        value_names=["biomass"],
        covariate_names=["week"],
    ).design()
