"""MCMC convergence diagnostics: agreement with ArviZ, statistical sanity, invariances, validation."""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy.signal import lfilter

from simfit.bayes.diagnostics import ess_bulk, ess_mean, ess_tail, mcse_mean, rhat, summarize
from simfit.errors import ArgumentError

DIAGNOSTICS = (rhat, ess_bulk, ess_tail, ess_mean, mcse_mean)


def ar1(rng: np.random.Generator, n_chains: int, n_draws: int, phi: float) -> np.ndarray:
    """Stationary Gaussian AR(1) chains with unit innovation variance, shape (n_chains, n_draws)."""
    start = rng.normal(size=n_chains) / math.sqrt(1.0 - phi**2)
    innovations = rng.normal(size=(n_chains, n_draws))
    return lfilter([1.0], [1.0, -phi], innovations, axis=1, zi=phi * start[:, None])[0]


# --------------------------------------------------------------------------- agreement with ArviZ


@pytest.fixture(scope="module")
def arviz_reference():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        az = pytest.importorskip("arviz")

    def reference(x: np.ndarray) -> list[float]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            values = [
                az.rhat(x, method="rank"),
                az.ess(x, method="bulk"),
                az.ess(x, method="tail"),
                az.ess(x, method="mean"),
                az.mcse(x, method="mean"),
            ]
        return [float(np.asarray(v).squeeze()) for v in values]

    return reference


