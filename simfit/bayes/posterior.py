"""Posterior draws of the population parameters and what they tell.

:class:`Posterior` holds draws on the natural scale, shaped ``(chain, draw, parameter)`` as ArviZ
expects (ABC-SMC gives one weighted "chain" of particles), and reports expectations first:
posterior means, standard deviations and quantile intervals, with the mode (MAP) and the
extremum estimate of the preliminary fit beside them, convergence diagnostics (split R-hat and
effective sample size as ArviZ defines them) and the implied population distribution of every
unit-level parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.special import logsumexp

from simfit.bayes import diagnostics
from simfit.errors import ArgumentError
from simfit.weighted import systematic_resample, weighted_quantile

__all__ = ["Posterior", "weighted_quantile", "systematic_resample"]

# Draws used to locate the MAP by a kernel density estimate (the density is evaluated at each).
_MAP_DRAWS = 2000


@dataclass(frozen=True, eq=False)
class Posterior:
    """Posterior draws of the population parameters.

    Attributes
    ----------
    model : Model
    draws : ndarray, shape (n_chains, n_draws, n_params)
        Natural scale.
    method : str
        The sampler that ran: ``"bsl"``, ``"abc-smc"`` or ``"surrogate"`` (with ``method="auto"``,
        the one it chose; ``info["method_choice"]`` says why).
    weights : ndarray, shape (n_chains, n_draws), or None
        Normalised importance weights (ABC-SMC particles); ``None`` for equally weighted draws.
    log_posterior : ndarray, shape (n_chains, n_draws), or None
        Unnormalised log posterior of each draw as the sampler saw it (BSL: noisy).
    estimate : pandas.Series or None
        The extremum estimate of the preliminary fit (natural scale).
    statistics, design, priors
        What the posterior conditions on: the statistics, the observed panel's design, the priors.
    n_simulations : int
        Panels simulated (all chains, including warm-up and preliminary set-up).
    seconds : float
        Wall time.
    info : dict
        Sampler details (BSL: panels per proposal, acceptance rates; ABC-SMC: tolerances,
        acceptance rates, generations, stopping reason; the surrogate sampler: its checks;
        ``method="auto"``: ``method_choice``, and where BSL took over, ``surrogate_attempt``).
    fit : FitResult or None
        The preliminary fit, when run in this process.
    """

    model: object
    draws: np.ndarray
    method: str
    weights: np.ndarray | None = None
    log_posterior: np.ndarray | None = None
    estimate: pd.Series | None = None
    statistics: object = None
    design: object = None
    priors: object = None
    n_simulations: int = 0
    seconds: float = 0.0
    info: dict = field(default_factory=dict)
    fit: object = None
    # Tables computed once per alpha (the posterior does not change): summary() reads both.
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        draws = np.asarray(self.draws, dtype=float)
        if draws.ndim != 3 or draws.shape[2] != len(self.model.params):
            raise ArgumentError(
                f"draws must have shape (n_chains, n_draws, {len(self.model.params)}), got {draws.shape}."
            )
        object.__setattr__(self, "draws", draws)
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=float)
            if w.shape != draws.shape[:2] or np.any(w < 0) or not w.sum() > 0:
                raise ArgumentError("weights must be non-negative with shape (n_chains, n_draws).")
            object.__setattr__(self, "weights", w / w.sum())

    # ------------------------------------------------------------------ basics

    @property
    def param_names(self) -> list[str]:
        return list(self.model.param_names)

    @property
    def n_chains(self) -> int:
        return self.draws.shape[0]

    @property
    def n_draws(self) -> int:
        return self.draws.shape[1]

    def _flat(self) -> tuple[np.ndarray, np.ndarray | None]:
        flat = self.draws.reshape(-1, self.draws.shape[2])
        return flat, None if self.weights is None else self.weights.reshape(-1)

    def mean(self) -> pd.Series:
        """Posterior means."""
        flat, w = self._flat()
        return pd.Series(np.average(flat, axis=0, weights=w), index=self.param_names, name="mean")

    def sd(self) -> pd.Series:
        """Posterior standard deviations."""
        flat, w = self._flat()
        mean = np.average(flat, axis=0, weights=w)
        var = np.average((flat - mean) ** 2, axis=0, weights=w)
        if w is None:
            var *= flat.shape[0] / max(flat.shape[0] - 1, 1)
        return pd.Series(np.sqrt(var), index=self.param_names, name="sd")

    def cov(self) -> pd.DataFrame:
        """Posterior covariance matrix."""
        flat, w = self._flat()
        # Weighted particles: the weighted (ddof 0) covariance, consistent with sd().
        c = np.atleast_2d(np.cov(flat, rowvar=False, aweights=w, ddof=None if w is None else 0))
        return pd.DataFrame(c, index=self.param_names, columns=self.param_names)

    def quantile(self, q) -> pd.DataFrame | pd.Series:
        """Posterior quantiles (rows: ``q``; columns: parameters)."""
        flat, w = self._flat()
        out = weighted_quantile(flat, q, w)
        if np.ndim(q) == 0:
            return pd.Series(out, index=self.param_names, name=f"q{q}")
        return pd.DataFrame(out, index=list(np.atleast_1d(q)), columns=self.param_names)

    def interval(self, alpha: float = 0.1) -> pd.DataFrame:
        """Central ``1 - alpha`` posterior intervals (equal-tailed)."""
        if not 0 < alpha < 1:
            raise ArgumentError(f"alpha must lie in (0, 1), got {alpha}.")
        q = self.quantile([alpha / 2, 1 - alpha / 2])
        return pd.DataFrame({"lower": q.iloc[0].to_numpy(), "upper": q.iloc[1].to_numpy()}, index=self.param_names)

    def map(self) -> pd.Series:
        """The maximum a posteriori estimate: the draw where a kernel density estimate of the
        posterior density (natural scale) is highest.

        The estimate reflects the draws at every finite bound of a parameter, so a mode on a bound
        (a spread whose posterior density is highest at 0) is found there rather than pushed
        inwards by the kernel. With many parameters a kernel estimate is rough; the MAP is
        reported to be compared with the mean, not as a precise estimate.
        """
        flat, w = self._flat()
        keep = np.all(np.isfinite(flat), axis=1) & (np.ones(flat.shape[0], bool) if w is None else w > 0)
        flat = flat[keep]
        w = np.full(flat.shape[0], 1.0 / max(flat.shape[0], 1)) if w is None else w[keep] / w[keep].sum()
        if flat.shape[0] < 10:
            return pd.Series(np.nan, index=self.param_names, name="map")
        rng = np.random.default_rng(0)
        if flat.shape[0] > _MAP_DRAWS:
            pick = rng.choice(flat.shape[0], _MAP_DRAWS, replace=False, p=w)
            flat, w = flat[pick], np.full(_MAP_DRAWS, 1.0 / _MAP_DRAWS)
        active = flat.std(axis=0) > 0
        if not active.any():
            return pd.Series(flat[0], index=self.param_names, name="map")
        x = flat[:, active]
        kde = sps.gaussian_kde(x.T, weights=w)
        root = np.linalg.cholesky(kde.covariance)
        # Reflect the kernel centres at each finite bound (one copy per bound and combination).
        lower = self.model.params.lower[active]
        upper = self.model.params.upper[active]
        centres, weights = [x], [w]
        for j in range(x.shape[1]):
            for bound in (lower[j], upper[j]):
                if np.isfinite(bound):
                    new = [c.copy() for c in centres]
                    for c in new:
                        c[:, j] = 2.0 * bound - c[:, j]
                    centres += new
                    weights += weights[: len(new)]
        centres = np.concatenate(centres)
        log_w = np.log(np.concatenate(weights))
        z = np.linalg.solve(root, x.T).T
        zc = np.linalg.solve(root, centres.T).T
        best, best_value = 0, -np.inf
        for lo in range(0, z.shape[0], 256):  # blocks keep the distance matrix small
            d2 = ((z[lo : lo + 256, None, :] - zc[None, :, :]) ** 2).sum(axis=2)
            values = logsumexp(log_w[None, :] - 0.5 * d2, axis=1)
            k = int(np.argmax(values))
            if values[k] > best_value:
                best, best_value = lo + k, values[k]
        return pd.Series(flat[best], index=self.param_names, name="map")

    # ------------------------------------------------------------------ diagnostics

    def rhat(self) -> pd.Series:
        """Rank-normalised split R-hat per parameter (NaN for weighted particles)."""
        if self.weights is not None:
            return pd.Series(np.nan, index=self.param_names, name="rhat")
        return pd.Series([diagnostics.rhat(self.draws[:, :, j]) for j in range(self.draws.shape[2])], index=self.param_names, name="rhat")

    def ess(self, method: str = "bulk") -> pd.Series:
        """Effective sample size per parameter: ``"bulk"`` or ``"tail"`` as ArviZ defines them; for
        weighted particles, Kish's ``1 / sum(w^2)``."""
        if self.weights is not None:
            return pd.Series(1.0 / np.sum(self.weights**2), index=self.param_names, name="ess")
        fn = {"bulk": diagnostics.ess_bulk, "tail": diagnostics.ess_tail}.get(method)
        if fn is None:
            raise ArgumentError(f"Unknown ESS method {method!r}; use 'bulk' or 'tail'.")
        return pd.Series([fn(self.draws[:, :, j]) for j in range(self.draws.shape[2])], index=self.param_names, name=f"ess_{method}")

    # ------------------------------------------------------------------ views

    def marginal_mode(self) -> pd.Series:
        """Per parameter, the peak of a kernel density estimate of its draws alone (weights
        included), reflected at its finite bounds so that a mode on a bound (a spread whose
        density is highest at 0) is found there. Differs from the joint MAP (:meth:`map`) where
        the posterior is skewed or correlated."""
        flat, w = self._flat()
        out = []
        for j, p in enumerate(self.model.params):
            x = flat[:, j]
            keep = np.isfinite(x) & (np.ones(x.size, bool) if w is None else w > 0)
            x = x[keep]
            wj = None if w is None else w[keep] / w[keep].sum()
            if x.size < 10 or not np.ptp(x) > 0:
                out.append(float(x[0]) if x.size else np.nan)
                continue
            lo, hi = p.bounds
            kde = sps.gaussian_kde(x, weights=wj)
            grid = np.linspace(max(x.min(), lo), min(x.max(), hi), 512)
            density = kde(grid)
            for bound in (lo, hi):
                if np.isfinite(bound):
                    density = density + kde(2.0 * bound - grid)
            k = int(np.argmax(density))
            # refine between the neighbours of the best grid point
            a, b = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
            fine = np.linspace(a, b, 65)
            dens = kde(fine) + sum(kde(2.0 * bd - fine) for bd in (lo, hi) if np.isfinite(bd))
            out.append(float(fine[int(np.argmax(dens))]))
        return pd.Series(out, index=self.param_names, name="marginal_mode")

    def to_frame(self) -> pd.DataFrame:
        """The draws as plain data: one row per draw, columns ``chain``, ``draw``, one per
        parameter (natural scale), and ``weight`` for weighted particles (ABC-SMC)."""
        n_chains, n_draws, n_params = self.draws.shape
        frame = pd.DataFrame(self.draws.reshape(-1, n_params), columns=self.param_names)
        frame.insert(0, "draw", np.tile(np.arange(n_draws), n_chains))
        frame.insert(0, "chain", np.repeat(np.arange(n_chains), n_draws))
        if self.weights is not None:
            frame["weight"] = np.asarray(self.weights).reshape(-1)
        return frame

    def summary_frame(self, alpha: float = 0.1) -> pd.DataFrame:
        """One row per parameter: mean, sd, interval, joint MAP, marginal mode, extremum
        estimate, R-hat, ESS."""
        key = ("summary_frame", float(alpha))
        if key not in self._cache:
            self._cache[key] = self._summary_frame(alpha)
        return self._cache[key].copy()

    def _summary_frame(self, alpha: float) -> pd.DataFrame:
        ci = self.interval(alpha)
        frame = pd.DataFrame({
            "mean": self.mean(),
            "sd": self.sd(),
            f"q{alpha / 2:g}": ci["lower"],
            f"q{1 - alpha / 2:g}": ci["upper"],
            "map": self.map(),
            "marginal_mode": self.marginal_mode(),
            "estimate": self.estimate if self.estimate is not None else np.nan,
            "rhat": self.rhat(),
            "ess_bulk": self.ess("bulk"),
        })
        if self.weights is None:
            frame["ess_tail"] = self.ess("tail")
        return frame

    def population_summary(self, alpha: float = 0.1) -> pd.DataFrame:
        """Posterior mean, sd and central interval of the mean, median, mode, sd and 5%/95%
        quantiles of each unit-level parameter's population distribution."""
        from simfit.population_summary import population_summary

        key = ("population_summary", float(alpha))
        if key not in self._cache:
            self._cache[key] = population_summary(self, alpha=alpha)
        return self._cache[key].copy()

    def to_dict(self, alpha: float = 0.1) -> dict:
        """Plain data (JSON-ready)."""
        frame = self.summary_frame(alpha)
        return {
            "method": self.method,
            "params": {n: {k: _plain(v) for k, v in row.items()} for n, row in frame.to_dict(orient="index").items()},
            "chains": self.n_chains,
            "draws": self.n_draws,
            "n_simulations": int(self.n_simulations),
            "seconds": float(self.seconds),
            "info": self.info,
            "priors": self.priors.describe() if self.priors is not None else None,
            "fixed": dict(self.model.fixed),
        }

    def to_arviz(self):
        """An ``arviz.InferenceData`` with the draws (and the log posterior as a sample statistic).

        Needs the optional dependency ``arviz`` (``pip install "simfit[arviz]"``). Weighted ABC-SMC
        particles are resampled to equal weights (systematic resampling) first, since
        InferenceData has no place for weights.
        """
        try:
            import arviz as az
        except ImportError:
            raise ImportError('to_arviz() needs ArviZ: pip install "simfit[arviz]" (or pip install arviz).') from None
        draws = self.draws
        if self.weights is not None:
            flat, w = self._flat()
            draws = flat[systematic_resample(w, flat.shape[0], np.random.default_rng(0))][None]
        posterior = {name: draws[:, :, j] for j, name in enumerate(self.param_names)}
        stats = {"lp": self.log_posterior} if self.log_posterior is not None and self.weights is None else None
        return az.from_dict(posterior=posterior, sample_stats=stats, attrs={"method": self.method, "n_simulations": int(self.n_simulations)})

    def _preliminary_lines(self) -> list[str]:
        """The fit the sampler started from, labelled as such (or that there was none)."""
        record = self.info.get("preliminary_fit") if self.info else None
        if self.estimate is None or not record:
            start = "ABC-SMC starts from the prior" if self.method == "abc-smc" else "none recorded"
            return [f"preliminary fit: none ({start})"]
        se = record.get("se", {})
        values = ", ".join(
            f"{name} {self.estimate[name]:.4g} (se {se.get(name, float('nan')):.3g})" for name in self.param_names
        )
        return [
            f"preliminary fit: simfit.fit() with the same statistics (seed {record.get('seed')}, S = {record.get('n_sims')}, "
            f"{record.get('weighting')} weighting), converged {'yes' if record.get('converged') else 'NO'}; it started "
            "the chains and scaled their proposals:",
            f"  {values}",
        ]

    def summary(self, alpha: float = 0.1) -> str:
        """A readable report: sampler, expectations beside modes, diagnostics, population."""
        lines = [
            f"Posterior of {self.model.name} by {self.method}",
            "=" * 78,
        ]
        if self.weights is None:
            lines.append(f"chains {self.n_chains} x draws {self.n_draws}    simulated panels {self.n_simulations:,}    wall {self.seconds:.2f} s")
        else:
            lines.append(
                f"particles {self.n_draws}    generations {self.info.get('generations')}    stopped by "
                f"{self.info.get('stopped')}    simulated panels {self.n_simulations:,}    wall {self.seconds:.2f} s"
            )
        if self.model.fixed:
            lines.append("fixed (not estimated): " + ", ".join(f"{k} = {v:g}" for k, v in self.model.fixed.items()))
        lines.extend(self._preliminary_lines())
        for key, value in self.info.items():
            if key in ("generations", "stopped", "tolerances", "acceptance_by_generation", "preliminary_fit"):
                continue
            if key == "compute_seconds":
                lines.append(f"compute time of the run, over all its sessions: {value:.2f} s (wall above: this session)")
                continue
            lines.append(f"{key}: {value}")
        lines.append("")
        with pd.option_context("display.width", 100, "display.max_columns", 20, "display.precision", 4):
            lines.append(self.summary_frame(alpha).to_string(float_format=lambda v: f"{v:.4g}"))
        rhat = self.rhat()
        if (rhat > 1.01).any():
            lines.append(f"\nWarning: R-hat above 1.01 for {', '.join(rhat.index[rhat > 1.01])}; run longer chains.")
        lines.append("\nmean and quantiles are posterior expectations; map is the posterior mode; estimate is the")
        lines.append("preliminary fit's extremum estimate (above), empty without one.")
        try:
            pop = self.population_summary(alpha)
        except Exception as exc:  # the report must not fail because of an optional section
            lines.append(f"\nPopulation distribution of unit-level parameters: not available ({exc}).")
        else:
            if len(pop):
                lines.append(f"\nPopulation distribution of unit-level parameters (posterior mean, sd, {1 - alpha:.0%} interval)")
                lines.append(pop.to_string(float_format=lambda v: f"{v:.4g}"))
                if "mc_se" in pop:
                    lines.append(
                        f"{', '.join(pop.attrs['simulated'])} simulated at {pop.attrs['simulated_draws']} of the "
                        f"{pop.attrs['draws']} draws: mc_se is the Monte-Carlo standard error of the posterior mean "
                        "(adjusted to all draws by a regression on the parameters)."
                    )
        return "\n".join(lines)

    def __repr__(self) -> str:
        mean = ", ".join(f"{n}={v:.4g}" for n, v in self.mean().items())
        return f"<Posterior {self.method} {self.n_chains}x{self.n_draws}: mean {mean}>"


def _plain(v):
    v = float(v)
    return None if not np.isfinite(v) else v
