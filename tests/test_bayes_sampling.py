import json
import math
import warnings

import numpy as np
import pytest
from conftest import RI_PRIOR, RI_TRUTH, misbehaving

import simfit
from simfit.bayes import surrogate as surrogate_module
from simfit.bayes.sampling import FallbackWarning
from simfit.checkpoint import RECORDS
from simfit.data import Panel
from simfit.errors import EstimationError, ModelError
from simfit.models import lognormal_exponential
from simfit.models import meta_analysis as ma
from simfit.statistics import Statistics, log_mean

LN_PRIOR = {"m": {"dist": "uniform", "low": -2, "high": 2}, "s": {"dist": "uniform", "low": 0.01, "high": 2}}
LN_TRUTH = {"m": 0.0, "s": 0.5}


@pytest.fixture(scope="module")
def ln_data(ln_model):
    return simfit.simulate(ln_model, Panel.balanced(100, 50), LN_TRUTH, seed=1).panel(0)


def test_bsl_posterior_mean_is_within_four_posterior_sd_of_the_truth(ri_posterior):
    mean, sd = ri_posterior.mean(), ri_posterior.sd()
    for name, value in RI_TRUTH.items():
        assert abs(mean[name] - value) < 4 * sd[name], name


def test_bsl_posterior_sd_matches_the_sandwich_standard_error(ri_posterior):
    # Both approximate (J' Omega^-1 J)^-1 for the same statistics; the sandwich carries the
    # (1 + 1/S) factor of its S = 10 simulated panels.
    se = ri_posterior.fit.se() / math.sqrt(1 + 1 / ri_posterior.fit.options.n_sims)
    ratio = ri_posterior.sd() / se
    assert ratio.between(0.75, 1.25).all(), ratio.to_dict()


def test_bsl_chains_converge(ri_posterior):
    assert (ri_posterior.rhat() < 1.05).all()
    assert (ri_posterior.ess() > 100).all()
    assert ri_posterior.draws.shape == (4, 1000, 3)
    assert 0.1 < ri_posterior.info["acceptance"] < 0.9


def test_lognormal_population_mean_rate_is_recovered(ln_model, ln_data):
    stats = Statistics(unit=[log_mean()], across=["mean", "sd"])
    post = simfit.sample(ln_model, ln_data, stats, LN_PRIOR, method="bsl", chains=2, draws=800, seed=2)
    pop = post.population_summary()
    mean_rate, sd_rate = pop.loc[("unit.rate", "mean"), "mean"], pop.loc[("unit.rate", "mean"), "sd"]
    truth = math.exp(LN_TRUTH["m"] + LN_TRUTH["s"] ** 2 / 2)
    assert abs(mean_rate - truth) < 4 * sd_rate
    # The mean rate exceeds the median and the mode: exp(m + s^2/2) > exp(m) > exp(m - s^2).
    assert mean_rate > pop.loc[("unit.rate", "median"), "mean"] > pop.loc[("unit.rate", "mode"), "mean"]


def test_same_seed_same_draws_whatever_the_workers(ri_model, ri_stats, ri_data):
    kwargs = dict(method="bsl", chains=3, draws=60, warmup=40, seed=5, n_sims=20)
    one = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, **kwargs)
    two = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, n_jobs=2, backend="threading", **kwargs)
    other = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, **{**kwargs, "seed": 6})
    np.testing.assert_array_equal(one.draws, two.draws)
    assert not np.array_equal(one.draws, other.draws)


def _keep_records(folder, keep) -> None:
    path = folder / RECORDS
    lines = path.read_bytes().splitlines(keepends=True)
    kept = [line for line in lines if keep(json.loads(line)["record"])]
    path.write_bytes(b"".join(kept) + b'{"crc": 1, "rec')  # and a torn last line


def test_a_killed_bsl_run_resumes_to_the_uninterrupted_draws(ri_model, ri_stats, ri_data, tmp_path):
    kwargs = dict(method="bsl", chains=2, draws=120, warmup=80, seed=3, n_sims=20, block=50)
    full = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, **kwargs)
    folder = tmp_path / "run"
    simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, out=folder, **kwargs)
    # Chain 0 stopped after its second block, chain 1 after its first.
    _keep_records(folder, lambda r: r["block"] < (2 if r["chain"] == 0 else 1))
    resumed = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, out=folder, **kwargs)
    np.testing.assert_array_equal(full.draws, resumed.draws)
    with pytest.raises(simfit.ScenarioError, match="different study"):
        simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, out=folder, **{**kwargs, "seed": 4})


