"""Built-in models simulate the distributions they document."""

import math

from simfit.data import Panel
from simfit.engine import Simulator
from simfit.models import lognormal_exponential, random_intercept, three_level


def _mean_and_se(stats, col):
    v = stats[:, col]
    return v.mean(), v.std(ddof=1) / math.sqrt(len(v))


def test_random_intercept_moments():
    sim = Simulator(random_intercept.model(), Panel.balanced(100, 20), random_intercept.statistics())
    s = sim.statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, n_sims=400, seed=1)
    names = sim.names
    for name, expected in [("mean:y.mean", 1.0), ("mean:y.var", 1.0)]:
        m, se = _mean_and_se(s, names.index(name))
        assert abs(m - expected) < 4 * se
    # Var of unit means = tau^2 + sigma^2 / n: the squared sd across units is unbiased for it.
    v = s[:, names.index("sd:y.mean")] ** 2
    assert abs(v.mean() - (0.25 + 1 / 20)) < 4 * v.std(ddof=1) / math.sqrt(len(v))


def test_lognormal_exponential_moments():
    m, s_ = 0.2, 0.5
    sim = Simulator(lognormal_exponential.model(), Panel.balanced(100, 50), lognormal_exponential.statistics())
    s = sim.statistics({"m": m, "s": s_}, n_sims=400, seed=2)
    # E[y] = E[1 / theta] = exp(-m + s^2 / 2).
    mean, se = _mean_and_se(s, sim.names.index("mean:y.mean"))
    assert abs(mean - math.exp(-m + s_**2 / 2)) < 4 * se


def test_three_level_variance_decomposition():
    truth = {"mu": 1.0, "tau_unit": 0.7, "tau_group": 0.5, "sigma": 1.0}
    n_groups, n_obs = 4, 6
    sim = Simulator(three_level.model(), Panel.balanced(200, n_obs, n_groups=n_groups), three_level.statistics())
    s = sim.statistics(truth, n_sims=200, seed=3)
    names = sim.names
    expected = {
        "mean:y.mean": 1.0,
        "mean:y.within_var": 1.0,  # sigma^2
        "mean:y.between_var": 0.5**2 + 1.0 / n_obs,  # variance of group means within a unit
    }
    for name, value in expected.items():
        m, se = _mean_and_se(s, names.index(name))
        assert abs(m - value) < 4 * se, name
    v = s[:, names.index("sd:y.mean")] ** 2  # variance of unit means across units
    target = 0.7**2 + 0.5**2 / n_groups + 1.0 / (n_groups * n_obs)
    assert abs(v.mean() - target) < 4 * v.std(ddof=1) / math.sqrt(len(v))
