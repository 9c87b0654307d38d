"""Hierarchical drift-diffusion model: first-passage law, recovery, common random numbers."""

import math

import numpy as np

import simfit
from simfit.models import ddm

TRUTH = {"v_mu": 1.0, "v_sd": 0.5, "log_a": math.log(1.5), "a_sd": 0.2, "t": 0.3, "z": 0.5, "beta": 0.5}


def test_single_subject_matches_the_first_passage_law():
    # Unbiased start (z = 1/2), drift v, separation a, unit diffusion: P(upper) = 1 / (1 + e^(-a v))
    # and E[decision time] = a / (2 v) tanh(a v / 2). Euler steps of dt move the effective
    # boundaries out by 0.5826 sqrt(dt) each (Broadie, Glasserman & Kou 1997).
    dt, v, a = 1e-4, 1.0, 1.5
    truth = {"v_mu": v, "v_sd": 1e-12, "log_a": math.log(a), "a_sd": 1e-12, "t": 0.3, "z": 0.5, "beta": 0.0}
    values = simfit.Simulator(ddm.model(dt=dt), ddm.design(10, 2000)).simulate(truth, seed=4).values[0]
    rt, resp = values[:, 0] - 0.3, values[:, 1]
    a_eff = a + 2 * 0.5826 * math.sqrt(dt)
    p = 1 / (1 + math.exp(-a_eff * v))
    mean_dt = a_eff / (2 * v) * math.tanh(a_eff * v / 2) + dt / 2
    assert abs(resp.mean() - p) < 4 * math.sqrt(p * (1 - p) / resp.size)
    assert abs(rt.mean() - mean_dt) < 4 * rt.std() / math.sqrt(rt.size)


def test_fused_statistics_equal_materialised():
    sim = simfit.Simulator(ddm.model(), ddm.design(30, 60), ddm.statistics())
    fused = sim.statistics(TRUTH, n_sims=2, seed=2)
    panels = sim.simulate(TRUTH, n_sims=2, seed=2)
    for s in range(2):
        assert np.array_equal(fused[s], sim.observed(panels.panel(s)))


def test_recovered_within_4_standard_errors():
    model = ddm.model()
    data = simfit.Simulator(model, ddm.design(40, 100)).simulate(TRUTH, seed=3).panel(0)
    res = simfit.fit(model, data, ddm.statistics(), seed=1, n_cov_sims=300, **ddm.FIT_OPTIONS)
    assert res.converged
    for name, value in TRUTH.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name
    assert res.jtest.pvalue > 0.001
