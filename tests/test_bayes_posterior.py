import json
import warnings

import numpy as np
import pandas as pd
import pytest

from simfit.bayes import diagnostics
from simfit.bayes.posterior import Posterior, weighted_quantile
from simfit.errors import ArgumentError
from simfit.models import random_intercept


@pytest.fixture(scope="module")
def model():
    return random_intercept.model()


def _gaussian_draws(rng, chains=4, draws=500):
    mean = np.array([1.0, 0.5, 1.0])
    sd = np.array([0.1, 0.05, 0.03])
    return mean + sd * rng.standard_normal((chains, draws, 3)), mean, sd


def test_moments_intervals_and_diagnostics_of_equal_draws(model, rng):
    draws, mean, sd = _gaussian_draws(rng)
    post = Posterior(model=model, draws=draws, method="bsl")
    flat = draws.reshape(-1, 3)
    np.testing.assert_allclose(post.mean(), flat.mean(axis=0))
    np.testing.assert_allclose(post.sd(), flat.std(axis=0, ddof=1))
    ci = post.interval(0.1)
    np.testing.assert_allclose(ci["lower"], np.quantile(flat, 0.05, axis=0))
    np.testing.assert_allclose(post.rhat(), [diagnostics.rhat(draws[:, :, j]) for j in range(3)])
    np.testing.assert_allclose(post.ess(), [diagnostics.ess_bulk(draws[:, :, j]) for j in range(3)])
    np.testing.assert_allclose(post.ess("tail"), [diagnostics.ess_tail(draws[:, :, j]) for j in range(3)])
    # The KDE mode of a Gaussian sample lies near its centre (a few sd / n^(1/5) of kernel noise).
    assert np.all(np.abs(post.map() - mean) < 0.5 * sd)


def test_weighted_particles_give_weighted_moments_and_kish_ess(model, rng):
    draws, _, _ = _gaussian_draws(rng, chains=1, draws=2000)
    w = rng.uniform(size=(1, 2000))
    post = Posterior(model=model, draws=draws, method="abc-smc", weights=w)
    wn = w.reshape(-1) / w.sum()
    flat = draws[0]
    np.testing.assert_allclose(post.mean(), wn @ flat)
    np.testing.assert_allclose(post.sd(), np.sqrt(wn @ (flat - wn @ flat) ** 2))
    np.testing.assert_allclose(post.ess(), 1 / np.sum(wn**2))
    assert post.rhat().isna().all()


def test_weighted_quantiles_match_repeated_draws(rng):
    values = rng.normal(size=200)
    counts = rng.integers(1, 4, size=200)
    repeated = np.repeat(values, counts)
    q = weighted_quantile(values, [0.1, 0.5, 0.9], counts.astype(float))
    # Weighted quantiles interpolate between weight-mass midpoints: they agree with the
    # quantiles of the repeated sample to within the gap between neighbouring order statistics.
    gap = np.max(np.diff(np.sort(values)))
    np.testing.assert_allclose(q, np.quantile(repeated, [0.1, 0.5, 0.9]), atol=gap)
    assert weighted_quantile(values, 0.5) == np.quantile(values, 0.5)


def test_map_of_a_spread_piled_up_at_zero_is_near_zero(model, rng):
    # tau's posterior decreasing from 0 (half-normal): its mode is 0, its mean ~0.8 * scale.
    draws = np.column_stack([
        rng.normal(1.0, 0.1, 8000), np.abs(rng.normal(0.0, 0.3, 8000)), rng.normal(1.0, 0.03, 8000)
    ]).reshape(4, 2000, 3)
    post = Posterior(model=model, draws=draws, method="bsl")
    assert post.map()["tau"] < 0.1 < 0.2 < post.mean()["tau"]


