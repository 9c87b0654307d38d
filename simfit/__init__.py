"""simfit: indirect inference for nonlinear hierarchical models.

Write the structural simulator of each level of a hierarchy as a Numba kernel; simfit simulates
whole synthetic panels in parallel with common random numbers and reduces them to auxiliary
statistics with the same compiled code it applies to the observed data.

``SIMFIT_CHECK=1`` in the environment (set before simfit, and Numba, are imported) compiles
everything, the engine included, with Numba's bounds checking, into a cache of its own.
"""

import os as _os

if _os.environ.get("SIMFIT_CHECK", "") not in ("", "0"):
    # Numba's cache does not tell checked from unchecked builds apart: checked ones get their own.
    _os.environ.setdefault("NUMBA_BOUNDSCHECK", "1")
    _os.environ.setdefault("NUMBA_CACHE_DIR", _os.path.join(_os.path.expanduser("~"), ".cache", "simfit-checked-numba"))

import importlib as _importlib

from simfit import kernel_cache as _kernel_cache

# Before any kernel is decorated: simfit's kernels are cached under a stamp of the sources they
# import, so an edited or upgraded simfit never runs stale machine code (see simfit.kernel_cache).
_kernel_cache.stamp_package_kernels()

# The public names and the modules that define them, imported on first use: `import simfit` stays
# quick (a command's --help, a scenario check), and scipy, pandas and the compiled engine load
# when something needs them.
_LAZY = {
    "bayes": None, "checkpoint": None, "inference": None, "optimizers": None, "random": None, "statistics": None,
    "weighting": None,
    "ABCOptions": "simfit.bayes", "BSLOptions": "simfit.bayes", "Posterior": "simfit.bayes", "Priors": "simfit.bayes",
    "sample": "simfit.bayes",
    "Panel": "simfit.data",
    "SimulationResult": "simfit.engine", "Simulator": "simfit.engine", "observed_statistics": "simfit.engine",
    "panel_statistics": "simfit.engine", "panel_unit_statistics": "simfit.engine", "simulate": "simfit.engine",
    "simulate_statistics": "simfit.engine",
    "ArgumentError": "simfit.errors", "DataError": "simfit.errors", "EstimationError": "simfit.errors",
    "ModelError": "simfit.errors", "ScenarioError": "simfit.errors", "SimfitError": "simfit.errors",
    "SimulationError": "simfit.errors", "KernelError": "simfit.errors", "StatisticsError": "simfit.errors",
    "FitOptions": "simfit.estimation", "fit": "simfit.estimation",
    "Level": "simfit.model", "Model": "simfit.model", "Observations": "simfit.model",
    "Param": "simfit.params", "ParamSet": "simfit.params",
    "LogitNormal": "simfit.population", "LogNormal": "simfit.population", "MvNormal": "simfit.population",
    "Normal": "simfit.population", "population_level": "simfit.population",
    "population_summary": "simfit.population_summary", "unit_distribution": "simfit.population_summary",
    "CheckResult": "simfit.preflight", "check": "simfit.preflight",
    "FitResult": "simfit.results",
    "Statistics": "simfit.statistics",
    "RecoveryResult": "simfit.study", "recover": "simfit.study",
    "predict_units": "simfit.unit_predictions",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'simfit' has no attribute {name!r}")
    module = _LAZY[name]
    value = _importlib.import_module(f"simfit.{name}") if module is None else getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "Param", "ParamSet", "Panel", "Level", "Observations", "Model",
    "Normal", "LogNormal", "LogitNormal", "MvNormal", "population_level",
    "Statistics", "statistics", "random", "checkpoint", "inference",
    "fit", "FitOptions", "FitResult", "check", "CheckResult", "recover", "RecoveryResult", "optimizers", "weighting",
    "sample", "Posterior", "Priors", "BSLOptions", "ABCOptions", "bayes",
    "population_summary", "unit_distribution", "predict_units",
    "Simulator", "SimulationResult", "simulate", "simulate_statistics", "observed_statistics",
    "panel_statistics", "panel_unit_statistics",
    "SimfitError", "ArgumentError", "ModelError", "DataError", "SimulationError", "KernelError", "StatisticsError",
    "ScenarioError", "EstimationError",
]
