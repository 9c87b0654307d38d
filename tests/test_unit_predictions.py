"""Unit-level predictions: agreement with closed-form BLUPs, calibration, shrinkage, edge cases."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import simfit
from simfit import statistics as st
from simfit.errors import ArgumentError, DataError, StatisticsError
from simfit.models import lognormal_exponential, random_intercept
from simfit.unit_predictions import predict_units

# Shrinkage matters here: a unit mean of 5 observations has noise variance 0.2 against a
# between-unit variance of 0.25, so the BLUP pulls it ~44% of the way to mu.
RI_TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}
N_UNITS, N_OBS = 200, 5


def _blups(panel, mu, tau, sigma):
    """Closed-form BLUPs of the unit intercepts and their conditional sd, shape (n_units,) each
    (broadcast against the parameters, e.g. (n_draws, n_units) for parameters of shape (n_draws, 1))."""
    n = panel.obs_per_unit
    ybar = np.add.reduceat(panel.values[:, 0], panel.unit_offsets[:-1]) / n
    shrink = tau**2 / (tau**2 + sigma**2 / n)
    return mu + shrink * (ybar - mu), np.sqrt(1.0 / (1.0 / tau**2 + n / sigma**2))


def _coverage_tolerance(alpha, n_units):
    return 3.0 * np.sqrt(alpha * (1.0 - alpha) / n_units)


def _point_mass(model, statistics, params, n_chains=2, n_draws=3):
    draws = np.broadcast_to(np.asarray(params, dtype=float), (n_chains, n_draws, len(params))).copy()
    return SimpleNamespace(draws=draws, weights=None, model=model, statistics=statistics)


@pytest.fixture(scope="module")
def ri_case():
    model = random_intercept.model()
    sim = simfit.simulate(model, simfit.Panel.balanced(N_UNITS, N_OBS), RI_TRUTH, seed=0)
    panel = sim.panel(0)
    fitted = simfit.fit(model, panel, random_intercept.statistics(), n_sims=10)
    pred = predict_units(fitted, panel, seed=1)
    return SimpleNamespace(model=model, panel=panel, truth=sim.params["unit"][0, :, 0], fitted=fitted, pred=pred)


# ---------------------------------------------------------------------- output


def test_output_layout(ri_case):
    pred = ri_case.pred
    assert list(pred.columns) == ["a", "a_lower", "a_upper", "ess"]
    assert pred.index.name == "unit"
    np.testing.assert_array_equal(pred.index, np.arange(N_UNITS))
    assert np.isfinite(pred.to_numpy()).all()
    assert ((pred["a_lower"] < pred["a"]) & (pred["a"] < pred["a_upper"])).all()
    # 10% of 4000 candidates inside the bandwidth, Epanechnikov weights: ess between 200 and 400.
    assert pred["ess"].between(200, 400).all()
    assert pred.attrs["method"] == "empirical Bayes"
    assert pred.attrs["transforms"] == {"a": "identity"}


def test_unit_labels_index_the_output(ri_case):
    labels = np.array([f"s{i:03d}" for i in range(N_UNITS)])
    panel = ri_case.panel
    labelled = simfit.Panel(values=panel.values, nesting=panel.nesting, unit_ids=labels)
    pred = predict_units(ri_case.fitted, labelled, n_candidates=500, seed=1)
    np.testing.assert_array_equal(pred.index, labels)


# ---------------------------------------------------------------------- accuracy


def test_random_intercept_agrees_with_blups(ri_case):
    mu, tau, sigma = ri_case.fitted.params
    blup, _ = _blups(ri_case.panel, mu, tau, sigma)
    pred = ri_case.pred["a"].to_numpy()
    assert np.corrcoef(pred, blup)[0, 1] >= 0.98
    mse_pred = np.mean((pred - ri_case.truth) ** 2)
    mse_blup = np.mean((blup - ri_case.truth) ** 2)
    assert abs(mse_pred / mse_blup - 1.0) <= 0.10
    # Shrinkage is real here: the raw unit means do much worse than either.
    ybar = np.add.reduceat(ri_case.panel.values[:, 0], ri_case.panel.unit_offsets[:-1]) / N_OBS
    assert np.mean((ybar - ri_case.truth) ** 2) > 1.5 * mse_pred


def test_intervals_cover_at_nominal_rate(ri_case):
    pred = ri_case.pred
    covered = (pred["a_lower"] <= ri_case.truth) & (ri_case.truth <= pred["a_upper"])
    assert abs(covered.mean() - 0.9) <= _coverage_tolerance(0.1, N_UNITS)


def test_intervals_are_calibrated_under_the_true_population():
    # At the true population the intervals are exact Bayesian intervals: over independent units
    # coverage is binomial around 1 - alpha, and widths match the closed-form conditional sd.
    model = random_intercept.model()
    n_units, alpha = 1000, 0.2
    sim = simfit.simulate(model, simfit.Panel.balanced(n_units, N_OBS), RI_TRUTH, seed=11)
    panel, truth = sim.panel(0), sim.params["unit"][0, :, 0]
    posterior = _point_mass(model, random_intercept.statistics(), list(RI_TRUTH.values()))
    pred = predict_units(posterior, panel, n_candidates=2000, seed=3, alpha=alpha)
    covered = (pred["a_lower"] <= truth) & (truth <= pred["a_upper"])
    assert abs(covered.mean() - (1 - alpha)) <= _coverage_tolerance(alpha, n_units)
    _, cond_sd = _blups(panel, **RI_TRUTH)
    width = (pred["a_upper"] - pred["a_lower"]).mean()
    assert width == pytest.approx(2 * 1.2815516 * cond_sd.mean(), rel=0.05)


def test_lognormal_rates_beat_unit_by_unit_estimates():
    model = lognormal_exponential.model()
    sim = simfit.simulate(model, simfit.Panel.balanced(N_UNITS, N_OBS), {"m": 0.0, "s": 0.5}, seed=2)
    panel, rate = sim.panel(0), sim.params["unit"][0, :, 0]
    fitted = simfit.fit(model, panel, lognormal_exponential.statistics(), n_sims=10)
    pred = predict_units(fitted, panel, seed=4)
    assert pred.attrs["transforms"] == {"rate": "log"}
    assert (pred["rate_lower"] > 0).all()
    ybar = np.add.reduceat(panel.values[:, 0], panel.unit_offsets[:-1]) / N_OBS
    mse_pred = np.mean((pred["rate"] - rate) ** 2)
    mse_raw = np.mean((1.0 / ybar - rate) ** 2)
    assert mse_pred < 0.75 * mse_raw
    covered = (pred["rate_lower"] <= rate) & (rate <= pred["rate_upper"])
    assert abs(covered.mean() - 0.9) <= _coverage_tolerance(0.1, N_UNITS)


def test_without_adjustment_predictions_are_kernel_averages(ri_case):
    pred = predict_units(ri_case.fitted, ri_case.panel, seed=1, adjust=False)
    assert pred.attrs["adjust"] is False
    mu, tau, sigma = ri_case.fitted.params
    blup, _ = _blups(ri_case.panel, mu, tau, sigma)
    assert np.corrcoef(pred["a"], blup)[0, 1] >= 0.95


# ---------------------------------------------------------------------- posterior input


def test_point_mass_posterior_reproduces_empirical_bayes(ri_case):
    fitted = ri_case.fitted
    posterior = _point_mass(ri_case.model, fitted.statistics, fitted.params.to_numpy())
    pred = predict_units(posterior, ri_case.panel, seed=1)
    assert pred.attrs["method"] == "posterior"
    pd.testing.assert_frame_equal(pred, ri_case.pred)


def test_posterior_weights_select_draws(ri_case):
    # All weight on the second of two populations: every candidate is simulated at that one.
    model, stats = ri_case.model, ri_case.fitted.statistics
    draws = np.array([[[1.0, 0.3, 1.0], [1.2, 0.8, 0.9]]])
    posterior = SimpleNamespace(draws=draws, weights=np.array([[0.0, 1.0]]), model=model, statistics=stats)
    pred = predict_units(posterior, ri_case.panel, n_candidates=500, seed=1)
    expected = predict_units(_point_mass(model, stats, draws[0, 1]), ri_case.panel, n_candidates=500, seed=1)
    pd.testing.assert_frame_equal(pred, expected)


def test_posterior_uncertainty_widens_intervals():
    # Few units: the population is uncertain, and integrating over it widens the intervals.
    model = random_intercept.model()
    panel = simfit.simulate(model, simfit.Panel.balanced(40, N_OBS), RI_TRUTH, seed=0).panel(0)
    fitted = simfit.fit(model, panel, random_intercept.statistics(), n_sims=10)
    rng = np.random.default_rng(5)
    free = rng.multivariate_normal(fitted.free, fitted.cov_free, size=2000)
    draws = model.params.to_natural(free).reshape(2, 1000, 3)
    weights = rng.uniform(0.5, 1.5, size=(2, 1000))
    posterior = SimpleNamespace(draws=draws, weights=weights / weights.sum(), model=model,
                                statistics=fitted.statistics)
    pred = predict_units(posterior, panel, seed=1)
    # Exact answer: each unit's intercept is a mixture over the draws of N(BLUP, conditional sd^2).
    pick = rng.choice(2000, size=20000, p=(weights / weights.sum()).reshape(-1))
    mu, tau, sigma = draws.reshape(-1, 3)[pick].T
    centre, sd = _blups(panel, mu[:, None], tau[:, None], sigma[:, None])
    mixture = centre + sd * rng.standard_normal(centre.shape)
    lower, upper = np.quantile(mixture, [0.05, 0.95], axis=0)
    assert np.corrcoef(pred["a"], mixture.mean(axis=0))[0, 1] >= 0.99
    width = (pred["a_upper"] - pred["a_lower"]).mean()
    assert width == pytest.approx((upper - lower).mean(), rel=0.04)
    empirical_bayes = predict_units(fitted, panel, seed=1)
    assert width > (empirical_bayes["a_upper"] - empirical_bayes["a_lower"]).mean()


# ---------------------------------------------------------------------- edge cases


def test_nan_unit_statistics_are_left_out():
    # Units of one observation have no variance: they are matched on their mean alone.
    model = random_intercept.model()
    sizes = np.tile([1, 2, 8], 60)
    design = simfit.Panel(values=None, nesting=(np.concatenate([[0], np.cumsum(sizes)]),))
    sim = simfit.simulate(model, design, RI_TRUTH, seed=7)
    panel = sim.panel(0)
    pred = predict_units(_point_mass(model, random_intercept.statistics(), list(RI_TRUTH.values())), panel, seed=2)
    assert np.isfinite(pred.to_numpy()).all()
    blup, _ = _blups(panel, **RI_TRUTH)
    single = sizes == 1
    assert np.corrcoef(pred["a"][single], blup[single])[0, 1] >= 0.98
    assert np.corrcoef(pred["a"], blup)[0, 1] >= 0.98


def test_tiny_effective_sample_size_still_gets_an_answer(ri_case):
    pred = predict_units(ri_case.fitted, ri_case.panel, n_candidates=100, accept=0.01, seed=1)
    assert np.isfinite(pred.to_numpy()).all()
    np.testing.assert_array_equal(pred["ess"], 1.0)
    np.testing.assert_array_equal(pred["a_lower"], pred["a"])
    np.testing.assert_array_equal(pred["a_upper"], pred["a"])


def test_explicit_transforms(ri_case):
    same = predict_units(ri_case.fitted, ri_case.panel, n_candidates=500, seed=1, transforms={"a": "identity"})
    default = predict_units(ri_case.fitted, ri_case.panel, n_candidates=500, seed=1)
    pd.testing.assert_frame_equal(same, default)
    bounded = predict_units(ri_case.fitted, ri_case.panel, n_candidates=500, seed=1, transforms={"a": ("logit", -10, 10)})
    assert bounded.attrs["transforms"] == {"a": "logit(-10, 10)"}
    assert np.corrcoef(bounded["a"], default["a"])[0, 1] > 0.99
    # Unit intercepts take negative values: a log scale cannot describe them.
    with pytest.raises(ArgumentError, match="non-negative"):
        predict_units(ri_case.fitted, ri_case.panel, n_candidates=500, seed=1, transforms={"a": "log"})


def test_same_seed_same_output_and_seeds_differ(ri_case):
    again = predict_units(ri_case.fitted, ri_case.panel, seed=1)
    pd.testing.assert_frame_equal(again, ri_case.pred, check_exact=True)
    other = predict_units(ri_case.fitted, ri_case.panel, seed=2)
    assert not np.array_equal(other["a"], ri_case.pred["a"])
    assert np.corrcoef(other["a"], ri_case.pred["a"])[0, 1] > 0.99


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_candidates": 99}, "n_candidates"),
        ({"n_candidates": 1000.0}, "n_candidates"),
        ({"n_candidates": True}, "n_candidates"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": "0.1"}, "alpha"),
        ({"accept": 0.0}, "accept"),
        ({"accept": 1.5}, "accept"),
        ({"seed": -1}, "seed"),
        ({"adjust": "yes"}, "adjust"),
        ({"transforms": {"b": "log"}}, "not a parameter"),
        ({"transforms": {"a": "sqrt"}}, "not a link"),
        ({"transforms": {"a": ("logit", 1, 0)}}, "not a link"),
    ],
)
def test_bad_arguments(ri_case, kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        predict_units(ri_case.fitted, ri_case.panel, **kwargs)


def test_bad_data(ri_case):
    with pytest.raises(DataError, match="no values"):
        predict_units(ri_case.fitted, ri_case.panel.design())
    with pytest.raises(DataError, match="value columns"):
        predict_units(ri_case.fitted, ri_case.panel.with_values(ri_case.panel.values, ["z"]))
    nested = simfit.Panel.balanced(10, 2, n_groups=3)
    with pytest.raises(DataError, match="level"):
        predict_units(ri_case.fitted, nested.with_values(np.zeros((60, 1))))
    with pytest.raises(DataError, match="Panel"):
        predict_units(ri_case.fitted, ri_case.panel.to_frame())


def test_bad_result_and_statistics(ri_case):
    with pytest.raises(ArgumentError, match="FitResult or a posterior"):
        predict_units(object(), ri_case.panel)
    posterior = _point_mass(ri_case.model, ri_case.fitted.statistics, [1.0, 0.5])
    with pytest.raises(ArgumentError, match="draws must have shape"):
        predict_units(posterior, ri_case.panel)
    posterior = _point_mass(ri_case.model, ri_case.fitted.statistics, [1.0, 0.5, 1.0])
    posterior.weights = -np.ones((2, 3))
    with pytest.raises(ArgumentError, match="weights"):
        predict_units(posterior, ri_case.panel)
    posterior.weights, posterior.statistics = None, None
    with pytest.raises(StatisticsError, match="statistics="):
        predict_units(posterior, ri_case.panel)
    pooled_only = st.Statistics(pooled=[st.pooled_moments("y", ("mean", "var"))])
    with pytest.raises(StatisticsError, match="no unit statistics"):
        predict_units(ri_case.fitted, ri_case.panel, statistics=pooled_only)
