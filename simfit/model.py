"""Hierarchical models: population parameters, levels and the observation kernel.

A :class:`Model` is a list of population :class:`~simfit.params.Param` plus an ordered list of
:class:`Level` (units first, then groups nested in units, ...) and an :class:`Observations` kernel
at the bottom::

    psi  -> level 1 (units):   theta_i  = draw(psi, psi, z_i, args, rng_i)
         -> level 2 (groups):  theta_ij = draw(psi, theta_i, z_ij, args, rng_ij)
         -> observations:      y_ij.   = simulate(psi, theta_ij, x_ij., args, rng_ij.)

Every kernel is an ``@njit`` function with the signature documented in :mod:`simfit.kernels`.
Population distributions commonly needed (normal, log-normal, logit-normal, multivariate normal)
are ready-made in :mod:`simfit.population`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from simfit.errors import ModelError
from simfit.params import ParamSet

__all__ = ["Level", "Observations", "Model"]


def _names(values, what: str) -> tuple[str, ...]:
    names = (values,) if isinstance(values, str) else tuple(values)
    for n in names:
        if not isinstance(n, str) or not n.isidentifier():
            raise ModelError(f"{what}: {n!r} is not a valid name; use letters, digits and underscores.")
    if len(set(names)) != len(names):
        raise ModelError(f"{what}: duplicate names in {names}.")
    return names


def _args(values, what: str) -> np.ndarray:
    try:
        arr = np.array(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ModelError(f"{what}: args must be a sequence of numbers, got {values!r}.") from None
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{what}: args must be finite numbers, got {values!r}.")
    return arr


@dataclass(frozen=True, eq=False)
class Level:
    """One level of the hierarchy (units, or groups nested in the level above).

    Parameters
    ----------
    name : str
        What the entities of this level are, e.g. ``"subject"``, ``"school"``, ``"class"``.
    params : sequence of str
        Names of the parameters each entity gets (the length of ``theta`` its kernel writes).
    draw : njit function
        ``draw(psi, parent, covariates, args, rng, theta)``.
    args : sequence of float
        Fixed options passed to the kernel as ``args``.
    distributions : tuple
        For levels built by :func:`simfit.population.population_level`, the distribution
        specifications the kernel implements (empty for user kernels).
    psi_names, parent_names : tuple of str
        For levels whose ``args`` refer to population or parent parameters by position: the
        names those positions were resolved against, checked when the level joins a model.
    covariates : sequence of str
        Names of the entity covariates the kernel reads, in the order it reads them
        (``covariates[0]``, ...). A design without them, or with them in another order, is an
        error naming the column, instead of zeros read silently.
    """

    name: str
    params: tuple[str, ...]
    draw: Callable
    args: np.ndarray = field(default_factory=lambda: np.zeros(0))
    distributions: tuple = ()
    psi_names: tuple[str, ...] = ()
    parent_names: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", _names(self.covariates, f"Level {self.name!r} covariates"))
        object.__setattr__(self, "name", _names(self.name, "Level name")[0])
        params = _names(self.params, f"Level {self.name!r} params")
        if not params:
            raise ModelError(f"Level {self.name!r} declares no parameters; give it at least one.")
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "args", _args(self.args, f"Level {self.name!r}"))
        if not callable(self.draw):
            raise ModelError(f"Level {self.name!r}: draw must be an @njit function, got {self.draw!r}.")

    @property
    def n_params(self) -> int:
        return len(self.params)


@dataclass(frozen=True, eq=False)
class Observations:
    """The bottom of the hierarchy: simulates the observations of one innermost entity.

    Parameters
    ----------
    simulate : njit function
        ``simulate(psi, theta, x, args, rng, y)``, writing ``y`` of shape (n, len(values)).
    values : sequence of str
        Names of the simulated value columns (e.g. ``("rt", "response")``).
    args : sequence of float
        Fixed options passed to the kernel as ``args``.
    covariates : sequence of str
        Names of the observation covariates the kernel reads, in the order it reads them
        (``x[:, 0]``, ...). A design without them, or with them in another order, is an error
        naming the column. A unit covariate the kernel needs is listed among the observation
        covariates of a long data file (the same value on every row of the unit).
    """

    simulate: Callable
    values: tuple[str, ...] = ("y",)
    args: np.ndarray = field(default_factory=lambda: np.zeros(0))
    covariates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", _names(self.covariates, "Observation covariates"))
        object.__setattr__(self, "values", _names(self.values, "Observation values"))
        if not self.values:
            raise ModelError("Observations must declare at least one value column.")
        object.__setattr__(self, "args", _args(self.args, "Observations"))
        if not callable(self.simulate):
            raise ModelError(f"Observations: simulate must be an @njit function, got {self.simulate!r}.")

    @property
    def n_values(self) -> int:
        return len(self.values)


@dataclass(frozen=True, eq=False)
class Model:
    """A hierarchical model: population parameters, levels and observations.

    Parameters
    ----------
    params : sequence of Param
        Population parameters ``psi``, in the order kernels see them.
    levels : sequence of Level
        Units first, then nested levels.
    observations : Observations
    name : str
    description : str
    fixed : mapping of str to float, optional
        Parameters held at known values (see :meth:`fix`, which sets this and ``all_params``):
        they stay in the vector the kernels receive, but leave ``params``, the estimated ones.
    all_params : ParamSet, optional
        Every parameter the kernels read, in their order (``params`` when nothing is fixed).
    """

    params: ParamSet
    levels: tuple[Level, ...]
    observations: Observations
    name: str = "model"
    description: str = ""
    fixed: dict = field(default_factory=dict)
    all_params: ParamSet | None = None

    def __post_init__(self) -> None:
        params = self.params if isinstance(self.params, ParamSet) else ParamSet(tuple(self.params))
        fixed = {str(k): float(v) for k, v in dict(self.fixed or {}).items()}
        full = params if self.all_params is None else self.all_params
        if not isinstance(full, ParamSet):
            full = ParamSet(tuple(full))
        if tuple(n for n in full.names if n not in fixed) != params.names or not set(fixed) <= set(full.names):
            raise ModelError(
                f"The estimated parameters ({', '.join(params.names)}) and the fixed ones ({', '.join(fixed) or 'none'}) "
                f"must make up all parameters ({', '.join(full.names)}); fix parameters with Model.fix."
            )
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "all_params", full)
        object.__setattr__(self, "_free_index", np.array([full.names.index(n) for n in params.names], dtype=np.int64))
        object.__setattr__(self, "_fixed_index", np.array([full.names.index(n) for n in fixed], dtype=np.int64))
        object.__setattr__(self, "_fixed_values", np.array(list(fixed.values()), dtype=np.float64))
        levels = (self.levels,) if isinstance(self.levels, Level) else tuple(self.levels)
        if not levels:
            raise ModelError("A model needs at least one level (the units) above the observations.")
        for lv in levels:
            if not isinstance(lv, Level):
                raise ModelError(f"levels must be Level objects, got {type(lv).__name__}.")
        _names([lv.name for lv in levels], "Level names")
        for k, lv in enumerate(levels):
            if lv.psi_names and lv.psi_names != full.names:
                raise ModelError(
                    f"Level {lv.name!r} was built for population parameters ({', '.join(lv.psi_names)}) "
                    f"but the model's are ({', '.join(full.names)}); build the level with the "
                    "model's parameters, in the same order."
                )
            expected_parent = levels[k - 1].params if k > 0 else ()
            if lv.parent_names and lv.parent_names != expected_parent:
                raise ModelError(
                    f"Level {lv.name!r} was built with parent parameters ({', '.join(lv.parent_names)}) "
                    f"but its parent level has ({', '.join(expected_parent) or 'none: it is the first level'}); "
                    "pass the level above it as parent."
                )
        object.__setattr__(self, "levels", levels)
        if not isinstance(self.observations, Observations):
            raise ModelError(
                f"observations must be an Observations object, got {type(self.observations).__name__}."
            )

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the estimated parameters."""
        return self.params.names

    def fix(self, values: Mapping[str, float]) -> Model:
        """The model with some parameters held at known values (a published residual error, a
        dose-normalised volume from another study).

        Fixed parameters leave :attr:`params` (what a fit estimates and a posterior samples); the
        kernels still receive every parameter, in their declared order (:meth:`expand`).

        Parameters
        ----------
        values : mapping of str to float
            Parameter names and values (natural scale, strictly inside the bounds). Fixing a
            parameter that is fixed already gives it the new value.

        Returns
        -------
        Model
        """
        if not isinstance(values, Mapping):
            raise ModelError(f"fixed must map parameter names to values, e.g. {{'sigma': 0.1}}, got {values!r}.")
        full = self.all_params
        merged = dict(self.fixed)
        for name, value in values.items():
            if name not in full.names:
                raise ModelError(f"Cannot fix unknown parameter {name!r}; the model's parameters are {', '.join(full.names)}.")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ModelError(f"The fixed value of {name!r} must be a number, got {value!r}.")
            if not full[name].contains(float(value)):
                raise ModelError(
                    f"The fixed value of {name!r} ({value!r}) lies outside its bounds {full[name].bounds}; give a value "
                    "strictly inside them."
                )
            merged[name] = float(value)
        free = tuple(p for p in full if p.name not in merged)
        if not free:
            raise ModelError("Every parameter is fixed: leave at least one to estimate.")
        return replace(self, params=ParamSet(free), fixed=merged, all_params=full)

    def without_fixed(self, values: Mapping[str, float]) -> dict:
        """``values`` without the fixed parameters, which it may name at their fixed values only."""
        values = dict(values)
        for name, value in self.fixed.items():
            if name in values:
                given = values.pop(name)
                if not np.isclose(float(given), value, rtol=1e-12, atol=0.0):
                    raise ModelError(f"Parameter {name!r} is fixed at {value:g}, but {given!r} was given for it.")
        return values

    def free_vector(self, values) -> np.ndarray:
        """The estimated parameters' vector (natural scale, checked against the bounds) from a
        sequence in :attr:`params` order or a mapping, which may also name fixed parameters at
        their fixed values."""
        if isinstance(values, Mapping):
            return self.params.as_vector(self.without_fixed(values))
        return self.params.as_vector(values)

    def expand(self, psi: np.ndarray) -> np.ndarray:
        """Every parameter the kernels read, in their order, from the estimated ``psi``.

        Parameters
        ----------
        psi : ndarray, shape (..., n_params)
            Estimated parameters (natural scale).

        Returns
        -------
        ndarray, shape (..., n_all_params)
            ``psi`` itself (C-contiguous) when nothing is fixed.
        """
        psi = np.asarray(psi, dtype=np.float64)
        if not self.fixed:
            return np.ascontiguousarray(psi)
        out = np.empty(psi.shape[:-1] + (len(self.all_params),))
        out[..., self._free_index] = psi
        out[..., self._fixed_index] = self._fixed_values
        return out

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def value_names(self) -> tuple[str, ...]:
        return self.observations.values

    def __repr__(self) -> str:
        chain = " -> ".join(f"{lv.name}({', '.join(lv.params)})" for lv in self.levels)
        fixed = "".join(f", {k} = {v:g} fixed" for k, v in self.fixed.items())
        return (
            f"<Model {self.name!r}: psi = ({', '.join(self.param_names)}{fixed}) -> {chain} -> "
            f"observations({', '.join(self.value_names)})>"
        )

