"""fit(): recovery within standard errors, weighting efficiency, bootstrap agreement, bad input,
first-step minima the data reject."""

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pytest
from conftest import misbehaving
from numba import njit

import simfit
from simfit import statistics as st
from simfit.errors import EstimationError
from simfit.estimation import FitOptions, derive_seed, fit
from simfit.model import Model, Observations
from simfit.models import lognormal_exponential, random_intercept
from simfit.optimizers import LeastSquares, Optimizer, OptimizerResult
from simfit.params import Param
from simfit.population import Normal, population_level
from simfit.random import normal

RI_TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}
LN_TRUTH = {"m": 0.0, "s": 0.5}


@pytest.fixture(scope="module")
def ri_data():
    model = random_intercept.model()
    return simfit.Simulator(model, simfit.Panel.balanced(80, 20)).simulate(RI_TRUTH, seed=11).panel(0)


@pytest.fixture(scope="module")
def ri_fit(ri_data):
    return fit(random_intercept.model(), ri_data, random_intercept.statistics(), seed=3, bootstrap=60)


def within_4_se(result, truth):
    est, se = result.params, result.se()
    for name, value in truth.items():
        assert abs(est[name] - value) < 4 * se[name], (name, est[name], se[name])


def test_random_intercept_recovered_within_4_se(ri_fit):
    assert ri_fit.converged
    within_4_se(ri_fit, RI_TRUTH)
    assert ri_fit.jtest is not None and ri_fit.jtest.df == 1


def test_lognormal_exponential_recovered_within_4_se():
    model = lognormal_exponential.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(100, 50)).simulate(LN_TRUTH, seed=5).panel(0)
    result = fit(model, data, lognormal_exponential.statistics(), seed=1)
    assert result.converged
    within_4_se(result, LN_TRUTH)


def test_optimal_weighting_no_less_efficient_than_identity(ri_data):
    model, stats = random_intercept.model(), random_intercept.statistics()
    optimal = fit(model, ri_data, stats, seed=3, weighting="optimal")
    identity = fit(model, ri_data, stats, seed=3, weighting="identity")
    # Asymptotic variances at nearly the same estimate: the optimal sandwich is the smaller one.
    assert np.all(optimal.se().to_numpy() <= identity.se().to_numpy() * 1.02)


def test_sandwich_and_bootstrap_standard_errors_agree(ri_fit):
    sandwich = ri_fit.se("sandwich")
    boot = ri_fit.se("bootstrap")
    assert np.all(np.abs(boot / sandwich - 1) < 0.30), (sandwich.to_dict(), boot.to_dict())


def test_fit_is_determined_by_the_seed(ri_data):
    a = fit(random_intercept.model(), ri_data, random_intercept.statistics(), seed=9)
    b = fit(random_intercept.model(), ri_data, random_intercept.statistics(), seed=9)
    c = fit(random_intercept.model(), ri_data, random_intercept.statistics(), seed=10)
    assert np.array_equal(a.free, b.free) and np.array_equal(a.cov_free, b.cov_free)
    assert not np.array_equal(a.free, c.free)


@pytest.mark.parametrize("optimizer", ["nelder-mead", "powell", "l-bfgs-b"])
def test_local_optimizers_agree_with_least_squares(ri_data, optimizer):
    model, stats = random_intercept.model(), random_intercept.statistics()
    base = fit(model, ri_data, stats, seed=4, weighting="diagonal")
    other = fit(model, ri_data, stats, seed=4, weighting="diagonal", optimizer=optimizer)
    assert other.converged
    assert np.allclose(other.params, base.params, atol=0.05 * base.se().min())


def test_global_optimizers_find_the_minimum_from_a_poor_start(ri_data):
    model, stats = random_intercept.model(), random_intercept.statistics()
    base = fit(model, ri_data, stats, seed=4, weighting="diagonal")
    start = {"mu": 3.0, "tau": 2.0, "sigma": 0.3}
    for optimizer in [simfit.optimizers.DifferentialEvolution(maxiter=30, seed=1), simfit.optimizers.Multistart(n_starts=4)]:
        res = fit(model, ri_data, stats, seed=4, weighting="diagonal", optimizer=optimizer, start=start)
        assert np.allclose(res.params, base.params, atol=0.05 * base.se().min()), optimizer


def test_iterated_weighting_converges(ri_data):
    res = fit(random_intercept.model(), ri_data, random_intercept.statistics(), seed=4, weighting="iterated")
    assert len(res.steps) >= 3 and res.converged
    within_4_se(res, RI_TRUTH)


