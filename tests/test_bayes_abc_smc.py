import numpy as np
import pytest

from simfit.bayes.abc_smc import ABCOptions, regression_adjust
from simfit.errors import EstimationError


def test_regression_adjustment_removes_the_linear_blur_of_the_tolerance(rng):
    # Particles whose parameter depends linearly on the statistic plus noise of sd 0.1: accepted
    # within a tolerance, their spread is mostly the tolerance's; adjusted, it is the noise's.
    n = 20000
    dev = rng.uniform(-1, 1, size=(n, 1))
    u = 2.0 + 3.0 * dev + 0.1 * rng.standard_normal((n, 1))
    weights = np.full(n, 1.0 / n)
    adjusted, w = regression_adjust(u, weights, dev, np.abs(dev[:, 0]), 1.0)
    mean = w @ adjusted[:, 0]
    sd = np.sqrt(w @ (adjusted[:, 0] - mean) ** 2)
    assert u.std() > 1.5
    assert abs(mean - 2.0) < 4 * 0.1 / np.sqrt(1.0 / np.sum(w**2))
    assert abs(sd - 0.1) < 0.005  # sd of a sample sd with an ESS above 10000 is below 0.001


def test_no_adjustment_without_a_finite_tolerance_or_enough_weight(rng):
    u = rng.normal(size=(50, 2))
    w = np.full(50, 0.02)
    dev = rng.normal(size=(50, 3))
    same, same_w = regression_adjust(u, w, dev, np.abs(dev).sum(axis=1), np.inf)
    assert same is u and same_w is w
    few, few_w = regression_adjust(u, w, dev, np.abs(dev).sum(axis=1), 1e-9)
    assert few is u


@pytest.mark.parametrize("kwargs", [{"n_particles": 10}, {"quantile": 1.0}, {"min_acceptance": -0.1}, {"batch": 0}, {"max_generations": 0}])
def test_options_are_validated(kwargs):
    with pytest.raises(EstimationError):
        ABCOptions(**kwargs)
