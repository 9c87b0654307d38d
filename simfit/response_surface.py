"""A noise-aware local phase: a quadratic response surface of the moments around a solution.

Where the objective is rough at the finite-difference scale (a chaotic simulator, counts, choices,
per-unit fits that jump between optima as the simulated data change), finite differences see the
noise, not the slope: a gradient-based optimizer stops anywhere near the optimum, and a Jacobian
taken there is wrong by the jumps. Common random numbers cannot smooth what is not smooth, but
the moments are smooth *on average* over a region of the size of a standard error. So, as the
surrogate sampler does for the likelihood, :func:`refine_on_surface` evaluates the moments
``g(u)`` at a design of points around the solution (the centre, the axial points and a scrambled
Sobol sample of a box a few standard errors wide), fits each moment by a quadratic in the
parameters (linear and pure quadratic terms) and minimises ``g' W g`` of the fitted surface
inside the design. The estimate moves to that minimum (with a new design around it if it lies
outside the first); the surface's slope at the estimate is the Jacobian for inference, and the
regression's own uncertainty at the estimate is added to the estimator's covariance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy.stats import qmc

from simfit.errors import KernelError, SimfitError

__all__ = ["SurfaceRefinement", "refine_on_surface", "DESIGN_WIDTH_SE", "MAX_ROUNDS"]

#: Half-width of the design along each parameter, in standard errors of the estimate.
DESIGN_WIDTH_SE = 1.5
#: Designs (each around the previous surface's minimum, at most two widths away) before the
#: refinement gives up: from a local optimizer stopped short on a rough objective the surface
#: may need to walk several widths.
MAX_ROUNDS = 6


@dataclass(frozen=True)
class SurfaceRefinement:
    """The result of the noise-aware local phase.

    Attributes
    ----------
    u : ndarray, shape (n_params,)
        The minimum of the fitted surface's objective (unconstrained scale).
    jacobian : ndarray, shape (n_stats, n_params)
        Slope of the fitted moments at ``u`` (d g / du; the mean simulated statistics move the
        other way).
    cov_extra : ndarray, shape (n_params, n_params)
        Covariance the regression's error at ``u`` adds to the estimate.
    settled : bool
        The last design's surface had its minimum inside the design.
    rounds : int
    n_points : int
        Points evaluated in all.
    noise : float
        Residual standard deviation of the surface, in sampling standard deviations of the
        moments (root mean square over statistics).
    """

    u: np.ndarray
    jacobian: np.ndarray
    cov_extra: np.ndarray
    settled: bool
    rounds: int
    n_points: int
    noise: float


def _features(d: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((d.shape[0], 1)), d, d * d])


def refine_on_surface(
    moments: Callable[[np.ndarray], np.ndarray],
    u: np.ndarray,
    width: np.ndarray,
    weight: np.ndarray,
    moment_sd: np.ndarray,
    seed: int,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> SurfaceRefinement:
    """Move ``u`` to the minimum of a quadratic response surface of the moments around it.

    Parameters
    ----------
    moments : callable
        ``g(u)`` (observed minus mean simulated statistics, common random numbers), shape (n_stats,).
    u : ndarray, shape (n_params,)
        The solution of the local optimizer (unconstrained scale).
    width : ndarray, shape (n_params,)
        Half-width of the design along each parameter (e.g. ``DESIGN_WIDTH_SE`` standard errors).
    weight : ndarray, shape (n_stats, n_stats)
    moment_sd : ndarray, shape (n_stats,)
        Sampling standard deviation of each moment (for the reported noise).
    seed : int
        Seeds the Sobol design.
    lower, upper : ndarray, optional
        Bounds of the search (unconstrained scale).

    Returns
    -------
    SurfaceRefinement
    """
    u = np.asarray(u, dtype=np.float64).copy()
    p = u.size
    width = np.asarray(width, dtype=np.float64)
    lower = np.full(p, -np.inf) if lower is None else np.asarray(lower, dtype=np.float64)
    upper = np.full(p, np.inf) if upper is None else np.asarray(upper, dtype=np.float64)
    root = np.linalg.cholesky(weight)
    n_extra = max(4 * p + 4, 16)
    sobol = qmc.Sobol(p, scramble=True, seed=np.random.default_rng(seed)).random_base2(int(np.ceil(np.log2(n_extra))))
    unit = np.vstack([np.zeros(p), np.eye(p), -np.eye(p), 2.0 * sobol - 1.0])
    total = 0
    settled = False
    rounds = 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        d = unit * width
        points = np.clip(u + d, lower, upper)
        d = points - u
        values, keep = [], []
        for k, point in enumerate(points):
            try:
                g = moments(point)
            except KernelError:
                raise
            except SimfitError:  # non-finite statistics there: the point is rejected
                continue
            if np.all(np.isfinite(g)):
                values.append(g)
                keep.append(k)
        total += len(points)
        x = _features(d[keep])
        y = np.array(values)
        if y.shape[0] < x.shape[1] + 2:
            raise SimfitError(
                f"The noise-aware local phase could simulate only {y.shape[0]} of {len(points)} design points around the "
                "estimate; the simulator fails there."
            )
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        resid = y - x @ coef
        dof = max(y.shape[0] - x.shape[1], 1)
        sigma = resid.T @ resid / dof  # (n_stats, n_stats) residual covariance of the surface
        a, b, c = coef[0], coef[1 : p + 1].T, coef[p + 1 :].T  # level, slopes (n_stats, p), curvatures

        def fitted(step: np.ndarray) -> np.ndarray:
            return a + b @ step + c @ (step * step)

        box_lo = np.minimum(np.maximum(-2.0 * width, lower - u), 0.0)  # the centre stays feasible
        box_hi = np.maximum(np.minimum(2.0 * width, upper - u), 0.0)
        res = optimize.least_squares(
            lambda step: root.T @ fitted(step), np.zeros(p), bounds=(box_lo, box_hi + 1e-300), xtol=1e-12, ftol=1e-12
        )
        step = res.x
        inside = bool(np.all(np.abs(step) <= width * (1.0 + 1e-9)))
        u = u + step
        if inside:
            settled = True
            break
    jac = b + 2.0 * c * step[None, :]
    features = _features(step[None, :])[0]
    xtx_inv = np.linalg.pinv(x.T @ x)
    leverage = float(features @ xtx_inv @ features)
    a_map = _gauss_newton_map(jac, weight)
    cov_extra = leverage * a_map @ sigma @ a_map.T
    noise = float(np.sqrt(np.mean(np.diag(sigma) / np.maximum(moment_sd, 1e-300) ** 2)))
    return SurfaceRefinement(
        u=u, jacobian=jac, cov_extra=0.5 * (cov_extra + cov_extra.T), settled=settled, rounds=rounds, n_points=total, noise=noise
    )


def _gauss_newton_map(jac: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(J'WJ)^+ J'W``: how a change of the moments moves the minimum, shape (n_params, n_stats)."""
    a = jac.T @ weight @ jac
    return np.linalg.pinv(0.5 * (a + a.T)) @ jac.T @ weight
