"""Inference for indirect-inference estimates: Jacobian, sandwich covariance, J test,
identification diagnostics.

All functions work on the unconstrained scale ``u`` of the parameter transforms; the result
object maps to the natural scale with the delta method.

With ``g(u) = s_obs - mean_S s_sim(u)`` and ``G = d mean_S s_sim / du`` (central differences
under common random numbers), ``W`` the weighting and ``Omega`` the covariance of one panel's
statistics simulated at the estimate::

    Var(u_hat) = (1 + 1/S) (G'WG)^-1 G'W Omega W G (G'WG)^-1
    J          = g' W g ~ chi2(n_stats - n_params)   when W = ((1 + 1/S) Omega)^-1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from simfit.errors import warn

__all__ = [
    "fd_steps",
    "central_jacobian",
    "forward_jacobian",
    "sandwich",
    "JTest",
    "j_test",
    "Identification",
    "identification",
    "WeakIdentificationWarning",
]


class WeakIdentificationWarning(UserWarning):
    """The statistics barely move some parameter (combination): its estimate is unreliable."""


def fd_steps(u: np.ndarray, step) -> np.ndarray:
    """Absolute finite-difference steps ``step_j * max(1, |u_j|)``, shape (len(u),).

    ``step`` is one relative step for every coordinate or one per coordinate.
    """
    u = np.asarray(u, dtype=float)
    rel = np.broadcast_to(np.asarray(step, dtype=float), u.shape)
    return rel * np.maximum(1.0, np.abs(u))


def central_jacobian(func: Callable[[np.ndarray], np.ndarray], u: np.ndarray, step) -> np.ndarray:
    """Central-difference Jacobian of ``func`` at ``u``, shape (len(func(u)), len(u)).

    The step of coordinate ``j`` is ``step_j * max(1, |u_j|)`` (``step``: a float or one per
    coordinate).
    """
    u = np.asarray(u, dtype=float)
    steps = fd_steps(u, step)
    cols = []
    for j in range(u.size):
        h = steps[j]
        e = np.zeros_like(u)
        e[j] = h
        cols.append((func(u + e) - func(u - e)) / (2.0 * h))
    return np.column_stack(cols)


def forward_jacobian(
    func: Callable[[np.ndarray], np.ndarray], u: np.ndarray, step, f0: np.ndarray | None = None
) -> np.ndarray:
    """Forward-difference Jacobian of ``func`` at ``u`` (steps ``step_j * max(1, |u_j|)``), reusing
    ``f0 = func(u)`` when given."""
    u = np.asarray(u, dtype=float)
    f0 = func(u) if f0 is None else f0
    steps = fd_steps(u, step)
    cols = []
    for j in range(u.size):
        h = steps[j]
        e = np.zeros_like(u)
        e[j] = h
        cols.append((func(u + e) - f0) / h)
    return np.column_stack(cols)


def normal_inverse(jac: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(J'WJ)^-1`` over the identified directions, and which parameters are not identified.

    The inverse comes from the singular values of ``W^(1/2) J`` (not the eigenvalues of
    ``J'WJ``, which square its condition number), and a direction counts as unidentified at the
    numerical rank tolerance of :func:`identification`: a weak but real direction keeps a large,
    finite variance.

    Returns
    -------
    inverse : ndarray, shape (n_params, n_params)
        The generalised inverse on the identified directions.
    unidentified : ndarray of bool, shape (n_params,)
        Parameters with a component in a direction the statistics do not identify.
    """
    w = 0.5 * (weight + weight.T)
    w_eig, w_vec = np.linalg.eigh(w)
    root = (w_vec * np.sqrt(np.clip(w_eig, 0.0, None))) @ w_vec.T
    _, sv, vt = np.linalg.svd(root @ jac, full_matrices=True)
    tol = sv[0] * max(jac.shape) * np.finfo(float).eps if sv.size and sv[0] > 0 else 0.0
    keep = np.zeros(vt.shape[0], dtype=bool)
    keep[: sv.size] = sv > tol
    inverse = (vt[keep].T / sv[keep[: sv.size]] ** 2) @ vt[keep]
    unidentified = np.any(np.abs(vt[~keep]) > 1e-8, axis=0)
    return inverse, unidentified


def sandwich(jac: np.ndarray, weight: np.ndarray, omega: np.ndarray, n_sims: int) -> np.ndarray:
    """Covariance of the estimator on the unconstrained scale, shape (n_params, n_params).

    Parameters the statistics do not identify (see :func:`normal_inverse`) get infinite variance,
    and their covariances NaN: a generalised inverse would report them as known exactly.
    """
    a_inv, unidentified = normal_inverse(jac, weight)
    meat = jac.T @ weight @ omega @ weight @ jac
    cov = (1.0 + 1.0 / n_sims) * a_inv @ meat @ a_inv
    cov = 0.5 * (cov + cov.T)
    cov[unidentified, :] = np.nan
    cov[:, unidentified] = np.nan
    cov[unidentified, unidentified] = np.inf
    return cov


