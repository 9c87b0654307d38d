"""Convergence checks: ECnoise, roughness, a chaotic simulator reported as not converged, a start
that did not move, and a start that is the optimum."""

from dataclasses import dataclass

import numpy as np
import pytest

import simfit
from simfit.convergence import check_roughness, ecnoise
from simfit.estimation import ConvergenceWarning, fit
from simfit.models import logistic_map, random_intercept
from simfit.optimizers import Optimizer, OptimizerResult

RI_TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


def test_ecnoise_recovers_known_noise():
    rng = np.random.default_rng(7)
    t = np.linspace(-1, 1, 9)
    smooth = np.column_stack([np.sin(3 * t + k) for k in range(40)]) * 1e-3  # small smooth part
    noise = 1e-2
    est = ecnoise(smooth + rng.normal(0, noise, smooth.shape))
    # Root sum over 40 components: sqrt(40) * noise; ECnoise is accurate to a small factor.
    assert 0.5 < est / (np.sqrt(40) * noise) < 2.0


def test_ecnoise_of_a_polynomial_is_rounding():
    t = np.linspace(0, 1, 9)
    assert ecnoise(1 + 2 * t - t**2) < 1e-12  # rounding only


def test_roughness_separates_smooth_from_noise():
    def smooth(u):
        return np.array([u[0] ** 2 + u[1], np.sin(u[1]), u[0] - u[1]])

    def noisy(u):  # deterministic, but decorrelated at any step, like a chaotic simulator
        seed = int(abs(hash(tuple(np.round(u, 15)))) % (2**32))
        return smooth(u) + np.random.default_rng(seed).normal(0, 0.5, 3)

    u, steps, sd = np.array([0.3, 0.2]), np.array([1e-4, 1e-4]), np.ones(3)
    calm = check_roughness(smooth, u, steps, sd)
    assert calm.rough == () and calm.noisy == () and calm.flat == ()
    assert np.all(calm.roughness < 1e-3)
    wild = check_roughness(noisy, u, steps, sd)
    assert wild.rough == (0, 1) and wild.noisy == (0, 1)
    assert np.all(wild.noise > 0.1)


def test_chaotic_simulator_converges_within_its_noise_with_intervals_that_hold_the_truth():
    # Chaos makes the moments noise at any finite-difference step (0.8 sampling sds here), but
    # smooth on average over a standard error: the estimate is the minimum of a quadratic surface
    # of the moments around the solution, and its intervals include the surface's error.
    model, stats = logistic_map.model(), logistic_map.statistics()
    truth = {"r_mu": 3.8, "r_sd": 0.05, "sigma": 0.05}
    data = simfit.Simulator(model, simfit.Panel.balanced(50, 30)).simulate(truth, seed=2).panel(0)
    res = fit(model, data, stats, seed=1, bootstrap=0)
    rough = res.convergence.roughness
    assert rough.noisy and np.nanmax(rough.noise) > 0.1  # a noisy objective by the old standard
    assert res.converged and any("quadratic surface of the moments" in n for n in res.convergence.notes)
    assert "response surface" in res.steps[-1].label
    ci = res.conf_int()
    for name, value in truth.items():
        assert ci.loc[name, "lower"] <= value <= ci.loc[name, "upper"], (name, ci.loc[name])


def test_smooth_regime_of_the_same_model_converges():
    model, stats = logistic_map.model(), logistic_map.statistics()
    data = simfit.Simulator(model, simfit.Panel.balanced(50, 30)).simulate({"r_mu": 2.7, "r_sd": 0.05, "sigma": 0.05}, seed=2).panel(0)
    res = fit(model, data, stats, seed=1, bootstrap=0)
    assert res.converged and res.convergence.roughness.noisy == ()


@dataclass(frozen=True)
class StaysPut(Optimizer):
    """An optimizer that claims success without moving."""

    name = "stays-put"

    def minimize(self, problem, x0):
        return OptimizerResult(x=x0, fun=problem.objective(x0), success=True, message="done", nfev=1, seconds=0.0, method=self.name)


@pytest.fixture(scope="module")
def ri_data():
    model = random_intercept.model()
    return simfit.Simulator(model, simfit.Panel.balanced(60, 10)).simulate(RI_TRUTH, seed=8).panel(0)


def test_success_without_moving_is_not_convergence(ri_data):
    model, stats = random_intercept.model(), random_intercept.statistics()
    with pytest.warns(ConvergenceWarning, match="did not move"):
        res = fit(model, ri_data, stats, seed=1, optimizer=StaysPut(), global_points=0, bootstrap=0)
    assert not res.converged
    assert any("the solution is the start" in r for r in res.convergence.reasons)


def test_start_at_the_optimum_is_convergence(ri_data):
    model, stats = random_intercept.model(), random_intercept.statistics()
    first = fit(model, ri_data, stats, seed=1, weighting="diagonal", global_points=0, bootstrap=0)
    again = fit(model, ri_data, stats, seed=1, weighting="diagonal", global_points=0, bootstrap=0,
                start=first.params.to_dict(), optimizer=StaysPut())
    assert again.converged
    assert any("start is the optimum" in n for n in again.convergence.notes)
