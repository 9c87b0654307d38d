"""Convergence diagnostics of MCMC draws: rank-normalised split R-hat, bulk and tail ESS, MCSE.

The definitions are those of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021) as implemented
by ArviZ (``arviz.rhat(x, method="rank")``, ``arviz.ess(x, method=...)``, ``arviz.mcse(x)``), which
these functions reproduce to rounding error:

=================  ============================================================================
function           definition
=================  ============================================================================
:func:`rhat`       max of the split R-hat of the rank-normalised draws (bulk) and of the
                   rank-normalised draws folded about their median (tail)
:func:`ess_bulk`   split ESS of the rank-normalised draws
:func:`ess_tail`   min of the split ESS of the indicators ``x <= q05`` and ``x <= q95``
:func:`ess_mean`   split ESS of the draws themselves
:func:`mcse_mean`  ``sd(x) / sqrt(ess_mean(x))``
=================  ============================================================================

Draws are given per scalar quantity as an array of shape ``(n_chains, n_draws)`` (a 1-D array is
one chain). "Split" means that every chain is cut into a first and a last half, which then count
as separate chains; with an odd number of draws the middle draw is left out. Rank normalisation
replaces every draw by ``Phi^-1((r - 3/8) / (S + 1/4))``, with ``r`` its average rank among all
``S`` draws (Blom, 1958), so the bulk diagnostics are unchanged by any strictly increasing
transformation of the draws; the tail R-hat, which folds the draws about their median first, is
only unchanged by increasing affine ones.

The effective sample size estimates the autocorrelations of the pooled chains from the FFT
autocovariances of each chain and the between-chain variance, and truncates their sum with
Geyer's initial monotone sequence. It is bounded above by ``S log10(S)``.

Where ArviZ returns nan, so do these functions: draws containing nan, fewer than 4 draws per
chain, and (for :func:`rhat` only) fewer than 2 chains. ArviZ does not compute R-hat from the two
halves of a single chain. Constant draws have ``rhat`` nan and all three ESS equal to the number
of draws kept after splitting. Infinite draws are ranked like any other, so they leave
:func:`rhat`, :func:`ess_bulk` and :func:`ess_tail` defined, but make :func:`ess_mean` and
:func:`mcse_mean` nan. Where ArviZ's result is only rounding noise these functions return
the exact limit: ``rhat`` is ``inf`` when every chain is constant but the chains differ, and
``mcse_mean`` of constant draws is ``0.0``.

References
----------
Vehtari, A., Gelman, A., Simpson, D., Carpenter, B. and Bürkner, P.-C. (2021). Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC. *Bayesian
Analysis* 16(2), 667-718.

Blom, G. (1958). *Statistical Estimates and Transformed Beta-Variables*. Wiley, New York.

Geyer, C. J. (1992). Practical Markov chain Monte Carlo. *Statistical Science* 7(4), 473-483.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import fft as sp_fft
from scipy import special, stats

from simfit.errors import ArgumentError

__all__ = ["rhat", "ess_bulk", "ess_tail", "ess_mean", "mcse_mean", "summarize"]

#: Fewest draws per chain (before splitting) for which any diagnostic is computed.
MIN_DRAWS = 4
#: Fewest chains for which R-hat is computed.
MIN_CHAINS_RHAT = 2
#: Quantiles whose indicator ESS is the tail ESS.
TAIL_PROBS = (0.05, 0.95)
#: Blom's offset in the normal scores of the ranks.
_BLOM_OFFSET = 3.0 / 8.0


# --------------------------------------------------------------------------- input handling


def _as_chains(x: np.ndarray, name: str = "x") -> np.ndarray:
    """Return ``x`` as a float array of shape (n_chains, n_draws); a 1-D ``x`` is one chain."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ArgumentError(
            f"{name} must hold real numbers, got an array of dtype {arr.dtype}; "
            "pass the draws of one scalar quantity as floats"
        )
    if arr.ndim not in (1, 2):
        raise ArgumentError(
            f"{name} must have shape (n_chains, n_draws) or (n_draws,), got an array of shape "
            f"{arr.shape}; diagnose one scalar quantity at a time, or use summarize() for draws "
            "of shape (n_chains, n_draws, n_params)"
        )
    return np.atleast_2d(arr.astype(float, copy=False))


def _undefined(x: np.ndarray, min_chains: int) -> bool:
    """True when the diagnostic is nan: any nan draw, too few chains or too few draws per chain."""
    n_chains, n_draws = x.shape
    return bool(np.isnan(x).any()) or n_chains < min_chains or n_draws < MIN_DRAWS