def test_bad_inputs_raise_before_optimizing(ri_data):
    model = random_intercept.model()
    with pytest.raises(EstimationError, match="cannot identify 3 parameters"):
        fit(model, ri_data, st.Statistics(unit=[st.mean()], across=["mean"]))
    with pytest.raises(EstimationError, match="outside its bounds"):
        fit(model, ri_data, random_intercept.statistics(), start={"mu": 0, "tau": -1, "sigma": 1})
    one_obs = simfit.Panel.from_units([np.array([1.0])] * 20)
    with pytest.raises(EstimationError, match="NaN or infinite on the observed data"):
        fit(model, one_obs, st.Statistics(unit=[st.mean(), st.var()], across=["mean", "sd"]))
    with pytest.raises(EstimationError, match="do not vary"):
        fit(model, ri_data, st.Statistics(unit=[st.moments("y", ("mean", "var")), st.proportions([99.0])], across=["mean"]))
    with pytest.raises(EstimationError, match="Unknown fit option"):
        fit(model, ri_data, random_intercept.statistics(), n_simulations=5)
    with pytest.raises(EstimationError, match="n_sims"):
        FitOptions(n_sims=1)


def test_derive_seed_is_deterministic_and_distinct():
    assert derive_seed(1, 2, 3) == derive_seed(1, 2, 3)
    assert len({derive_seed(1, 2, b) for b in range(100)}) == 100
    assert 0 <= derive_seed(2**62, 5) < 2**63


# ---------------------------------------------------------------- options, bounds, intervals


def test_optimizer_options_by_name(ri_data):
    model, stats = random_intercept.model(), random_intercept.statistics()
    res = fit(model, ri_data, stats, seed=3, optimizer="nelder-mead", optimizer_options={"maxfev": 40, "xatol": 1e-3},
              global_points=0, bootstrap=0, weighting="diagonal")
    assert res.options.optimizer.maxfev == 40 and res.steps[0].result.nfev <= 45
    with pytest.raises(EstimationError, match="Unknown option.*maxiter.*nelder-mead.*maxfev"):
        FitOptions(optimizer="nelder-mead", optimizer_options={"maxiter": 10})
    with pytest.raises(EstimationError, match="expected a positive integer"):
        FitOptions(optimizer="nelder-mead", optimizer_options={"maxfev": -1})


def test_per_parameter_steps(ri_data):
    model, stats = random_intercept.model(), random_intercept.statistics()
    res = fit(model, ri_data, stats, seed=3, diff_step={"tau": 0.01}, jacobian_step=(1e-3, 2e-3, 1e-3), bootstrap=0)
    assert res.converged
    with pytest.raises(EstimationError, match="unknown parameter.*nope"):
        fit(model, ri_data, stats, diff_step={"nope": 0.01})
    with pytest.raises(EstimationError, match="2 steps given for 3 parameters"):
        fit(model, ri_data, stats, diff_step=(0.01, 0.01))
    with pytest.raises(EstimationError, match=r"diff_step must lie in \(0, 1\)"):
        FitOptions(diff_step={"tau": 2.0})


@pytest.fixture(scope="module")
def spread_on_bound():
    # 8 units of 5 observations: the spread of the intercepts is estimated at 0 for this seed.
    model, stats = random_intercept.model(), random_intercept.statistics()
    data = simfit.Simulator(model, simfit.Panel.balanced(8, 5)).simulate({"mu": 1.0, "tau": 0.3, "sigma": 1.0}, seed=32).panel(0)
    return fit(model, data, stats, seed=1, n_sims=50)


def test_spread_on_its_bound_gets_a_one_sided_interval(spread_on_bound):
    res = spread_on_bound
    assert res.at_bound == ["tau"] and res.converged
    ci = res.conf_int()
    assert ci.loc["tau", "method"] == "one-sided" and ci.loc["tau", "lower"] == 0.0
    assert 0.05 < ci.loc["tau", "upper"] < 5.0
    assert ci.loc["tau", "upper"] < res.conf_int(0.01).loc["tau", "upper"]
    assert np.isnan(res.se()["tau"])
    text = res.summary()
    assert "1-sided" in text and "one-sided" in text
    numbers = [tok for tok in text.replace("(", " ").replace(")", " ").split() if _is_number(tok)]
    assert numbers and max(len(tok) for tok in numbers) <= 12  # no 300-digit numbers anywhere


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def test_auto_intervals_say_which_method_and_why(ri_fit):
    methods = ri_fit.interval_methods()
    assert set(methods) == {"union"}  # S = 10: the simulation share of the variance is 9%
    assert "S = 10" in ri_fit.summary() and "union" in ri_fit.summary()
    wald = ri_fit.conf_int(method="wald")
    assert set(wald["method"]) == {"wald"}
    assert ri_fit.to_dict()["conf_int_method"] == methods.to_dict()


