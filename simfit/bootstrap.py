"""The k-step parametric bootstrap of an indirect-inference estimate.

A full parametric bootstrap re-fits every replicate: hundreds of fits. The k-step bootstrap
(Davidson and MacKinnon 1999; Andrews 2002) starts every replicate at the estimate and takes ``k``
Gauss-Newton steps on the replicate's own objective instead, which is as accurate to the order
that matters for intervals and costs a few fits in all:

1. one stream of ``B + S`` panels is simulated at the estimate ``psi_hat``; replicate ``b`` takes
   panel ``b`` as its dataset (statistics ``s_b``) and panels ``b+1 .. b+S`` as its simulated
   panels, and keeps those random keys wherever it moves (common random numbers of its own). Its
   data and its simulated panels never share a key, so its objective at the estimate has the
   fit's simulation noise; neighbouring replicates share keys, which makes their estimates
   correlated by about ``-1/S`` at most and costs ``B * S`` fewer panels than a stream per
   replicate;
2. its objective is ``g_b(u)' W g_b(u)`` with ``g_b(u) = s_b - mean_S s_sim(u; keys_b)`` and the
   fit's weighting ``W``;
3. ``u <- u + (G'WG)^-1 G'W g_b(u)``, ``k`` times, with the fit's Jacobian ``G``; a step that
   increases the replicate's objective is halved. A step below a quarter of a standard error is
   taken without simulating at its end (it moves the replicate by less than the noise of its own
   objective) and ends the replicate.

Every step of all replicates is one batched engine launch (``Simulator.statistics_batch`` with a
first simulation per row). The replicates' own standard errors, for studentised (bootstrap-t)
intervals, follow the sandwich formula's dependence on the estimate: the variance of ``A s``
(``A = (G'WG)^-1 G'W``) over each replicate's ``S`` panels where they were last simulated,
regressed (log-linearly, pooled over replicates) on the replicates' estimates and anchored at the
fit's own standard errors. Nothing more is simulated for them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from simfit.engine import Simulator
from simfit.errors import KernelError, SimfitError
from simfit.inference import normal_inverse
from simfit.params import ParamSet
from simfit.seeding import derive_seed

__all__ = ["BootstrapDraws", "kstep_bootstrap", "gauss_newton_map"]

_MAX_HALVINGS = 4
SETTLED_STEP = 0.25  # a Gauss-Newton step below this many standard errors ends a replicate


@dataclass(frozen=True)
class BootstrapDraws:
    """Parametric-bootstrap replicates of an estimate.

    Attributes
    ----------
    natural, free : ndarray, shape (n_boot, n_params)
        Replicate estimates on the natural and the unconstrained scale; rows of failed replicates
        are NaN.
    se_free : ndarray, shape (n_boot, n_params), or None
        Each replicate's own standard errors on the unconstrained scale (for bootstrap-t).
    method : {"kstep", "full"}
    steps : int or None
        Gauss-Newton steps per replicate (k-step only).
    seconds : float
        Wall time.
    n_simulations : int
        Panels simulated in all.
    """

    natural: np.ndarray
    free: np.ndarray
    se_free: np.ndarray | None
    method: str
    steps: int | None
    seconds: float
    n_simulations: int

    @property
    def n_boot(self) -> int:
        return int(self.natural.shape[0])

    @property
    def ok(self) -> np.ndarray:
        """Replicates that finished, shape (n_boot,): some finite estimate (a parameter the
        statistics do not identify is NaN in every replicate)."""
        return np.any(np.isfinite(self.free), axis=1)

    @property
    def failures(self) -> int:
        return int(np.sum(~self.ok))


def gauss_newton_map(jac: np.ndarray, weight: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``A = (G'WG)^-1 G'W`` restricted to the ``active`` parameters, shape (n_params, n_stats).

    Rows of inactive parameters (fixed on a bound) are zero; rows of parameters in directions the
    statistics do not identify (see :func:`~simfit.inference.normal_inverse`) are NaN.
    """
    n_params = jac.shape[1]
    out = np.zeros((n_params, jac.shape[0]))
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return out
    g = jac[:, idx]
    h_inv, unidentified = normal_inverse(g, weight)
    out[idx] = h_inv @ g.T @ weight
    out[idx[unidentified]] = np.nan
    return out


