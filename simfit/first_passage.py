"""Exact first-passage times of the Wiener diffusion, without time discretisation.

:func:`wiener_first_passage` samples the decision time and the boundary reached by ``dX = v dt +
dW`` started at ``w * a`` between absorbing boundaries 0 and ``a`` (unit diffusion coefficient,
times in the units of ``1 / v^2``), as a kernel (``@njit``) for observation kernels such as the
zoo's DDM. It walks from interval to interval ("walk on spheres" in one dimension):

1. From the current position ``x``, take the largest interval ``(x - r, x + r)`` inside the
   boundaries.
2. Sample the exit of that interval exactly. With drift ``v``, Girsanov's theorem gives the joint
   density of the exit time ``T`` and side as ``exp(+-v r - v^2 T / 2)`` times the driftless one,
   and without drift the side is independent of ``T`` by symmetry. So the side and the time are
   independent: the upper side with probability ``1 / (1 + exp(-2 v r))``, and ``T`` with density
   ``cosh(v r) exp(-v^2 T / 2) f_0(T)``, ``f_0`` the driftless exit density. For ``|v| r`` below
   :data:`DRIFT_SWITCH`, ``T`` is the driftless exit time ``r^2 T_1`` accepted with probability
   ``exp(-v^2 T / 2)`` (acceptance ``1 / cosh(v r)``, at least 0.65). Above it, ``T`` is an inverse
   Gaussian draw (the first passage through one barrier at distance ``r``, mean ``r / |v|``, shape
   ``r^2``), accepted with probability ``f_0(T) / (2 g_0(T))``, ``g_0`` the driftless one-barrier
   density (``f_0 <= 2 g_0``: leaving the interval at one side is leaving through that barrier;
   acceptance ``1 / (1 + exp(-2 |v| r))``, at least 0.88). So the intervals need not shrink with
   the drift, and the number of intervals per trial stays small whatever ``v`` and ``a``.
3. Stop when the exit side is a boundary; otherwise continue from ``x +- r``.

``T_1``, the exit time of a standard Brownian motion from ``(-1, 1)``, is drawn by inverting its
distribution function to machine precision: a table of its exact quantiles (computed once, at
import) gives a bracket and a first guess, and safeguarded Newton steps on the series of
:func:`unit_exit_cdf` finish it. The number of intervals per trial is geometric (each ends the
trial with probability about one half or more), whatever the decision time.

:func:`choice_probability` and :func:`mean_decision_time` are the closed forms it is checked
against.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.special import erfc

from simfit.random import normal, uniform, uniform_open

__all__ = [
    "wiener_first_passage",
    "unit_exit_time",
    "unit_exit_cdf",
    "choice_probability",
    "mean_decision_time",
    "DRIFT_SWITCH",
]

#: ``|v| r`` above which an interval's exit time is drawn from the inverse Gaussian proposal
#: (acceptance ``1 / (1 + exp(-2 |v| r))``) rather than from the driftless exit time
#: (acceptance ``1 / cosh(|v| r)``).
DRIFT_SWITCH = 1.0
#: Bound on the exit-time proposals of one trial, all its intervals together (never reached for
#: parameters floating point can represent: each interval ends the trial with probability about
#: one half or more, and each proposal is accepted with probability 0.65 or more); beyond it the
#: trial is NaN, so no trial can run for long.
MAX_PROPOSALS = 10_000
_PI = math.pi
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_SMALL_TERMS = 6  # erfc series, accurate to 1e-16 for t <= 1.5
_LARGE_TERMS = 8  # exponential series, accurate to 1e-16 for t >= 0.25

# Quantile tables of T_1, on y = -log(u) (lower half, as 1 / t) and y = -log(1 - u) (upper half,
# as t), with their derivatives in y: both are smooth and nearly linear in y, so cubic Hermite
# interpolation guesses to about 1e-10 and one Newton step usually finishes.
_Y0 = math.log(2.0)
_Y_MAX = 38.0  # beyond the smallest open uniform, 2^-54
_N_TABLE = 2048
_H = (_Y_MAX - _Y0) / _N_TABLE
# Newton stops after a step this small relative to the value: the error after it is about the
# square of the step (quadratic convergence of a nearly linear function), below rounding.
_NEWTON_DONE = 1e-9


def unit_exit_cdf(t):
    """Distribution function and density of ``T_1``, the time a standard Brownian motion started
    at 0 takes to leave ``(-1, 1)`` (numpy, vectorised; mean 1, second moment 5/3).

    Parameters
    ----------
    t : float or ndarray, positive

    Returns
    -------
    cdf, density : ndarray
        ``P(T_1 <= t) = 2 sum_j (-1)^j erfc((2j+1) / sqrt(2t))`` for ``t <= 1`` (method of
        images), ``1 - (4/pi) sum_k (-1)^k exp(-(2k+1)^2 pi^2 t / 8) / (2k+1)`` above (the
        eigenfunction series).
    """
    t = np.asarray(t, dtype=float)
    small = t <= 1.0
    ts = np.where(small, t, 1.0)
    tl = np.where(small, 1.0, t)
    cdf_s = np.zeros_like(ts)
    dens_s = np.zeros_like(ts)
    for j in range(_SMALL_TERMS):
        k = 2 * j + 1
        sign = -1.0 if j % 2 else 1.0
        cdf_s += sign * 2.0 * erfc(k / np.sqrt(2.0 * ts))
        dens_s += sign * 2.0 * k / ts**1.5 * np.exp(-k * k / (2.0 * ts)) / _SQRT_2PI
    surv_l = np.zeros_like(tl)
    dens_l = np.zeros_like(tl)
    for j in range(_LARGE_TERMS):
        m = 2 * j + 1
        sign = -1.0 if j % 2 else 1.0
        e = np.exp(-m * m * _PI * _PI * tl / 8.0)
        surv_l += sign * 4.0 / (_PI * m) * e
        dens_l += sign * 0.5 * _PI * m * e
    return np.where(small, cdf_s, 1.0 - surv_l), np.where(small, dens_s, dens_l)


def _survival(t):
    t = np.asarray(t, dtype=float)
    out = np.zeros_like(t)
    for j in range(_LARGE_TERMS):
        m = 2 * j + 1
        out += (-1.0 if j % 2 else 1.0) * 4.0 / (_PI * m) * np.exp(-m * m * _PI * _PI * t / 8.0)
    return out


def _quantile_tables() -> tuple[np.ndarray, np.ndarray]:
    """Exact quantiles of T_1 at the table's nodes, by bisection on log t (to ~1e-16)."""
    y = _Y0 + _H * np.arange(_N_TABLE + 1)
    tables = []
    for lower in (True, False):
        lo = np.full(y.shape, math.log(1e-3))
        hi = np.full(y.shape, math.log(200.0))
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            t = np.exp(mid)
            if lower:
                too_late = np.log(np.maximum(unit_exit_cdf(t)[0], 1e-300)) > -y  # F(t) > u
            else:
                too_late = np.log(np.maximum(_survival(np.maximum(t, 0.25)), 1e-300)) < -y  # S(t) < 1 - u
                too_late &= t >= 0.25
            hi = np.where(too_late, mid, hi)
            lo = np.where(too_late, lo, mid)
        t = np.exp(0.5 * (lo + hi))
        cdf, dens = unit_exit_cdf(t)
        if lower:  # s = 1 / t against y = -log F(t): ds/dy = F / (f t^2)
            tables += [1.0 / t, cdf / (dens * t * t)]
        else:  # t against y = -log S(t): dt/dy = S / f
            tables += [t, _survival(t) / dens]
    return tuple(tables)


