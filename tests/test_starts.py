"""Global phase: the search box, screening in one launch, recovery from a poor start, and the
warning when local solutions disagree."""

import math
import warnings

import numpy as np
import pytest
from conftest import misbehaving

import simfit
from simfit.estimation import fit
from simfit.models import pk, random_intercept
from simfit.params import Param, ParamSet
from simfit.starts import compare_solutions, global_candidates, search_box

RI_TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


def test_search_box_covers_start_and_declared_starts():
    params = ParamSet((Param("a", start=0.0), Param("s", bounds=(0, math.inf), start=1.0), Param("p", bounds=(0, 1), start=0.5)))
    start = np.array([10.0, 2.0, 0.0])
    lo, hi = search_box(params, start, 3.0)
    default = params.to_free(params.start)
    assert np.all(lo <= np.minimum(start, default)) and np.all(np.maximum(start, default) <= hi)
    assert lo[0] == pytest.approx(-3.0) and hi[0] == pytest.approx(13.0)
    assert lo[2] >= -8 and hi[2] <= 8


def test_screening_ranks_points_by_objective():
    model, stats = random_intercept.model(), random_intercept.statistics()
    sim = simfit.Simulator(model, simfit.Panel.balanced(50, 10), stats)
    observed = sim.statistics(RI_TRUTH, n_sims=1, seed=3)[0]
    poor = model.params.to_free(model.params.as_vector({"mu": 8.0, "tau": 5.0, "sigma": 0.1}))
    box = search_box(model.params, poor, 3.0)
    starts, values, _, rejected = global_candidates(sim, observed, 10, 9, box, poor, 64, 3)
    assert starts.shape == (3, 3) and np.all(np.diff(values) >= 0) and rejected == 0

    assert not any(np.array_equal(s, poor) for s in starts)  # the poor start is not among the best
    again, *_ = global_candidates(sim, observed, 10, 9, box, poor, 64, 3)
    assert np.array_equal(starts, again)
    other_start, *_ = global_candidates(sim, observed, 10, 9, box, poor + 0.5, 64, 3)
    assert np.array_equal(starts, other_start)  # the start does not change the ranking of the sample



def _screen(model, start=None):
    sim = simfit.Simulator(model, simfit.Panel.balanced(30, 5), random_intercept.statistics())
    observed = sim.statistics(RI_TRUTH, n_sims=1, seed=3)[0]
    u0 = model.params.to_free(model.params.start if start is None else model.params.as_vector(start))
    return global_candidates(sim, observed, 4, 9, search_box(model.params, None, 3.0), u0, 64, 3)


def test_a_kernel_raising_in_the_box_stops_the_screening():
    # Before, the global phase fell back to the start alone without a word.
    with pytest.raises(simfit.KernelError, match="observation kernel raised ValueError: mu too large"):
        _screen(misbehaving("raises", 2.0))


def test_points_with_non_finite_statistics_are_counted_and_left_out():
    screen = _screen(misbehaving("nan", 1.5))  # a quarter of the box, mu in [-3, 3]
    assert 5 < screen.rejected < 40 and len(screen.starts) == 3 and np.all(np.isfinite(screen.values))
    none_finite = _screen(misbehaving("nan off the start"))  # finite at the declared start only
    assert none_finite.rejected == 64 and len(none_finite.starts) == 1  # the start alone, and the count says why


def test_poor_start_reaches_the_good_solution():
    model, stats = pk.model(), pk.statistics()
    truth = {"log_ka": 0.405, "ka_sd": 0.3, "log_cl": 1.099, "cl_sd": 0.3, "log_v": 3.401, "v_sd": 0.2, "rho": 0.5, "sigma_prop": 0.1}
    design = pk.design()
    data = simfit.Simulator(model, design).simulate(truth, seed=5).panel(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        good = fit(model, data, stats, start=truth, seed=1, bootstrap=0)
        poor = fit(model, data, stats, start={**truth, "log_ka": 2.5, "log_cl": -1.0, "log_v": 5.5, "ka_sd": 2.0}, seed=1, bootstrap=0)
    se = np.sqrt(np.diag(good.cov_free))
    # The same optimum up to the objective's own noise (the per-subject fits move in small jumps
    # as the simulated data change): noise of eps sampling sds in each of k moments moves the
    # minimum by about eps * sqrt(k) standard errors.
    noise = np.nanmax(np.r_[good.convergence.roughness.noise, poor.convergence.roughness.noise, 0.0])
    tolerance = max(0.1, 2.0 * noise * np.sqrt(len(good.names)))
    assert np.all(np.abs(poor.free - good.free) <= tolerance * se), (poor.params, good.params, tolerance)
    assert poor.converged and poor.local_solutions is not None and len(poor.local_solutions) >= 3


def test_local_solutions_table_marks_the_ones_that_disagree():
    params = ParamSet((Param("a"), Param("b")))
    runs = [(np.zeros(2), np.array([0.0, 0.0]), 1.0, True), (np.ones(2), np.array([3.0, 0.0]), 1.2, True),
            (np.ones(2), np.array([0.01, 0.0]), 1.0, True)]
    table = compare_solutions(params, runs, 0, np.array([0.5, 0.5]))
    assert table["agrees"].tolist() == [True, False, True]
    assert table["distance_se"].tolist() == pytest.approx([0.0, 6.0, 0.02])
    assert table["excess"].tolist() == pytest.approx([0.0, 0.2, 0.0])


def test_objective_quantile_is_the_chi_square_one_under_the_optimal_weighting():
    from scipy.stats import chi2

    from simfit.starts import objective_quantile

    rng = np.random.default_rng(3)
    a = rng.standard_normal((8, 8))
    omega = a @ a.T + 8 * np.eye(8)
    draws = 100_000
    for level in (0.5, 0.99):
        q = chi2.ppf(level, 8)
        se = math.sqrt(level * (1 - level) / draws) / chi2.pdf(q, 8)  # of a Monte Carlo quantile
        assert abs(objective_quantile(np.linalg.inv(1.1 * omega), omega, 10, level, draws) - q) < 4 * se


def test_objective_quantile_holds_for_correlated_statistics_under_a_diagonal_weighting():
    # One eigenvalue dominates (correlation 0.7): the objective's upper tail is long. Simulated
    # objectives exceed the 99% quantile 1% of the time, within the binomial error of both samples.
    from simfit.starts import objective_quantile

    rng = np.random.default_rng(4)
    m, n_sims, draws = 12, 10, 200_000
    scale = np.exp(rng.standard_normal(m))
    omega = (0.7 + 0.3 * np.eye(m)) * np.outer(scale, scale)
    weight = np.diag(1.0 / np.diag(omega))
    limit = objective_quantile(weight, omega, n_sims, 0.99)
    g = rng.multivariate_normal(np.zeros(m), (1 + 1 / n_sims) * omega, size=draws)
    share = np.mean(np.einsum("ij,jk,ik->i", g, weight, g) > limit)
    se = math.sqrt(0.01 * 0.99 * (1 / draws + 1 / 100_000))
    assert abs(share - 0.01) < 4 * se, share
