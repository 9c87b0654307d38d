"""Per-unit auxiliary models (NLS, GLM) against SciPy references on fixed data."""

import numpy as np
import pytest
from numba import njit
from scipy.optimize import least_squares, minimize

from simfit import statistics as st
from simfit.data import Panel
from simfit.engine import panel_statistics, panel_unit_statistics
from simfit.errors import StatisticsError
from simfit.statistics.auxiliary import FIT_NOT_CONVERGED, FIT_RUNAWAY, FIT_TOO_FEW, SANE_WIDTH


@njit(cache=True)
def oral_curve(beta, x, args, out):
    ka, cl, v = beta[0], beta[1], beta[2]
    ke = cl / v
    for k in range(out.shape[0]):
        out[k] = x[k, 1] * ka / (v * (ka - ke)) * (np.exp(-ke * x[k, 0]) - np.exp(-ka * x[k, 0]))


@njit(cache=True)
def logistic_curve(beta, x, args, out):
    for k in range(out.shape[0]):
        out[k] = args[0] * beta[0] / (1.0 + np.exp(-(x[k, 0] - beta[1]) / beta[2]))


def oral_panel(n_units=5, n_obs=9, seed=1):
    rng = np.random.default_rng(seed)
    units, covs = [], []
    for _ in range(n_units):
        t = np.sort(rng.uniform(0.2, 12.0, n_obs))
        d = np.full(n_obs, 100.0)
        ka, cl, v = np.exp(rng.normal([0.4, 1.1, 3.4], 0.3))
        c = d * ka / (v * (ka - cl / v)) * (np.exp(-cl / v * t) - np.exp(-ka * t))
        units.append((c * np.exp(0.1 * rng.normal(size=n_obs)))[:, None])
        covs.append(np.column_stack([t, d]))
    return Panel.from_units(units, covariates=covs, value_names=("conc",), covariate_names=("time", "dose"))


def unit_arrays(panel, i):
    a, b = panel.unit_offsets[i], panel.unit_offsets[i + 1]
    return panel.values[a:b, 0], panel.covariates[a:b]


POSITIVE = {"ka": (0.0, np.inf), "cl": (0.0, np.inf), "v": (0.0, np.inf)}


def test_nls_log_residuals_match_scipy_least_squares():
    panel = oral_panel()
    stat = st.nls(oral_curve, {"ka": 1.0, "cl": 2.0, "v": 20.0}, bounds=POSITIVE, residuals="log", prior_sd=None)
    table = panel_unit_statistics(st.Statistics(unit=[stat]), panel)
    assert list(table.columns) == ["conc.nls.log_ka", "conc.nls.log_cl", "conc.nls.log_v", "conc.nls.log_sd", "conc.nls.converged"]
    for i in range(panel.n_units):
        y, x = unit_arrays(panel, i)

        def residuals(z):
            out = np.empty(y.size)
            oral_curve(np.exp(z), x, np.zeros(0), out)
            return np.log(y) - np.log(out)

        ref = least_squares(residuals, np.log([1.0, 2.0, 20.0]), xtol=1e-15, ftol=1e-15, gtol=1e-15)
        row = table.iloc[i].to_numpy()
        assert np.allclose(row[:3], ref.x, atol=1e-6)
        assert row[3] == pytest.approx(0.5 * np.log(2 * ref.cost / (y.size - 3)), abs=1e-6)
        assert row[4] == 1.0


def test_nls_identity_residuals_two_sided_bounds_and_natural_scale():
    rng = np.random.default_rng(5)
    units, covs = [], []
    for _ in range(4):
        x = np.linspace(-5.0, 5.0, 15)
        mu = 2.0 * rng.uniform(0.5, 1.0) / (1.0 + np.exp(-(x - rng.normal(0, 1)) / rng.uniform(0.5, 2.0)))
        units.append((mu + 0.05 * rng.normal(size=x.size))[:, None])
        covs.append(x[:, None])
    panel = Panel.from_units(units, covariates=covs, value_names=("y",), covariate_names=("x",))
    bounds = {"top": (0.0, 1.5), "mid": (-np.inf, np.inf), "width": (0.1, np.inf)}
    stat = st.nls(logistic_curve, {"top": 0.7, "mid": 0.0, "width": 1.0}, bounds=bounds, scale="natural", curve_args=[2.0], prior_sd=None)
    table = panel_unit_statistics(st.Statistics(unit=[stat]), panel)
    assert list(table.columns)[:3] == ["y.nls.top", "y.nls.mid", "y.nls.width"]
    for i in range(panel.n_units):
        y, x = unit_arrays(panel, i)

        def residuals(b):
            out = np.empty(y.size)
            logistic_curve(b, x, np.array([2.0]), out)
            return y - out

        ref = least_squares(residuals, [0.7, 0.0, 1.0], bounds=([0.0, -np.inf, 0.1], [1.5, np.inf, np.inf]), xtol=1e-15, ftol=1e-15, gtol=1e-15)
        assert np.allclose(table.iloc[i].to_numpy()[:3], ref.x, atol=1e-6)


