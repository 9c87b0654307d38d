"""Population parameters and their transforms to an unconstrained space.

A :class:`Param` is one population parameter (a mean, a spread, a correlation, a noise scale). The
optimizer works on the unconstrained scale; the transform is derived from the bounds unless given:

=====================  ===============================  ================================
bounds                 transform (natural -> free)      inverse
=====================  ===============================  ================================
(-inf, inf)            identity                         identity
(lo, inf)              ``log(x - lo)``                  ``lo + exp(u)``
(-inf, hi)             ``log(hi - x)``                  ``hi - exp(u)``
(lo, hi)               ``logit((x - lo) / (hi - lo))``  ``lo + (hi - lo) * expit(u)``
=====================  ===============================  ================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, logit

from simfit.errors import ModelError

__all__ = ["Param", "ParamSet", "TRANSFORMS"]

TRANSFORMS = ("identity", "log", "logit")


@dataclass(frozen=True)
class Param:
    """One population parameter.

    Parameters
    ----------
    name : str
        Identifier used in tables, scenario files and kernels' documentation.
    bounds : tuple of float, default (-inf, inf)
        Open interval of admissible values; use ``math.inf`` for no bound.
    start : float, optional
        Starting value for estimation; must lie strictly inside the bounds. Defaults to 0 for
        unbounded parameters, ``lo + 1`` or ``hi - 1`` for half-bounded ones and the midpoint for
        bounded ones.
    transform : {"identity", "log", "logit"}, optional
        Map to the unconstrained scale; derived from the bounds when omitted.
    """

    name: str
    bounds: tuple[float, float] = (-math.inf, math.inf)
    start: float | None = None
    transform: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ModelError(
                f"Parameter name {self.name!r} is not a valid identifier; use letters, digits and "
                "underscores, e.g. 'tau' or 'log_rate'."
            )
        try:
            lo, hi = (float(b) for b in self.bounds)
        except (TypeError, ValueError):
            raise ModelError(
                f"Parameter {self.name!r}: bounds must be a pair of numbers (lo, hi), got "
                f"{self.bounds!r}."
            ) from None
        if math.isnan(lo) or math.isnan(hi) or not lo < hi:
            raise ModelError(
                f"Parameter {self.name!r}: bounds ({lo}, {hi}) are empty; the lower bound must be "
                "smaller than the upper bound."
            )
        object.__setattr__(self, "bounds", (lo, hi))
        derived = _derived_transform(lo, hi)
        transform = derived if self.transform is None else self.transform
        if transform not in TRANSFORMS:
            raise ModelError(
                f"Parameter {self.name!r}: unknown transform {transform!r}; choose one of "
                f"{', '.join(TRANSFORMS)} or leave it out to derive it from the bounds."
            )
        if transform != derived:
            raise ModelError(
                f"Parameter {self.name!r}: transform {transform!r} does not fit bounds ({lo}, {hi}); "
                f"these bounds need {derived!r}."
            )
        object.__setattr__(self, "transform", transform)
        start = _default_start(lo, hi) if self.start is None else float(self.start)
        if not (lo < start < hi):
            raise ModelError(
                f"Parameter {self.name!r}: start value {start} lies outside its bounds ({lo}, {hi}); "
                "give a start strictly inside the bounds."
            )
        object.__setattr__(self, "start", start)

    def to_free(self, value):
        """Map natural-scale value(s) to the unconstrained scale (vectorised)."""
        lo, hi = self.bounds
        v = np.asarray(value, dtype=float)
        if self.transform == "identity":
            return v
        if self.transform == "log":
            return np.log(v - lo) if math.isfinite(lo) else np.log(hi - v)
        return logit((v - lo) / (hi - lo))

    def to_natural(self, free):
        """Map unconstrained value(s) back to the natural scale (vectorised).

        Results stay strictly inside the bounds: far out on the unconstrained scale, where the
        transform rounds onto a bound (or overflows), they are clipped to the nearest
        representable interior value.
        """
        lo, hi = self.bounds
        u = np.asarray(free, dtype=float)
        if self.transform == "identity":
            return u
        with np.errstate(over="ignore"):
            if self.transform == "log":
                x = lo + np.exp(u) if math.isfinite(lo) else hi - np.exp(u)
            else:
                x = lo + (hi - lo) * expit(u)
        return np.clip(x, np.nextafter(lo, np.inf), np.nextafter(hi, -np.inf))

    def dnatural_dfree(self, free):
        """Derivative of :meth:`to_natural` at ``free`` (for the delta method)."""
        lo, hi = self.bounds
        u = np.asarray(free, dtype=float)
        if self.transform == "identity":
            return np.ones_like(u)
        if self.transform == "log":
            return np.exp(u) if math.isfinite(lo) else -np.exp(u)
        p = expit(u)
        return (hi - lo) * p * (1.0 - p)

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies strictly inside the bounds."""
        lo, hi = self.bounds
        return bool(lo < value < hi)


def _derived_transform(lo: float, hi: float) -> str:
    if math.isinf(lo) and math.isinf(hi):
        return "identity"
    if math.isinf(lo) or math.isinf(hi):
        return "log"
    return "logit"


