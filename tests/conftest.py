import numpy as np
import pytest

from simfit.data import Panel
from simfit.models import lognormal_exponential, random_intercept, three_level

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

    return simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, chains=4, draws=1000, seed=1)
