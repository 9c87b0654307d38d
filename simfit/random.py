"""Keyed random streams for Numba kernels.

Every random draw simfit makes comes from a *stream*: a small ``uint64`` array holding the state of a
xoshiro256++ generator (Blackman & Vigna) plus the key it was seeded from. The engine seeds a stream
for every ``(seed, simulation, level, index)`` it simulates, by hashing the key with the SplitMix64
finaliser, so

* the same key gives the same draws at every parameter value (common random numbers),
* the draws of one unit never depend on how many draws another unit took, on the number of
  threads, or on how the work was chunked,
* seeding costs a few nanoseconds, cheap enough to do once per unit.

User kernels receive the stream as an argument named ``rng`` and draw from it with the functions of
this module, which are ``@njit`` functions (callable only from compiled code)::

    from simfit.random import normal, exponential

    @njit(cache=True)
    def observe(psi, theta, x, args, rng, y):
        for k in range(y.shape[0]):
            y[k, 0] = theta[0] + psi[2] * normal(rng)

Normal and exponential variates use 256-layer ziggurats with the same layout as NumPy's
``Generator``; the others are built on them. A kernel whose number of draws per observation
depends on the parameters (a diffusion stopped at a boundary, a rejection step) should call
:func:`substream` at the start of each observation, so that observation ``k`` always draws from the
same numbers. :func:`fill_normal` and :func:`fill_exponential` fill a whole column at once, faster
than a loop of single draws because the generator's state stays in registers.

From Python, :func:`stream` makes a seeded stream and :func:`draw_normal` and friends fill NumPy
arrays, mainly for tests and for checking a kernel interactively.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simfit._ziggurat import (
    EXPONENTIAL_F,
    EXPONENTIAL_K,
    EXPONENTIAL_R,
    EXPONENTIAL_W,
    NORMAL_F,
    NORMAL_INV_R,
    NORMAL_K,
    NORMAL_R,
    NORMAL_W,
)

__all__ = [
    "STREAM_SIZE",
    "seed_stream",
    "substream",
    "stream",
    "next_uint64",
    "uniform",
    "uniform_open",
    "normal",
    "exponential",
    "fill_normal",
    "fill_exponential",
    "load",
    "store",
    "normal_from",
    "uniform_from",
    "lognormal",
    "gamma",
    "beta",
    "chisquare",
    "student_t",
    "poisson",
    "binomial",
    "bernoulli",
    "integers",
    "categorical",
    "draw_uniform",
    "draw_normal",
    "draw_exponential",
]

#: Length of a stream array: four words of xoshiro256++ state and two words of key.
STREAM_SIZE = 6

_TWO_POW_M53 = 1.0 / 9007199254740992.0
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# Distinct odd constants for the two key words, and the substream number of a fresh stream.
_SALT0 = np.uint64(0xD1B54A32D192ED03)
_SALT1 = np.uint64(0x8CB92BA72F3D8DD7)
_MAIN = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, inline="always")
def _mix64(z):
    # SplitMix64 finaliser (Stafford's "Mix13"): a bijection with full avalanche.
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(cache=True)
def _key_word(seed, level_sim, index, salt):
    # One 64-bit word of the key hash: a chain of bijective mixes, so distinct keys give
    # unrelated words. Two words with different salts make a 128-bit key.
    h = _mix64(seed + salt)
    h = _mix64(h ^ (level_sim + salt))
    return _mix64(h ^ (index + salt))


@njit(cache=True)
def _fill_state(rng, k0, k1, sub):
    # SplitMix64 sequence started from the key and the substream number (Vigna's recommended
    # seeding of xoshiro generators).
    z = k0 ^ _mix64(sub + k1)
    for w in range(4):
        z += _GOLDEN
        rng[w] = _mix64(z)


@njit(cache=True)
def seed_stream(rng, seed, simulation, level, index):
    """Seed ``rng`` in place for the key ``(seed, simulation, level, index)``.

    Parameters
    ----------
    rng : ndarray of uint64, shape (STREAM_SIZE,)
        The stream to (re)seed.
    seed, simulation, level, index : int
        Non-negative integers; ``level`` below 256 and ``simulation`` below 2**56. The engine uses
        ``level`` 1, 2, ... for the levels of the hierarchy and ``index`` for the position of the
        unit or group at that level.
    """
    level_sim = (np.uint64(level) << np.uint64(56)) ^ np.uint64(simulation)
    s = np.uint64(seed)
    ix = np.uint64(index)
    k0 = _key_word(s, level_sim, ix, _SALT0)
    k1 = _key_word(s, level_sim, ix, _SALT1)
    rng[4] = k0
    rng[5] = k1
    _fill_state(rng, k0, k1, _MAIN)


@njit(cache=True)
def substream(rng, k):
    """Restart ``rng`` at its ``k``-th substream.

    The substream depends only on the key the stream was seeded with and on ``k``, never on how
    many numbers were drawn before. Call it at the start of observation ``k`` in a kernel whose
    number of draws per observation depends on the parameters, to keep common random numbers
    aligned observation by observation.
    """
    _fill_state(rng, rng[4], rng[5], np.uint64(k))


# The generators work on the four state words held in local variables ("cores", returning the
# new state with the draw): a loop drawing many numbers then keeps the state in registers instead
# of reloading it from the stream array at every draw (see fill_normal).


@njit(cache=True, inline="always")
def _step(s0, s1, s2, s3):
    # xoshiro256++ (Blackman & Vigna 2019): output and next state.
    result = _rotl(s0 + s3, 23) + s0
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return result, s0, s1, s2, s3


@njit(cache=True, inline="always")
def _to_unit_open(r):
    return (float(r >> np.uint64(11)) + 0.5) * _TWO_POW_M53


@njit(cache=True, inline="always")
def _normal_core(s0, s1, s2, s3):
    while True:
        r, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
        idx = r & np.uint64(0xFF)
        # The top 53 bits as a signed integer: sign and abscissa in one branch-free step.
        hz = np.int64(r) >> np.int64(11)
        x = float(hz) * NORMAL_W[idx]
        if abs(hz) < NORMAL_K[idx]:
            return x, s0, s1, s2, s3  # about 98.8% of draws end here
        if idx == 0:
            while True:
                r, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
                xx = -NORMAL_INV_R * math.log(_to_unit_open(r))
                r, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
                yy = -math.log(_to_unit_open(r))
                if yy + yy > xx * xx:
                    return (-(NORMAL_R + xx) if hz < 0 else NORMAL_R + xx), s0, s1, s2, s3
        r, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
        u = float(r >> np.uint64(11)) * _TWO_POW_M53
        if (NORMAL_F[idx - np.uint64(1)] - NORMAL_F[idx]) * u + NORMAL_F[idx] < math.exp(-0.5 * x * x):
            return x, s0, s1, s2, s3


@njit(cache=True, inline="always")
def _exponential_core(s0, s1, s2, s3):
    while True:
        r, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
        r >>= np.uint64(3)
        idx = r & np.uint64(0xFF)
        r >>= np.uint64(8)
        x = float(np.int64(r)) * EXPONENTIAL_W[idx]
        if np.int64(r) < EXPONENTIAL_K[idx]:
            return x, s0, s1, s2, s3  # about 98.9% of draws end here
        if idx == 0:
            r, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
            return EXPONENTIAL_R - math.log(_to_unit_open(r)), s0, s1, s2, s3
        r, s0, s1, s2, s3 = _step(s0, s1, s2, s3)
        u = float(r >> np.uint64(11)) * _TWO_POW_M53
        if (EXPONENTIAL_F[idx - np.uint64(1)] - EXPONENTIAL_F[idx]) * u + EXPONENTIAL_F[idx] < math.exp(-x):
            return x, s0, s1, s2, s3


@njit(cache=True, inline="always")
def next_uint64(rng):
    """Next raw 64-bit output of the stream (xoshiro256++)."""
    r, rng[0], rng[1], rng[2], rng[3] = _step(rng[0], rng[1], rng[2], rng[3])
    return r


@njit(cache=True, inline="always")
def uniform(rng):
    """Uniform draw on [0, 1) with 53 random bits."""
    return float(next_uint64(rng) >> np.uint64(11)) * _TWO_POW_M53


@njit(cache=True, inline="always")
def uniform_open(rng):
    """Uniform draw on the open interval (0, 1), safe to pass to ``log``."""
    return _to_unit_open(next_uint64(rng))


@njit(cache=True, inline="always")
def normal(rng):
    """Standard normal draw (256-layer ziggurat)."""
    x, rng[0], rng[1], rng[2], rng[3] = _normal_core(rng[0], rng[1], rng[2], rng[3])
    return x


@njit(cache=True, inline="always")
def exponential(rng):
    """Standard exponential draw (rate 1, 256-layer ziggurat)."""
    x, rng[0], rng[1], rng[2], rng[3] = _exponential_core(rng[0], rng[1], rng[2], rng[3])
    return x


@njit(cache=True, inline="always")
def load(rng):
    """The stream's four state words as a tuple, to draw with :func:`normal_from` in a hot loop
    with the state in registers; write it back with :func:`store` before the stream is used again."""
    return rng[0], rng[1], rng[2], rng[3]


@njit(cache=True, inline="always")
def store(rng, state):
    """Write a state tuple from :func:`load` back into the stream."""
    rng[0], rng[1], rng[2], rng[3] = state


@njit(cache=True, inline="always")
def normal_from(state):
    """``(z, new_state)``: a standard normal from a state tuple (same numbers as :func:`normal`)."""
    z, s0, s1, s2, s3 = _normal_core(state[0], state[1], state[2], state[3])
    return z, (s0, s1, s2, s3)


@njit(cache=True, inline="always")
def uniform_from(state):
    """``(u, new_state)``: a uniform on [0, 1) from a state tuple (same numbers as :func:`uniform`)."""
    r, s0, s1, s2, s3 = _step(state[0], state[1], state[2], state[3])
    return float(r >> np.uint64(11)) * _TWO_POW_M53, (s0, s1, s2, s3)


@njit(cache=True)
def fill_normal(rng, out, loc, scale):
    """Fill the 1-D array ``out`` with ``loc + scale * Z``, Z standard normal.

    Same numbers as calling :func:`normal` ``out.shape[0]`` times, but faster: the stream's state
    stays in registers for the whole loop. ``out`` may be a strided view such as ``y[:, 0]``.
    """
    s0 = rng[0]
    s1 = rng[1]
    s2 = rng[2]
    s3 = rng[3]
    for k in range(out.shape[0]):
        z, s0, s1, s2, s3 = _normal_core(s0, s1, s2, s3)
        out[k] = loc + scale * z
    rng[0] = s0
    rng[1] = s1
    rng[2] = s2
    rng[3] = s3


@njit(cache=True)
def fill_exponential(rng, out, scale):
    """Fill the 1-D array ``out`` with exponential draws of mean ``scale`` (state in registers,
    same numbers as repeated :func:`exponential` calls times ``scale``)."""
    s0 = rng[0]
    s1 = rng[1]
    s2 = rng[2]
    s3 = rng[3]
    for k in range(out.shape[0]):
        e, s0, s1, s2, s3 = _exponential_core(s0, s1, s2, s3)
        out[k] = scale * e
    rng[0] = s0
    rng[1] = s1
    rng[2] = s2
    rng[3] = s3


@njit(cache=True)
def lognormal(rng, mean, sigma):
    """``exp(mean + sigma * Z)`` with ``Z`` standard normal."""
    return math.exp(mean + sigma * normal(rng))


@njit(cache=True)
def _standard_gamma_ge1(rng, shape):
    # Marsaglia & Tsang (2000) for shape >= 1.
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        z = normal(rng)
        v = 1.0 + c * z
        if v <= 0.0:
            continue
        v = v * v * v
        u = uniform_open(rng)
        if math.log(u) < 0.5 * z * z + d - d * v + d * math.log(v):
            return d * v


@njit(cache=True)
def gamma(rng, shape, scale):
    """Gamma draw with the given shape (> 0) and scale (Marsaglia & Tsang 2000); NaN for an
    invalid shape or scale, so the engine reports it instead of looping forever."""
    if not (shape > 0.0 and scale >= 0.0 and math.isfinite(shape)):
        return np.nan
    if shape < 1.0:
        # Boost: G(a) = G(a + 1) * U^(1/a).
        g = _standard_gamma_ge1(rng, shape + 1.0)
        return g * uniform_open(rng) ** (1.0 / shape) * scale
    return _standard_gamma_ge1(rng, float(shape)) * scale


@njit(cache=True)
def beta(rng, a, b):
    """Beta(a, b) draw as the ratio of two gamma draws."""
    x = gamma(rng, a, 1.0)
    y = gamma(rng, b, 1.0)
    return x / (x + y)


@njit(cache=True)
def chisquare(rng, df):
    """Chi-square draw with ``df`` degrees of freedom."""
    return 2.0 * gamma(rng, 0.5 * df, 1.0)


@njit(cache=True)
def student_t(rng, df):
    """Student-t draw with ``df`` degrees of freedom."""
    return normal(rng) / math.sqrt(chisquare(rng, df) / df)


@njit(cache=True)
def _poisson_ptrs(rng, lam):
    # Hörmann (1993), transformed rejection with squeeze; valid for lam >= 10.
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = uniform(rng) - 0.5
        v = uniform_open(rng)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return np.int64(k)
        if k < 0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1.0)
        ):
            return np.int64(k)


@njit(cache=True)
def poisson(rng, lam):
    """Poisson draw with mean ``lam`` (multiplication for small means, PTRS for large); -1 for a
    negative, infinite or NaN mean."""
    if not (lam >= 0.0 and math.isfinite(lam)):
        return np.int64(-1)
    if lam >= 10.0:
        return _poisson_ptrs(rng, lam)
    limit = math.exp(-lam)
    k = 0
    p = uniform_open(rng)
    while p > limit:
        k += 1
        p *= uniform_open(rng)
    return np.int64(k)


@njit(cache=True)
def binomial(rng, n, p):
    """Binomial(n, p) draw by inversion of the waiting times (cost grows with ``n * min(p, 1-p)``);
    -1 for ``n < 0`` or ``p`` outside [0, 1] or NaN."""
    if n < 0 or not (0.0 <= p <= 1.0):
        return np.int64(-1)
    if p <= 0.0 or n == 0:
        return np.int64(0)
    if p >= 1.0:
        return np.int64(n)
    flip = p > 0.5
    q = 1.0 - p if flip else p
    # Geometric waiting times between successes.
    log_q = math.log1p(-q)
    count = 0
    position = 0.0
    while True:
        position += math.floor(math.log(uniform_open(rng)) / log_q) + 1.0
        if position > n:
            break
        count += 1
    return np.int64(n - count) if flip else np.int64(count)


@njit(cache=True)
def bernoulli(rng, p):
    """1 with probability ``p``, else 0."""
    return np.int64(1) if uniform(rng) < p else np.int64(0)


@njit(cache=True)
def integers(rng, low, high):
    """Uniform integer on ``[low, high)`` without modulo bias (Lemire's method); ``low - 1`` (out
    of range) when ``high <= low``."""
    if high <= low:
        return np.int64(low) - 1
    span = np.uint64(high - low)
    threshold = (np.uint64(0) - span) % span
    while True:
        r = next_uint64(rng)
        hi, lo = _mul_hi_lo(r, span)
        if lo >= threshold:
            return np.int64(low) + np.int64(hi)


@njit(cache=True, inline="always")
def _mul_hi_lo(a, b):
    # 64x64 -> 128-bit product split in high and low words.
    mask = np.uint64(0xFFFFFFFF)
    a_lo = a & mask
    a_hi = a >> np.uint64(32)
    b_lo = b & mask
    b_hi = b >> np.uint64(32)
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    middle = (p0 >> np.uint64(32)) + (p1 & mask) + (p2 & mask)
    hi = p3 + (p1 >> np.uint64(32)) + (p2 >> np.uint64(32)) + (middle >> np.uint64(32))
    return hi, a * b


@njit(cache=True)
def categorical(rng, probs):
    """Index ``k`` drawn with probability ``probs[k]`` (``probs`` sums to one)."""
    u = uniform(rng)
    acc = 0.0
    for k in range(probs.shape[0] - 1):
        acc += probs[k]
        if u < acc:
            return np.int64(k)
    return np.int64(probs.shape[0] - 1)


# --------------------------------------------------------------------------------------------
# Python-side helpers


def stream(seed: int, simulation: int = 0, level: int = 0, index: int = 0) -> np.ndarray:
    """A stream seeded for the key ``(seed, simulation, level, index)``.

    Returns
    -------
    ndarray of uint64, shape (STREAM_SIZE,)
    """
    limits = (("seed", seed, 2**64), ("simulation", simulation, 2**56), ("level", level, 256), ("index", index, 2**64))
    for name, value, limit in limits:
        if not 0 <= int(value) < limit:
            raise ValueError(f"{name} must be an integer in [0, {limit}), got {value}")
    rng = np.zeros(STREAM_SIZE, dtype=np.uint64)
    seed_stream(rng, int(seed), int(simulation), int(level), int(index))
    return rng


@njit(cache=True)
def _fill_uniform(rng, out):
    for i in range(out.shape[0]):
        out[i] = uniform(rng)


@njit(cache=True)
def _fill_normal(rng, out):
    for i in range(out.shape[0]):
        out[i] = normal(rng)


@njit(cache=True)
def _fill_exponential(rng, out):
    for i in range(out.shape[0]):
        out[i] = exponential(rng)


def draw_uniform(rng: np.ndarray, n: int) -> np.ndarray:
    """``n`` uniform draws on [0, 1) from ``rng`` (advanced in place)."""
    out = np.empty(int(n))
    _fill_uniform(rng, out)
    return out


def draw_normal(rng: np.ndarray, n: int) -> np.ndarray:
    """``n`` standard normal draws from ``rng`` (advanced in place)."""
    out = np.empty(int(n))
    _fill_normal(rng, out)
    return out


def draw_exponential(rng: np.ndarray, n: int) -> np.ndarray:
    """``n`` standard exponential draws from ``rng`` (advanced in place)."""
    out = np.empty(int(n))
    _fill_exponential(rng, out)
    return out
