"""Ziggurat tables for the normal and exponential samplers in :mod:`simfit.random`.

The tables follow Marsaglia & Tsang (2000), "The ziggurat method for generating random
variables", with 256 layers and the integer layout of NumPy's ``Generator``: a layer index from the low 8 bits
of a 64-bit word and a 52-bit (normal, plus a sign) or 53-bit (exponential) integer abscissa,
accepted at once when its magnitude is below ``k[i]``. They are computed here once, at import, in float64.
"""

from __future__ import annotations

import math

import numpy as np

N_LAYERS = 256

# Right-most layer boundary and common layer area of the 256-layer normal ziggurat.
NORMAL_R = 3.6541528853610088
NORMAL_INV_R = 1.0 / NORMAL_R
# Same for the exponential ziggurat.
EXPONENTIAL_R = 7.69711747013104972


def _normal_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = NORMAL_R
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731 - unnormalised density
    area = r * f(r) + math.sqrt(math.pi / 2.0) * math.erfc(r / math.sqrt(2.0))
    scale = float(2**52)
    k = np.zeros(N_LAYERS, dtype=np.int64)
    w = np.zeros(N_LAYERS)
    fv = np.zeros(N_LAYERS)
    q = area / f(r)
    k[0] = int((r / q) * scale)
    k[1] = 0
    w[0] = q / scale
    w[N_LAYERS - 1] = r / scale
    fv[0] = 1.0
    fv[N_LAYERS - 1] = f(r)
    x, previous = r, r
    for i in range(N_LAYERS - 2, 0, -1):
        x = math.sqrt(-2.0 * math.log(area / x + f(x)))
        k[i + 1] = int((x / previous) * scale)
        previous = x
        fv[i] = f(x)
        w[i] = x / scale
    return k, w, fv


def _exponential_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = EXPONENTIAL_R
    area = r * math.exp(-r) + math.exp(-r)
    scale = float(2**53)
    k = np.zeros(N_LAYERS, dtype=np.int64)
    w = np.zeros(N_LAYERS)
    fv = np.zeros(N_LAYERS)
    q = area / math.exp(-r)
    k[0] = int((r / q) * scale)
    k[1] = 0
    w[0] = q / scale
    w[N_LAYERS - 1] = r / scale
    fv[0] = 1.0
    fv[N_LAYERS - 1] = math.exp(-r)
    x, previous = r, r
    for i in range(N_LAYERS - 2, 0, -1):
        x = -math.log(area / x + math.exp(-x))
        k[i + 1] = int((x / previous) * scale)
        previous = x
        fv[i] = math.exp(-x)
        w[i] = x / scale
    return k, w, fv


NORMAL_K, NORMAL_W, NORMAL_F = _normal_tables()
EXPONENTIAL_K, EXPONENTIAL_W, EXPONENTIAL_F = _exponential_tables()
