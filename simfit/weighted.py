"""Weighted draws: quantiles and resampling of importance-weighted (or equally weighted) draws.

Shared by the posterior results and the population summaries built from them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_quantile", "systematic_resample"]


def weighted_quantile(values: np.ndarray, q, weights: np.ndarray | None = None) -> np.ndarray:
    """Quantiles of weighted draws along the first axis.

    Parameters
    ----------
    values : ndarray, shape (n,) or (n, k)
    q : float or sequence of float in [0, 1]
    weights : ndarray, shape (n,), optional
        Non-negative; unweighted quantiles (numpy's default definition) when omitted.

    Returns
    -------
    ndarray, shape (len(q), k) or squeezed like ``numpy.quantile``.
    """
    values = np.asarray(values, dtype=float)
    if weights is None:
        return np.quantile(values, q, axis=0)
    qs = np.atleast_1d(np.asarray(q, dtype=float))
    cols = values.reshape(values.shape[0], -1)
    out = np.empty((qs.size, cols.shape[1]))
    w = np.asarray(weights, dtype=float)
    for j in range(cols.shape[1]):
        order = np.argsort(cols[:, j])
        v, ww = cols[order, j], w[order]
        # Midpoint rule: the k-th sorted draw sits at the middle of its weight's interval.
        cdf = (np.cumsum(ww) - 0.5 * ww) / ww.sum()
        out[:, j] = np.interp(qs, cdf, v)
    out = out.reshape((qs.size,) + values.shape[1:])
    return out[0] if np.ndim(q) == 0 else out


def systematic_resample(weights: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` equally weighted draws with the distribution of weighted draws
    (systematic resampling: one uniform, evenly spaced positions on the cumulative weights).

    Parameters
    ----------
    weights : ndarray, shape (n,)
        Non-negative, summing to one.
    size : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int, shape (size,)
    """
    positions = (rng.uniform() + np.arange(size)) / size
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), weights.size - 1)
