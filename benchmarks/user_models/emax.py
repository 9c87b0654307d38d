"""Hierarchical Emax dose-response.

Model (subject i = 1..50, doses d in (0, 1, 3, 10, 30, 100, 300, 1000), one response each):

    y_ik = E0_i + Emax d_k / (ED50_i + d_k) + sigma e_ik,   e_ik ~ N(0, 1)
    E0_i ~ N(e0, tau_e0^2),   log ED50_i ~ N(log_ed50, tau_ed50^2),   Emax = exp(log_emax)

Truth: e0 = 2, tau_e0 = 0.5, log_emax = log 10 = 2.303, log_ed50 = log 20 = 2.996,
tau_ed50 = 0.5, sigma = 1.

Statistics: each subject's least-squares Emax fit (``st.nls``; E0 free, Emax and ED50 bounded
below by 0, so they are reported on the log scale), then the mean and sd across subjects of every
unit statistic. The mean and sd of the E0 estimates give e0 and tau_e0, the mean of the log Emax
estimates log_emax, the mean and sd of the log ED50 estimates log_ed50 and tau_ed50, and the log
residual sd sigma. The doses span ED50 from 1/20 to 50 times, so every subject's curve shows both
its baseline and its plateau.
"""

import math

import numpy as np
from numba import njit

import simfit
from simfit import statistics as st
from simfit.random import normal

DOSES = np.array([0.0, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0])
N_UNITS = 50

TRUTH = {
    "e0": 2.0,
    "tau_e0": 0.5,
    "log_emax": math.log(10.0),
    "log_ed50": math.log(20.0),
    "tau_ed50": 0.5,
    "sigma": 1.0,
}


@njit(cache=True, error_model="numpy")
def observe(psi, theta, x, args, rng, y):
    # psi = (e0, tau_e0, log_emax, log_ed50, tau_ed50, sigma); theta = (E0_i, ED50_i); x[:, 0] = dose
    emax = math.exp(psi[2])
    for k in range(y.shape[0]):
        d = x[k, 0]
        y[k, 0] = theta[0] + emax * d / (theta[1] + d) + psi[5] * normal(rng)


@njit(cache=True, error_model="numpy")
def emax_curve(beta, x, args, out):
    for k in range(out.shape[0]):
        d = x[k, 0]
        out[k] = beta[0] + beta[1] * d / (beta[2] + d)


def model():
    params = [
        simfit.Param("e0"),
        simfit.Param("tau_e0", bounds=(0, math.inf)),
        simfit.Param("log_emax", start=1.0),
        simfit.Param("log_ed50", start=2.0),
        simfit.Param("tau_ed50", bounds=(0, math.inf)),
        simfit.Param("sigma", bounds=(0, math.inf)),
    ]
    unit = simfit.population_level(
        "unit",
        [
            simfit.Normal("E0", mean="e0", sd="tau_e0"),
            simfit.LogNormal("ED50", log_mean="log_ed50", log_sd="tau_ed50"),
        ],
        params,
    )
    m = simfit.Model(params, [unit], simfit.Observations(observe, values=("response",), covariates=("dose",)))
    stats = st.Statistics(
        unit=[
            st.nls(
                emax_curve,
                {"E0": 0.0, "Emax": 5.0, "ED50": 10.0},
                bounds={"E0": (-math.inf, math.inf), "Emax": (0, math.inf), "ED50": (0, math.inf)},
            )
        ],
        across=["mean", "sd"],
    )
    return m, stats


def design():
    return simfit.Panel.from_units(
        [np.zeros(DOSES.size)] * N_UNITS,
        covariates=[DOSES] * N_UNITS,
        value_names=["response"],
        covariate_names=["dose"],
    ).design()