# --------------------------------------------------------------------------- transformations


def _split_chains(x: np.ndarray) -> np.ndarray:
    """Cut each chain into halves.

    Parameters
    ----------
    x : ndarray, shape (n_chains, n_draws)

    Returns
    -------
    ndarray, shape (2 * n_chains, n_draws // 2)
        First halves of all chains, then last halves; the middle draw of an odd-length chain is
        dropped.
    """
    half = x.shape[1] // 2
    return np.vstack((x[:, :half], x[:, x.shape[1] - half :]))


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the average ranks of all draws pooled.

    Parameters
    ----------
    x : ndarray, shape (n_chains, n_draws)

    Returns
    -------
    ndarray, shape (n_chains, n_draws)
        ``Phi^-1((r - 3/8) / (x.size + 1/4))`` with ``r`` the rank of each draw among all draws;
        ties share their average rank. A nan draw stays nan.
    """
    ranks = stats.rankdata(x, method="average", nan_policy="omit")
    probs = (ranks - _BLOM_OFFSET) / (ranks.size - 2.0 * _BLOM_OFFSET + 1.0)
    return special.ndtri(probs).reshape(x.shape)


def _quantile(x: np.ndarray, prob: float) -> float:
    """Quantile of all draws pooled, by linear interpolation between order statistics.

    This is Hyndman and Fan's type 7 (R's default), evaluated in the same floating-point order as
    ``scipy.stats.mstats.mquantiles(x, prob, alphap=1, betap=1)`` so that draws tied with the
    quantile fall on the same side of it.
    """
    v = np.sort(x, axis=None)
    n = v.size
    aleph = n * prob + (1.0 - prob)
    k = int(np.floor(np.clip(aleph, 1, n - 1)))
    gamma = float(np.clip(aleph - k, 0.0, 1.0))
    return (1.0 - gamma) * v[k - 1] + gamma * v[k]


def _autocov(x: np.ndarray) -> np.ndarray:
    """Biased autocovariances of each chain at every lag, by FFT.

    Parameters
    ----------
    x : ndarray, shape (n_chains, n_draws)

    Returns
    -------
    ndarray, shape (n_chains, n_draws)
        ``acov[c, t] = sum_i (x[c, i] - xbar_c)(x[c, i + t] - xbar_c) / n_draws``.
    """
    n = x.shape[1]
    # Zero-padding to at least 2n - 1 turns the circular correlation into the linear one.
    m = sp_fft.next_fast_len(2 * n, real=True)
    spectrum = sp_fft.rfft(x - x.mean(axis=1, keepdims=True), n=m, axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    return sp_fft.irfft(power, n=m, axis=1)[:, :n] / n


# --------------------------------------------------------------------------- core estimators


def _rhat_core(x: np.ndarray) -> float:
    """Potential scale reduction factor of already split and transformed chains.

    Parameters
    ----------
    x : ndarray, shape (n_chains, n_draws)

    Returns
    -------
    float
        ``sqrt(((n - 1) / n * W + B / n) / W)`` with ``W`` the mean within-chain variance and
        ``B / n`` the variance of the chain means; nan if ``x`` holds a nan or is constant,
        ``inf`` if every chain is constant but not all chains are equal.
    """
    if np.isnan(x).any():
        return np.nan
    n_draws = x.shape[1]
    chain_var = x.var(axis=1, ddof=1)
    # The variance of identical floats may come out as a rounding residue instead of 0, and
    # dividing by that residue would turn a certain non-convergence into an arbitrary number.
    chain_var[np.ptp(x, axis=1) == 0.0] = 0.0
    within = chain_var.mean()
    if within == 0.0:
        return np.nan if np.ptp(x) == 0.0 else np.inf
    between = n_draws * x.mean(axis=1).var(ddof=1)
    return float(np.sqrt((between / within + n_draws - 1) / n_draws))


def _ess_core(x: np.ndarray) -> float:
    """Effective sample size of the mean of already split and transformed chains.

    Parameters
    ----------
    x : ndarray, shape (n_chains, n_draws)

    Returns
    -------
    float
        ``S / tau`` with ``S = x.size`` and ``tau = -1 + 2 sum_t rho_t`` the integrated
        autocorrelation time, truncated by Geyer's initial monotone sequence and bounded below
        by ``1 / log10(S)``; ``S`` for (numerically) constant draws, nan if ``x`` holds a nan or
        the autocorrelations are undefined.
    """
    if np.isnan(x).any():
        return np.nan
    if np.max(x) - np.min(x) < np.finfo(float).resolution:
        return float(x.size)
    n_chains, n_draws = x.shape
    acov = _autocov(x)
    mean_var = np.mean(acov[:, 0]) * n_draws / (n_draws - 1.0)
    var_plus = mean_var * (n_draws - 1.0) / n_draws
    if n_chains > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    # Autocorrelations of the pooled chains (Vehtari et al. 2021, eq. 10).
    rho_all = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus

    rho = np.zeros(n_draws)
    rho_even = 1.0
    rho[0] = rho_even
    rho_odd = rho_all[1]
    rho[1] = rho_odd
    # Initial positive sequence: keep pairs (rho_2k, rho_2k+1) while their sum is positive.
    t = 1
    while t < n_draws - 3 and rho_even + rho_odd > 0.0:
        rho_even = rho_all[t + 1]
        rho_odd = rho_all[t + 2]
        if rho_even + rho_odd >= 0.0:
            rho[t + 1] = rho_even
            rho[t + 2] = rho_odd
        t += 2
    max_t = t - 2
    if rho_even > 0.0:
        rho[max_t + 1] = rho_even
    # Initial monotone sequence: the pair sums must not increase.
    t = 1
    while t <= max_t - 2:
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2

    size = n_chains * n_draws
    tau = -1.0 + 2.0 * np.sum(rho[: max_t + 1]) + np.sum(rho[max_t + 1 : max_t + 2])
    # Antithetic chains can make tau tiny; the bound caps the ESS at S log10(S).
    tau = max(tau, 1.0 / np.log10(size))
    if np.isnan(rho).any():
        return np.nan
    return float(size / tau)


# --------------------------------------------------------------------------- public API


def rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat.

    The larger of the split R-hat of the rank-normalised draws (bulk) and that of the
    rank-normalised absolute deviations from the median (tail); equal to
    ``arviz.rhat(x, method="rank")``. Values above 1.01 indicate that the chains have not mixed.

    Parameters
    ----------
    x : array_like, shape (n_chains, n_draws) or (n_draws,)
        Draws of one scalar quantity; a 1-D array is a single chain.

    Returns
    -------
    float
        R-hat; nan if ``x`` holds a nan, has fewer than 2 chains or fewer than 4 draws per chain,
        or is constant; ``inf`` if every chain is constant but the chains differ.

    Raises
    ------
    ArgumentError
        If ``x`` is not 1-D or 2-D, or not real-valued.
    """
    x = _as_chains(x)
    if _undefined(x, MIN_CHAINS_RHAT):
        return np.nan
    split = _split_chains(x)
    with np.errstate(invalid="ignore"):
        bulk = _rhat_core(_z_scale(split))
        tail = _rhat_core(_z_scale(np.abs(split - np.median(split))))
    return float(max(bulk, tail))


