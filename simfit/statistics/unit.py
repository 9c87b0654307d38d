"""Ready unit statistics: each reduces the observations of one unit to a few numbers.

Every factory returns a :class:`~simfit.statistics.spec.UnitStatistic` whose kernel has the
signature ``kernel(y, x, groups, args, work, out)``. Kernels return NaN where a statistic is
undefined for a unit (the variance of one observation, quantiles of an outcome a unit never
produced); aggregates skip such units.

Moments use the conventions of :mod:`scipy.stats`: sample variance with ``ddof=1``, skewness
``m3 / m2**1.5`` and excess kurtosis ``m4 / m2**2 - 3`` from biased central moments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

from simfit.errors import StatisticsError
from simfit.statistics._numeric import solve_normal_equations, sorted_column, sorted_quantile
from simfit.statistics.spec import ColumnRef, UnitStatistic, _pct, _probs

__all__ = [
    "mean",
    "log_mean",
    "var",
    "sd",
    "skewness",
    "kurtosis",
    "moments",
    "quantiles",
    "autocorr",
    "ols",
    "ar",
    "proportions",
    "conditional_quantiles",
    "group_variances",
]

_MEAN, _VAR, _SD, _SKEW, _KURT = 1, 2, 3, 4, 5
_MOMENT_LABELS = {_MEAN: "mean", _VAR: "var", _SD: "sd", _SKEW: "skew", _KURT: "kurt"}


# ---------------------------------------------------------------------------- moments


# Sums may be reassociated (vectorised); results stay deterministic for a given build.
_SUMS = {"reassoc", "contract"}


@njit(cache=True, fastmath=_SUMS)
def mean_var_kernel(y, x, groups, args, work, out):
    """args = (column, code, ...) with codes 1 mean, 2 var, 3 sd: one pass of sums shifted by the
    first value (accurate unless the spread is tiny next to the distance from that value)."""
    col = int(args[0])
    n = y.shape[0]
    shift = y[0, col]
    s1 = 0.0
    s2 = 0.0
    for k in range(n):
        d = y[k, col] - shift
        s1 += d
        s2 += d * d
    var = max(s2 - s1 * s1 / n, 0.0) / (n - 1) if n > 1 else np.nan
    for j in range(1, args.shape[0]):
        code = args[j]
        if code == 1.0:
            out[j - 1] = shift + s1 / n
        elif code == 2.0:
            out[j - 1] = var
        else:
            out[j - 1] = math.sqrt(var)


@njit(cache=True, fastmath=_SUMS)
def moments_kernel(y, x, groups, args, work, out):
    """args = (column, code, ...) with codes 1 mean, 2 var, 3 sd, 4 skew, 5 kurt (two passes)."""
    col = int(args[0])
    n = y.shape[0]
    s = 0.0
    lo = y[0, col]
    hi = y[0, col]
    for k in range(n):
        v = y[k, col]
        s += v
        lo = min(lo, v)
        hi = max(hi, v)
    m = s / n
    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    if hi > lo:  # a constant unit has exactly zero central moments (not rounding noise)
        for k in range(n):
            d = y[k, col] - m
            d2 = d * d
            m2 += d2
            m3 += d2 * d
            m4 += d2 * d2
    for j in range(1, args.shape[0]):
        code = args[j]
        if code == 1.0:
            out[j - 1] = m
        elif code == 2.0:
            out[j - 1] = m2 / (n - 1) if n > 1 else np.nan
        elif code == 3.0:
            out[j - 1] = math.sqrt(m2 / (n - 1)) if n > 1 else np.nan
        elif code == 4.0:
            out[j - 1] = (m3 / n) / (m2 / n) ** 1.5 if m2 > 0.0 else np.nan
        else:
            out[j - 1] = (m4 / n) / (m2 / n) ** 2 - 3.0 if m2 > 0.0 else np.nan


def _moment_statistic(value: ColumnRef, codes: Sequence[int]) -> UnitStatistic:
    return UnitStatistic(
        kernel=mean_var_kernel if max(codes) <= _SD else moments_kernel,
        labels=tuple(_MOMENT_LABELS[c] for c in codes),
        value=value,
        args=lambda layout: [layout.value(value), *codes],
    )


def mean(value: ColumnRef = 0) -> UnitStatistic:
    """Mean of the unit's observations of ``value`` (label ``mean``)."""
    return _moment_statistic(value, [_MEAN])