def test_nls_failures_are_nan_and_flagged_not_aggregated():
    panel = oral_panel(n_units=3)
    short = Panel.from_units(
        [panel.unit(0), panel.unit(1)[:2]],
        covariates=[panel.covariates[: panel.unit_offsets[1]], panel.covariates[panel.unit_offsets[1] : panel.unit_offsets[1] + 2]],
        value_names=("conc",), covariate_names=("time", "dose"),
    )
    stat = st.nls(oral_curve, {"ka": 1.0, "cl": 2.0, "v": 20.0}, bounds=POSITIVE, residuals="log")
    table = panel_unit_statistics(st.Statistics(unit=[stat]), short)
    assert table.iloc[0, 4] == 1.0 and np.isfinite(table.iloc[0, :4]).all()
    assert table.iloc[1, 4] == FIT_TOO_FEW and np.isnan(table.iloc[1, :4]).all()  # 2 observations, 3 parameters
    one_step = st.nls(oral_curve, {"ka": 1.0, "cl": 2.0, "v": 20.0}, bounds=POSITIVE, residuals="log", max_iter=1)
    assert (panel_unit_statistics(st.Statistics(unit=[one_step]), panel)["conc.nls.converged"] == FIT_NOT_CONVERGED).all()
    stats = panel_statistics(st.Statistics(unit=[stat], across=["mean", "sd"]), panel)
    assert not any("converged" in name for name in stats.index)
    assert "mean:conc.nls.log_cl" in stats.index


def test_nls_rejects_bad_declarations():
    with pytest.raises(StatisticsError, match="strictly inside its bounds"):
        st.nls(oral_curve, {"ka": -1.0, "cl": 2.0, "v": 20.0}, bounds=POSITIVE)
    with pytest.raises(StatisticsError, match="unknown parameter"):
        st.nls(oral_curve, {"ka": 1.0, "cl": 2.0, "v": 20.0}, bounds={"kel": (0, 1)})
    with pytest.raises(StatisticsError, match="residuals"):
        st.nls(oral_curve, [1.0, 2.0, 20.0], residuals="relative")


def binary_panel(family, seed=2, n_units=4, n_obs=60):
    rng = np.random.default_rng(seed)
    units, covs = [], []
    for _ in range(n_units):
        x = np.column_stack([rng.normal(size=n_obs), rng.uniform(size=n_obs)])
        eta = rng.normal(-0.3, 0.3) + 0.8 * x[:, 0] - 0.5 * x[:, 1]
        y = rng.binomial(1, 1 / (1 + np.exp(-eta))) if family == "logit" else rng.poisson(np.exp(eta))
        units.append(y[:, None].astype(float))
        covs.append(x)
    return Panel.from_units(units, covariates=covs, value_names=("y",), covariate_names=("x", "w"))


@pytest.mark.parametrize("family", ["logit", "poisson"])
def test_glm_matches_the_maximum_likelihood_estimate(family):
    panel = binary_panel(family)
    table = panel_unit_statistics(st.Statistics(unit=[st.glm(family, ["x", "w"], prior_sd=None)]), panel)
    assert list(table.columns) == ["y.glm.const", "y.glm.x", "y.glm.w", "y.glm.converged"]
    for i in range(panel.n_units):
        y, x = unit_arrays(panel, i)
        design = np.column_stack([np.ones(y.size), x])

        def negloglik(b):
            eta = design @ b
            if family == "logit":
                return np.sum(np.logaddexp(0.0, eta) - y * eta)
            return np.sum(np.exp(eta) - y * eta)

        ref = minimize(negloglik, np.zeros(3), method="BFGS", options={"gtol": 1e-10})
        assert np.allclose(table.iloc[i].to_numpy()[:3], ref.x, atol=1e-5)
        assert table.iloc[i, 3] == 1.0