CASES = {
    "iid normal": lambda rng: rng.normal(size=(4, 1000)),
    "AR(1) phi=0.9": lambda rng: ar1(rng, 4, 1000, 0.9),
    "AR(1) phi=-0.7 (antithetic)": lambda rng: ar1(rng, 4, 500, -0.7),
    "shifted means": lambda rng: rng.normal(size=(4, 500)) + np.array([[0.0], [0.0], [0.5], [2.0]]),
    "heavy tails (t, 1.5 df)": lambda rng: rng.standard_t(1.5, size=(4, 800)),
    "odd number of draws": lambda rng: rng.normal(size=(3, 101)),
    "single chain": lambda rng: rng.normal(size=(1, 200)),
    "single chain, 1-D": lambda rng: rng.normal(size=201),
    "ties": lambda rng: rng.integers(0, 5, size=(4, 100)).astype(float),
    "random walk": lambda rng: np.cumsum(rng.normal(size=(4, 300)), axis=1),
    "4 draws": lambda rng: rng.normal(size=(4, 4)),
    "7 draws": lambda rng: rng.normal(size=(2, 7)),
    "fewer than 4 draws": lambda rng: rng.normal(size=(4, 3)),
    "constant": lambda rng: np.full((4, 100), 2.0),
    "a nan": lambda rng: np.where(np.arange(100) == 37, np.nan, rng.normal(size=(2, 100))),
    "an infinite draw": lambda rng: np.where(np.arange(100) == 37, np.inf, rng.normal(size=(2, 100))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_agrees_with_arviz(case, arviz_reference):
    x = CASES[case](np.random.default_rng(sum(map(ord, case))))
    ours = [f(x) for f in DIAGNOSTICS]
    # ArviZ's one-pass (Numba) variances differ from numpy's in the last few digits.
    np.testing.assert_allclose(ours, arviz_reference(x), rtol=1e-10, atol=0.0, equal_nan=True)


def test_nan_cases_match_arviz():
    rng = np.random.default_rng(3)
    assert all(math.isnan(f(rng.normal(size=(4, 3)))) for f in DIAGNOSTICS)
    with_nan = rng.normal(size=(2, 50))
    with_nan[1, 7] = np.nan
    assert all(math.isnan(f(with_nan)) for f in DIAGNOSTICS)
    # R-hat needs two chains; the ESS of a single chain is that of its two halves.
    assert math.isnan(rhat(rng.normal(size=(1, 100))))
    assert math.isnan(rhat(rng.normal(size=100)))
    assert math.isfinite(ess_bulk(rng.normal(size=(1, 100))))


def test_constant_draws():
    x = np.full((4, 101), 0.1)
    assert math.isnan(rhat(x))
    # The middle draw of each odd-length chain is dropped by the split: 4 * 2 * 50 draws.
    assert ess_bulk(x) == ess_tail(x) == ess_mean(x) == 400.0
    assert mcse_mean(x) == 0.0


def test_rhat_is_infinite_when_each_chain_is_stuck_at_a_different_value():
    x = np.repeat([[0.1], [0.1], [0.2], [0.3]], 100, axis=1)
    assert rhat(x) == math.inf


def test_one_dimensional_input_is_one_chain():
    x = np.random.default_rng(4).normal(size=99)
    for f in (ess_bulk, ess_tail, ess_mean, mcse_mean):
        assert f(x) == f(x[None, :])


def test_ess_is_bounded_by_s_log10_s():
    # Perfectly alternating chains are antithetic: the autocorrelation time is clipped.
    x = np.tile([-1.0, 1.0], (4, 50)) + np.random.default_rng(5).normal(0.0, 1e-3, size=(4, 100))
    s = x.size
    assert ess_mean(x) == pytest.approx(s * math.log10(s), rel=1e-12)


# --------------------------------------------------------------------------- statistical sanity


def test_iid_draws_converge_with_ess_close_to_the_number_of_draws():
    n_chains, n_draws = 4, 1000
    n = n_chains * n_draws
    x = np.random.default_rng(6).normal(size=(n_chains, n_draws))
    assert rhat(x) < 1.01
    # For iid draws each estimated autocorrelation has sd 1/sqrt(N) (Bartlett), and the initial
    # positive sequence keeps about k = 2 lags, so tau_hat = 1 + 2 * sum(rho_hat) has sd about
    # 2 * sqrt(k / N) = 0.045 here (1000 replicates give 0.043 for ess_bulk / N). Allow 4 sd.
    tolerance = 4 * 2 * math.sqrt(2 / n)
    assert abs(ess_bulk(x) / n - 1.0) < tolerance


def test_ar1_ess_mean_matches_the_integrated_autocorrelation_time():
    phi, n_chains, n_draws = 0.9, 4, 10_000
    n = n_chains * n_draws
    x = ar1(np.random.default_rng(7), n_chains, n_draws, phi)
    expected = n * (1 - phi) / (1 + phi)
    # The initial sequence truncates the autocorrelation sum after M ~ 40 lags (0.9^40 = 0.015).
    # A flat lag window of half-width M estimates the spectrum at frequency zero with relative
    # variance 2 (2M + 1) / N (Priestley, 1981), a relative sd of 6.4% here, as is the ESS's
    # (400 replicates give 6.2%). Allow 4 sd.
    tolerance = 4 * math.sqrt(2 * (2 * 40 + 1) / n)
    assert abs(ess_mean(x) / expected - 1.0) < tolerance


def test_shifted_chains_are_flagged():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(4, 500))
    x[3] += 2.0
    assert rhat(x) > 1.1
    assert rhat(x[:3]) < 1.01


def test_tail_rhat_flags_a_chain_with_a_different_scale():
    # Same location, so only the folded (tail) R-hat sees the difference.
    rng = np.random.default_rng(9)
    x = rng.normal(size=(4, 1000))
    x[0] *= 3.0
    assert rhat(x) > 1.1


# --------------------------------------------------------------------------- invariances

small_int_chains = hs.integers(1, 4).flatmap(
    lambda n_chains: hs.integers(4, 40).flatmap(
        lambda n_draws: hs.lists(
            hs.lists(hs.integers(-20, 20), min_size=n_draws, max_size=n_draws),
            min_size=n_chains,
            max_size=n_chains,
        )
    )
)

# Strictly increasing and injective in float64 on the integers -20..20.
INCREASING = {
    "exp": lambda x: np.exp(x / 8.0),
    "cube": lambda x: x**3,
    "arctan": np.arctan,
    "logistic": lambda x: 1.0 / (1.0 + np.exp(-x / 4.0)),
}


@settings(max_examples=60, deadline=None)
@given(chains=small_int_chains, transform=hs.sampled_from(sorted(INCREASING)))
def test_ess_bulk_is_invariant_to_increasing_transformations(chains, transform):
    x = np.array(chains, dtype=float)
    np.testing.assert_allclose(ess_bulk(INCREASING[transform](x)), ess_bulk(x), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    chains=small_int_chains.filter(lambda c: len(c) >= 2),
    scale=hs.sampled_from([0.25, 0.5, 2.0, 8.0]),
    shift=hs.integers(-100, 100),
)
def test_rhat_is_invariant_to_increasing_affine_transformations(chains, scale, shift):
    # Powers of two and integer shifts keep every transformed draw (and the median) exact.
    x = np.array(chains, dtype=float)
    np.testing.assert_allclose(rhat(scale * x + shift), rhat(x), rtol=1e-12)


def test_tail_rhat_depends_on_the_scale_of_the_draws():
    # Folding about the median is not preserved by a nonlinear increasing map, so R-hat is
    # invariant only to increasing affine maps, while the bulk ESS is invariant to all of them.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 50))
    x[0] *= 3.0
    assert rhat(np.exp(x)) != pytest.approx(rhat(x), rel=1e-3)
    assert ess_bulk(np.exp(x)) == ess_bulk(x)


@hs.composite
def chains_and_permutation(draw):
    n_chains = draw(hs.integers(2, 6))
    n_draws = draw(hs.integers(4, 60))
    seed = draw(hs.integers(0, 2**32 - 1))
    shifts = draw(hs.lists(hs.floats(-2.0, 2.0), min_size=n_chains, max_size=n_chains))
    # Continuous draws, so no pair of autocorrelations sits exactly on Geyer's truncation rule
    # and the chain order can only change the result by rounding.
    x = np.random.default_rng(seed).normal(size=(n_chains, n_draws)) + np.array(shifts)[:, None]
    return x, draw(hs.permutations(range(n_chains)))


@settings(max_examples=60, deadline=None)
@given(data=chains_and_permutation())
def test_invariant_to_the_order_of_the_chains(data):
    x, order = data
    for f in (rhat, ess_bulk):
        np.testing.assert_allclose(f(x[list(order)]), f(x), rtol=1e-9)


# --------------------------------------------------------------------------- summary table


def test_summarize_one_row_per_parameter():
    rng = np.random.default_rng(10)
    draws = rng.normal(size=(4, 200, 3))
    draws[1, :, 2] += 3.0
    table = summarize(draws, ["mu", "tau", "sigma"])
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["rhat", "ess_bulk", "ess_tail", "mcse_mean"]
    assert list(table.index) == ["mu", "tau", "sigma"]
    for j, name in enumerate(table.index):
        x = draws[:, :, j]
        assert table.loc[name].tolist() == [rhat(x), ess_bulk(x), ess_tail(x), mcse_mean(x)]
    assert table.loc["sigma", "rhat"] > 1.1
    assert list(summarize(draws).index) == ["x[0]", "x[1]", "x[2]"]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("f", DIAGNOSTICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", [(), (2, 10, 3), (1, 2, 10, 1)], ids=str)
def test_wrong_dimensionality_raises(f, shape):
    with pytest.raises(ArgumentError, match=r"shape \(n_chains, n_draws\)"):
        f(np.zeros(shape))


@pytest.mark.parametrize("f", DIAGNOSTICS, ids=lambda f: f.__name__)
def test_non_real_draws_raise(f):
    with pytest.raises(ArgumentError, match="real numbers"):
        f(np.ones((2, 10), dtype=complex))
    with pytest.raises(ArgumentError, match="real numbers"):
        f([["a"] * 10] * 2)


def test_summarize_validation():
    draws = np.zeros((2, 10, 2))
    with pytest.raises(ArgumentError, match=r"shape \(n_chains, n_draws, n_params\)"):
        summarize(np.zeros((2, 10)), ["a"])
    with pytest.raises(ArgumentError, match="2 parameters"):
        summarize(draws, ["a"])
    with pytest.raises(ArgumentError, match="unique; repeated: a"):
        summarize(draws, ["a", "a"])
    with pytest.raises(ArgumentError, match="sequence"):
        summarize(draws, "ab")
