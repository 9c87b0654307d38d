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


def test_fixed_parameters_leave_the_estimated_ones_and_reach_the_kernels_at_their_values():
    import pickle

    import simfit
    from simfit.data import Panel
    from simfit.models import random_intercept

    model, stats = random_intercept.model(), random_intercept.statistics()
    fixed = model.fix({"sigma": 1.0})
    assert fixed.param_names == ("mu", "tau") and fixed.all_params.names == ("mu", "tau", "sigma")
    assert "sigma = 1 fixed" in repr(fixed)
    design = Panel.balanced(30, 8)
    a = simfit.Simulator(fixed, design, stats).statistics({"mu": 1.0, "tau": 0.5}, n_sims=3, seed=4)
    b = simfit.Simulator(model, design, stats).statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, n_sims=3, seed=4)
    assert np.array_equal(a, b)
    # A mapping may name the fixed parameter at its value, not at another.
    assert np.array_equal(fixed.free_vector({"mu": 1.0, "tau": 0.5, "sigma": 1.0}), [1.0, 0.5])
    with pytest.raises(ModelError, match="fixed at 1"):
        fixed.free_vector({"mu": 1.0, "tau": 0.5, "sigma": 2.0})
    again = pickle.loads(pickle.dumps(fixed))
    assert again.fixed == {"sigma": 1.0} and np.array_equal(again.expand(np.array([1.0, 0.5])), [1.0, 0.5, 1.0])
    assert fixed.fix({"tau": 0.3}).param_names == ("mu",)  # fixing more keeps the earlier ones
    with pytest.raises(ModelError, match="unknown parameter"):
        model.fix({"kappa": 1.0})
    with pytest.raises(ModelError, match="outside its bounds"):
        model.fix({"tau": -1.0})
    with pytest.raises(ModelError, match="Every parameter is fixed"):
        model.fix({"mu": 0.0, "tau": 1.0, "sigma": 1.0})


def test_a_fit_with_a_fixed_parameter_estimates_the_others():
    import simfit
    from simfit.data import Panel
    from simfit.models import random_intercept

    model, stats = random_intercept.model(), random_intercept.statistics()
    truth = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}
    data = simfit.Simulator(model, Panel.balanced(60, 10)).simulate(truth, seed=7).panel(0)
    res = simfit.fit(model, data, stats, seed=1, fixed={"sigma": 1.0}, bootstrap=0)
    assert list(res.params.index) == ["mu", "tau"] and res.model.fixed == {"sigma": 1.0}
    se = res.se()
    for name in ("mu", "tau"):
        assert abs(res.params[name] - truth[name]) < 4 * se[name]
    assert "Fixed (not estimated): sigma = 1" in res.summary()
    assert res.to_dict()["fixed"] == {"sigma": 1.0}
    summary = res.population_summary()
    assert ("unit.a", "mean") in summary.index
