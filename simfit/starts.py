"""The global phase of a fit: where to start the local optimisations.

A local optimizer from a poor start can stop at another local optimum and report success. Before
the local phase, a fit evaluates the first-step objective at a scrambled Sobol sample of the
search box, all in one engine launch (``Simulator.statistics_batch``), and starts local
optimisations from the best few distinct points (the user's start among the candidates). Points
near the data by that distance can still lie in the basin of a poor optimum: when the start was
not among them and the best first-step objective is one the data reject
(:func:`objective_quantile`), the start is optimised from as well. The solutions are compared
afterwards (:func:`compare_solutions`): where two differ by more than their standard errors with
objectives that do not tell them apart, the fit warns.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import qmc

from simfit.engine import Simulator
from simfit.params import ParamSet

__all__ = [
    "search_box", "global_candidates", "Screening", "objective_quantile", "compare_solutions", "LocalSolutionsWarning",
]

_QUANTILE_KEY = 1  # fixed: the quantile is a property of W and omega, not of a fit's seed
_LOGIT_LIMIT = 8.0  # a logit-transformed parameter is searched within expit(+-8) of its range


class LocalSolutionsWarning(UserWarning):
    """Local optimisations from different starts ended at different solutions."""


def search_box(params: ParamSet, u_start: np.ndarray | None, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Box on the unconstrained scale searched by global methods, shape (n_params,) each.

    ``width`` on either side of the model's declared starts and, when given, of ``u_start`` (a
    factor ``exp(width)`` for log-transformed parameters), within ``+-8`` for logit-transformed
    ones.
    """
    u_default = params.to_free(params.start)
    u_start = u_default if u_start is None else u_start
    lower = np.minimum(u_default, u_start) - width
    upper = np.maximum(u_default, u_start) + width
    logit = np.array([p.transform == "logit" for p in params])
    lower[logit] = np.maximum(lower[logit], -_LOGIT_LIMIT)
    upper[logit] = np.minimum(upper[logit], _LOGIT_LIMIT)
    return lower, upper


class Screening(NamedTuple):
    """What the global phase found (see :func:`global_candidates`)."""

    starts: np.ndarray  # (k, n_params), k <= n_best, best first
    values: np.ndarray  # (k,) their screening objectives
    sample_best: np.ndarray  # (n_params,) the best point of the Sobol sample alone
    rejected: int  # points of the sample whose simulated statistics were not finite