# 1 / quantile and its derivative (lower half), quantile and its derivative (upper half).
_LOWER_S, _LOWER_DS, _UPPER_T, _UPPER_DT = _quantile_tables()


@njit(cache=True)
def _lower_series(t):
    """``(F(t), f(t))`` of T_1 by the erfc series, for ``t <= 1.5``."""
    c = 1.0 / math.sqrt(2.0 * t)
    cdf = 0.0
    dens = 0.0
    scale = 2.0 / (t * math.sqrt(t) * _SQRT_2PI)
    for j in range(_SMALL_TERMS):
        k = 2.0 * j + 1.0
        if j > 0 and k * c > 9.0:  # erfc(9) < 1e-36: the rest is below rounding
            break
        sign = -1.0 if j % 2 else 1.0
        cdf += sign * 2.0 * math.erfc(k * c)
        dens += sign * scale * k * math.exp(-k * k / (2.0 * t))
    return cdf, dens


@njit(cache=True)
def _upper_series(t):
    """``(S(t), f(t))`` of T_1 by the exponential series, for ``t >= 0.25``."""
    surv = 0.0
    dens = 0.0
    for j in range(_LARGE_TERMS):
        m = 2.0 * j + 1.0
        exponent = m * m * _PI * _PI * t / 8.0
        if j > 0 and exponent > 40.0 + _PI * _PI * t / 8.0:  # 1e-17 of the first term
            break
        sign = -1.0 if j % 2 else 1.0
        e = math.exp(-exponent)
        surv += sign * 4.0 / (_PI * m) * e
        dens += sign * 0.5 * _PI * m * e
    return surv, dens


