import numpy as np
import pytest
from conftest import RI_PRIOR

import simfit
from simfit.bayes import surrogate as surrogate_module
from simfit.bayes.diagnostics import ess_bulk
from simfit.bayes.priors import Priors
from simfit.bayes.surrogate import (
    LACK_OF_FIT_MAX,
    SHIFT_MAX,
    QuadraticSurrogate,
    SurrogateOptions,
    SurrogateWarning,
    run_surrogate,
)
from simfit.engine import Simulator
from simfit.errors import EstimationError
from simfit.models import meta_analysis as ma


def _design(rng, n=4000):
    u = rng.standard_normal((n, 2))
    mean = np.column_stack([2.0 + 3.0 * u[:, 0] + u[:, 1] ** 2, 1.0 - u[:, 0] * u[:, 1]])
    sd = np.exp(0.5 * np.column_stack([0.4 * u[:, 0], -0.3 * u[:, 1]]))
    noise = rng.standard_normal((n, 2)) @ np.linalg.cholesky([[1.0, 0.5], [0.5, 1.0]]).T
    return u, mean + sd * noise


def test_the_surrogate_learns_a_quadratic_mean_and_log_linear_variances(rng):
    u, stats = _design(rng)
    sur = QuadraticSurrogate(u, stats, np.zeros(2), np.eye(2))
    # features: 1, u0, u1, u0^2, u0 u1, u1^2
    expected = np.array([[2.0, 1.0], [3.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, -1.0], [1.0, 0.0]])
    se = 4 * 2.0 / np.sqrt(u.shape[0])  # coefficients' standard errors are about sd / sqrt(n)
    np.testing.assert_allclose(sur.coef, expected, atol=se)
    np.testing.assert_allclose(sur.var_coef[1:], [[0.4, 0.0], [0.0, -0.3]], atol=0.1)
    assert sur.corr[0, 1] == pytest.approx(0.5, abs=4 * 0.75 / np.sqrt(u.shape[0]))
    fresh_u, fresh = _design(rng, 2000)
    check = sur.standardised_errors(fresh_u, fresh).mean()
    assert abs(check - 1.0) < 4 * np.sqrt(2 / (2 * 2000))  # mean of chi2_2 / 2 over 2000 points


def test_replicates_at_the_centre_give_the_likelihood_s_covariance_everywhere(rng):
    u, stats = _design(rng)
    noise = rng.standard_normal((400, 2)) @ np.linalg.cholesky([[1.0, 0.5], [0.5, 1.0]]).T  # the noise at u = 0
    sur = QuadraticSurrogate(u, stats, np.zeros(2), np.eye(2), noise=noise)
    # The replicates' covariance, plus each statistic's residual variance beyond it: here only
    # the design's average of variances exp(+-0.4 u0), exp(-0.3 u1) (1.083 and 1.046) beyond
    # the centre's (1), up to the replicates' variance estimates (se sqrt(2 / 400)).
    np.testing.assert_allclose(sur.noise_root @ sur.noise_root.T, np.cov(noise, rowvar=False) * 399 / 396 + np.diag(sur.misfit))
    assert np.all(sur.misfit < np.array([0.083, 0.046]) + 4 * np.sqrt(2 / 400))
    points = rng.standard_normal((5, 2))
    f = sur.features(points)
    lev = np.einsum("ij,jk,ik->i", f, sur.gram_inv, f)
    # At the surrogate's own mean only the covariance's determinant and the leverage remain.
    at_mean = np.array([sur.loglik(x[None], (sur.features(x[None]) @ sur.coef)[0])[0] for x in points])
    assert np.ptp(at_mean + stats.shape[1] * 0.5 * np.log1p(lev)) < 1e-9
    # New simulations near the centre, where the replicates' covariance holds, are predicted.
    fresh_u, fresh = _design(rng, 2000)
    near = np.abs(fresh_u).max(axis=1) < 0.1
    assert abs(sur.standardised_errors(fresh_u[near], fresh[near]).mean() - 1.0) < 4 * np.sqrt(2 / (2 * near.sum()))


