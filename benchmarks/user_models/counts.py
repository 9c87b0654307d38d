"""Hierarchical Poisson counts with a covariate slope.

Model (site i = 1..60, 10 visits with a centred covariate x_k = (k - 4.5) / 4.5, k = 0..9):

    y_ik ~ Poisson(lambda_i exp(beta x_k))
    log lambda_i ~ N(mu, tau^2)

Truth: mu = 1.0 (a median site rate of 2.7 counts per visit), tau = 0.5, beta = 0.4.

Statistics: each site's Poisson regression of its counts on x (``st.glm("poisson",
columns=["x"])``: intercept and slope), then the mean and sd across sites of every unit
statistic. The mean of the intercepts identifies mu, their sd (beyond the Poisson noise of a
10-visit fit) tau, and the mean of the slopes beta.
"""

import math

import numpy as np
from numba import njit

import simfit
from simfit import statistics as st
from simfit.random import poisson

X = (np.arange(10.0) - 4.5) / 4.5
N_UNITS = 60

TRUTH = {"mu": 1.0, "tau": 0.5, "beta": 0.4}


@njit(cache=True, error_model="numpy")
def observe(psi, theta, x, args, rng, y):
    # psi = (mu, tau, beta); theta = (lambda_i,); x[:, 0] = covariate
    for k in range(y.shape[0]):
        y[k, 0] = poisson(rng, theta[0] * math.exp(psi[2] * x[k, 0]))


def model():
    params = [
        simfit.Param("mu"),
        simfit.Param("tau", bounds=(0, math.inf), start=0.5),
        simfit.Param("beta"),
    ]
    unit = simfit.population_level(
        "site", [simfit.LogNormal("lam", log_mean="mu", log_sd="tau")], params
    )
    m = simfit.Model(params, [unit], simfit.Observations(observe, values=("count",), covariates=("x",)))
    stats = st.Statistics(unit=[st.glm("poisson", columns=["x"])], across=["mean", "sd"])
    return m, stats


def design():
    return simfit.Panel.from_units(
        [np.zeros(X.size)] * N_UNITS,
        covariates=[X] * N_UNITS,
        value_names=["count"],
        covariate_names=["x"],
    ).design()