def kstep_bootstrap(
    simulator: Simulator,
    free_hat: np.ndarray,
    jac: np.ndarray,
    weight: np.ndarray,
    n_sims: int,
    n_boot: int,
    seed: int,
    steps: int = 2,
    se_free_hat: np.ndarray | None = None,
    active: np.ndarray | None = None,
) -> BootstrapDraws:
    """k-step parametric bootstrap around an estimate (see the module docstring).

    Parameters
    ----------
    simulator : Simulator
        With the fit's model, design and statistics.
    free_hat : ndarray, shape (n_params,)
        The estimate on the unconstrained scale.
    jac : ndarray, shape (n_stats, n_params)
        ``d mean s_sim / du`` at the estimate.
    weight : ndarray, shape (n_stats, n_stats)
        The fit's weighting matrix.
    n_sims : int
        Simulated panels per evaluation (the fit's ``S``).
    n_boot : int
        Replicates.
    seed : int
        Seeds the replicates' datasets and their common random numbers.
    steps : int
        Gauss-Newton steps ``k`` per replicate.
    se_free_hat : ndarray, shape (n_params,), optional
        The fit's standard errors (unconstrained scale). When given, each replicate gets its own
        standard errors for studentised intervals: the variance of ``A s`` over the replicate's
        ``S`` panels at its estimate varies with the estimate; a log-linear regression of these
        variances on the replicates' estimates, pooled over all replicates and anchored at
        ``se_free_hat``, gives ``se_b`` without simulating anything more.
    active : ndarray of bool, shape (n_params,), optional
        Parameters that move; the others (estimates on a bound) stay at the estimate.

    Returns
    -------
    BootstrapDraws
    """
    started = time.perf_counter()
    params: ParamSet = simulator.model.params
    n_params = len(params)
    free_hat = np.asarray(free_hat, dtype=float)
    active = np.ones(n_params, bool) if active is None else np.asarray(active, bool)
    a_map = gauss_newton_map(jac, weight, active)
    moving = active & np.all(np.isfinite(a_map), axis=1)
    a_step = np.where(np.isfinite(a_map), a_map, 0.0)
    stream = derive_seed(seed, 3, 0)
    psi_hat = params.to_natural(free_hat)

    # One stream of B + S panels at the estimate serves every replicate's data and first step:
    # replicate b takes panel b as its data and panels b+1 .. b+S as its simulated panels, and
    # keeps those keys (common random numbers) wherever it moves.
    pool = _batch(simulator, psi_hat[None], n_boot + n_sims, stream)[0]  # (B + S, n_stats)
    count = n_boot + n_sims
    observed = pool[:n_boot]
    panels = np.lib.stride_tricks.sliding_window_view(pool[1:], n_sims, axis=0).transpose(0, 2, 1)[:n_boot].copy()
    u = np.tile(free_hat, (n_boot, 1))
    alive = np.all(np.isfinite(observed), axis=1)

    def evaluate(rows_free: np.ndarray, replicates: np.ndarray) -> np.ndarray:
        """Simulated statistics of each replicate at its own keys, shape (len(rows), S, n_stats),
        in one launch."""
        nonlocal count
        count += rows_free.shape[0] * n_sims
        return _batch(simulator, params.to_natural(rows_free), n_sims, stream, replicates.astype(np.int64) + 1)

    def objective(g: np.ndarray) -> np.ndarray:
        q = np.einsum("bi,ij,bj->b", g, weight, g)
        return np.where(np.isfinite(q), q, np.inf)

    g = observed - panels.mean(axis=1)
    q = objective(g)
    alive &= np.isfinite(q)
    u_panels = u.copy()  # where each replicate's panels were simulated
    settled = ~alive  # replicates whose last step was below the noise: no further evaluation
    scale = None if se_free_hat is None else np.where(np.isfinite(se_free_hat) & (se_free_hat > 0), se_free_hat, np.inf)
    for _ in range(int(steps)):
        stepping = ~settled
        delta = np.where(stepping[:, None], np.nan_to_num(g) @ a_step.T, 0.0)
        if scale is not None:
            # A step below a quarter of a standard error moves the replicate by less than the
            # simulation noise of its own objective: taken as it is, and the replicate stops
            # (checking it costs S panels and, on a noisy objective, halvings that change nothing).
            small = stepping & np.all(np.abs(delta) < SETTLED_STEP * scale, axis=1)
            u[small] += delta[small]
            settled |= small
            stepping &= ~small
        rows = np.flatnonzero(stepping)
        if rows.size == 0:
            break
        u_new = u[rows] + delta[rows]
        panels_new = evaluate(u_new, rows)
        g_new = observed[rows] - panels_new.mean(axis=1)
        q_new = objective(g_new)
        worse = np.flatnonzero(q_new > q[rows])
        for _half in range(_MAX_HALVINGS):
            if worse.size == 0:
                break
            delta[rows[worse]] *= 0.5
            u_new[worse] = u[rows[worse]] + delta[rows[worse]]
            panels_new[worse] = evaluate(u_new[worse], rows[worse])
            g_new[worse] = observed[rows[worse]] - panels_new[worse].mean(axis=1)
            q_new[worse] = objective(g_new[worse])
            worse = worse[q_new[worse] > q[rows[worse]]]
        take = np.ones(rows.size, bool)
        take[worse] = False  # no improving step found: the replicate stays where it is
        settled[rows[worse]] = True
        t = rows[take]
        u[t], g[t], q[t], panels[t], u_panels[t] = u_new[take], g_new[take], q_new[take], panels_new[take], u_new[take]

    ok_rows = alive & np.all(np.isfinite(u[:, moving]), axis=1)
    unidentified = active & ~moving  # no bootstrap distribution in these directions
    se_free = None
    if se_free_hat is not None and n_sims >= 2:
        se_free = _replicate_se(panels @ a_step.T, u, u_panels, free_hat, np.asarray(se_free_hat, float), ok_rows, moving)
    free_out = np.full_like(u, np.nan)
    natural_out = np.full_like(u, np.nan)
    free_out[ok_rows] = u[ok_rows]
    natural_out[ok_rows] = params.to_natural(u[ok_rows])
    free_out[:, unidentified] = np.nan
    natural_out[:, unidentified] = np.nan
    return BootstrapDraws(
        natural=natural_out,
        free=free_out,
        se_free=se_free,
        method="kstep",
        steps=int(steps),
        seconds=time.perf_counter() - started,
        n_simulations=int(count),
    )


