"""Projected (semi-automatic) statistics: the regression, its reuse, and recovery through it."""

import warnings

import cloudpickle
import numpy as np
import pytest

import simfit
from simfit import statistics as st
from simfit.engine import panel_statistics
from simfit.errors import StatisticsError
from simfit.models import lognormal_exponential as ln
from simfit.statistics.projected import Projection, fit_projection

TRUTH = {"m": 0.0, "s": 0.5}


def candidates():
    return st.Statistics(unit=[st.log_mean(), st.mean(), st.sd(), st.quantiles([0.1, 0.5, 0.9])], across=["mean", "sd"])


def test_regression_recovers_a_known_quadratic_projection():
    rng = np.random.default_rng(0)
    stats = rng.normal(size=(500, 3))
    target = np.column_stack([1.0 + 2.0 * stats[:, 0] - stats[:, 1] ** 2, 0.5 * stats[:, 2]])
    proj = fit_projection(target, stats, ("a", "b", "c"), ("p", "q"))
    assert proj.names == ("proj:p", "proj:q")
    assert np.allclose(proj.apply(stats), target, atol=1e-4)
    assert np.allclose(proj.r2, 1.0, atol=1e-8)
    again = Projection.from_dict(proj.to_dict())
    assert np.array_equal(again.apply(stats[:5]), proj.apply(stats[:5]))
    with pytest.raises(StatisticsError, match="do not vary"):
        fit_projection(target, np.column_stack([stats, np.ones(500)]), ("a", "b", "c", "d"), ("p", "q"))
    with pytest.raises(StatisticsError, match="usable pilot panels"):
        fit_projection(target[:10], stats[:10], ("a", "b", "c"), ("p", "q"))


def test_projection_is_fitted_once_deterministically_and_travels_with_the_statistics():
    model, design = ln.model(), simfit.Panel.balanced(40, 20)
    stats = st.projected(candidates(), pilot=300, seed=4)
    sim = simfit.Simulator(model, design, stats)
    assert sim.names == ("proj:m", "proj:s")
    assert stats.projection is not None and (stats.projection.r2 > 0.5).all()
    other = st.projected(candidates(), pilot=300, seed=4)
    simfit.Simulator(model, design, other)
    assert np.array_equal(other.projection.coef, stats.projection.coef)
    data = simfit.Simulator(model, design).simulate(TRUTH, seed=1).panel(0)
    worker = cloudpickle.loads(cloudpickle.dumps(sim))  # a worker process gets the same projection
    assert np.array_equal(worker.observed(data), sim.observed(data))
    assert np.array_equal(panel_statistics(stats, data).to_numpy(), sim.observed(data))
    kept = st.projected(candidates(), projection=stats.projection.to_dict())
    assert np.array_equal(simfit.Simulator(model, design, kept).observed(data), sim.observed(data))
    wrong = st.projected(st.Statistics(unit=[st.mean()], across=["mean", "sd"]), projection=stats.projection)
    with pytest.raises(StatisticsError, match="fit a new projection"):
        simfit.Simulator(model, design, wrong)


def test_fit_with_projected_statistics_recovers_the_truth():
    model, design = ln.model(), simfit.Panel.balanced(100, 50)
    data = simfit.Simulator(model, design).simulate(TRUTH, seed=2).panel(0)
    stats = st.projected(candidates(), pilot=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = simfit.fit(model, data, stats, seed=1, bootstrap=0, global_points=0)
    assert res.converged
    for name, value in TRUTH.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name
    assert res.to_dict()["projection"]["names"] == ["proj:m", "proj:s"]


def test_a_study_folder_keeps_its_projection_for_resuming(tmp_path):
    from simfit.estimation import FitOptions
    from simfit.study import PROJECTION_FILE, recover

    model, design = ln.model(), simfit.Panel.balanced(40, 20)
    options = FitOptions(bootstrap=0, global_points=0)
    first = st.projected(candidates(), pilot=200, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recover(model, design, first, TRUTH, reps=1, seed=2, options=options, out=tmp_path)
        assert (tmp_path / PROJECTION_FILE).exists()
        resumed = st.projected(candidates(), pilot=200, seed=99)  # a new pilot would differ
        recover(model, design, resumed, TRUTH, reps=2, seed=2, options=options, out=tmp_path)
    assert np.array_equal(resumed.projection.coef, first.projection.coef)
