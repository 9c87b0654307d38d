"""Hierarchical g-and-k: quantile function, recovery."""

import numpy as np

import simfit
from simfit.models import gandk

TRUTH = {"A_mu": 3.0, "A_sd": 0.5, "log_B": 0.0, "B_sd": 0.3, "g": 2.0, "k": 0.5}


def test_simulated_quantiles_follow_the_quantile_function():
    fixed = {**TRUTH, "A_sd": 1e-12, "B_sd": 1e-12}
    y = simfit.Simulator(gandk.model(), simfit.Panel.balanced(10, 20000)).simulate(fixed, seed=1).values[0, :, 0]
    u = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
    expected = gandk.quantile(u, 3.0, 1.0, 2.0, 0.5)
    # Empirical quantiles: sd ~ sqrt(u (1 - u) / n) / f(q), with f estimated by finite differences of Q.
    h = 1e-4
    density = 2 * h / (gandk.quantile(u + h, 3.0, 1.0, 2.0, 0.5) - gandk.quantile(u - h, 3.0, 1.0, 2.0, 0.5))
    se = np.sqrt(u * (1 - u) / y.size) / density
    assert np.all(np.abs(np.quantile(y, u) - expected) < 4 * se)


def test_recovered_within_4_standard_errors():
    model = gandk.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(50, 200)).simulate(TRUTH, seed=2).panel(0)
    res = simfit.fit(model, data, gandk.statistics(), seed=1)
    assert res.converged
    for name, value in TRUTH.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name
