"""Built-in population distributions: moments, correlations, links, references to parents."""

import math

import numpy as np
import pytest
from scipy import stats

from simfit.data import Panel
from simfit.engine import Simulator
from simfit.errors import ModelError, SimulationError
from simfit.model import Model, Observations
from simfit.models.random_intercept import normal_noise
from simfit.params import Param
from simfit.population import LogitNormal, LogNormal, MvNormal, Normal, population_level

PARAMS = (
    Param("m1"), Param("m2"), Param("s1", (0, math.inf)), Param("s2", (0, math.inf)),
    Param("rho", (-1, 1)), Param("sigma", (0, math.inf)),
)
TRUTH = {"m1": 0.3, "m2": -0.5, "s1": 0.6, "s2": 0.4, "rho": 0.7, "sigma": 1.0}
N = 20_000


def draws(dists, truth=TRUTH, params=PARAMS):
    level = population_level("unit", dists, params)
    model = Model(params, (level,), Observations(normal_noise, args=(5.0,)))
    return Simulator(model, Panel.balanced(N, 1)).simulate(truth, seed=7).params["unit"][0]


def test_normal_lognormal_logitnormal_marginals():
    theta = draws([Normal("a", "m1", "s1"), LogNormal("b", "m2", "s2"), LogitNormal("c", "m1", "s1", bounds=(2.0, 5.0))])
    a, b, c = theta.T
    assert stats.kstest(a, stats.norm(0.3, 0.6).cdf).pvalue > 1e-4
    assert stats.kstest(b, stats.lognorm(0.4, scale=math.exp(-0.5)).cdf).pvalue > 1e-4
    assert c.min() > 2.0 and c.max() < 5.0
    latent = np.log((c - 2.0) / (5.0 - c))
    assert stats.kstest(latent, stats.norm(0.3, 0.6).cdf).pvalue > 1e-4


def test_multivariate_normal_correlation_and_log_links():
    theta = draws([MvNormal(("cl", "v"), ("m1", "m2"), ("s1", "s2"), ("rho",), links=("log", "log"))])
    z = np.log(theta)
    r = np.corrcoef(z.T)[0, 1]
    se = (1 - 0.7**2) / math.sqrt(N)
    assert abs(r - 0.7) < 4 * se
    assert abs(z[:, 0].std() - 0.6) < 4 * 0.6 / math.sqrt(2 * N)
    assert abs(z[:, 1].mean() + 0.5) < 4 * 0.4 / math.sqrt(N)


def test_three_dimensional_constant_correlations():
    theta = draws([MvNormal(("a", "b", "c"), (0, 0, 0), (1, 1, 1), (0.5, -0.3, 0.2))])
    r = np.corrcoef(theta.T)
    expected = {(0, 1): 0.5, (0, 2): -0.3, (1, 2): 0.2}
    for (i, j), v in expected.items():
        assert abs(r[i, j] - v) < 4 * (1 - v**2) / math.sqrt(N)


def test_non_positive_definite_parameter_correlations_raise_a_simulation_error():
    params = (Param("r1", (-1, 1)), Param("r2", (-1, 1)), Param("r3", (-1, 1)), Param("sigma", (0, math.inf)))
    level = population_level("unit", [MvNormal(("a", "b", "c"), (0, 0, 0), (1, 1, 1), ("r1", "r2", "r3"))], params)
    model = Model(params, (level,), Observations(normal_noise, args=(3.0,)))
    sim = Simulator(model, Panel.balanced(10, 1))
    with pytest.raises(SimulationError, match="draw kernel of level 'unit' produced nan"):
        sim.simulate({"r1": 0.9, "r2": 0.9, "r3": -0.9, "sigma": 1.0})


def test_references_are_resolved_and_checked():
    with pytest.raises(ModelError, match="neither a population parameter"):
        population_level("unit", [Normal("a", "nope", "s1")], PARAMS)
    with pytest.raises(ModelError, match="corr needs 1"):
        MvNormal(("a", "b"), (0, 0), (1, 1), ())
    with pytest.raises(ModelError, match="unknown link"):
        MvNormal(("a",), (0,), (1,), links=("probit",))


def test_level_built_for_other_parameters_is_rejected():
    other = (Param("sigma", (0, math.inf)), *PARAMS[:2], *PARAMS[2:5])
    level = population_level("unit", [Normal("a", "m1", "s1")], PARAMS)
    with pytest.raises(ModelError, match="was built for population parameters"):
        Model(other, (level,), Observations(normal_noise, args=(0.0,)))
    child = population_level("group", [Normal("c", "a", "s2")], PARAMS, parent=level)
    with pytest.raises(ModelError, match="parent parameters"):
        Model(PARAMS, (child,), Observations(normal_noise, args=(5.0,)))


def test_constant_correlations_and_sds_are_validated():
    with pytest.raises(ModelError, match=r"\(-1, 1\)"):
        MvNormal(("a", "b"), (0, 0), (1, 1), (1.5,))
    with pytest.raises(ModelError, match="positive definite"):
        MvNormal(("a", "b", "c"), (0, 0, 0), (1, 1, 1), (0.9, 0.9, -0.9))
    with pytest.raises(ModelError, match="non-negative"):
        Normal("a", 0.0, -1.0)


def test_ambiguous_reference_is_rejected():
    parent = population_level("unit", [Normal("m1", "m1", "s1")], PARAMS)
    with pytest.raises(ModelError, match="names both"):
        population_level("group", [Normal("c", "m1", "s2")], PARAMS, parent=parent)
