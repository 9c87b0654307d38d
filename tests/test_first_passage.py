import math

import numpy as np
import pytest
from numba import njit
from scipy import stats

from simfit.first_passage import (
    choice_probability,
    mean_decision_time,
    unit_exit_cdf,
    unit_exit_time,
    wiener_first_passage,
)
from simfit.random import STREAM_SIZE, seed_stream


@njit(cache=True)
def _unit_exit_times(n, seed):
    rng = np.empty(STREAM_SIZE, np.uint64)
    seed_stream(rng, seed, 0, 0, 0)
    out = np.empty(n)
    for i in range(n):
        out[i] = unit_exit_time(rng)
    return out


@njit(cache=True)
def _passages(n, seed, v, a, w):
    rng = np.empty(STREAM_SIZE, np.uint64)
    seed_stream(rng, seed, 0, 0, 0)
    times = np.empty(n)
    upper = np.empty(n)
    for i in range(n):
        times[i], upper[i] = wiener_first_passage(rng, v, a, w)
    return times, upper


def test_the_two_series_of_the_unit_exit_time_agree_and_make_a_distribution():
    t = np.linspace(0.3, 1.5, 50)
    # the erfc series (t <= 1) and the exponential series (above) where both converge
    small = unit_exit_cdf(np.minimum(t, 1.0))[0]
    s = np.zeros_like(t)
    for k in range(20):
        m = 2 * k + 1
        s += (-1) ** k * 4 / (math.pi * m) * np.exp(-m * m * math.pi**2 * np.minimum(t, 1.0) / 8)
    np.testing.assert_allclose(small, 1 - s, atol=1e-14)
    grid = np.linspace(1e-3, 40, 200_001)
    cdf, dens = unit_exit_cdf(grid)
    assert np.all(np.diff(cdf) >= -1e-15) and cdf[-1] == pytest.approx(1.0, abs=1e-14)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-6)
    assert np.trapezoid(grid * dens, grid) == pytest.approx(1.0, abs=1e-6)  # E[T_1] = 1


def test_unit_exit_times_have_the_exact_distribution():
    n = 400_000
    x = _unit_exit_times(n, 1)
    assert abs(x.mean() - 1.0) < 4 * x.std() / math.sqrt(n)
    # second moment 5/3; its standard error from the draws
    assert abs((x**2).mean() - 5 / 3) < 4 * (x**2).std() / math.sqrt(n)
    assert stats.kstest(x[:100_000], lambda t: unit_exit_cdf(t)[0]).pvalue > 1e-3
    assert np.array_equal(x[:1000], _unit_exit_times(1000, 1))  # seeded


@pytest.mark.parametrize(
    "v, a, w",
    # small and large |v| a: the driftless-time and the inverse-Gaussian proposals
    [(1.0, 1.5, 0.5), (0.0, 1.0, 0.3), (-2.0, 2.0, 0.7), (4.0, 3.0, 0.2), (0.3, 0.5, 0.9), (8.0, 10.0, 0.3), (-5.0, 0.2, 0.5)],
)
def test_choices_and_mean_decision_times_match_the_closed_forms(v, a, w):
    n = 200_000
    times, upper = _passages(n, 3, v, a, w)
    p = float(choice_probability(v, a, w))
    m = float(mean_decision_time(v, a, w))
    assert abs(upper.mean() - p) <= 4 * math.sqrt(p * (1 - p) / n)
    assert abs(times.mean() - m) < 4 * times.std() / math.sqrt(n)
    assert np.all(times > 0) and set(np.unique(upper)) <= {0.0, 1.0}


def test_closed_forms_limits():
    # no drift: the start's fraction; strong drift: the favoured boundary, in time a(1-w)/v
    assert choice_probability(0.0, 2.0, 0.25) == pytest.approx(0.25)
    assert choice_probability(1e-9, 2.0, 0.25) == pytest.approx(0.25, abs=1e-8)
    assert mean_decision_time(1e-9, 2.0, 0.25) == pytest.approx(4 * 0.25 * 0.75, rel=1e-6)
    assert choice_probability(50.0, 1.0, 0.5) == pytest.approx(1.0)
    assert mean_decision_time(50.0, 1.0, 0.5) == pytest.approx(0.5 / 50.0, rel=1e-6)


@pytest.mark.parametrize("v, a, w", [(1.0, math.inf, 0.5), (math.nan, 1.0, 0.5), (1.0, 0.0, 0.5), (1.0, 1.0, 1.0), (math.inf, 1.0, 0.5),
                                      (-0.4, 1e300, 0.9), (0.3, 1e-200, 0.5)])
def test_parameters_outside_the_model_give_nan_not_a_hang(v, a, w):
    times, upper = _passages(3, 1, v, a, w)
    assert np.isnan(times).all() and np.isnan(upper).all()
