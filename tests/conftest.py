import numpy as np
import pytest
from numba import njit

from simfit.data import Panel
from simfit.models import lognormal_exponential, random_intercept, three_level
from simfit.random import fill_normal

RI_TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}
RI_PRIOR = {
    "mu": {"dist": "normal", "mean": 0, "sd": 5},
    "tau": {"dist": "halfnormal", "scale": 2},
    "sigma": {"dist": "halfnormal", "scale": 2},
}


@pytest.fixture(scope="session")
def ri_model():
    return random_intercept.model()


@pytest.fixture(scope="session")
def ri_stats():
    return random_intercept.statistics()


@pytest.fixture(scope="session")
def ln_model():
    return lognormal_exponential.model()


@pytest.fixture(scope="session")
def tl_model():
    return three_level.model()


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


@pytest.fixture(scope="session")
def small_design():
    return Panel.balanced(40, 12)


@pytest.fixture(scope="session")
def ri_data(ri_model):
    """100 units x 10 observations of the random-intercept model at RI_TRUTH."""
    import simfit

    return simfit.simulate(ri_model, simfit.Panel.balanced(100, 10), RI_TRUTH, seed=11).panel(0)


@pytest.fixture(scope="session")
def ri_posterior(ri_model, ri_stats, ri_data):
    """BSL posterior of ri_data (shared: the samplers' tests compare with it)."""
    import simfit

    return simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, method="bsl", chains=4, draws=1000, seed=1)


@njit(cache=True, error_model="numpy")
def _raises_above(psi, theta, x, args, rng, y):
    if psi[0] > args[0]:
        raise ValueError("mu too large")
    fill_normal(rng, y[:, 0], theta[0], psi[2])


@njit(cache=True, error_model="numpy")
def _nan_above(psi, theta, x, args, rng, y):
    fill_normal(rng, y[:, 0], theta[0], psi[2])
    if psi[0] > args[0]:
        y[0, 0] = np.nan


@njit(cache=True, error_model="numpy")
def _nan_off_start(psi, theta, x, args, rng, y):
    fill_normal(rng, y[:, 0], theta[0], psi[2])
    if psi[2] != 1.0:
        y[0, 0] = np.nan


def misbehaving(when: str, threshold: float = 0.0):
    """The random-intercept model whose observation kernel, for mu above ``threshold``, raises
    (``when="raises"``) or writes NaN (``when="nan"``); or writes NaN unless sigma is exactly its
    start value 1 (``when="nan off the start"``)."""
    import simfit

    ri = random_intercept.model()
    kernel = {"raises": _raises_above, "nan": _nan_above, "nan off the start": _nan_off_start}[when]
    return simfit.Model(ri.params, ri.levels, simfit.Observations(kernel, values=("y",), args=(threshold,)))