def test_glm_separation_and_degenerate_outcomes_fail_without_a_penalty_and_stay_finite_with_it():
    x = np.linspace(-1, 1, 20)[:, None]
    separated = (x[:, 0] > 0).astype(float)[:, None]
    panel = Panel.from_units([separated, np.zeros((20, 1))], covariates=[x, x], value_names=("y",), covariate_names=("x",))
    table = panel_unit_statistics(st.Statistics(unit=[st.glm("logit", "x", prior_sd=None)]), panel)
    assert (table["y.glm.converged"] != 1.0).all()
    assert table[["y.glm.const", "y.glm.x"]].isna().all().all()
    penalised = panel_unit_statistics(st.Statistics(unit=[st.glm("logit", "x")]), panel)
    assert (penalised["y.glm.converged"] == 1.0).all()
    assert np.isfinite(penalised[["y.glm.const", "y.glm.x"]].to_numpy()).all()
    assert penalised.loc[0, "y.glm.x"] > 1.0 and penalised.loc[1, "y.glm.const"] < -1.0  # in the data's direction
    with pytest.raises(StatisticsError, match="family"):
        st.glm("probit")
    with pytest.raises(StatisticsError, match="prior_sd"):
        st.glm("logit", prior_sd=-1.0)


@pytest.mark.parametrize("family", ["logit", "poisson"])
def test_glm_penalty_is_the_map_of_a_normal_prior_on_each_covariates_effect(family):
    from simfit.statistics.auxiliary import GLM_PRIOR_SD, GLM_SLOPE_PRIOR_SD

    panel = binary_panel(family, n_obs=15)
    table = panel_unit_statistics(st.Statistics(unit=[st.glm(family, ["x", "w"])]), panel)
    for i in range(panel.n_units):
        y, x = unit_arrays(panel, i)
        design = np.column_stack([np.ones(y.size), x])
        spread = np.r_[1.0, x.std(axis=0, ddof=1)]

        def objective(b):
            eta = design @ b
            nll = np.sum(np.logaddexp(0.0, eta) - y * eta) if family == "logit" else np.sum(np.exp(eta) - y * eta)
            return nll + 0.5 * np.sum((b * spread / np.r_[GLM_PRIOR_SD, GLM_SLOPE_PRIOR_SD, GLM_SLOPE_PRIOR_SD]) ** 2)

        ref = minimize(objective, np.zeros(3), method="BFGS", options={"gtol": 1e-10})
        assert np.allclose(table.iloc[i].to_numpy()[:3], ref.x, atol=1e-5)


@njit(cache=True)
def line_in_index(beta, x, args, out):
    for k in range(out.shape[0]):
        out[k] = beta[0] + beta[1] * k


