"""The pre-flight check: its local recovery is calibrated, and it names useless statistics."""

import json
import math

import numpy as np
import pytest

import simfit
from simfit import statistics as st
from simfit.cli import main
from simfit.models import random_intercept

TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


def test_local_recovery_of_adequate_statistics_is_unbiased_and_calibrated():
    model, stats = random_intercept.model(), random_intercept.statistics()
    result = simfit.check(model, simfit.Panel.balanced(60, 10), stats, at=TRUTH, n_boot=100, seed=2)
    rec = result.recovery
    assert list(rec.index) == ["mu", "tau", "sigma"]
    assert result.rank == 3 and not result.roughness.rough
    n = result.n_boot
    # Tolerances from the Monte Carlo error of 100 replicates.
    assert (np.abs(rec["bias_se"]) < 4 / math.sqrt(n)).all()
    assert (np.abs(rec["sd_over_se"] - 1) < 4 / math.sqrt(2 * (n - 1))).all()
    assert (np.abs(rec["coverage_wald"] - 0.95) < 4 * math.sqrt(0.95 * 0.05 / n)).all()
    assert (rec["coverage_default"] >= rec["coverage_wald"]).all()
    assert not any("Drop" in r or "identification" in r for r in result.recommendations)
    assert "Pre-flight check" in result.summary()
    json.dumps(result.to_dict())  # plain data


def test_near_a_bound_only_within_two_standard_errors_of_it():
    # tau = 0.5 with a natural-scale se of about 0.07 and sigma = 1 (se 0.03) were "near a bound":
    # their unconstrained values and se were compared with the natural bound 0.
    model, stats = random_intercept.model(), random_intercept.statistics()
    far = simfit.check(model, simfit.Panel.balanced(60, 10), stats, at=TRUTH, n_boot=20, seed=2)
    assert not any("near a bound" in c for c in far.concerns), far.concerns
    se_natural = far.recovery["se"] * far.at  # d natural / d log = the value, for tau and sigma
    assert far.at["tau"] / se_natural["tau"] > 5 and far.at["sigma"] / se_natural["sigma"] > 20
    near = simfit.check(model, simfit.Panel.balanced(60, 10), stats, at={**TRUTH, "tau": 0.05}, n_boot=20, seed=2)
    assert [c for c in near.concerns if "near a bound" in c] == ["tau: near a bound"]


def test_uninformative_statistics_and_weak_identification_are_named():
    model = random_intercept.model()
    stats = st.Statistics(unit=[st.mean(), st.kurtosis()], across=["mean", "sd"])
    result = simfit.check(model, simfit.Panel.balanced(60, 10), stats, at=TRUTH, n_boot=50, seed=1)
    text = " ".join(result.recommendations)
    assert "Weak identification" in text
    assert "Drop" in text and "kurt" in text
    assert result.statistics.loc["mean:y.kurt", "information_share"] < 0.01


def test_check_from_the_command_line(capsys):
    assert main(["check", "quickstart", "--reps", "40", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["at_source"] == "the scenario's [truth]"
    assert set(out["recovery"]) == {"mu", "tau", "sigma"}
    assert all(0.0 <= row["coverage_default"] <= 1.0 for row in out["recovery"].values())


def test_full_fits_report_what_fits_do_and_the_screen_names_failing_unit_fits():
    from simfit.estimation import FitOptions

    model, stats = random_intercept.model(), random_intercept.statistics()
    options = FitOptions(bootstrap=0, global_points=16)
    result = simfit.check(model, simfit.Panel.balanced(40, 8), stats, at=TRUTH, n_boot=20, seed=3, full_fits=3,
                          fit_options=options, n_jobs=2)
    fits = result.fits
    assert len(fits) == 3 and (fits["error"] == "").all()
    summary = result.full_fit_summary()
    assert summary["fits"] == 3 and 0 <= summary["wrong"] <= 1
    assert summary["converged"] == fits["converged"].mean()
    for name in TRUTH:
        errors = fits[f"estimate_{name}"] - TRUTH[name]
        assert summary["params"][name]["bias"] == pytest.approx(errors.mean())
    assert "Full fits of 3 datasets simulated here" in result.summary()
    assert result.to_dict()["full_fits"]["fits"] == 3
    assert result.screen is not None and result.screen.ok  # a Gaussian model's statistics pass


def test_check_centres_auxiliary_fits_on_simulated_data_and_screens_unit_fit_failures():
    from numba import njit

    @njit(cache=False)
    def line(beta, x, args, out):
        for k in range(out.shape[0]):
            out[k] = beta[0] + beta[1] * k

    model = random_intercept.model()
    sizes = [1] * 10 + [6] * 20  # a third of the units too short for a two-parameter line
    design = simfit.Panel.from_units([np.zeros((n, 1)) for n in sizes], value_names=("y",)).design()
    stats = st.Statistics(unit=[st.nls(line, [0.0, 0.0]), st.mean()], across=["mean", "sd"])
    result = simfit.check(model, design, stats, at=TRUTH, n_boot=20, seed=1)
    assert result.calibration and "centred on the median of 20 observed units' fits" in result.calibration[0]
    assert list(result.screen.failing_fits) == ["y.nls.converged"]
    assert any("fail on" in r for r in result.recommendations)
