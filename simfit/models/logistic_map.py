"""A population of logistic maps: ``x_t+1 = r_i x_t (1 - x_t)``, observed with noise.

Each unit has its own growth rate ``r_i ~ N(r_mu, r_sd^2)`` (clipped to [0, 4]); the map starts at
``x_0 = 0.3``, runs 20 steps of burn-in and is observed as ``y_t = x_t + sigma e_t``.

This model is a **negative control for smoothness**. Below ``r = 3`` every trajectory settles on the
fixed point ``1 - 1/r`` and the statistics are smooth functions of the parameters. Above ``r ~ 3.57``
the map is chaotic: trajectories at nearby ``r`` separate exponentially, so common random numbers
do not make the statistics smooth, at any finite-difference step. A fit there reports that its
objective is noisy and is not converged (``FitResult.convergence``), rather than returning its
start as an estimate.
"""

from __future__ import annotations

import math

from numba import njit

from simfit import statistics as st
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import Normal, population_level
from simfit.random import normal

PARAMS = (
    Param("r_mu", bounds=(0.0, 4.0), start=2.6),
    Param("r_sd", bounds=(0.0, math.inf), start=0.1),
    Param("sigma", bounds=(0.0, math.inf), start=0.05),
)

_BURN_IN = 20


@njit(cache=True, error_model="numpy")
def observe_map(psi, theta, x, args, rng, y):
    """Iterate the unit's map from ``x_0 = 0.3`` and write ``y[k] = x_k + sigma * e_k``."""
    r = min(max(theta[0], 0.0), 4.0)
    state = 0.3
    for _ in range(_BURN_IN):
        state = r * state * (1.0 - state)
    for k in range(y.shape[0]):
        state = r * state * (1.0 - state)
        y[k, 0] = state + psi[2] * normal(rng)


def model() -> Model:
    """The population of logistic maps with parameters ``r_mu``, ``r_sd``, ``sigma``."""
    unit = population_level("unit", [Normal("r", mean="r_mu", sd="r_sd")], PARAMS)
    return Model(
        params=PARAMS,
        levels=(unit,),
        observations=Observations(observe_map, values=("y",)),
        name="logistic_map",
        description=__doc__.splitlines()[0],
    )


def statistics() -> st.Statistics:
    """Mean and sd across units of the unit means and standard deviations of ``y``: the unit mean
    tracks the attractor's centre (``1 - 1/r`` at a fixed point), the unit sd its spread plus the
    noise ``sigma``."""
    return st.Statistics(unit=[st.moments("y", ("mean", "sd"))], across=["mean", "sd"])
