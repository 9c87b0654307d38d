"""Result of an indirect-inference fit: estimates, uncertainty, tests and diagnostics.

:class:`FitResult` holds plain data (estimates on both scales, the sandwich covariance on the
unconstrained scale, the Jacobian, the weighting, the simulated covariance of the statistics) and
computes uncertainty on request: ``se()``, ``cov()``, ``conf_int(alpha, method=...)``, so another
method or level needs no refit. ``summary()`` prints a statsmodels-style table; ``to_frame()`` and
``to_dict()`` give the numbers as data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from simfit import intervals
from simfit.bootstrap import BootstrapDraws
from simfit.convergence import ConvergenceCheck
from simfit.inference import Identification, JTest
from simfit.intervals import SandwichConcerns
from simfit.model import Model
from simfit.optimizers import OptimizerResult
from simfit.screen import StatisticsScreen

__all__ = ["FitResult", "StepRecord", "format_number", "J_REJECT", "J_REJECT_SIMULATED"]

#: A J test rejecting below this p-value is a WARNING: the model cannot match the statistics;
#: unless more than this share of the panels simulated at the estimate have a J as large (the
#: chi-square tail is too thin for heavy-tailed statistics; 500 panels resolve shares of 0.002).
J_REJECT = 0.001
J_REJECT_SIMULATED = 0.002


def format_number(value: float, width: int, decimals: int = 4) -> str:
    """``value`` right-aligned in ``width`` characters with at least one space before it, so that
    columns of a table never run together: fixed-point where that reads well, else scientific with
    ``decimals`` significant digits, fewer where the exponent needs the room (``-1.7e+308`` in 10
    characters); ``inf``/``-inf``/``nan`` as such."""
    v = float(value)
    room = width - 1
    if not np.isfinite(v):
        text = "nan" if np.isnan(v) else ("inf" if v > 0 else "-inf")
    else:
        text = f"{v:.{decimals}f}"
        if not (v == 0 or 1e-4 <= abs(v) < 1e6) or len(text) > room:
            for digits in range(max(decimals - 1, 1), -1, -1):
                text = f"{v:.{digits}e}"
                if len(text) <= room:
                    break
    return f" {text}" if len(text) > room else f"{text:>{width}}"


@dataclass(frozen=True)
class StepRecord:
    """One optimisation step of a fit (first step, optimal-weighting steps)."""

    label: str
    result: OptimizerResult
    params: np.ndarray


@dataclass(frozen=True, eq=False)
class FitResult:
    """An indirect-inference estimate.

    Attributes
    ----------
    model : Model
    names : tuple of str
        Statistic names.
    observed, simulated : ndarray, shape (n_stats,)
        Observed statistics and the mean of the ``S`` simulated panels' at the estimate.
    free : ndarray, shape (n_params,)
        Estimate on the unconstrained scale.
    cov_free : ndarray, shape (n_params, n_params)
        Sandwich covariance on the unconstrained scale (with the ``1 + 1/S`` factor).
    jacobian : ndarray, shape (n_stats, n_params)
        d mean simulated statistics / d free parameters at the estimate.
    weight : ndarray, shape (n_stats, n_stats)
        Weighting matrix of the final step.
    omega : ndarray, shape (n_stats, n_stats)
        Covariance of one panel's statistics, simulated at the estimate.
    jtest : JTest or None
        Over-identification test (optimal weighting only).
    identification : Identification
    steps : tuple of StepRecord
    options : FitOptions
    seconds : float
        Wall time of the fit (including compilation, reported apart in ``compile_seconds``).
    bootstrap : BootstrapDraws or None
        Parametric-bootstrap replicates (k-step or full), when the fit ran them.
    n_obs, n_units : int
        Size of the fitted panel.
    statistics : Statistics
        The auxiliary statistics that were matched.
    design : Panel
        The design of the fitted panel (without values), for simulations at the estimate.
    n_simulations : int
        Panels simulated by the fit in all (global phase, optimisation, covariances, checks,
        k-step bootstrap; a full bootstrap's re-fits are not counted).
    convergence : ConvergenceCheck or None
        The convergence verdict and its reasons (see :mod:`simfit.convergence`).
    local_solutions : DataFrame or None
        One row per local optimisation of the first step (from the global phase's best points):
        solution, objective, distance to the estimate in standard errors, whether it agrees.
    concerns : SandwichConcerns or None
        Why the sandwich intervals may be optimistic (see :mod:`simfit.intervals`).
    profiles : dict of str to ProfileCurve
        For parameters estimated on a bound: the distance statistic away from it (one-sided
        intervals).
    unit_fit_failures : dict of str to int
        For auxiliary-model statistics (``st.nls``, ``st.glm``): observed units whose fit failed,
        by flag name (e.g. ``{"conc.nls.converged": 2}``); they are left out of the aggregates,
        on observed and simulated panels alike.
    unit_fit_reasons : dict of str to dict
        The same by reason (``{"conc.nls.converged": {"did not converge": 1, ...}}``).
    screen : StatisticsScreen or None
        The screen of the statistics simulated at the estimate (heavy tails, observed values far
        out on a robust scale, failing auxiliary fits; see :mod:`simfit.screen`).
    calibration : tuple of str
        What the statistics took from the observed data before the fit (auxiliary fits centred
        on the observed units' median fit), in words.
    fit_warnings : tuple of str
        What the fit found that may make the estimate wrong besides convergence (a rival local
        solution the data cannot tell apart); part of :attr:`warnings`.
    rejected : dict of str to int
        Parameter values rejected because a simulated statistic was NaN or infinite there (NaN or
        infinite simulator output, or a statistic undefined on a simulated panel), by phase:
        ``"global phase"`` (points of the screening sample, of ``options.global_points``; when all
        are, the local optimisation started from the start alone) and ``"optimisation"``
        (evaluations of the steps in ``steps``, penalised; these include points where a parameter
        reached its bound). A kernel raising an exception is not a rejection: it stops the fit
        with a :class:`~simfit.errors.KernelError`.
    """

    model: Model
    names: tuple[str, ...]
    observed: np.ndarray
    simulated: np.ndarray
    free: np.ndarray
    cov_free: np.ndarray
    jacobian: np.ndarray
    weight: np.ndarray
    omega: np.ndarray
    jtest: JTest | None
    identification: Identification
    steps: tuple[StepRecord, ...]
    options: object
    seconds: float
    compile_seconds: float = 0.0
    bootstrap: BootstrapDraws | None = None
    n_obs: int = 0
    n_units: int = 0
    statistics: object = None
    design: object = None
    n_simulations: int = 0
    convergence: ConvergenceCheck | None = None
    local_solutions: pd.DataFrame | None = None
    concerns: SandwichConcerns | None = None
    profiles: dict = field(default_factory=dict)
    unit_fit_failures: dict = field(default_factory=dict)
    unit_fit_reasons: dict = field(default_factory=dict)
    screen: StatisticsScreen | None = None
    calibration: tuple = ()
    fit_warnings: tuple = ()
    rejected: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ estimates

    @property
    def param_names(self) -> list[str]:
        return list(self.model.param_names)

    @property
    def params(self) -> pd.Series:
        """Estimates on the natural scale."""
        return pd.Series(self.model.params.to_natural(self.free), index=self.param_names, name="estimate")

    @property
    def at_bound(self) -> list[str]:
        """Parameters estimated on (within rounding of) a finite bound, e.g. a spread at 0."""
        return self.model.params.on_bound(self.params.to_numpy())

    @property
    def bootstrap_estimates(self) -> np.ndarray | None:
        """Parametric-bootstrap estimates on the natural scale, shape (n_boot, n_params), or None."""
        return None if self.bootstrap is None else self.bootstrap.natural

    @property
    def converged(self) -> bool:
        """The optimizer's criteria hold, the solution moved from the start (or the start is the
        optimum) and the objective is neither flat nor noise at it (``convergence.reasons``)."""
        if self.convergence is None:
            return bool(self.steps[-1].result.success)
        return self.convergence.ok

    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything that may make this result wrong, in words, each with what helps: the
        reasons it is not converged, rival solutions, a J test rejecting at 0.1%, standard errors
        that are not finite. The summary prints each as a WARNING line; empty for a fit with
        nothing to report."""
        out = []
        if not self.converged:
            reasons = self.convergence.reasons if self.convergence is not None else (self.message,)
            out.extend(f"not converged: {r}" for r in reasons)
        out.extend(self.fit_warnings)
        if self.jtest is not None and self.jtest.df > 0 and self.jtest.pvalue < J_REJECT and not (
            self.jtest.n_simulated and self.jtest.pvalue_simulated > J_REJECT_SIMULATED
        ):
            out.append(
                f"the J test rejects the model and statistics at p = {self.jtest.pvalue:.2g}: the model cannot match the "
                "observed statistics all at once (see the statistics table), so the estimate and its intervals describe a "
                "model that does not fit these data; check the model, or statistics it cannot reproduce"
            )
        se = np.sqrt(np.diag(self.cov_free))
        at_bound = set(self.at_bound)
        infinite = [n for n, v in zip(self.param_names, se) if not np.isfinite(v) and n not in at_bound]
        if infinite:
            out.append(
                f"the standard error of {', '.join(infinite)} is not finite: the statistics do not move "
                f"{'it' if len(infinite) == 1 else 'them'} at the estimate (Jacobian rank {self.identification.rank} of "
                f"{len(self.param_names)}), so the data say nothing about {'it' if len(infinite) == 1 else 'them'} here; "
                "add statistics that respond, or fix the parameter"
            )
        return tuple(out)

    @property
    def message(self) -> str:
        return self.steps[-1].result.message

    @property
    def nfev(self) -> int:
        return int(sum(s.result.nfev for s in self.steps))

    # ------------------------------------------------------------------ uncertainty

    def cov(self, method: str = "sandwich") -> pd.DataFrame:
        """Covariance of the estimates on the natural scale.

        ``"sandwich"``: delta method through the transforms; ``"bootstrap"``: covariance of the
        parametric-bootstrap estimates.
        """
        if method == "sandwich":
            d = self.model.params.jacobian_diag(self.free)
            with np.errstate(invalid="ignore"):  # infinite variance times a zero derivative: NaN
                c = self.cov_free * np.outer(d, d)
        elif method == "bootstrap":
            c = np.cov(self._bootstrap(), rowvar=False, ddof=1)
        else:
            raise ValueError(f"Unknown method {method!r}; use 'sandwich' or 'bootstrap'.")
        return pd.DataFrame(np.atleast_2d(c), index=self.param_names, columns=self.param_names)

    def se(self, method: str = "sandwich") -> pd.Series:
        """Standard errors on the natural scale (``"sandwich"`` or ``"bootstrap"``).

        NaN for an estimate on a bound, where no standard error describes its uncertainty (its
        interval is one-sided, see :meth:`conf_int`).
        """
        se = np.sqrt(np.diag(self.cov(method).to_numpy()))
        for name in self.at_bound:
            se[self.param_names.index(name)] = np.nan
        return pd.Series(se, index=self.param_names, name="se")

    @property
    def bse(self) -> pd.Series:
        """Sandwich standard errors (statsmodels' name)."""
        return self.se()

    def interval_methods(self, method: str = "auto") -> pd.Series:
        """The interval method each parameter gets from ``conf_int(method=method)``.

        ``auto``: ``one-sided`` for an estimate on a bound, ``union`` (of the ``wald`` and the
        bootstrap intervals) where :attr:`concerns` name a reason, ``wald`` elsewhere (and where
        the fit ran no bootstrap).
        """
        method = intervals.canonical_method(method)
        at_bound = set(self.at_bound)
        out = []
        for name in self.param_names:
            if method != "auto":
                out.append("one-sided" if method == "one-sided" and name in at_bound else method)
                continue
            if name in at_bound and name in self.profiles:
                out.append("one-sided")
            elif self.concerns is not None and self.concerns.for_parameter(name) and self._has_bootstrap(name):
                out.append("union")
            else:
                out.append("wald")
        return pd.Series(out, index=self.param_names, name="method")

    def _has_bootstrap(self, name: str) -> bool:
        if self.bootstrap is None:
            return False
        return int(np.isfinite(self.bootstrap.natural[:, self.param_names.index(name)]).sum()) >= 20

    def conf_int(self, alpha: float = 0.05, method: str = "auto") -> pd.DataFrame:
        """Confidence intervals with coverage ``1 - alpha``, natural scale.

        Parameters
        ----------
        alpha : float
        method : str
            ``"auto"`` (default): the sandwich where it can be trusted, the bootstrap where the
            fit's diagnostics say it cannot, a one-sided interval for an estimate on a bound;
            ``"wald"`` (alias ``"transform"``): the sandwich on the unconstrained scale mapped
            back; ``"delta"``: symmetric ``estimate +- z se``; ``"percentile"`` (alias
            ``"bootstrap"``) and ``"bootstrap-t"``: from the parametric bootstrap;
            ``"one-sided"``: ``[bound, upper]`` for estimates on a bound (others: ``wald``). See
            :mod:`simfit.intervals`.

        Returns
        -------
        DataFrame
            Columns ``lower``, ``upper`` and ``method`` (the method each row used), one row per
            parameter.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        methods = self.interval_methods(method)
        params = self.model.params
        se_free = np.sqrt(np.diag(self.cov_free))
        lower = np.full(len(params), np.nan)
        upper = np.full(len(params), np.nan)
        cache = {}
        for j, (name, m) in enumerate(methods.items()):
            if m == "one-sided" and name in self.profiles:
                curve = self.profiles[name]
                far = curve.limit(alpha)
                lower[j], upper[j] = min(curve.bound, far), max(curve.bound, far)
                continue
            if m == "one-sided":
                m = "wald"
            if m not in cache:
                if m == "wald":
                    cache[m] = intervals.wald(params, self.free, se_free, alpha)
                elif m == "delta":
                    cache[m] = intervals.delta(self.params.to_numpy(), self.se().to_numpy(), alpha)
                elif m == "percentile":
                    cache[m] = intervals.percentile(self._bootstrap_draws().natural, alpha)
                elif m == "bootstrap-t":
                    draws = self._bootstrap_draws()
                    if draws.se_free is None:
                        raise ValueError("These bootstrap replicates have no standard errors of their own (n_sims >= 2 is needed).")
                    cache[m] = intervals.bootstrap_t(params, self.free, se_free, draws.free, draws.se_free, alpha)
                elif m == "union":
                    draws = self._bootstrap_draws()
                    if draws.se_free is not None:
                        boot = intervals.bootstrap_t(params, self.free, se_free, draws.free, draws.se_free, alpha)
                    else:
                        boot = intervals.percentile(draws.natural, alpha)
                    lo_w, hi_w = intervals.wald(params, self.free, se_free, alpha)
                    cache[m] = (np.fmin(lo_w, boot[0]), np.fmax(hi_w, boot[1]))
            lower[j], upper[j] = cache[m][0][j], cache[m][1][j]
        return pd.DataFrame({"lower": lower, "upper": upper, "method": methods.to_numpy()}, index=self.param_names)

    @property
    def bootstrap_failures(self) -> int:
        """Bootstrap replicates that failed or did not converge (left out of bootstrap results)."""
        return 0 if self.bootstrap is None else self.bootstrap.failures

    def _bootstrap_draws(self) -> BootstrapDraws:
        if self.bootstrap is None:
            raise ValueError(
                "No bootstrap replicates: fit again with bootstrap=B (e.g. 200); the k-step bootstrap "
                "(bootstrap_method='kstep', the default) costs a few fits."
            )
        return self.bootstrap

    def _bootstrap(self) -> np.ndarray:
        draws = self._bootstrap_draws()
        return draws.natural[draws.ok]

    # ------------------------------------------------------------------ statistics

    def statistics_table(self) -> pd.DataFrame:
        """Observed and simulated statistics, their difference and the difference in units of
        its standard deviation ``sqrt((1 + 1/S) omega_jj)``."""
        n_sims = self.options.n_sims
        sd = np.sqrt((1.0 + 1.0 / n_sims) * np.diag(self.omega))
        diff = self.observed - self.simulated
        frame = pd.DataFrame(
            {"observed": self.observed, "simulated": self.simulated, "difference": diff, "std_difference": diff / sd},
            index=list(self.names),
        )
        if self.screen is not None:
            # On a robust scale too: outliers among the simulated panels inflate sd, not this.
            frame["robust_z"] = self.screen.robust_z
            frame["heavy_tails"] = [n in self.screen.heavy for n in self.names]
        return frame

    def sensitivity(self) -> pd.DataFrame:
        """Which statistics move which parameter: standardised Jacobian (statistics x parameters)."""
        return pd.DataFrame(self.identification.sensitivity, index=list(self.names), columns=self.param_names)

    # ------------------------------------------------------------------ population

    def population_summary(self, alpha: float = 0.1, **options) -> pd.DataFrame:
        """Implied population distribution of every entity-level parameter, with uncertainty.

        Mean, median, mode, sd and 5%/95% quantiles of each parameter's population distribution
        at the estimate, their delta-method standard errors and ``1 - alpha`` intervals: see
        :func:`simfit.population_summary.population_summary`, which takes ``options``.

        Returns
        -------
        DataFrame
            Index (``parameter``, ``summary``), e.g. ``("unit.rate", "mean")``; columns
            ``estimate``, ``se``, ``lower``, ``upper``.
        """
        from simfit.population_summary import population_summary

        return population_summary(self, alpha=alpha, **options)

    def _population_lines(self) -> list[str]:
        """The section of :meth:`summary` on the population distribution of entity parameters."""
        from simfit.errors import SimfitError
        from simfit.population_summary import SUMMARY_NAMES

        title = "Population distribution of unit-level parameters"
        try:
            frame = self.population_summary(interval="delta")
        except SimfitError as exc:
            return [f"{title}: not available ({' '.join(str(exc).split())})"]
        names = list(dict.fromkeys(frame.index.get_level_values("parameter")))
        width = max(12, max(len(n) for n in names) + 1)
        lines = [f"{title} (standard errors in parentheses)"]
        lines.append(f"{'':<{width}}" + "".join(f"{s:>11}" for s in SUMMARY_NAMES))
        for name in names:
            rows = frame.loc[name]
            lines.append(f"{name:<{width}}" + "".join(f"{rows.loc[s, 'estimate']:>11.4g}" for s in SUMMARY_NAMES))
            lines.append(f"{'':<{width}}" + "".join(f"{'(' + format(rows.loc[s, 'se'], '.3g') + ')':>11}" for s in SUMMARY_NAMES))
        return lines

    # ------------------------------------------------------------------ views

    def to_frame(self, alpha: float = 0.05, method: str = "auto") -> pd.DataFrame:
        """One row per parameter: estimate, se, z, p-value, interval and the interval's method."""
        est = self.params
        se = self.se()
        ci = self.conf_int(alpha, method)
        with np.errstate(invalid="ignore", divide="ignore"):
            zval = est / se
        return pd.DataFrame(
            {
                "estimate": est,
                "se": se,
                "z": zval,
                "p_value": 2 * stats.norm.sf(np.abs(zval)),
                f"ci_lower_{1 - alpha:g}": ci["lower"],
                f"ci_upper_{1 - alpha:g}": ci["upper"],
                "ci_method": ci["method"],
            }
        )

    def to_dict(self) -> dict:
        """Plain-data summary (JSON-serialisable)."""
        ci = self.conf_int()
        out = {
            "model": self.model.name,
            "params": self.params.to_dict(),
            "se": self.se().to_dict(),
            "conf_int_95": {k: [float(v["lower"]), float(v["upper"])] for k, v in ci.iterrows()},
            "conf_int_method": ci["method"].to_dict(),
            "converged": self.converged,
            "convergence_reasons": [] if self.convergence is None else list(self.convergence.reasons),
            "message": self.message,
            "nfev": self.nfev,
            "seconds": self.seconds,
            "n_sims": self.options.n_sims,
            "seed": self.options.seed,
            "weighting": self.options.weighting.name,
            "optimizer": self.options.optimizer.name,
            "jtest": None if self.jtest is None else {"statistic": self.jtest.statistic, "df": self.jtest.df, "pvalue": self.jtest.pvalue},
            "condition_number": self.identification.condition,
            "at_bound": self.at_bound,
            "unit_fit_failures": dict(self.unit_fit_failures),
            "fixed": dict(self.model.fixed),
            "warnings": list(self.warnings),
            "rejected": dict(self.rejected),
        }
        projection = getattr(self.statistics, "projection", None)
        if projection is not None:
            out["projection"] = projection.to_dict()
        if self.bootstrap is not None:
            out["se_bootstrap"] = self.se("bootstrap").to_dict()
            out["bootstrap"] = {"method": self.bootstrap.method, "replicates": self.bootstrap.n_boot, "failures": self.bootstrap_failures}
            out["bootstrap_failures"] = self.bootstrap_failures
        return out

    def summary(self, alpha: float = 0.05, method: str = "auto") -> str:
        """A readable text table in the manner of statsmodels; intervals by ``method``."""
        frame = self.to_frame(alpha, method)
        width = 86
        lines = ["=" * width, f"{'Indirect inference results':^{width}}", "=" * width]
        left = [
            ("Model:", self.model.name),
            ("Units:", str(self.n_units)),
            ("Observations:", str(self.n_obs)),
            ("Statistics:", str(len(self.names))),
            ("Simulations S:", str(self.options.n_sims)),
        ]
        right = [
            ("Weighting:", self.options.weighting.name),
            ("Optimizer:", self.options.optimizer.name),
            ("Converged:", "yes" if self.converged else "NO"),
            ("Evaluations:", str(self.nfev)),
            ("Time (s):", f"{self.seconds:.3f}"),
        ]
        for (a, b), (c, d) in zip(left, right):
            lines.append(f"{a:<16}{b:>24}   {c:<16}{d:>27}")
        lines.append("-" * width)
        lo_name, hi_name = frame.columns[-3], frame.columns[-2]
        header = (
            f"{'':<14}{'estimate':>11}{'se':>11}{'z':>9}{'P>|z|':>9}"
            f"{'[' + format(alpha / 2, 'g'):>12}{format(1 - alpha / 2, 'g') + ']':>11}{'interval':>9}"
        )
        lines.append(header)
        short = {"wald": "wald", "delta": "delta", "percentile": "pctl", "bootstrap-t": "boot-t", "union": "union", "one-sided": "1-sided"}
        for name, row in frame.iterrows():
            lines.append(
                f"{name[:13]:<14}{format_number(row['estimate'], 11)}{format_number(row['se'], 11)}"
                f"{format_number(row['z'], 9, 2)}{format_number(row['p_value'], 9, 3)}"
                f"{format_number(row[lo_name], 12)}{format_number(row[hi_name], 11)}{short[row['ci_method']]:>9}"
            )
        lines.append("-" * width)
        lines.extend(self._interval_lines(alpha, frame["ci_method"]))
        if self.jtest is not None:
            lines.append(f"J test: {self.jtest}")
            if self.screen is not None and self.screen.heavy:
                lines.append(
                    f"  (computed from variances that heavy tails inflate, of {', '.join(self.screen.heavy)}: it and the std "
                    "diffs below understate the mismatch; see the robust z column)"
                )
        else:
            lines.append("J test: available with optimal weighting only")
        lines.append(
            f"Identification: Jacobian rank {self.identification.rank} of {len(self.param_names)}, "
            f"condition number {self.identification.condition:.3g}"
        )
        if self.model.fixed:
            lines.append("Fixed (not estimated): " + ", ".join(f"{k} = {v:g}" for k, v in self.model.fixed.items()))
        for line in self.warnings:
            lines.append(f"WARNING: {line}.")
        if self.convergence is not None:
            for note in self.convergence.notes:
                lines.append(f"Note: {note}.")
        for note in self.calibration:
            lines.append(f"Note: auxiliary fit {note}.")
        for flag, reasons in self.unit_fit_reasons.items():
            if reasons:
                lines.append(
                    f"Note: the auxiliary model {flag.rsplit('.', 1)[0]} failed on "
                    + ", ".join(f"{count} of {self.n_units} observed units ({why})" for why, count in reasons.items())
                    + "; they are left out of its aggregates."
                )
        lines.extend(self._rejected_lines())
        if self.local_solutions is not None:
            n_runs = len(self.local_solutions)
            n_agree = int(self.local_solutions["agrees"].sum())
            lines.append(f"Local optimisations: {n_runs}, {n_agree} agree with the estimate (result.local_solutions).")
        lines.append("=" * width)
        lines.extend(self._population_lines())
        lines.append("=" * width)
        table = self.statistics_table()
        label = max(28, max((len(n) for n in table.index), default=0) + 1)  # full names, never cut
        robust = "robust_z" in table
        lines.append(
            f"{'statistic':<{label}}{'observed':>12}{'simulated':>12}{'diff':>12}{'std diff':>10}" + (f"{'robust z':>10}" if robust else "")
        )
        for name, row in table.iterrows():
            lines.append(
                f"{name:<{label}}{row['observed']:>12.4g}{row['simulated']:>12.4g}"
                f"{row['difference']:>12.3g}{row['std_difference']:>10.2f}"
                + (f"{row['robust_z']:>10.2f}" + (" heavy tails" if row["heavy_tails"] else "") if robust else "")
            )
        lines.append("=" * width)
        return "\n".join(lines)

    def _rejected_lines(self) -> list[str]:
        """What the summary says about parameter values rejected for non-finite statistics."""
        screened, evaluations = self.rejected.get("global phase", 0), self.rejected.get("optimisation", 0)
        counts = []
        if screened:
            counts.append(f"{screened} of {self.options.global_points} points of the global phase")
        if evaluations:
            counts.append(f"{evaluations} of {self.nfev} evaluations of the optimisation")
        lines = []
        if counts:
            lines.append(f"Note: rejected parameter values (a simulated statistic NaN or infinite): {', '.join(counts)}.")
        if screened and screened >= self.options.global_points:
            lines.append(
                "Note: no point of the global phase had finite statistics; the local optimisation started from the start alone."
            )
        return lines

    def _interval_lines(self, alpha: float, methods: pd.Series) -> list[str]:
        """What the summary says about its intervals: which method, and why."""
        used = set(methods)
        lines = []
        if "wald" in used:
            lines.append("Intervals wald: sandwich on the unconstrained scale, mapped back.")
        if used & {"percentile", "bootstrap-t", "union"}:
            b = self.bootstrap
            kind = f"{b.steps}-step" if b.method == "kstep" else "re-fitted"
            lines.append(f"Bootstrap: {b.n_boot - b.failures} {kind} parametric replicates"
                         + (" (studentised: boot-t)." if b.se_free is not None else " (percentile: pctl)."))
            if "union" in used:
                lines.append("Intervals union: the smallest interval holding both the wald and the bootstrap one, because")
                reasons = self.concerns.general if self.concerns is not None else ()
                near = [n for n, m in methods.items() if m == "union" and self.concerns is not None and self.concerns.by_parameter.get(n)]
                lines.append("  the sandwich may be optimistic here: " + "; ".join(
                    list(reasons) + [f"{n} near a bound" for n in near]) + ".")
        elif self.concerns is not None and self.concerns.any and self.bootstrap is None:
            lines.append(
                "Note: the sandwich may be optimistic here (" + "; ".join(self.concerns.general + tuple(
                    f"{k}: {', '.join(v)}" for k, v in self.concerns.by_parameter.items())) + "); fit with bootstrap='auto' or bootstrap=200."
            )
        for name, m in methods.items():
            if m == "one-sided":
                lines.append(
                    f"Note: {name} is estimated on its bound; its interval is one-sided ({1 - alpha:g}), from the "
                    "distance statistic (a posterior from simfit.sample describes its uncertainty too)."
                )
            elif name in self.at_bound:
                lines.append(f"Note: {name} is estimated on its bound; its standard error and interval are not meaningful there.")
            elif self.concerns is not None and "near a bound" in self.concerns.by_parameter.get(name, ()):
                lines.append(f"Note: {name} is near a bound.")
        return lines

    def __repr__(self) -> str:
        est = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"<FitResult {self.model.name}: {est}; converged={self.converged}>"
