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



def _parameter_rows(text):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "estimate" in line and "interval" in line)
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("-"))
    return lines[start], lines[start + 1:end]


def test_summary_columns_never_run_together(result):
    # 26.14 next to 1.29e-150 printed as "26.141.29e-150", and "0.975]interval" in the header.
    from hypothesis import given, settings
    from hypothesis import strategies as hs

    from simfit.results import FitResult

    numbers = hs.one_of(
        hs.floats(allow_nan=True, allow_infinity=True),
        hs.sampled_from([26.14, 1.29e-150, -1.29e-150, 1.7e308, -1.7e308, -123456.789, 5e-5, -0.0, 99999.12345]),
    )

    @settings(max_examples=200, deadline=None)
    @given(hs.lists(numbers, min_size=6 * 3, max_size=6 * 3), hs.sampled_from([0.05, 0.1, 0.001]))
    def check(values, alpha):
        frame = result.to_frame(alpha)
        for j, column in enumerate(frame.columns[:-1]):
            frame[column] = values[3 * j: 3 * j + 3]
        frame["ci_method"] = ["wald", "bootstrap-t", "one-sided"]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(FitResult, "to_frame", lambda self, a=0.05, m="auto": frame)
            header, rows = _parameter_rows(result.summary(alpha))
        assert header.split() == ["estimate", "se", "z", "P>|z|", f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]", "interval"]
        for row in rows:
            assert len(row.split()) == 8, row  # the name, six numbers and the interval's method

    check()


def test_numbers_leave_a_space_before_them():
    from simfit.results import format_number

    assert format_number(1.29e-150, 9, 3) == " 1.3e-150" and format_number(26.14, 9, 2) == "    26.14"
    assert format_number(-1.7e308, 11) == " -1.70e+308" and format_number(1e300, 6) == " 1e+300"


def test_a_j_test_rejecting_is_a_warning_line_unless_simulated_panels_reach_as_far(result):
    from dataclasses import replace

    from simfit.inference import JTest

    rejecting = replace(result, jtest=JTest(statistic=25.0, df=3, pvalue=2e-5))
    assert any("the J test rejects" in w for w in rejecting.warnings)
    assert "WARNING: the J test rejects" in rejecting.summary()
    heavy = replace(result, jtest=JTest(statistic=25.0, df=3, pvalue=2e-5, pvalue_simulated=0.01, n_simulated=500))
    assert not any("the J test rejects" in w for w in heavy.warnings)
    beyond = replace(result, jtest=JTest(statistic=25.0, df=3, pvalue=2e-5, pvalue_simulated=0.0, n_simulated=500))
    assert any("the J test rejects" in w for w in beyond.warnings)
