"""Scenario files: a model, its true parameters and a design, described in TOML.

A scenario names everything needed to simulate (and later fit) a model without writing Python::

    [model]
    name = "random_intercept"        # a built-in model, or "package.module:function"

    [truth]                          # population parameters, by name
    mu = 1.0
    tau = 0.5
    sigma = 1.0

    [design]
    units = 50                       # number of units
    observations = 20                # observations per unit (per group if groups is set)
    # groups = 5                     # groups per unit, for three-level models

    [simulate]
    seed = 1
    n_sims = 1

Every table maps one to one onto a frozen dataclass below; unknown keys and wrong types are errors
that name the file, the key and what was expected.
"""

from __future__ import annotations

import importlib
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from simfit.data import Panel
from simfit.errors import ScenarioError, SimfitError
from simfit.model import Model
from simfit.statistics.spec import Statistics

__all__ = ["Scenario", "ModelSpec", "DesignSpec", "SimulateSpec", "load_scenario", "resolve_model"]


@dataclass(frozen=True)
class ModelSpec:
    """``[model]``: which model to use."""

    name: str


@dataclass(frozen=True)
class DesignSpec:
    """``[design]``: a balanced design."""

    units: int
    observations: int
    groups: int | None = None

    def panel(self) -> Panel:
        return Panel.balanced(self.units, self.observations, n_groups=self.groups)


@dataclass(frozen=True)
class SimulateSpec:
    """``[simulate]``: options of ``simfit simulate``."""

    seed: int = 0
    n_sims: int = 1


@dataclass(frozen=True)
class Scenario:
    """A parsed, validated scenario file."""

    path: Path
    model: ModelSpec
    truth: dict[str, float]
    design: DesignSpec
    simulate: SimulateSpec = field(default_factory=SimulateSpec)

    def build_model(self) -> Model:
        return resolve_model(self.model.name, self.path)[0]

    def build_statistics(self) -> Statistics | None:
        return resolve_model(self.model.name, self.path)[1]


_SECTIONS = {"model": ModelSpec, "truth": None, "design": DesignSpec, "simulate": SimulateSpec}
_REQUIRED = ("model", "truth", "design")


def _typed(value: Any, expected: type, where: str) -> Any:
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
    raise AssertionError(expected)


def _section(data: dict, name: str, cls, path: Path):
    where = f"{path}: [{name}]"
    if not isinstance(data, dict):
        raise ScenarioError(f"{where} must be a table.")
    spec = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(spec))
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed keys are {', '.join(spec)}."
        )
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ScenarioError(f"{where}: missing required key {f.name!r}.")
            continue
        base = {"int": int, "str": str, "float": float, "int | None": int}[str(f.type)]
        kwargs[f.name] = _typed(data[f.name], base, f"{where} {f.name}")
    return cls(**kwargs)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file.

    Raises
    ------
    ScenarioError
        If the file is missing, not valid TOML, or has unknown, missing or mistyped keys.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError(f"Scenario file {path} not found; `simfit list` shows the shipped scenarios.") from None
    except OSError as exc:
        raise ScenarioError(f"Cannot read scenario file {path}: {exc.strerror}.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}.") from None
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ScenarioError(
            f"{path}: unknown section(s) {', '.join(f'[{u}]' for u in unknown)}; allowed sections "
            f"are {', '.join(f'[{s}]' for s in _SECTIONS)}."
        )
    for name in _REQUIRED:
        if name not in data:
            raise ScenarioError(f"{path}: missing section [{name}].")
    model = _section(data["model"], "model", ModelSpec, path)
    truth_raw = data["truth"]
    if not isinstance(truth_raw, dict):
        raise ScenarioError(f"{path}: [truth] must be a table of parameter = value.")
    truth = {k: _typed(v, float, f"{path}: [truth] {k}") for k, v in truth_raw.items()}
    design = _section(data["design"], "design", DesignSpec, path)
    for key in ("units", "observations", "groups"):
        value = getattr(design, key)
        if value is not None and value < 1:
            raise ScenarioError(f"{path}: [design] {key} must be a positive integer, got {value}.")
    simulate = _section(data.get("simulate", {}), "simulate", SimulateSpec, path)
    if simulate.seed < 0 or simulate.n_sims < 1:
        raise ScenarioError(f"{path}: [simulate] needs seed >= 0 and n_sims >= 1.")
    scenario = Scenario(path=path, model=model, truth=truth, design=design, simulate=simulate)
    built = scenario.build_model()
    try:
        built.params.as_vector(truth)
    except SimfitError as exc:
        raise ScenarioError(f"{path}: [truth] {exc}") from None
    if (design.groups is not None) != (built.n_levels == 2) or built.n_levels > 2:
        raise ScenarioError(
            f"{path}: [design] model {model.name!r} has {built.n_levels} level(s) above the "
            f"observations; set 'groups' exactly when the model has two."
        )
    return scenario


def resolve_model(name: str, path: Path | None = None) -> tuple[Model, Statistics | None]:
    """The model (and its recommended statistics, if declared) for a scenario's model name.

    ``name`` is a built-in model (``simfit.models.BUILTIN``) or ``package.module:function`` where
    the function returns a :class:`~simfit.model.Model` (or a ``(Model, Statistics)`` pair).
    """
    from simfit.models import BUILTIN

    where = f"{path}: [model] name" if path else "model name"
    if name in BUILTIN:
        module = BUILTIN[name]
        return module.model(), module.statistics()
    if ":" not in name:
        raise ScenarioError(
            f"{where}: unknown model {name!r}; use a built-in model ({', '.join(BUILTIN)}) or "
            "'package.module:function'."
        )
    module_name, func_name = name.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ScenarioError(f"{where}: cannot import module {module_name!r} ({exc}).") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ScenarioError(f"{where}: module {module_name!r} has no function {func_name!r}.")
    result = func()
    model, stats = (result if isinstance(result, tuple) else (result, None))
    if not isinstance(model, Model):
        raise ScenarioError(f"{where}: {name} returned {type(model).__name__}, not a simfit Model.")
    return model, stats
