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
