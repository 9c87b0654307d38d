"""Scenario files: a model, its parameters, a design, fit and study options, in TOML.

::

    [model]
    name = "random_intercept"        # built-in, "file.py:function" or "package.module:function"
    # options = { random = ["ka", "cl"] }   # keyword arguments of a built-in model's model()

    [fixed]                          # optional: parameters held at known values, not estimated
    # sigma_add = 0.05               # (model.fix; [truth], [start] may omit them)

    [truth]                          # true population parameters, by name
    mu = 1.0
    tau = 0.5
    sigma = 1.0

    [prior]                          # optional: draw the truth of parameters without one
    tau = { dist = "uniform", low = 0.2, high = 1.0 }   # (and the priors of simfit sample)

    [grid]                           # optional: cycle through true values instead
    sigma = [0.5, 1.0, 2.0]

    [start]                          # optional starting values (default: the model's)
    tau = 1.0

    [design]
    units = 50                       # number of units
    observations = 20                # observations per unit (per group if groups is set)
    # groups = 5                     # groups per unit, for three-level models
    # covariates = { x0 = [0, 1, ...] }   # one value per observation, the same for every unit
    # data = "design.csv"            # or: take the design from a data file ([data] columns)

    [data]                           # columns of data files (simfit fit --data, design.data)
    unit = "unit"
    values = ["y"]
    covariates = []

    [fit]                            # keyword arguments of simfit.fit (FitOptions)
    n_sims = 10
    weighting = "optimal"
    optimizer = "least_squares"
    optimizer_options = { max_nfev = 500 }    # the optimizer's own settings, by name
    diff_step = { tau = 0.01 }                 # per parameter (others: the default)
    bootstrap = "auto"                         # or a number of replicates; 0: none

    [study]                          # simfit run
    reps = 100
    seed = 1
    alpha = 0.05

    [simulate]                       # simfit simulate
    seed = 1
    n_sims = 1

    [sample]                         # simfit sample (priors: every parameter in [prior])
    method = "bsl"                   # or "abc-smc", "surrogate"; omitted: "auto" (the surrogate
                                     # sampler where its checks pass, BSL where not)
    chains = 4
    draws = 1000
    seed = 1
    n_sims = "auto"                  # and any other option of BSLOptions / ABCOptions / SurrogateOptions

``[statistics] options`` are keyword arguments of a built-in model's ``statistics()`` (``start =
[1.0, 0.04, 0.5]`` for the PK model's curve fits), checked against its signature.

Every table maps one to one onto a frozen dataclass below (or :class:`~simfit.estimation.FitOptions`
for ``[fit]``): unknown keys and wrong types are errors naming the file, the key and what was
expected. Relative paths are relative to the scenario file.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import importlib.util
import inspect
import keyword
import os
import sys
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simfit.bayes.priors import make_prior
from simfit.bayes.sampling import SAMPLER_OPTIONS, make_options, option_fields
from simfit.data import Panel
from simfit.errors import ScenarioError, SimfitError
from simfit.estimation import FitOptions
from simfit.model import Model
from simfit.statistics.collection import Statistics
from simfit.study import TruthSpec

__all__ = [
    "Scenario",
    "ModelSpec",
    "DesignSpec",
    "DataSpec",
    "StudySpec",
    "SimulateSpec",
    "SampleSpec",
    "load_scenario",
    "resolve_model",
    "model_source",
    "check_model_source",
    "read_data",
]


@dataclass(frozen=True)
class ModelSpec:
    """``[model]``: which model to use, and for a built-in model the keyword arguments of its
    ``model()`` (``options = { random = ["ka", "cl"], error = "additive" }``)."""

    name: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StatisticsSpec:
    """``[statistics]``: which statistics, and whether to project them onto the parameters."""

    kind: str = ""  # a built-in model's statistic set, e.g. "hand" (its statistics(kind))
    projected: bool = False  # st.projected(...) of the model's statistics
    pilot: int = 1000
    seed: int = 0
    options: dict = field(default_factory=dict)  # keyword arguments of a built-in model's statistics()


#: Columns of a data file: names, or a table of the model's names to the file's columns.
ColumnNames = list[str] | dict[str, str]


@dataclass(frozen=True)
class DataSpec:
    """``[data]``: columns of a long data file (one row per observation)."""

    unit: str = "unit"
    # Each a list of column names, or a table mapping the model's names to the file's columns
    # (covariates = { time = "Time", dose = "Dose" }).
    values: ColumnNames = field(default_factory=lambda: ["y"])
    covariates: ColumnNames = field(default_factory=list)
    unit_covariates: ColumnNames = field(default_factory=list)
    group: str = ""


@dataclass(frozen=True)
class DesignSpec:
    """``[design]``: a balanced design, or the design of a data file.

    A balanced design's observation covariates are the same for every unit (and group):
    ``covariates = { time = [0.25, 0.5, 1, 2] }``, one value per observation. Covariates that
    differ between units, and unit covariates, need a design file (``data = "design.csv"``).
    """

    units: int = 0
    observations: int = 0
    groups: int = 0
    data: str = ""
    covariates: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class StudySpec:
    """``[study]``: options of ``simfit run``."""

    reps: int = 100
    seed: int = 0
    alpha: float = 0.05
    n_jobs: int = 1
    backend: str = "loky"


@dataclass(frozen=True)
class SimulateSpec:
    """``[simulate]``: options of ``simfit simulate``."""

    seed: int = 0
    n_sims: int = 1


@dataclass(frozen=True)
class SampleSpec:
    """``[sample]``: options of ``simfit sample`` (``options`` are the method's own, e.g.
    ``n_sims`` for BSL, ``n_particles`` for ABC-SMC, ``n_design`` for the surrogate; with
    ``"auto"``, the default, those of the surrogate sampler and of BSL, its fallback)."""

    method: str = "auto"
    chains: int = 4
    draws: int = 1000
    warmup: int | None = None
    seed: int = 0
    n_jobs: int = 1
    options: dict = field(default_factory=dict)


_SAMPLE_KEYS = {"method": str, "chains": int, "draws": int, "warmup": int, "seed": int, "n_jobs": int}


def _sample_section(data, path: Path) -> SampleSpec:
    where = f"{path}: [sample]"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where} must be a table.")
    method = _check_type(data.get("method", "auto"), str, f"{where} method")
    if method not in SAMPLER_OPTIONS:
        raise ScenarioError(f"{where} method: expected one of {', '.join(map(repr, SAMPLER_OPTIONS))}, got {method!r}.")
    allowed = {**_SAMPLE_KEYS, **option_fields(method)}
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(unknown)} for method {method!r}; allowed keys are {', '.join(allowed)}."
        )
    spec = {k: _check_type(v, _SAMPLE_KEYS[k], f"{where} {k}") for k, v in data.items() if k in _SAMPLE_KEYS}
    options = {k: _check_type(v, _field_type(allowed[k]), f"{where} {k}") for k, v in data.items() if k not in _SAMPLE_KEYS}
    try:
        make_options(method, options)
    except SimfitError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    for key in ("chains", "draws"):
        if spec.get(key, 1) < 1:
            raise ScenarioError(f"{where} {key} must be a positive integer.")
    if spec.get("warmup", 0) < 0 or spec.get("seed", 0) < 0:
        raise ScenarioError(f"{where} warmup and seed must be non-negative.")
    return SampleSpec(**spec, options=options)


_FIT_TYPES = {
    "n_sims": int,
    "seed": int,
    "weighting": str,
    "optimizer": str,
    "optimizer_options": dict,
    "n_cov_sims": int,
    "jacobian_step": "steps",
    "diff_step": "steps",
    "search_width": float,
    "global_points": int,
    "n_starts": int,
    "bootstrap": "count_or_auto",
    "bootstrap_method": str,
    "bootstrap_steps": int,
    "check_convergence": bool,
    "n_jobs": int,
    "backend": str,
}


@dataclass(frozen=True)
class Scenario:
    """A parsed, validated scenario file."""

    path: Path
    text: str
    model: ModelSpec
    truth: dict[str, float]
    prior: dict[str, dict]
    grid: dict[str, list[float]]
    start: dict[str, float]
    design: DesignSpec
    data: DataSpec
    fit: FitOptions
    fit_table: dict
    study: StudySpec
    simulate: SimulateSpec
    sample: SampleSpec = field(default_factory=SampleSpec)
    statistics: StatisticsSpec = field(default_factory=StatisticsSpec)
    fixed: dict[str, float] = field(default_factory=dict)

    def build(self) -> tuple[Model, Statistics]:
        """The model (with the ``[fixed]`` parameters held at their values) and its statistics
        (``[statistics]`` picks a built-in set or projects them)."""
        model, stats = resolve_model(self.model.name, self.path, self.statistics.kind, self.model.options, self.statistics.options)
        model = _fix(model, self.fixed, self.path)
        if stats is None:
            raise ScenarioError(
                f"{self.path}: [model] {self.model.name!r} declares no statistics; return "
                "(model, statistics) from the function."
            )
        if self.statistics.projected:
            from simfit.statistics import projected

            stats = projected(stats, pilot=self.statistics.pilot, seed=self.statistics.seed)
        return model, stats

    def truth_spec(self) -> TruthSpec:
        """How studies and simulations choose the truth, one rule for every estimated parameter:
        ``[truth]`` fixes it or ``[grid]`` cycles it (never both, an error when loading); ``[prior]``
        draws it only where neither does (and is what ``simfit sample`` uses). Parameters in
        ``[fixed]`` are the model's own (:meth:`build`), in none of them."""
        prior = {k: v for k, v in self.prior.items() if k not in self.truth and k not in self.grid}
        return TruthSpec(dict(self.truth), dict(self.grid) or None, prior or None)

    @property
    def has_design(self) -> bool:
        """Whether ``[design]`` describes one (studies and simulations need it; fitting a data
        file takes the design from the data)."""
        d = self.design
        return bool(d.data or d.units or d.observations or d.groups or d.covariates)

    def start_values(self) -> dict | None:
        """``[start]`` completed with the model's own starts of the estimated parameters (None
        without ``[start]``)."""
        if not self.start:
            return None
        model, _ = self.build()
        return {**dict(zip(model.param_names, model.params.start)), **self.start}

    def design_panel(self) -> Panel:
        """The design: balanced from [design], or read from [design] data."""
        if not self.has_design:
            raise ScenarioError(
                f"{self.path}: missing section [design] (units and observations, or data = \"file.csv\"); studies and "
                "simulations need it (`simfit fit --data` takes the design from the data)."
            )
        if self.design.data:
            return read_data(self.resolve(self.design.data), self.data, self.path, design=True)
        from simfit.models import BUILTIN

        module = BUILTIN.get(self.model.name)
        if module is not None and hasattr(module, "design"):  # models whose trials carry covariates
            groups = (self.design.groups,) if self.design.groups else ()
            return module.design(self.design.units, self.design.observations, *groups)
        d = self.design
        covariates = None
        if d.covariates:
            entities = d.units * (d.groups or 1)
            covariates = np.tile(np.array(list(d.covariates.values()), dtype=float).T, (entities, 1))
        return Panel.balanced(d.units, d.observations, n_groups=d.groups or None, covariates=covariates,
                              covariate_names=list(d.covariates) or None)

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.path.parent / path