def ess_bulk(x: np.ndarray) -> float:
    """Bulk effective sample size: the split ESS of the rank-normalised draws.

    Equal to ``arviz.ess(x, method="bulk")``. It measures how well the centre of the
    distribution is explored, and exists even when the mean does not.

    Parameters
    ----------
    x : array_like, shape (n_chains, n_draws) or (n_draws,)
        Draws of one scalar quantity; a 1-D array is a single chain.

    Returns
    -------
    float
        ESS, at most ``S log10(S)`` for the ``S = 2 * n_chains * (n_draws // 2)`` draws kept
        after splitting; ``S`` for constant draws; nan if ``x`` holds a nan or has fewer than 4
        draws per chain.

    Raises
    ------
    ArgumentError
        If ``x`` is not 1-D or 2-D, or not real-valued.
    """
    x = _as_chains(x)
    if _undefined(x, 1):
        return np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return _ess_core(_z_scale(_split_chains(x)))


def ess_tail(x: np.ndarray) -> float:
    """Tail effective sample size: the smaller split ESS of the 5% and 95% quantile indicators.

    Equal to ``arviz.ess(x, method="tail")``. The quantiles are those of all draws pooled
    (linear interpolation, R's type 7).

    Parameters
    ----------
    x : array_like, shape (n_chains, n_draws) or (n_draws,)
        Draws of one scalar quantity; a 1-D array is a single chain.

    Returns
    -------
    float
        ESS, with the same bounds and nan cases as :func:`ess_bulk`.

    Raises
    ------
    ArgumentError
        If ``x`` is not 1-D or 2-D, or not real-valued.
    """
    x = _as_chains(x)
    if _undefined(x, 1):
        return np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = (_ess_core(_split_chains((x <= _quantile(x, p)).astype(float))) for p in TAIL_PROBS)
    return float(min(low, high))


