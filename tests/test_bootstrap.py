"""k-step parametric bootstrap: its spread matches the sandwich, it is deterministic, estimates on a
bound stay there, and failed replicates are counted, not fatal."""

import numpy as np
import pytest

import simfit
from simfit.bootstrap import gauss_newton_map, kstep_bootstrap
from simfit.estimation import fit
from simfit.models import lognormal_exponential, random_intercept

RI_TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


@pytest.fixture(scope="module")
def ri_fit():
    model, stats = random_intercept.model(), random_intercept.statistics()
    data = simfit.Simulator(model, simfit.Panel.balanced(60, 10)).simulate(RI_TRUTH, seed=4).panel(0)
    return fit(model, data, stats, seed=2, n_sims=10, bootstrap=400)


def test_kstep_spread_matches_sandwich(ri_fit):
    # Both estimate the same variance: the bootstrap sd has relative se 1/sqrt(2(B-1)) (3.5% at
    # B = 400) and the sandwich's covariance simulation about as much again.
    draws = ri_fit.bootstrap
    assert draws.method == "kstep" and draws.steps == 2 and draws.failures == 0
    # One pool of B + S panels serves every replicate's data and first step: fewer panels than
    # two evaluations of S panels per replicate.
    assert draws.n_boot + 10 < draws.n_simulations < 2 * draws.n_boot * 10
    sd = np.std(draws.free, axis=0, ddof=1)
    se = np.sqrt(np.diag(ri_fit.cov_free))
    tolerance = 4 * np.sqrt(2) / np.sqrt(2 * (draws.n_boot - 1))
    assert np.all(np.abs(sd / se - 1) < tolerance), (sd, se)


def test_kstep_draws_centre_on_estimate(ri_fit):
    draws = ri_fit.bootstrap.free
    se = np.sqrt(np.diag(ri_fit.cov_free))
    centre = np.mean(draws, axis=0)
    assert np.all(np.abs(centre - ri_fit.free) < 4 * se / np.sqrt(draws.shape[0]) + 0.1 * se)


def test_replicate_standard_errors_anchor_at_the_sandwich(ri_fit):
    se_b = ri_fit.bootstrap.se_free
    se = np.sqrt(np.diag(ri_fit.cov_free))
    assert np.all(np.isfinite(se_b))
    # The log-linear model is anchored at the sandwich: its geometric mean sits near it.
    assert np.all(np.abs(np.exp(np.mean(np.log(se_b), axis=0)) / se - 1) < 0.25)


def test_kstep_is_deterministic_and_costs_few_simulations(ri_fit):
    sim = simfit.Simulator(ri_fit.model, ri_fit.design, ri_fit.statistics)
    args = (sim, ri_fit.free, ri_fit.jacobian, ri_fit.weight, 10, 50, 123)
    one = kstep_bootstrap(*args, steps=2, se_free_hat=np.sqrt(np.diag(ri_fit.cov_free)))
    two = kstep_bootstrap(*args, steps=2, se_free_hat=np.sqrt(np.diag(ri_fit.cov_free)))
    assert np.array_equal(one.free, two.free) and np.array_equal(one.se_free, two.se_free)
    # the pool of B + S panels, one evaluation of S panels per replicate after its first step, a
    # second only where the step is a quarter of a standard error or more (+ the rare halvings)
    assert one.n_simulations <= 50 + 10 + 2 * 50 * 10 + 4 * 10 * 50 * 0.1
    other = kstep_bootstrap(*args[:-1], 124, steps=2)
    assert not np.array_equal(one.free, other.free)


def test_inactive_parameter_stays_at_estimate(ri_fit):
    sim = simfit.Simulator(ri_fit.model, ri_fit.design, ri_fit.statistics)
    active = np.array([True, False, True])
    draws = kstep_bootstrap(sim, ri_fit.free, ri_fit.jacobian, ri_fit.weight, 10, 30, 5, active=active)
    assert np.all(draws.free[:, 1] == ri_fit.free[1])
    assert np.std(draws.free[:, 0]) > 0


def test_gauss_newton_map_marks_unidentified_directions():
    jac = np.array([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])  # rank 1: the columns are proportional
    a = gauss_newton_map(jac, np.eye(3), np.ones(2, bool))
    assert np.all(np.isnan(a))
    a = gauss_newton_map(jac, np.eye(3), np.array([True, False]))
    assert np.all(np.isfinite(a[0])) and np.all(a[1] == 0)
    # On identified parameters it is the least-squares solution operator.
    g = np.array([1.0, 2.0, 0.5])
    assert np.allclose(a[0] @ (jac[:, 0] * 3.0), 3.0)
    assert np.allclose(a[0], np.linalg.pinv(jac[:, [0]])[0])
    del g


def test_full_bootstrap_still_available():
    model, stats = lognormal_exponential.model(), lognormal_exponential.statistics()
    data = simfit.Simulator(model, simfit.Panel.balanced(40, 20)).simulate({"m": 0.0, "s": 0.5}, seed=3).panel(0)
    res = fit(model, data, stats, seed=1, bootstrap=12, bootstrap_method="full")
    assert res.bootstrap.method == "full" and res.bootstrap.n_boot == 12
    assert res.bootstrap.failures < 12
    ci = res.conf_int(method="percentile")
    assert np.all(ci["lower"] < res.params) and np.all(res.params < ci["upper"])
