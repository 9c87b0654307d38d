"""Dynamic panel AR(1): Nickell bias of the naive estimator, recovery of the persistence."""

import math

import numpy as np

import simfit
from simfit.models import dynamic_panel as dp


def test_pooled_within_estimator_has_nickells_bias():
    rho = 0.6
    sim = simfit.Simulator(dp.model(), simfit.Panel.balanced(2000, 10), dp.statistics())
    stats = sim.statistics({"m": math.log(rho / (1 - rho)), "s": 1e-9, "sigma": 1.0}, n_sims=20, seed=1)
    pooled = stats[:, sim.names.index("pooled:y.within_ar1")]
    expected = rho + dp.nickell_bias(rho, 9)
    assert abs(pooled.mean() - expected) < 4 * pooled.std(ddof=1) / math.sqrt(pooled.size)
    assert expected < rho - 0.15


def test_population_mean_persistence_quadrature():
    z = np.random.default_rng(1).standard_normal(400_000)
    mc = 1 / (1 + np.exp(-(0.5 + 0.8 * z)))
    assert abs(dp.population_mean_persistence(0.5, 0.8) - mc.mean()) < 4 * mc.std() / math.sqrt(z.size)


def test_recovered_within_4_standard_errors_and_bias_removed():
    truth = {"m": 0.5, "s": 0.8, "sigma": 1.0}
    model = dp.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(200, 10)).simulate(truth, seed=2).panel(0)
    res = simfit.fit(model, data, dp.statistics(), seed=1)
    assert res.converged
    for name, value in truth.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name
    naive = res.statistics_table().loc["mean:y.ar1", "observed"]
    assert dp.population_mean_persistence(0.5, 0.8) - naive > 0.2  # the naive mean is far off
