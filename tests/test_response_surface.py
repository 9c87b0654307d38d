"""The noise-aware local phase: a quadratic response surface of the moments."""

import numpy as np
import pytest

from simfit.response_surface import MAX_ROUNDS, refine_on_surface


def test_a_surface_finds_a_noisy_minimum_and_says_when_it_does_not_settle():
    # Moments with a slope but no minimum inside any design: the surface's minimum keeps leaving.
    def moments(u):
        return np.array([u[0] - 100.0, 0.5 * (u[0] - 100.0)])

    out = refine_on_surface(moments, np.array([0.0]), np.array([1.0]), np.eye(2), np.ones(2), seed=1)
    assert not out.settled and out.rounds == MAX_ROUNDS
    # A noisy quadratic bowl: the surface's minimum is found within the noise.
    rng = np.random.default_rng(5)

    def bowl(u):
        return np.array([u[0] - 0.3, u[1] + 0.2, u[0] + u[1] - 0.1]) + rng.normal(0, 0.02, 3)

    out = refine_on_surface(bowl, np.zeros(2), np.array([1.0, 1.0]), np.eye(3), np.ones(3), seed=2)
    assert out.settled and np.allclose(out.u, [0.3, -0.2], atol=0.05)
    assert np.allclose(out.jacobian, [[1, 0], [0, 1], [1, 1]], atol=0.1)
    assert np.all(np.diag(out.cov_extra) > 0) and out.noise == pytest.approx(0.02, rel=0.5)


def test_the_surface_error_it_adds_to_the_covariance_is_the_spread_of_its_minimum():
    # The same bowl under 60 noise realisations: the minimum's spread matches the error the
    # surface reports for it (a sd estimated from 60 values: within 4 of its standard errors).
    estimates, ses = [], []
    for k in range(60):
        rng = np.random.default_rng(100 + k)

        def bowl(u, rng=rng):
            return np.array([u[0] - 0.3, u[1] + 0.2, u[0] + u[1] - 0.1]) + rng.normal(0, 0.05, 3)

        out = refine_on_surface(bowl, np.zeros(2), np.array([1.0, 1.0]), np.eye(3), np.ones(3), seed=k)
        estimates.append(out.u)
        ses.append(np.sqrt(np.diag(out.cov_extra)))
    spread = np.std(estimates, axis=0, ddof=1)
    reported = np.sqrt(np.mean(np.square(ses), axis=0))
    assert np.all(np.abs(spread / reported - 1) < 4 / np.sqrt(2 * 59)), (spread, reported)


def test_a_surface_that_walks_where_the_simulator_fails_is_not_settled_and_raises_nothing():
    from types import SimpleNamespace

    from simfit.errors import SimfitError
    from simfit.estimation import _refine_on_surface

    class Problem:
        def moments(self, u):
            if u[0] > 0.6:  # the simulator fails beyond here; the minimum (u = 3) lies beyond
                raise SimfitError("non-finite output")
            return np.array([3.0 - u[0], 0.5 * (3.0 - u[0])])

    rough = SimpleNamespace(suggested_step=np.array([0.05]))
    surface = _refine_on_surface(Problem(), np.array([0.0]), np.array([1e-3]), np.eye(2), 0.01 * np.eye(2), 10, rough, 1)
    assert surface is None or not surface.settled