def _check_type(value: Any, expected, where: str) -> Any:
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{where}: expected a number, got {type(value).__name__} {value!r}.")
        return float(value)
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: expected an integer, got {type(value).__name__} {value!r}.")
        return value
    if expected is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{where}: expected a string, got {type(value).__name__} {value!r}.")
        return value
    if expected is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ScenarioError(f"{where}: expected a list of strings, got {value!r}.")
        return list(value)
    if expected is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{where}: expected true or false, got {type(value).__name__} {value!r}.")
        return value
    if expected is dict:
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: expected a table of name = value, e.g. {{ maxfev = 2000 }}, got {value!r}.")
        return dict(value)
    if expected == "names":  # column names, or a table of model name = "file column"
        if isinstance(value, dict):
            bad = [k for k, v in value.items() if not isinstance(v, str)]
            if bad:
                raise ScenarioError(f"{where}: map each name to a column name in quotes, e.g. {{ {bad[0]} = \"Column\" }}.")
            return dict(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ScenarioError(f"{where}: expected a list of column names or a table of name = \"Column\", got {value!r}.")
        return list(value)
    if expected == "covariate_table":  # name = [one number per observation]
        if not isinstance(value, dict):
            raise ScenarioError(f"{where}: expected a table of covariate = [numbers], e.g. {{ time = [0.5, 1, 2] }}, got {value!r}.")
        for k, v in value.items():
            if not isinstance(v, list) or not v:
                raise ScenarioError(f"{where}.{k}: expected a non-empty list of numbers, one per observation, got {v!r}.")
        return {k: [_check_type(x, float, f"{where}.{k}") for x in v] for k, v in value.items()}
    if expected == "steps":  # one step, or a table of steps by parameter name
        if isinstance(value, dict):
            return {k: _check_type(v, float, f"{where}.{k}") for k, v in value.items()}
        return _check_type(value, float, where)
    if expected == "int_or_auto":
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: expected an integer or \"auto\", got {type(value).__name__} {value!r}.")
        return value
    if expected == "count_or_auto":
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(f"{where}: expected a number of replicates or \"auto\", got {value!r}.")
        return value
    raise AssertionError(expected)


