"""Pooled statistics over all observations of a panel.

Pooling never materialises the observations: each unit contributes sufficient parts (counts,
means and central sums) that an aggregate combines exactly, with the pairwise update formulas of
Chan, Golub & LeVeque (1979) and Pébay (2008) for higher moments.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from simfit.errors import StatisticsError
from simfit.statistics.spec import Aggregate, ColumnRef, Pooled, UnitStatistic

__all__ = ["pooled_moments", "pooled_proportions"]

_CODES = {"mean": 1, "var": 2, "sd": 3, "skew": 4, "kurt": 5}


@njit(cache=True)
def central_sums_kernel(y, x, groups, args, work, out):
    """args = (column,): out = (n, mean, M2, M3, M4) with Mk the k-th central sum."""
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
    if hi > lo:  # a constant unit contributes exactly zero central sums
        for k in range(n):
            d = y[k, col] - m
            m2 += d * d
            m3 += d * d * d
            m4 += d * d * d * d
    out[0] = n
    out[1] = m
    out[2] = m2
    out[3] = m3
    out[4] = m4


@njit(cache=True)
def combine_moments_kernel(u, columns, args, work, out):
    """columns = (n, mean, M2, M3, M4) columns; args = moment codes (1 mean ... 5 kurt)."""
    cn = columns[0]
    na = 0.0
    ma = 0.0
    a2 = 0.0
    a3 = 0.0
    a4 = 0.0
    for i in range(u.shape[0]):
        nb = u[i, cn]
        mb = u[i, columns[1]]
        b2 = u[i, columns[2]]
        b3 = u[i, columns[3]]
        b4 = u[i, columns[4]]
        n = na + nb
        d = mb - ma
        d2 = d * d
        new4 = (
            a4 + b4
            + d2 * d2 * na * nb * (na * na - na * nb + nb * nb) / (n * n * n)
            + 6.0 * d2 * (na * na * b2 + nb * nb * a2) / (n * n)
            + 4.0 * d * (na * b3 - nb * a3) / n
        )
        new3 = a3 + b3 + d2 * d * na * nb * (na - nb) / (n * n) + 3.0 * d * (na * b2 - nb * a2) / n
        a2 = a2 + b2 + d2 * na * nb / n
        a3 = new3
        a4 = new4
        ma = ma + d * nb / n
        na = n
    for j in range(args.shape[0]):
        code = int(args[j])
        if code == 1:
            out[j] = ma
        elif code == 2:
            out[j] = a2 / (na - 1.0) if na > 1.0 else np.nan
        elif code == 3:
            out[j] = np.sqrt(a2 / (na - 1.0)) if na > 1.0 else np.nan
        elif code == 4:
            out[j] = (a3 / na) / (a2 / na) ** 1.5 if a2 > 0.0 else np.nan
        else:
            out[j] = (a4 / na) / (a2 / na) ** 2 - 3.0 if a2 > 0.0 else np.nan


def pooled_moments(value: ColumnRef = 0, which: Sequence[str] = ("mean", "var")) -> Pooled:
    """Moments of all observations of ``value`` pooled across units (``pooled:y.var``, ...)."""
    unknown = [w for w in which if w not in _CODES]
    if unknown or not which:
        raise StatisticsError(f"pooled_moments: unknown moment(s) {unknown}; choose from {', '.join(_CODES)}.")
    codes = tuple(float(_CODES[w]) for w in which)
    part = UnitStatistic(
        kernel=central_sums_kernel,
        labels=("n", "mean", "M2", "M3", "M4"),
        value=value,
        args=lambda layout: [layout.value(value)],
        hidden=True,
    )

    def combine(inputs: tuple[str, ...]) -> Aggregate:
        prefix = inputs[0].split(".", 1)[1].rsplit(".", 1)[0]  # "_pooledK.<value>.n" -> "<value>"
        return Aggregate(combine_moments_kernel, inputs, tuple(f"pooled:{prefix}.{w}" for w in which), codes)

    return Pooled(part, combine)


@njit(cache=True)
def counts_kernel(y, x, groups, args, work, out):
    """args = (column, v1, v2, ...): out = (n, count of v1, count of v2, ...)."""
    col = int(args[0])
    out[0] = y.shape[0]
    for j in range(1, args.shape[0]):
        c = 0
        for k in range(y.shape[0]):
            if y[k, col] == args[j]:
                c += 1
        out[j] = c


@njit(cache=True)
def combine_shares_kernel(u, columns, args, work, out):
    """columns = (n, count1, count2, ...): pooled shares."""
    total = 0.0
    for i in range(u.shape[0]):
        total += u[i, columns[0]]
    for j in range(1, columns.shape[0]):
        c = 0.0
        for i in range(u.shape[0]):
            c += u[i, columns[j]]
        out[j - 1] = c / total


def pooled_proportions(values: Sequence[float], value: ColumnRef = 0) -> Pooled:
    """Share of all observations equal to each of ``values`` (``pooled:y.p[1]``, ...)."""
    vs = tuple(float(v) for v in np.atleast_1d(values))
    if not vs:
        raise StatisticsError("pooled_proportions: give at least one outcome value.")
    labels = tuple(f"p[{v:g}]" for v in vs)
    part = UnitStatistic(
        kernel=counts_kernel,
        labels=("n", *(f"count[{v:g}]" for v in vs)),
        value=value,
        args=lambda layout: [layout.value(value), *vs],
        hidden=True,
    )

    def combine(inputs: tuple[str, ...]) -> Aggregate:
        prefix = inputs[0].split(".", 1)[1].rsplit(".", 1)[0]
        return Aggregate(combine_shares_kernel, inputs, tuple(f"pooled:{prefix}.{lab}" for lab in labels))

    return Pooled(part, combine)