def test_views_are_plain_data_and_the_summary_reads(model, rng):
    draws, _, _ = _gaussian_draws(rng)
    post = Posterior(model=model, draws=draws, method="bsl", estimate=pd.Series([1.0, 0.5, 1.0], index=["mu", "tau", "sigma"]))
    frame = post.summary_frame()
    assert list(frame.index) == ["mu", "tau", "sigma"]
    assert {"mean", "sd", "map", "marginal_mode", "estimate", "rhat", "ess_bulk", "ess_tail"} <= set(frame.columns)
    table = post.to_frame()  # the draws
    assert list(table.columns) == ["chain", "draw", "mu", "tau", "sigma"] and len(table) == draws.shape[0] * draws.shape[1]
    assert np.array_equal(table[["mu", "tau", "sigma"]].to_numpy(), draws.reshape(-1, 3))
    assert table["chain"].tolist() == np.repeat(np.arange(draws.shape[0]), draws.shape[1]).tolist()
    json.dumps(post.to_dict())
    text = post.summary()
    assert "posterior expectations" in text and "map" in text and "estimate" in text
    assert "Population distribution of unit-level parameters" in text


def test_to_arviz_keeps_the_draws(model, rng):
    az = pytest.importorskip("arviz")
    draws, _, _ = _gaussian_draws(rng)
    post = Posterior(model=model, draws=draws, method="bsl", log_posterior=rng.normal(size=(4, 500)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = post.to_arviz()
        np.testing.assert_array_equal(idata.posterior["tau"].values, draws[:, :, 1])
        assert float(az.rhat(idata)["mu"]) == pytest.approx(post.rhat()["mu"], rel=1e-10)
    weighted = Posterior(model=model, draws=draws[:1], method="abc-smc", weights=np.ones((1, 500)))
    assert weighted.to_arviz().posterior["mu"].shape == (1, 500)


def test_shapes_and_weights_are_checked(model):
    with pytest.raises(ArgumentError, match="shape"):
        Posterior(model=model, draws=np.zeros((2, 10)), method="bsl")
    with pytest.raises(ArgumentError, match="weights"):
        Posterior(model=model, draws=np.zeros((1, 10, 3)), method="abc-smc", weights=-np.ones((1, 10)))
    with pytest.raises(ArgumentError, match="alpha"):
        Posterior(model=model, draws=np.ones((1, 10, 3)), method="bsl").interval(1.5)


def test_marginal_mode_of_known_densities(model, rng):
    # mu ~ N(1, 0.2^2) (mode 1); tau exponential, its mode on the bound 0; sigma gamma(3, 0.5) (mode 1)
    n = 4000
    draws = np.stack([1.0 + 0.2 * rng.standard_normal(n), rng.exponential(0.1, n), rng.gamma(3.0, 0.5, n)], axis=1)
    post = Posterior(model=model, draws=draws[None], method="bsl")
    mode = post.marginal_mode()
    assert abs(mode["mu"] - 1.0) < 0.06 and mode["tau"] < 0.01 and abs(mode["sigma"] - 1.0) < 0.2
    assert mode["tau"] < post.mean()["tau"] - 0.05  # the mode at the bound, the mean away from it


def test_tables_are_computed_once_and_handed_out_as_copies(model, rng, monkeypatch):
    from simfit import population_summary as ps_module

    calls = []
    real = ps_module.population_summary
    monkeypatch.setattr(ps_module, "population_summary", lambda post, alpha: calls.append(alpha) or real(post, alpha=alpha))
    draws = np.array([1.0, 0.5, 1.0]) + np.array([0.05, 0.03, 0.02]) * rng.standard_normal((2, 300, 3))
    post = Posterior(model=model, draws=draws, method="bsl")
    first = post.summary_frame()
    first.loc["mu", "mean"] = 99.0  # a caller's edit must not reach the cache
    assert post.summary_frame().loc["mu", "mean"] == pytest.approx(draws[..., 0].mean())
    post.summary()
    post.summary()
    assert calls == [0.1]
    post.population_summary(0.2)
    assert calls == [0.1, 0.2]
