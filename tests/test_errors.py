"""One exception hierarchy: everything simfit raises on purpose is a SimfitError."""

import numpy as np
import pytest

import simfit
from simfit import errors
from simfit.scenario import load_scenario


def test_hierarchy():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.SimfitError)
    assert issubclass(errors.DataError, ValueError) and issubclass(errors.SimulationError, RuntimeError)


@pytest.mark.parametrize(
    "call",
    [
        lambda: simfit.Param("p", bounds=(1, 0)),
        lambda: simfit.Panel.from_units([np.array([np.nan])]),
        lambda: simfit.statistics.quantiles([2.0]),
        lambda: load_scenario("/nonexistent.toml"),
    ],
)
def test_caught_as_simfit_error(call):
    with pytest.raises(simfit.SimfitError):
        call()
