"""The implied population distribution of entity-level parameters, with its uncertainty.

A hierarchical model describes each entity's parameters (a patient's clearance, a unit's rate) by a
population distribution indexed by ``psi``. Users usually care about its expectation and spread,
which can differ much from its parameters and from its mode: a log-normal rate ``exp(m + s z)`` has
median ``exp(m)``, mean ``exp(m + s^2 / 2)`` and mode ``exp(m - s^2)``. This module reports, for every
parameter of every level, the summaries :data:`SUMMARY_NAMES` of its marginal population
distribution,

* :func:`unit_distribution` -- at given ``psi`` (one vector or many rows, vectorised);
* :func:`population_summary` -- with uncertainty, for a fit (delta-method standard errors and an
  interval) or for a posterior sample (posterior mean, sd and interval of each summary).

Parameters are named ``"<level>.<parameter>"`` (``"unit.rate"``, ``"group.c"``), as in
:meth:`simfit.engine.SimulationResult.to_frame`, whether or not the parameter name alone is unique.

How each margin is computed
---------------------------
Margins of levels built by :func:`simfit.population.population_level` are a link of a normal
latent variable. When its latent mean and sd are constants or population parameters (or the mean
is a parameter of the parent level whose own margin is such an identity-link normal, in which case
the latent variances add), the summaries are exact and vectorised over rows of ``psi``:

==========  ====================================================================================
link        summaries of ``x = link^-1(mu + s z)``
==========  ====================================================================================
identity    normal: mean = median = mode = ``mu``, sd ``s``, quantiles ``mu + s z_q``
log         mean ``exp(mu + s^2/2)``, median ``exp(mu)``, mode ``exp(mu - s^2)``,
            sd ``sqrt(exp(s^2) - 1) exp(mu + s^2/2)``, quantiles ``exp(mu + s z_q)``
logit       median and quantiles through the link; mean and sd by quadrature on the latent
            normal; mode by solving for the stationary points of the density on the natural
            scale, which is bimodal when ``s^2 > 2`` (the higher mode is reported; for large ``s``
            it lies within rounding of a bound, and the bound is reported)
==========  ====================================================================================

``s = 0`` gives a point mass (mean = median = mode, sd 0). Every other margin (a latent sd, or a
mean through a non-normal parent margin, referring to the parent level; a level with a
user-written draw kernel) is simulated through the engine on a design, with fixed random keys so
that summaries at nearby ``psi`` use common random numbers and are smooth in ``psi``. Its mode is
the maximum of a Gaussian kernel density estimate, computed on the latent scale and mapped back
with the Jacobian when the link is known (which respects the bounds of the support) and on the
natural scale otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.ndimage import gaussian_filter1d
from scipy.special import expit, logit

from simfit.data import Panel
from simfit.errors import ArgumentError
from simfit.model import Model
from simfit.seeding import derive_seed
from simfit.weighted import systematic_resample, weighted_quantile

__all__ = ["SUMMARY_NAMES", "unit_distribution", "population_summary"]

#: Summaries of each population distribution, in the order of the columns of the arrays returned.
SUMMARY_NAMES = ("mean", "median", "mode", "sd", "q05", "q95")
_PROBS = (0.05, 0.95)

_METHODS = ("auto", "simulate")
_INTERVALS = ("auto", "sampling", "delta")

# Relative central-difference steps on the unconstrained scale: exact summaries are smooth to
# rounding; simulated ones (with common random numbers) are piecewise smooth, with kinks where two
# simulated values swap order, so they take a step that averages over those.
_STEP_EXACT = 1e-5
_STEP_SIMULATED = 1e-3
# Simulated panels per engine call are limited to about this many bytes of output.
_BLOCK_BYTES = 64 * 2**20
# At most this many simulated values enter a kernel density estimate (the first ones, so the
# subset is the same at every psi).
_KDE_MAX = 20_000
# Latent-scale half-width and largest step of the trapezoidal rule for logit-normal moments.
_QUAD_HALF_WIDTH = 9.0
_QUAD_STEP = 0.045
_QUAD_MAX_NODES = 4001
_BISECTION_STEPS = 100


# ---------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class _Latent:
    """Latent normal ``N(mean, sum of sd_k^2)``; each term is ``("const", value)`` or ``("psi", index)``."""

    mean: tuple[str, float]
    sds: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class _Margin:
    key: str
    level: int
    column: int
    link: str | None  # None: a user-written kernel, support unknown
    bounds: tuple[float, float]
    latent: _Latent | None  # None: simulated
    reason: str = ""  # why it is simulated


def _plan(model: Model, method: str) -> list[_Margin]:
    """One :class:`_Margin` per parameter of every level, in level order."""
    margins: list[_Margin] = []
    previous: dict[str, _Margin] = {}
    for k, lv in enumerate(model.levels):
        current: dict[str, _Margin] = {}
        specs = {name: (dist, j) for dist in lv.distributions for j, name in enumerate(dist.names)}
        for col, name in enumerate(lv.params):
            key = f"{lv.name}.{name}"
            if name not in specs:
                margin = _Margin(key, k, col, None, (-math.inf, math.inf), None,
                                 f"level {lv.name!r} draws its parameters with a user-written kernel")
            else:
                dist, j = specs[name]
                link, bounds = dist.links[j], tuple(float(b) for b in dist.bounds[j])
                latent, reason = _latent(model, lv.parent_names, previous, dist.mean[j], dist.sd[j])
                if method == "simulate":
                    latent, reason = None, "method='simulate' was requested"
                margin = _Margin(key, k, col, link, bounds, latent, reason)
            current[name] = margin
            fixed = margin.latent is not None and margin.latent.mean[0] == "const" and all(sd[0] == "const" for sd in margin.latent.sds)
            if not fixed:  # a parameter fixed by the model (no population parameter in it) is not estimated
                margins.append(margin)
        previous = current
    return margins


def _latent(model: Model, parent_names, parent_margins: dict, mean, sd) -> tuple[_Latent | None, str]:
    def ref(value):
        if isinstance(value, str):
            if value in parent_names:
                return "parent", value
            if value in model.fixed:
                return "const", model.fixed[value]
            return "psi", float(model.params.index(value))
        return "const", float(value)

    m, s = ref(mean), ref(sd)
    if s[0] == "parent":
        return None, f"its latent sd is the parent-level parameter {s[1]!r}"
    if m[0] != "parent":
        return _Latent(m, (s,)), ""
    parent = parent_margins.get(m[1])
    if parent is None or parent.latent is None or parent.link != "identity":
        return None, f"its latent mean is the parent-level parameter {m[1]!r}, whose distribution is not normal"
    # Parent value N(mu_p, v_p) plus independent s z: the latent variances add.
    return _Latent(parent.latent.mean, parent.latent.sds + (s,)), ""


def _term(term: tuple[str, float], rows: np.ndarray) -> np.ndarray:
    kind, value = term
    return rows[:, int(value)] if kind == "psi" else np.full(rows.shape[0], value)


# ---------------------------------------------------------------------------------------- exact


def _exact(margin: _Margin, rows: np.ndarray) -> np.ndarray:
    """Exact summaries of a closed-form margin at each row, shape (n_rows, 6)."""
    latent = margin.latent
    mu = _term(latent.mean, rows)
    s = np.sqrt(np.sum([_term(t, rows) ** 2 for t in latent.sds], axis=0))
    z05, z95 = stats.norm.ppf(_PROBS)
    if margin.link == "identity":
        cols = (mu, mu, mu, s, mu + s * z05, mu + s * z95)
    elif margin.link == "log":
        with np.errstate(over="ignore"):
            mean = np.exp(mu + 0.5 * s**2)
            cols = (mean, np.exp(mu), np.exp(mu - s**2), np.sqrt(np.expm1(s**2)) * mean,
                    np.exp(mu + s * z05), np.exp(mu + s * z95))
    else:
        lo, hi = margin.bounds
        width = hi - lo
        mean_p, sd_p = _logit_normal_moments(mu, s)
        y_mode = _logit_normal_mode(mu, s)
        cols = (lo + width * mean_p, lo + width * expit(mu), lo + width * expit(y_mode), width * sd_p,
                lo + width * expit(mu + s * z05), lo + width * expit(mu + s * z95))
    return np.column_stack(cols)


def _logit_normal_moments(mu: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of ``expit(mu + s Z)``, Z standard normal, shapes (n_rows,).

    The trapezoidal rule on the standard-normal scale converges exponentially for these analytic
    integrands while the step is small against the distance ``pi / s`` of the logistic's poles, so
    the step shrinks with the largest ``s``.
    """
    s_max = float(np.max(s, initial=0.0))
    step = min(_QUAD_STEP, 0.45 / s_max) if s_max > 0 else _QUAD_STEP
    n_nodes = min(_QUAD_MAX_NODES, 2 * math.ceil(_QUAD_HALF_WIDTH / step) + 1)
    z = np.linspace(-_QUAD_HALF_WIDTH, _QUAD_HALF_WIDTH, n_nodes)
    w = np.exp(-0.5 * z**2)
    w /= w.sum()
    p = expit(mu[:, None] + s[:, None] * z[None, :])
    mean = p @ w
    var = (p - mean[:, None]) ** 2 @ w
    return mean, np.sqrt(var)