def global_candidates(
    simulator: Simulator,
    observed: np.ndarray,
    n_sims: int,
    seed: int,
    box: tuple[np.ndarray, np.ndarray],
    u_start: np.ndarray,
    n_points: int,
    n_best: int,
) -> Screening:
    """Starting points for the local phase: the best ``n_best`` distinct points of a Sobol sample.

    The points are ranked by ``g' W g`` with ``S = n_sims`` panels per point and a diagonal ``W``
    from the variance of the statistics pooled over the sample (the median over points of each
    statistic's variance across its panels): a scale that depends neither on the start nor on any
    one point, so fits from different starts rank the sample alike.

    Parameters
    ----------
    simulator, observed, n_sims
        The statistics and ``S``.
    seed : int
        Scrambles the Sobol sample and keys the panels (each point gets its own keys).
    box : (ndarray, ndarray)
        Box on the unconstrained scale for the Sobol sample. A fit uses the box around the
        model's declared starts, so that the sample does not depend on the user's start and fits
        from different starts screen the same points.
    u_start : ndarray, shape (n_params,)
        The user's start (a candidate like the others).
    n_points, n_best : int

    Returns
    -------
    Screening
        ``starts`` (k, n_params), k <= n_best, best first, and ``values`` (k,), their screening
        objectives; ``sample_best`` (n_params,), the best point of the Sobol sample alone (without
        the start): where a fit simulates the covariance behind its first-step weighting, the same
        whatever the start; ``rejected``, the points of the sample where a simulated statistic is
        NaN or infinite (NaN or infinite simulator output, or a statistic undefined there), which
        are left out. When all are, the start alone is returned.

    Raises
    ------
    KernelError
        A kernel raised at some point of the sample: like everywhere else, that stops the fit.
    """
    params: ParamSet = simulator.model.params
    lower, upper = box
    sobol = qmc.Sobol(d=len(params), scramble=True, seed=np.random.default_rng(seed))
    points = np.vstack([u_start, qmc.scale(sobol.random(n_points), lower, upper)])
    natural = params.to_natural(points)
    sims = simulator.statistics_batch(natural, n_sims=n_sims, seed=seed, failures="nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points and statistics
        scale = np.nanmedian(np.var(sims, axis=1, ddof=1), axis=0)
    scale = np.where(np.isfinite(scale) & (scale > 0), scale, np.nanmax(np.abs(observed)) ** 2 + 1.0)
    g = observed[None, :] - sims.mean(axis=1)
    q = np.sum(g**2 / scale, axis=1)
    q = np.where(np.isfinite(q), q, np.inf)
    order = np.argsort(q, kind="stable")
    span = np.where(upper > lower, upper - lower, 1.0)
    chosen: list[int] = []
    for k in order:
        if not np.isfinite(q[k]) and chosen:
            break
        if all(np.max(np.abs(points[k] - points[c]) / span) > 0.05 for c in chosen):
            chosen.append(int(k))
        if len(chosen) == n_best:
            break
    sample_best = points[1 + int(np.argmin(q[1:]))] if np.isfinite(q[1:]).any() else u_start
    return Screening(points[chosen], q[chosen], sample_best, int(np.sum(~np.isfinite(q[1:]))))


def objective_quantile(weight: np.ndarray, omega: np.ndarray, n_sims: int, level: float, draws: int = 100_000) -> float:
    """Quantile of the objective ``g' W g`` at the true parameters.

    At the truth the moments ``g`` (observed minus the mean of ``S`` simulated panels) are about
    normal with covariance ``(1 + 1/S) omega``, so ``g' W g`` is a sum of chi-square(1) variables
    weighted by the eigenvalues of ``(1 + 1/S) C' omega C`` (``W = C C'``). The quantile is taken
    from ``draws`` draws of that sum with a fixed key (a scaled chi-square matched to its mean and
    variance falls short in the upper tail when one eigenvalue dominates, as it does for
    correlated statistics). A minimum lies below the objective at the truth, so a minimum above a
    high quantile is one the data reject.

    Parameters
    ----------
    weight, omega : ndarray, shape (n_stats, n_stats)
        The weighting matrix (positive definite) and the covariance of one panel's statistics.
    n_sims : int
        ``S``, simulated panels per evaluation.
    level : float
        In (0, 1).
    draws : int
        Monte Carlo draws of the weighted sum.

    Returns
    -------
    float
        The quantile; infinite when ``omega`` is not finite or ``weight`` not positive definite.
    """
    omega = np.asarray(omega, dtype=float)
    if not np.all(np.isfinite(omega)):
        return np.inf
    try:
        c = np.linalg.cholesky(np.asarray(weight, dtype=float))
    except np.linalg.LinAlgError:
        return np.inf
    lam = np.clip(np.linalg.eigvalsh((1.0 + 1.0 / n_sims) * (c.T @ omega @ c)), 0.0, None)
    rng = np.random.default_rng(_QUANTILE_KEY)
    total = np.zeros(draws)
    for value in lam:
        total += value * rng.chisquare(1.0, draws)
    return float(np.quantile(total, level))


def compare_solutions(
    params: ParamSet,
    solutions: list[tuple[np.ndarray, np.ndarray, float, bool]],
    best: int,
    se_free: np.ndarray,
) -> pd.DataFrame:
    """Table of local solutions and whether they agree with the chosen one (the fit warns only
    where solutions of its final objective disagree: ``simfit.estimation``).

    Parameters
    ----------
    solutions : list of (start, solution, objective, converged)
        Unconstrained-scale start and solution of each local run, its objective and success.
    best : int
        Index of the chosen solution.
    se_free : ndarray, shape (n_params,)
        Standard errors (unconstrained scale) at the chosen solution.

    Returns
    -------
    DataFrame
        One row per local run: the solution (natural scale), objective, its excess over the best,
        the largest distance to the chosen solution in standard errors, converged, agrees.
    """
    ref = solutions[best][1]
    rows = []
    for _start, sol, q, ok in solutions:
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.abs(sol - ref) / se_free
        dist = np.where(np.isfinite(dist), dist, np.where(np.abs(sol - ref) > 1e-8, np.inf, 0.0))
        far = float(np.max(dist)) if dist.size else 0.0
        excess = float(q - solutions[best][2])
        agrees = far <= 1.0
        rows.append({**dict(zip(params.names, params.to_natural(sol))), "objective": q, "excess": excess,
                     "distance_se": far, "converged": bool(ok), "agrees": agrees})
    frame = pd.DataFrame(rows)
    frame.index.name = "start"
    return frame
