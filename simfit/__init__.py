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

from simfit import bayes, checkpoint, inference, optimizers, random, statistics, weighting
from simfit.bayes import ABCOptions, BSLOptions, Posterior, Priors, sample
from simfit.data import Panel
from simfit.engine import (
    SimulationResult,
    Simulator,
    observed_statistics,
    panel_statistics,
    panel_unit_statistics,
    simulate,
    simulate_statistics,
)
from simfit.errors import (
    ArgumentError,
    DataError,
    EstimationError,
    ModelError,
    ScenarioError,
    SimfitError,
    SimulationError,
    StatisticsError,
)
from simfit.estimation import FitOptions, fit
from simfit.model import Level, Model, Observations
from simfit.params import Param, ParamSet
from simfit.population import LogitNormal, LogNormal, MvNormal, Normal, population_level
from simfit.population_summary import population_summary, unit_distribution
from simfit.preflight import CheckResult, check
from simfit.results import FitResult
from simfit.statistics import Statistics
from simfit.study import RecoveryResult, recover
from simfit.unit_predictions import predict_units

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
    "SimfitError", "ArgumentError", "ModelError", "DataError", "SimulationError", "StatisticsError", "ScenarioError",
    "EstimationError",
]