@njit(cache=True, fastmath=_SUMS)
def log_mean_kernel(y, x, groups, args, work, out):
    """args = (column,): log of the unit's mean (NaN when the mean is not positive)."""
    col = int(args[0])
    s = 0.0
    for k in range(y.shape[0]):
        s += y[k, col]
    m = s / y.shape[0]
    out[0] = math.log(m) if m > 0.0 else np.nan


def log_mean(value: ColumnRef = 0) -> UnitStatistic:
    """Log of the mean of the unit's observations (label ``logmean``): for positive data whose
    unit means vary multiplicatively, e.g. rates or concentrations."""
    return UnitStatistic(kernel=log_mean_kernel, labels=("logmean",), value=value, args=lambda layout: [layout.value(value)])


def var(value: ColumnRef = 0) -> UnitStatistic:
    """Sample variance (ddof=1; label ``var``)."""
    return _moment_statistic(value, [_VAR])


def sd(value: ColumnRef = 0) -> UnitStatistic:
    """Sample standard deviation (ddof=1; label ``sd``)."""
    return _moment_statistic(value, [_SD])


def skewness(value: ColumnRef = 0) -> UnitStatistic:
    """Skewness ``m3 / m2**1.5`` (label ``skew``)."""
    return _moment_statistic(value, [_SKEW])


def kurtosis(value: ColumnRef = 0) -> UnitStatistic:
    """Excess kurtosis ``m4 / m2**2 - 3`` (label ``kurt``)."""
    return _moment_statistic(value, [_KURT])


def moments(value: ColumnRef = 0, which: Sequence[str] = ("mean", "sd", "skew", "kurt")) -> UnitStatistic:
    """Several moments in one pass; ``which`` from mean, var, sd, skew, kurt."""
    lookup = {v: k for k, v in _MOMENT_LABELS.items()}
    unknown = [w for w in which if w not in lookup]
    if unknown or not which:
        raise StatisticsError(f"moments: unknown moment(s) {unknown}; choose from {', '.join(lookup)}.")
    return _moment_statistic(value, [lookup[w] for w in which])


# ---------------------------------------------------------------------------- quantiles


@njit(cache=True)
def quantiles_kernel(y, x, groups, args, work, out):
    """args = (column, p1, p2, ...)."""
    n = y.shape[0]
    v = sorted_column(y, int(args[0]), work)
    for j in range(1, args.shape[0]):
        out[j - 1] = sorted_quantile(v, n, args[j])


def quantiles(probs: Sequence[float], value: ColumnRef = 0) -> UnitStatistic:
    """Quantiles of the unit's observations (linear interpolation; labels ``q10``, ``q50``, ...)."""
    ps = _probs(probs, "quantiles")
    return UnitStatistic(
        kernel=quantiles_kernel,
        labels=tuple(_pct(p) for p in ps),
        value=value,
        args=lambda layout: [layout.value(value), *ps],
        work=lambda n: n,
    )


@njit(cache=True)
def conditional_quantiles_kernel(y, x, groups, args, work, out):
    """args = (column, outcome column, outcome value, p1, p2, ...)."""
    col = int(args[0])
    ocol = int(args[1])
    target = args[2]
    m = 0
    for k in range(y.shape[0]):
        if y[k, ocol] == target:
            work[m] = y[k, col]
            m += 1
    v = work[:m]
    v.sort()
    for j in range(3, args.shape[0]):
        out[j - 3] = sorted_quantile(v, m, args[j])


def conditional_quantiles(
    probs: Sequence[float], value: ColumnRef, outcome: ColumnRef, outcome_value: float
) -> UnitStatistic:
    """Quantiles of ``value`` among the observations whose ``outcome`` equals ``outcome_value``
    (e.g. response times of correct responses). NaN for units without such observations.
    Labels ``q50|response=1``."""
    ps = _probs(probs, "conditional_quantiles")
    tag = f"{outcome}={outcome_value:g}"
    return UnitStatistic(
        kernel=conditional_quantiles_kernel,
        labels=tuple(f"{_pct(p)}|{tag}" for p in ps),
        value=value,
        args=lambda layout: [layout.value(value), layout.value(outcome), float(outcome_value), *ps],
        work=lambda n: n,
    )


