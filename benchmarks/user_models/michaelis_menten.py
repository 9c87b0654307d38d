"""Hierarchical Michaelis-Menten kinetics.

Model (enzyme preparation i = 1..50, substrate concentrations S in (0.5, 1, 2, 5, 10, 20, 50, 100)):

    v_ik = Vmax_i S_k / (Km + S_k) + sigma e_ik,   e_ik ~ N(0, 1)
    log Vmax_i ~ N(log_vmax, tau_vmax^2),   Km = exp(log_km) common to all preparations

Truth: log_vmax = log 10 = 2.303, tau_vmax = 0.3, log_km = log 5 = 1.609, sigma = 0.5.

Statistics: each preparation's least-squares Michaelis-Menten fit (``st.nls``, Vmax and Km bounded
below by 0, started at 1, 1), then the mean and sd across preparations of every unit statistic.
The mean and sd of the log Vmax estimates identify log_vmax and tau_vmax, the mean of the log Km
estimates log_km, and the log residual sd sigma. The concentrations run from Km/10 to 20 Km.
"""

import math

import numpy as np
from numba import njit

import simfit
from simfit import statistics as st
from simfit.random import normal

SUBSTRATE = np.array([0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0])
N_UNITS = 50

TRUTH = {"log_vmax": math.log(10.0), "tau_vmax": 0.3, "log_km": math.log(5.0), "sigma": 0.5}


@njit(cache=True, error_model="numpy")
def observe(psi, theta, x, args, rng, y):
    # psi = (log_vmax, tau_vmax, log_km, sigma); theta = (Vmax_i,); x[:, 0] = substrate
    km = math.exp(psi[2])
    for k in range(y.shape[0]):
        s = x[k, 0]
        y[k, 0] = theta[0] * s / (km + s) + psi[3] * normal(rng)


@njit(cache=True, error_model="numpy")
def mm_curve(beta, x, args, out):
    for k in range(out.shape[0]):
        s = x[k, 0]
        out[k] = beta[0] * s / (beta[1] + s)


def model():
    params = [
        simfit.Param("log_vmax", start=1.0),
        simfit.Param("tau_vmax", bounds=(0, math.inf), start=0.5),
        simfit.Param("log_km", start=1.0),
        simfit.Param("sigma", bounds=(0, math.inf)),
    ]
    unit = simfit.population_level(
        "prep", [simfit.LogNormal("Vmax", log_mean="log_vmax", log_sd="tau_vmax")], params
    )
    m = simfit.Model(params, [unit], simfit.Observations(observe, values=("rate",), covariates=("substrate",)))
    stats = st.Statistics(
        unit=[st.nls(mm_curve, {"Vmax": 1.0, "Km": 1.0}, bounds={"Vmax": (0, math.inf), "Km": (0, math.inf)})],
        across=["mean", "sd"],
    )
    return m, stats


def design():
    return simfit.Panel.from_units(
        [np.zeros(SUBSTRATE.size)] * N_UNITS,
        covariates=[SUBSTRATE] * N_UNITS,
        value_names=["rate"],
        covariate_names=["substrate"],
    ).design()