@dataclass(frozen=True)
class JTest:
    """Hansen/Sargan test of the over-identifying restrictions.

    Attributes
    ----------
    statistic : float
    df : int
        Number of statistics minus number of parameters.
    pvalue : float
        Upper tail of chi-square(df); NaN when the model is exactly identified.
    pvalue_simulated : float
        Share of panels simulated at the estimate whose own J (linearised: their deviation from
        the simulated mean, projected off the Jacobian's span) is at least the observed one; it
        needs no Gaussian statistics (a heavy-tailed statistic makes the chi-square tail too
        thin). NaN where not computed.
    n_simulated : int
        Panels behind ``pvalue_simulated``.
    """

    statistic: float
    df: int
    pvalue: float
    pvalue_simulated: float = float("nan")
    n_simulated: int = 0

    def __str__(self) -> str:
        if self.df <= 0:
            return "exactly identified (as many statistics as parameters): no J test"
        text = f"J = {self.statistic:.4g} on {self.df} df, p = {self.pvalue:.4g}"
        if self.n_simulated:
            text += f" (simulated p = {self.pvalue_simulated:.3g} from {self.n_simulated} panels)"
        return text


def j_test(
    moments: np.ndarray, weight: np.ndarray, n_params: int, draws: np.ndarray | None = None, jac: np.ndarray | None = None,
    n_sims: int = 0,
) -> JTest:
    """J statistic ``g' W g`` with ``W`` the optimal weighting, and its chi-square p-value.

    With ``draws`` (n, n_stats: panels simulated at the estimate), ``jac`` (d mean statistics /
    d parameters) and ``n_sims`` (S), also its simulated p-value: each panel's deviation from the
    panels' mean, scaled by ``sqrt(1 + 1/S)`` (the observed statistics' noise plus that of the
    mean of S panels), gives a J of its own after projecting off the Jacobian's span in the
    metric ``W`` (what the estimate absorbs), ``e' (W - W G (G'WG)^-1 G'W) e``.
    """
    j = float(moments @ weight @ moments)
    df = int(moments.size - n_params)
    p = float(stats.chi2.sf(j, df)) if df > 0 else float("nan")
    if draws is None or jac is None or df <= 0:
        return JTest(statistic=j, df=df, pvalue=p)
    e = (np.asarray(draws, dtype=float) - np.mean(draws, axis=0)) * np.sqrt(1.0 + 1.0 / max(int(n_sims), 1))
    wg = weight @ jac
    a = jac.T @ wg
    proj = weight - wg @ np.linalg.pinv(0.5 * (a + a.T)) @ wg.T
    simulated = np.einsum("ki,ij,kj->k", e, proj, e)
    return JTest(statistic=j, df=df, pvalue=p, pvalue_simulated=float(np.mean(simulated >= j)), n_simulated=int(e.shape[0]))


@dataclass(frozen=True)
class Identification:
    """Local identification of the parameters by the statistics.

    Attributes
    ----------
    sensitivity : ndarray, shape (n_stats, n_params)
        Standardised Jacobian: change of each statistic, in simulated standard deviations of
        one panel, per unit change of each parameter on the unconstrained scale.
    singular_values : ndarray
        Of the standardised Jacobian, largest first.
    condition : float
        Largest over smallest singular value (inf when rank deficient).
    rank : int
    weakest : ndarray
        Right singular vector of the smallest singular value: the parameter combination the
        statistics pin down least.
    """

    sensitivity: np.ndarray
    singular_values: np.ndarray
    condition: float
    rank: int
    weakest: np.ndarray


def identification(
    jac: np.ndarray, omega: np.ndarray, names: tuple[str, ...], max_condition: float = 1e4
) -> Identification:
    """Diagnose the standardised Jacobian; warn when a parameter is weakly identified."""
    sd = np.sqrt(np.diag(omega))
    sens = jac / sd[:, None]
    _, sv, vt = np.linalg.svd(sens, full_matrices=False)
    tol = sv[0] * max(sens.shape) * np.finfo(float).eps if sv.size and sv[0] > 0 else 0.0
    rank = int(np.sum(sv > tol))
    cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
    weakest = vt[-1]
    if rank < len(names) or cond > max_condition:
        lead = np.argsort(-np.abs(weakest))
        involved = ", ".join(f"{names[k]} ({weakest[k]:+.2f})" for k in lead if abs(weakest[k]) > 0.3)
        warn(
            f"Weak identification: the Jacobian of the statistics has rank {rank} of {len(names)} "
            f"and condition number {cond:.3g}; the statistics barely move the combination "
            f"{involved}. Add statistics that respond to these parameters or fix some of them.",
            WeakIdentificationWarning,
        )
    return Identification(sensitivity=sens, singular_values=sv, condition=cond, rank=rank, weakest=weakest)
