"""FitResult views: tables, intervals, summary, plain data."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
from scipy import stats

import simfit
from simfit import statistics as st
from simfit.estimation import fit
from simfit.models import random_intercept


@pytest.fixture(scope="module")
def result():
    model = random_intercept.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(60, 15)).simulate({"mu": 1, "tau": 0.5, "sigma": 1}, seed=2).panel(0)
    return fit(model, data, random_intercept.statistics(), seed=5)


def test_intervals(result):
    ci = result.conf_int(0.05)
    assert np.all(ci["lower"] < result.params) and np.all(result.params < ci["upper"])
    assert ci.loc["tau", "lower"] > 0  # transform intervals respect the bounds
    wide = result.conf_int(0.01)
    assert np.all(wide["lower"] <= ci["lower"]) and np.all(wide["upper"] >= ci["upper"])
    delta = result.conf_int(0.05, method="delta")
    z = stats.norm.ppf(0.975)
    assert np.allclose(delta["upper"] - result.params, z * result.se())
    assert set(ci["method"]) == {"union"}  # S = 10 simulated panels: the default asks for the bootstrap
    without = dataclasses.replace(result, bootstrap=None)
    assert set(without.conf_int()["method"]) == {"wald"}
    with pytest.raises(ValueError, match="bootstrap"):
        without.conf_int(method="bootstrap")


def test_tables_and_summary(result):
    table = result.statistics_table()
    assert list(table.index) == list(result.names)
    assert np.allclose(table["difference"], table["observed"] - table["simulated"])
    frame = result.to_frame()
    assert list(frame.index) == ["mu", "tau", "sigma"]
    assert np.allclose(frame["se"], result.bse)
    text = result.summary()
    for word in ("mu", "tau", "sigma", "J test", "Converged", "mean:y.mean"):
        assert word in text
    data = result.to_dict()
    json.dumps(data)
    assert data["params"]["tau"] == pytest.approx(result.params["tau"])
    assert result.sensitivity().shape == (len(result.names), 3)


def test_a_spread_estimated_on_its_bound_is_flagged():
    # Eight units whose means vary less than their noise alone would make them: tau's extremum
    # estimate is 0.
    model = random_intercept.model()
    data = simfit.simulate(model, simfit.Panel.balanced(8, 5), {"mu": 1.0, "tau": 0.3, "sigma": 1.0}, seed=17).panel(0)
    with pytest.warns(simfit.inference.WeakIdentificationWarning):
        result = fit(model, data, random_intercept.statistics(), n_sims=10, seed=2)
    assert result.at_bound == ["tau"]
    assert "tau is estimated on its bound" in result.summary()


def test_summary_names_iterated_weighting_exact_identification_and_full_statistic_names():
    model = random_intercept.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(40, 10)).simulate({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, seed=2).panel(0)
    means = st.mean_of("y.mean", "y.sd")
    named = st.Aggregate(means.kernel, means.inputs, ("an_unusually_long_statistic_name_A", "an_unusually_long_statistic_name_B"), means.args)
    long = st.Statistics(unit=[st.mean(), st.sd()], across=[], extra=[named, st.sd_of("y.mean")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = simfit.fit(model, data, long, seed=1, weighting="iterated", bootstrap=0, global_points=0)
    text = res.summary()
    assert "iterated" in text and "Weighting:                          optimal" not in text
    assert "exactly identified (as many statistics as parameters): no J test" in text and "J =" not in text
    for name in res.names:
        assert any(line.startswith(name + " ") for line in text.splitlines()), name
