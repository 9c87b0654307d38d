"""Confidence intervals of indirect-inference estimates, and the choice among them.

============== ==============================================================================
method         interval
============== ==============================================================================
``wald``       ``u_hat +- z se(u)`` on the unconstrained scale, mapped back (respects bounds)
``delta``      ``psi_hat +- z se(psi)`` on the natural scale (symmetric; may cross bounds)
``percentile`` quantiles of the parametric-bootstrap estimates
``bootstrap-t``studentised bootstrap on the unconstrained scale: quantiles of
               ``(u_b - u_hat) / se_b`` times the sandwich ``se(u)``, mapped back
``union``      the smallest interval holding both the ``wald`` and the ``bootstrap-t`` ones
``one-sided``  for an estimate on a bound (a spread at 0): ``[bound, upper]``, the upper limit
               where the distance statistic reaches its one-sided critical value (Self and
               Liang 1987: a 50:50 mixture of 0 and chi-square(1) at the boundary)
``auto``       the sandwich (``wald``) where it can be trusted; ``union`` where the diagnostics
               of :func:`sandwich_concerns` say it cannot; ``one-sided`` on a bound
============== ==============================================================================

The sandwich is a large-sample formula. With few units and many statistics, with few simulated
panels per evaluation, near a bound or under weak identification it can be optimistic. The k-step
bootstrap (:mod:`simfit.bootstrap`) follows the estimator's nonlinearity and skewness, but it
linearises with the fit's own Jacobian and weighting and can understate the spread where the
objective bends strongly (measured: the PK model's clearance spread). Neither approximation
dominates in the recovery benchmarks, so where the diagnostics call the sandwich into question
``auto`` reports the union of the two: it covers whenever either does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from simfit.params import ParamSet

__all__ = [
    "METHODS",
    "canonical_method",
    "wald",
    "delta",
    "percentile",
    "bootstrap_t",
    "ProfileCurve",
    "SandwichConcerns",
    "sandwich_concerns",
    "MAX_UNITS_PER_STATISTIC_RATIO",
    "MIN_SIMS_FOR_SANDWICH",
    "MAX_CONDITION_FOR_SANDWICH",
]

METHODS = ("auto", "wald", "delta", "percentile", "bootstrap-t", "union", "one-sided")
_ALIASES = {"transform": "wald", "bootstrap": "percentile", "bootstrap_t": "bootstrap-t", "studentized": "bootstrap-t"}

# Diagnostics of "auto": above these the sandwich interval is replaced by the bootstrap's.
MAX_UNITS_PER_STATISTIC_RATIO = 0.1  # statistics per unit
MIN_SIMS_FOR_SANDWICH = 20  # simulated panels per evaluation (simulation share 1/(S+1) <= 5%)
MAX_CONDITION_FOR_SANDWICH = 1e3  # condition number of the standardised Jacobian


def canonical_method(method: str) -> str:
    """The canonical name of an interval method (``transform`` -> ``wald``, ...)."""
    name = _ALIASES.get(str(method).lower(), str(method).lower())
    if name not in METHODS:
        raise ValueError(f"Unknown interval method {method!r}; use one of {', '.join(METHODS)}.")
    return name


def _z(alpha: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2))


def wald(params: ParamSet, free: np.ndarray, se_free: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Wald interval on the unconstrained scale mapped back, natural scale, shape (n_params,) each.

    An end that the transform rounds onto a bound (it keeps values strictly inside, at the
    nearest representable number) is reported as the bound itself: ``[0, inf]``, not
    ``[4.9e-324, 1.8e+308]``.
    """
    half = _z(alpha) * se_free
    with np.errstate(invalid="ignore"):
        lo = params.to_natural(free - half)
        hi = params.to_natural(free + half)
    lo, hi = np.fmin(lo, hi), np.fmax(lo, hi)
    bound_lo, bound_hi = params.lower, params.upper
    lo = np.where(lo <= np.nextafter(bound_lo, np.inf), bound_lo, lo)
    hi = np.where(hi >= np.nextafter(bound_hi, -np.inf), bound_hi, hi)
    return lo, hi


