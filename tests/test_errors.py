"""One exception hierarchy: everything simfit raises on purpose is a SimfitError."""

import numpy as np
import pytest

import simfit
from simfit import errors
from simfit.scenario import load_scenario


def test_hierarchy():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.SimfitError)
    assert issubclass(errors.DataError, ValueError) and issubclass(errors.SimulationError, RuntimeError)


@pytest.mark.parametrize(
    "call",
    [
        lambda: simfit.Param("p", bounds=(1, 0)),
        lambda: simfit.Panel.from_units([np.array([np.nan])]),
        lambda: simfit.statistics.quantiles([2.0]),
        lambda: load_scenario("/nonexistent.toml"),
    ],
)
def test_caught_as_simfit_error(call):
    with pytest.raises(simfit.SimfitError):
        call()


def test_requests_that_cannot_fit_in_memory_are_refused_before_any_work(tmp_path):
    import simfit
    from simfit.errors import ArgumentError
    from simfit.estimation import FitOptions
    from simfit.models import random_intercept
    from simfit.study import recover

    model, stats = random_intercept.model(), random_intercept.statistics()
    design = simfit.Panel.balanced(10, 5)
    sim = simfit.Simulator(model, design, stats)
    truth = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}
    with pytest.raises(ArgumentError, match="would need about .* more than this machine"):
        sim.statistics(truth, n_sims=10**12)
    with pytest.raises(ArgumentError, match="whole simulated panels"):
        sim.simulate(truth, n_sims=10**10)
    out = tmp_path / "study"
    with pytest.raises(ArgumentError, match="replications' records"):
        recover(model, design, stats, truth, reps=10**14, out=out)
    with pytest.raises(ArgumentError, match="A fit with n_sims = 1,000,000,000,000"):
        recover(model, design, stats, truth, reps=2, options=FitOptions(n_sims=10**12), out=out)
    assert not out.exists()  # refused before the folder was made


def test_warnings_point_at_the_users_line_not_at_simfit():
    import warnings

    from simfit import statistics as st
    from simfit.models import random_intercept

    model = random_intercept.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(30, 5)).simulate({"mu": 1, "tau": 0.5, "sigma": 1}, seed=1).panel(0)
    weak = st.Statistics(unit=[st.mean(), st.kurtosis()], across=["mean", "sd"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        simfit.fit(model, data, weak, seed=1, bootstrap=0, global_points=0)
    assert caught and all(w.filename == __file__ for w in caught), [(w.category.__name__, w.filename) for w in caught]
