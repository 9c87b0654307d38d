"""Model declarations: names, levels and validation."""

import dataclasses
import math

import numpy as np
import pytest

import simfit
from simfit.errors import DataError, ModelError
from simfit.model import Level, Model, Observations
from simfit.models.random_intercept import normal_noise
from simfit.params import Param
from simfit.population import latent_gaussian_draw


def test_model_repr_and_names(ri_model, tl_model):
    assert ri_model.param_names == ("mu", "tau", "sigma")
    assert tl_model.n_levels == 2 and [lv.name for lv in tl_model.levels] == ["unit", "group"]
    assert "unit(a) -> group(c)" in repr(tl_model)


def test_invalid_declarations():
    with pytest.raises(ModelError, match="declares no parameters"):
        Level("unit", (), latent_gaussian_draw)
    with pytest.raises(ModelError, match="not a valid name"):
        Level("unit", ("a b",), latent_gaussian_draw)
    with pytest.raises(ModelError, match="args must be finite"):
        Level("unit", ("a",), latent_gaussian_draw, args=(np.nan,))
    with pytest.raises(ModelError, match="at least one level"):
        Model((Param("mu"),), (), Observations(normal_noise))
    with pytest.raises(ModelError, match="Duplicate parameter"):
        Model((Param("mu"), Param("mu", (0, math.inf))), (Level("u", ("a",), latent_gaussian_draw),), Observations(normal_noise))
    with pytest.raises(ModelError, match="Level names"):
        lv = Level("u", ("a",), latent_gaussian_draw)
        Model((Param("mu"),), (lv, lv), Observations(normal_noise))


def test_declared_covariates_are_checked_against_the_design():
    from simfit.models import pk

    model = pk.model()  # its observation kernel reads time, then dose
    design = pk.design(4)
    simfit.Simulator(model, design)
    without_dose = simfit.Panel.from_units([np.zeros(3)] * 2, covariates=[np.ones((3, 1))] * 2, covariate_names=("time",))
    with pytest.raises(DataError, match="reads covariate\\(s\\) 'dose'"):
        simfit.Simulator(model, without_dose)
    swapped = simfit.Panel.from_units([np.zeros(3)] * 2, covariates=[np.ones((3, 2))] * 2, covariate_names=("dose", "time"))
    with pytest.raises(DataError, match="in the order time, dose"):
        simfit.Simulator(model, swapped)


def test_declared_unit_covariates_are_checked_against_the_design():
    from simfit.models import random_intercept

    ri = random_intercept.model()
    level = dataclasses.replace(ri.levels[0], covariates=("age",))
    model = simfit.Model(ri.params, [level], ri.observations)
    with pytest.raises(DataError, match="level 'unit' reads covariate\\(s\\) 'age'"):
        simfit.Simulator(model, simfit.Panel.balanced(3, 2))
    with_age = simfit.Panel.from_units([np.zeros(2)] * 3, unit_covariates=np.ones((3, 1)), unit_covariate_names=("age",))
    simfit.Simulator(model, with_age)
