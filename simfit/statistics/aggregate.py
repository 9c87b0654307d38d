"""Aggregations across units: reduce the table of unit statistics to auxiliary statistics.

Kernels have the signature ``kernel(unit_stats, columns, args, work, out)``. They skip units whose
unit statistic is NaN (undefined for that unit) and return NaN only when no unit has a value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

from simfit.errors import StatisticsError
from simfit.statistics._numeric import sorted_quantile
from simfit.statistics.spec import Across, Aggregate, _pct, _probs

__all__ = [
    "across_mean",
    "across_sd",
    "across_quantiles",
    "mean_of",
    "mean_or",
    "sd_of",
    "sd_or",
    "skewness_of",
    "kurtosis_of",
    "quantiles_of",
    "corr",
]


@njit(cache=True, inline="always")
def _column_sum(u, c):
    """Sum and count of column ``c`` over the units where it is not NaN."""
    s = 0.0
    m = 0
    for i in range(u.shape[0]):
        v = u[i, c]
        if not math.isnan(v):
            s += v
            m += 1
    return s, m


@njit(cache=True, inline="always")
def _column_mean(u, c):
    """Mean of column ``c`` over the units where it is not NaN (NaN if none)."""
    s, m = _column_sum(u, c)
    return s / m if m > 0 else np.nan


@njit(cache=True)
def mean_kernel(u, columns, args, work, out):
    for j in range(columns.shape[0]):
        out[j] = _column_mean(u, columns[j])


@njit(cache=True)
def mean_or_kernel(u, columns, args, work, out):
    """columns = (a0, b0, a1, b1, ...): mean of column a over the units that have it; when no unit
    has it, the mean of column b."""
    for j in range(columns.shape[0] // 2):
        out[j] = _column_mean(u, columns[2 * j])
        if math.isnan(out[j]):
            out[j] = _column_mean(u, columns[2 * j + 1])


@njit(cache=True, inline="always")
def _column_sd(u, c, of_log=False):
    """Standard deviation (ddof=1) of column ``c`` over the units where it is not NaN, or of its
    log over the units where it is positive (``of_log``); NaN with fewer than two."""
    s = 0.0
    m = 0
    for i in range(u.shape[0]):
        v = u[i, c]
        if (v > 0.0) if of_log else not math.isnan(v):
            s += math.log(v) if of_log else v
            m += 1
    if m < 2:
        return np.nan
    mu = s / m
    ss = 0.0
    for i in range(u.shape[0]):
        v = u[i, c]
        if (v > 0.0) if of_log else not math.isnan(v):
            d = (math.log(v) if of_log else v) - mu
            ss += d * d
    return math.sqrt(ss / (m - 1))


@njit(cache=True)
def sd_kernel(u, columns, args, work, out):
    """args = () or (1.0,): the standard deviation across units of each column, or its log."""
    take_log = args.shape[0] > 0 and args[0] == 1.0
    for j in range(columns.shape[0]):
        out[j] = _column_sd(u, columns[j])
        if take_log:
            out[j] = math.log(out[j]) if out[j] > 0.0 else np.nan


@njit(cache=True)
def sd_or_kernel(u, columns, args, work, out):
    """columns = (a0, b0, a1, b1, ...): standard deviation of column a over the units that have
    it; with fewer than two such units, that of column b. args = () or (of_log, log): 1.0 in
    ``of_log`` takes the spread of the columns' logs; 1.0 in ``log`` reports the spread's log."""
    of_log = args.shape[0] > 0 and args[0] == 1.0
    take_log = args.shape[0] > 1 and args[1] == 1.0
    for j in range(columns.shape[0] // 2):
        out[j] = _column_sd(u, columns[2 * j], of_log)
        if math.isnan(out[j]):
            out[j] = _column_sd(u, columns[2 * j + 1], of_log)
        if take_log:
            out[j] = math.log(out[j]) if out[j] > 0.0 else np.nan


@njit(cache=True)
def shape_kernel(u, columns, args, work, out):
    """args = (code,): skewness (3) or excess kurtosis (4) across units of each column."""
    order = int(args[0])
    for j in range(columns.shape[0]):
        c = columns[j]
        s = 0.0
        m = 0
        lo = np.inf
        hi = -np.inf
        for i in range(u.shape[0]):
            v = u[i, c]
            if not math.isnan(v):
                s += v
                m += 1
                lo = min(lo, v)
                hi = max(hi, v)
        if m < 3 or not hi > lo:
            out[j] = np.nan
            continue
        mu = s / m
        m2 = 0.0
        mk = 0.0
        for i in range(u.shape[0]):
            v = u[i, c]
            if not math.isnan(v):
                d = v - mu
                m2 += d * d
                mk += d**order
        m2 /= m
        mk /= m
        if m2 <= 0.0:
            out[j] = np.nan
        elif order == 3:
            out[j] = mk / m2**1.5
        else:
            out[j] = mk / (m2 * m2) - 3.0


@njit(cache=True)
def quantiles_kernel(u, columns, args, work, out):
    n_p = args.shape[0]
    for j in range(columns.shape[0]):
        c = columns[j]
        m = 0
        for i in range(u.shape[0]):
            v = u[i, c]
            if not math.isnan(v):
                work[m] = v
                m += 1
        w = work[:m]
        w.sort()
        for k in range(n_p):
            out[j * n_p + k] = sorted_quantile(w, m, args[k])


@njit(cache=True)
def corr_kernel(u, columns, args, work, out):
    """columns = (a0, b0, a1, b1, ...): Pearson correlation of each pair over units with both."""
    for j in range(columns.shape[0] // 2):
        a = columns[2 * j]
        b = columns[2 * j + 1]
        sa = 0.0
        sb = 0.0
        m = 0
        for i in range(u.shape[0]):
            va = u[i, a]
            vb = u[i, b]
            if not (math.isnan(va) or math.isnan(vb)):
                sa += va
                sb += vb
                m += 1
        if m < 2:
            out[j] = np.nan
            continue
        ma = sa / m
        mb = sb / m
        saa = 0.0
        sbb = 0.0
        sab = 0.0
        for i in range(u.shape[0]):
            va = u[i, a]
            vb = u[i, b]
            if not (math.isnan(va) or math.isnan(vb)):
                saa += (va - ma) * (va - ma)
                sbb += (vb - mb) * (vb - mb)
                sab += (va - ma) * (vb - mb)
        out[j] = sab / math.sqrt(saa * sbb) if saa > 0.0 and sbb > 0.0 else np.nan


def across_mean() -> Across:
    """Mean across units of every unit statistic (names ``mean:<unit statistic>``)."""
    return Across(mean_kernel, "mean", lambda name: (f"mean:{name}",))


def across_sd() -> Across:
    """Standard deviation (ddof=1) across units of every unit statistic (``sd:<unit statistic>``)."""
    return Across(sd_kernel, "sd", lambda name: (f"sd:{name}",))


def across_quantiles(probs: Sequence[float]) -> Across:
    """Quantiles across units of every unit statistic (``q10:<unit statistic>``, ...)."""
    ps = _probs(probs, "across_quantiles")
    return Across(quantiles_kernel, "quantiles", lambda name: tuple(f"{_pct(p)}:{name}" for p in ps), ps)


def mean_of(*names: str) -> Aggregate:
    """Mean across units of the named unit statistics (``mean:<name>``)."""
    return Aggregate(mean_kernel, names, tuple(f"mean:{n}" for n in names))


def mean_or(name: str, fallback: str) -> Aggregate:
    """Mean across units of the unit statistic ``name`` (``mean:<name>``), or of ``fallback`` in a
    panel where no unit has a value of ``name``.

    For a statistic that a whole panel can lack, such as the median error response time when no
    subject makes an error: the result is then defined on every panel, and it equals
    ``mean_of(name)`` wherever that is defined. Like every statistic it is applied alike to the
    observed and the simulated panels, so the estimator stays consistent whatever the fallback;
    a fallback with the same expectation as ``name`` keeps the statistic informative.

    Examples
    --------
    >>> mean_or("rt.q50|cond=1,error", fallback="rt.q50|cond=1,correct")
    """
    if name == fallback:
        raise StatisticsError(f"mean_or: the fallback must be another unit statistic than {name!r}.")
    return Aggregate(mean_or_kernel, (name, fallback), (f"mean:{name}",))


def sd_of(*names: str, log: bool = False) -> Aggregate:
    """Standard deviation across units of the named unit statistics (``sd:<name>``), or its log
    (``log=True``, ``logsd:<name>``).

    The log suits a Gaussian synthetic likelihood (``simfit.sample``): a spread across a few tens
    of units of a skewed unit statistic is itself skewed and heavy-tailed (on the DDM, the spread
    of 20 subjects' fastest RT quantiles has skewness 2-3 and excess kurtosis 6-18; its log 0.4-0.7
    and 0.5-1.2). A panel where every unit has the same value has no log spread (NaN).
    """
    if log:
        return Aggregate(sd_kernel, names, tuple(f"logsd:{n}" for n in names), (1.0,))
    return Aggregate(sd_kernel, names, tuple(f"sd:{n}" for n in names))


def sd_or(name: str, fallback: str, of_log: bool = False, log: bool = False) -> Aggregate:
    """Standard deviation across units of the unit statistic ``name`` (``sd:<name>``), or of
    ``fallback`` in a panel where fewer than two units have a value of ``name``.

    The spread's counterpart of :func:`mean_or`: defined on every panel, and equal to
    ``sd_of(name)`` wherever that is defined.

    Parameters
    ----------
    name, fallback : str
        Unit statistics.
    of_log : bool
        The spread of the unit statistic's logs (``sdlog:<name>``; units where it is not
        positive are skipped): for a positive, right-skewed unit statistic such as a response-time
        quantile, whose spread across units of a log-normal unit parameter is otherwise itself
        heavy-tailed.
    log : bool
        Report the log of the spread (``logsd:<name>``, or ``logsdlog:<name>`` with ``of_log``).
        The log of a spread across a few tens of units is near-Gaussian with a variance that
        hardly changes with the spread (about ``1 / (2 (n_units - 1))`` where units differ by
        more than their noise), which suits a Gaussian synthetic likelihood whose covariance is
        estimated at one parameter value (``simfit.sample``).

    Examples
    --------
    >>> sd_or("rt.q10|cond=1,correct", fallback="rt.q50|cond=1,error")
    >>> sd_or("rt.q10|cond=1,correct", fallback="rt.q50|cond=1,error", of_log=True, log=True)
    """
    if name == fallback:
        raise StatisticsError(f"sd_or: the fallback must be another unit statistic than {name!r}.")
    prefix = ("log" if log else "") + "sd" + ("log" if of_log else "")
    args = (float(of_log), float(log)) if (of_log or log) else ()
    return Aggregate(sd_or_kernel, (name, fallback), (f"{prefix}:{name}",), args)


def skewness_of(*names: str) -> Aggregate:
    """Skewness across units of the named unit statistics (``skew:<name>``)."""
    return Aggregate(shape_kernel, names, tuple(f"skew:{n}" for n in names), (3.0,))


def kurtosis_of(*names: str) -> Aggregate:
    """Excess kurtosis across units of the named unit statistics (``kurt:<name>``), e.g. to test
    the normality of unit effects."""
    return Aggregate(shape_kernel, names, tuple(f"kurt:{n}" for n in names), (4.0,))


def quantiles_of(name: str, probs: Sequence[float]) -> Aggregate:
    """Quantiles across units of one unit statistic."""
    ps = _probs(probs, "quantiles_of")
    return Aggregate(quantiles_kernel, (name,), tuple(f"{_pct(p)}:{name}" for p in ps), ps)


def corr(*pairs: tuple[str, str]) -> Aggregate:
    """Correlation across units between pairs of unit statistics (``corr:<a>,<b>``).

    Examples
    --------
    >>> corr(("y.mean", "y.acf1"))
    """
    if not pairs:
        raise StatisticsError("corr: give at least one pair of unit statistic names.")
    for p in pairs:
        if len(p) != 2 or p[0] == p[1]:
            raise StatisticsError(f"corr: each pair must name two different unit statistics, got {p!r}.")
    return Aggregate(
        corr_kernel,
        tuple(n for p in pairs for n in p),
        tuple(f"corr:{a},{b}" for a, b in pairs),
    )
