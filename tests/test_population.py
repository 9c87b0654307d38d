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


def test_non_positive_definite_correlations_raise_a_simulation_error():
    with pytest.raises((SimulationError, ModelError), match="non-finite|unset|NaN"):
        draws([MvNormal(("a", "b", "c"), (0, 0, 0), (1, 1, 1), (0.9, 0.9, -0.9))])


def test_references_are_resolved_and_checked():
    with pytest.raises(ModelError, match="neither a population parameter"):
        population_level("unit", [Normal("a", "nope", "s1")], PARAMS)
    with pytest.raises(ModelError, match="corr needs 1"):
        MvNormal(("a", "b"), (0, 0), (1, 1), ())
    with pytest.raises(ModelError, match="unknown link"):
        MvNormal(("a",), (0,), (1,), links=("probit",))
