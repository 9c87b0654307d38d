"""Built-in population distributions for the levels of a hierarchy.

Each entity's parameters are drawn as a latent Gaussian vector mapped through a link:

=================  ============================================  =========================
distribution       entity parameter                              link
=================  ============================================  =========================
:class:`Normal`      ``mean + sd * z``                           identity
:class:`LogNormal`   ``exp(mean + sd * z)``                      log
:class:`LogitNormal` ``lo + (hi - lo) * expit(mean + sd * z)``   logit between bounds
:class:`MvNormal`    correlated margins, each with its own link  per margin
=================  ============================================  =========================

``mean``, ``sd`` and correlations are given as a number (a constant), the name of a population
parameter, or the name of a parameter of the parent level (for nested levels: a class effect
centred on its school's effect). :func:`population_level` turns a list of them into a
:class:`~simfit.model.Level` whose compiled kernel reads everything from its ``args``, so any
combination runs in the same compiled code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from simfit.errors import ModelError
from simfit.model import Level
from simfit.params import ParamSet
from simfit.random import normal

__all__ = ["Normal", "LogNormal", "LogitNormal", "MvNormal", "population_level", "latent_gaussian_draw"]

Ref = str | float | int

_LINKS = {"identity": 0, "log": 1, "logit": 2}
_CONST, _PSI, _PARENT = 0, 1, 2


@dataclass(frozen=True)
class MvNormal:
    """Correlated entity parameters from a multivariate normal latent vector.

    Parameters
    ----------
    names : sequence of str
        Entity parameter names, one per margin.
    mean, sd : sequence of Ref
        Latent means and standard deviations per margin (on the latent, i.e. linked, scale).
    corr : sequence of Ref
        Latent correlations of the pairs (0,1), (0,2), ..., (1,2), ... (upper triangle, row by row).
    links : sequence of {"identity", "log", "logit"}, optional
        Link of each margin; identity by default.
    bounds : sequence of (lo, hi), optional
        Interval of each ``logit`` margin; (0, 1) by default.
    """

    names: tuple[str, ...]
    mean: tuple[Ref, ...]
    sd: tuple[Ref, ...]
    corr: tuple[Ref, ...] = ()
    links: tuple[str, ...] | None = None
    bounds: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        d = len(self.names)
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "sd", tuple(self.sd))
        object.__setattr__(self, "corr", tuple(self.corr))
        links = tuple(self.links) if self.links is not None else ("identity",) * d
        bounds = tuple(tuple(b) for b in self.bounds) if self.bounds is not None else ((0.0, 1.0),) * d
        object.__setattr__(self, "links", links)
        object.__setattr__(self, "bounds", bounds)
        what = f"Distribution of {', '.join(self.names)}"
        if d == 0:
            raise ModelError("A distribution needs at least one parameter name.")
        for label, seq, n in (("mean", self.mean, d), ("sd", self.sd, d), ("links", links, d), ("bounds", bounds, d), ("corr", self.corr, d * (d - 1) // 2)):
            if len(seq) != n:
                raise ModelError(f"{what}: {label} needs {n} entries, got {len(seq)}.")
        for link in links:
            if link not in _LINKS:
                raise ModelError(f"{what}: unknown link {link!r}; choose one of {', '.join(_LINKS)}.")
        for lo, hi in bounds:
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ModelError(f"{what}: logit bounds must be finite with lo < hi, got ({lo}, {hi}).")
        for v in self.sd:
            if not isinstance(v, str) and not float(v) >= 0.0:
                raise ModelError(f"{what}: a constant sd must be non-negative, got {v!r}.")
        for v in self.corr:
            if not isinstance(v, str) and not -1.0 < float(v) < 1.0:
                raise ModelError(f"{what}: a constant correlation must lie in (-1, 1), got {v!r}.")
        if d > 1 and self.corr and not any(isinstance(v, str) for v in self.corr):
            r = np.eye(d)
            r[np.triu_indices(d, 1)] = [float(v) for v in self.corr]
            r = r + np.triu(r, 1).T
            if np.linalg.eigvalsh(r).min() <= 0.0:
                raise ModelError(f"{what}: the correlations {self.corr} do not form a positive definite matrix.")

    @property
    def dim(self) -> int:
        return len(self.names)


def Normal(name: str, mean: Ref, sd: Ref) -> MvNormal:
    """Entity parameter ``mean + sd * z``."""
    return MvNormal((name,), (mean,), (sd,))


def LogNormal(name: str, log_mean: Ref, log_sd: Ref) -> MvNormal:
    """Entity parameter ``exp(log_mean + log_sd * z)``."""
    return MvNormal((name,), (log_mean,), (log_sd,), links=("log",))


def LogitNormal(name: str, logit_mean: Ref, logit_sd: Ref, bounds: tuple[float, float] = (0.0, 1.0)) -> MvNormal:
    """Entity parameter ``lo + (hi - lo) * expit(logit_mean + logit_sd * z)``."""
    return MvNormal((name,), (logit_mean,), (logit_sd,), links=("logit",), bounds=(bounds,))


def population_level(
    name: str,
    distributions: Sequence[MvNormal],
    params: ParamSet | Sequence,
    parent: Level | None = None,
) -> Level:
    """A :class:`~simfit.model.Level` drawing its parameters from built-in distributions.

    Parameters
    ----------
    name : str
        Name of the level (e.g. ``"subject"``).
    distributions : sequence of MvNormal
        Built with :func:`Normal`, :func:`LogNormal`, :func:`LogitNormal` or :class:`MvNormal`.
    params : ParamSet or sequence of Param
        The model's population parameters, to resolve names in ``mean``/``sd``/``corr``.
    parent : Level, optional
        The parent level, for nested levels whose distributions refer to parent parameters.
    """
    psi = params if isinstance(params, ParamSet) else ParamSet(tuple(params))
    parent_names = parent.params if parent is not None else ()

    def ref(value: Ref, where: str) -> tuple[float, float]:
        if isinstance(value, str):
            if value in parent_names and value in psi.names:
                raise ModelError(
                    f"Level {name!r}: {where} refers to {value!r}, which names both a population "
                    "parameter and a parameter of the parent level; rename one of them."
                )
            if value in parent_names:
                return float(_PARENT), float(parent_names.index(value))
            if value in psi.names:
                return float(_PSI), float(psi.index(value))
            known = ", ".join([*psi.names, *parent_names])
            raise ModelError(
                f"Level {name!r}: {where} refers to {value!r}, which is neither a population "
                f"parameter nor a parameter of the parent level ({known})."
            )
        v = float(value)
        if not math.isfinite(v):
            raise ModelError(f"Level {name!r}: {where} must be finite, got {value!r}.")
        return float(_CONST), v

    args: list[float] = [float(len(distributions))]
    names: list[str] = []
    for dist in distributions:
        if not isinstance(dist, MvNormal):
            raise ModelError(f"Level {name!r}: expected Normal/LogNormal/LogitNormal/MvNormal, got {dist!r}.")
        d = dist.dim
        args.append(float(d))
        args.extend(float(_LINKS[k]) for k in dist.links)
        args.extend(float(b[0]) for b in dist.bounds)
        args.extend(float(b[1]) for b in dist.bounds)
        for j in range(d):
            args.extend(ref(dist.mean[j], f"mean of {dist.names[j]!r}"))
        for j in range(d):
            args.extend(ref(dist.sd[j], f"sd of {dist.names[j]!r}"))
        for j, c in enumerate(dist.corr):
            args.extend(ref(c, f"correlation {j} of {dist.names}"))
        names.extend(dist.names)
    return Level(
        name=name,
        params=tuple(names),
        draw=latent_gaussian_draw,
        args=np.array(args),
        distributions=tuple(distributions),
        psi_names=psi.names,
        parent_names=tuple(parent_names),
    )


@njit(cache=True)
def _resolve(psi, parent, args, pos):
    kind = args[pos]
    value = args[pos + 1]
    if kind == 0.0:
        return value
    if kind == 1.0:
        return psi[int(value)]
    return parent[int(value)]


@njit(cache=True)
def _link(latent, link, lo, hi):
    if link == 0.0:
        return latent
    if link == 1.0:
        return math.exp(latent)
    return lo + (hi - lo) / (1.0 + math.exp(-latent))


@njit(cache=True)
def latent_gaussian_draw(psi, parent, covariates, args, rng, theta):
    """Level kernel of :func:`population_level` (see the module docstring for ``args``)."""
    pos = 1
    out = 0
    for _ in range(int(args[0])):
        d = int(args[pos])
        link_at = pos + 1
        lo_at = link_at + d
        hi_at = lo_at + d
        mean_at = hi_at + d
        sd_at = mean_at + 2 * d
        corr_at = sd_at + 2 * d
        pos = corr_at + d * (d - 1)
        if d == 1:
            # Read every input before drawing: loads issued after the stream's stores stall.
            mean = _resolve(psi, parent, args, mean_at)
            sd = _resolve(psi, parent, args, sd_at)
            link = args[link_at]
            lo = args[lo_at]
            hi = args[hi_at]
            theta[out] = _link(mean + sd * normal(rng), link, lo, hi)
            out += 1
            continue
        # Cholesky factor of the latent correlation matrix; the last two columns hold the
        # resolved means and standard deviations.
        chol = np.zeros((d, d + 2))
        for i in range(d):
            chol[i, d] = _resolve(psi, parent, args, mean_at + 2 * i)
            chol[i, d + 1] = _resolve(psi, parent, args, sd_at + 2 * i)
            for j in range(i + 1):
                if i == j:
                    acc = 1.0
                else:
                    # correlation of the pair (j, i), j < i, in row-major upper-triangle order
                    k = j * d - j * (j + 1) // 2 + (i - j - 1)
                    acc = _resolve(psi, parent, args, corr_at + 2 * k)
                for m in range(j):
                    acc -= chol[i, m] * chol[j, m]
                if i == j:
                    chol[i, i] = math.sqrt(acc) if acc > 0.0 else np.nan
                else:
                    chol[i, j] = acc / chol[j, j]
        # A fixed number of draws per block keeps common random numbers aligned.
        for j in range(d):
            theta[out + j] = normal(rng)
        for i in range(d - 1, -1, -1):
            acc = 0.0
            for m in range(i + 1):
                acc += chol[i, m] * theta[out + m]
            theta[out + i] = acc
        for j in range(d):
            latent = chol[j, d] + chol[j, d + 1] * theta[out + j]
            theta[out + j] = _link(latent, args[link_at + j], args[lo_at + j], args[hi_at + j])
        out += d
