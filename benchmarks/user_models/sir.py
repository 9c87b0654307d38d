"""Hierarchical SIR epidemics, one per region, observed as weekly case counts.

Model (region i = 1..50, population N = 10000 with I0 = 10 infected at week 0, weeks w = 1..14),
a discrete-time (chain-binomial mean) SIR:

    new_w = S_{w-1} (1 - exp(-beta_i I_{w-1} / N)),   recovered_w = I_{w-1} (1 - exp(-gamma))
    S_w = S_{w-1} - new_w,   I_w = I_{w-1} + new_w - recovered_w
    cases_iw ~ Poisson(new_w)
    log beta_i ~ N(log_beta, tau_beta^2),   gamma = exp(log_gamma) common to all regions

Truth: log_beta = log 1.2 = 0.182, tau_beta = 0.2, log_gamma = log 0.7 = -0.357
(R0 = beta / (1 - exp(-gamma)) about 2.4 at the median region, between 1.6 and 3.5 for 95% of
them).

Statistics: each region's least-squares fit of the deterministic SIR incidence curve to its
counts (``st.nls``, beta and gamma bounded below by 0), then the mean and sd across regions of
every unit statistic. The early growth of a region's curve is set by beta - gamma and the size and
timing of its peak by their ratio, so each region's fit determines both: the mean and sd of the
log beta estimates identify log_beta and tau_beta, the mean of the log gamma estimates log_gamma.
"""

import math

import numpy as np
from numba import njit

import simfit
from simfit import statistics as st
from simfit.random import poisson

WEEKS = np.arange(1.0, 15.0)
N_UNITS = 50
POPULATION = 10000.0
INFECTED0 = 10.0

TRUTH = {"log_beta": math.log(1.2), "tau_beta": 0.2, "log_gamma": math.log(0.7)}


@njit(cache=True, error_model="numpy")
def _incidence(beta, gamma, n_pop, i0, weeks, out):
    # deterministic weekly incidence at the (ascending, integer) weeks
    s = n_pop - i0
    i = i0
    week = 0
    for k in range(weeks.shape[0]):
        target = int(weeks[k] + 0.5)
        new = 0.0
        while week < target:
            new = s * (1.0 - math.exp(-beta * i / n_pop))
            rec = i * (1.0 - math.exp(-gamma))
            s -= new
            i += new - rec
            week += 1
        out[k] = new


@njit(cache=True, error_model="numpy")
def observe(psi, theta, x, args, rng, y):
    # psi = (log_beta, tau_beta, log_gamma); theta = (beta_i,); x[:, 0] = week; args = (N, I0)
    n = y.shape[0]
    mean = np.empty(n)
    _incidence(theta[0], math.exp(psi[2]), args[0], args[1], x[:, 0], mean)
    for k in range(n):
        y[k, 0] = poisson(rng, mean[k])


@njit(cache=True, error_model="numpy")
def sir_curve(beta, x, args, out):
    _incidence(beta[0], beta[1], args[0], args[1], x[:, 0], out)


def model():
    params = [
        simfit.Param("log_beta"),
        simfit.Param("tau_beta", bounds=(0, math.inf), start=0.5),
        simfit.Param("log_gamma"),
    ]
    unit = simfit.population_level(
        "region", [simfit.LogNormal("beta", log_mean="log_beta", log_sd="tau_beta")], params
    )
    m = simfit.Model(
        params,
        [unit],
        simfit.Observations(
            observe, values=("cases",), covariates=("week",), args=np.array([POPULATION, INFECTED0])
        ),
    )
    stats = st.Statistics(
        unit=[
            st.nls(
                sir_curve,
                {"beta": 1.0, "gamma": 0.5},
                bounds={"beta": (0, math.inf), "gamma": (0, math.inf)},
                curve_args=[POPULATION, INFECTED0],
            )
        ],
        across=["mean", "sd"],
    )
    return m, stats


def design():
    return simfit.Panel.from_units(
        [np.zeros(WEEKS.size)] * N_UNITS,
        covariates=[WEEKS] * N_UNITS,
        value_names=["cases"],
        covariate_names=["week"],
    ).design()
