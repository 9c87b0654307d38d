"""Hierarchical drift-diffusion model: first-passage law, recovery, common random numbers."""

import math

import numpy as np
import pytest

import simfit
from simfit.models import ddm

TRUTH = {"v_mu": 1.0, "v_sd": 0.5, "log_a": math.log(1.5), "a_sd": 0.2, "t": 0.3, "z": 0.5, "beta": 0.5}


def _one_subject(z, beta, correction=True, dt=1e-3, n_trials=4000, simulator="euler"):
    truth = {"v_mu": 1.0, "v_sd": 1e-12, "log_a": math.log(1.5), "a_sd": 1e-12, "t": 0.3, "z": z, "beta": beta}
    model = ddm.model(dt=dt, continuity_correction=correction, simulator=simulator)
    sim = simfit.Simulator(model, ddm.design(10, n_trials))
    values = sim.simulate(truth, seed=4).values[0]
    cond = sim.design.covariates[:, 0]
    return values[:, 0] - 0.3, values[:, 1], cond


def p_upper(v, a, z):
    # Continuous DDM with unit diffusion started at z * a: P(hit a before 0).
    return (1 - math.exp(-2 * v * z * a)) / (1 - math.exp(-2 * v * a))


def mean_time_unbiased(v, a):
    return a / (2 * v) * math.tanh(a * v / 2)


def test_corrected_scheme_matches_the_continuous_first_passage_law():
    # Start off-centre (z = 0.3) and with a condition effect (drift 1 + 0.8 in condition 1):
    # the start convention and the sign of beta are both checked.
    _, resp, cond = _one_subject(z=0.3, beta=0.8)
    for c, v in ((0.0, 1.0), (1.0, 1.8)):
        r = resp[cond == c]
        p = p_upper(v, 1.5, 0.3)
        assert abs(r.mean() - p) < 4 * math.sqrt(p * (1 - p) / r.size), (c, r.mean(), p)
    rt, _, cond = _one_subject(z=0.5, beta=0.0)
    target = mean_time_unbiased(1.0, 1.5) + 1e-3 / 2  # decisions are counted at step ends
    assert abs(rt.mean() - target) < 4 * rt.std() / math.sqrt(rt.size)


def test_exact_simulator_follows_the_continuous_law_in_both_conditions():
    rt, resp, cond = _one_subject(z=0.3, beta=0.8, simulator="exact")
    for c, v in ((0.0, 1.0), (1.0, 1.8)):
        r, t = resp[cond == c], rt[cond == c]
        p = p_upper(v, 1.5, 0.3)
        assert abs(r.mean() - p) < 4 * math.sqrt(p * (1 - p) / r.size), (c, r.mean(), p)
        m = (1.5 * p - 0.3 * 1.5) / v  # mean decision time from z * a
        assert abs(t.mean() - m) < 4 * t.std() / math.sqrt(t.size), (c, t.mean(), m)


def test_simulator_is_checked():
    with pytest.raises(ValueError, match="simulator must be one of"):
        ddm.model(simulator="milstein")


def test_plain_euler_has_the_discrete_monitoring_bias():
    rt, resp, _ = _one_subject(z=0.5, beta=0.0, correction=False)
    a_eff = 1.5 + 2 * ddm.BGK_CONSTANT * math.sqrt(1e-3)  # boundaries moved out by 0.5826 sqrt(dt)
    p = 1 / (1 + math.exp(-a_eff))
    assert abs(resp.mean() - p) < 4 * math.sqrt(p * (1 - p) / resp.size)
    assert abs(rt.mean() - (mean_time_unbiased(1.0, a_eff) + 5e-4)) < 4 * rt.std() / math.sqrt(rt.size)
    assert rt.mean() - mean_time_unbiased(1.0, 1.5) > 8 * rt.std() / math.sqrt(rt.size)  # really biased


def test_fused_statistics_equal_materialised():
    sim = simfit.Simulator(ddm.model(), ddm.design(30, 60), ddm.statistics())
    fused = sim.statistics(TRUTH, n_sims=2, seed=2)
    panels = sim.simulate(TRUTH, n_sims=2, seed=2)
    for s in range(2):
        assert np.array_equal(fused[s], sim.observed(panels.panel(s)))


def test_log_spreads_of_log_rt_quantiles_keep_their_variance_as_the_boundary_spread_grows():
    # Raw spreads across subjects of RT quantiles grow noisier with a_sd (their sd 7 to 10 times
    # larger at a_sd = 0.5 than at 0.1); the default log spreads of the logs hardly change (1.0 to
    # 1.25 times).
    # With 300 panels, an sd is estimated within a few % (se of log sd about 1 / sqrt(2 * 299)
    # for near-Gaussian statistics), far from either bound.
    model = ddm.model(simulator="exact")
    sds = {}
    for log_spreads in (True, False):
        sim = simfit.Simulator(model, ddm.design(20, 60), ddm.statistics(log_rt_spreads=log_spreads))
        cols = [j for j, n in enumerate(sim.names) if ":rt.q" in n and n.startswith(("sd:", "logsdlog:"))]
        assert len(cols) == 4
        sds[log_spreads] = [sim.statistics(dict(TRUTH, a_sd=a_sd), n_sims=300, seed=8)[:, cols].std(axis=0) for a_sd in (0.1, 0.5)]
    raw_growth = sds[False][1] / sds[False][0]
    log_growth = sds[True][1] / sds[True][0]
    assert np.all(raw_growth > 3.0), raw_growth
    assert np.all(np.abs(np.log(log_growth)) < np.log(1.5)), log_growth