def _field_type(f) -> type:
    # Annotations are strings here (postponed evaluation).
    return {
        "int": int, "float": float, "str": str, "bool": bool, "list[str]": list, "ColumnNames": "names",
        "int | None": int, "int | str": "int_or_auto",  # TOML has no None; the str of an int is "auto"
        "dict[str, list[float]]": "covariate_table", "dict": dict,
    }[str(f.type)]


def _section(data: dict, name: str, cls, path: Path):
    where = f"{path}: [{name}]"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where} must be a table.")
    spec = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed keys are {', '.join(spec)}.")
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ScenarioError(f"{where}: missing required key {f.name!r}.")
            continue
        kwargs[f.name] = _check_type(data[f.name], _field_type(f), f"{where} {f.name}")
    return cls(**kwargs)


def _numbers(data, name: str, path: Path) -> dict[str, float]:
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: [{name}] must be a table of parameter = value.")
    return {k: _check_type(v, float, f"{path}: [{name}] {k}") for k, v in data.items()}


_SECTIONS = (
    "model", "statistics", "fixed", "truth", "prior", "grid", "start", "design", "data", "fit", "study", "simulate", "sample",
)


def load_scenario(path: str | Path, text: str | None = None, build: bool = True) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path : path
        The scenario file; relative data paths are relative to its folder.
    text : str, optional
        The file's content, if already read (e.g. the copy kept in a study folder).
    build : bool
        Validate against the model, which builds it (a user model runs the Python it names). With
        False, only the file's structure and types are checked and no code runs.

    Raises
    ------
    ScenarioError
        If the file is missing or not TOML, a section or key is unknown, missing or mistyped, or
        the values do not fit the model (unknown parameters, values outside bounds, ...).
    """
    path = Path(path)
    try:
        text = path.read_text() if text is None else text
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ScenarioError(f"Scenario file {path} not found; `simfit list` shows the shipped scenarios.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"Cannot read scenario file {path}: {exc}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}.") from None
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ScenarioError(
            f"{path}: unknown section(s) {', '.join(f'[{u}]' for u in unknown)}; allowed sections "
            f"are {', '.join(f'[{s}]' for s in _SECTIONS)}."
        )
    if "model" not in data:
        raise ScenarioError(f"{path}: missing section [model].")
    model_spec = _section(data["model"], "model", ModelSpec, path)
    fixed = _numbers(data.get("fixed", {}), "fixed", path)
    truth = _numbers(data.get("truth", {}), "truth", path)
    start = _numbers(data.get("start", {}), "start", path)
    prior_raw = data.get("prior", {})
    if not isinstance(prior_raw, dict):
        raise ScenarioError(f"{path}: [prior] must be a table of parameter = {{ dist = ..., ... }}.")
    prior = {}
    for k, v in prior_raw.items():
        try:
            make_prior(v)
        except ScenarioError as exc:
            raise ScenarioError(f"{path}: [prior] {k}: {exc}") from None
        prior[k] = dict(v)
    grid_raw = data.get("grid", {})
    if not isinstance(grid_raw, dict):
        raise ScenarioError(f"{path}: [grid] must be a table of parameter = [values].")
    grid = {}
    for k, v in grid_raw.items():
        if not isinstance(v, list) or not v:
            raise ScenarioError(f"{path}: [grid] {k}: expected a non-empty list of numbers, got {v!r}.")
        grid[k] = [_check_type(x, float, f"{path}: [grid] {k}") for x in v]
    truth, start = _without_fixed(fixed, truth, start, prior, grid, path)
    both = sorted(set(truth) & set(grid))
    if both:
        raise ScenarioError(
            f"{path}: {', '.join(both)} appear(s) in both [truth] and [grid]; a replication's truth comes from one of "
            "them: keep the [grid] to vary it, or the [truth] to fix it."
        )
    design = _section(data.get("design", {}), "design", DesignSpec, path)
    data_spec = _section(data.get("data", {}), "data", DataSpec, path)
    fit_table = data.get("fit", {})
    if not isinstance(fit_table, dict):
        raise ScenarioError(f"{path}: [fit] must be a table.")
    unknown = sorted(set(fit_table) - set(_FIT_TYPES))
    if unknown:
        raise ScenarioError(f"{path}: [fit]: unknown key(s) {', '.join(unknown)}; allowed keys are {', '.join(_FIT_TYPES)}.")
    fit_kwargs = {k: _check_type(v, _FIT_TYPES[k], f"{path}: [fit] {k}") for k, v in fit_table.items()}
    try:
        fit_options = FitOptions(**fit_kwargs)
    except SimfitError as exc:
        raise ScenarioError(f"{path}: [fit] {exc}") from None
    study = _section(data.get("study", {}), "study", StudySpec, path)
    simulate = _section(data.get("simulate", {}), "simulate", SimulateSpec, path)
    sample = _sample_section(data.get("sample", {}), path)
    statistics = _section(data.get("statistics", {}), "statistics", StatisticsSpec, path)
    if statistics.pilot < 10:
        raise ScenarioError(f"{path}: [statistics] pilot must be at least 10, got {statistics.pilot}.")
    _check_options(model_spec, statistics, path)
    scenario = Scenario(
        path=path, text=text, model=model_spec, truth=truth, prior=prior, grid=grid, start=start,
        design=design, data=data_spec, fit=fit_options, fit_table=fit_kwargs, study=study, simulate=simulate,
        sample=sample, statistics=statistics, fixed=fixed,
    )
    _validate(scenario, build)
    return scenario


def _without_fixed(fixed: dict, truth: dict, start: dict, prior: dict, grid: dict, path: Path) -> tuple[dict, dict]:
    """``[truth]`` and ``[start]`` less the ``[fixed]`` parameters, which they may name at their
    fixed values only; ``[prior]`` and ``[grid]``, which vary a parameter, may not name them."""
    for section, table in (("prior", prior), ("grid", grid)):
        for name in table:
            if name in fixed:
                raise ScenarioError(
                    f"{path}: [{section}] {name}: the parameter is held at {fixed[name]:g} by [fixed], so it is not "
                    f"{'drawn' if section == 'prior' else 'varied'}; remove it from [{section}] or from [fixed]."
                )
    kept = []
    for section, table in (("truth", truth), ("start", start)):
        for name, value in table.items():
            if name in fixed and not np.isclose(value, fixed[name], rtol=1e-12, atol=0.0):
                raise ScenarioError(
                    f"{path}: [{section}] {name} = {value:g}, but [fixed] holds it at {fixed[name]:g}; a fixed parameter "
                    f"keeps its value: remove it from [{section}] (or change [fixed])."
                )
        kept.append({k: v for k, v in table.items() if k not in fixed})
    return kept[0], kept[1]


def _fix(model: Model, fixed: dict, path: Path) -> Model:
    """``model`` with the ``[fixed]`` parameters held at their values."""
    if not fixed:
        return model
    try:
        return model.fix(fixed)
    except SimfitError as exc:
        raise ScenarioError(f"{path}: [fixed] {exc}") from None


# ---------------------------------------------------------------------- options of built-in models


def _option_functions(model: ModelSpec, statistics: StatisticsSpec, path: Path) -> list[tuple[str, Any, dict, tuple]]:
    """``(where, function, options, names it takes elsewhere)`` for each of ``[model] options`` and
    ``[statistics] options`` given; options apply to built-in models only."""
    from simfit.models import BUILTIN

    given = [(f"{path}: [model] options", "model", model.options, ()),
             (f"{path}: [statistics] options", "statistics", statistics.options, ("kind",))]
    out = []
    for where, attr, options, elsewhere in given:
        if not options:
            continue
        module = BUILTIN.get(model.name)
        if module is None:
            raise ScenarioError(
                f"{where}: options are keyword arguments of a built-in model's {attr}() (one of {', '.join(BUILTIN)}); "
                f"a model of your own ({model.name!r}) takes its choices in its own code."
            )
        out.append((where, getattr(module, attr), options, elsewhere))
    return out


def _check_options(model: ModelSpec, statistics: StatisticsSpec, path: Path) -> None:
    """Names and types of ``[model] options`` and ``[statistics] options``, against the signature
    of the built-in model's ``model()`` and ``statistics()`` (no code runs)."""
    for where, func, options, elsewhere in _option_functions(model, statistics, path):
        params = {
            n: p for n, p in inspect.signature(func).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in elsewhere
        }
        label = f"{model.name}.{func.__name__}()"
        unknown = sorted(set(options) - set(params))
        if unknown:
            accepted = ", ".join(params) or "none"
            raise ScenarioError(f"{where}: unknown option(s) {', '.join(unknown)} of {label}; accepted names are {accepted}.")
        try:
            hints = typing.get_type_hints(func)
        except Exception:  # an annotation that does not evaluate: the function checks its values
            hints = {}
        for name, value in options.items():
            hint = hints.get(name, Any)
            if not _matches(value, hint):
                raise ScenarioError(
                    f"{where}.{name}: expected {_describe(hint)} ({label}), got {type(value).__name__} {value!r}."
                )


