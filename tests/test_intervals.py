"""Interval methods: bounds respected, bootstrap-t reduces to Wald for normal pivots, profile
limits, the diagnostics behind "auto", and numbers that always print in a fixed width."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats

from simfit.intervals import (
    ProfileCurve,
    bootstrap_t,
    canonical_method,
    percentile,
    sandwich_concerns,
    wald,
)
from simfit.params import Param, ParamSet
from simfit.results import format_number

PARAMS = ParamSet((Param("mu"), Param("tau", bounds=(0.0, math.inf)), Param("rho", bounds=(-1.0, 1.0))))


def test_method_names_and_aliases():
    assert canonical_method("transform") == "wald"
    assert canonical_method("bootstrap") == "percentile"
    assert canonical_method("Bootstrap-T") == "bootstrap-t"
    with pytest.raises(ValueError, match="Unknown interval method 'bca'.*auto"):
        canonical_method("bca")


@settings(max_examples=60, deadline=None)
@given(
    hs.lists(hs.floats(-30, 30), min_size=3, max_size=3),
    hs.lists(hs.floats(1e-6, 50), min_size=3, max_size=3),
    hs.floats(0.001, 0.5),
)
def test_wald_interval_inside_bounds_and_ordered(free, se, alpha):
    lo, hi = wald(PARAMS, np.array(free), np.array(se), alpha)
    assert np.all(lo <= hi)
    assert lo[1] >= 0 and lo[2] >= -1 and hi[2] <= 1
    est = PARAMS.to_natural(np.array(free))
    assert np.all((lo <= est) & (est <= hi))


def test_a_wald_interval_that_reaches_a_bound_reports_the_bound():
    lo, hi = wald(PARAMS, np.array([0.0, 0.0, 0.0]), np.array([1.0, 1e4, 1e4]), 0.05)
    assert lo[1] == 0.0 and hi[1] == np.inf
    assert lo[2] == -1.0 and hi[2] == 1.0


def test_bootstrap_t_with_normal_pivot_is_wald():
    free = np.array([0.3, -1.0, 0.2])
    se = np.array([0.1, 0.2, 0.3])
    # Replicates whose studentised deviations are exactly normal quantiles.
    t = stats.norm.ppf((np.arange(4000) + 0.5) / 4000)
    draws_se = np.tile(se * 1.7, (t.size, 1))  # their own se: any scale, the pivot is what counts
    draws = free + t[:, None] * draws_se
    lo, hi = bootstrap_t(PARAMS, free, se, draws, draws_se, 0.05)
    wlo, whi = wald(PARAMS, free, se, 0.05)
    assert np.allclose(lo, wlo, rtol=2e-3) and np.allclose(hi, whi, rtol=2e-3)


def test_bootstrap_t_corrects_a_skewed_pivot():
    free, se = np.array([0.0, 0.0, 0.0]), np.ones(3)
    t = np.concatenate([np.linspace(-4, 0, 500), np.linspace(0, 1, 500)])  # long left tail
    lo, hi = bootstrap_t(PARAMS, free, se, free + t[:, None], np.ones((t.size, 3)), 0.05)
    # The interval reaches further up than down: u_hat - t_(0.025) se with t_(0.025) ~ -3.8.
    assert hi[0] > 3.5 and lo[0] > -1.0


def test_percentile_ignores_failed_replicates():
    draws = np.column_stack([np.arange(101.0), np.full(101, np.nan)])
    lo, hi = percentile(draws, 0.1)
    assert lo[0] == pytest.approx(5.0) and hi[0] == pytest.approx(95.0)
    assert np.isnan(lo[1]) and np.isnan(hi[1])


def test_profile_limit_interpolates_and_admits_no_crossing():
    curve = ProfileCurve(bound=0.0, values=np.array([0.1, 0.2, 0.4, 0.8]), increase=np.array([0.0, 0.5, 2.0, 8.0]))
    limit = curve.limit(0.05)  # crosses chi2(1) 0.90 quantile 2.706 between 0.4 and 0.8
    assert 0.4 < limit < 0.8
    assert curve.limit(0.01) > limit  # a higher level reaches further
    flat = ProfileCurve(bound=0.0, values=np.array([0.1, 1.0]), increase=np.array([0.0, 0.1]))
    assert flat.limit(0.05) == math.inf


def test_concerns_name_their_reasons():
    est = np.array([0.0, 0.05, 0.9])
    se = np.array([0.1, 0.05, 0.1])
    c = sandwich_concerns(PARAMS, est, se, n_stats=12, n_units=40, n_sims=10, condition=5e3, rank=3, at_bound=[])
    assert any("many statistics per unit" in r for r in c.general)
    assert any("S = 10" in r for r in c.general)
    assert any("weak identification" in r for r in c.general)
    assert c.by_parameter == {"tau": ("near a bound",), "rho": ("near a bound",)}
    calm = sandwich_concerns(PARAMS, np.array([0.0, 1.0, 0.0]), se, 4, 400, 50, 3.0, 3, [])
    assert not calm.any
    bound = sandwich_concerns(PARAMS, np.array([0.0, 0.0, 0.0]), se, 4, 400, 50, 3.0, 3, ["tau"])
    assert any("tau on its bound, held fixed" in r for r in bound.general)


@settings(max_examples=200, deadline=None)
@given(hs.floats(allow_nan=True, allow_infinity=True), hs.integers(8, 14), hs.integers(2, 4))
def test_numbers_print_within_their_width(value, width, decimals):
    text = format_number(value, width, decimals)
    assert len(text) == width or len(text.strip()) <= 12
    assert len(text.strip()) <= 12


def test_union_holds_both_intervals():
    import simfit
    from simfit.estimation import fit
    from simfit.models import random_intercept

    model = random_intercept.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(40, 8)).simulate({"mu": 1, "tau": 0.5, "sigma": 1}, seed=6).panel(0)
    res = fit(model, data, random_intercept.statistics(), seed=2, n_sims=10)
    union, wald_ci, boot = (res.conf_int(method=m) for m in ("auto", "wald", "bootstrap-t"))
    assert set(union["method"]) == {"union"}
    assert np.allclose(union["lower"], np.fmin(wald_ci["lower"], boot["lower"]))
    assert np.allclose(union["upper"], np.fmax(wald_ci["upper"], boot["upper"]))
