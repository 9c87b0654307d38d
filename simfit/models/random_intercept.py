"""Linear random-intercept model: ``y_ij = mu + b_i + e_ij``.

``b_i ~ N(0, tau^2)`` per unit and ``e_ij ~ N(0, sigma^2)`` per observation. The unit level is a
built-in normal population (unit intercept ``a_i = mu + tau * z_i``); the observation kernel adds
normal noise.
"""

from __future__ import annotations

import math

from numba import njit

from simfit import statistics as st
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import Normal, population_level
from simfit.random import fill_normal

PARAMS = (
    Param("mu", start=0.0),
    Param("tau", bounds=(0.0, math.inf), start=1.0),
    Param("sigma", bounds=(0.0, math.inf), start=1.0),
)


@njit(cache=True, error_model="numpy")
def normal_noise(psi, theta, x, args, rng, y):
    """``y[k] = theta[0] + psi[args[0]] * z_k``: the entity's mean plus normal noise whose
    standard deviation is the population parameter at index ``args[0]``."""
    fill_normal(rng, y[:, 0], theta[0], psi[int(args[0])])


def model() -> Model:
    """The linear random-intercept model with parameters ``mu``, ``tau``, ``sigma``."""
    unit = population_level("unit", [Normal("a", mean="mu", sd="tau")], PARAMS)
    return Model(
        params=PARAMS,
        levels=(unit,),
        observations=Observations(normal_noise, values=("y",), args=(2.0,)),
        name="random_intercept",
        description=__doc__.splitlines()[0],
    )


def statistics() -> st.Statistics:
    """Mean and sd across units of the unit means (mean ``mu``; variance ``tau^2 + sigma^2 / n``)
    and of the unit variances (mean ``sigma^2``; the sd over-identifies)."""
    return st.Statistics(unit=[st.moments("y", ("mean", "var"))], across=["mean", "sd"])
