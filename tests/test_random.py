"""Keyed random streams: distributions, independence of streams, reproducibility."""

import math

import numpy as np
import pytest
from numba import njit
from scipy import stats

from simfit import random as sr

N = 400_000
# With N draws, a sample mean has sd 1/sqrt(N) (for unit variance); 5 sd bounds are seeded and
# fail with probability < 1e-6 for a correct generator.
TOL = 5.0 / math.sqrt(N)


def test_same_key_same_draws_and_different_keys_differ():
    a = sr.draw_normal(sr.stream(7, 3, 1, 11), 1000)
    b = sr.draw_normal(sr.stream(7, 3, 1, 11), 1000)
    assert np.array_equal(a, b)
    for key in [(8, 3, 1, 11), (7, 4, 1, 11), (7, 3, 2, 11), (7, 3, 1, 12)]:
        assert not np.array_equal(a, sr.draw_normal(sr.stream(*key), 1000))


def test_normal_moments_and_goodness_of_fit():
    x = sr.draw_normal(sr.stream(1), N)
    assert abs(x.mean()) < TOL
    assert abs(x.var() - 1.0) < 5 * math.sqrt(2.0 / N)
    assert abs(stats.skew(x)) < 5 * math.sqrt(6.0 / N)
    assert abs(stats.kurtosis(x)) < 5 * math.sqrt(24.0 / N)
    assert stats.kstest(x, "norm").pvalue > 1e-4
    # Tails beyond the ziggurat's base strip (|x| > 3.654) come from the separate tail sampler.
    tail = np.mean(np.abs(x) > 3.0)
    p = 2 * stats.norm.sf(3.0)
    assert abs(tail - p) < 5 * math.sqrt(p / N)


def test_normal_far_tail_frequency():
    x = sr.draw_normal(sr.stream(99), 4_000_000)
    p = 2 * stats.norm.sf(3.7)
    observed = np.mean(np.abs(x) > 3.7)
    assert abs(observed - p) < 5 * math.sqrt(p / x.size)


def test_exponential_and_uniform_fit():
    e = sr.draw_exponential(sr.stream(2), N)
    assert abs(e.mean() - 1.0) < TOL
    assert stats.kstest(e, "expon").pvalue > 1e-4
    u = sr.draw_uniform(sr.stream(3), N)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_neighbouring_streams_are_uncorrelated():
    # Streams of adjacent units, simulations and levels: correlations of their draws ~ N(0, 1/n).
    n = 20_000
    base = sr.draw_normal(sr.stream(5, 0, 1, 0), n)
    for key in [(5, 0, 1, 1), (5, 1, 1, 0), (5, 0, 2, 0), (6, 0, 1, 0)]:
        other = sr.draw_normal(sr.stream(*key), n)
        assert abs(np.corrcoef(base, other)[0, 1]) < 5 / math.sqrt(n)
    # First draws across many adjacent unit streams behave like an iid sample.
    firsts = np.array([sr.draw_normal(sr.stream(5, 0, 1, i), 1)[0] for i in range(5000)])
    assert stats.kstest(firsts, "norm").pvalue > 1e-4
    assert abs(np.corrcoef(firsts[:-1], firsts[1:])[0, 1]) < 5 / math.sqrt(firsts.size)


@njit
def _first_after_substream(rng, k, burn):
    for _ in range(burn):
        sr.normal(rng)
    sr.substream(rng, k)
    return sr.normal(rng)


def test_substream_ignores_previous_draws():
    a = _first_after_substream(sr.stream(1, 2, 3, 4), 7, 0)
    b = _first_after_substream(sr.stream(1, 2, 3, 4), 7, 123)
    c = _first_after_substream(sr.stream(1, 2, 3, 4), 8, 0)
    assert a == b and a != c