def test_statistics_are_defined_on_panels_without_errors():
    # Accuracy about 0.9999: most panels of 5 x 20 trials have no error in some condition.
    easy = dict(TRUTH, v_mu=4.0, v_sd=0.1, log_a=math.log(2.5), a_sd=0.05)
    sim = simfit.Simulator(ddm.model(), ddm.design(5, 20), ddm.statistics())
    stats = sim.statistics(easy, n_sims=20, seed=5)
    assert np.isfinite(stats).all()
    names = list(sim.names)
    errors = [names.index(f"mean:rt.q50|cond={c},error") for c in (0, 1)]
    fallback = [names.index(f"mean:rt.q50|cond={c},correct") for c in (0, 1)]
    panels = sim.simulate(easy, n_sims=20, seed=5)
    fell_back = 0
    for s in range(20):
        data = panels.panel(s)
        for c, j, k in zip((0, 1), errors, fallback):
            erred = np.any((data.values[:, 1] == 0) & (data.covariates[:, 0] == c))
            fell_back += not erred
            assert (stats[s, j] == stats[s, k]) != erred
    assert fell_back > 0


def test_statistics_are_defined_when_almost_no_response_is_correct():
    # Accuracy about 5e-5 per trial: (almost) no subject has a correct response in a condition, so
    # the correct-RT quantiles are undefined and the error median stands in for them.
    hard = dict(TRUTH, v_mu=-4.0, v_sd=0.1, log_a=math.log(2.5), a_sd=0.05, beta=0.0)
    sim = simfit.Simulator(ddm.model(), ddm.design(5, 20), ddm.statistics())
    stats = sim.statistics(hard, n_sims=20, seed=5)
    assert np.isfinite(stats).all()
    names = list(sim.names)
    panels = sim.simulate(hard, n_sims=20, seed=5)
    fell_back = 0
    for s in range(20):
        data = panels.panel(s)
        for c in (0, 1):
            in_c = data.covariates[:, 0] == c
            correct = np.add.reduceat(((data.values[:, 1] == 1) & in_c).astype(int), data.unit_offsets[:-1])
            error = stats[s, names.index(f"mean:rt.q50|cond={c},error")]
            if (correct > 0).sum() == 0:
                assert stats[s, names.index(f"mean:rt.q10|cond={c},correct")] == error
            if (correct > 0).sum() < 2:
                fell_back += 1
                medians = [np.median(y[(y[:, 1] == 0) & (x[:, 0] == c), 0]) for y, x in
                           zip(np.split(data.values, data.unit_offsets[1:-1]), np.split(data.covariates, data.unit_offsets[1:-1]))]
                for q in (10, 50):  # the log spread of the log error medians
                    expected = np.log(np.std(np.log(medians), ddof=1))
                    assert stats[s, names.index(f"logsdlog:rt.q{q}|cond={c},correct")] == pytest.approx(expected)
    assert fell_back > 0


def test_recovered_within_4_standard_errors():
    # The exact simulator: the same continuous-time model as the corrected Euler scheme (its law
    # is tested above), at a tenth of the cost; the Euler fit's recovery is measured over 100
    # datasets in benchmarks/results/ddm.md.
    model = ddm.model(simulator="exact")
    data = simfit.Simulator(model, ddm.design(40, 100)).simulate(TRUTH, seed=3).panel(0)
    # From the truth: the local phase alone (the global phase is tested on faster models).
    res = simfit.fit(model, data, ddm.statistics(), seed=1, n_cov_sims=300, global_points=0, bootstrap=0, **ddm.FIT_OPTIONS)
    assert res.converged
    for name, value in TRUTH.items():
        assert abs(res.params[name] - value) < 4 * res.se()[name], name
    assert res.jtest.pvalue > 0.001


def test_ez_statistics_match_the_ez_diffusion_formulas():
    from simfit.engine import panel_unit_statistics

    model = ddm.model()
    truth = {"v_mu": 1.0, "v_sd": 0.5, "log_a": 0.405, "a_sd": 0.2, "t": 0.3, "z": 0.5, "beta": 0.5}
    data = simfit.Simulator(model, ddm.design(3, 200)).simulate(truth, seed=4).panel(0)
    table = panel_unit_statistics(ddm.statistics("auxiliary"), data)
    for i in range(data.n_units):
        a, b = data.unit_offsets[i], data.unit_offsets[i + 1]
        rt, resp, cond = data.values[a:b, 0], data.values[a:b, 1], data.covariates[a:b, 0]
        for c in (0, 1):
            correct = rt[(cond == c) & (resp == 1)]
            pc = min(correct.size / np.sum(cond == c), 1 - 0.5 / np.sum(cond == c))
            vrt, mrt = correct.var(ddof=1), correct.mean()
            lg = np.log(pc / (1 - pc))
            v = np.sign(pc - 0.5) * (lg * (lg * pc**2 - lg * pc + pc - 0.5) / vrt) ** 0.25
            a_sep = lg / v
            mdt = a_sep / (2 * v) * (1 - np.exp(-v * a_sep)) / (1 + np.exp(-v * a_sep))
            row = table.iloc[i]
            assert row[f"rt.ez.v|cond={c}"] == pytest.approx(v, rel=1e-10)
            assert row[f"rt.ez.log_a|cond={c}"] == pytest.approx(np.log(a_sep), rel=1e-10)
            assert row[f"rt.ez.ter|cond={c}"] == pytest.approx(mrt - mdt, rel=1e-10)
            assert row[f"rt.ez.error_q50|cond={c}"] == pytest.approx(np.median(rt[(cond == c) & (resp == 0)]))