def _default_start(lo: float, hi: float) -> float:
    if math.isinf(lo) and math.isinf(hi):
        return 0.0
    if math.isinf(hi):
        return lo + 1.0
    if math.isinf(lo):
        return hi - 1.0
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class ParamSet:
    """An ordered collection of :class:`Param` with vectorised transforms.

    Arrays of parameter vectors have the parameters along the last axis, so ``to_free`` and
    ``to_natural`` accept shape ``(n_params,)`` or ``(..., n_params)``.
    """

    params: tuple[Param, ...]
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        params = tuple(self.params)
        for p in params:
            if not isinstance(p, Param):
                raise ModelError(f"Expected Param objects, got {type(p).__name__}: {p!r}.")
        names = [p.name for p in params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ModelError(f"Duplicate parameter names: {', '.join(duplicates)}; names must be unique.")
        if not params:
            raise ModelError("A model needs at least one population parameter.")
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self):
        return iter(self.params)

    def __getitem__(self, key: int | str) -> Param:
        return self.params[self.index(key) if isinstance(key, str) else key]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    @property
    def start(self) -> np.ndarray:
        """Start values on the natural scale, shape (n_params,)."""
        return np.array([p.start for p in self.params])

    @property
    def lower(self) -> np.ndarray:
        return np.array([p.bounds[0] for p in self.params])

    @property
    def upper(self) -> np.ndarray:
        return np.array([p.bounds[1] for p in self.params])

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise ModelError(
                f"Unknown parameter {name!r}; the model's parameters are {', '.join(self.names)}."
            ) from None

    def to_free(self, values) -> np.ndarray:
        """Natural -> unconstrained, shape (..., n_params)."""
        v = self._as_matrix(values)
        return np.stack([p.to_free(v[..., j]) for j, p in enumerate(self.params)], axis=-1)

    def to_natural(self, free) -> np.ndarray:
        """Unconstrained -> natural, shape (..., n_params)."""
        u = self._as_matrix(free)
        return np.stack([p.to_natural(u[..., j]) for j, p in enumerate(self.params)], axis=-1)

    def jacobian_diag(self, free) -> np.ndarray:
        """d natural / d free for each parameter at ``free``, shape (..., n_params)."""
        u = self._as_matrix(free)
        return np.stack([p.dnatural_dfree(u[..., j]) for j, p in enumerate(self.params)], axis=-1)

    def natural_se(self, free, se_free) -> np.ndarray:
        """Standard errors on the natural scale from those on the unconstrained one (delta
        method), shape (n_params,); NaN where an infinite se meets a zero slope (a spread at 0)."""
        with np.errstate(invalid="ignore"):
            return np.asarray(se_free, dtype=float) * np.abs(self.jacobian_diag(free))

    def on_bound(self, values: np.ndarray) -> list[str]:
        """Names of the parameters whose ``values`` lie on (within rounding of) a finite bound, e.g.
        a spread estimated at 0."""
        out = []
        for p, v in zip(self.params, np.asarray(values, dtype=float)):
            lo, hi = p.bounds
            span = hi - lo if math.isfinite(hi - lo) else 1.0
            if any(math.isfinite(b) and abs(v - b) <= 1e-10 * max(1.0, abs(b), span) for b in p.bounds):
                out.append(p.name)
        return out

    def as_vector(self, values: Sequence[float] | dict | np.ndarray) -> np.ndarray:
        """Natural-scale vector from a sequence in model order or a ``{name: value}`` mapping,
        checked to lie inside the bounds."""
        if isinstance(values, dict):
            unknown = sorted(set(values) - set(self.names))
            missing = [n for n in self.names if n not in values]
            if unknown:
                raise ModelError(
                    f"Unknown parameter(s) {', '.join(unknown)}; the model's parameters are "
                    f"{', '.join(self.names)}."
                )
            if missing:
                raise ModelError(f"Missing value(s) for parameter(s) {', '.join(missing)}.")
            try:
                vec = np.array([float(values[n]) for n in self.names])
            except (TypeError, ValueError):
                raise ModelError(f"Parameter values must be numbers, got {values!r}.") from None
        else:
            try:
                vec = np.array(values, dtype=float).reshape(-1)  # a writable copy (kernels need one)
            except (TypeError, ValueError):
                raise ModelError(f"Parameter values must be numbers, got {values!r}.") from None
            if vec.shape != (len(self),):
                raise ModelError(
                    f"Expected {len(self)} parameter values ({', '.join(self.names)}), got an array "
                    f"of shape {np.shape(values)}."
                )
        for p, v in zip(self.params, vec):
            if not p.contains(v):
                raise ModelError(
                    f"Parameter {p.name!r} = {v} lies outside its bounds {p.bounds}; give a value "
                    "strictly inside the bounds."
                )
        return vec

    def _as_matrix(self, values) -> np.ndarray:
        v = np.asarray(values, dtype=float)
        if v.shape[-1:] != (len(self),):
            raise ModelError(
                f"Expected parameter arrays with {len(self)} values along the last axis "
                f"({', '.join(self.names)}), got shape {v.shape}."
            )
        return v