@njit
def _sample(rng, which, n, p1, p2):
    out = np.empty(n)
    for i in range(n):
        if which == 0:
            out[i] = sr.gamma(rng, p1, p2)
        elif which == 1:
            out[i] = sr.beta(rng, p1, p2)
        elif which == 2:
            out[i] = sr.poisson(rng, p1)
        elif which == 3:
            out[i] = sr.binomial(rng, int(p1), p2)
        elif which == 4:
            out[i] = sr.integers(rng, int(p1), int(p2))
        elif which == 5:
            out[i] = sr.student_t(rng, p1)
        elif which == 6:
            out[i] = sr.lognormal(rng, p1, p2)
        else:
            out[i] = sr.bernoulli(rng, p1)
    return out


@pytest.mark.parametrize(
    "which, p1, p2, dist",
    [
        (0, 0.5, 2.0, stats.gamma(0.5, scale=2.0)),
        (0, 3.0, 1.5, stats.gamma(3.0, scale=1.5)),
        (1, 2.0, 5.0, stats.beta(2.0, 5.0)),
        (2, 3.5, 0.0, stats.poisson(3.5)),
        (2, 40.0, 0.0, stats.poisson(40.0)),
        (3, 20, 0.3, stats.binom(20, 0.3)),
        (3, 20, 0.8, stats.binom(20, 0.8)),
        (4, -3, 7, stats.randint(-3, 7)),
        (5, 6.0, 0.0, stats.t(6.0)),
        (6, 0.2, 0.4, stats.lognorm(0.4, scale=math.exp(0.2))),
        (7, 0.3, 0.0, stats.bernoulli(0.3)),
    ],
)
def test_other_distributions_match_scipy(which, p1, p2, dist):
    n = 100_000
    x = _sample(sr.stream(11, which), which, n, p1, p2)
    mean, var = dist.mean(), dist.var()
    assert abs(x.mean() - mean) < 5 * math.sqrt(var / n)
    if dist.dist.name in ("poisson", "binom", "randint", "bernoulli"):
        # Discrete: chi-square test on the support's main cells.
        values, counts = np.unique(x, return_counts=True)
        expected = dist.pmf(values) * n
        keep = expected > 20
        chi2 = ((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum()
        assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4
    else:
        assert stats.kstest(x, dist.cdf).pvalue > 1e-4


def test_integers_range_and_uniformity():
    x = _sample(sr.stream(3), 4, 60_000, 0, 6)
    assert x.min() == 0 and x.max() == 5


def test_stream_rejects_negative_keys():
    with pytest.raises(ValueError, match="seed"):
        sr.stream(-1)


@njit
def _invalid_draws(rng):
    return (
        sr.gamma(rng, -1.0, 1.0), sr.gamma(rng, np.nan, 1.0), sr.beta(rng, 0.0, 1.0), sr.chisquare(rng, -2.0),
        sr.poisson(rng, -3.0), sr.poisson(rng, np.nan), sr.binomial(rng, 10, np.nan), sr.binomial(rng, 10, 1.5),
        sr.integers(rng, 5, 5),
    )


def test_invalid_parameters_return_sentinels_instead_of_hanging():
    g1, g2, b, c, p1, p2, n1, n2, i = _invalid_draws(sr.stream(1))
    assert all(math.isnan(v) for v in (g1, g2, b, c))
    assert (p1, p2, n1, n2) == (-1, -1, -1, -1) and i == 4


@njit
def _loop_with_local_state(rng, n):
    out = np.empty(n)
    state = sr.load(rng)
    for i in range(n):
        out[i], state = sr.normal_from(state)
    sr.store(rng, state)
    return out


def test_local_state_draws_equal_stream_draws():
    a = _loop_with_local_state(sr.stream(4), 1000)
    b = sr.draw_normal(sr.stream(4), 1000)
    assert np.array_equal(a, b)
    rng = sr.stream(4)
    _loop_with_local_state(rng, 10)
    rest = sr.draw_normal(rng, 5)
    assert np.array_equal(rest, b[10:15])
