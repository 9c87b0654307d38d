"""Weighting matrices and the regularised inverse."""

import numpy as np
import pytest

from simfit.errors import EstimationError
from simfit.weighting import (
    Diagonal,
    Identity,
    IllConditionedWarning,
    Optimal,
    User,
    get_weighting,
    regularized_inverse,
)


def test_matrices():
    omega = np.array([[4.0, 1.0], [1.0, 2.0]])
    assert np.allclose(Identity().matrix(omega, 10), np.eye(2))
    assert np.allclose(Diagonal().matrix(omega, 10), np.diag([1 / 4.4, 1 / 2.2]))
    assert np.allclose(Optimal().matrix(omega, 10), np.linalg.inv(1.1 * omega))
    assert np.allclose(User(np.eye(2) * 3).matrix(omega, 10), 3 * np.eye(2))
    assert get_weighting("iterated").iterations > 1


def test_ill_conditioned_covariance_is_regularised_with_a_warning():
    x = np.array([1.0, 2.0, 3.0])
    omega = np.outer(x, x) + 1e-13 * np.eye(3)
    with pytest.warns(IllConditionedWarning, match="shrunk toward the diagonal by"):
        inv = regularized_inverse(omega)
    assert np.all(np.isfinite(inv))
    assert np.linalg.cond(inv) < 1e11


def test_well_conditioned_is_inverted_exactly():
    omega = np.array([[2.0, 0.3], [0.3, 1.0]])
    assert np.allclose(regularized_inverse(omega), np.linalg.inv(omega))


def test_bad_user_matrices():
    with pytest.raises(EstimationError, match="square"):
        User(np.ones(3))
    with pytest.raises(EstimationError, match="positive definite"):
        User(np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(EstimationError, match="Unknown weighting"):
        get_weighting("best")