# ---------------------------------------------------------------------------- dependence


@njit(cache=True)
def autocorr_kernel(y, x, groups, args, work, out):
    """args = (column, lag1, lag2, ...): sample autocorrelations (biased, as in statsmodels' acf)."""
    col = int(args[0])
    n = y.shape[0]
    s = 0.0
    lo = y[0, col]
    hi = y[0, col]
    for k in range(n):
        v = y[k, col]
        s += v
        lo = min(lo, v)
        hi = max(hi, v)
    m = s / n
    c0 = 0.0
    if hi > lo:  # constant series: autocorrelation undefined (NaN below)
        for k in range(n):
            d = y[k, col] - m
            c0 += d * d
    for j in range(1, args.shape[0]):
        lag = int(args[j])
        if lag >= n or c0 <= 0.0:
            out[j - 1] = np.nan
            continue
        c = 0.0
        for k in range(n - lag):
            c += (y[k, col] - m) * (y[k + lag, col] - m)
        out[j - 1] = c / c0


def autocorr(lags: int | Sequence[int] = 1, value: ColumnRef = 0) -> UnitStatistic:
    """Autocorrelation(s) of the unit's series at the given lag(s) (labels ``acf1``, ...)."""
    raw = np.atleast_1d(lags)
    lag_list = tuple(int(k) for k in raw)
    if not lag_list or any(k < 1 for k in lag_list) or any(k != r for k, r in zip(lag_list, raw)):
        raise StatisticsError(f"autocorr: lags must be positive integers, got {lags!r}.")
    return UnitStatistic(
        kernel=autocorr_kernel,
        labels=tuple(f"acf{k}" for k in lag_list),
        value=value,
        args=lambda layout: [layout.value(value), *lag_list],
    )


@njit(cache=True, inline="always")
def _regressor(y, x, col, xcols, nx, t, j):
    # Regressor j of row t: covariates first, then lags of y.
    if j < nx:
        return x[t, int(xcols[j])]
    return y[t - (j - nx + 1), col]


@njit(cache=True)
def _regression(y, x, col, xcols, intercept, ar_order, work, out):
    # Least squares of y[t, col] on (1?, x[t, xcols]..., y[t-1, col], ..., y[t-p, col]), with the
    # regressors centred when there is an intercept (normal equations stay well conditioned when
    # the data sit far from zero); the intercept is recovered from the means.
    n = y.shape[0]
    nx = xcols.shape[0]
    k = nx + ar_order
    p = intercept + k
    if n - ar_order < p:
        out[:p] = np.nan
        return
    xtx = work[: k * k]
    xty = work[k * k : k * k + k]
    means = work[k * k + k : k * k + 2 * k + 1]  # regressors, then the target
    xtx[:] = 0.0
    xty[:] = 0.0
    means[:] = 0.0
    rows = n - ar_order
    if intercept:
        for t in range(ar_order, n):
            for j in range(k):
                means[j] += _regressor(y, x, col, xcols, nx, t, j)
            means[k] += y[t, col]
        for j in range(k + 1):
            means[j] /= rows
    for t in range(ar_order, n):
        target = y[t, col] - means[k]
        for a in range(k):
            ra = _regressor(y, x, col, xcols, nx, t, a) - means[a]
            xty[a] += ra * target
            for b in range(a + 1):
                xtx[a * k + b] += ra * (_regressor(y, x, col, xcols, nx, t, b) - means[b])
    for a in range(k):
        for b in range(a):
            xtx[b * k + a] = xtx[a * k + b]
    if k > 0:
        solve_normal_equations(xtx, xty, k)
    const = means[k]
    for a in range(k):
        const -= xty[a] * means[a]
    if intercept:
        out[0] = const
    for a in range(k):
        out[intercept + a] = xty[a]


@njit(cache=True)
def ols_kernel(y, x, groups, args, work, out):
    """args = (column, intercept 0/1, covariate column, ...)."""
    _regression(y, x, int(args[0]), args[2:], int(args[1]), 0, work, out)


@njit(cache=True)
def ar_kernel(y, x, groups, args, work, out):
    """args = (column, intercept 0/1, order p)."""
    _regression(y, x, int(args[0]), args[3:3], int(args[1]), int(args[2]), work, out)


