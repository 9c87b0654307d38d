"""Hierarchical two-compartment pharmacokinetics after an oral dose.

Model (subject i = 1..48, dose 100 mg at time 0, samples at t = 0.25, 0.5, 1, 2, 3, 4, 6, 8, 12,
24 h):

    C_ik = C(t_k; ka, CL_i, V1_i, Q, V2, dose) exp(sigma e_ik),   e_ik ~ N(0, 1)
    log CL_i ~ N(log_cl, omega_cl^2),   log V1_i ~ N(log_v1, omega_v1^2)
    ka = exp(log_ka), Q = exp(log_q), V2 = exp(log_v2) common to all subjects

with C the closed-form two-compartment model with first-order absorption
(k10 = CL/V1, k12 = Q/V1, k21 = Q/V2; alpha, beta the roots of
s^2 - (k10 + k12 + k21) s + k10 k21):

    C(t) = dose ka / V1 * sum over r in (alpha, beta, ka) of (k21 - r) / prod_{r' != r} (r' - r) e^{-r t}

Truth: log_ka = log 1.5, log_cl = log 5, omega_cl = 0.3, log_v1 = log 30, omega_v1 = 0.25,
log_q = log 8, log_v2 = log 60, sigma = 0.15 (half-lives about 1.3 h and 16 h).

Statistics: each subject's least-squares fit of the same two-compartment curve to its log
concentrations (``st.nls``, ``residuals="log"`` for the proportional error, every parameter
bounded below by 0 and reported on the log scale), then the mean and sd across subjects of every
unit statistic. The means of the five log estimates identify the five log population means, the
sds of the log CL and log V1 estimates the two between-subject spreads, and the log residual sd
sigma.
"""

import math

import numpy as np
from numba import njit

import simfit
from simfit import statistics as st
from simfit.random import normal

TIMES = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0])
DOSE = 100.0
N_UNITS = 48

TRUTH = {
    "log_ka": math.log(1.5),
    "log_cl": math.log(5.0),
    "omega_cl": 0.3,
    "log_v1": math.log(30.0),
    "omega_v1": 0.25,
    "log_q": math.log(8.0),
    "log_v2": math.log(60.0),
    "sigma": 0.15,
}


@njit(cache=True, error_model="numpy")
def conc2(t, dose, ka, cl, v1, q, v2):
    k10 = cl / v1
    k12 = q / v1
    k21 = q / v2
    a = k10 + k12 + k21
    root = math.sqrt(a * a - 4.0 * k10 * k21)
    alpha = 0.5 * (a + root)
    beta = 0.5 * (a - root)
    c_alpha = (k21 - alpha) / ((ka - alpha) * (beta - alpha))
    c_beta = (k21 - beta) / ((ka - beta) * (alpha - beta))
    c_ka = (k21 - ka) / ((alpha - ka) * (beta - ka))
    return dose * ka / v1 * (c_alpha * math.exp(-alpha * t) + c_beta * math.exp(-beta * t) + c_ka * math.exp(-ka * t))


@njit(cache=True, error_model="numpy")
def observe(psi, theta, x, args, rng, y):
    # psi = (log_ka, log_cl, omega_cl, log_v1, omega_v1, log_q, log_v2, sigma)
    # theta = (CL_i, V1_i); x[:, 0] = time, x[:, 1] = dose
    ka = math.exp(psi[0])
    q = math.exp(psi[5])
    v2 = math.exp(psi[6])
    for k in range(y.shape[0]):
        c = conc2(x[k, 0], x[k, 1], ka, theta[0], theta[1], q, v2)
        y[k, 0] = c * math.exp(psi[7] * normal(rng))


@njit(cache=True, error_model="numpy")
def pk2_curve(beta, x, args, out):
    for k in range(out.shape[0]):
        out[k] = conc2(x[k, 0], x[k, 1], beta[0], beta[1], beta[2], beta[3], beta[4])


def model():
    params = [
        simfit.Param("log_ka", start=0.0),
        simfit.Param("log_cl", start=1.0),
        simfit.Param("omega_cl", bounds=(0, math.inf), start=0.5),
        simfit.Param("log_v1", start=3.0),
        simfit.Param("omega_v1", bounds=(0, math.inf), start=0.5),
        simfit.Param("log_q", start=1.5),
        simfit.Param("log_v2", start=4.0),
        simfit.Param("sigma", bounds=(0, math.inf), start=0.2),
    ]
    unit = simfit.population_level(
        "subject",
        [
            simfit.LogNormal("CL", log_mean="log_cl", log_sd="omega_cl"),
            simfit.LogNormal("V1", log_mean="log_v1", log_sd="omega_v1"),
        ],
        params,
    )
    m = simfit.Model(
        params, [unit], simfit.Observations(observe, values=("conc",), covariates=("time", "dose"))
    )
    positive = (0, math.inf)
    stats = st.Statistics(
        unit=[
            st.nls(
                pk2_curve,
                {"ka": 1.0, "CL": 3.0, "V1": 20.0, "Q": 5.0, "V2": 50.0},
                bounds={"ka": positive, "CL": positive, "V1": positive, "Q": positive, "V2": positive},
                residuals="log",
            )
        ],
        across=["mean", "sd"],
    )
    return m, stats


def design():
    return simfit.Panel.from_units(
        [np.zeros(TIMES.size)] * N_UNITS,
        covariates=[np.column_stack([TIMES, np.full(TIMES.size, DOSE)])] * N_UNITS,
        value_names=["conc"],
        covariate_names=["time", "dose"],
    ).design()
