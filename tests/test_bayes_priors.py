import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from scipy import stats as sps

from simfit.bayes.priors import PRIOR_FAMILIES, Priors, make_prior
from simfit.errors import ModelError, ScenarioError
from simfit.models import random_intercept


@pytest.mark.parametrize(
    "spec, reference",
    [
        ({"dist": "normal", "mean": 1.0, "sd": 2.0}, sps.norm(1.0, 2.0)),
        ({"dist": "lognormal", "log_mean": 0.5, "log_sd": 0.3}, sps.lognorm(0.3, scale=math.exp(0.5))),
        ({"dist": "uniform", "low": -2.0, "high": 3.0}, sps.uniform(-2.0, 5.0)),
        ({"dist": "halfnormal", "scale": 1.5}, sps.halfnorm(scale=1.5)),
        ({"dist": "halfcauchy", "scale": 0.7}, sps.halfcauchy(scale=0.7)),
        ({"dist": "beta", "a": 2.0, "b": 5.0}, sps.beta(2.0, 5.0)),
        ({"dist": "beta", "a": 2.0, "b": 5.0, "low": -1.0, "high": 1.0}, sps.beta(2.0, 5.0, loc=-1.0, scale=2.0)),
    ],
)
def test_families_are_the_documented_distributions(spec, reference):
    dist = make_prior(spec)
    x = reference.ppf([0.01, 0.3, 0.5, 0.9, 0.99])
    np.testing.assert_allclose(dist.logpdf(x), reference.logpdf(x), rtol=1e-12)
    assert dist.support() == reference.support()


def test_a_frozen_scipy_distribution_is_accepted_as_it_is():
    gamma = sps.gamma(2.0, scale=0.5)
    assert make_prior(gamma) is gamma


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"dist": "gamma", "a": 1}, "Unknown prior family 'gamma'"),
        ({"low": 0, "high": 1}, "'dist' key"),
        ({"dist": "normal", "mean": 0}, "takes mean, sd"),
        ({"dist": "normal", "mean": 0, "sd": 1, "scale": 2}, "takes mean, sd"),
        ({"dist": "normal", "mean": 0, "sd": float("nan")}, "finite number"),
        ({"dist": "normal", "mean": 0, "sd": -1}, "must be positive"),
        ({"dist": "uniform", "low": 2, "high": 1}, "low < high"),
        ({"dist": "halfcauchy", "scale": "1"}, "finite number"),
    ],
)
def test_bad_declarations_name_the_problem(spec, message):
    with pytest.raises(ScenarioError, match=message):
        make_prior(spec)


def test_every_family_is_listed_in_the_error_for_an_unknown_one():
    with pytest.raises(ScenarioError) as info:
        make_prior({"dist": "weibull"})
    for family in PRIOR_FAMILIES:
        assert family in str(info.value)


PRIOR = {
    "mu": {"dist": "normal", "mean": 0, "sd": 5},
    "tau": {"dist": "halfnormal", "scale": 1},
    "sigma": {"dist": "lognormal", "log_mean": 0, "log_sd": 1},
}


def test_priors_need_every_parameter_and_only_known_ones():
    params = random_intercept.model().params
    with pytest.raises(ModelError, match="No prior for parameter.*sigma"):
        Priors(params, {k: v for k, v in PRIOR.items() if k != "sigma"})
    with pytest.raises(ModelError, match="unknown parameter.*rho"):
        Priors(params, {**PRIOR, "rho": {"dist": "uniform", "low": 0, "high": 1}})


def test_support_outside_the_bounds_is_refused_with_a_fix():
    params = random_intercept.model().params
    with pytest.raises(ModelError, match=r"'tau' has support \[-inf, inf\], outside the parameter's bounds .*halfnormal"):
        Priors(params, {**PRIOR, "tau": {"dist": "normal", "mean": 1, "sd": 1}})
    with pytest.raises(ModelError, match="Prior of 'mu'.*Unknown prior family"):
        Priors(params, {**PRIOR, "mu": {"dist": "flat"}})


def test_joint_log_density_is_the_sum_and_minus_inf_outside():
    params = random_intercept.model().params
    priors = Priors(params, PRIOR)
    psi = np.array([[0.3, 0.5, 1.2], [0.0, -0.1, 1.0]])
    expected = sps.norm(0, 5).logpdf(0.3) + sps.halfnorm(scale=1).logpdf(0.5) + sps.lognorm(1.0).logpdf(1.2)
    lp = priors.logpdf(psi)
    assert lp[0] == pytest.approx(expected, rel=1e-12)
    assert lp[1] == -np.inf
    assert priors.logpdf(psi[0]) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=hst.integers(0, 2**32 - 1), n=hst.integers(1, 50))
def test_draws_lie_inside_the_bounds_with_finite_density(seed, n):
    params = random_intercept.model().params
    priors = Priors(params, {**PRIOR, "tau": {"dist": "halfcauchy", "scale": 1e-300}})
    draws = priors.rvs(n, np.random.default_rng(seed))
    assert draws.shape == (n, 3)
    assert np.all(draws > params.lower) and np.all(draws < params.upper)
    assert np.all(np.isfinite(params.to_free(draws)))
