"""Pre-flight check of a set of statistics: what a fit with them can be expected to deliver.

Before fitting (or before trusting a fit), :func:`check` measures at a parameter value ``at``:

- **sensitivity**: how far each statistic moves, in its own simulation standard deviations, when
  each parameter moves by one standard error, and each statistic's share of the information;
- **normality** of each statistic's simulated distribution (skewness, excess kurtosis, the
  Shapiro-Wilk test): the optimal weighting and synthetic likelihoods assume near-normal
  statistics;
- **identification**: rank and condition number of the standardised Jacobian, and the parameter
  combination the statistics determine least;
- **smoothness** of the common-random-number objective (the roughness check of a fit);
- **local recovery**: ``n_boot`` datasets simulated at ``at``, each estimated by the k-step
  parametric bootstrap (two Gauss-Newton steps from ``at``), give the expected bias, the spread
  of the estimates against the sandwich standard error, and the coverage of the sandwich (Wald)
  interval, per parameter;
- **the screen a fit runs** on the simulated statistics (:mod:`simfit.screen`): heavy tails,
  auxiliary fits failing on many units;
- optionally (``full_fits``), **full fits** of datasets simulated at ``at``, in parallel: what
  fits will actually do (runaway unit fits, other optima, a rough objective), which the local
  linearisation cannot see: the share converged, warned and wrong, bias and coverage;

and turns them into recommendations in words. Everything is simulated in a few batched engine
launches: on the zoo's PK scenario the whole check takes seconds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from dataclasses import replace as dataclasses_replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from simfit.bootstrap import kstep_bootstrap
from simfit.convergence import RoughnessReport, check_roughness
from simfit.data import Panel
from simfit.engine import ParamsLike, Simulator, calibrated_statistics
from simfit.errors import EstimationError
from simfit.estimation import constant_statistics, relative_steps
from simfit.inference import central_jacobian, fd_steps, identification, sandwich
from simfit.intervals import sandwich_concerns
from simfit.model import Model
from simfit.parallel import run_parallel
from simfit.results import format_number
from simfit.screen import StatisticsScreen, screen_statistics
from simfit.seeding import derive_seed
from simfit.statistics.auxiliary import FIT_CONVERGED
from simfit.statistics.collection import Statistics
from simfit.weighting import Optimal

__all__ = ["check", "CheckResult"]

#: A statistic carrying less than this share of the information about every parameter adds
#: noise to the weighting matrix and little else.
MIN_INFORMATION_SHARE = 0.01
#: Skewness or excess kurtosis beyond these marks a statistic as far from normal.
MAX_ABS_SKEW, MAX_ABS_KURTOSIS = 1.0, 3.0
#: Expected bias, in standard errors, worth a recommendation.
MAX_BIAS_SE = 0.3


@dataclass
class CheckResult:
    """The pre-flight check's measurements and recommendations (see :func:`check`).

    Attributes
    ----------
    at : pandas.Series
        Parameter values checked (natural scale).
    statistics : DataFrame
        One row per statistic: ``skew``, ``excess_kurtosis``, ``shapiro_p`` (of ``n_cov_sims``
        simulated panels), ``information_share`` (largest share of any parameter's information)
        and ``sensitivity:<parameter>`` (change in simulation sds when the parameter moves by one
        standard error).
    recovery : DataFrame
        One row per parameter: ``value``, ``bias`` and ``rmse`` (expected, natural scale), ``bias_se`` (in
        standard errors), ``sd`` (of the bootstrap estimates, unconstrained scale), ``se``
        (sandwich, unconstrained scale), ``sd_over_se``, ``coverage_wald`` (of the nominal
        ``1 - alpha`` sandwich interval) and ``coverage_default`` (of the default ``auto``
        interval: the sandwich, or where the diagnostics raise a concern the union with the
        bootstrap-t interval, whose half-width is approximated as ``z se max(1, sd / se)``).
    rank, condition : int, float
        Of the standardised Jacobian.
    weakest : pandas.Series
        The parameter combination (unit vector, unconstrained scale) the statistics pin down least.
    roughness : RoughnessReport
    concerns : tuple of str
        Why the sandwich may be optimistic here (the reasons for which ``auto`` intervals use the
        bootstrap).
    recommendations : list of str
    n_boot, n_sims, n_units : int
    alpha : float
    seconds : float
    n_simulations : int
        Panels simulated in all.
    screen : StatisticsScreen
        The fit's screen of the statistics simulated at ``at`` (no observed values: its mismatch
        part does not apply).
    fits : DataFrame or None
        With ``full_fits``: one row per full fit (estimates, whether converged, warned and
        wrong, whether each default interval holds ``at``, seconds, the warning lines).
    calibration : tuple of str
        What the statistics took from a dataset simulated at ``at`` (as a fit does from its data).
    fixed : dict
        Parameters held at known values (not checked: they are not estimated).
    """

    at: pd.Series
    statistics: pd.DataFrame
    recovery: pd.DataFrame
    rank: int
    condition: float
    weakest: pd.Series
    roughness: RoughnessReport
    concerns: tuple[str, ...]
    recommendations: list[str]
    n_boot: int
    n_sims: int
    n_units: int
    alpha: float
    seconds: float
    n_simulations: int
    model_name: str = ""
    notes: list[str] = field(default_factory=list)
    screen: StatisticsScreen | None = None
    fits: pd.DataFrame | None = None
    calibration: tuple = ()
    fixed: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The per-parameter local recovery table."""
        return self.recovery.copy()

    def to_dict(self) -> dict:
        """Plain data (JSON-serialisable: non-finite numbers become None)."""

        def clean(v):
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, (float, np.floating)):
                return float(v) if np.isfinite(v) else None
            if isinstance(v, (np.integer,)):
                return int(v)
            if isinstance(v, np.bool_):
                return bool(v)
            return v

        return clean({
            "model": self.model_name,
            "at": self.at.to_dict(),
            "recovery": self.recovery.to_dict(orient="index"),
            "statistics": self.statistics.to_dict(orient="index"),
            "rank": self.rank,
            "condition": self.condition,
            "weakest": self.weakest.to_dict(),
            "rough": [self.at.index[j] for j in self.roughness.rough],
            "noisy": [self.at.index[j] for j in self.roughness.noisy],
            "flat": [self.at.index[j] for j in self.roughness.flat],
            "concerns": list(self.concerns),
            "recommendations": list(self.recommendations),
            "n_boot": self.n_boot,
            "n_sims": self.n_sims,
            "alpha": self.alpha,
            "seconds": self.seconds,
            "n_simulations": self.n_simulations,
            "screen": [] if self.screen is None else list(self.screen.reasons()),
            "full_fits": None if self.fits is None else self.full_fit_summary(),
        })

    def full_fit_summary(self) -> dict:
        """Shares of the full fits converged, warned and wrong; per parameter bias, RMSE and the
        coverage of the default interval (empty without full fits)."""
        if self.fits is None or not len(self.fits):
            return {}
        f = self.fits
        names = list(self.at.index)
        done = f[f["error"] == ""]
        return {
            "fits": int(len(f)),
            "errors": int((f["error"] != "").sum()),
            "converged": float(f["converged"].mean()),
            "warned": float(f["warned"].mean()),
            "wrong": float(f["wrong"].mean()),
            "silent_wrong": float((f["wrong"] & f["converged"] & ~f["warned"]).mean()),
            "median_seconds": float(f["seconds"].median()),
            "params": {
                n: {
                    "bias": float((done[f"estimate_{n}"] - self.at[n]).mean()) if len(done) else np.nan,
                    "rmse": float(np.sqrt(((done[f"estimate_{n}"] - self.at[n]) ** 2).mean())) if len(done) else np.nan,
                    "coverage_default": float(done[f"covered_{n}"].mean()) if len(done) else np.nan,
                }
                for n in names
            },
        }

    def summary(self) -> str:
        width = 86
        lines = ["=" * width, f"{'Pre-flight check of the statistics':^{width}}", "=" * width]
        lines.append(f"Model {self.model_name}, {self.n_units} units, {len(self.statistics)} statistics, S = {self.n_sims}, "
                     f"{self.n_boot} local replicates, {self.seconds:.1f} s")
        if self.fixed:
            lines.append("Fixed (not estimated): " + ", ".join(f"{k} = {v:g}" for k, v in self.fixed.items()))
        lines.append("-" * width)
        lines.append(f"{'parameter':<14}{'value':>10}{'bias':>10}{'bias/se':>9}{'sd':>10}{'se':>10}{'sd/se':>8}"
                     f"{'wald':>8}{'default':>9}")
        for name, row in self.recovery.iterrows():
            lines.append(
                f"{name[:13]:<14}{format_number(row['value'], 10)}{format_number(row['bias'], 10, 3)}{format_number(row['bias_se'], 9, 2)}"
                f"{format_number(row['sd'], 10, 3)}{format_number(row['se'], 10, 3)}{format_number(row['sd_over_se'], 8, 2)}"
                f"{format_number(row['coverage_wald'], 8, 2)}{format_number(row['coverage_default'], 9, 2)}"
            )
        lines.append(f"(bias on the natural scale; sd, se on the unconstrained scale; expected coverage of the nominal "
                     f"{1 - self.alpha:.0%} sandwich and default intervals)")
        lines.append("-" * width)
        lines.append(f"Identification: Jacobian rank {self.rank} of {len(self.at)}, condition number {self.condition:.3g}; "
                     "weakest combination " + ", ".join(f"{k} {v:+.2f}" for k, v in self.weakest.items() if abs(v) > 0.3))
        odd = self.statistics[(self.statistics["skew"].abs() > MAX_ABS_SKEW) | (self.statistics["excess_kurtosis"].abs() > MAX_ABS_KURTOSIS)]
        lines.append(f"Statistics far from normal: {', '.join(odd.index) if len(odd) else 'none'}")
        weak = self.statistics.index[self.statistics["information_share"] < MIN_INFORMATION_SHARE]
        lines.append(f"Statistics carrying under {MIN_INFORMATION_SHARE:.0%} of any parameter's information: "
                     f"{', '.join(weak) if len(weak) else 'none'}")
        rough = [self.at.index[j] for j in self.roughness.rough]
        lines.append(f"Objective rough along: {', '.join(rough) if rough else 'none (smooth)'}")
        for note in self.calibration:
            lines.append(f"Auxiliary fit {note} (of a dataset simulated here, as a fit does from its data).")
        if self.fits is not None:
            f = self.full_fit_summary()
            lines.append("-" * width)
            lines.append(
                f"Full fits of {f['fits']} datasets simulated here: {f['converged']:.0%} converged, {f['warned']:.0%} warned, "
                f"{f['wrong']:.0%} wrong (a truth outside its 99% interval or 5 se away), {f['silent_wrong']:.0%} wrong without "
                f"saying so; {f['errors']} raised; median {f['median_seconds']:.1f} s"
            )
            lines.append(f"{'parameter':<14}{'bias':>10}{'rmse':>10}{'coverage':>10}")
            for n, v in f["params"].items():
                lines.append(f"{n[:13]:<14}{format_number(v['bias'], 10, 3)}{format_number(v['rmse'], 10, 3)}"
                             f"{format_number(v['coverage_default'], 10, 2)}")
        lines.append("-" * width)
        lines.append("Recommendations:")
        lines.extend(f"- {r}" for r in (self.recommendations or ["none: the statistics look adequate at these values."]))
        lines.append("=" * width)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<CheckResult {self.model_name}: {len(self.recommendations)} recommendation(s)>"


