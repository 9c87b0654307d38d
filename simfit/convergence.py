"""Is a fit converged? Checks beyond the optimizer's own criteria.

Common random numbers make the objective a deterministic function of the parameters, smooth
wherever the simulator is. Chaotic simulators and counts are not smooth at any scale, and there a
finite-difference step sees only noise: an optimizer may then stop anywhere (often at the start)
and report success. After the optimizer, a fit therefore checks, per parameter direction ``j`` at
the solution ``u``, on the moments in units of their sampling standard deviations:

* **flat**: the statistics do not move when the parameter moves;
* **roughness**: the central-difference slope at the step ``h_j`` against the slope at
  ``h_j / 100``; for a smooth objective both agree;
* **noise**: where they disagree, the noise level ``eps_j`` of the moments along ``j`` is estimated
  from a difference table of nine equally spaced evaluations (Moré and Wild 2011, ECnoise). Noise
  above a tenth of the statistics' sampling standard deviation moves the optimum by a sizeable
  share of a standard error: the objective is *noisy* and the fit is not converged. Smaller noise
  is harmless for the estimate, but a finite-difference step must exceed ``10 eps_j / |slope_j|``
  for the noise to stay below a tenth of the slope estimate: a smaller step is enlarged to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RoughnessReport", "ConvergenceCheck", "check_roughness", "ecnoise", "MAX_FREE_STEP"]

# A finite-difference step larger than this (on the unconstrained scale: a factor e^0.5 for a
# log-transformed parameter) no longer measures a local slope: the objective is called noise.
MAX_FREE_STEP = 0.5
_SMALL = 100.0  # ratio of the step to the small step of the roughness check
_ROUGH = 0.25  # relative disagreement of the two slopes that counts as rough
_NOISE_SHARE = 0.1  # noise's share of a finite-difference slope that is acceptable
MAX_NOISE = 0.1  # noise of the moments, in sampling standard deviations, above which a fit is noisy


def ecnoise(values: np.ndarray) -> float:
    """Noise level of equally spaced function values (Moré and Wild 2011, "ECnoise").

    Parameters
    ----------
    values : ndarray, shape (m + 1,) or (m + 1, n)
        Values at ``m + 1`` equally spaced points (``m`` of 6 to 10), one column per component.

    Returns
    -------
    float
        Estimated standard deviation of the noise (the root sum over components); where no order
        of differences gives a consistent estimate, the smallest level of order 2 and up (rounding
        level for values on a low-degree polynomial).
    """
    f = np.asarray(values, dtype=float)
    if f.ndim == 1:
        f = f[:, None]
    m = f.shape[0] - 1
    levels = np.zeros((m, f.shape[1]))
    signs = np.zeros((m, f.shape[1]), dtype=bool)
    diff = f.copy()
    for k in range(1, m + 1):
        diff = np.diff(diff, axis=0)
        gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
        levels[k - 1] = np.sqrt(gamma * np.mean(diff**2, axis=0))
        signs[k - 1] = (diff.max(axis=0) > 0) & (diff.min(axis=0) < 0)
    out = np.full(f.shape[1], np.nan)
    for c in range(f.shape[1]):
        lv = levels[:, c]
        if np.all(lv == 0):
            out[c] = 0.0
            continue
        for k in range(m - 2):
            window = lv[k : k + 3]
            if window.min() > 0 and window.max() <= 4 * window.min() and signs[k, c]:
                out[c] = lv[k]
                break
        else:
            # No consistent order (e.g. a polynomial up to rounding): the smallest level of the
            # differences of order 2 and up bounds the noise.
            out[c] = lv[1:].min()
    if np.all(np.isnan(out)):
        return float("nan")
    return float(np.sqrt(np.nansum(out**2)))


@dataclass(frozen=True)
class RoughnessReport:
    """Smoothness of the objective along each parameter at a solution.

    Attributes
    ----------
    slope : ndarray, shape (n_params,)
        Norm of the central-difference slope of the scaled moments at the step.
    roughness : ndarray, shape (n_params,)
        ``|slope(h) - slope(h / 100)| / |slope(h)|``; near 0 where the objective is smooth.
    noise : ndarray, shape (n_params,)
        ECnoise estimate of the noise of the moments along each rough direction, in sampling
        standard deviations (root mean square over statistics); NaN where smooth (not estimated).
    step : ndarray, shape (n_params,)
        Absolute steps used (on the unconstrained scale).
    suggested_step : ndarray, shape (n_params,)
        Steps the noise calls for (``step`` where it is adequate, at most :data:`MAX_FREE_STEP`).
    flat, rough, noisy : tuple of int
        Directions with zero slope; whose small-step slope disagrees; whose noise exceeds
        :data:`MAX_NOISE`.
    """

    slope: np.ndarray
    roughness: np.ndarray
    noise: np.ndarray
    step: np.ndarray
    suggested_step: np.ndarray
    flat: tuple[int, ...]
    rough: tuple[int, ...]
    noisy: tuple[int, ...]


def check_roughness(
    moments: Callable[[np.ndarray], np.ndarray], u: np.ndarray, steps: np.ndarray, sd: np.ndarray, only=None
) -> RoughnessReport:
    """Roughness and noise of ``moments`` along each coordinate at ``u``.

    Parameters
    ----------
    moments : callable
        ``g(u)``, shape (n_stats,): observed minus mean simulated statistics, with common random
        numbers.
    u : ndarray, shape (n_params,)
        The solution (unconstrained scale).
    steps : ndarray, shape (n_params,)
        Absolute finite-difference steps.
    sd : ndarray, shape (n_stats,)
        Sampling standard deviation of each moment (``sqrt((1 + 1/S) omega_ii)``): the scale.
    only : sequence of int, optional
        Check these directions only (the others are reported smooth).
    """
    u = np.asarray(u, dtype=float)
    steps = np.asarray(steps, dtype=float)
    sd = np.asarray(sd, dtype=float)

    def scaled(v):
        return moments(v) / sd

    n = u.size
    slope = np.zeros(n)
    roughness = np.zeros(n)
    noise = np.full(n, np.nan)
    suggested = steps.copy()
    flat, rough, noisy = [], [], []
    r0 = scaled(u)
    for j in range(n) if only is None else only:
        e = np.zeros(n)
        h = steps[j]
        e[j] = h
        d_big = (scaled(u + e) - scaled(u - e)) / (2 * h)
        e[j] = h / _SMALL
        d_small = (scaled(u + e) - scaled(u - e)) / (2 * h / _SMALL)
        slope[j] = float(np.linalg.norm(d_big))
        if slope[j] == 0.0 and float(np.linalg.norm(d_small)) == 0.0:
            # Flat at this step: truly flat, or a step function (counts, choices, thresholds)
            # whose steps are wider. A step 100 times larger tells.
            wide = min(h * _SMALL, MAX_FREE_STEP * max(1.0, abs(u[j])))
            e[j] = wide
            if wide > h and float(np.linalg.norm(scaled(u + e) - scaled(u - e))) > 0.0:
                steps_wide = steps.copy()
                steps_wide[j] = wide
                sub = check_roughness(moments, u, steps_wide, sd, only=[j])
                slope[j], roughness[j], noise[j] = sub.slope[j], sub.roughness[j], sub.noise[j]
                suggested[j] = max(wide, sub.suggested_step[j])
                rough.append(j)
                if j in sub.noisy:
                    noisy.append(j)
                continue
            flat.append(j)
            roughness[j] = np.nan
            continue
        roughness[j] = float(np.linalg.norm(d_small - d_big)) / max(slope[j], 1e-300)
        if roughness[j] <= _ROUGH:
            continue
        rough.append(j)
        grid = u[None, :] + np.outer(np.arange(-4, 5) * h, np.eye(n)[j])
        table = np.vstack([r0 if k == 4 else scaled(grid[k]) for k in range(9)])
        total = ecnoise(table)
        if not np.isfinite(total):
            total = float(np.sqrt(np.sum(np.var(np.diff(table, axis=0), axis=0, ddof=1) / 2)))
        noise[j] = total / math.sqrt(table.shape[1])
        if noise[j] > MAX_NOISE:
            noisy.append(j)
        wanted = total / (_NOISE_SHARE * max(slope[j], 1e-300))
        if wanted > h:
            suggested[j] = min(wanted, MAX_FREE_STEP * max(1.0, abs(u[j])))
    return RoughnessReport(
        slope=slope,
        roughness=roughness,
        noise=noise,
        step=steps,
        suggested_step=suggested,
        flat=tuple(flat),
        rough=tuple(rough),
        noisy=tuple(noisy),
    )


@dataclass(frozen=True)
class ConvergenceCheck:
    """Whether a fit converged, and every reason it may not have.

    Attributes
    ----------
    optimizer_success : bool
        The optimizer's own stopping criteria held in the final step.
    moved : bool
        The solution differs from the start of the final local optimisation, or the start is
        shown to be the optimum (a Gauss-Newton step from it is negligible against the standard
        errors).
    roughness : RoughnessReport or None
        None where the check was switched off (``check_convergence=False``).
    step_adapted : bool
        The finite-difference steps were enlarged to the noise and the last step re-run.
    reasons : tuple of str
        Why the fit is not converged (empty when it is).
    notes : tuple of str
        What the checks found that does not undo convergence (e.g. a step enlarged to the noise).
    """

    optimizer_success: bool
    moved: bool
    roughness: RoughnessReport | None
    step_adapted: bool = False
    reasons: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.reasons