@njit(cache=True)
def _hermite(values, slopes, y):
    """Cubic Hermite interpolation of a table on the y grid, with the bracket of the two nodes."""
    pos = (y - _Y0) / _H
    i = min(max(int(pos), 0), _N_TABLE - 1)
    x = pos - i
    p0 = values[i]
    p1 = values[i + 1]
    m0 = slopes[i] * _H
    m1 = slopes[i + 1] * _H
    x2 = x * x
    x3 = x2 * x
    guess = (2 * x3 - 3 * x2 + 1) * p0 + (x3 - 2 * x2 + x) * m0 + (-2 * x3 + 3 * x2) * p1 + (x3 - x2) * m1
    return guess, p0, p1


@njit(cache=True)
def unit_exit_time(rng):
    """``T_1``: exit time of a standard Brownian motion from ``(-1, 1)``, started at 0.

    Inverts the distribution function at one open uniform: the lower half on ``log F`` against
    ``1 / t``, the upper half on ``log S`` against ``t`` (both close to linear), each with Newton
    steps kept inside the bracket of two exact table quantiles.
    """
    u = uniform_open(rng)
    if u <= 0.5:
        y = -math.log(u)
        s, lo, hi = _hermite(_LOWER_S, _LOWER_DS, y)
        if y > _Y_MAX:
            hi = math.inf
        for _ in range(60):
            t = 1.0 / s
            if t <= 1.5:
                cdf, dens = _lower_series(t)
            else:
                surv, dens = _upper_series(t)
                cdf = 1.0 - surv
            g = math.log(cdf) + y
            if g > 0.0:
                lo = s  # F(t) > u: t too late, s too small
            else:
                hi = s
            slope = -dens / cdf * t * t
            step = g / slope if slope != 0.0 else math.inf
            if abs(step) <= _NEWTON_DONE * s:
                return 1.0 / (s - step)
            s -= step
            if not (lo < s < hi):
                s = 0.5 * (lo + hi) if hi < math.inf else 2.0 * lo
        return 1.0 / s
    y = -math.log1p(-u)
    t, lo, hi = _hermite(_UPPER_T, _UPPER_DT, y)
    if y > _Y_MAX:
        hi = math.inf
    for _ in range(60):
        if t >= 0.25:
            surv, dens = _upper_series(t)
        else:
            cdf, dens = _lower_series(t)
            surv = 1.0 - cdf
        g = math.log(surv) + y
        if g > 0.0:
            lo = t  # S(t) > 1 - u: t too early
        else:
            hi = t
        slope = -dens / surv
        step = g / slope if slope != 0.0 else math.inf
        if abs(step) <= _NEWTON_DONE * t:
            return t - step
        t -= step
        if not (lo < t < hi):
            t = 0.5 * (lo + hi) if hi < math.inf else 2.0 * lo
    return t


@njit(cache=True)
def _one_barrier_ratio(s):
    """``f_1(s) / (2 g_1(s))``: the driftless exit density of ``(-1, 1)`` over twice the density
    of the first passage through 1 (Levy), in [0, 1]. By the images series,
    ``sum_j (-1)^j (2j+1) exp(-2 j (j+1) / s)`` for ``s <= 2``; above, the eigenfunction series
    over the Levy density."""
    if s <= 2.0:
        out = 1.0
        for j in range(1, 8):
            term = (2.0 * j + 1.0) * math.exp(-2.0 * j * (j + 1.0) / s)
            out += -term if j % 2 else term
            if term < 1e-17:
                break
        return out
    _, dens = _upper_series(s)
    levy = math.exp(-0.5 / s) / (s * math.sqrt(s) * _SQRT_2PI)
    return dens / (2.0 * levy)