def test_residuals_overstate_the_noise_where_the_quadratic_misses_replicates_do_not(rng):
    u, stats = _design(rng)
    noise = rng.standard_normal((400, 2)) @ np.linalg.cholesky([[1.0, 0.5], [0.5, 1.0]]).T
    # c u0^3 leaves c^2 var(u^3 - 3u) = 6 c^2 to the residuals of the first statistic.
    mild = stats + np.column_stack([0.5 * u[:, 0] ** 3, np.zeros(len(u))])
    residual = QuadraticSurrogate(u, mild, np.zeros(2), np.eye(2))
    replicate = QuadraticSurrogate(u, mild, np.zeros(2), np.eye(2), noise=noise)
    assert np.exp(residual.var_coef[0, 0]) > 1.5  # the true noise variance at the centre is 1
    noise_part = replicate.noise_root[0, 0] ** 2 - replicate.misfit[0]
    assert abs(noise_part - 1.0) < 4 * np.sqrt(2 / 400)
    assert replicate.lack_of_fit == pytest.approx((1 + 6 * 0.25 + 1) / 2, rel=0.15)  # median of 2.5 and 1
    # A design far too wide for the quadratic keeps the residuals' covariance.
    wide = QuadraticSurrogate(u, stats + np.column_stack([u[:, 0] ** 3, np.zeros(len(u))]), np.zeros(2), np.eye(2), noise=noise)
    assert wide.lack_of_fit > LACK_OF_FIT_MAX and wide.noise_root is None


def test_what_the_quadratic_misses_widens_the_likelihood_so_new_simulations_are_predicted(rng):
    # The first statistic gains 0.4 u0^3, which the quadratic misses (residual variance 0.96 beyond
    # the noise; lack of fit within LACK_OF_FIT_MAX, so the replicates' covariance is used). Over
    # the design, new simulations' errors then have the noise's covariance plus 0.96 in the first
    # statistic: the likelihood's covariance predicts them (mean standardised squared error 1),
    # the noise's alone does not.
    u, stats = _design(rng)
    noise = rng.standard_normal((400, 2)) @ np.linalg.cholesky([[1.0, 0.5], [0.5, 1.0]]).T
    cubic = np.column_stack([0.4 * u[:, 0] ** 3, np.zeros(len(u))])
    sur = QuadraticSurrogate(u, stats + cubic, np.zeros(2), np.eye(2), noise=noise)
    assert sur.lack_of_fit <= LACK_OF_FIT_MAX
    resid = stats + cubic - sur.features(u) @ sur.coef
    se_misfit = np.std(resid[:, 0] ** 2) / np.sqrt(len(u)) + np.sqrt(2 / 400)
    assert abs(sur.misfit[0] - 6 * 0.16) < 4 * se_misfit + 0.083  # plus the design's average variance beyond the centre's
    # Measured where the posterior is (here |u| < 1), where the cubic's departure from the
    # quadratic, 0.4 (u^3 - 3 u), is well under half its design average.
    inner = np.abs(u).max(axis=1) < 1.0
    local = QuadraticSurrogate(u, stats + cubic, np.zeros(2), np.eye(2), noise=noise, where=inner)
    assert local.misfit[0] < 0.5 * sur.misfit[0]
    fresh_u, fresh = _design(rng, 20000)
    fresh = fresh + np.column_stack([0.4 * fresh_u[:, 0] ** 3, np.zeros(len(fresh_u))])
    errors = sur.standardised_errors(fresh_u, fresh)
    se = np.std(errors) / np.sqrt(len(errors)) + np.sqrt(2 / 400)  # the errors' own, plus the covariance's estimate
    assert abs(errors.mean() - 1.0) < 4 * se
    sur.noise_root = np.linalg.cholesky(sur.noise_root @ sur.noise_root.T - np.diag(sur.misfit))  # the noise alone
    assert sur.standardised_errors(fresh_u, fresh).mean() > 1.0 + 4 * se


