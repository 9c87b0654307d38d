"""Small numerical helpers shared by the statistic kernels (all ``@njit``)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def sorted_column(y, col, work):
    """Column ``col`` of ``y`` copied into ``work[:n]`` and sorted; returns that view."""
    n = y.shape[0]
    v = work[:n]
    for k in range(n):
        v[k] = y[k, col]
    v.sort()
    return v


@njit(cache=True)
def sorted_quantile(v, n, p):
    """Quantile ``p`` of the first ``n`` entries of the sorted array ``v`` (NumPy's "linear")."""
    if n == 0:
        return np.nan
    h = (n - 1) * p
    lo = int(math.floor(h))
    hi = min(lo + 1, n - 1)
    return v[lo] + (h - lo) * (v[hi] - v[lo])


@njit(cache=True)
def solve_normal_equations(xtx, xty, p):
    """Solve ``xtx beta = xty`` in place by Cholesky (``xtx`` is p x p, flattened row-major).

    Returns False (leaving NaN in ``xty``) when ``xtx`` is not numerically positive definite.
    """
    scale = 0.0
    for i in range(p):
        scale = max(scale, abs(xtx[i * p + i]))
    tol = 1e-12 * max(scale, 1e-300)
    for j in range(p):
        acc = xtx[j * p + j]
        for k in range(j):
            acc -= xtx[j * p + k] * xtx[j * p + k]
        if acc <= tol:
            for i in range(p):
                xty[i] = np.nan
            return False
        d = math.sqrt(acc)
        xtx[j * p + j] = d
        for i in range(j + 1, p):
            acc = xtx[i * p + j]
            for k in range(j):
                acc -= xtx[i * p + k] * xtx[j * p + k]
            xtx[i * p + j] = acc / d
    for i in range(p):  # forward substitution L z = b
        acc = xty[i]
        for k in range(i):
            acc -= xtx[i * p + k] * xty[k]
        xty[i] = acc / xtx[i * p + i]
    for i in range(p - 1, -1, -1):  # back substitution L' beta = z
        acc = xty[i]
        for k in range(i + 1, p):
            acc -= xtx[k * p + i] * xty[k]
        xty[i] = acc / xtx[i * p + i]
    return True
