"""Recovery studies: truths, summaries, determinism across workers and backends, resuming."""

import numpy as np
import pandas as pd
import pytest

import simfit
from simfit.errors import ModelError, ScenarioError
from simfit.models import random_intercept
from simfit.study import make_prior, recover

TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


@pytest.fixture(scope="module")
def setup():
    return random_intercept.model(), simfit.Panel.balanced(30, 10), random_intercept.statistics()


def table(result):
    return result.replications.drop(columns=["seconds"])


def test_fixed_truth_summary(setup):
    model, design, stats = setup
    res = recover(model, design, stats, TRUTH, reps=12, seed=3)
    summary = res.summary()
    rep = res.replications
    assert list(summary.index) == ["mu", "tau", "sigma"] and len(rep) == 12
    err = rep["estimate_tau"] - 0.5
    assert summary.loc["tau", "bias"] == pytest.approx(err.mean())
    assert summary.loc["tau", "rmse"] == pytest.approx(np.sqrt((err**2).mean()))
    covered = ((rep["lower_tau"] <= 0.5) & (0.5 <= rep["upper_tau"])).mean()
    assert summary.loc["tau", "coverage95"] == pytest.approx(covered)
    assert np.isnan(summary.loc["tau", "corr_truth_estimate"])  # constant truth


def test_grid_and_prior_truths(setup):
    model, design, stats = setup
    res = recover(model, design, stats, {"mu": 1.0, "tau": 0.5}, grid={"sigma": [0.5, 2.0]}, reps=4, seed=1)
    assert res.replications["truth_sigma"].tolist() == [0.5, 2.0, 0.5, 2.0]
    prior = {"tau": {"dist": "uniform", "low": 0.3, "high": 0.9}}
    res = recover(model, design, stats, {"mu": 1.0, "sigma": 1.0}, prior=prior, reps=8, seed=1)
    taus = res.replications["truth_tau"]
    assert taus.between(0.3, 0.9).all() and taus.nunique() == 8
    assert res.summary().loc["tau", "corr_truth_estimate"] > 0.5


def test_identical_results_for_one_two_workers_and_dask(setup):
    model, design, stats = setup
    # Four replications: two per worker, so each worker runs more than one.
    one = recover(model, design, stats, TRUTH, reps=4, seed=5, n_jobs=1)
    two = recover(model, design, stats, TRUTH, reps=4, seed=5, n_jobs=2)
    threads = recover(model, design, stats, TRUTH, reps=4, seed=5, n_jobs=2, backend="threading")
    pd.testing.assert_frame_equal(table(one), table(two))
    pd.testing.assert_frame_equal(table(one), table(threads))
    pytest.importorskip("dask.distributed")
    dask = recover(model, design, stats, TRUTH, reps=4, seed=5, n_jobs=2, backend="dask")
    pd.testing.assert_frame_equal(table(one), table(dask))


def test_resume_skips_finished_and_refuses_other_studies(setup, tmp_path):
    model, design, stats = setup
    full = recover(model, design, stats, TRUTH, reps=8, seed=2)
    recover(model, design, stats, TRUTH, reps=3, seed=2, out=tmp_path)
    resumed = recover(model, design, stats, TRUTH, reps=8, seed=2, out=tmp_path)
    pd.testing.assert_frame_equal(table(full), table(resumed))
    first_three = [r["seconds"] for r in resumed.records[:3]]
    again = recover(model, design, stats, TRUTH, reps=8, seed=2, out=tmp_path)
    assert [r["seconds"] for r in again.records[:3]] == first_three  # not recomputed
    for name in ("replications.csv", "summary.csv", "summary.json", "recovery.png", "coverage.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "recovery.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ScenarioError, match="different study"):
        recover(model, design, stats, {**TRUTH, "tau": 0.6}, reps=8, seed=2, out=tmp_path)


def test_bad_study_inputs(setup):
    model, design, stats = setup
    with pytest.raises(ModelError, match="No truth"):
        recover(model, design, stats, {"mu": 1.0}, reps=2)
    with pytest.raises(ModelError, match="outside the parameter's bounds"):
        recover(model, design, stats, {"mu": 1.0, "sigma": 1.0}, prior={"tau": {"dist": "normal", "mean": 0.5, "sd": 1}}, reps=2)
    with pytest.raises(ScenarioError, match="Unknown prior family"):
        make_prior({"dist": "cauchy"})
    with pytest.raises(ScenarioError, match="reps"):
        recover(model, design, stats, TRUTH, reps=0)


def test_fingerprint_covers_weighting_matrices_and_reps_can_be_extended(setup, tmp_path):
    model, design, stats = setup
    w1 = simfit.weighting.User(np.eye(4))
    w2 = simfit.weighting.User(np.diag([100.0, 1.0, 1.0, 0.01]))
    recover(model, design, stats, TRUTH, reps=2, seed=1, out=tmp_path, options=simfit.FitOptions(weighting=w1))
    with pytest.raises(ScenarioError, match="different study"):
        recover(model, design, stats, TRUTH, reps=2, seed=1, out=tmp_path, options=simfit.FitOptions(weighting=w2))
    longer = recover(model, design, stats, TRUTH, reps=4, seed=1, out=tmp_path, options=simfit.FitOptions(weighting=w1))
    assert len(longer.records) == 4
    assert simfit.checkpoint.ReplicationStore.open(tmp_path).manifest["reps"] == 4