def test_options_are_validated():
    with pytest.raises(EstimationError, match="n_design"):
        SurrogateOptions(n_design=0)
    with pytest.raises(EstimationError, match="inflate"):
        SurrogateOptions(inflate=0.5)
    with pytest.raises(EstimationError, match="covariance"):
        SurrogateOptions(covariance="diagonal")
    with pytest.raises(EstimationError, match="n_noise"):
        SurrogateOptions(n_noise=0)
    with pytest.raises(EstimationError, match="scale"):
        SurrogateOptions(scale="log")


def test_a_statistic_flat_near_a_zero_spread_is_quadratic_on_the_natural_scale(rng):
    # A statistic carried by a spread sd = exp(u): 1 + 4 sd^2, flat below what the data resolve.
    # A quadratic in sd follows it over the whole design; a quadratic in log sd does not.
    u = np.log(0.2) + rng.standard_normal((4000, 1))
    noise_sd = 0.05

    def simulate(points):
        sd = np.exp(points[:, 0])
        return np.column_stack([1.0 + 4.0 * sd**2, sd]) + noise_sd * rng.standard_normal((len(points), 2))

    stats = simulate(u)
    noise = simulate(np.full((2000, 1), np.log(0.2)))
    natural = QuadraticSurrogate(u, stats, np.zeros(1), np.eye(1), noise=noise, transform=np.exp)
    log_scale = QuadraticSurrogate(u, stats, np.zeros(1), np.eye(1), noise=noise)
    assert natural.lack_of_fit < LACK_OF_FIT_MAX < log_scale.lack_of_fit
    # New simulations where the spread is near zero (sd < 0.04) are predicted within the noise:
    # mean chi2_2 / 2 is 1, its standard error sqrt(1 / n) plus that of the estimated noise
    # variances (about sqrt(2 / n_noise) each, averaged over the two statistics).
    fresh_u = np.log(0.2) + rng.standard_normal((20000, 1))
    small = fresh_u[fresh_u[:, 0] < np.log(0.04)]
    se = np.sqrt(1 / len(small) + 1 / len(noise))
    assert abs(natural.standardised_errors(small, simulate(small)).mean() - 1.0) < 4 * se


def test_surrogate_posterior_matches_bsl_with_a_tenth_of_the_panels(ri_model, ri_stats, ri_data, ri_posterior):
    post = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, method="surrogate", seed=1)
    assert post.n_simulations * 10 < ri_posterior.n_simulations
    assert (post.rhat() < 1.01).all()
    assert 0.67 <= post.info["surrogate_check"] <= 1.5
    ess = np.minimum(post.ess().to_numpy(), ri_posterior.ess().to_numpy())
    # Monte Carlo standard errors of the two posterior means (each with at least this ESS)
    se = ri_posterior.sd().to_numpy() * np.sqrt(2.0 / ess)
    assert np.all(np.abs(post.mean().to_numpy() - ri_posterior.mean().to_numpy()) < 4 * se)
    # sd of an sd estimate ~ sd / sqrt(2 ESS); two estimates
    ratio = post.sd().to_numpy() / ri_posterior.sd().to_numpy()
    assert np.all(np.abs(ratio - 1.0) < 4 * np.sqrt(2.0 / (2 * ess)))
    assert "preliminary fit: simfit.fit()" in post.summary()


