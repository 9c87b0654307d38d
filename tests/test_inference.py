"""Jacobian, sandwich, J test and identification diagnostics on closed-form cases."""

import numpy as np
import pytest
from scipy import stats

from simfit.inference import WeakIdentificationWarning, central_jacobian, identification, j_test, sandwich


def test_central_jacobian_of_a_polynomial():
    f = lambda u: np.array([u[0] ** 2, u[0] * u[1], np.exp(u[1])])
    u = np.array([1.5, -0.5])
    expected = np.array([[3.0, 0.0], [-0.5, 1.5], [0.0, np.exp(-0.5)]])
    assert np.allclose(central_jacobian(f, u, 1e-5), expected, atol=1e-8)


def test_sandwich_reduces_to_inverse_information_under_optimal_weighting():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(5, 2))
    a = rng.normal(size=(5, 5))
    omega = a @ a.T + 5 * np.eye(5)
    w = np.linalg.inv(1.1 * omega)
    cov = sandwich(g, w, omega, n_sims=10)
    assert np.allclose(cov, np.linalg.inv(g.T @ w @ g))


def test_a_weak_direction_keeps_a_finite_variance_and_a_null_one_is_infinite_for_its_parameters_only():
    # Condition number 1e6 of J (1e12 of J'WJ): weak, but identified; its variance is large and finite.
    weak = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1e-6], [0.0, 0.0, 1e-6], [1.0, 1.0, 0.0]])
    cov = sandwich(weak, np.eye(4), np.eye(4), n_sims=10)
    assert np.all(np.isfinite(cov)) and cov[2, 2] > 1e10
    # The third parameter moves nothing: it alone is unidentified.
    null = weak.copy()
    null[:, 2] = 0.0
    cov = sandwich(null, np.eye(4), np.eye(4), n_sims=10)
    assert np.isinf(cov[2, 2]) and np.all(np.isnan(cov[2, :2]))
    assert np.allclose(cov[:2, :2], 1.1 * np.linalg.inv(null[:, :2].T @ null[:, :2]))


def test_j_test_pvalue():
    w = np.eye(3)
    res = j_test(np.array([1.0, 1.0, 1.0]), w, n_params=1)
    assert res.statistic == 3.0 and res.df == 2
    assert res.pvalue == pytest.approx(stats.chi2.sf(3.0, 2))
    assert np.isnan(j_test(np.ones(2), np.eye(2), 2).pvalue)


def test_weak_identification_is_flagged():
    jac = np.array([[1.0, 1.0], [2.0, 2.0 + 1e-7], [0.5, 0.5]])
    with pytest.warns(WeakIdentificationWarning, match=r"combination a \(\+0.71\), b \(-0.71\)"):
        ident = identification(jac, np.eye(3), ("a", "b"))
    assert ident.condition > 1e4
    ok = identification(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.eye(3), ("a", "b"))
    assert ok.rank == 2 and ok.condition < 10


def test_the_simulated_j_test_matches_chi_square_for_gaussian_statistics_and_not_for_heavy_tails():
    rng = np.random.default_rng(4)
    k, p = 6, 2
    jac = rng.normal(size=(k, p))
    omega = np.eye(k)
    weight = np.linalg.inv(1.1 * omega)  # S = 10
    draws = rng.normal(size=(4000, k))
    moments = np.full(k, 1.3)
    test = j_test(moments, weight, p, draws, jac, 10)
    # chi-square(k - p) tail against the share of 4000 panels: within 4 binomial se
    assert abs(test.pvalue_simulated - test.pvalue) < 4 * np.sqrt(test.pvalue * (1 - test.pvalue) / 4000)
    assert test.n_simulated == 4000 and "simulated p" in str(test)
    heavy = rng.standard_t(2.5, size=(4000, k)) / np.sqrt(2.5 / 0.5)  # unit variance, heavy tails
    test = j_test(np.full(k, 2.2), weight, p, heavy, jac, 10)
    assert test.pvalue < 0.001 and test.pvalue_simulated > 0.005  # the chi-square tail is too thin there
