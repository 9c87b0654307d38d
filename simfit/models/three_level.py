"""Three-level linear model: units (e.g. schools) -> groups (classes) -> observations (pupils).

``y_ijk = mu + a_i + c_ij + e_ijk`` with ``a_i ~ N(0, tau_unit^2)``, ``c_ij ~ N(0, tau_group^2)``
and ``e_ijk ~ N(0, sigma^2)``. The variance of one observation decomposes as
``tau_unit^2 + tau_group^2 + sigma^2``.
"""

from __future__ import annotations

import math

from simfit import statistics as st
from simfit.model import Model, Observations
from simfit.models.random_intercept import normal_noise
from simfit.params import Param
from simfit.population import Normal, population_level

PARAMS = (
    Param("mu", start=0.0),
    Param("tau_unit", bounds=(0.0, math.inf), start=1.0),
    Param("tau_group", bounds=(0.0, math.inf), start=1.0),
    Param("sigma", bounds=(0.0, math.inf), start=1.0),
)


def model() -> Model:
    """The three-level model with parameters ``mu``, ``tau_unit``, ``tau_group``, ``sigma``."""
    unit = population_level("unit", [Normal("a", mean="mu", sd="tau_unit")], PARAMS)
    group = population_level("group", [Normal("c", mean="a", sd="tau_group")], PARAMS, parent=unit)
    return Model(
        params=PARAMS,
        levels=(unit, group),
        observations=Observations(normal_noise, values=("y",), args=(3.0,)),
        name="three_level",
        description=__doc__.splitlines()[0],
    )


def statistics() -> st.Statistics:
    """Grand mean, between-unit sd of unit means, mean between-group and within-group variances."""
    return st.Statistics(unit=[st.mean(), st.group_variances()], across=["mean", "sd"])