def test_rounds_go_on_until_a_posterior_started_far_away_has_settled(ri_model, ri_stats, ri_data, ri_posterior, monkeypatch):
    # A first pass six posterior sds off in two parameters (as a preliminary fit far in the tail
    # gives) places the first design where the posterior is not; the rounds walk towards it.
    simulator = Simulator(ri_model, ri_data, ri_stats)
    observed = simfit.observed_statistics(ri_model, ri_data, ri_stats).to_numpy()
    priors = Priors(ri_model.params, RI_PRIOR)
    free = ri_model.params.to_free(ri_posterior.draws.reshape(-1, 3))
    centre = free.mean(axis=0) + 6.0 * free.std(axis=0) * np.array([1.0, 0.0, 1.0])
    options = SurrogateOptions(rounds=2)

    def run():
        return run_surrogate(simulator, observed, priors, options, centre, np.diag(free.var(axis=0)), chains=4,
                             draws=1000, warmup=500, seed=1)

    settled = run()
    assert settled["settled"] and settled["shift"] <= SHIFT_MAX and settled["rounds"] > options.rounds
    draws = ri_model.params.to_natural(settled["draws"].reshape(-1, 3)).reshape(settled["draws"].shape)
    ess = np.minimum([ess_bulk(draws[..., j]) for j in range(3)], ri_posterior.ess().to_numpy())
    se = ri_posterior.sd().to_numpy() * np.sqrt(2.0 / ess)
    assert np.all(np.abs(draws.reshape(-1, 3).mean(axis=0) - ri_posterior.mean().to_numpy()) < 4 * se)

    # Stopped after `rounds`, the posterior is still on its way (confidently wrong), and the run
    # says so.
    monkeypatch.setattr(surrogate_module, "EXTRA_ROUNDS", 0)
    stopped = run()
    assert stopped["rounds"] == options.rounds and not stopped["settled"] and stopped["shift"] > SHIFT_MAX
    early = ri_model.params.to_natural(stopped["draws"].reshape(-1, 3)).mean(axis=0)
    assert np.any(np.abs(early - ri_posterior.mean().to_numpy()) > 4 * se)


def test_a_posterior_that_has_not_settled_says_so(ri_model, ri_stats, ri_data, monkeypatch):
    monkeypatch.setattr(surrogate_module, "EXTRA_ROUNDS", 0)
    monkeypatch.setattr(surrogate_module, "SHIFT_MAX", 0.0)
    with pytest.warns(SurrogateWarning, match="has not settled"):
        post = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, method="surrogate", seed=3, chains=2, draws=300,
                             warmup=300, n_design=400, rounds=1)
    assert post.info["round_shift"] > 0 and "has not settled" in post.summary()


def test_a_surrogate_that_does_not_describe_the_statistics_says_so():
    # Eight units with one observation each: tau moves the estimates' spread, not their mean,
    # and their log variance log(tau^2 + se^2) is not linear in log tau.
    prior = {"mu": {"dist": "normal", "mean": 0, "sd": 10}, "tau": {"dist": "halfnormal", "scale": 10}}
    with pytest.warns(SurrogateWarning, match="predicts new simulations poorly"):
        post = simfit.sample(ma.model(), ma.eight_schools(), ma.statistics(), prior, method="surrogate", seed=1)
    assert "warning" in post.info and "the surrogate predicts new simulations poorly" in post.summary()
    assert post.method == "surrogate" and "method_choice" not in post.info  # chosen by name: no fallback
    # Its design never became local: the posterior kept the residuals' covariance, and says so.
    assert post.info["lack_of_fit"] > 2 and "still too wide for the quadratic" in post.summary()


def test_a_surrogate_run_is_kept_and_read_back(ri_model, ri_stats, ri_data, tmp_path):
    kwargs = dict(method="surrogate", seed=2, chains=2, draws=300, warmup=300, n_design=400, rounds=2)
    first = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, out=tmp_path / "post", **kwargs)
    again = simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, out=tmp_path / "post", **kwargs)
    assert np.array_equal(first.draws, again.draws)
    assert again.n_simulations == first.n_simulations



def test_an_invalid_start_is_reported_before_anything_is_simulated(ri_model, ri_stats, ri_data):
    with pytest.raises(EstimationError, match="Invalid start"):
        simfit.sample(ri_model, ri_data, ri_stats, RI_PRIOR, method="surrogate", start={"tau": -1.0})