def _matches(value, hint) -> bool:
    """Whether a TOML value fits a type annotation (annotations this does not know: yes, and the
    function checks the value)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return False  # TOML has no None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence) or hint in (list, tuple, Sequence):
        if not isinstance(value, list):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return all(_matches(v, args[0]) for v in value) if args else True
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, dict)
    return True


def _describe(hint) -> str:
    """A type annotation in words (``a list of strings or a number``)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if hint in words:
        return words[hint]
    if origin in (list, tuple, Sequence) or hint in (list, tuple, Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values"
        inner = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}.get(args[0] if args else None, "values")
        return f"a list of {inner}"
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return "a table"
    return "a value"


def _validate(sc: Scenario, build: bool = True) -> None:
    path = sc.path
    model = None
    if build:
        model = resolve_model(sc.model.name, path, sc.statistics.kind, sc.model.options, sc.statistics.options)[0]
        model = _fix(model, sc.fixed, path)
    d = sc.design
    if not sc.has_design:
        pass  # a scenario for fitting data files (`simfit fit --data`): the data are the design
    elif d.data:
        if d.units or d.observations or d.groups or d.covariates:
            raise ScenarioError(f"{path}: [design] give either data or units/observations/groups/covariates, not both.")
        if not sc.resolve(d.data).exists():
            raise ScenarioError(f"{path}: [design] data file {sc.resolve(d.data)} not found.")
    else:
        for key in ("units", "observations"):
            if getattr(d, key) < 1:
                raise ScenarioError(f"{path}: [design] {key} must be a positive integer (or give data).")
        if d.groups < 0:
            raise ScenarioError(f"{path}: [design] groups must be a positive integer.")
        if model is not None and ((d.groups > 0) != (model.n_levels == 2) or model.n_levels > 2):
            raise ScenarioError(
                f"{path}: [design] model {sc.model.name!r} has {model.n_levels} level(s) above the "
                "observations; set 'groups' exactly when the model has two."
            )
        _check_balanced_covariates(sc, model)
    try:
        if model is not None:
            if sc.has_design or sc.truth or sc.grid or sc.prior:  # a study or simulation needs every truth
                sc.truth_spec().validate(model)
            if sc.start:
                model.params.as_vector({**dict(zip(model.param_names, model.params.start)), **sc.start})
    except SimfitError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    for key in ("reps", "n_jobs"):
        if getattr(sc.study, key) < 1 and not (key == "n_jobs" and sc.study.n_jobs == -1):
            raise ScenarioError(f"{path}: [study] {key} must be a positive integer.")
    if not 0 < sc.study.alpha < 1:
        raise ScenarioError(f"{path}: [study] alpha must lie in (0, 1).")
    if sc.study.seed < 0 or sc.simulate.seed < 0 or sc.simulate.n_sims < 1:
        raise ScenarioError(f"{path}: seeds must be non-negative and n_sims positive.")


