"""Optimizers on a quadratic least-squares problem with a known minimum."""

import numpy as np
import pytest

from simfit.errors import EstimationError
from simfit.optimizers import get_optimizer, with_options


class Quadratic:
    target = np.array([1.0, -2.0])
    search_box = (np.array([-5.0, -5.0]), np.array([5.0, 5.0]))

    def residuals(self, u):
        return np.array([u[0] - 1.0, 2.0 * (u[1] + 2.0), 0.5 * (u[0] - 1.0) * (u[1] + 2.0)])

    def objective(self, u):
        r = self.residuals(u)
        return float(r @ r)


@pytest.mark.parametrize("name", ["least_squares", "nelder-mead", "powell", "l-bfgs-b", "differential", "multistart"])
def test_optimizers_find_the_minimum(name):
    res = get_optimizer(name).minimize(Quadratic(), np.array([3.0, 3.0]))
    assert res.success, res.message
    assert np.allclose(res.x, Quadratic.target, atol=1e-4)
    assert res.nfev > 0 and res.seconds >= 0 and res.method == name


class NonzeroResidual(Quadratic):
    """A curved problem whose minimum leaves residuals, so Gauss-Newton converges linearly."""

    def residuals(self, u):
        return np.array([u[0] - 1.0, 2.0 * (u[1] + 2.0), 0.8 * np.sin(u[0] * u[1]) + 1.0, 0.3 * u[0] ** 2 - 0.5])


def test_least_squares_stops_when_the_gauss_newton_model_predicts_no_real_decrease():
    settled = get_optimizer("least_squares").minimize(NonzeroResidual(), np.array([2.0, 1.0]))
    polished = with_options(get_optimizer("least_squares"), {"settle": 1e-300}).minimize(NonzeroResidual(), np.array([2.0, 1.0]))
    assert settled.success and "predicts a decrease" in settled.message
    # A predicted decrease below 1e-6 leaves the objective within 1e-6 of the polished minimum.
    assert settled.fun - polished.fun < 1e-6
    assert settled.nfev <= polished.nfev


def test_unknown_optimizer():
    with pytest.raises(EstimationError, match="Unknown optimizer"):
        get_optimizer("newton")