def _replicate_se(projected, u, u_panels, free_hat, se_free_hat, ok_rows, moving) -> np.ndarray:
    """Replicate standard errors ``se_b = se_hat exp(beta' (u_b - u_hat) / 2)``, shape (B, n_params).

    ``projected``: ``A s`` of each replicate's panels, simulated at ``u_panels`` (its estimate, or
    within a quarter of a standard error of it), shape (B, S, n_params). ``beta`` regresses the log
    of their variance over the panels on ``u_panels - u_hat`` (pooled over replicates: one
    replicate's S panels alone would give a noisy variance).
    """
    n_boot, n_params = u.shape
    out = np.full((n_boot, n_params), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        log_var = np.log(np.var(projected, axis=1, ddof=1))
    cols = np.flatnonzero(moving)
    if cols.size == 0:
        return out
    d = u[:, cols] - free_hat[cols]
    d_panels = u_panels[:, cols] - free_hat[cols]
    for j in cols:
        use = ok_rows & np.isfinite(log_var[:, j])
        if use.sum() <= cols.size + 2 or not np.isfinite(se_free_hat[j]):
            continue
        x = np.column_stack([np.ones(int(use.sum())), d_panels[use]])
        beta = np.linalg.lstsq(x, log_var[use, j], rcond=None)[0][1:]
        out[ok_rows, j] = se_free_hat[j] * np.exp(0.5 * d[ok_rows] @ beta)
    return out


def _batch(simulator: Simulator, rows: np.ndarray, n_sims: int, seed: int, first_sim: int | np.ndarray = 0) -> np.ndarray:
    """Statistics of ``n_sims`` panels per row (keys as in ``Simulator.statistics_batch``), NaN
    where a panel's statistics are not finite or a row cannot be simulated (a parameter at its
    bound)."""
    try:
        return simulator.statistics_batch(rows, n_sims=n_sims, seed=seed, first_sim=first_sim, failures="nan")
    except KernelError:  # a kernel raising stops the fit, as everywhere
        raise
    except SimfitError:
        if rows.shape[0] == 1:
            return np.full((1, n_sims, len(simulator.names)), np.nan)
        firsts = first_sim + n_sims * np.arange(rows.shape[0]) if np.ndim(first_sim) == 0 else np.asarray(first_sim)
        return np.concatenate([_batch(simulator, rows[i : i + 1], n_sims, seed, int(firsts[i])) for i in range(rows.shape[0])])
