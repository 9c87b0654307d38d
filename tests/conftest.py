import numpy as np
import pytest

from simfit.data import Panel
from simfit.models import lognormal_exponential, random_intercept, three_level

RI_TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


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