def ess_mean(x: np.ndarray) -> float:
    """Effective sample size of the mean: the split ESS of the draws themselves.

    Equal to ``arviz.ess(x, method="mean")``. Unlike :func:`ess_bulk` it is not rank-normalised,
    so it is only meaningful when the draws have a finite variance.

    Parameters
    ----------
    x : array_like, shape (n_chains, n_draws) or (n_draws,)
        Draws of one scalar quantity; a 1-D array is a single chain.

    Returns
    -------
    float
        ESS, with the same bounds and nan cases as :func:`ess_bulk`; also nan if a draw is
        infinite.

    Raises
    ------
    ArgumentError
        If ``x`` is not 1-D or 2-D, or not real-valued.
    """
    x = _as_chains(x)
    if _undefined(x, 1):
        return np.nan
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return _ess_core(_split_chains(x))


def mcse_mean(x: np.ndarray) -> float:
    """Monte Carlo standard error of the posterior mean, ``sd(x) / sqrt(ess_mean(x))``.

    Equal to ``arviz.mcse(x, method="mean")``; ``sd`` is the standard deviation (``ddof=1``) of
    all draws pooled, the middle draw of odd-length chains included.

    Parameters
    ----------
    x : array_like, shape (n_chains, n_draws) or (n_draws,)
        Draws of one scalar quantity; a 1-D array is a single chain.

    Returns
    -------
    float
        MCSE; ``0.0`` for constant draws; nan if ``x`` holds a nan or an infinite draw, or has
        fewer than 4 draws per chain.

    Raises
    ------
    ArgumentError
        If ``x`` is not 1-D or 2-D, or not real-valued.
    """
    x = _as_chains(x)
    if _undefined(x, 1):
        return np.nan
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ess = _ess_core(_split_chains(x))
        sd = 0.0 if np.ptp(x) == 0.0 else np.std(x, ddof=1)
        return float(sd / np.sqrt(ess))


def summarize(draws: np.ndarray, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Convergence diagnostics of every parameter of a multi-chain sample.

    Parameters
    ----------
    draws : array_like, shape (n_chains, n_draws, n_params)
        Posterior draws.
    names : sequence of str, length n_params, optional
        Parameter names, unique; ``x[0]``, ``x[1]``, ... by default.

    Returns
    -------
    pandas.DataFrame, shape (n_params, 4)
        Indexed by parameter name, with columns ``rhat`` (:func:`rhat`), ``ess_bulk``
        (:func:`ess_bulk`), ``ess_tail`` (:func:`ess_tail`) and ``mcse_mean`` (:func:`mcse_mean`).

    Raises
    ------
    ArgumentError
        If ``draws`` is not 3-D or not real-valued, or ``names`` does not give one unique name per
        parameter.
    """
    arr = np.asarray(draws)
    if arr.ndim != 3:
        raise ArgumentError(
            f"draws must have shape (n_chains, n_draws, n_params), got an array of shape {arr.shape}; "
            "add a trailing axis of length 1 for a single parameter"
        )
    n_params = arr.shape[2]
    if names is None:
        names = [f"x[{j}]" for j in range(n_params)]
    elif isinstance(names, str):
        raise ArgumentError(f"names must be a sequence of {n_params} names, got the string {names!r}")
    names = [str(name) for name in names]
    if len(names) != n_params:
        raise ArgumentError(
            f"names has {len(names)} entries but draws has {n_params} parameters (its last axis)"
        )
    if len(set(names)) != len(names):
        duplicated = sorted({name for name in names if names.count(name) > 1})
        raise ArgumentError(f"names must be unique; repeated: {', '.join(duplicated)}")
    rows = []
    for j in range(n_params):
        x = _as_chains(arr[:, :, j], name=f"draws[:, :, {j}] ({names[j]})")
        rows.append((rhat(x), ess_bulk(x), ess_tail(x), mcse_mean(x)))
    return pd.DataFrame(
        rows,
        index=pd.Index(names, name="parameter"),
        columns=["rhat", "ess_bulk", "ess_tail", "mcse_mean"],
        dtype=float,
    )
