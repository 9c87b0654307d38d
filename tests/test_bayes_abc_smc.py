import numpy as np
import pytest
from scipy import stats

import simfit
from simfit.bayes.abc_smc import ABCOptions, regression_adjust
from simfit.errors import EstimationError
from simfit.models import meta_analysis as ma


def test_regression_adjustment_removes_the_linear_blur_of_the_tolerance(rng):
    # Particles whose parameter depends linearly on the statistic plus noise of sd 0.1: accepted
    # within a tolerance, their spread is mostly the tolerance's; adjusted, it is the noise's.
    n = 20000
    dev = rng.uniform(-1, 1, size=(n, 1))
    u = 2.0 + 3.0 * dev + 0.1 * rng.standard_normal((n, 1))
    weights = np.full(n, 1.0 / n)
    adjusted, w, gains = regression_adjust(u, weights, dev, np.abs(dev[:, 0]), 1.0, min_gain=0.1)
    assert gains[0] > 0.9  # the statistic predicts the parameter
    mean = w @ adjusted[:, 0]
    sd = np.sqrt(w @ (adjusted[:, 0] - mean) ** 2)
    assert u.std() > 1.5
    assert abs(mean - 2.0) < 4 * 0.1 / np.sqrt(1.0 / np.sum(w**2))
    assert abs(sd - 0.1) < 0.005  # sd of a sample sd with an ESS above 10000 is below 0.001


def test_no_adjustment_without_a_finite_tolerance_or_enough_weight(rng):
    u = rng.normal(size=(50, 2))
    w = np.full(50, 0.02)
    dev = rng.normal(size=(50, 3))
    same, same_w, _ = regression_adjust(u, w, dev, np.abs(dev).sum(axis=1), np.inf)
    assert same is u and same_w is w
    few, few_w, _ = regression_adjust(u, w, dev, np.abs(dev).sum(axis=1), 1e-9)
    assert few is u


def test_a_parameter_the_statistics_do_not_predict_keeps_its_particles(rng):
    # One parameter linear in the statistic, one depending on its square only (a spread seen
    # through a dispersion): the first is adjusted, the second kept as it is.
    n = 20000
    dev = rng.uniform(-1, 1, size=(n, 1))
    u = np.column_stack([3.0 * dev[:, 0], dev[:, 0] ** 2]) + 0.1 * rng.standard_normal((n, 2))
    weights = np.full(n, 1.0 / n)
    adjusted, w, gains = regression_adjust(u, weights, dev, np.abs(dev[:, 0]), 1.0, min_gain=0.1)
    assert gains[0] > 0.9 and abs(gains[1]) < 0.05
    assert np.array_equal(adjusted[:, 1], u[:, 1])
    assert not np.array_equal(adjusted[:, 0], u[:, 0])


@pytest.mark.parametrize("kwargs", [{"adjust_min_gain": 1.0}, {"adjust_min_gain": 0.3, "adjust_full_gain": 0.2}, {"n_particles": 10}, {"quantile": 1.0}, {"min_acceptance": -0.1}, {"batch": 0}, {"max_generations": 0}])
def test_options_are_validated(kwargs):
    with pytest.raises(EstimationError):
        ABCOptions(**kwargs)


def test_eight_schools_posterior_is_close_to_the_exact_one():
    # Eight units with one observation each: the spread tau is informed only through the
    # dispersion of the estimates, so its regression adjustment would add noise and bias; the
    # default keeps tau's particles and adjusts mu.
    prior = {"mu": {"dist": "normal", "mean": 0, "sd": 10}, "tau": {"dist": "halfnormal", "scale": 10}}
    data = ma.eight_schools()
    post = simfit.sample(ma.model(), data, ma.statistics(), prior, method="abc-smc", seed=3)
    mu, tau = np.linspace(-40, 50, 901), np.linspace(1e-4, 60, 1200)
    p = ma.exact_posterior(ma.EIGHT_SCHOOLS_Y, ma.EIGHT_SCHOOLS_SE,
                           lambda m, t: stats.norm(0, 10).logpdf(m) + stats.halfnorm(scale=10).logpdf(t), mu, tau)
    grid = np.meshgrid(mu, tau, indexing="ij")
    ess = 1.0 / np.sum(post.weights**2)
    assert "tau kept" in post.info["regression_adjustment"] and "mu adjusted" in post.info["regression_adjustment"]
    for name, g in zip(("mu", "tau"), grid):
        exact_mean = (p * g).sum()
        exact_sd = np.sqrt((p * g**2).sum() - exact_mean**2)
        # Monte Carlo standard error of a weighted mean of ESS particles
        assert abs(post.mean()[name] - exact_mean) < 4 * exact_sd / np.sqrt(ess), name


def _blurred_particles(rng, n=5000):
    # Statistics on one side of the observed ones (deviations in [0.3, 1]), so the adjustment
    # moves the parameter's mean, by about a posterior sd where the R^2 is 0.1.
    dev = rng.uniform(0.3, 1.0, size=(n, 1))
    return dev, rng.standard_normal(n)


def _mean_and_sd(u, w):
    mean = w @ u[:, 0]
    return mean, np.sqrt(w @ (u[:, 0] - mean) ** 2)


@pytest.mark.parametrize("full_gain", [0.3, 0.1])
def test_the_adjustment_is_continuous_in_the_regressions_gain(rng, full_gain):
    # The data move a little at a time (the noise's scale in 600 steps) and the cross-validated
    # R^2 passes from 0.37 down to 0.03: the posterior mean must move in small steps, not jump by
    # the adjustment's shift where the R^2 crosses a threshold (0.9 posterior sd in one seed).
    dev, z = _blurred_particles(rng)
    weights = np.full(dev.shape[0], 1.0 / dev.shape[0])
    means, sds, gains = [], [], []
    for scale in np.linspace(0.7, 3.6, 600):
        u = 3.0 * dev + scale * z[:, None]
        adjusted, w, gain = regression_adjust(u, weights, dev, np.abs(dev[:, 0]), 1.0, min_gain=0.1, full_gain=full_gain)
        mean, sd = _mean_and_sd(adjusted, w)
        means.append(mean), sds.append(sd), gains.append(gain[0])
    gains, steps = np.array(gains), np.abs(np.diff(means)) / np.array(sds[1:])
    assert gains[0] > 0.35 and gains[-1] < 0.05 and np.all(np.diff(gains) < 0)
    crossing = int(np.argmax(gains < 0.1))
    shift = 3.0 * (w @ dev[:, 0]) / sds[crossing]  # the full adjustment's move of the mean, in sds
    assert shift > 0.8
    if full_gain > 0.1:  # smooth: no step above a twentieth of a posterior sd
        assert steps.max() < 0.05, (steps.max(), gains[np.argmax(steps)])
    else:  # a hard threshold jumps by the whole shift where the R^2 crosses it
        assert steps[crossing - 1] > 0.8 * shift


def test_adjustment_weights_rise_from_the_minimum_to_the_full_gain():
    from simfit.bayes.abc_smc import adjustment_weight

    assert adjustment_weight(np.array([-0.2, 0.1, 0.2, 0.3, 0.9, np.nan]), 0.1, 0.3) == pytest.approx([0, 0, 0.5, 1, 1, 0])
    assert adjustment_weight(np.array([0.09, 0.1]), 0.1, 0.1).tolist() == [0.0, 1.0]