def _check_balanced_covariates(sc: Scenario, model: Model | None) -> None:
    """A balanced design's covariates: one value per observation, and those the model reads."""
    path, d = sc.path, sc.design
    for name, column in d.covariates.items():
        if len(column) != d.observations:
            raise ScenarioError(
                f"{path}: [design] covariates.{name} has {len(column)} value(s) but observations = {d.observations}; "
                "give one value per observation (the same for every unit)."
            )
    if model is None:
        return
    from simfit.models import BUILTIN

    builtin = BUILTIN.get(sc.model.name)
    if builtin is not None and hasattr(builtin, "design"):
        if d.covariates:
            raise ScenarioError(
                f"{path}: [design] covariates: model {sc.model.name!r} sets its own design's covariates; remove the key, "
                "or take the design from a file: [design] data = \"design.csv\"."
            )
        return
    fix = 'take the design from a file: [design] data = "design.csv" with the [data] columns'
    for level in model.levels:
        if level.covariates:
            raise ScenarioError(
                f"{path}: [design] the {level.name!r} level of model {sc.model.name!r} reads covariate(s) "
                f"{', '.join(map(repr, level.covariates))}, which differ between entities and a balanced design does "
                f"not have; {fix}."
            )
    declared = model.observations.covariates
    missing = [c for c in declared if c not in d.covariates]
    if missing:
        raise ScenarioError(
            f"{path}: [design] model {sc.model.name!r} reads observation covariate(s) {', '.join(map(repr, missing))}, "
            f"which a balanced design has only if given: [design] covariates = {{ {missing[0]} = [...] }} with "
            f"{d.observations} value(s), the same for every unit; or {fix}."
        )
    if tuple(d.covariates)[: len(declared)] != tuple(declared):
        raise ScenarioError(
            f"{path}: [design] covariates: list {', '.join(declared)} first and in this order, the order model "
            f"{sc.model.name!r} reads them."
        )