def check(
    model: Model,
    design: Panel,
    statistics: Statistics,
    at: ParamsLike | None = None,
    n_sims: int = 10,
    n_cov_sims: int = 200,
    n_boot: int = 100,
    diff_step=1e-4,
    jacobian_step=1e-3,
    alpha: float = 0.05,
    seed: int = 0,
    full_fits: int = 0,
    fit_options=None,
    n_jobs: int = 1,
) -> CheckResult:
    """Pre-flight check of ``statistics`` for ``model`` on ``design`` at the parameters ``at``.

    Parameters
    ----------
    model : Model
    design : Panel
        Units, observations and covariates of the data to be fitted (values are ignored).
    statistics : Statistics
    at : mapping or array, optional
        Parameter values (natural scale) to check at: a plausible truth or an estimate. Default:
        the model's starts.
    n_sims : int
        Simulated panels per evaluation, as in the fit (``S``).
    n_cov_sims : int
        Panels simulated for the covariance, the normality tests and the sensitivity scale.
    n_boot : int
        Local-recovery replicates (k-step bootstrap).
    diff_step, jacobian_step : float, sequence or mapping
        Relative finite-difference steps (unconstrained scale) of the roughness check and of
        the Jacobian, as in :class:`~simfit.estimation.FitOptions` (simulators whose statistics
        are step functions at small scales, such as the DDM's Euler steps, need larger ones).
    alpha : float
        Intervals of nominal coverage ``1 - alpha``.
    seed : int
    full_fits : int
        Datasets simulated at ``at`` and fitted in full with ``fit_options`` (the default fit
        when None), ``n_jobs`` at a time: what fits will do, beyond the local linearisation.
    fit_options : FitOptions, optional
    n_jobs : int

    Returns
    -------
    CheckResult
    """
    started = time.perf_counter()
    original = statistics
    plain = Simulator(model, design)
    psi = model.params.start if at is None else plain.psi(at)
    # As a fit centres its auxiliary fits on its data, the check centres them on data simulated here.
    statistics, calibration = calibrated_statistics(statistics, plain.simulate(psi, seed=derive_seed(seed, 44)).panel(0))
    sim = Simulator(model, design, statistics)
    params = model.params
    u = params.to_free(psi)
    names = list(sim.names)
    param_names = list(model.param_names)
    draws = sim.statistics(psi, n_sims=int(n_cov_sims), seed=derive_seed(seed, 41))
    bad = ~np.all(np.isfinite(draws), axis=0)
    if bad.any():
        raise EstimationError(
            f"Statistic(s) {', '.join(np.asarray(names)[bad])} are NaN or infinite in some panels simulated at "
            f"{dict(zip(param_names, psi.round(6).tolist()))}; use statistics defined for every panel."
        )
    omega = np.atleast_2d(np.cov(draws, rowvar=False, ddof=1))
    sd = np.sqrt(np.diag(omega))
    constant = constant_statistics(draws.mean(axis=0), omega)
    if constant.any():
        raise EstimationError(f"Statistic(s) {', '.join(np.asarray(names)[constant])} do not vary across simulated panels; remove them.")
    weight = Optimal().matrix(omega, n_sims)
    crn = derive_seed(seed, 42)
    center = draws.mean(axis=0)

    def moments(v):
        return center - sim.statistics(params.to_natural(v), n_sims=n_sims, seed=crn).mean(axis=0)

    jac = -central_jacobian(moments, u, relative_steps(jacobian_step, params, 1e-3))
    if not np.all(np.isfinite(jac)):
        raise EstimationError("The Jacobian of the statistics is not finite at these values; use statistics defined for every panel.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ident = identification(jac, omega, tuple(param_names))
    cov_free = sandwich(jac, weight, omega, n_sims)
    se = np.sqrt(np.maximum(np.diag(cov_free), 0.0))
    rough = check_roughness(moments, u, fd_steps(u, relative_steps(diff_step, params, 1e-4)), np.sqrt((1.0 + 1.0 / n_sims) * np.diag(omega)))

    # Information: the share of each parameter's (whitened) Fisher information each statistic carries.
    info = (np.linalg.solve(np.linalg.cholesky(omega), jac)) ** 2 if np.all(np.linalg.eigvalsh(omega) > 0) else (jac / sd[:, None]) ** 2
    share = info / np.maximum(info.sum(axis=0), 1e-300)
    with np.errstate(invalid="ignore"):  # a parameter the statistics do not identify has no finite se
        moved = ident.sensitivity * se[None, :]
    stat_table = pd.DataFrame(
        {
            "skew": sps.skew(draws, axis=0),
            "excess_kurtosis": sps.kurtosis(draws, axis=0),
            "shapiro_p": [sps.shapiro(draws[:, i]).pvalue if draws.shape[0] >= 3 else np.nan for i in range(len(names))],
            "information_share": share.max(axis=1),
            **{f"sensitivity:{p}": moved[:, j] for j, p in enumerate(param_names)},
        },
        index=names,
    )

    screen = screen_statistics(draws, draws.mean(axis=0), names, _unit_failure_shares(sim, psi, derive_seed(seed, 45)))
    boot = kstep_bootstrap(sim, u, jac, weight, n_sims, int(n_boot), derive_seed(seed, 43), steps=2, se_free_hat=se)
    with warnings.catch_warnings():  # parameters the statistics do not identify are NaN in every replicate
        warnings.simplefilter("ignore", RuntimeWarning)
        recovery, concerns = _local_recovery(boot, params, psi, u, se, alpha, param_names, len(names), design.n_units, n_sims, ident)
    result = CheckResult(
        at=pd.Series(psi, index=param_names),
        statistics=stat_table,
        recovery=recovery,
        rank=ident.rank,
        condition=ident.condition,
        weakest=pd.Series(ident.weakest, index=param_names),
        roughness=rough,
        concerns=concerns.general + tuple(f"{k}: {', '.join(v)}" for k, v in concerns.by_parameter.items()),
        recommendations=[],
        n_boot=int(n_boot),
        n_sims=int(n_sims),
        n_units=design.n_units,
        alpha=alpha,
        seconds=0.0,
        n_simulations=sim.panels_simulated,
        model_name=model.name,
        screen=screen,
        calibration=calibration,
        fixed=dict(model.fixed),
    )
    if full_fits:
        tasks = [(model, design, original, psi, fit_options, derive_seed(seed, 46, k)) for k in range(int(full_fits))]
        rows = run_parallel(_full_fit, tasks, n_jobs=n_jobs)
        result.fits = pd.DataFrame(rows)
    result.recommendations = recommend(result)
    result.seconds = time.perf_counter() - started
    return result



def _unit_failure_shares(sim: Simulator, psi: np.ndarray, seed: int, panels: int = 20) -> dict:
    """Per auxiliary-fit flag: (0, share of failed fits among the units of ``panels`` panels)."""
    flags = sim.flag_names
    if not flags:
        return {}
    tables = sim.unit_statistics(psi, n_sims=panels, seed=seed)
    return {f: (0.0, float(np.mean(tables[:, :, sim.unit_names.index(f)] != FIT_CONVERGED))) for f in flags}


def _full_fit(model, design, statistics, psi, options, seed) -> dict:
    """One full fit of a dataset simulated at ``psi`` (for :func:`check`): a row of results."""
    from simfit.estimation import FitOptions, fit, sequential

    names = list(model.param_names)
    row: dict = {"seed": seed, "error": "", "converged": False, "warned": True, "wrong": False, "warnings": ""}
    started = time.perf_counter()
    try:
        data = Simulator(model, design).simulate(psi, seed=derive_seed(seed, 1)).panel(0)
        opts = sequential(options or FitOptions())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit(model, data, statistics, options=dataclasses_replace(opts, seed=derive_seed(seed, 2)))
        ci95, ci99, se = res.conf_int(0.05), res.conf_int(0.01), res.se()
        est = res.params
        wrong = False
        for j, n in enumerate(names):
            row[f"estimate_{n}"] = float(est[n])
            row[f"covered_{n}"] = bool(ci95.loc[n, "lower"] <= psi[j] <= ci95.loc[n, "upper"])
            outside = not (ci99.loc[n, "lower"] <= psi[j] <= ci99.loc[n, "upper"])
            far = bool(np.isfinite(se[n]) and abs(est[n] - psi[j]) > 5 * se[n])
            wrong = wrong or outside or far
        row.update(converged=bool(res.converged), warned=bool(res.warnings), wrong=wrong, warnings=" | ".join(res.warnings))
    except Exception as exc:  # noqa: BLE001 - a fit that raises is a result here, reported as such
        row["error"] = f"{type(exc).__name__}: {exc}"
        for n in names:
            row[f"estimate_{n}"], row[f"covered_{n}"] = np.nan, False
    row["seconds"] = time.perf_counter() - started
    return row


def _local_recovery(boot, params, psi, u, se, alpha, param_names, n_stats, n_units, n_sims, ident):
    """Expected bias, spread and interval coverage from the k-step replicates at ``u``."""
    ok = boot.ok
    est_free, est_nat = boot.free[ok], boot.natural[ok]
    se_b = boot.se_free[ok] if boot.se_free is not None else np.broadcast_to(se, est_free.shape)
    z = float(sps.norm.ppf(1 - alpha / 2))
    covered = np.abs(est_free - u) <= z * se_b
    bias_free = np.nanmean(est_free, axis=0) - u
    recovery = pd.DataFrame(
        {
            "value": psi,
            "bias": np.nanmean(est_nat, axis=0) - psi,
            "rmse": np.sqrt(np.nanmean((est_nat - psi) ** 2, axis=0)),
            "bias_se": bias_free / np.where(se > 0, se, np.nan),
            "sd": np.nanstd(est_free, axis=0, ddof=1),
            "se": se,
            "coverage_wald": np.nanmean(np.where(np.isfinite(est_free), covered, np.nan), axis=0),
        },
        index=param_names,
    )
    recovery["sd_over_se"] = recovery["sd"] / recovery["se"]
    # On the natural scale, as the fit does: the bounds are natural (u and se are unconstrained: a
    # spread's log is below its bound 0 whenever the spread is below 1, however many se from 0).
    se_natural = se * np.abs(params.jacobian_diag(u))
    concerns = sandwich_concerns(params, psi, se_natural, n_stats, n_units, n_sims, ident.condition, ident.rank, [], alpha)
    # The default interval is the sandwich where no concern is raised, else the union of the
    # sandwich and the bootstrap-t intervals; the latter's half-width is about z se_b times the
    # bootstrap's own spread relative to the sandwich (sd / se), so the union's is z se_b max(1, sd / se).
    widen = np.ones(len(param_names))
    for j, name in enumerate(param_names):
        if concerns.general or concerns.by_parameter.get(name):
            widen[j] = max(1.0, float(recovery["sd_over_se"].iloc[j]))
    covered_default = np.abs(est_free - u) <= z * se_b * widen
    recovery["coverage_default"] = np.nanmean(np.where(np.isfinite(est_free), covered_default, np.nan), axis=0)
    recovery = recovery[["value", "bias", "rmse", "bias_se", "sd", "se", "sd_over_se", "coverage_wald", "coverage_default"]]
    return recovery, concerns


def recommend(result: CheckResult) -> list[str]:
    """Recommendations in words from a check's measurements."""
    out = []
    params = list(result.at.index)
    nominal = 1 - result.alpha
    if result.rank < len(params) or result.condition > 1e3:
        involved = ", ".join(k for k, v in result.weakest.items() if abs(v) > 0.3)
        out.append(
            f"Weak identification (condition number {result.condition:.3g}): the statistics barely determine the "
            f"combination of {involved}; add statistics that respond to these parameters, or fix some of them."
        )
    weak_stats = list(result.statistics.index[result.statistics["information_share"] < MIN_INFORMATION_SHARE])
    if weak_stats:
        out.append(
            f"Drop {', '.join(weak_stats)}: each carries under {MIN_INFORMATION_SHARE:.0%} of the information about "
            "every parameter and only adds noise to the weighting matrix."
        )
    sens = result.statistics[[f"sensitivity:{p}" for p in params]].abs()
    weak_direction = result.rank < len(params) or result.condition > 1e3
    for p in params:
        if weak_direction and abs(result.weakest[p]) > 0.3 and sens[f"sensitivity:{p}"].max() < 0.5:
            best = sens[f"sensitivity:{p}"].idxmax()
            out.append(
                f"Add a statistic that responds to {p}: none moves by half its simulation sd when {p} moves by one "
                f"standard error (the most, {best}, by {sens[f'sensitivity:{p}'].max():.2f})."
            )
    odd = result.statistics[(result.statistics["skew"].abs() > MAX_ABS_SKEW) | (result.statistics["excess_kurtosis"].abs() > MAX_ABS_KURTOSIS)]
    if len(odd):
        out.append(
            f"{', '.join(odd.index)} {'is' if len(odd) == 1 else 'are'} far from normal across simulated panels "
            "(|skew| > 1 or |excess kurtosis| > 3): a log or rank transform of the unit statistic, or aggregating over "
            "more units, helps the weighting and the synthetic likelihood of simfit.sample(method='bsl')."
        )
    if result.roughness.rough:
        rough = ", ".join(params[j] for j in result.roughness.rough)
        out.append(
            f"The objective is rough along {rough} (common random numbers do not make it smooth): use more "
            "simulations S, larger finite-difference steps (the fit enlarges them to the noise), or simfit.sample."
        )
    rec = result.recovery
    biased = [p for p in params if abs(rec.loc[p, "bias_se"]) > MAX_BIAS_SE]
    if biased:
        out.append(
            "Expected bias above {:.1f} standard errors for {}: more simulations S reduce the part due to simulation; "
            "statistics closer to the parameters (st.nls, st.projected) reduce the rest.".format(MAX_BIAS_SE, ", ".join(biased))
        )
    short = [p for p in params if rec.loc[p, "coverage_wald"] < nominal - 0.03]
    if short:
        expected = ", ".join(f"{rec.loc[p, 'coverage_wald']:.2f}" for p in short)
        out.append(
            f"Sandwich intervals are expected to under-cover for {', '.join(short)} ({expected}): "
            "keep the default intervals (conf_int(method='auto') uses the bootstrap where the diagnostics ask) or "
            "fit with bootstrap=200."
        )
    still = [p for p in params if rec.loc[p, "coverage_default"] < nominal - 0.03]
    if still:
        out.append(
            f"Even the default intervals are expected to under-cover for {', '.join(still)}: the estimates are "
            "far from normal there; report a posterior (simfit.sample) or improve the statistics for them."
        )
    if result.screen is not None:
        out.extend(r[0].upper() + r[1:] + "." for r in result.screen.reasons())
    if result.fits is not None and len(result.fits):
        f = result.full_fit_summary()
        if f["wrong"] > 0.05 or f["errors"]:
            out.append(
                f"Full fits went wrong in {f['wrong']:.0%} of the simulated datasets ({f['silent_wrong']:.0%} without saying so) "
                f"and raised in {f['errors']}: the fit's own warnings name why (result.fits['warnings']); the local "
                "figures above do not see this."
            )
        elif f["converged"] < 0.9:
            out.append(f"Only {f['converged']:.0%} of the full fits converged: see result.fits['warnings'].")
    if result.concerns and not short:
        out.append("The sandwich may be optimistic (" + "; ".join(result.concerns) + "); the default intervals use the bootstrap there.")
    return out
