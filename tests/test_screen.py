"""The screen of simulated statistics at an estimate: heavy tails, robust mismatch, failing fits."""

import numpy as np
import pytest

from simfit.screen import MAX_TAIL_SHARE, robust_scale, screen_statistics


def test_robust_scale_is_the_sd_for_gaussian_draws_and_ignores_a_few_outliers():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(4000, 2))
    med, rs = robust_scale(x)
    assert med == pytest.approx([3.0, 3.0], abs=4 * 2.0 * 1.25 / np.sqrt(4000))
    # The MAD-based scale has about 1.65 times the sampling variance of the sd.
    assert rs == pytest.approx([2.0, 2.0], abs=4 * 2.0 * np.sqrt(1.65 / (2 * 4000)))
    x[:40, 0] = 1e6  # 1% of the panels far out: the sd explodes, the robust scale hardly moves
    _, rs_out = robust_scale(x)
    assert rs_out[0] == pytest.approx(rs[0], rel=0.05)
    constant_half = np.r_[np.zeros(600), rng.normal(size=400)][:, None]  # MAD 0: the IQR, then the sd
    assert robust_scale(constant_half)[1][0] > 0


def test_gaussian_statistics_pass_and_heavy_tails_and_mismatches_are_named():
    rng = np.random.default_rng(2)
    names = ("mean:y", "sd:y", "q90:y")
    draws = rng.normal(size=(500, 3))
    observed = np.array([0.5, -1.0, 0.2])
    clean = screen_statistics(draws, observed, names)
    assert clean.ok and clean.heavy == () and clean.mismatched == () and clean.reasons() == ()
    heavy = draws.copy()
    heavy[:15, 1] = 1e5 * rng.standard_normal(15)  # 3% of the panels: a runaway unit fit's signature
    screen = screen_statistics(heavy, observed, names)
    assert screen.heavy == ("sd:y",) and screen.tail_share[1] > MAX_TAIL_SHARE and screen.sd_ratio[1] > 100
    assert not screen.ok and "sd:y" in screen.reasons()[0] and "heavy tails" in screen.reasons()[0]
    # The observed value 6 robust sds out and beyond every simulated panel: a mismatch.
    far = screen_statistics(rng.normal(size=(500, 3)), np.array([0.5, 6.0, 0.2]), names)
    assert far.mismatched == ("sd:y",) and far.beyond[1] == 0.0
    assert any("does not reproduce the observed sd:y" in r for r in far.reasons())
    # The same value where 3% of the simulated panels lie further out (a long-tailed statistic):
    # no mismatch, though the sd those panels inflate would hide it anyway.
    assert abs(6.0 - screen.median[1]) / screen.sd[1] < 0.1
    assert screen_statistics(heavy, np.array([0.5, 6.0, 0.2]), names).mismatched == ()  # 3% of the panels further out


def test_failing_auxiliary_fits_are_named():
    rng = np.random.default_rng(3)
    draws = rng.normal(size=(200, 2))
    screen = screen_statistics(draws, np.zeros(2), ("a", "b"), {"y.nls.converged": (0.02, 0.3)})
    assert list(screen.failing_fits) == ["y.nls.converged"]
    assert "fail on 2% of the observed and 30% of the simulated units" in screen.reasons()[0]
    assert screen_statistics(draws, np.zeros(2), ("a", "b"), {"y.nls.converged": (0.02, 0.05)}).ok
