"""Exceptions raised by simfit.

Everything simfit raises on purpose derives from :class:`SimfitError`, so a caller can catch
"anything from this library" in one clause. Messages name the thing, the value and the fix.
"""

from __future__ import annotations

__all__ = [
    "SimfitError",
    "ArgumentError",
    "ModelError",
    "DataError",
    "SimulationError",
    "KernelError",
    "StatisticsError",
    "ScenarioError",
    "EstimationError",
]


class SimfitError(Exception):
    """Base class of all simfit errors."""


class ArgumentError(SimfitError, ValueError):
    """An argument has the wrong type or value (a seed, a count, a probability, ...)."""


class ModelError(SimfitError, ValueError):
    """A model, parameter or kernel is ill-defined (bad bounds, wrong kernel signature, ...)."""


class DataError(SimfitError, ValueError):
    """Observed data are malformed (NaN values, empty units, mismatched covariates, ...)."""


class SimulationError(SimfitError, RuntimeError):
    """A kernel produced non-finite values or left outputs unset during a simulation."""


class KernelError(SimulationError):
    """A kernel raised an exception (an index outside its arrays, a division by zero under
    Numba's default error model, an explicit ``raise``); or, after a Ctrl-C, a kernel running on
    another thread did not return, and simfit cannot run compiled code until it does.

    Unlike non-finite output, which rejects a parameter value, this stops every run (a fit, its
    global phase and bootstrap, a sampler): the message names the kernel, the unit, the
    simulation and the parameters.
    """


class StatisticsError(SimfitError, ValueError):
    """A statistic is ill-specified (unknown column, duplicate name, bad option, ...)."""


class ScenarioError(SimfitError, ValueError):
    """A scenario file is missing, unreadable or invalid."""


class EstimationError(SimfitError, RuntimeError):
    """An estimation cannot proceed (not identified, start outside bounds, ...)."""


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first caller outside simfit (the user's line, not a
    library source path), however deep in simfit the warning arises."""
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 2  # stacklevel 1 is this function, 2 its caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