def test_abc_smc_recovers_the_lognormal_parameters_and_resumes(ln_model, ln_data, tmp_path):
    stats = Statistics(unit=[log_mean()], across=["mean", "sd"])
    kwargs = dict(method="abc-smc", seed=4, n_particles=400, max_generations=8)
    full = simfit.sample(ln_model, ln_data, stats, LN_PRIOR, **kwargs)
    mean, sd = full.mean(), full.sd()
    for name, value in LN_TRUTH.items():
        assert abs(mean[name] - value) < 4 * sd[name], name
    assert full.weights.shape == (1, 400) and full.weights.sum() == pytest.approx(1.0)
    tolerances = full.info["tolerances"]
    assert all(a > b for a, b in zip(tolerances, tolerances[1:]))
    folder = tmp_path / "abc"
    simfit.sample(ln_model, ln_data, stats, LN_PRIOR, out=folder, **kwargs)
    _keep_records(folder, lambda r: r["generation"] < 3)
    resumed = simfit.sample(ln_model, ln_data, stats, LN_PRIOR, out=folder, **kwargs)
    np.testing.assert_array_equal(full.draws, resumed.draws)
    np.testing.assert_array_equal(full.weights, resumed.weights)
    assert math.isnan(full.rhat()["m"])


@pytest.mark.parametrize(
    "prior, error, message",
    [
        ({**RI_PRIOR, "tau": {"dist": "gauss", "sd": 1}}, ModelError, "Unknown prior family 'gauss'"),
        ({**RI_PRIOR, "tau": {"dist": "normal", "mean": 0.5, "sd": 1}}, ModelError, "outside the parameter's bounds"),
        ({k: v for k, v in RI_PRIOR.items() if k != "mu"}, ModelError, "No prior for parameter"),
    ],
)
def test_bad_priors_fail_before_any_simulation(ri_model, ri_stats, ri_data, prior, error, message):
    with pytest.raises(error, match=message):
        simfit.sample(ri_model, ri_data, ri_stats, prior)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "nuts"}, "Unknown sampling method 'nuts'"),
        ({"n_particle": 10}, "Unknown auto option"),
        ({"method": "bsl", "n_design": 10}, "Unknown bsl option"),
        ({"chains": 0}, "chains must be an integer"),
        ({"n_sims": 5}, "needs more panels per proposal"),
        ({"n_jobs": 0}, "n_jobs must be"),
    ],
)
def test_bad_options_are_explained(ri_model, ri_stats, ri_data, kwargs, message):
    with pytest.raises(EstimationError, match=message):
        simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, draws=5, warmup=5, **kwargs)



@pytest.mark.parametrize("method", ["bsl", "abc-smc", "surrogate"])
def test_a_kernel_raising_stops_the_sampler_naming_it(ri_stats, method):
    # As in fit and its global phase: an exception is not a rejected proposal (NaN output is).
    data = simfit.simulate(misbehaving("raises", 1e9), Panel.balanced(30, 5), {**RI_TRUTH, "mu": 5.0}, seed=2).panel(0)
    with pytest.raises(simfit.KernelError, match=r"observation kernel raised ValueError: mu too large .* at parameters \{mu: "):
        simfit.sample(misbehaving("raises", 3.0), data, ri_stats, RI_PRIOR, method=method, chains=2, draws=20, warmup=20, seed=1)


def test_a_design_without_values_is_refused(ri_model, ri_stats, ri_data):
    with pytest.raises(EstimationError, match="Panel with observed values"):
        simfit.sample(ri_model, ri_data.design(), ri_stats, RI_PRIOR)


def test_default_statistics_of_the_lognormal_model_are_accepted(ln_model, ln_data):
    post = simfit.sample(ln_model, ln_data, lognormal_exponential.statistics(), LN_PRIOR, method="bsl", chains=1, draws=50, warmup=50,
                         seed=1)
    assert post.draws.shape == (1, 50, 2)


