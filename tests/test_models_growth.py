"""Three-level logistic growth: variance at each level, recovery."""

import math

import numpy as np

import simfit
from simfit.models import growth

TRUTH = {"log_K": math.log(10), "site_sd": 0.3, "plot_sd": 0.2, "r": 0.8, "t_mid": 4.0, "sigma": 0.5}


def test_simulated_levels_have_the_declared_variances():
    sim = simfit.Simulator(growth.model(), growth.design(400, 10, 5)).simulate(TRUTH, seed=1)
    site = sim.params["site"][0, :, 0]
    plot = sim.params["plot"][0, :, 0]
    n = site.size
    assert abs(site.std() - 0.3) < 4 * 0.3 / math.sqrt(2 * n)
    within = plot.reshape(n, 5) - site[:, None]
    assert abs(within.std() - 0.2) < 4 * 0.2 / math.sqrt(2 * within.size)
    t = np.tile(np.arange(10.0), n * 5)
    curve = np.exp(np.repeat(plot, 10)) / (1 + np.exp(-0.8 * (t - 4.0)))
    noise = sim.values[0, :, 0] - curve
    assert abs(noise.std() - 0.5) < 4 * 0.5 / math.sqrt(2 * noise.size)


def test_recovered_within_4_standard_errors():
    model = growth.model()
    data = simfit.Simulator(model, growth.design(30, 10, 5)).simulate(TRUTH, seed=2).panel(0)
    res = simfit.fit(model, data, growth.statistics(), seed=1)
    assert res.converged
    for name, value in TRUTH.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name