def _logit_normal_mode(mu: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Latent value ``y`` at the mode of ``expit(mu + s Z)`` on the natural scale, shape (n_rows,).

    With ``y = logit(x)`` the log density of ``x`` is ``-(y - mu)^2 / (2 s^2) - log(p (1 - p))``
    (``p = expit(y)``); its stationary points solve ``h(y) = y - mu - s^2 tanh(y / 2) = 0``, all in
    ``[mu - s^2, mu + s^2]``. For ``s^2 <= 2`` ``h`` increases and has one root (the mode). Otherwise
    ``h`` decreases on ``|y| < y*`` (``cosh(y* / 2)^2 = s^2 / 2``): a root on the left branch is a
    mode if ``h(-y*) > 0``, on the right branch if ``h(y*) < 0``, and the middle root a trough.
    The higher of two modes is returned, the lower one on exact ties.
    """
    s2 = s * s

    def h(y):
        return y - mu - s2 * np.tanh(0.5 * y)

    y_star = 2.0 * np.arccosh(np.sqrt(np.maximum(0.5 * s2, 1.0)))
    left_exists = h(-y_star) > 0.0
    right_exists = h(y_star) < 0.0
    unimodal = s2 <= 2.0
    low, high = mu - s2 - 1.0, mu + s2 + 1.0
    y_left = _bisect(h, low, np.where(unimodal, high, -y_star))
    y_right = _bisect(h, y_star, high)

    def log_density(y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return -((y - mu) ** 2) / (2.0 * s2) + np.abs(y) + 2.0 * np.log1p(np.exp(-np.abs(y)))

    right_higher = log_density(y_right) > log_density(y_left)
    pick_right = ~unimodal & right_exists & (~left_exists | right_higher)
    return np.where(pick_right, y_right, y_left)


def _bisect(f, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Root of an increasing ``f`` (elementwise) bracketed by ``f(a) <= 0 <= f(b)``."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    a, b = a.copy(), b.copy()
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (a + b)
        below = f(mid) <= 0.0
        a = np.where(below, mid, a)
        b = np.where(below, b, mid)
    return 0.5 * (a + b)


# ---------------------------------------------------------------------------------------- simulated


def _sample_summaries(x: np.ndarray, margin: _Margin) -> np.ndarray:
    """Summaries of simulated values of one margin, shape (6,)."""
    median, q05, q95 = np.quantile(x, (0.5, *_PROBS))
    sd = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    return np.array([np.mean(x), median, _kde_mode(x[:_KDE_MAX], margin), sd, q05, q95])


def _to_latent(x: np.ndarray, margin: _Margin) -> np.ndarray:
    if margin.link == "log":
        return np.log(np.maximum(x, np.finfo(float).tiny))
    if margin.link == "logit":
        lo, hi = margin.bounds
        p = np.clip((x - lo) / (hi - lo), np.finfo(float).tiny, np.nextafter(1.0, 0.0))
        return logit(p)
    return x


def _from_latent(y: float, margin: _Margin) -> float:
    if margin.link == "log":
        return math.exp(y)
    if margin.link == "logit":
        lo, hi = margin.bounds
        return float(lo + (hi - lo) * expit(y))
    return y


def _dlog_jacobian(y: np.ndarray, margin: _Margin) -> np.ndarray:
    """Derivative in ``y`` of ``log |dx / dy|``."""
    if margin.link == "log":
        return np.ones_like(y)
    if margin.link == "logit":
        return 1.0 - 2.0 * expit(y)
    return np.zeros_like(y)


def _kde_mode(x: np.ndarray, margin: _Margin) -> float:
    """Mode of a Gaussian kernel density estimate of the values ``x``.

    The estimate is built on the latent scale of a known link and mapped back to the natural scale
    with the Jacobian of the link (no mass outside the support, no boundary bias), on the natural
    scale otherwise. The bandwidth has Silverman's constant and the rate ``n^(-1/7)`` suited to
    locating a mode (a zero of the density's derivative) rather than to the density itself. The
    maximum of a linearly binned estimate is refined by bisection on the derivative of the exact
    estimate, so the mode moves smoothly with the values.
    """
    if np.ptp(x) == 0.0:
        return float(x[0])
    y = _to_latent(x, margin)
    n = y.size
    q25, q75 = np.quantile(y, (0.25, 0.75))
    sd = float(np.std(y))
    spread = min(sd, (q75 - q25) / 1.349) if q75 > q25 else sd
    if not spread > 1e-9 * max(1.0, float(np.max(np.abs(y)))):
        return float(np.median(x))  # a spread at rounding level: a point mass, no density to smooth
    bw = 0.9 * spread * n ** (-1.0 / 7.0)
    lo, hi = float(y.min()) - 4.0 * bw, float(y.max()) + 4.0 * bw
    n_grid = int(np.clip(4.0 * (hi - lo) / bw, 512, 65536))
    grid = np.linspace(lo, hi, n_grid)
    dx = grid[1] - grid[0]
    pos = (y - lo) / dx
    i = np.clip(np.floor(pos).astype(np.int64), 0, n_grid - 2)
    frac = pos - i
    counts = np.bincount(i, 1.0 - frac, minlength=n_grid) + np.bincount(i + 1, frac, minlength=n_grid)
    dens = gaussian_filter1d(counts, bw / dx, mode="constant", truncate=6.0)
    if margin.link == "log":
        log_jac = grid
    elif margin.link == "logit":  # log(p (1 - p)), p = expit(grid), without underflow
        log_jac = -np.abs(grid) - 2.0 * np.log1p(np.exp(-np.abs(grid)))
    else:
        log_jac = 0.0
    with np.errstate(divide="ignore"):
        target = np.log(dens) - log_jac
    k = int(np.argmax(target))

    def slope(t):
        t = np.atleast_1d(t)
        d = (t[:, None] - y[None, :]) / bw
        a = -0.5 * d * d
        w = np.exp(a - a.max(axis=1, keepdims=True))
        return -(w * d).sum(axis=1) / (w.sum(axis=1) * bw) - _dlog_jacobian(t, margin)

    a, b = grid[max(k - 1, 0)], grid[min(k + 1, n_grid - 1)]
    sa, sb = slope(np.array([a, b]))
    if sa > 0.0 > sb:
        y_mode = float(_bisect(lambda t: -slope(t), np.array([a]), np.array([b]))[0])
    else:
        y_mode = float(grid[k])
    return _from_latent(y_mode, margin)


# ---------------------------------------------------------------------------------------- evaluator


class _Evaluator:
    """Summaries of the margins of ``model`` at rows of natural-scale ``psi``."""

    def __init__(self, model: Model, design, n_sims: int, seed: int, method: str) -> None:
        if not isinstance(model, Model):
            raise ArgumentError(f"Expected a Model, got {type(model).__name__}.")
        if method not in _METHODS:
            raise ArgumentError(f"Unknown method {method!r}; use 'auto' (exact where possible) or 'simulate'.")
        if isinstance(n_sims, (bool, np.bool_)) or not isinstance(n_sims, (int, np.integer)) or n_sims < 1:
            raise ArgumentError(f"n_sims must be a positive integer, got {n_sims!r}.")
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ArgumentError(f"seed must be a non-negative integer, got {seed!r}.")
        if design is not None and not isinstance(design, Panel):
            raise ArgumentError(f"design must be a Panel (e.g. panel.design()), got {type(design).__name__}.")
        self.model = model
        self.design = design
        self.n_sims = int(n_sims)
        self.seed = int(seed)
        self._simulator = None
        self.margins = self._without_covariates(_plan(model, method))
        self.keys = [m.key for m in self.margins]
        self.exact = np.array([m.latent is not None for m in self.margins], dtype=bool)

    def _without_covariates(self, margins: list[_Margin]) -> list[_Margin]:
        """The margins, less the parameters a user-written draw kernel copies from its entities'
        covariates (a unit's known standard error handed to the observations): a covariate is
        part of the design, not drawn from the population. Found by simulating at the model's
        start and at a second point: a copy equals one covariate column for every entity."""
        design = self.design
        candidates = [
            m for m in margins
            if m.latent is None and m.link is None and design is not None
            and design.level_covariates[m.level].shape[1] > 0
        ]
        if not candidates:
            return margins
        params = self.model.params
        start = params.start
        rows = np.array([start, params.to_natural(params.to_free(start) + 0.5)])
        simulator = self._get_simulator([margins.index(candidates[0])], margins)
        values = [simulator.simulate(psi, n_sims=2, seed=self.seed).params for psi in rows]
        copies = set()
        for m in candidates:
            covariates = design.level_covariates[m.level]
            name = self.model.levels[m.level].name
            drawn = [v[name][:, :, m.column] for v in values]
            if any(all(np.array_equal(x, np.broadcast_to(covariates[:, c], x.shape)) for x in drawn)
                   for c in range(covariates.shape[1])):
                copies.add(m.key)
        return [m for m in margins if m.key not in copies]

    @property
    def all_exact(self) -> bool:
        return bool(self.exact.all())

    def rows(self, psi) -> tuple[np.ndarray, bool]:
        """Validated rows of ``psi``, shape (n_rows, n_params), and whether ``psi`` was one vector."""
        params = self.model.params
        if isinstance(psi, Mapping):
            return params.as_vector(dict(psi))[None], True
        try:
            arr = np.asarray(psi, dtype=float)
        except (TypeError, ValueError):
            raise ArgumentError(f"psi must be numbers, got {psi!r}.") from None
        single = arr.ndim == 1
        arr = np.atleast_2d(arr)
        if arr.ndim != 2 or arr.shape[1] != len(params):
            raise ArgumentError(
                f"psi must have shape ({len(params)},) or (n_rows, {len(params)}) for parameters "
                f"({', '.join(params.names)}), got {np.shape(psi)}."
            )
        inside = (arr > params.lower) & (arr < params.upper)
        if not inside.all():
            r, j = np.argwhere(~inside)[0]
            raise ArgumentError(
                f"psi row {r}: parameter {params.names[j]!r} = {arr[r, j]} lies outside its bounds "
                f"{params[int(j)].bounds}; give values strictly inside the bounds."
            )
        return arr, single

    def evaluate(self, rows: np.ndarray, which: np.ndarray | None = None, independent: bool = False) -> np.ndarray:
        """Summaries, shape (n_rows, n_margins, 6); margins outside ``which`` are NaN. Simulated
        margins use the same random keys at every row (common random numbers: smooth in ``psi``),
        or with ``independent`` keys of their own per row (a posterior's draws: their simulation
        errors then average out over the draws instead of adding up)."""
        which = np.ones(len(self.margins), dtype=bool) if which is None else which
        out = np.full((rows.shape[0], len(self.margins), len(SUMMARY_NAMES)), np.nan)
        for k, margin in enumerate(self.margins):
            if which[k] and margin.latent is not None:
                out[:, k] = _exact(margin, rows)
        simulated = [k for k, m in enumerate(self.margins) if which[k] and m.latent is None]
        if simulated and rows.shape[0]:
            self._simulate(rows, simulated, out, independent)
        return out

    def _simulate(self, rows: np.ndarray, simulated: list[int], out: np.ndarray, independent: bool = False) -> None:
        simulator = self._get_simulator(simulated)
        levels = sorted({self.margins[k].level for k in simulated})
        names = [self.model.levels[k].name for k in levels]
        sizes = self.design.level_sizes()
        per_sim = 8 * (self.design.n_obs * self.model.observations.n_values
                       + sum(sizes[k] * lv.n_params for k, lv in enumerate(self.model.levels)))
        block = max(1, min(self.n_sims, _BLOCK_BYTES // per_sim))
        for r, psi in enumerate(rows):
            parts: dict[str, list] = {name: [] for name in names}
            # The same (seed, simulation) keys at every row: common random numbers; or a row's own.
            seed = derive_seed(self.seed, 7, r) if independent else self.seed
            for first in range(0, self.n_sims, block):
                sim = simulator.simulate(psi, n_sims=min(block, self.n_sims - first), seed=seed, first_sim=first)
                for name in names:
                    parts[name].append(sim.params[name].copy())
            values = {name: np.concatenate(parts[name]) for name in names}
            for k in simulated:
                margin = self.margins[k]
                x = values[self.model.levels[margin.level].name][:, :, margin.column].reshape(-1)
                out[r, k] = _sample_summaries(x, margin)

    def _get_simulator(self, simulated: list[int], margins: list[_Margin] | None = None):
        margins = self.margins if margins is None else margins
        if self._simulator is None:
            if self.design is None:
                first = margins[simulated[0]]
                keys = ", ".join(margins[k].key for k in simulated)
                raise ArgumentError(
                    f"The population distribution of {keys} has no closed form ({first.key}: "
                    f"{first.reason}) and is simulated on a design, but none was given; pass "
                    "design=panel.design() (a fit carries it as result.design)."
                )
            from simfit.engine import Simulator

            self._simulator = Simulator(self.model, self.design)
        return self._simulator


# ---------------------------------------------------------------------------------------- public


def unit_distribution(
    model: Model,
    psi,
    design: Panel | None = None,
    n_sims: int = 200,
    seed: int = 0,
    method: str = "auto",
) -> dict[str, np.ndarray]:
    """Summaries of the population distribution of every entity-level parameter at ``psi``.

    Parameters
    ----------
    model : Model
    psi : array_like, shape (n_params,) or (n_rows, n_params), or mapping
        Population parameters on the natural scale: one vector (or ``{name: value}``), or one per
        row.
    design : Panel, optional
        Design on which margins without a closed form are simulated (the entities of a level and
        their covariates define its population); needed only for those.
    n_sims : int, default 200
        Panels simulated per row of ``psi`` for margins without a closed form.
    seed : int, default 0
        Random keys of those simulations, the same at every row (common random numbers, so that
        the summaries are smooth in ``psi``).
    method : {"auto", "simulate"}
        ``"auto"`` uses the exact summaries wherever the margin has them (see the module
        docstring); ``"simulate"`` simulates every margin.

    Returns
    -------
    dict of str -> ndarray
        Keyed ``"<level>.<parameter>"`` (e.g. ``"unit.rate"``) for every parameter of every level,
        in the model's order. Each value has shape (n_rows, 6), or (6,) for a single vector of
        ``psi``, with columns :data:`SUMMARY_NAMES`: mean, median, mode, sd, 5% and 95% quantiles.

    Raises
    ------
    ArgumentError
        If ``psi`` has the wrong shape or lies outside the bounds, or a margin must be simulated
        and no ``design`` was given.

    Notes
    -----
    Simulated summaries describe the values of all entities of the level in ``n_sims`` panels of
    the design, i.e. the population mixed over the design's entities. Their mode is the maximum of
    a kernel density estimate of at most 20,000 of those values. A bimodal logit-normal margin has
    its higher mode reported; where the two modes are equally high (``mu = 0``), the reported mode
    jumps between them under small changes of ``psi``.

    Examples
    --------
    >>> from simfit.models import lognormal_exponential
    >>> d = unit_distribution(lognormal_exponential.model(), [0.0, 0.5])
    >>> d["unit.rate"].round(4)  # mean exp(0.125), median 1, mode exp(-0.25), ...
    array([1.1331, 1.    , 0.7788, 0.6039, 0.4394, 2.276 ])
    """
    evaluator = _Evaluator(model, design, n_sims, seed, method)
    rows, single = evaluator.rows(psi)
    values = evaluator.evaluate(rows)
    return {key: values[0, k] if single else values[:, k] for k, key in enumerate(evaluator.keys)}


def population_summary(
    result,
    alpha: float = 0.1,
    *,
    interval: str = "auto",
    n_draws: int = 2000,
    n_sims: int = 200,
    seed: int = 0,
    max_simulated_draws: int = 100,
    method: str = "auto",
) -> pd.DataFrame:
    """Population distribution of every entity-level parameter, with its uncertainty.

    Parameters
    ----------
    result : FitResult or posterior
        A fit (with ``model``, ``free``, ``cov_free`` and ``design``) or a posterior sample (with
        ``model``, ``design``, ``draws`` of shape (n_chains, n_draws, n_params) on the natural
        scale and ``weights``, None or non-negative of shape (n_chains, n_draws)).
    alpha : float, default 0.1
        The intervals have coverage ``1 - alpha``.
    interval : {"auto", "sampling", "delta"}
        Fits only. ``"sampling"``: the central ``1 - alpha`` range of the summaries over ``n_draws``
        draws of the estimate's asymptotic sampling distribution ``N(free, cov_free)`` on the
        unconstrained scale (respects the support, e.g. positive for log links, and the skewness of
        the summaries). ``"delta"``: ``estimate -+ z se``. ``"auto"``: ``"sampling"`` when every
        summary is exact, else ``"delta"`` (each draw would cost ``n_sims`` simulated panels).
    n_draws : int, default 2000
        Draws of the sampling distribution for ``interval="sampling"``.
    n_sims, method
        As in :func:`unit_distribution`; ``design`` is the result's.
    seed : int, default 0
        Seeds the simulations of margins without a closed form, the draws of the sampling
        distribution and the subsample of posterior draws.
    max_simulated_draws : int, default 100
        Posteriors only: margins without a closed form are simulated at this many posterior draws
        (a uniform subsample without replacement, or a systematic resample by the weights);
        exact margins use every draw. The posterior means of simulated summaries are corrected for
        the subsample by a regression on the population parameters, known at every draw (control
        variates), and their Monte-Carlo standard error is reported (``mc_se``).

    Returns
    -------
    DataFrame
        Rows: a MultiIndex (``parameter``, ``summary``) with parameters ``"<level>.<parameter>"``
        and summaries :data:`SUMMARY_NAMES`. For a fit, columns ``estimate`` (the summaries at the
        estimate), ``se`` (delta method: central differences on the unconstrained scale with
        ``cov_free``), ``lower`` and ``upper``. For a posterior, columns ``mean``, ``sd``, ``lower``
        and ``upper``: the (weighted) posterior mean, sd and central ``1 - alpha`` interval of each
        summary over the draws; where margins are simulated, also ``mc_se``, the Monte-Carlo
        standard error of the posterior mean from simulating at a subsample of the draws (0 for
        exact margins), and ``attrs`` name the simulated margins and the draws simulated at.
        Parameters a user-written draw kernel copies from its entities' covariates (a known
        standard error handed to the observations) are not summarised: they are the design's.

    Notes
    -----
    Where ``cov_free`` is not finite for a parameter (an unidentified direction), summaries that
    depend on it get ``se = inf`` (NaN if the covariance is NaN) and NaN interval bounds; the
    others are unaffected. Summaries that jump with ``psi`` (the mode of a symmetric bimodal
    margin) get a correspondingly huge ``se``.
    """
    if not (isinstance(alpha, (float, int)) and 0.0 < alpha < 1.0):
        raise ArgumentError(f"alpha must lie in (0, 1), got {alpha!r}.")
    for name, value in (("n_draws", n_draws), ("max_simulated_draws", max_simulated_draws)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ArgumentError(f"{name} must be a positive integer, got {value!r}.")
    model = getattr(result, "model", None)
    evaluator = _Evaluator(model, getattr(result, "design", None), n_sims, seed, method)
    index = pd.MultiIndex.from_product([evaluator.keys, SUMMARY_NAMES], names=["parameter", "summary"])
    attrs = {}
    if hasattr(result, "draws"):
        columns, attrs = _posterior(evaluator, result, alpha, seed, int(max_simulated_draws))
    elif hasattr(result, "free") and hasattr(result, "cov_free"):
        if interval not in _INTERVALS:
            raise ArgumentError(f"Unknown interval {interval!r}; use 'auto', 'sampling' or 'delta'.")
        columns = _fit(evaluator, result, alpha, interval, int(n_draws), seed)
    else:
        raise ArgumentError(
            f"Expected a FitResult or a posterior with .draws, got {type(result).__name__}; pass the "
            "result of simfit.fit or of a Bayesian sampler."
        )
    frame = pd.DataFrame(columns, index=index)
    if attrs:  # which margins were simulated, at how many of the draws
        frame.attrs.update(attrs, simulated=[evaluator.keys[k] for k in np.flatnonzero(~evaluator.exact)])
    return frame


def _fit(evaluator: _Evaluator, result, alpha: float, interval: str, n_draws: int, seed: int) -> dict:
    params = evaluator.model.params
    u = np.asarray(result.free, dtype=float).reshape(-1)
    cov = np.asarray(result.cov_free, dtype=float)
    p = u.size
    if cov.shape != (p, p):
        raise ArgumentError(f"cov_free must have shape ({p}, {p}), got {cov.shape}.")
    estimate = evaluator.evaluate(params.to_natural(u)[None])[0].reshape(-1)

    n_summaries = len(SUMMARY_NAMES)
    grad = np.zeros((estimate.size, p))
    for group, rel in ((evaluator.exact, _STEP_EXACT), (~evaluator.exact, _STEP_SIMULATED)):
        if not group.any():
            continue
        h = rel * np.maximum(1.0, np.abs(u))
        rows = np.concatenate([u + np.diag(h), u - np.diag(h)])
        values = evaluator.evaluate(params.to_natural(rows), group).reshape(2 * p, -1)
        cols = np.repeat(group, n_summaries)
        grad[cols] = ((values[:p] - values[p:]) / (2.0 * h[:, None])).T[cols]

    # Directions with a non-finite covariance are unidentified: summaries moving along them have
    # no finite standard error; the others use the finite block only.
    bad = ~np.isfinite(np.diag(cov))  # their rows and columns are NaN in a sandwich covariance
    good = ~bad
    cov_good = cov[np.ix_(good, good)]
    g = grad[:, good]
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", g, cov_good, g), 0.0))
    involved = (grad[:, bad] != 0.0) | ~np.isfinite(grad[:, bad])
    # A parameter on its bound (a spread at 0) has a vanishing derivative on the unconstrained
    # scale; what depends on it is seen by moving it a little into the interior.
    psi = params.to_natural(u)
    for k, j in enumerate(np.flatnonzero(bad)):
        if params[int(j)].name in params.on_bound(psi):
            moved = psi.copy()
            p_j = params[int(j)]
            lo, hi = p_j.bounds
            step = 1e-4 * max(1.0, abs(p_j.start))
            moved[j] = lo + step if abs(psi[j] - lo) <= abs(psi[j] - hi) else hi - step
            shifted = evaluator.evaluate(moved[None])[0].reshape(-1)
            involved[:, k] |= ~np.isclose(shifted, estimate, rtol=1e-9, atol=1e-12)
    nan_cov = np.isnan(cov[bad]).any(axis=1)
    se = np.where(involved.any(axis=1), np.inf, se)
    se = np.where((involved & nan_cov[None, :]).any(axis=1), np.nan, se)
    se = np.where(np.isfinite(grad).all(axis=1), se, np.nan)

    if interval == "auto":
        interval = "sampling" if evaluator.all_exact else "delta"
    if interval == "delta":
        z = stats.norm.ppf(1.0 - alpha / 2.0)
        lower, upper = estimate - z * se, estimate + z * se
    else:
        rng = np.random.default_rng(seed)
        vals, vecs = np.linalg.eigh(cov_good) if good.any() else (np.zeros(0), np.zeros((0, 0)))
        root = vecs * np.sqrt(np.maximum(vals, 0.0))
        draws = np.tile(u, (n_draws, 1))
        draws[:, good] += rng.standard_normal((n_draws, int(good.sum()))) @ root.T
        values = evaluator.evaluate(params.to_natural(draws)).reshape(n_draws, -1)
        lower, upper = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
        undetermined = involved.any(axis=1)
        lower = np.where(undetermined, np.nan, lower)
        upper = np.where(undetermined, np.nan, upper)
    return {"estimate": estimate, "se": se, "lower": lower, "upper": upper}


def _posterior(evaluator: _Evaluator, posterior, alpha: float, seed: int, max_simulated: int) -> dict:
    draws = np.asarray(posterior.draws, dtype=float)
    p = len(evaluator.model.params)
    if draws.ndim != 3 or draws.shape[2] != p or draws.shape[0] * draws.shape[1] == 0:
        raise ArgumentError(
            f"posterior.draws must have shape (n_chains, n_draws, {p}) with at least one draw, got {draws.shape}."
        )
    rows = draws.reshape(-1, p)
    n = rows.shape[0]
    weights = getattr(posterior, "weights", None)
    if weights is None:
        w = np.full(n, 1.0 / n)
    else:
        w = np.asarray(weights, dtype=float)
        if w.shape != draws.shape[:2]:
            raise ArgumentError(f"posterior.weights must have shape {draws.shape[:2]} (one per draw), got {w.shape}.")
        w = w.reshape(-1)
        if not (np.all(np.isfinite(w)) and np.all(w >= 0.0) and w.sum() > 0.0):
            raise ArgumentError("posterior.weights must be finite, non-negative and not all zero.")
        w = w / w.sum()
    keep = w > 0.0  # draws without weight do not count
    rows, _ = evaluator.rows(rows[keep])
    w = w[keep]
    n = rows.shape[0]

    n_summaries = len(SUMMARY_NAMES)
    exact = np.repeat(evaluator.exact, n_summaries)
    values = evaluator.evaluate(rows, evaluator.exact).reshape(n, -1)
    columns = {name: np.full(exact.size, np.nan) for name in ("mean", "sd", "lower", "upper")}
    probs = (alpha / 2.0, 1.0 - alpha / 2.0)
    parts = [(exact, values, w)]
    if not evaluator.all_exact:
        rng = np.random.default_rng(seed)
        if weights is None:
            pick = rng.choice(n, size=min(n, max_simulated), replace=False)
        else:  # systematic resampling: equally weighted draws with the weighted draws' distribution
            pick = systematic_resample(w, max_simulated, rng)
        unique, inverse = np.unique(pick, return_inverse=True)
        sub = evaluator.evaluate(rows[unique], ~evaluator.exact, independent=True).reshape(unique.size, -1)[inverse]
        parts.append((~exact, sub, np.full(pick.size, 1.0 / pick.size)))
    for cols, vals, wts in parts:
        v = vals[:, cols]
        mean = wts @ v
        columns["mean"][cols] = mean
        columns["sd"][cols] = np.sqrt(np.maximum(wts @ (v - mean) ** 2, 0.0))
        columns["lower"][cols], columns["upper"][cols] = weighted_quantile(v, probs, wts)
    if not evaluator.all_exact:
        free = evaluator.model.params.to_free(rows)
        whole = weights is None and pick.size == n  # every draw simulated: no subsampling error
        mean, mc_se = _subsample_mean(sub[:, ~exact], free[pick], w @ free, whole)
        columns["mean"][~exact] = mean
        columns["mc_se"] = np.zeros(exact.size)
        columns["mc_se"][~exact] = mc_se
        return columns, {"simulated_draws": int(pick.size), "draws": int(n)}
    return columns, {}


def _subsample_mean(values: np.ndarray, free: np.ndarray, free_mean: np.ndarray, whole: bool) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of summaries simulated at a subsample of the draws, and their Monte-Carlo
    standard errors.

    The summaries move with the population parameters, known at every draw, so their subsample
    mean is corrected by a regression on the parameters (unconstrained scale): the control-variate
    estimator ``mean(v) + (mean_all(u) - mean_sub(u)) b``. Its error is the residuals' sd over the
    root of the subsample size; a summary that is a linear function of the parameters (the mean of
    a normal margin) is then exact. Without enough draws for the regression, the plain mean and
    ``sd / sqrt(m)``.
    """
    m, p = free.shape
    plain = values.mean(axis=0)
    if whole:
        return plain, np.zeros(values.shape[1])
    if m < 2 * (p + 1) + 2:
        return plain, values.std(axis=0, ddof=1) / math.sqrt(m) if m > 1 else np.full(values.shape[1], np.inf)
    x = np.column_stack([np.ones(m), free - free.mean(axis=0)])
    coef, *_ = np.linalg.lstsq(x, values, rcond=None)
    residuals = values - x @ coef
    adjusted = plain + (free_mean - free.mean(axis=0)) @ coef[1:]
    return adjusted, np.sqrt((residuals**2).sum(axis=0) / (m - p - 1)) / math.sqrt(m)
