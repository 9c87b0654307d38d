import numpy as np
import pytest
from scipy import stats

import simfit
from simfit.models import meta_analysis as ma


def test_eight_schools_panel_and_statistics_are_the_estimates():
    data = ma.eight_schools()
    sim = simfit.Simulator(ma.model(), data.design(), ma.statistics())
    np.testing.assert_array_equal(sim.observed(data), ma.EIGHT_SCHOOLS_Y)
    assert len(sim.names) == 8


def test_simulated_estimates_have_the_marginal_variance_tau2_plus_se2():
    se = np.array([5.0, 10.0, 20.0])
    design = ma.panel(np.zeros(3), se).design()
    sim = simfit.Simulator(ma.model(), design, ma.statistics())
    draws = sim.statistics({"mu": 2.0, "tau": 3.0}, n_sims=20000, seed=1)
    sd = np.sqrt(9.0 + se**2)
    # mean within 4 standard errors, variance ratio within 4 of its standard error sqrt(2 / n)
    assert np.all(np.abs(draws.mean(axis=0) - 2.0) < 4 * sd / np.sqrt(20000))
    assert np.all(np.abs(draws.var(axis=0) / sd**2 - 1) < 4 * np.sqrt(2 / 20000))


def test_exact_posterior_matches_the_conjugate_case_without_spread():
    # tau fixed near 0 by a grid of one point: mu's posterior is the precision-weighted normal.
    y, se = np.array(ma.EIGHT_SCHOOLS_Y), np.array(ma.EIGHT_SCHOOLS_SE)
    mu = np.linspace(-30, 40, 7001)
    p = ma.exact_posterior(y, se, lambda m, t: stats.norm(0, 1e6).logpdf(m), mu, np.array([1e-9]))[:, 0]
    w = 1 / se**2
    assert (p * mu).sum() == pytest.approx((w * y).sum() / w.sum(), abs=1e-6)
    assert np.sqrt((p * mu**2).sum() - (p * mu).sum() ** 2) == pytest.approx(1 / np.sqrt(w.sum()), rel=1e-4)


def test_panel_checks_its_input():
    with pytest.raises(ValueError, match="same length"):
        ma.panel([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        ma.panel([1.0], [0.0])
