import math

import numpy as np
import pytest
from scipy import stats as sps

from simfit.bayes.synthetic_likelihood import BSLOptions, gaussian_loglik
from simfit.errors import EstimationError

MEAN = np.zeros(4)
COV = np.eye(4) + 0.5


def test_plug_in_estimator_is_the_gaussian_log_density_of_the_sample_moments(rng):
    sims = rng.multivariate_normal(MEAN, COV, size=40)
    x = np.array([0.3, -0.2, 0.1, 0.5])
    expected = sps.multivariate_normal(sims.mean(axis=0), np.cov(sims.T)).logpdf(x) + 2 * math.log(2 * math.pi)
    assert gaussian_loglik(sims, x, unbiased=False) == pytest.approx(expected, rel=1e-12)


def test_unbiased_estimator_has_the_expectation_of_the_gaussian_density(rng):
    # E[exp(loglik)] is proportional to N(x; mean, cov) with a constant depending on S and d only:
    # the ratio of the mean estimates at two points must equal the ratio of the true densities.
    S, reps = 10, 20000
    a, b = np.array([0.5, -0.3, 0.2, 1.0]), np.full(4, 0.1)
    est_a = np.exp(gaussian_loglik(rng.multivariate_normal(MEAN, COV, size=(reps, S)), a))
    est_b = np.exp(gaussian_loglik(rng.multivariate_normal(MEAN, COV, size=(reps, S)), b))
    ratio = est_a.mean() / est_b.mean()
    # Delta-method standard error of a ratio of two independent means.
    se = ratio * math.sqrt((est_a.var() / est_a.mean() ** 2 + est_b.var() / est_b.mean() ** 2) / reps)
    truth = sps.multivariate_normal(MEAN, COV).pdf(a) / sps.multivariate_normal(MEAN, COV).pdf(b)
    assert abs(ratio - truth) < 4 * se


def test_plug_in_estimator_is_biased_where_the_unbiased_one_is_not(rng):
    S, reps = 10, 20000
    a, b = np.array([0.5, -0.3, 0.2, 1.0]), np.full(4, 0.1)
    est_a = np.exp(gaussian_loglik(rng.multivariate_normal(MEAN, COV, size=(reps, S)), a, unbiased=False))
    est_b = np.exp(gaussian_loglik(rng.multivariate_normal(MEAN, COV, size=(reps, S)), b, unbiased=False))
    truth = sps.multivariate_normal(MEAN, COV).pdf(a) / sps.multivariate_normal(MEAN, COV).pdf(b)
    ratio = est_a.mean() / est_b.mean()
    se = ratio * math.sqrt((est_a.var() / est_a.mean() ** 2 + est_b.var() / est_b.mean() ** 2) / reps)
    assert abs(ratio - truth) > 4 * se  # the inflated precision makes the far point too unlikely


def test_batches_equal_single_evaluations_and_failures_are_minus_inf(rng):
    sims = rng.normal(size=(3, 12, 4))
    sims[1, 5, 2] = np.nan
    x = np.zeros(4)
    batch = gaussian_loglik(sims, x)
    assert batch[0] == gaussian_loglik(sims[0], x)
    assert batch[2] == gaussian_loglik(sims[2], x)
    assert batch[1] == -np.inf
    singular = np.repeat(rng.normal(size=(12, 1)), 4, axis=1)
    assert gaussian_loglik(singular, x) == -np.inf
    assert gaussian_loglik(sims[0], np.full(4, 50.0)) == -np.inf  # outside the simulated ellipsoid


def test_shrinkage_moves_towards_the_diagonal(rng):
    sims = rng.multivariate_normal(MEAN, COV, size=30)
    x = np.array([0.3, -0.2, 0.1, 0.5])
    diag = np.diag(np.diag(np.cov(sims.T)))
    expected = sps.multivariate_normal(sims.mean(axis=0), diag).logpdf(x) + 2 * math.log(2 * math.pi)
    assert gaussian_loglik(sims, x, shrinkage=1.0) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_sims": 2}, {"n_sims": "many"}, {"shrinkage": 1.5}, {"target_acceptance": 1.0}, {"independence": -0.1}, {"block": 0}],
)
def test_options_are_validated(kwargs):
    with pytest.raises(EstimationError):
        BSLOptions(**kwargs)