def test_fits_count_and_report_units_whose_auxiliary_model_failed():
    import simfit
    from simfit.estimation import UnitFitWarning
    from simfit.models import random_intercept

    model = random_intercept.model()
    sizes = [1, 1] + [6] * 30  # two units too short for a two-parameter line
    design = Panel.from_units([np.zeros((n, 1)) for n in sizes], value_names=("y",)).design()
    data = simfit.Simulator(model, design).simulate({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, seed=3).panel(0)
    stats = st.Statistics(unit=[st.nls(line_in_index, [0.0, 0.0]), st.mean()], across=["mean", "sd"])
    with pytest.warns(UnitFitWarning, match="y.nls: 2 of 32 had fewer usable observations than parameters"):
        res = simfit.fit(model, data, stats, seed=1, bootstrap=0, global_points=0)
    assert res.unit_fit_failures == {"y.nls.converged": 2}
    assert res.unit_fit_reasons == {"y.nls.converged": {"had fewer usable observations than parameters": 2}}
    assert "failed on 2 of 32 observed units (had fewer usable observations than parameters)" in res.summary()
    assert res.to_dict()["unit_fit_failures"] == {"y.nls.converged": 2}


def test_nls_statistics_sent_to_worker_processes_use_the_workers_own_compiled_curve():
    from simfit.parallel import run_parallel

    panel = oral_panel(n_units=4)
    stats = st.Statistics(unit=[st.nls(oral_curve, {"ka": 1.0, "cl": 2.0, "v": 20.0}, bounds=POSITIVE, residuals="log")])
    here = panel_unit_statistics(stats, panel).to_numpy()  # compiled in this process first
    there = run_parallel(panel_unit_statistics, [(stats, panel)] * 2, n_jobs=2)
    for table in there:
        assert np.array_equal(table.to_numpy(), here, equal_nan=True)


@njit(cache=True)
def decay_curve(beta, x, args, out):
    for k in range(out.shape[0]):
        out[k] = beta[0] * np.exp(-beta[1] * x[k, 0])


TIMES = np.array([0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0])
DECAY_BOUNDS = {"A": (0.0, np.inf), "k": (0.0, np.inf)}


def decay_panel(values):
    values = [np.asarray(v, dtype=float) for v in values]
    return Panel.from_units(values, covariates=[TIMES[: v.size] for v in values], value_names=("y",), covariate_names=("t",))


def test_nls_penalty_is_the_map_with_the_residual_variance_profiled_out_in_any_units():
    rng = np.random.default_rng(11)
    y = 5.0 * np.exp(-0.5 * TIMES) + 0.3 * rng.standard_normal(TIMES.size)
    start, sd = np.array([1.0, 1.0]), 2.0

    def objective(z, data):
        out = np.empty(TIMES.size)
        decay_curve(np.exp(z), TIMES[:, None], np.zeros(0), out)
        return TIMES.size * np.log(np.sum((data - out) ** 2)) + np.sum(((z - np.log(start)) / sd) ** 2)

    for scale in (1.0, 1e-3, 1e3):  # the data in other units: the prior means the same
        stat = st.nls(decay_curve, dict(zip("Ak", start * [scale, 1.0])), bounds=DECAY_BOUNDS, prior_sd=sd)
        row = panel_unit_statistics(st.Statistics(unit=[stat]), decay_panel([scale * y])).to_numpy()[0]
        ref = minimize(objective, np.log(start), args=(y,), method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
        assert row[3] == 1.0
        assert row[0] == pytest.approx(ref.x[0] + np.log(scale), abs=1e-5)
        assert row[1] == pytest.approx(ref.x[1], abs=1e-5)


def test_nls_unit_fit_that_runs_away_is_a_failed_fit_never_a_converged_one():
    # A unit of noise about a small level: without a penalty, the decay rate runs off (the curve
    # fits the first point and nothing else, or flattens into a constant).
    rng = np.random.default_rng(3)
    noise = [0.3 * rng.standard_normal(TIMES.size) + 0.1 for _ in range(40)]
    plain = st.nls(decay_curve, {"A": 1.0, "k": 1.0}, bounds=DECAY_BOUNDS, prior_sd=None)
    table = panel_unit_statistics(st.Statistics(unit=[plain]), decay_panel(noise))
    flags = table["y.nls.converged"].to_numpy()
    ok = flags == 1.0
    assert (flags == FIT_RUNAWAY).any()  # flagged, not converged
    assert np.all(np.abs(table.loc[ok, "y.nls.log_k"]) <= SANE_WIDTH)  # every estimate kept is sane
    assert table.loc[~ok, ["y.nls.log_A", "y.nls.log_k"]].isna().all().all()
    # The default penalty keeps every unit's estimate (a smooth function of its data).
    default = st.nls(decay_curve, {"A": 1.0, "k": 1.0}, bounds=DECAY_BOUNDS)
    flags = panel_unit_statistics(st.Statistics(unit=[default]), decay_panel(noise))["y.nls.converged"].to_numpy()
    assert (flags == 1.0).mean() >= 0.9


def test_nls_log_residuals_leave_out_samples_where_the_curve_is_zero():
    # A positive concentration at the time of an oral dose (the curve is 0 there for any
    # parameters): left out of the fit, instead of an infinite log residual failing the unit.
    panel = oral_panel(n_units=3)
    y0, x0 = unit_arrays(panel, 0)
    values = np.concatenate([[0.02], y0])[:, None]
    covs = np.vstack([[0.0, 100.0], x0])
    with_zero = Panel.from_units([values], covariates=[covs], value_names=("conc",), covariate_names=("time", "dose"))
    without = Panel.from_units([y0[:, None]], covariates=[x0], value_names=("conc",), covariate_names=("time", "dose"))
    stat = st.nls(oral_curve, {"ka": 1.0, "cl": 2.0, "v": 20.0}, bounds=POSITIVE, residuals="log")
    a = panel_unit_statistics(st.Statistics(unit=[stat]), with_zero).to_numpy()[0]
    b = panel_unit_statistics(st.Statistics(unit=[stat]), without).to_numpy()[0]
    assert a[4] == 1.0 and np.allclose(a, b)


def test_nls_centre_from_the_data_recovers_a_start_in_the_wrong_units():
    # Doses per kg: concentrations 60 times smaller than the start (mg and litres) expects.
    from simfit.engine import calibrated_statistics

    panel = oral_panel(n_units=12)
    per_kg = Panel.from_units(
        [unit_arrays(panel, i)[0][:, None] / 60.0 for i in range(panel.n_units)],
        covariates=[unit_arrays(panel, i)[1] for i in range(panel.n_units)], value_names=("conc",), covariate_names=("time", "dose"),
    )
    stats = st.Statistics(unit=[st.nls(oral_curve, {"ka": 1.0, "cl": 2.0, "v": 20.0}, bounds=POSITIVE, residuals="log")])
    calibrated, notes = calibrated_statistics(stats, per_kg)
    assert "centred on the median of 12 observed units' fits" in notes[0]
    table = panel_unit_statistics(calibrated, per_kg)
    assert (table["conc.nls.converged"] == 1.0).all()
    # The centre is the median fit: volumes 60 times larger than in mg (log 60 = 4.09 away).
    centre_v = float(notes[0].split("v = ")[1].rstrip(")"))
    assert np.log(centre_v) == pytest.approx(np.median(table["conc.nls.log_v"]), abs=0.05)
    assert np.median(table["conc.nls.log_v"]) - np.median(panel_unit_statistics(calibrated, panel)["conc.nls.log_v"]) > 3.5
    # Statistics without auxiliary fits are left as they are.
    plain = st.Statistics(unit=[st.mean()])
    assert calibrated_statistics(plain, per_kg) == (plain, ())


def test_nls_rejects_bad_penalties_and_centres():
    with pytest.raises(StatisticsError, match="prior_sd"):
        st.nls(oral_curve, [1.0, 2.0, 20.0], prior_sd="weak")
    with pytest.raises(StatisticsError, match="positive"):
        st.nls(oral_curve, [1.0, 2.0, 20.0], prior_sd=[1.0, 0.0, 1.0])
    with pytest.raises(StatisticsError, match="center"):
        st.nls(oral_curve, [1.0, 2.0, 20.0], center="median")


def test_nls_kernel_result_does_not_depend_on_what_its_scratch_space_held():
    # The kernel keeps the observations on the fitted scale in its scratch space: rows it leaves
    # out (here a non-positive sample with log residuals) must not read what was there before.
    from simfit.kernels import UNIT_STATISTIC_SIGNATURE, call_kernel, compile_kernel
    from simfit.statistics.spec import Layout

    panel = oral_panel(n_units=1, seed=3)
    y = panel.values[:, :1].copy()
    y[0, 0] = -1.0
    x = panel.covariates.copy()
    stat = st.nls(oral_curve, {"ka": 1.0, "cl": 2.0, "v": 20.0}, bounds=POSITIVE, residuals="log", center="start")
    args = np.asarray(stat.args(Layout.of(panel)), dtype=np.float64)
    _, address = compile_kernel(stat.kernel, UNIT_STATISTIC_SIGNATURE, "nls kernel")
    results = []
    for fill in (0.0, np.nan, 1e300):
        work = np.full(stat.work(y.shape[0]), fill)
        out = np.empty(len(stat.labels))
        call_kernel(UNIT_STATISTIC_SIGNATURE, address, y, x, np.array([0, y.shape[0]], dtype=np.int64), args, work, out)
        results.append(out)
    assert results[0][-1] == 1.0
    assert all(np.array_equal(results[0], r) for r in results[1:])