def _file_names(spec: ColumnNames) -> list[str]:
    """The file's column names of a ``[data]`` entry (a list, or a table of model name = column)."""
    return list(spec.values()) if isinstance(spec, dict) else list(spec)


def _data_columns(columns: DataSpec) -> set[str]:
    """The file's columns that ``[data]`` reads."""
    return {columns.unit, columns.group, *_file_names(columns.values), *_file_names(columns.covariates),
            *_file_names(columns.unit_covariates)}


def _unit_ids_as_written(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Identifiers that read as numbers are compared as numbers ('1' and '1.0' are one unit), the
    others as text, also in a column mixing both."""
    for key in keys:
        if key in frame.columns and not pd.api.types.is_numeric_dtype(frame[key]):
            numeric = pd.to_numeric(frame[key], errors="coerce")
            if numeric.notna().all():
                frame = frame.assign(**{key: numeric})
            else:
                canonical = [
                    (f"{v:.0f}" if float(v).is_integer() else repr(float(v))) if pd.notna(v) else str(text)
                    for v, text in zip(numeric, frame[key])
                ]
                frame = frame.assign(**{key: canonical})
    return frame


#: Delimiters other than the comma that a data file's header reveals (then one column holding them).
DELIMITERS = {";": "semicolon", "\t": "tab", "|": "vertical bar"}


def _delimiter(header: list[str]) -> str:
    """The file's delimiter: a comma, unless read with commas the header is one column holding
    exactly one of :data:`DELIMITERS` (a ;- or tab-separated file; a data file has two columns at
    least, a unit and a value)."""
    if len(header) == 1:
        found = [d for d in DELIMITERS if d in header[0]]
        if len(found) == 1:
            return found[0]
    return ","


def read_data(path: str | Path, columns: DataSpec, scenario: Path | None = None, design: bool = False) -> Panel:
    """A panel from a long CSV file with the columns named in ``[data]``; with ``design``, the
    design alone (a design file needs no values column: absent, empty or NaN, it is not read).
    Semicolon-, tab- or bar-separated files are read too (their header shows the delimiter); the
    decimal mark is the point."""
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            header = [c.strip() for c in next(csv.reader(fh), [])]
        delimiter = _delimiter(header)
        if delimiter != ",":
            header = [c.strip() for c in header[0].split(delimiter)]
        frame = pd.read_csv(path, sep=delimiter)
    except FileNotFoundError:
        raise ScenarioError(f"Data file {path} not found.") from None
    except (OSError, csv.Error, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"Cannot read data file {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}.") from None
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ScenarioError(f"Data file {path}: column(s) {', '.join(map(repr, repeated))} appear more than once in the header; name each column once.")
    if "sim" in frame.columns and "sim" not in _data_columns(columns) and frame["sim"].nunique() > 1:
        raise ScenarioError(
            f"Data file {path} holds {frame['sim'].nunique()} simulated panels (column 'sim', as `simfit simulate --n-sims` "
            "writes them); fit one at a time: keep the rows of one value of 'sim'."
        )
    frame = _unit_ids_as_written(frame, [columns.unit] + ([columns.group] if columns.group else []))
    if design:  # placeholders for the values a design does not have
        frame = frame.assign(**dict.fromkeys(_file_names(columns.values), 0.0))
    try:
        panel = Panel.from_frame(
            frame,
            unit=columns.unit,
            values=columns.values,
            covariates=columns.covariates,
            unit_covariates=columns.unit_covariates,
            group=columns.group or None,
        )
    except SimfitError as exc:
        read_as = f" (read as {DELIMITERS[delimiter]}-separated, with decimal points)" if delimiter != "," else ""
        raise ScenarioError(f"Data file {path}{read_as}: {exc}") from None
    return panel.design() if design else panel


def resolve_model(
    name: str, path: Path | None = None, kind: str = "", model_options: dict | None = None, statistics_options: dict | None = None
) -> tuple[Model, Statistics | None]:
    """The model and its statistics for a scenario's model name.

    ``name`` is a built-in model (``simfit.models.BUILTIN``), ``file.py:function`` (a file
    resolved against the scenario's folder) or ``package.module:function`` (installed, or a module
    next to the scenario). The function must be defined in that module (not imported into it, not
    from the standard library) and return a ``(Model, Statistics)`` pair; it is called only then.
    ``kind`` picks one of a built-in model's statistic sets (``statistics(kind)``); the options
    are keyword arguments of a built-in model's ``model()`` and ``statistics()``.
    """
    from simfit.models import BUILTIN

    where = f"{path}: [model] name" if path else "model name"
    model_options, statistics_options = dict(model_options or {}), dict(statistics_options or {})
    if name in BUILTIN:
        module = BUILTIN[name]
        try:
            model = module.model(**model_options)
        except (SimfitError, ValueError, TypeError) as exc:
            raise ScenarioError(f"{path}: [model] options: {_first_line(exc)}") from None
        if kind and "kind" not in inspect.signature(module.statistics).parameters:
            raise ScenarioError(f"{path}: [statistics] kind: model {name!r} offers one statistic set; remove the key.")
        try:
            return model, module.statistics(kind, **statistics_options) if kind else module.statistics(**statistics_options)
        except (SimfitError, ValueError, TypeError) as exc:
            label = "options" if statistics_options else f"kind {kind!r}"
            raise ScenarioError(f"{path}: [statistics] {label}: {_first_line(exc)}") from None
    if model_options or statistics_options:
        which = "[model] options" if model_options else "[statistics] options"
        raise ScenarioError(f"{path}: {which} apply to built-in models only; a model of your own takes its choices in its code.")
    if kind:
        raise ScenarioError(f"{path}: [statistics] kind applies to built-in models only; return the statistics you want from {name}.")
    func = _user_function(name, path, where)
    try:
        result = func()
    except Exception as exc:  # the user's function: report it in one line
        raise ScenarioError(f"{where}: {name}() raised {type(exc).__name__}: {exc}") from exc
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], Model) and isinstance(result[1], Statistics)):
        got = type(result).__name__ if not isinstance(result, tuple) else f"({', '.join(type(r).__name__ for r in result)})"
        raise ScenarioError(f"{where}: {name} returned {got}; it must return a (Model, Statistics) pair.")
    return result


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _user_module(name: str, path: Path | None, where: str):
    """The module of ``file.py`` (against the scenario's folder; loaded once a process, under the
    name :func:`_file_module_name` gives it) or ``package.module`` (installed or next to the
    scenario)."""
    folder = Path(path).resolve().parent if path is not None else Path.cwd()
    if name.endswith(".py"):
        file = Path(name) if Path(name).is_absolute() else folder / name
        if not file.is_file():
            raise ScenarioError(f"{where}: model file {file} not found (paths are relative to the scenario's folder).")
        file = file.resolve()
        loaded = _loaded_module(file)
        if loaded is not None:
            return loaded
        module_name = _file_module_name(file)
        spec = importlib.util.spec_from_file_location(module_name, file)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(file.parent))  # the file may import its neighbours
        try:
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(module_name, None)
            raise ScenarioError(f"{where}: importing {file} raised {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(file.parent))
        return module
    top = name.split(".")[0]
    if top in sys.stdlib_module_names:
        raise ScenarioError(
            f"{where}: {name!r} is a standard-library module; a scenario's model comes from your own code "
            "('file.py:function' or 'package.module:function')."
        )
    try:
        return importlib.import_module(name)
    except ImportError as first:
        if not ((folder / f"{top}.py").exists() or (folder / top).is_dir()):
            raise ScenarioError(f"{where}: cannot import module {name!r} ({first}).") from None
    sys.path.insert(0, str(folder))  # a module next to the scenario, as its other relative paths
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ScenarioError(f"{where}: cannot import module {name!r} ({exc}).") from None
    except Exception as exc:
        raise ScenarioError(f"{where}: importing {name!r} raised {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(folder))


def _loaded_module(file: Path):
    """The module already loaded from ``file`` (imported by the user, or by an earlier scenario),
    if any: its functions, and their compiled kernels, are used again rather than loaded twice."""
    for module in list(sys.modules.values()):
        origin = getattr(module, "__file__", None)
        if isinstance(origin, str) and os.path.basename(origin) == file.name and Path(origin).resolve() == file:
            return module
    return None


def _file_module_name(file: Path) -> str:
    """The name to load ``file`` under: the one ``import`` gives it with its folder on sys.path (its
    stem), so that what its kernels leave in Numba's disk cache is read back the same way whether
    the file was run by simfit or imported by its user. A stem that is no module name, or that
    another module goes by (a standard-library or installed module, or another file of that name
    already loaded), would make the two clash: the file gets a name of its own instead."""
    stem = file.stem
    own = "simfit_user_" + hashlib.sha256(str(file).encode()).hexdigest()[:16]
    if (
        not stem.isidentifier()
        or keyword.iskeyword(stem)
        or stem in sys.stdlib_module_names
        or stem in sys.builtin_module_names
        or stem in sys.modules
    ):
        return own
    try:
        spec = importlib.util.find_spec(stem)
    except (ImportError, ValueError):
        return own
    if spec is not None and not (spec.origin and Path(spec.origin).resolve() == file):
        return own
    return stem


def _user_function(name: str, path: Path | None, where: str):
    from simfit.models import BUILTIN

    if ":" not in name:
        raise ScenarioError(
            f"{where}: unknown model {name!r}; use a built-in model ({', '.join(BUILTIN)}), 'file.py:function' or "
            "'package.module:function'."
        )
    module_name, func_name = name.rsplit(":", 1)
    module = _user_module(module_name, path, where)
    func = getattr(module, func_name, None)
    if func is None:
        raise ScenarioError(f"{where}: module {module_name!r} has no function {func_name!r}.")
    if not inspect.isfunction(func) or func.__module__ != module.__name__:
        raise ScenarioError(
            f"{where}: {name!r} is not a function defined in {module_name!r} (got {type(func).__name__} "
            f"{getattr(func, '__module__', '?')}.{getattr(func, '__name__', func_name)}); name a function of your module "
            "that returns (Model, Statistics)."
        )
    return func


def model_source(name: str, path: Path | None = None) -> dict:
    """The source file of a scenario's user model and its SHA-256 (empty for built-in models): a
    study or sampling folder records them, and resuming refuses when the code changed."""
    from simfit.models import BUILTIN

    if name in BUILTIN or ":" not in name:
        return {}
    func = _user_function(name, path, f"{path}: [model] name" if path else "model name")
    source = inspect.getsourcefile(func)
    if source is None:
        return {}
    return {"model_source_file": str(Path(source).resolve()), "model_source_sha256": file_sha256(source)}


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_model_source(manifest: dict, folder: Path) -> None:
    """Refuse to resume a run whose model source changed (checked before any of it is imported)."""
    source = manifest.get("model_source_file")
    if not source:
        return
    if not Path(source).is_file():
        raise ScenarioError(f"{folder} was run with the model code in {source}, which no longer exists; it cannot be resumed.")
    if file_sha256(source) != manifest.get("model_source_sha256"):
        raise ScenarioError(
            f"The model code in {source} changed since {folder} was started; resuming would mix results of two "
            "models. Restore the file, or start a new run in a new --out folder."
        )
