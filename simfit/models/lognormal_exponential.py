"""Log-normal rates with exponential observations.

Unit rates ``theta_i = exp(m + s * z_i)``, ``z_i ~ N(0, 1)``; observations of unit ``i`` are
exponential with rate ``theta_i`` (mean ``1 / theta_i``).
"""

from __future__ import annotations

import math

from numba import njit

from simfit import statistics as st
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import LogNormal, population_level
from simfit.random import fill_exponential

PARAMS = (
    Param("m", start=0.0),
    Param("s", bounds=(0.0, math.inf), start=1.0),
)


@njit(cache=True, error_model="numpy")
def exponential_observations(psi, theta, x, args, rng, y):
    """Exponential observations with the entity's rate ``theta[0]``."""
    fill_exponential(rng, y[:, 0], 1.0 / theta[0])


def model() -> Model:
    """Log-normal unit rates with exponential observations; parameters ``m`` and ``s``."""
    unit = population_level("unit", [LogNormal("rate", log_mean="m", log_sd="s")], PARAMS)
    return Model(
        params=PARAMS,
        levels=(unit,),
        observations=Observations(exponential_observations, values=("y",)),
        name="lognormal_exponential",
        description=__doc__.splitlines()[0],
    )


def statistics() -> st.Statistics:
    """Mean and sd across units of the log unit means (``-m`` and ``sqrt(s^2 + 1/n)`` roughly)
    and of the unit means (over-identifying)."""
    return st.Statistics(unit=[st.log_mean(), st.mean()], across=["mean", "sd"])