def test_no_bootstrap_where_the_sandwich_is_trusted(ri_data):
    model, stats = random_intercept.model(), random_intercept.statistics()
    res = fit(model, ri_data, stats, seed=3, n_sims=40)
    assert res.bootstrap is None and set(res.interval_methods()) == {"wald"}
    with pytest.raises(ValueError, match="bootstrap=B"):
        res.conf_int(method="percentile")


def test_exactly_identified_j_test_says_so():
    from simfit.inference import j_test

    assert "exactly identified" in str(j_test(np.zeros(2), np.eye(2), 2))


def test_data_in_large_units_are_not_mistaken_for_constant_statistics():
    # Values around 1000 with starts at the model's unit scale: the statistics vary across
    # simulated panels however large the observed values are.
    from simfit.estimation import constant_statistics

    model = random_intercept.model()
    truth = {"mu": 1000.0, "tau": 500.0, "sigma": 1000.0}
    data = simfit.Simulator(model, simfit.Panel.balanced(50, 20)).simulate(truth, seed=1).panel(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = simfit.fit(model, data, random_intercept.statistics(), seed=1, bootstrap=0)
    for name, value in truth.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name
    assert constant_statistics(np.array([5.0, 1e6]), np.diag([0.0, 1e-2])).tolist() == [True, False]


# An outcome in (0, 1), y = expit(a_i + e) with unit log-odds a_i ~ N(mu, tau^2) and e ~ N(0, 1):
# far from the data (mu = 60) every simulated observation rounds to 1, the statistics stop
# varying and the objective is flat.
@njit(cache=True)
def _expit_of_normal(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        y[k, 0] = 1.0 / (1.0 + math.exp(-(theta[0] + normal(rng))))


def _saturating_model() -> Model:
    params = (Param("mu", start=0.0), Param("tau", bounds=(0.0, math.inf), start=0.5))
    unit = population_level("unit", [Normal("a", mean="mu", sd="tau")], params)
    return Model(params, (unit,), Observations(_expit_of_normal, values=("y",)), name="saturating")


SATURATING_TRUTH = {"mu": 0.5, "tau": 0.8}
PLATEAU = {"mu": 60.0, "tau": 0.5}


@pytest.fixture(scope="module")
def saturating():
    model = _saturating_model()
    stats = st.Statistics(unit=[st.mean("y")], across=["mean", "sd"])
    data = simfit.simulate(model, simfit.Panel.balanced(60, 40), SATURATING_TRUTH, seed=4).panel(0)
    return model, stats, data


def test_a_first_step_minimum_the_data_reject_is_not_taken_without_the_start(saturating, monkeypatch):
    # The screen proposes only a point on the plateau (where a local optimizer cannot move): its
    # minimum has statistics that do not vary, so the start is optimised from as well and wins.
    import simfit.estimation as estimation

    model, stats, data = saturating
    plateau = model.params.to_free(model.params.as_vector(PLATEAU))
    monkeypatch.setattr(estimation, "global_candidates", lambda *a, **k: (plateau[None, :], np.zeros(1), plateau, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(model, data, stats, seed=2, bootstrap=0)
    within_4_se(res, SATURATING_TRUTH)
    runs = res.local_solutions
    assert len(runs) == 2 and runs["mu"].iloc[0] == pytest.approx(PLATEAU["mu"])
    assert runs["objective"].iloc[0] > runs["objective"].iloc[1]


def test_the_plateau_is_rejected_and_the_truth_is_not(saturating):
    from simfit.engine import observed_statistics
    from simfit.estimation import _covariance_at
    from simfit.starts import objective_quantile

    model, stats, data = saturating
    sim = simfit.Simulator(model, data.design(), stats)
    observed = observed_statistics(model, data, stats).to_numpy()
    omega, constant = _covariance_at(sim, model.params.as_vector(SATURATING_TRUTH), 400, 1, sim.names)
    assert not constant.any()
    _, at_plateau = _covariance_at(sim, model.params.as_vector(PLATEAU), 400, 1, sim.names)
    assert at_plateau.all()
    w = np.linalg.inv(omega)
    limit = objective_quantile(w, omega, 10, 0.999)
    for point, rejected in ((SATURATING_TRUTH, False), (PLATEAU, True)):
        g = observed - sim.statistics(point, n_sims=10, seed=5).mean(axis=0)
        assert (g @ w @ g > limit) == rejected, point


@dataclass(frozen=True)
class _EndsOnThePlateau(Optimizer):
    """An optimizer that stops where the statistics no longer vary."""

    name = "ends_on_the_plateau"
    target: tuple = ()

    def minimize(self, problem, x0):
        x = np.asarray(self.target, dtype=float)
        return OptimizerResult(x, problem.objective(x), True, "stopped", 1, 0.0, self.name)


@dataclass(frozen=True)
class _StopsWhereStarted(Optimizer):
    """Least squares, except that from ``stuck`` it stays there (a local optimum's basin)."""

    name = "stops_where_started"
    stuck: tuple = ()

    def minimize(self, problem, x0):
        if np.allclose(x0, self.stuck):
            return OptimizerResult(np.asarray(x0, float), problem.objective(x0), True, "stopped", 1, 0.0, self.name)
        return LeastSquares().minimize(problem, x0)


@pytest.mark.parametrize("weighting", ["optimal", "diagonal"])
def test_a_first_step_objective_the_data_reject_brings_in_the_start(saturating, monkeypatch, weighting):
    # The screened point's statistics vary, but its objective is far beyond what the data allow.
    import simfit.estimation as estimation

    model, stats, data = saturating
    wrong = model.params.to_free(model.params.as_vector({"mu": 2.0, "tau": 0.3}))
    monkeypatch.setattr(estimation, "global_candidates", lambda *a, **k: (wrong[None, :], np.zeros(1), wrong, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(model, data, stats, seed=2, bootstrap=0, weighting=weighting, optimizer=_StopsWhereStarted(stuck=tuple(wrong)))
    within_4_se(res, SATURATING_TRUTH)
    assert len(res.local_solutions) == 2 and res.local_solutions["mu"].iloc[0] == pytest.approx(2.0)


@pytest.mark.parametrize("weighting", ["optimal", "diagonal"])
def test_an_estimate_where_statistics_do_not_vary_is_a_clear_error(saturating, weighting):
    model, stats, data = saturating
    stuck = _EndsOnThePlateau(target=tuple(model.params.to_free(model.params.as_vector(PLATEAU))))
    with pytest.raises(EstimationError, match=r"mean:y.*do not vary across simulated panels at the estimate.*start nearer"):
        fit(model, data, stats, optimizer=stuck, global_points=0, weighting=weighting, bootstrap=0, check_convergence=False)


def test_a_rival_solution_the_data_cannot_tell_apart_is_a_warning_line():
    from types import SimpleNamespace

    from simfit.estimation import _rival_solutions
    from simfit.starts import LocalSolutionsWarning

    model = random_intercept.model()
    params = model.params
    u = params.to_free(params.as_vector({"mu": 1.0, "tau": 0.5, "sigma": 1.0}))
    se_free = np.array([0.1, 0.1, 0.05])
    mirror = params.to_free(params.as_vector({"mu": 2.0, "tau": 0.5, "sigma": 1.0}))  # 10 se away in mu
    on_bound = u.copy()
    on_bound[1] = params.to_free(params.as_vector({"mu": 1.0, "tau": 1e-320, "sigma": 1.0}))[1]
    final = SimpleNamespace(objective=lambda v: 3.0)  # the estimate's value of the final objective
    runs = [(u, SimpleNamespace(fun=3.0)), (mirror, SimpleNamespace(fun=4.0)), (on_bound, SimpleNamespace(fun=3.5))]
    with pytest.warns(LocalSolutionsWarning, match="another local solution"):
        lines = _rival_solutions(model, runs, u, se_free, True, final, reoptimise=False)
    assert len(lines) == 1 and "mu 2" in lines[0]  # the spread at its bound is no rival
    far_worse = [(u, SimpleNamespace(fun=3.0)), (mirror, SimpleNamespace(fun=3.0 + 4.0))]  # above chi2(1) 95% = 3.84
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _rival_solutions(model, far_worse, u, se_free, True, final, reoptimise=False) == ()
    # Candidates of an earlier weighting count only if they stay apart under the final one.
    merged = lambda v: (u.copy(), SimpleNamespace(fun=3.0))  # re-optimised, it joins the estimate
    merged.objective = lambda v: 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _rival_solutions(model, runs, u, se_free, True, merged, reoptimise=True) == ()


@njit(cache=True, error_model="numpy")
def _decay_observe(psi, theta, x, args, rng, y):
    a = math.exp(psi[0])
    for j in range(y.shape[0]):
        y[j, 0] = a * math.exp(-theta[0] * x[j, 0]) + psi[3] * simfit.random.normal(rng)


@njit(cache=True)
def _decay_curve(beta, x, args, out):
    for j in range(out.shape[0]):
        out[j] = beta[0] * math.exp(-beta[1] * x[j, 0])


def _decay_problem():
    """A user's curve model, written from the README: hierarchical exponential decay, per-unit NLS
    statistics from a start in the wrong place (A = k = 1; the truth is A = 5, k = 0.5)."""
    params = [simfit.Param("log_A"), simfit.Param("log_k"), simfit.Param("tau_k", bounds=(0, math.inf), start=0.5),
              simfit.Param("sigma", bounds=(0, math.inf), start=1.0)]
    unit = simfit.population_level("unit", [simfit.LogNormal("k", "log_k", "tau_k")], params)
    model = simfit.Model(params, [unit], simfit.Observations(_decay_observe, values=("y",), covariates=("t",)))
    t = np.array([0.25, 0.5, 1, 2, 3, 4, 6, 8.0])
    design = simfit.Panel.from_units([np.zeros(8)] * 60, covariates=[t] * 60, covariate_names=["t"], value_names=["y"]).design()
    truth = {"log_A": 1.6, "log_k": -0.7, "tau_k": 0.4, "sigma": 0.3}
    return model, design, truth


def test_a_curve_model_without_a_user_set_penalty_is_right_or_says_it_is_not_converged():
    model, design, truth = _decay_problem()
    data = simfit.Simulator(model, design).simulate(truth, seed=1).panel(0)
    bounds = {"A": (0, math.inf), "k": (0, math.inf)}
    default = st.Statistics(unit=[st.nls(_decay_curve, {"A": 1.0, "k": 1.0}, bounds=bounds)], across=["mean", "sd"])
    res = fit(model, data, default, seed=1, bootstrap=0)
    se = res.se()
    assert res.converged and res.warnings == ()
    for name, value in truth.items():
        assert abs(res.params[name] - value) < 4 * se[name], (name, res.params[name], se[name])
    assert any("centred on the median of 60 observed units' fits" in n for n in res.calibration)
    # The plain fit (no penalty, no sane region, from the start): runaway unit fits make its
    # statistics heavy-tailed and discontinuous; it lands away from the truth and says so,
    # naming the statistics at fault.
    raw = st.nls(_decay_curve, {"A": 1.0, "k": 1.0}, bounds=bounds, prior_sd=None, center="start", sane_width=1e300)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bad = fit(model, data, st.Statistics(unit=[raw], across=["mean", "sd"]), seed=1, bootstrap=0)
    assert not any(issubclass(w.category, RuntimeWarning) for w in caught)  # no numpy warning leaks
    assert any(issubclass(w.category, simfit.estimation.ConvergenceWarning) for w in caught)
    wrong = any(not abs(bad.params[n] - v) < 4 * bad.se()[n] for n, v in truth.items())
    assert wrong and not bad.converged
    assert "y.nls.log_" in bad.warnings[0] and "WARNING: not converged: " in bad.summary()
    assert (bad.statistics_table()["robust_z"].abs() > 4).any()
def _data_at(mu: float):
    truth = {"mu": mu, "tau": 0.5, "sigma": 1.0}
    return simfit.Simulator(random_intercept.model(), simfit.Panel.balanced(30, 5)).simulate(truth, seed=3).panel(0)


def test_a_kernel_raising_away_from_the_start_stops_the_fit_naming_it():
    # Before, the optimizer took the exception for a rejected point and went on.
    with pytest.raises(simfit.KernelError, match=r"observation kernel raised ValueError: mu too large in simulation \d+, unit \d+, at parameters \{mu: .*write NaN"):
        fit(misbehaving("raises", 3.0), _data_at(5.0), random_intercept.statistics(), n_sims=4, global_points=0, bootstrap=0)


def test_non_finite_output_rejects_points_and_the_summary_counts_them():
    # NaN output for mu > 1.5: a quarter of the global phase's box (mu in [-3, 3]) is rejected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(misbehaving("nan", 1.5), _data_at(1.0), random_intercept.statistics(), n_sims=4, bootstrap=0)
    assert 0 < res.rejected["global phase"] < 64 and res.rejected["optimisation"] >= 0
    assert f"{res.rejected['global phase']} of 64 points of the global phase" in res.summary()
    assert res.to_dict()["rejected"] == res.rejected
    assert abs(res.params["mu"] - 1.0) < 4 * res.se()["mu"]


def test_a_global_phase_without_finite_points_is_reported(ri_fit):
    # (tests/test_starts.py: the screen then returns the start alone)
    assert "global phase" not in ri_fit.summary()
    none_finite = replace(ri_fit, rejected={"global phase": ri_fit.options.global_points, "optimisation": 0})
    assert "no point of the global phase had finite statistics; the local optimisation started from the start alone" in none_finite.summary()
