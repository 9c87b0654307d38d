"""Unit statistics, aggregates and pooled statistics against NumPy/SciPy references."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from numba import njit
from scipy import stats

from simfit import statistics as st
from simfit.data import Panel
from simfit.engine import panel_statistics, panel_unit_statistics
from simfit.errors import StatisticsError


@pytest.fixture(scope="module")
def panel():
    rng = np.random.default_rng(3)
    sizes = [15, 30, 7, 50, 22]
    values = [np.column_stack([rng.gamma(2.0, 1.0, n), rng.integers(0, 3, n)]) for n in sizes]
    covs = [np.column_stack([rng.normal(size=n), rng.uniform(size=n)]) for n in sizes]
    return Panel.from_units(values, covariates=covs, value_names=("rt", "resp"), covariate_names=("x", "w"))


def units_of(panel):
    return [panel.unit(i) for i in range(panel.n_units)], [
        panel.covariates[panel.unit_offsets[i] : panel.unit_offsets[i + 1]] for i in range(panel.n_units)
    ]


def test_moments_and_quantiles(panel):
    spec = st.Statistics(unit=[st.moments("rt", ("mean", "var", "sd", "skew", "kurt")), st.quantiles([0.1, 0.5, 0.9], "rt")])
    table = panel_unit_statistics(spec, panel)
    assert list(table.columns) == ["rt.mean", "rt.var", "rt.sd", "rt.skew", "rt.kurt", "rt.q10", "rt.q50", "rt.q90"]
    for i, (y, _) in enumerate(zip(*units_of(panel))):
        v = y[:, 0]
        expected = [v.mean(), v.var(ddof=1), v.std(ddof=1), stats.skew(v), stats.kurtosis(v), *np.quantile(v, [0.1, 0.5, 0.9])]
        assert np.allclose(table.iloc[i].to_numpy(), expected, rtol=1e-10)


def test_autocorr_ols_ar(panel):
    spec = st.Statistics(unit=[st.autocorr([1, 2], "rt"), st.ols(["x", "w"], "rt"), st.ar(2, "rt")], across=["mean"])
    table = panel_unit_statistics(spec, panel)
    ys, xs = units_of(panel)
    for i, (y, x) in enumerate(zip(ys, xs)):
        v = y[:, 0]
        d = v - v.mean()
        acf = [np.sum(d[:-k] * d[k:]) / np.sum(d * d) for k in (1, 2)]
        beta = np.linalg.lstsq(np.column_stack([np.ones(len(v)), x]), v, rcond=None)[0]
        lagged = np.column_stack([np.ones(len(v) - 2), v[1:-1], v[:-2]])
        phi = np.linalg.lstsq(lagged, v[2:], rcond=None)[0]
        assert np.allclose(table.iloc[i][["rt.acf1", "rt.acf2"]], acf, rtol=1e-9)
        assert np.allclose(table.iloc[i][["rt.ols.const", "rt.ols.x", "rt.ols.w"]], beta, rtol=1e-7)
        assert np.allclose(table.iloc[i][["rt.ar.const", "rt.ar1", "rt.ar2"]], phi, rtol=1e-7)


def test_proportions_and_conditional_quantiles(panel):
    spec = st.Statistics(
        unit=[st.proportions([0, 1, 2], "resp"), st.conditional_quantiles([0.25, 0.5], "rt", "resp", 1)], across=["mean"]
    )
    table = panel_unit_statistics(spec, panel)
    for i, (y, _) in enumerate(zip(*units_of(panel))):
        props = [np.mean(y[:, 1] == v) for v in (0, 1, 2)]
        sub = y[y[:, 1] == 1, 0]
        assert np.allclose(table.iloc[i][["resp.p[0]", "resp.p[1]", "resp.p[2]"]], props)
        assert np.allclose(table.iloc[i][["rt.q25|resp=1", "rt.q50|resp=1"]], np.quantile(sub, [0.25, 0.5]))


def test_conditional_quantiles_are_nan_without_the_outcome_and_aggregates_skip_them():
    p = Panel.from_units([np.array([[1.0, 0], [2.0, 0]]), np.array([[3.0, 1], [5.0, 1]])], value_names=("rt", "resp"))
    spec = st.Statistics(unit=[st.conditional_quantiles([0.5], "rt", "resp", 1)], across=["mean"])
    table = panel_unit_statistics(spec, p)
    assert math.isnan(table.iloc[0, 0]) and table.iloc[1, 0] == 4.0
    assert panel_statistics(spec, p)["mean:rt.q50|resp=1"] == 4.0


def test_mean_or_falls_back_only_when_no_unit_has_the_statistic():
    spec = st.Statistics(
        unit=[st.conditional_quantiles([0.5], "rt", "resp", 1), st.quantiles([0.5], "rt")],
        across=[],
        extra=[st.mean_or("rt.q50|resp=1", fallback="rt.q50")],
    )
    some = Panel.from_units([np.array([[1.0, 0], [2.0, 0]]), np.array([[3.0, 1], [5.0, 1]])], value_names=("rt", "resp"))
    assert panel_statistics(spec, some)["mean:rt.q50|resp=1"] == 4.0  # the unit without resp=1 is skipped
    none = Panel.from_units([np.array([[1.0, 0], [2.0, 0]]), np.array([[3.0, 0], [7.0, 0]])], value_names=("rt", "resp"))
    assert panel_statistics(spec, none)["mean:rt.q50|resp=1"] == 3.25  # mean of the medians 1.5 and 5
    with pytest.raises(StatisticsError, match="another unit statistic"):
        st.mean_or("rt.q50", fallback="rt.q50")


def test_sd_or_falls_back_only_when_fewer_than_two_units_have_the_statistic():
    spec = st.Statistics(
        unit=[st.conditional_quantiles([0.5], "rt", "resp", 1), st.quantiles([0.5], "rt")],
        across=[],
        extra=[st.sd_or("rt.q50|resp=1", fallback="rt.q50")],
    )
    two = Panel.from_units(
        [np.array([[1.0, 0], [2.0, 0]]), np.array([[3.0, 1], [5.0, 1]]), np.array([[6.0, 1], [6.0, 0]])],
        value_names=("rt", "resp"),
    )
    stats = panel_statistics(spec, two)
    assert stats["sd:rt.q50|resp=1"] == pytest.approx(np.std([4.0, 6.0], ddof=1))  # the unit without resp=1 is skipped
    one = Panel.from_units([np.array([[1.0, 0], [2.0, 0]]), np.array([[3.0, 1], [7.0, 0]])], value_names=("rt", "resp"))
    assert panel_statistics(spec, one)["sd:rt.q50|resp=1"] == pytest.approx(np.std([1.5, 5.0], ddof=1))
    with pytest.raises(StatisticsError, match="another unit statistic"):
        st.sd_or("rt.q50", fallback="rt.q50")


def test_the_log_spread_is_the_log_of_the_spread(panel):
    spec = st.Statistics(unit=[st.mean("rt")], across=[], extra=[st.sd_of("rt.mean"), st.sd_of("rt.mean", log=True)])
    got = panel_statistics(spec, panel)
    means = [panel.unit(i)[:, 0].mean() for i in range(panel.n_units)]
    assert got["logsd:rt.mean"] == pytest.approx(math.log(np.std(means, ddof=1)), rel=1e-12)
    assert got["logsd:rt.mean"] == pytest.approx(math.log(got["sd:rt.mean"]), rel=1e-12)
    same = Panel.from_units([np.array([[1.0]]), np.array([[1.0]])], value_names=("rt",))
    assert math.isnan(panel_statistics(spec, same)["logsd:rt.mean"])  # no spread, no log spread


def test_aggregates_against_numpy(panel):
    spec = st.Statistics(
        unit=[st.mean("rt"), st.sd("rt")],
        across=["mean", "sd", st.across_quantiles([0.2, 0.8])],
        extra=[st.corr(("rt.mean", "rt.sd")), st.quantiles_of("rt.mean", [0.5])],
    )
    table = panel_unit_statistics(spec, panel)
    s = panel_statistics(spec, panel)
    m, sdv = table["rt.mean"].to_numpy(), table["rt.sd"].to_numpy()
    assert np.isclose(s["mean:rt.mean"], m.mean())
    assert np.isclose(s["sd:rt.sd"], sdv.std(ddof=1))
    assert np.allclose([s["q20:rt.mean"], s["q80:rt.mean"]], np.quantile(m, [0.2, 0.8]))
    assert np.isclose(s["corr:rt.mean,rt.sd"], np.corrcoef(m, sdv)[0, 1])
    assert np.isclose(s["q50:rt.mean"], np.median(m))


def test_pooled_statistics_equal_statistics_of_all_observations(panel):
    spec = st.Statistics(
        unit=[],
        across=[],
        pooled=[st.pooled_moments("rt", ("mean", "var", "sd", "skew", "kurt")), st.pooled_proportions([0, 2], "resp")],
    )
    s = panel_statistics(spec, panel)
    v = panel.values[:, 0]
    expected = [v.mean(), v.var(ddof=1), v.std(ddof=1), stats.skew(v), stats.kurtosis(v)]
    names = ["pooled:rt.mean", "pooled:rt.var", "pooled:rt.sd", "pooled:rt.skew", "pooled:rt.kurt"]
    assert np.allclose(s[names], expected, rtol=1e-9)
    assert np.allclose(s[["pooled:resp.p[0]", "pooled:resp.p[2]"]], [np.mean(panel.values[:, 1] == k) for k in (0, 2)])


def test_group_variances():
    rng = np.random.default_rng(4)
    groups = [[3, 5, 4], [6, 2]]
    values = [rng.normal(size=sum(g)) for g in groups]
    p = Panel.from_units(values, groups=groups)
    table = panel_unit_statistics(st.Statistics(unit=[st.group_variances()]), p)
    for i, (v, g) in enumerate(zip(values, groups)):
        parts = np.split(v, np.cumsum(g)[:-1])
        within = sum(((q - q.mean()) ** 2).sum() for q in parts) / (len(v) - len(g))
        between = np.var([q.mean() for q in parts], ddof=1)
        assert np.allclose(table.iloc[i], [within, between])


@njit(cache=True)
def _range_kernel(y, x, groups, args, work, out):
    lo = y[0, 0]
    hi = y[0, 0]
    for k in range(y.shape[0]):
        lo = min(lo, y[k, 0])
        hi = max(hi, y[k, 0])
    out[0] = hi - lo


def test_user_unit_statistic(panel):
    spec = st.Statistics(unit=[st.UnitStatistic(_range_kernel, ("range",), value="rt")], across=["mean"])
    s = panel_statistics(spec, panel)
    ys, _ = units_of(panel)
    assert np.isclose(s["mean:rt.range"], np.mean([np.ptp(y[:, 0]) for y in ys]))


@settings(max_examples=15, deadline=None)
@given(seed=hs.integers(0, 2**31 - 1))
def test_aggregated_statistics_invariant_to_permuting_units(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 12, size=9)
    units = [rng.normal(size=n) for n in sizes]
    spec = st.Statistics(
        unit=[st.mean(), st.var(), st.quantiles([0.5])],
        across=["mean", "sd", st.across_quantiles([0.25])],
        extra=[st.corr(("y.mean", "y.var"))],
        pooled=[st.pooled_moments("y", ("mean", "var", "kurt"))],
    )
    base = panel_statistics(spec, Panel.from_units(units))
    perm = rng.permutation(len(units))
    permuted = panel_statistics(spec, Panel.from_units([units[k] for k in perm]))
    assert np.allclose(base.to_numpy(), permuted.to_numpy(), rtol=1e-12, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=hs.integers(0, 2**31 - 1))
def test_sd_or_is_the_spread_of_whichever_statistic_two_units_have(seed):
    rng = np.random.default_rng(seed)
    # Few units, most without resp = 1: panels with 0, 1 and several units having rt.q50|resp=1.
    units = [np.column_stack([rng.exponential(size=4), rng.random(4) < 0.15]).astype(float) for _ in range(rng.integers(2, 7))]
    variants = {(False, False): "sd", (True, False): "sdlog", (False, True): "logsd", (True, True): "logsdlog"}
    spec = st.Statistics(
        unit=[st.conditional_quantiles([0.5], "rt", "resp", 1), st.quantiles([0.5], "rt")],
        across=[],
        extra=[st.sd_or("rt.q50|resp=1", fallback="rt.q50", of_log=of_log, log=log) for of_log, log in variants],
    )
    got = panel_statistics(spec, Panel.from_units(units, value_names=("rt", "resp")))
    having = [np.median(u[u[:, 1] == 1, 0]) for u in units if (u[:, 1] == 1).any()]
    values = having if len(having) >= 2 else [np.median(u[:, 0]) for u in units]
    for (of_log, log), prefix in variants.items():
        spread = np.std(np.log(values) if of_log else values, ddof=1)
        expected = np.log(spread) if log else spread
        assert got[f"{prefix}:rt.q50|resp=1"] == pytest.approx(expected, rel=1e-12, abs=1e-12), prefix
    perm = rng.permutation(len(units))
    permuted = panel_statistics(spec, Panel.from_units([units[k] for k in perm], value_names=("rt", "resp")))
    assert np.allclose(permuted.to_numpy(), got.to_numpy(), rtol=1e-12, atol=1e-12)


def test_specification_errors(panel):
    with pytest.raises(StatisticsError, match="Unknown value column 'nope'"):
        panel_statistics(st.Statistics(unit=[st.mean("nope")]), panel)
    with pytest.raises(StatisticsError, match="Duplicate"):
        panel_statistics(st.Statistics(unit=[st.mean("rt"), st.mean("rt")]), panel)
    with pytest.raises(StatisticsError, match="unknown unit statistic"):
        panel_statistics(st.Statistics(unit=[st.mean("rt")], extra=[st.corr(("rt.mean", "rt.var"))]), panel)
    with pytest.raises(StatisticsError, match="probabilities"):
        st.quantiles([1.5])
    with pytest.raises(StatisticsError, match="Unknown aggregation"):
        st.Statistics(unit=[st.mean()], across=["median"])
    with pytest.raises(StatisticsError, match="Unknown covariate column"):
        panel_statistics(st.Statistics(unit=[st.ols(["z"], "rt")]), panel)


def test_shape_across_units(panel):
    spec = st.Statistics(unit=[st.mean("rt")], across=[], extra=[st.skewness_of("rt.mean"), st.kurtosis_of("rt.mean")])
    s = panel_statistics(spec, panel)
    m = panel_unit_statistics(spec, panel)["rt.mean"].to_numpy()
    assert np.isclose(s["skew:rt.mean"], stats.skew(m))
    assert np.isclose(s["kurt:rt.mean"], stats.kurtosis(m))


def test_constant_units_give_nan_shape_and_autocorrelation():
    p = Panel.from_units([np.full(7, 0.1), np.array([1.0, 2.0, 4.0, 3.0])])
    spec = st.Statistics(unit=[st.moments("y", ("var", "skew", "kurt")), st.autocorr([1])], across=["mean"])
    table = panel_unit_statistics(spec, p)
    assert table.iloc[0]["y.var"] == 0.0
    assert table.iloc[0][["y.skew", "y.kurt", "y.acf1"]].isna().all()
    assert table.iloc[1][["y.skew", "y.kurt", "y.acf1"]].notna().all()
    pooled = panel_statistics(st.Statistics(pooled=[st.pooled_moments("y", ("var", "skew"))]), Panel.from_units([np.full(5, 0.1)] * 3))
    assert pooled["pooled:y.var"] == 0.0 and np.isnan(pooled["pooled:y.skew"])


def test_single_objects_and_integer_options():
    spec = st.Statistics(unit=st.mean(), across="mean")
    assert panel_statistics(spec, Panel.from_units([np.arange(3.0)])).index.tolist() == ["mean:y.mean"]
    with pytest.raises(StatisticsError, match="positive integers"):
        st.autocorr(1.5)
    with pytest.raises(StatisticsError, match="positive integer"):
        st.ar(1.7)


def test_regressions_are_accurate_far_from_zero():
    rng = np.random.default_rng(9)
    n = 50
    e = rng.normal(size=n)
    y = np.empty(n)
    y[0] = 0.0
    for t in range(1, n):
        y[t] = 0.4 * y[t - 1] + e[t]
    x = rng.normal(size=n)
    shifted = y + 1e6
    p = Panel.from_units([shifted], covariates=[x + 1e3])
    table = panel_unit_statistics(st.Statistics(unit=[st.ar(1), st.ols(["x0"])], across=["mean"]), p)
    lag = np.linalg.lstsq(np.column_stack([np.ones(n - 1), y[:-1]]), y[1:], rcond=None)[0]
    assert table.iloc[0]["y.ar1"] == pytest.approx(lag[1], rel=1e-9)
    beta = np.linalg.lstsq(np.column_stack([np.ones(n), x]), y, rcond=None)[0]
    assert table.iloc[0]["y.ols.x0"] == pytest.approx(beta[1], rel=1e-8)