def test_invalid_settings_leave_no_folder(setup, tmp_path):
    model, design, stats = setup
    bad = [
        dict(backend="nope"),
        dict(seed=-3),
        dict(prior={"tau": {"dist": "uniform", "low": 0.9, "high": 0.2}}, truth={"mu": 1.0, "sigma": 1.0}),
    ]
    for k, kwargs in enumerate(bad):
        out = tmp_path / str(k)
        args = {"truth": TRUTH, **kwargs}
        with pytest.raises(simfit.SimfitError):
            recover(model, design, stats, args.pop("truth"), reps=2, out=out, **args)
        assert not out.exists()


def test_unidentified_parameter_gets_infinite_standard_error(setup):
    model, design, _ = setup
    data = simfit.Simulator(model, design).simulate(TRUTH, seed=1).panel(0)
    # Statistics of spread only: they do not depend on mu at all.
    spec = simfit.Statistics(unit=[simfit.statistics.moments("y", ("var", "sd"))], across=["mean", "sd"])
    with pytest.warns(simfit.inference.WeakIdentificationWarning):
        res = simfit.fit(model, data, spec, seed=1)
    assert np.isinf(res.se()["mu"])


def test_a_truth_fixed_up_to_rounding_has_no_truth_estimate_correlation():
    from simfit.study import RecoveryResult

    records = [
        {"rep": r, "converged": True, "seconds": 1.0, "jtest": 1.0, "jtest_p": 0.5, "message": "",
         "truth": {"a": 0.3 + (r % 3) * 1e-16, "b": float(r)}, "estimate": {"a": 0.3 + 0.01 * r, "b": r + 0.1},
         "se": {"a": 0.1, "b": 0.1}, "lower": {"a": 0.0, "b": r - 1.0}, "upper": {"a": 1.0, "b": r + 1.0}}
        for r in range(6)
    ]
    summary = RecoveryResult(["a", "b"], records).summary()
    assert np.isnan(summary.loc["a", "corr_truth_estimate"])
    assert summary.loc["b", "corr_truth_estimate"] == pytest.approx(1.0)


def test_every_fit_is_reported_with_its_flags_and_reasons():
    # A noisy model at a small S: some fits do not converge. The study keeps them, with why,
    # and summarises over every fit and over the converged ones side by side.
    from simfit.estimation import FitOptions
    from simfit.study import FLAGS

    model, design, stats = random_intercept.model(), simfit.Panel.balanced(20, 5), random_intercept.statistics()
    options = FitOptions(optimizer="nelder-mead", optimizer_options={"maxfev": 30}, bootstrap=0, global_points=0)
    res = recover(model, design, stats, TRUTH, reps=6, seed=2, options=options)
    rep = res.replications
    assert all(f"flag_{f}" in rep for f in FLAGS)
    failed = rep[~rep["converged"]]
    assert len(failed) >= 1  # 30 evaluations are too few for three parameters
    assert failed["flag_not_converged"].all() and failed["flag_warned"].all()
    assert (failed["reasons"].str.len() > 0).all() and (failed["warnings"].str.len() > 0).all()
    summary = res.summary()
    assert summary.loc["mu", "n"] == 6 and summary.loc["mu", "n_converged"] == int(rep["converged"].sum())
    ok = rep[rep["converged"]]
    assert summary.loc["mu", "bias"] == pytest.approx((rep["estimate_mu"] - 1.0).mean())
    if len(ok):
        assert summary.loc["mu", "bias_converged"] == pytest.approx((ok["estimate_mu"] - 1.0).mean())
    assert summary.loc["mu", "warned_rate"] == pytest.approx(rep["flag_warned"].mean())
    flags = res.to_dict()["flags"]
    assert flags["not_converged"] == pytest.approx(1 - rep["converged"].mean())


def test_a_study_with_a_fixed_parameter_simulates_and_fits_at_its_value(setup):
    model, design, stats = setup
    res = recover(model, design, stats, TRUTH, reps=3, seed=4, fixed={"sigma": 1.0})
    assert res.param_names == ["mu", "tau"] and "estimate_sigma" not in res.replications
    fixed_model = model.fix({"sigma": 1.0})
    again = recover(fixed_model, design, stats, {"mu": 1.0, "tau": 0.5}, reps=3, seed=4)
    pd.testing.assert_frame_equal(table(res), table(again))
    with pytest.raises(ModelError, match="fixed at 1"):
        recover(model, design, stats, {**TRUTH, "sigma": 2.0}, reps=3, seed=4, fixed={"sigma": 1.0})