def test_a_spread_estimated_on_its_bound_still_starts_the_sampler(ri_model, ri_stats):
    # Eight units: the extremum estimate of tau is near 0, where its sandwich variance is huge;
    # the chains start from the prior's range in that direction and converge, and the posterior
    # mean of tau lies well above the estimate and the posterior mode.
    data = simfit.simulate(ri_model, Panel.balanced(8, 5), {"mu": 1.0, "tau": 0.3, "sigma": 1.0}, seed=17).panel(0)
    prior = {**RI_PRIOR, "tau": {"dist": "halfcauchy", "scale": 1}}
    post = simfit.sample(ri_model, data, ri_stats, prior, method="bsl", chains=4, draws=1000, seed=1)
    assert post.estimate["tau"] < 0.05
    assert post.info["preliminary_fit"]["se"]["tau"] > 1.0
    assert (post.rhat() < 1.05).all()
    assert post.map()["tau"] < 0.5 * post.mean()["tau"]
    assert post.interval(0.1).loc["tau", "lower"] < 0.05 < 0.1 < post.mean()["tau"]


def test_the_summary_reports_the_fit_the_chains_started_from(ri_model, ri_stats, ri_data, ri_posterior):
    # The preliminary fit is fit() with the same options: the same estimate, not a look-alike.
    alone = simfit.fit(ri_model, ri_data, ri_stats, bootstrap=0)
    assert np.array_equal(ri_posterior.estimate.to_numpy(), alone.params.to_numpy())
    text = ri_posterior.summary()
    assert "preliminary fit: simfit.fit() with the same statistics (seed 0" in text
    assert f"mu {alone.params['mu']:.4g} (se {alone.se()['mu']:.3g})" in text
    seeded = simfit.FitOptions(seed=7, bootstrap=0)
    post = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, method="bsl", chains=1, draws=20, warmup=20, seed=1,
                         fit_options=seeded)
    assert np.array_equal(post.estimate.to_numpy(), simfit.fit(ri_model, ri_data, ri_stats, options=seeded).params.to_numpy())
    assert "(seed 7" in post.summary()


def test_abc_smc_says_it_has_no_preliminary_fit(ln_model, ln_data):
    stats = Statistics(unit=[log_mean("y")], across=["mean", "sd"])
    post = simfit.sample(ln_model, ln_data, stats, LN_PRIOR, method="abc-smc", n_particles=200, max_generations=2, seed=1)
    assert "preliminary fit: none (ABC-SMC starts from the prior)" in post.summary()
    assert post.summary_frame()["estimate"].isna().all()


def test_the_abc_note_says_how_far_each_parameter_was_adjusted():
    from simfit.bayes.abc_smc import ABCOptions
    from simfit.bayes.sampling import _adjustment_note

    note = _adjustment_note(["mu", "tau", "s"], np.array([0.9, 0.2, 0.02]), ABCOptions())
    assert note == ("mu adjusted (cv R2 0.90), tau adjusted by 0.50 (cv R2 0.20), s kept (cv R2 0.02); the adjustment "
                    "rises from none at cv R2 0.1 to full at 0.3")


def test_fixed_parameters_are_held_at_their_values_and_take_no_prior(ri_model, ri_stats, ri_data):
    prior = {k: v for k, v in RI_PRIOR.items() if k != "sigma"}
    post = simfit.sample(ri_model, ri_data, ri_stats, prior, method="bsl", fixed={"sigma": 1.0}, chains=1, draws=40, warmup=40,
                         seed=1, n_sims=20)
    assert post.draws.shape == (1, 40, 2) and post.param_names == ["mu", "tau"] and post.model.fixed == {"sigma": 1.0}
    assert "fixed (not estimated): sigma = 1" in post.summary() and post.to_dict()["fixed"] == {"sigma": 1.0}
    with pytest.raises(ModelError, match=r"Prior\(s\) for sigma, held at 1 \(fixed, not estimated\); remove the prior"):
        simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, fixed={"sigma": 1.0})


def test_auxiliary_fits_are_centred_on_the_data_as_a_fit_centres_them():
    # Doses per kg, with the PK statistics' start in mg and L: the sampler's statistics are
    # centred on the observed subjects' fits, as fit()'s are.
    from simfit.models import pk

    model = pk.model(random=["ka", "cl"], error="additive", elimination="ke")
    truth = {"log_ka": 0.45, "ka_sd": 0.5, "log_cl": math.log(0.04), "cl_sd": 0.2, "log_ke": math.log(0.09), "sigma_add": 0.3}
    times = np.array([0.25, 0.5, 1, 2, 3.5, 5, 7, 9, 12, 24.0])
    design = Panel.from_units([np.zeros(10)] * 12, covariates=[np.column_stack([times, np.full(10, 4.5)])] * 12,
                              value_names=("concentration",), covariate_names=("time", "dose")).design()
    data = simfit.simulate(model, design, truth, seed=1).panel(0)
    prior = {"log_ka": {"dist": "normal", "mean": 0.5, "sd": 0.5}, "ka_sd": {"dist": "halfnormal", "scale": 0.5},
             "log_cl": {"dist": "normal", "mean": -3.2, "sd": 0.5}, "cl_sd": {"dist": "halfnormal", "scale": 0.5},
             "log_ke": {"dist": "normal", "mean": -2.4, "sd": 0.5}}
    post = simfit.sample(model, data, pk.statistics(), prior, method="abc-smc", fixed={"sigma_add": 0.3}, n_particles=50,
                         max_generations=1, seed=1)
    assert "centred on the median of 12 observed units' fits" in post.info["auxiliary_fits"]
    centred = simfit.fit(model, data, pk.statistics(), fixed={"sigma_add": 0.3}, bootstrap=0, seed=1).statistics
    sim = simfit.Simulator(post.model, design, post.statistics)
    np.testing.assert_array_equal(sim.observed(data), simfit.Simulator(post.model, design, centred).observed(data))


