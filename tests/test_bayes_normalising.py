"""The synthetic likelihood's normalising transform: skewed statistics made near-Gaussian."""

import numpy as np
from scipy import stats

from simfit.bayes.normalising import SKEW_LEFT, Normalising, fit_normalising


def test_skewed_statistics_are_transformed_and_symmetric_ones_kept():
    rng = np.random.default_rng(1)
    draws = np.column_stack([rng.lognormal(0.0, 0.6, 2000), rng.normal(5.0, 2.0, 2000)])
    norm = fit_normalising(draws, ["sd:y", "mean:y"])
    assert norm.transformed == ("sd:y",)  # the Gaussian column keeps the identity
    out = norm(draws)
    assert np.array_equal(out[:, 1], draws[:, 1])
    assert abs(stats.skew(draws[:, 0])) > 1.5 and abs(stats.skew(out[:, 0])) < 0.2
    # Monotone: the same ranks, so the same information.
    assert np.array_equal(np.argsort(out[:, 0]), np.argsort(draws[:, 0]))
    # NaN (a failed panel) stays NaN; a leading axis of proposals is kept.
    batch = np.stack([draws[:5], draws[5:10]])
    batch[0, 0, 0] = np.nan
    transformed = norm(batch)
    assert transformed.shape == batch.shape and np.isnan(transformed[0, 0, 0])
    assert norm.report() and "sd:y" in norm.report()[0]
    again = Normalising.from_dict(norm.to_dict())
    assert np.array_equal(again(draws), out)


def test_heavy_tails_that_no_power_removes_are_reported():
    rng = np.random.default_rng(2)
    draws = rng.standard_t(1.5, size=(3000, 1))  # symmetric but very heavy-tailed: kurtosis stays
    norm = fit_normalising(np.hstack([draws, np.exp(draws / 5)]), ["a", "b"])
    assert any(line.startswith("WARNING") for line in norm.report())
    assert max(abs(norm.skew_after).max(), norm.kurtosis_after.max()) > SKEW_LEFT