def delta(estimate: np.ndarray, se: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric natural-scale interval ``estimate +- z se``."""
    z = _z(alpha)
    return estimate - z * se, estimate + z * se


def percentile(draws_natural: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap estimates (natural scale), NaN where a column has none."""
    lower = np.full(draws_natural.shape[1], np.nan)
    upper = np.full(draws_natural.shape[1], np.nan)
    for j in range(draws_natural.shape[1]):
        col = draws_natural[:, j]
        col = col[np.isfinite(col)]
        if col.size >= 2:
            lower[j], upper[j] = np.quantile(col, [alpha / 2, 1 - alpha / 2])
    return lower, upper


def bootstrap_t(
    params: ParamSet,
    free: np.ndarray,
    se_free: np.ndarray,
    draws_free: np.ndarray,
    draws_se_free: np.ndarray,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Studentised bootstrap interval on the unconstrained scale, mapped back (natural scale).

    ``t_b = (u_b - u_hat) / se_b``; the interval is ``[u_hat - t_(1-a/2) se, u_hat - t_(a/2) se]``.
    """
    n = free.size
    lo_free = np.full(n, np.nan)
    hi_free = np.full(n, np.nan)
    for j in range(n):
        with np.errstate(invalid="ignore", divide="ignore"):
            t = (draws_free[:, j] - free[j]) / draws_se_free[:, j]
        t = t[np.isfinite(t)]
        if t.size >= 2 and np.isfinite(se_free[j]):
            q_lo, q_hi = np.quantile(t, [alpha / 2, 1 - alpha / 2])
            lo_free[j] = free[j] - q_hi * se_free[j]
            hi_free[j] = free[j] - q_lo * se_free[j]
    with np.errstate(invalid="ignore"):
        lo = params.to_natural(lo_free)
        hi = params.to_natural(hi_free)
    return np.fmin(lo, hi), np.fmax(lo, hi)


@dataclass(frozen=True)
class ProfileCurve:
    """The distance statistic along one parameter held away from its bound.

    ``values`` (natural scale) and ``increase``: the rise of the optimally weighted objective when the parameter is held at each value and the others are
    re-estimated. Under the boundary null it is a 50:50 mixture of 0 and chi-square(1), so the
    one-sided ``1 - alpha`` limit is where it reaches the chi-square(1) ``1 - 2 alpha`` quantile
    (``far_bound``, the parameter's other bound, where it never does).
    """

    bound: float
    values: np.ndarray
    increase: np.ndarray
    far_bound: float = float("nan")

    def limit(self, alpha: float) -> float:
        """The far limit of the one-sided ``1 - alpha`` interval (inf where never reached)."""
        target = float(stats.chi2.ppf(1 - 2 * alpha, 1))
        order = np.argsort(np.abs(self.values - self.bound))
        dist = np.abs(self.values[order] - self.bound)
        rise = np.maximum.accumulate(np.maximum(self.increase[order], 0.0))
        above = np.flatnonzero(rise >= target)
        if above.size == 0:  # never reached: the interval runs to the parameter's other bound
            if np.isfinite(self.far_bound) or np.isinf(self.far_bound):
                return float(self.far_bound)
            return float(np.inf * np.sign(self.values[order][-1] - self.bound)) if dist.size else float("nan")
        k = int(above[0])
        if k == 0:
            d = dist[0]
        else:  # interpolate linearly in log distance between the bracketing values
            x0, x1 = np.log(dist[k - 1]), np.log(dist[k])
            y0, y1 = rise[k - 1], rise[k]
            d = float(np.exp(x0 + (target - y0) * (x1 - x0) / (y1 - y0))) if y1 > y0 else dist[k]
        return float(self.bound + d * np.sign(self.values[order][k] - self.bound))


@dataclass(frozen=True)
class SandwichConcerns:
    """Why the sandwich interval may be optimistic for a fit.

    Attributes
    ----------
    general : tuple of str
        Reasons that concern every parameter (many statistics per unit, few simulations, weak
        identification).
    by_parameter : dict of str to tuple of str
        Reasons particular to one parameter (near or on a bound).
    """

    general: tuple[str, ...]
    by_parameter: dict

    def for_parameter(self, name: str) -> tuple[str, ...]:
        return self.general + tuple(self.by_parameter.get(name, ()))

    @property
    def any(self) -> bool:
        return bool(self.general) or any(self.by_parameter.values())

    def need_bootstrap(self, at_bound) -> bool:
        """Whether ``bootstrap="auto"`` runs the bootstrap: some concern other than an estimate on
        its bound (whose interval is one-sided, from a profile)."""
        return bool(self.general) or any(n not in at_bound for n in self.by_parameter)


def sandwich_concerns(
    params: ParamSet,
    estimate: np.ndarray,
    se: np.ndarray,
    n_stats: int,
    n_units: int,
    n_sims: int,
    condition: float,
    rank: int,
    at_bound: list[str],
    alpha: float = 0.05,
) -> SandwichConcerns:
    """The diagnostics under which ``auto`` intervals use the bootstrap instead of the sandwich."""
    general = []
    if n_units and n_stats / n_units > MAX_UNITS_PER_STATISTIC_RATIO:
        general.append(f"many statistics per unit ({n_stats} for {n_units} units)")
    if n_sims < MIN_SIMS_FOR_SANDWICH:
        general.append(f"simulation share of the variance 1/(S+1) = {1 / (n_sims + 1):.2f} (S = {n_sims})")
    if rank < len(params) or not condition <= MAX_CONDITION_FOR_SANDWICH:
        general.append(f"weak identification (condition number {condition:.3g})")
    if at_bound and len(at_bound) < len(params):
        # The other parameters' standard errors hold these at their bounds, as if known: where the
        # data cannot rule out an interior value (a spread slightly above 0), they are too short
        # for the parameters correlated with them.
        general.append(f"{', '.join(at_bound)} on {'its bound' if len(at_bound) == 1 else 'their bounds'}, "
                       "held fixed in the other parameters' standard errors")
    by_parameter = {}
    z = _z(alpha)
    for p, est, s in zip(params, estimate, se):
        reasons = []
        if p.name in at_bound:
            reasons.append("estimate on its bound")
        else:
            lo, hi = p.bounds
            if (np.isfinite(lo) and est - z * s <= lo) or (np.isfinite(hi) and est + z * s >= hi):
                reasons.append("near a bound")
        if reasons:
            by_parameter[p.name] = tuple(reasons)
    return SandwichConcerns(general=tuple(general), by_parameter=by_parameter)