def test_the_default_is_the_surrogate_sampler_where_its_checks_pass(ri_model, ri_stats, ri_data, ri_posterior):
    # The same problem and chains as the BSL posterior: the surrogate's checks pass, so its
    # posterior is kept, at under a tenth of BSL's panels, and it is the explicit method's, draw
    # for draw.
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)
        post = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, chains=4, draws=1000, seed=1)
    assert post.method == "surrogate" and post.info["method_choice"].startswith("auto: the surrogate sampler, whose checks passed")
    assert post.n_simulations * 10 < ri_posterior.n_simulations
    assert ri_posterior.method == "bsl" and "method_choice" not in ri_posterior.info  # the explicit method is honoured
    explicit = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, method="surrogate", chains=4, draws=1000, seed=1)
    np.testing.assert_array_equal(post.draws, explicit.draws)
    assert "method_choice: auto: the surrogate sampler" in post.summary()


def test_the_default_falls_back_to_bsl_saying_why_where_the_surrogate_mispredicts():
    # Eight schools: tau moves the estimates' spread, not their mean, which the quadratic surrogate
    # cannot describe; its prediction check fails, and BSL samples, from the same preliminary fit.
    prior = {"mu": {"dist": "normal", "mean": 0, "sd": 10}, "tau": {"dist": "halfnormal", "scale": 10}}
    kwargs = dict(chains=2, draws=300, warmup=300, seed=1)
    with pytest.warns(FallbackWarning, match=r"because the surrogate's prediction check is 0\.\d+, outside \[0\.67, 1\.5\]"):
        post = simfit.sample(ma.model(), ma.eight_schools(), ma.statistics(), prior, n_design=400, rounds=2, **kwargs)
    assert post.method == "bsl" and "failed its check (prediction)" in post.info["method_choice"]
    assert "surrogate_attempt: " in post.summary()
    bsl = simfit.sample(ma.model(), ma.eight_schools(), ma.statistics(), prior, method="bsl", **kwargs)
    np.testing.assert_array_equal(post.draws, bsl.draws)
    assert post.n_simulations > bsl.n_simulations  # the surrogate's panels count too


def test_a_fallback_run_resumes_to_the_uninterrupted_draws(ri_model, ri_stats, ri_data, tmp_path, monkeypatch):
    # A posterior that has not settled (forced: no shift is small enough) fails the other check.
    monkeypatch.setattr(surrogate_module, "EXTRA_ROUNDS", 0)
    monkeypatch.setattr(surrogate_module, "SHIFT_MAX", 0.0)
    kwargs = dict(chains=2, draws=100, warmup=100, seed=3, n_design=300, rounds=1, n_sims=20, block=50)
    with pytest.warns(FallbackWarning, match="the surrogate posterior has not settled after 1 rounds"):
        full = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, out=tmp_path / "post", **kwargs)
    assert full.method == "bsl" and "(settled)" in full.info["method_choice"]
    # Killed after the surrogate's record and chain 0's first block; resumed, the recorded
    # decision stands (even where the check would now pass) and the draws are the same.
    _keep_records(tmp_path / "post", lambda r: r["rep"] < 0 or r["rep"] == 0)
    monkeypatch.setattr(surrogate_module, "SHIFT_MAX", 1.0)
    with pytest.warns(FallbackWarning):
        resumed = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, out=tmp_path / "post", **kwargs)
    np.testing.assert_array_equal(full.draws, resumed.draws)
    assert resumed.method == "bsl" and resumed.n_simulations == full.n_simulations
