"""Result of an indirect-inference fit: estimates, uncertainty, tests and diagnostics.

:class:`FitResult` holds plain data (estimates on both scales, the sandwich covariance on the
unconstrained scale, the Jacobian, the weighting, the simulated covariance of the statistics) and
computes uncertainty on request: ``se()``, ``cov()``, ``conf_int(alpha, method=...)``, so another
method or level needs no refit. ``summary()`` prints a statsmodels-style table; ``to_frame()`` and
``to_dict()`` give the numbers as data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from simfit.inference import Identification, JTest
from simfit.model import Model
from simfit.optimizers import OptimizerResult

__all__ = ["FitResult", "StepRecord"]


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
    bootstrap_estimates : ndarray, shape (n_boot, n_params), or None
        Parametric-bootstrap estimates (natural scale).
    n_obs, n_units : int
        Size of the fitted panel.
    statistics : Statistics
        The auxiliary statistics that were matched.
    design : Panel
        The design of the fitted panel (without values), for simulations at the estimate.
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
    bootstrap_estimates: np.ndarray | None = None
    n_obs: int = 0
    n_units: int = 0
    statistics: object = None
    design: object = None

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
        out = []
        for p, v in zip(self.model.params, self.params.to_numpy()):
            for b in p.bounds:
                if np.isfinite(b) and abs(v - b) <= 1e-10 * (1.0 + abs(b)):
                    out.append(p.name)
                    break
        return out

    @property
    def converged(self) -> bool:
        return bool(self.steps[-1].result.success)

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
        parametric-bootstrap estimates (needs ``bootstrap > 0`` when fitting).
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
        """Standard errors on the natural scale (``"sandwich"`` or ``"bootstrap"``)."""
        return pd.Series(np.sqrt(np.diag(self.cov(method).to_numpy())), index=self.param_names, name="se")

    @property
    def bse(self) -> pd.Series:
        """Sandwich standard errors (statsmodels' name)."""
        return self.se()

    def conf_int(self, alpha: float = 0.05, method: str = "transform") -> pd.DataFrame:
        """Confidence intervals with coverage ``1 - alpha``.

        Methods: ``"transform"`` (default) a Wald interval on the unconstrained scale mapped back,
        which respects the bounds; ``"delta"`` the symmetric interval ``estimate +- z * se``;
        ``"bootstrap"`` percentile intervals of the parametric bootstrap.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        z = stats.norm.ppf(1 - alpha / 2)
        if method == "transform":
            half = z * np.sqrt(np.diag(self.cov_free))
            lo = self.model.params.to_natural(self.free - half)
            hi = self.model.params.to_natural(self.free + half)
            lower, upper = np.minimum(lo, hi), np.maximum(lo, hi)
        elif method == "delta":
            se = self.se().to_numpy()
            lower, upper = self.params.to_numpy() - z * se, self.params.to_numpy() + z * se
        elif method == "bootstrap":
            draws = self._bootstrap()
            lower, upper = np.nanquantile(draws, alpha / 2, axis=0), np.nanquantile(draws, 1 - alpha / 2, axis=0)
        else:
            raise ValueError(f"Unknown method {method!r}; use 'transform', 'delta' or 'bootstrap'.")
        return pd.DataFrame({"lower": lower, "upper": upper}, index=self.param_names)

    @property
    def bootstrap_failures(self) -> int:
        """Bootstrap draws whose fit failed or did not converge (left out of bootstrap results)."""
        if self.bootstrap_estimates is None:
            return 0
        return int(np.sum(~np.all(np.isfinite(self.bootstrap_estimates), axis=1)))

    def _bootstrap(self) -> np.ndarray:
        if self.bootstrap_estimates is None:
            raise ValueError("No bootstrap estimates: fit again with bootstrap=B (e.g. 200).")
        draws = self.bootstrap_estimates
        return draws[np.all(np.isfinite(draws), axis=1)]

    # ------------------------------------------------------------------ statistics

    def statistics_table(self) -> pd.DataFrame:
        """Observed and simulated statistics, their difference and the difference in units of
        its standard deviation ``sqrt((1 + 1/S) omega_jj)``."""
        n_sims = self.options.n_sims
        sd = np.sqrt((1.0 + 1.0 / n_sims) * np.diag(self.omega))
        diff = self.observed - self.simulated
        return pd.DataFrame(
            {"observed": self.observed, "simulated": self.simulated, "difference": diff, "std_difference": diff / sd},
            index=list(self.names),
        )

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

    def to_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per parameter: estimate, se, z, p-value, interval."""
        est = self.params
        se = self.se()
        ci = self.conf_int(alpha)
        zval = est / se
        return pd.DataFrame(
            {
                "estimate": est,
                "se": se,
                "z": zval,
                "p_value": 2 * stats.norm.sf(np.abs(zval)),
                f"ci_lower_{1 - alpha:g}": ci["lower"],
                f"ci_upper_{1 - alpha:g}": ci["upper"],
            }
        )

    def to_dict(self) -> dict:
        """Plain-data summary (JSON-serialisable)."""
        out = {
            "model": self.model.name,
            "params": self.params.to_dict(),
            "se": self.se().to_dict(),
            "conf_int_95": {k: [float(v["lower"]), float(v["upper"])] for k, v in self.conf_int().iterrows()},
            "converged": self.converged,
            "message": self.message,
            "nfev": self.nfev,
            "seconds": self.seconds,
            "n_sims": self.options.n_sims,
            "seed": self.options.seed,
            "weighting": self.options.weighting.name,
            "optimizer": self.options.optimizer.name,
            "jtest": None if self.jtest is None else {"statistic": self.jtest.statistic, "df": self.jtest.df, "pvalue": self.jtest.pvalue},
            "condition_number": self.identification.condition,
        }
        if self.bootstrap_estimates is not None:
            out["se_bootstrap"] = self.se("bootstrap").to_dict()
            out["bootstrap_failures"] = self.bootstrap_failures
        return out

    def summary(self, alpha: float = 0.05) -> str:
        """A readable text table in the manner of statsmodels."""
        frame = self.to_frame(alpha)
        width = 78
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
            lines.append(f"{a:<16}{b:>20}   {c:<16}{d:>22}")
        lines.append("-" * width)
        lo_name, hi_name = frame.columns[-2], frame.columns[-1]
        header = f"{'':<14}{'estimate':>11}{'se':>11}{'z':>9}{'P>|z|':>9}{'[' + format(alpha / 2, 'g'):>12}{format(1 - alpha / 2, 'g') + ']':>12}"
        lines.append(header)
        for name, row in frame.iterrows():
            lines.append(
                f"{name:<14}{row['estimate']:>11.4f}{row['se']:>11.4f}{row['z']:>9.2f}{row['p_value']:>9.3f}"
                f"{row[lo_name]:>12.4f}{row[hi_name]:>12.4f}"
            )
        lines.append("-" * width)
        if self.jtest is not None:
            lines.append(f"J test of over-identifying restrictions: {self.jtest}")
        else:
            lines.append("J test: available with optimal weighting only")
        lines.append(
            f"Identification: Jacobian rank {self.identification.rank} of {len(self.param_names)}, "
            f"condition number {self.identification.condition:.3g}"
        )
        if not self.converged:
            lines.append(f"WARNING: the optimizer did not converge: {self.message}")
        for name in self.at_bound:
            lines.append(
                f"Note: {name} is estimated on its bound; its standard error and interval are not "
                "meaningful there (a posterior from simfit.sample describes its uncertainty)."
            )
        lines.append("=" * width)
        lines.extend(self._population_lines())
        lines.append("=" * width)
        table = self.statistics_table()
        lines.append(f"{'statistic':<28}{'observed':>12}{'simulated':>12}{'diff':>12}{'std diff':>10}")
        for name, row in table.iterrows():
            lines.append(
                f"{name[:27]:<28}{row['observed']:>12.4g}{row['simulated']:>12.4g}"
                f"{row['difference']:>12.3g}{row['std_difference']:>10.2f}"
            )
        lines.append("=" * width)
        return "\n".join(lines)

    def __repr__(self) -> str:
        est = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"<FitResult {self.model.name}: {est}; converged={self.converged}>"
