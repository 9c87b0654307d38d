"""Auxiliary models fitted to each unit: their estimates are the unit statistics.

Classical indirect inference (Gourieroux, Monfort and Renault 1993) matches the estimates of an
auxiliary model fitted to observed and to simulated data. Per unit, that is a small fit: a
nonlinear least-squares fit of a mean curve (:func:`nls`), a logistic or Poisson regression by
iteratively reweighted least squares (:func:`glm`), or an autoregression (:func:`simfit.statistics.ar`).
The fitting code is compiled once with simfit (and cached on disk); a user's mean curve is a small
``@njit`` function called through its address, so a new curve costs its own compilation only.

Every auxiliary model also writes a convergence flag (1 converged, 0 not). A unit whose fit does
not converge gives NaN estimates, which aggregates skip; the flags are not statistics, but fits
count them on the observed data and report them (``FitResult.unit_fit_failures``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numba import njit

from simfit.errors import StatisticsError
from simfit.kernels import CURVE_SIGNATURE, compile_kernel, curve_function
from simfit.statistics._numeric import solve_normal_equations
from simfit.statistics.spec import ColumnRef, Layout, UnitStatistic

__all__ = ["nls", "glm", "MAX_NLS_PARAMS", "AUTO_PRIOR_SD", "FIT_REASONS"]

#: Most parameters of a per-unit mean curve: units rarely carry information for more.
MAX_NLS_PARAMS = 10

_FREE, _LOWER, _BOTH, _UPPER = 0, 1, 2, 3
_NLS_HEADER = 8  # column, log residuals, p, curve addresses (2), max_iter, natural scale, sane width

#: Values of an auxiliary fit's flag (``nls.converged``, ``glm.converged``): 1 for a fit whose
#: estimates are statistics, anything else a failed unit fit (NaN estimates).
FIT_CONVERGED = 1.0
FIT_NOT_CONVERGED = 0.0  # the optimiser's criteria do not hold
FIT_RUNAWAY = -1.0  # an estimate left the sane region around the centre (see nls)
FIT_TOO_FEW = -2.0  # fewer usable observations than parameters
FIT_WORSE_THAN_FLAT = -3.0  # residual sd more than twice the data's own: the curve does not describe them
FIT_UNDEFINED = -4.0  # the curve is not finite (or not positive, with log residuals) at the start
FIT_REASONS = {
    FIT_NOT_CONVERGED: "did not converge",
    FIT_RUNAWAY: "ran away (an estimate left the sane region around the centre)",
    FIT_TOO_FEW: "had fewer usable observations than parameters",
    FIT_WORSE_THAN_FLAT: "fitted worse than a constant (residual sd above twice the data's)",
    FIT_UNDEFINED: "had a curve that is not finite (or not positive, with log residuals) at the start",
}

#: Default sd of the penalty towards the centre, on each parameter's unconstrained scale.
AUTO_PRIOR_SD = 2.0
#: Default half-width of the sane region around the centre on the unconstrained (log, logit)
#: scale; for an unbounded parameter, that many times the centre's magnitude (at least 1).
SANE_WIDTH = 10.0

# The solver's helpers are plain calls, left to LLVM's inliner: Numba's IR inlining
# (inline="always") types their bodies again at every call site, which made the one-time
# compile of nls_kernel some 7% slower, for the same arithmetic and the same results.


@njit(cache=True)
def _natural(z, kind, lo, hi):
    if kind == 1:
        return lo + math.exp(z)
    if kind == 2:
        return lo + (hi - lo) / (1.0 + math.exp(-z))
    if kind == 3:
        return hi - math.exp(z)
    return z


@njit(cache=True)
def _data_residuals(curve, z, args, p, obs, x, log_residuals, used, beta, f, r):
    """Data residuals ``r[:n]`` of the unit at unconstrained parameters ``z`` (0 on rows left
    out, ``used[k] == 0``), ``obs`` the observations on the fitted scale (their logs, with log
    residuals); returns their sum of squares, inf where the curve is not finite (or not positive
    on a used row, with log residuals)."""
    base = _NLS_HEADER
    for j in range(p):
        beta[j] = _natural(z[j], int(args[base + j]), args[base + p + j], args[base + 2 * p + j])
    curve(beta, x, args[base + 5 * p :], f)
    ssr = 0.0
    for k in range(obs.shape[0]):
        if used[k] == 0.0:
            r[k] = 0.0
            continue
        if log_residuals:
            if not f[k] > 0.0:
                return np.inf
            d = obs[k] - math.log(f[k])
        else:
            d = obs[k] - f[k]
        if not math.isfinite(d):
            return np.inf
        r[k] = d
        ssr += d * d
    return ssr


@njit(cache=True)
def _penalty_rows(z, args, p, n, scale, r):
    """Penalty rows ``r[n + j] = scale (z_j - centre_j) / prior sd_j``; returns their sum of squares."""
    base = _NLS_HEADER
    pen = 0.0
    for j in range(p):
        d = scale * (z[j] - args[base + 3 * p + j]) * args[base + 4 * p + j]
        r[n + j] = d
        pen += d * d
    return pen


@njit(cache=True)
def nls_kernel(y, x, groups, args, work, out):
    """Penalised Levenberg-Marquardt fit of a mean curve to one unit (see :func:`nls` for ``args``).

    The penalty is a normal prior on each parameter's unconstrained scale with the residual
    variance profiled out: the fit minimises ``used * log(SSR) + sum(((z - c) / sd)^2)``, whatever
    the units of the data. Each iteration minimises its majoriser ``SSR / s2 + penalty`` with
    ``s2 = SSR / used`` at the current point (the log is concave), so Levenberg-Marquardt steps on
    a sum of squares whose penalty rows carry the factor ``s``.
    """
    col = int(args[0])
    log_residuals = args[1] == 1.0
    p = int(args[2])
    curve = curve_function(np.int64(args[3]), np.int64(args[4]))
    max_iter = int(args[5])
    natural_out = args[6] == 1.0
    sane = args[7]
    base = _NLS_HEADER
    n = y.shape[0]
    for j in range(out.shape[0]):
        out[j] = np.nan
    out[p + 1] = FIT_NOT_CONVERGED
    m = n + p  # residual rows: data, then penalties
    r = work[:m]
    rt = work[m : 2 * m]
    f = work[2 * m : 2 * m + n]
    jac = work[2 * m + n : 2 * m + n + m * p]
    o = 2 * m + n + m * p
    z = work[o : o + p]
    zt = work[o + p : o + 2 * p]
    beta = work[o + 2 * p : o + 3 * p]
    g = work[o + 3 * p : o + 4 * p]
    step = work[o + 4 * p : o + 5 * p]
    jtj = work[o + 5 * p : o + 5 * p + p * p]
    a = work[o + 5 * p + p * p : o + 5 * p + 2 * p * p]
    used = work[o + 5 * p + 2 * p * p : o + 5 * p + 2 * p * p + n]
    obs = work[o + 5 * p + 2 * p * p + n : o + 5 * p + 2 * p * p + 2 * n]  # y on the fitted scale
    for j in range(p):
        z[j] = args[base + 3 * p + j]
        beta[j] = _natural(z[j], int(args[base + j]), args[base + p + j], args[base + 2 * p + j])
    curve(beta, x, args[base + 5 * p :], f)
    # Rows the fit uses: with log residuals, positive observations where the curve at the start
    # is not exactly 0 (a sample at the time of an oral dose carries no information on the log
    # scale, whatever the parameters).
    n_used = 0
    total = 0.0
    for k in range(n):
        v = y[k, col]
        ok = math.isfinite(v)
        if log_residuals:
            ok = ok and v > 0.0 and f[k] != 0.0
        used[k] = 1.0 if ok else 0.0
        obs[k] = 0.0
        if ok:
            obs[k] = math.log(v) if log_residuals else v
            n_used += 1
            total += obs[k]
    if n_used < p:
        out[p + 1] = FIT_TOO_FEW
        return
    level = total / n_used
    flat = 0.0  # sum of squares about the data's mean (on the fitted scale)
    for k in range(n):
        if used[k] != 0.0:
            d = obs[k] - level
            flat += d * d
    floor = 1e-12 * flat / n_used + 1e-300  # the profiled residual variance never reaches 0
    ssr = _data_residuals(curve, z, args, p, obs, x, log_residuals, used, beta, f, r)
    if not math.isfinite(ssr):
        out[p + 1] = FIT_UNDEFINED
        return
    scale = math.sqrt(max(ssr / n_used, floor))
    obj = ssr + _penalty_rows(z, args, p, n, scale, r)
    lam = 1e-3
    converged = False
    for _ in range(max_iter):
        # Jacobian of the residuals by forward differences on the unconstrained scale.
        for j in range(p):
            for i in range(p):
                zt[i] = z[i]
            h = 1e-7 * max(1.0, abs(z[j]))
            zt[j] = z[j] + h
            s_h = _data_residuals(curve, zt, args, p, obs, x, log_residuals, used, beta, f, rt)
            if not math.isfinite(s_h):
                h = -h
                zt[j] = z[j] + h
                s_h = _data_residuals(curve, zt, args, p, obs, x, log_residuals, used, beta, f, rt)
                if not math.isfinite(s_h):
                    return
            _penalty_rows(zt, args, p, n, scale, rt)
            for k in range(m):
                jac[k * p + j] = (rt[k] - r[k]) / h
        for i in range(p):
            g[i] = 0.0
            for j in range(p):
                jtj[i * p + j] = 0.0
        for k in range(m):
            for i in range(p):
                ji = jac[k * p + i]
                g[i] += ji * r[k]
                for j in range(i + 1):
                    jtj[i * p + j] += ji * jac[k * p + j]
        for i in range(p):
            for j in range(i):
                jtj[j * p + i] = jtj[i * p + j]
        # Gradient orthogonal to the residuals (MINPACK's gtol): at a minimum, or an exact fit.
        cosine = 0.0
        for i in range(p):
            d = math.sqrt(jtj[i * p + i] * obj)
            if d > 0.0:
                cosine = max(cosine, abs(g[i]) / d)
        if obj == 0.0 or cosine <= 1e-10:
            converged = True
            break
        accepted = False
        while lam < 1e16:
            for i in range(p * p):
                a[i] = jtj[i]
            for i in range(p):
                a[i * p + i] += lam * max(jtj[i * p + i], 1e-12)
                step[i] = -g[i]
            if solve_normal_equations(a, step, p):
                for i in range(p):
                    zt[i] = z[i] + step[i]
                s_new = _data_residuals(curve, zt, args, p, obs, x, log_residuals, used, beta, f, rt)
                obj_new = s_new + _penalty_rows(zt, args, p, n, scale, rt)
                if obj_new < obj:
                    small = True
                    for i in range(p):
                        if abs(step[i]) > 1e-9 * (1.0 + abs(z[i])):
                            small = False
                    gain = (obj - obj_new) / obj
                    for i in range(p):
                        z[i] = zt[i]
                    for k in range(m):
                        r[k] = rt[k]
                    ssr = s_new
                    # The majoriser moves with the point: the penalty's factor is the residual
                    # sd there.
                    scale = math.sqrt(max(ssr / n_used, floor))
                    obj = ssr + _penalty_rows(z, args, p, n, scale, r)
                    lam = max(lam / 3.0, 1e-12)
                    accepted = True
                    if small or gain < 1e-14:
                        converged = True
                    break
            lam *= 4.0
        if converged:
            break
        if not accepted:
            # No decrease at any damping: a minimum to the precision of the differences, if the
            # gradient is nearly orthogonal to the residuals.
            converged = cosine <= 1e-6
            break
    if not converged:
        return
    for j in range(p):
        c = args[base + 3 * p + j]
        width = sane * max(1.0, abs(c)) if int(args[base + j]) == _FREE else sane
        if not abs(z[j] - c) <= width:
            out[p + 1] = FIT_RUNAWAY
            return
    if n_used > p and n_used > 1 and ssr / (n_used - p) > 4.0 * flat / (n_used - 1):
        out[p + 1] = FIT_WORSE_THAN_FLAT
        return
    for j in range(p):
        out[j] = _natural(z[j], int(args[base + j]), args[base + p + j], args[base + 2 * p + j]) if natural_out else z[j]
    if n_used > p and ssr > 0.0:
        out[p] = 0.5 * math.log(ssr / (n_used - p))
    out[p + 1] = FIT_CONVERGED


def _kind(lo: float, hi: float) -> int:
    if np.isfinite(lo) and np.isfinite(hi):
        return _BOTH
    if np.isfinite(lo):
        return _LOWER
    if np.isfinite(hi):
        return _UPPER
    return _FREE


def _unconstrained(value: float, kind: int, lo: float, hi: float) -> float:
    if kind == _LOWER:
        return math.log(value - lo)
    if kind == _BOTH:
        u = (value - lo) / (hi - lo)
        return math.log(u / (1.0 - u))
    if kind == _UPPER:
        return math.log(hi - value)
    return value


_PREFIX = {_FREE: "", _LOWER: "log_", _BOTH: "logit_", _UPPER: "logneg_"}


def nls(
    curve: Callable,
    start: Mapping[str, float] | Sequence[float],
    bounds: Mapping[str, tuple[float, float]] | Sequence[tuple[float, float]] | None = None,
    value: ColumnRef = 0,
    residuals: str = "identity",
    scale: str = "unconstrained",
    curve_args: Sequence[float] = (),
    prior_sd: Mapping[str, float] | Sequence[float] | float | str | None = "auto",
    center: str = "data",
    sane_width: float = SANE_WIDTH,
    max_iter: int = 200,
) -> UnitStatistic:
    """Per-unit nonlinear least squares of a mean curve: its estimates as unit statistics.

    Each unit's observations ``y`` are fitted by ``curve(beta, x)`` (Levenberg-Marquardt, every
    unit from the same centre); the statistics are the estimates, the log residual standard
    deviation and a flag (1 for a fit whose estimates are statistics).

    Two defaults keep every unit's estimate a smooth function of its data, which indirect
    inference needs of a statistic, whatever the scale of the data and wherever the optimiser
    sends the simulated units:

    - ``center="data"``: fits (:func:`simfit.fit`, :func:`simfit.check`, :func:`simfit.sample`)
      first fit the observed units from ``start`` and take the median of their estimates (on the
      unconstrained scale) as the start and penalty centre of every unit's fit, observed and
      simulated alike. A start in the wrong units (mg where the data are per kg) then costs
      nothing; the fit's summary reports the centre.
    - ``prior_sd="auto"``: a weak normal penalty (sd ``AUTO_PRIOR_SD`` = 2 on each parameter's
      unconstrained scale, a factor e^2 on the log scale) towards the centre, with the residual
      variance profiled out, so it means the same in any units. Where a unit's data determine a
      parameter it changes nothing; where they barely do (noise, an absorption phase with one
      sample, a decay that never decays), the plain fit runs to the edge of the parameter space
      (|log k| of 10^6) or jumps between optima as the data change.

    A fit whose estimate still leaves the sane region (more than ``sane_width`` from the centre on
    the log or logit scale, or that many times the centre's magnitude for an unbounded
    parameter), whose residual sd is above twice the data's own, or that does not converge is a
    failed unit fit: NaN estimates, left out of the aggregates, counted by reason and reported
    (:data:`FIT_REASONS`).

    Parameters
    ----------
    curve : njit function
        ``curve(beta, x, args, out)``: ``beta`` (p,) on the natural scale, ``x`` (n, n_cov) the
        unit's observation covariates (in the panel's covariate order), ``args`` the
        ``curve_args``; writes the mean of each observation into ``out`` (n,).
    start : mapping of name to value, or sequence
        Starting values (natural scale); names label the outputs (``b0``, ``b1``, ... for a
        sequence). At most ``MAX_NLS_PARAMS`` parameters.
    bounds : mapping or sequence of (lower, upper), optional
        Parameters are fitted on the unconstrained scale of their bounds (log for a lower bound,
        logit for two), so estimates never leave them. Default: unbounded.
    value : str or int
        The value column fitted.
    residuals : {"identity", "log"}
        ``y - curve`` or ``log y - log curve`` (for positive data with multiplicative error;
        observations <= 0, and those where the curve at the centre is exactly 0, such as a
        sample at the time of an oral dose, are left out of the fit).
    scale : {"unconstrained", "natural"}
        Scale of the reported estimates. Unconstrained (labels ``nls.log_ka``, ``nls.logit_p``)
        is closer to normal across units, which the weighting matrix and synthetic likelihoods
        assume.
    curve_args : sequence of float
    prior_sd : "auto", float, mapping, sequence or None
        Sd of the normal penalty on each parameter's unconstrained scale, towards the centre
        (a maximum a posteriori fit with the residual variance profiled out); ``inf`` for a
        parameter, or ``None`` for all, fits without it.
    center : {"data", "start"}
        Centre (and start) of every unit's fit: the median of the observed units' fits, or
        ``start`` as given.
    sane_width : float
        Half-width of the sane region around the centre (see above).
    max_iter : int

    Returns
    -------
    UnitStatistic
        Labels ``nls.<estimate>`` per parameter, ``nls.log_sd`` (log of the residual standard
        deviation with n - p degrees of freedom) and the flag ``nls.converged`` (1, or one of the
        failure codes of :data:`FIT_REASONS`).

    Examples
    --------
    >>> from numba import njit
    >>> @njit
    ... def decay(beta, x, args, out):
    ...     for k in range(out.shape[0]):
    ...         out[k] = beta[0] * np.exp(-beta[1] * x[k, 0])
    >>> stat = nls(decay, {"c0": 10.0, "k": 0.3}, bounds={"c0": (0, np.inf), "k": (0, np.inf)}, residuals="log")
    """
    if isinstance(start, Mapping):
        names = tuple(str(k) for k in start)
        start_values = np.array([float(v) for v in start.values()])
    else:
        start_values = np.asarray(start, dtype=np.float64).reshape(-1)
        names = tuple(f"b{j}" for j in range(start_values.size))
    p = start_values.size
    if not 1 <= p <= MAX_NLS_PARAMS:
        raise StatisticsError(f"nls: give between 1 and {MAX_NLS_PARAMS} starting values, got {p}.")
    if not np.isfinite(start_values).all():
        raise StatisticsError(f"nls: starting values must be finite, got {dict(zip(names, start_values))}.")
    if bounds is None:
        box = [(-math.inf, math.inf)] * p
    elif isinstance(bounds, Mapping):
        unknown = sorted(set(bounds) - set(names))
        if unknown:
            raise StatisticsError(f"nls: bounds for unknown parameter(s) {', '.join(unknown)}; the parameters are {', '.join(names)}.")
        box = [tuple(bounds.get(n, (-math.inf, math.inf))) for n in names]
    else:
        box = [tuple(b) for b in bounds]
        if len(box) != p:
            raise StatisticsError(f"nls: {len(box)} bounds for {p} parameters.")
    kinds, lows, highs, z0 = [], [], [], []
    for name, v, b in zip(names, start_values, box):
        if len(b) != 2:
            raise StatisticsError(f"nls: bounds of {name!r} must be (lower, upper), got {b!r}.")
        lo, hi = float(b[0]), float(b[1])
        if not lo < v < hi:
            raise StatisticsError(
                f"nls: the start of {name!r} ({v:g}) must lie strictly inside its bounds ({lo:g}, {hi:g}); move the start "
                "or widen the bounds."
            )
        kind = _kind(lo, hi)
        kinds.append(kind)
        lows.append(lo if np.isfinite(lo) else 0.0)
        highs.append(hi if np.isfinite(hi) else 0.0)
        z0.append(_unconstrained(v, kind, lo, hi))
    if residuals not in ("identity", "log"):
        raise StatisticsError(f"nls: residuals must be 'identity' or 'log', got {residuals!r}.")
    if scale not in ("unconstrained", "natural"):
        raise StatisticsError(f"nls: scale must be 'unconstrained' or 'natural', got {scale!r}.")
    if center not in ("data", "start"):
        raise StatisticsError(f"nls: center must be 'data' (the median of the observed units' fits) or 'start', got {center!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise StatisticsError(f"nls: max_iter must be a positive integer, got {max_iter!r}.")
    if isinstance(sane_width, bool) or not isinstance(sane_width, (int, float)) or not sane_width > 0:
        raise StatisticsError(f"nls: sane_width must be a positive number, got {sane_width!r}.")
    extra = np.asarray(curve_args, dtype=np.float64).reshape(-1)
    sds = _prior_sds(prior_sd, names)
    labels = tuple(f"nls.{name}" if scale == "natural" else f"nls.{_PREFIX[k]}{name}" for name, k in zip(names, kinds))
    labels += ("nls.log_sd", "nls.converged")
    fixed = [float(k) for k in kinds] + lows + highs + z0 + (1.0 / sds).tolist() + extra.tolist()
    compiled: dict = {}  # process id -> (dispatcher, addresses): an address is valid in its own process only

    def args(layout: Layout) -> list[float]:
        pid = os.getpid()
        if pid not in compiled:
            kernel, addresses = compile_kernel(curve, CURVE_SIGNATURE, "nls curve")
            if any(int(float(a)) != a for a in addresses.tolist()):
                raise StatisticsError("nls: the curve's address cannot be passed to the engine on this platform.")
            compiled.clear()  # copied from a parent process: stale there
            compiled[pid] = (kernel, [float(a) for a in addresses.tolist()])
        return [
            layout.value(value), 1.0 if residuals == "log" else 0.0, p, *compiled[pid][1], int(max_iter),
            1.0 if scale == "natural" else 0.0, float(sane_width), *fixed,
        ]

    def calibrate(table: np.ndarray) -> tuple[UnitStatistic, str]:
        """This statistic centred on the median of the observed units' fits (``table``: their
        outputs, shape (n_units, p + 2)), and what was done, in words."""
        flags = table[:, p + 1]
        ok = flags == FIT_CONVERGED
        if ok.sum() < max(3, 0.25 * table.shape[0]):
            return stat, (
                f"{labels[0].rsplit('.', 1)[0]}: centred on its start {_text(names, start_values)} (only {int(ok.sum())} of "
                f"{table.shape[0]} observed units' fits succeeded from it: give a start nearer the data)"
            )
        est = table[ok][:, :p]
        if scale == "natural":
            est = np.array([[_unconstrained(v, k, lo, hi) for v, k, lo, hi in zip(row, kinds, lows, highs)] for row in est])
        z = np.median(est, axis=0)
        centre = np.array([_natural_value(zj, k, lo, hi) for zj, k, lo, hi in zip(z, kinds, lows, highs)])
        inside = np.array([lo < c < hi or k == _FREE for c, k, (lo, hi) in zip(centre, kinds, box)])
        centre = np.where(inside, centre, start_values)
        again = nls(
            curve, dict(zip(names, centre.tolist())), bounds=box, value=value, residuals=residuals, scale=scale,
            curve_args=curve_args, prior_sd=prior_sd, center=center, sane_width=sane_width, max_iter=max_iter,
        )
        return again, f"{labels[0].rsplit('.', 1)[0]}: centred on the median of {int(ok.sum())} observed units' fits {_text(names, centre)}"

    stat = UnitStatistic(
        kernel=nls_kernel,
        labels=labels,
        value=value,
        args=args,
        work=lambda n: 3 * (n + p) + (n + p) * p + 5 * p + 2 * p * p + 2 * n + 8,
        flags=("nls.converged",),
        calibrate=calibrate if center == "data" else None,
    )
    return stat


def _prior_sds(prior_sd, names: tuple[str, ...]) -> np.ndarray:
    """The penalty's sd per parameter (inf: no penalty) from ``nls``'s ``prior_sd``."""
    p = len(names)
    if isinstance(prior_sd, str):
        if prior_sd != "auto":
            raise StatisticsError(f"nls: prior_sd must be 'auto', a number, one per parameter or None, got {prior_sd!r}.")
        return np.full(p, AUTO_PRIOR_SD)
    if prior_sd is None:
        return np.full(p, math.inf)
    if isinstance(prior_sd, Mapping):
        unknown = sorted(set(prior_sd) - set(names))
        if unknown:
            raise StatisticsError(f"nls: prior_sd for unknown parameter(s) {', '.join(unknown)}; the parameters are {', '.join(names)}.")
        sds = np.array([float(prior_sd.get(n, AUTO_PRIOR_SD)) for n in names])
    else:
        try:
            sds = np.asarray(prior_sd, dtype=np.float64)
        except (TypeError, ValueError):
            raise StatisticsError(f"nls: prior_sd must be 'auto', a number, one per parameter or None, got {prior_sd!r}.") from None
        if sds.ndim > 1 or (sds.ndim == 1 and sds.size != p):
            raise StatisticsError(f"nls: prior_sd needs one value per parameter ({p}), got {prior_sd!r}.")
        sds = np.broadcast_to(sds, (p,)).copy()
    if not (sds > 0).all():
        raise StatisticsError(f"nls: prior sds must be positive (inf for no penalty), got {sds.tolist()}.")
    return sds


def _natural_value(z: float, kind: int, lo: float, hi: float) -> float:
    if kind == _LOWER:
        return lo + math.exp(z)
    if kind == _BOTH:
        return lo + (hi - lo) / (1.0 + math.exp(-z))
    if kind == _UPPER:
        return hi - math.exp(z)
    return z


def _text(names, values) -> str:
    return "(" + ", ".join(f"{n} = {v:.4g}" for n, v in zip(names, values)) + ")"


# ---------------------------------------------------------------------------- GLM by IRLS

_LOGIT, _POISSON = 0, 1
_GLM_HEADER = 6  # column, family, intercept, max_iter, sane width, number of covariates


@njit(cache=True, inline="always")
def _glm_regressor(x, cols, intercept, t, a):
    if intercept and a == 0:
        return 1.0
    return x[t, int(cols[a - intercept])]


@njit(cache=True)
def _glm_penalised_deviance(y, x, col, cols, family, intercept, k, beta, centre, precision):
    """Minus the log likelihood (up to a constant) plus the penalty ``(b - c)' P (b - c) / 2``;
    inf where a fitted mean overflows."""
    total = 0.0
    for t in range(y.shape[0]):
        eta = 0.0
        for a in range(k):
            eta += _glm_regressor(x, cols, intercept, t, a) * beta[a]
        v = y[t, col]
        if family == _LOGIT:
            # log(1 + e^eta) - v eta, computed without overflow
            total += (eta + math.log1p(math.exp(-eta)) if eta > 0.0 else math.log1p(math.exp(eta))) - v * eta
        else:
            if eta > 700.0:
                return np.inf
            total += math.exp(eta) - v * eta
    for a in range(k):
        d = beta[a] - centre[a]
        total += 0.5 * precision[a] * d * d
    return total


@njit(cache=True)
def glm_kernel(y, x, groups, args, work, out):
    """Penalised IRLS (see :func:`glm`); ``args = (column, family 0 logit / 1 Poisson, intercept
    0/1, max_iter, sane width, n_cov, covariate columns..., centres (k), prior sds (k))``."""
    col = int(args[0])
    family = int(args[1])
    intercept = int(args[2])
    max_iter = int(args[3])
    sane = args[4]
    n_cov = int(args[5])
    cols = args[_GLM_HEADER : _GLM_HEADER + n_cov]
    k = intercept + n_cov
    centre = args[_GLM_HEADER + n_cov : _GLM_HEADER + n_cov + k]
    prior_sd = args[_GLM_HEADER + n_cov + k : _GLM_HEADER + n_cov + 2 * k]
    n = y.shape[0]
    for j in range(out.shape[0]):
        out[j] = np.nan
    out[k] = FIT_NOT_CONVERGED
    for t in range(n):
        v = y[t, col]
        if not (v >= 0.0 and (family == _POISSON or v <= 1.0)):
            out[k] = FIT_UNDEFINED  # outcome outside the family's support
            return
    xtwx = work[: k * k]
    rhs = work[k * k : k * k + k]
    beta = work[k * k + k : k * k + 2 * k]
    trial = work[k * k + 2 * k : k * k + 3 * k]
    precision = work[k * k + 3 * k : k * k + 4 * k]
    spreads = work[k * k + 4 * k : k * k + 5 * k]
    # The penalty is on each coefficient times its covariate's spread in the unit (the effect of
    # one sd of the covariate, in units of the linear predictor), so it means the same in any
    # units; a covariate constant in the unit leaves its coefficient to the penalty alone.
    penalised = False
    for a in range(k):
        spread = 1.0
        if not (intercept and a == 0) and n > 1:
            m1 = 0.0
            for t in range(n):
                m1 += _glm_regressor(x, cols, intercept, t, a)
            m1 /= n
            m2 = 0.0
            for t in range(n):
                d = _glm_regressor(x, cols, intercept, t, a) - m1
                m2 += d * d
            if m2 > 0.0:
                spread = math.sqrt(m2 / (n - 1))
        spreads[a] = spread
        precision[a] = (spread / prior_sd[a]) ** 2 if math.isfinite(prior_sd[a]) else 0.0
        penalised = penalised or precision[a] > 0.0
        beta[a] = centre[a]
    if not penalised and n <= k:
        out[k] = FIT_TOO_FEW
        return
    current = _glm_penalised_deviance(y, x, col, cols, family, intercept, k, beta, centre, precision)
    if not math.isfinite(current):
        out[k] = FIT_UNDEFINED
        return
    converged = False
    for _ in range(max_iter):
        for a in range(k * k):
            xtwx[a] = 0.0
        for a in range(k):
            rhs[a] = precision[a] * centre[a]
            xtwx[a * k + a] = precision[a]
        for t in range(n):
            eta = 0.0
            for a in range(k):
                eta += _glm_regressor(x, cols, intercept, t, a) * beta[a]
            if family == _LOGIT:
                mu = 1.0 / (1.0 + math.exp(-eta))
                w = mu * (1.0 - mu)
            else:
                mu = math.exp(eta)
                w = mu
            if not (w > 1e-300 and math.isfinite(w)):
                if penalised:
                    w = 1e-300
                else:
                    return  # fitted probabilities of 0 or 1 (separation) or overflow
            zt = eta + (y[t, col] - mu) / w
            for a in range(k):
                ra = _glm_regressor(x, cols, intercept, t, a)
                rhs[a] += w * ra * zt
                for b in range(a + 1):
                    xtwx[a * k + b] += w * ra * _glm_regressor(x, cols, intercept, t, b)
        for a in range(k):
            for b in range(a):
                xtwx[b * k + a] = xtwx[a * k + b]
        if not solve_normal_equations(xtwx, rhs, k):
            return
        # Step halving keeps every iteration downhill on the penalised deviance.
        fraction = 1.0
        value = np.inf
        for _h in range(40):
            for a in range(k):
                trial[a] = beta[a] + fraction * (rhs[a] - beta[a])
            value = _glm_penalised_deviance(y, x, col, cols, family, intercept, k, trial, centre, precision)
            if value <= current + 1e-12 * abs(current):
                break
            fraction *= 0.5
        if not math.isfinite(value):
            return
        change = 0.0
        for a in range(k):
            change = max(change, abs(trial[a] - beta[a]) / (1.0 + abs(beta[a])))
            beta[a] = trial[a]
        current = value
        if change < 1e-10:
            converged = True
            break
        if not penalised:
            for a in range(k):
                if abs(beta[a]) > 30.0:
                    return  # diverging: (quasi-)separation
    if not converged:
        return
    for a in range(k):
        # In units of the linear predictor: the effect of one sd of the covariate.
        if not abs(beta[a] - centre[a]) * spreads[a] <= sane * (prior_sd[a] if precision[a] > 0.0 else 1.0):
            out[k] = FIT_RUNAWAY
            return
    for a in range(k):
        out[a] = beta[a]
    out[k] = FIT_CONVERGED


#: Default sds of the GLM penalty towards the centre, in units of the linear predictor: on the
#: intercept, and on the effect of one sd of each covariate (Gelman et al. 2008's weakly
#: informative scale: 2.5 for a change of two sds).
GLM_PRIOR_SD = 2.5
GLM_SLOPE_PRIOR_SD = 1.25


def glm(
    family: str,
    columns: Sequence[ColumnRef] | ColumnRef = (),
    value: ColumnRef = 0,
    intercept: bool = True,
    prior_sd: float | None | str = "auto",
    center: str = "data",
    sane_width: float = SANE_WIDTH,
    max_iter: int = 50,
) -> UnitStatistic:
    """Per-unit generalised linear model fitted by (penalised) iteratively reweighted least squares.

    Parameters
    ----------
    family : {"logit", "poisson"}
        Logistic regression of outcomes in [0, 1] (binary or proportions) or Poisson regression
        of counts, each with its canonical link.
    columns : sequence of str or int
        Observation covariates (regressors), besides the intercept.
    value : str or int
        The outcome column.
    intercept : bool
    prior_sd : "auto", float or None
        A weak normal penalty towards the centre, as in :func:`nls`, on the scale of the linear
        predictor (the log rate or log odds): ``"auto"``, sd ``GLM_PRIOR_SD`` (2.5) on the
        intercept and ``GLM_SLOPE_PRIOR_SD`` (1.25) on the effect of one sd of each covariate in
        the unit; a number, that sd on all of them. It keeps a unit whose
        data separate (every count 0, outcomes split by a covariate), where the plain estimate
        is infinite, a finite and smooth function of its data. ``None``: no penalty (such units
        then fail).
    center : {"data", "start"}
        ``"data"``: fits centre every unit on the median of the observed units' fits (see
        :func:`nls`); ``"start"``: on 0.
    sane_width : float
        A penalised estimate further than this many prior sds from the centre (or, without a
        penalty, than this on the linear-predictor scale) is a failed fit.
    max_iter : int

    Returns
    -------
    UnitStatistic
        Labels ``glm.const`` (with an intercept), ``glm.<covariate>`` and the flag
        ``glm.converged`` (1, or a failure code of :data:`FIT_REASONS`). A unit whose fit does
        not exist (without a penalty: all outcomes 0 or 1, separation; a rank-deficient design)
        or does not converge gives NaN.
    """
    if family not in ("logit", "poisson"):
        raise StatisticsError(f"glm: family must be 'logit' or 'poisson', got {family!r}.")
    covs = (columns,) if isinstance(columns, (str, int)) else tuple(columns)
    if not covs and not intercept:
        raise StatisticsError("glm: give at least one covariate or keep the intercept.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise StatisticsError(f"glm: max_iter must be a positive integer, got {max_iter!r}.")
    if center not in ("data", "start"):
        raise StatisticsError(f"glm: center must be 'data' (the median of the observed units' fits) or 'start', got {center!r}.")
    if isinstance(sane_width, bool) or not isinstance(sane_width, (int, float)) or not sane_width > 0:
        raise StatisticsError(f"glm: sane_width must be a positive number, got {sane_width!r}.")
    code = _LOGIT if family == "logit" else _POISSON
    labels = (("glm.const",) if intercept else ()) + tuple(f"glm.{c}" if isinstance(c, str) else f"glm.x{c}" for c in covs)
    k = len(labels)
    if isinstance(prior_sd, str):
        if prior_sd != "auto":
            raise StatisticsError(f"glm: prior_sd must be 'auto', a positive number or None, got {prior_sd!r}.")
        sds = np.array(([GLM_PRIOR_SD] if intercept else []) + [GLM_SLOPE_PRIOR_SD] * len(covs))
    elif prior_sd is None:
        sds = np.full(k, math.inf)
    else:
        if isinstance(prior_sd, bool) or not isinstance(prior_sd, (int, float)) or not prior_sd > 0:
            raise StatisticsError(f"glm: prior_sd must be 'auto', a positive number or None, got {prior_sd!r}.")
        sds = np.full(k, float(prior_sd))
    return _glm_statistic(code, covs, value, intercept, sds, center, float(sane_width), int(max_iter), labels, np.zeros(k))


def _glm_statistic(code, covs, value, intercept, sds, center, sane, max_iter, labels, centre) -> UnitStatistic:
    k = len(labels)

    def args(layout: Layout) -> list[float]:
        return [
            layout.value(value), code, float(intercept), max_iter, sane, len(covs), *(layout.covariate(c) for c in covs),
            *centre.tolist(), *sds.tolist(),
        ]

    def calibrate(table: np.ndarray) -> tuple[UnitStatistic, str]:
        ok = table[:, k] == FIT_CONVERGED
        if ok.sum() < max(3, 0.25 * table.shape[0]):
            return stat, f"glm: centred on 0 (only {int(ok.sum())} of {table.shape[0]} observed units' fits succeeded)"
        new = np.median(table[ok][:, :k], axis=0)
        text = ", ".join(f"{n.split('.', 1)[1]} = {v:.4g}" for n, v in zip(labels, new))
        return _glm_statistic(code, covs, value, intercept, sds, center, sane, max_iter, labels, new), (
            f"glm: centred on the median of {int(ok.sum())} observed units' fits ({text})"
        )

    stat = UnitStatistic(
        kernel=glm_kernel, labels=labels + ("glm.converged",), value=value, args=args,
        work=2 * k * k + 5 * k + 8, flags=("glm.converged",), calibrate=calibrate if center == "data" else None,
    )
    return stat