def ols(covariates: Sequence[ColumnRef], value: ColumnRef = 0, intercept: bool = True) -> UnitStatistic:
    """Least-squares coefficients of ``value`` on observation covariates, per unit.

    Labels ``ols.const`` (if ``intercept``) and ``ols.<covariate name>``. NaN when the unit's
    design is rank deficient.
    """
    covs = tuple(covariates) if not isinstance(covariates, (str, int)) else (covariates,)
    if not covs and not intercept:
        raise StatisticsError("ols: give at least one covariate or keep the intercept.")

    def args(layout):
        return [layout.value(value), float(intercept), *(layout.covariate(c) for c in covs)]

    labels = (("ols.const",) if intercept else ()) + tuple(
        f"ols.{c}" if isinstance(c, str) else f"ols.x{c}" for c in covs
    )
    p = len(labels)
    return UnitStatistic(kernel=ols_kernel, labels=labels, value=value, args=args, work=p * p + 2 * p + 1)


def ar(order: int = 1, value: ColumnRef = 0, intercept: bool = True) -> UnitStatistic:
    """Coefficients of an AR(p) regression fitted to the unit's series by least squares.

    Labels ``ar.const`` (if ``intercept``), ``ar1``, ..., ``ar<p>``.
    """
    p_ar = int(order)
    if p_ar < 1 or p_ar != order:
        raise StatisticsError(f"ar: order must be a positive integer, got {order!r}.")
    labels = (("ar.const",) if intercept else ()) + tuple(f"ar{k}" for k in range(1, p_ar + 1))
    p = len(labels)
    return UnitStatistic(
        kernel=ar_kernel,
        labels=labels,
        value=value,
        args=lambda layout: [layout.value(value), float(intercept), p_ar],
        work=p * p + 2 * p + 1,
    )


# ---------------------------------------------------------------------------- discrete outcomes


@njit(cache=True)
def proportions_kernel(y, x, groups, args, work, out):
    """args = (column, v1, v2, ...): share of observations equal to each value."""
    col = int(args[0])
    n = y.shape[0]
    for j in range(1, args.shape[0]):
        c = 0
        for k in range(n):
            if y[k, col] == args[j]:
                c += 1
        out[j - 1] = c / n


def proportions(values: Sequence[float], value: ColumnRef = 0) -> UnitStatistic:
    """Share of the unit's observations equal to each of ``values`` (labels ``p[1]``, ...)."""
    vs = tuple(float(v) for v in np.atleast_1d(values))
    if not vs:
        raise StatisticsError("proportions: give at least one outcome value.")
    return UnitStatistic(
        kernel=proportions_kernel,
        labels=tuple(f"p[{v:g}]" for v in vs),
        value=value,
        args=lambda layout: [layout.value(value), *vs],
    )


# ---------------------------------------------------------------------------- nested groups


@njit(cache=True)
def group_variances_kernel(y, x, groups, args, work, out):
    """args = (column,): pooled within-group variance and variance of group means in the unit."""
    col = int(args[0])
    n_groups = groups.shape[0] - 1
    n = y.shape[0]
    within = 0.0
    total = 0.0
    for g in range(n_groups):
        lo = groups[g]
        hi = groups[g + 1]
        s = 0.0
        for k in range(lo, hi):
            s += y[k, col]
        m = s / (hi - lo)
        work[g] = m
        total += m
        for k in range(lo, hi):
            d = y[k, col] - m
            within += d * d
    out[0] = within / (n - n_groups) if n > n_groups else np.nan
    if n_groups > 1:
        gm = total / n_groups
        between = 0.0
        for g in range(n_groups):
            d = work[g] - gm
            between += d * d
        out[1] = between / (n_groups - 1)
    else:
        out[1] = np.nan


def group_variances(value: ColumnRef = 0) -> UnitStatistic:
    """For units made of groups (three-level data): the pooled within-group variance and the
    variance of the group means within the unit (labels ``within_var``, ``between_var``)."""
    return UnitStatistic(
        kernel=group_variances_kernel,
        labels=("within_var", "between_var"),
        value=value,
        args=lambda layout: [layout.value(value)],
        work=lambda n: n,
    )