@njit(cache=True)
def _inverse_gaussian(rng, mean, shape):
    """Inverse Gaussian draw (Michael, Schucany and Haas 1976)."""
    n = normal(rng)
    y = n * n
    my = mean * y
    x = mean + mean * my / (2.0 * shape) - (mean / (2.0 * shape)) * math.sqrt(4.0 * shape * my + my * my)
    if uniform(rng) * (mean + x) <= mean:
        return x
    return mean * mean / x


@njit(cache=True)
def _interval_exit_time(rng, v, r):
    """Exit time of ``dX = v dt + dW`` from ``(x - r, x + r)`` started at ``x`` (module docstring)
    and the proposals it took; NaN where floating point cannot represent the interval's times."""
    speed = abs(v)
    r2 = r * r
    if not (math.isfinite(r2) and r2 > 0.0 and math.isfinite(r / speed if speed > 0.0 else 0.0)):
        return math.nan, 1
    if speed * r < DRIFT_SWITCH:
        for k in range(MAX_PROPOSALS):  # acceptance at least 0.65
            tau = r2 * unit_exit_time(rng)
            if speed == 0.0 or uniform(rng) < math.exp(-0.5 * v * v * tau):
                return tau, k + 1
        return math.nan, MAX_PROPOSALS
    for k in range(MAX_PROPOSALS):  # acceptance at least 0.88
        tau = _inverse_gaussian(rng, r / speed, r2)
        s = tau / r2
        if not (math.isfinite(tau) and s > 0.0 and math.isfinite(s)):
            return math.nan, k + 1
        if uniform(rng) < _one_barrier_ratio(s):
            return tau, k + 1
    return math.nan, MAX_PROPOSALS


@njit(cache=True)
def wiener_first_passage(rng, v, a, w):
    """Exact decision time and choice of a Wiener diffusion (see the module docstring).

    Parameters
    ----------
    rng : simfit random stream
    v : float
        Drift (per unit time; unit diffusion coefficient).
    a : float
        Boundary separation, positive.
    w : float
        Start as a fraction of ``a``, in (0, 1).

    Returns
    -------
    (float, float)
        The first-passage time and ``1.0`` for the upper boundary ``a``, ``0.0`` for 0; NaN, NaN
        for a non-finite drift or separation, a separation that is not positive, ``w`` outside
        (0, 1), or a trial beyond :data:`MAX_PROPOSALS` proposals (never for finite parameters).
    """
    if not (math.isfinite(v) and math.isfinite(a) and a > 0.0 and 0.0 < w < 1.0):
        return math.nan, math.nan  # the engine reports non-finite output with the parameters
    x = w * a
    t = 0.0
    spent = 0
    while spent < MAX_PROPOSALS:
        to_lower = x
        to_upper = a - x
        r = min(to_lower, to_upper)
        if r <= 0.0:
            return t, 1.0 if to_upper <= to_lower else 0.0
        tau, used = _interval_exit_time(rng, v, r)
        spent += used
        t += tau
        if not math.isfinite(t):
            return math.nan, math.nan
        # P(upper side) = 1 / (1 + exp(-2 v r)), written to stay finite for any v r
        vr = v * r
        if vr >= 0.0:
            up = uniform(rng) * (1.0 + math.exp(-2.0 * vr)) < 1.0
        else:
            e = math.exp(2.0 * vr)
            up = uniform(rng) * (1.0 + e) < e
        if up and to_upper <= to_lower:
            return t, 1.0
        if not up and to_lower <= to_upper:
            return t, 0.0
        x = x + r if up else x - r
    return math.nan, math.nan  # never for finite parameters; NaN makes the engine report it


def choice_probability(v, a, w):
    """Probability of reaching the upper boundary: ``(1 - exp(-2 v a w)) / (1 - exp(-2 v a))``
    (``w`` without drift). Numpy, vectorised."""
    v, a, w = np.broadcast_arrays(*(np.asarray(p, dtype=float) for p in (v, a, w)))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.expm1(-2.0 * v * a * w) / np.expm1(-2.0 * v * a)
    return np.where(v == 0.0, w, p)


def mean_decision_time(v, a, w):
    """Mean first-passage time: ``(a P(upper) - w a) / v`` (``a^2 w (1 - w)`` without drift).
    Numpy, vectorised."""
    v, a, w = np.broadcast_arrays(*(np.asarray(p, dtype=float) for p in (v, a, w)))
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (a * choice_probability(v, a, w) - w * a) / v
    return np.where(v == 0.0, a * a * w * (1.0 - w), m)
