"""Population distribution of entity-level parameters: exact summaries, simulation, uncertainty."""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
from numba import njit
from scipy import stats
from scipy.special import expit

import simfit
from simfit.errors import ArgumentError
from simfit.model import Level, Model, Observations
from simfit.models import dynamic_panel, lognormal_exponential, random_intercept, three_level
from simfit.models.random_intercept import normal_noise
from simfit.params import Param
from simfit.population import LogitNormal, LogNormal, Normal, latent_gaussian_draw, population_level
from simfit.population_summary import SUMMARY_NAMES, population_summary, unit_distribution
from simfit.random import normal

PARAMS = (Param("mu"), Param("s", bounds=(0.0, math.inf), start=1.0), Param("sigma", bounds=(0.0, math.inf), start=1.0))
BOUNDS = (2.0, 5.0)
LINKS = {
    "identity": (lambda y: y, lambda y: np.ones_like(y)),
    "log": (np.exp, np.exp),
    "logit": (lambda y: BOUNDS[0] + (BOUNDS[1] - BOUNDS[0]) * expit(y),
              lambda y: (BOUNDS[1] - BOUNDS[0]) * expit(y) * expit(-y)),
}
N_MC = 200_000


def one_margin_model(dist) -> Model:
    """Units with the single parameter ``dist`` and normal observations around it."""
    unit = population_level("unit", [dist], PARAMS)
    return Model(PARAMS, (unit,), Observations(normal_noise, values=("y",), args=(2.0,)))


def distribution(link: str, mu="mu", s="s"):
    if link == "identity":
        return Normal("x", mu, s)
    if link == "log":
        return LogNormal("x", mu, s)
    return LogitNormal("x", mu, s, bounds=BOUNDS)


def tolerances(link: str, mu: float, s: float, n: int) -> np.ndarray:
    """Four Monte Carlo standard errors of the sample mean, median, sd, q05, q95 of ``n`` values of
    ``link^-1(mu + s Z)`` (NaN for the mode, checked separately)."""
    inv, deriv = LINKS[link]
    z = np.linspace(-12.0, 12.0, 24001)
    w = stats.norm.pdf(z)
    w /= w.sum()
    x = inv(mu + s * z)
    mean = w @ x
    var = w @ (x - mean) ** 2
    m4 = w @ (x - mean) ** 4
    se_sd = math.sqrt(max(m4 - var**2, 0.0) / (4.0 * var * n))

    def se_quantile(q):
        zq = stats.norm.ppf(q)
        return math.sqrt(q * (1 - q) / n) * s / stats.norm.pdf(zq) * deriv(mu + s * zq)

    return 4.0 * np.array([math.sqrt(var / n), se_quantile(0.5), np.nan, se_sd, se_quantile(0.05), se_quantile(0.95)])


def sample_summaries(x: np.ndarray) -> np.ndarray:
    return np.array([x.mean(), np.median(x), np.nan, x.std(), np.quantile(x, 0.05), np.quantile(x, 0.95)])


def brute_force_mode(link: str, mu: float, s: float) -> float:
    """Maximum of the natural-scale density over a fine latent grid."""
    inv, deriv = LINKS[link]
    y = np.linspace(mu - s * s - 6.0 * s - 1.0, mu + s * s + 6.0 * s + 1.0, 2_000_001)
    with np.errstate(divide="ignore"):
        log_density = stats.norm.logpdf(y, mu, s) - np.log(deriv(y))
    return float(inv(y[np.argmax(log_density)]))


# ------------------------------------------------------------------------------------- exact forms


@pytest.mark.parametrize(
    ("link", "mu", "s"),
    [("identity", 1.0, 0.7), ("log", 0.3, 0.5), ("log", -1.0, 1.2), ("logit", 0.5, 1.0), ("logit", -0.8, 2.5)],
)
def test_exact_summaries_match_monte_carlo(link, mu, s):
    model = one_margin_model(distribution(link))
    got = unit_distribution(model, [mu, s, 1.0])["unit.x"]
    assert got.shape == (len(SUMMARY_NAMES),)
    inv, _ = LINKS[link]
    x = inv(mu + s * np.random.default_rng(7).standard_normal(N_MC))
    diff = np.abs(got - sample_summaries(x))
    tol = tolerances(link, mu, s, N_MC)
    checked = [0, 1, 3, 4, 5]
    assert np.all(diff[checked] <= tol[checked]), dict(zip(SUMMARY_NAMES, diff / tol))
    # Mode: the maximum of the natural-scale density (grid spacing in the latent ~1e-5 or finer).
    assert got[2] == pytest.approx(brute_force_mode(link, mu, s), rel=1e-4, abs=1e-4)


def test_log_normal_formulas():
    mu, s = 0.2, 0.6
    got = unit_distribution(one_margin_model(distribution("log")), {"mu": mu, "s": s, "sigma": 1.0})["unit.x"]
    dist = stats.lognorm(s, scale=math.exp(mu))
    expected = [dist.mean(), dist.median(), math.exp(mu - s * s), dist.std(), dist.ppf(0.05), dist.ppf(0.95)]
    assert np.allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize(("mu", "s"), [(0.5, 2.5), (-1.0, 1.8), (1.0, 8.0), (-1.0, 8.0)])
def test_logit_normal_mode_bimodal_and_at_bounds(mu, s):
    got = unit_distribution(one_margin_model(distribution("logit")), [mu, s, 1.0])["unit.x"]
    expected = brute_force_mode("logit", mu, s)
    assert got[2] == pytest.approx(expected, abs=1e-6)
    if s == 8.0:  # the higher mode lies within rounding of the bound on the side of mu
        assert got[2] == (BOUNDS[1] if mu > 0 else BOUNDS[0])
    assert BOUNDS[0] <= got[4] <= got[1] <= got[5] <= BOUNDS[1]


def test_logit_normal_moments_for_large_spread():
    mu, s = 1.3, 15.0
    got = unit_distribution(one_margin_model(distribution("logit")), [mu, s, 1.0])["unit.x"]
    x = LINKS["logit"][0](mu + s * np.random.default_rng(3).standard_normal(N_MC))
    tol = tolerances("logit", mu, s, N_MC)
    assert abs(got[0] - x.mean()) <= tol[0]
    assert abs(got[3] - x.std()) <= tol[3]


@pytest.mark.parametrize("link", ["identity", "log", "logit"])
def test_zero_spread_is_a_point_mass(link):
    model = one_margin_model(distribution(link, s=0.0))
    got = unit_distribution(model, [0.4, 1.0, 1.0])["unit.x"]
    value = LINKS[link][0](0.4)
    assert got[3] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(got[[0, 1, 2, 4, 5]], value, rtol=1e-12, atol=1e-12)


def test_rows_are_vectorised_and_keys_name_levels():
    model = three_level.model()
    rows = np.array([[1.0, 0.5, 0.3, 1.0], [-2.0, 1.0, 0.1, 2.0]])
    out = unit_distribution(model, rows)
    assert list(out) == ["unit.a", "group.c"]
    assert out["unit.a"].shape == (2, 6)
    # Group effects centred on their unit's effect: N(mu, tau_unit^2 + tau_group^2) marginally.
    sd = np.hypot(rows[:, 1], rows[:, 2])
    assert np.allclose(out["group.c"][:, 3], sd)
    assert np.allclose(out["group.c"][:, 5], rows[:, 0] + stats.norm.ppf(0.95) * sd)
    for k, row in enumerate(rows):
        assert np.allclose(unit_distribution(model, row)["group.c"], out["group.c"][k])


def test_bad_arguments():
    model = lognormal_exponential.model()
    with pytest.raises(ArgumentError, match=r"shape \(2,\)"):
        unit_distribution(model, [0.0, 0.5, 1.0])
    with pytest.raises(ArgumentError, match="'s' = -0.5 lies outside its bounds"):
        unit_distribution(model, [0.0, -0.5])
    with pytest.raises(ArgumentError, match="method"):
        unit_distribution(model, [0.0, 0.5], method="exact")
    with pytest.raises(ArgumentError, match="alpha"):
        population_summary(SimpleNamespace(model=model, free=np.zeros(2), cov_free=np.eye(2), design=None), alpha=2)
    with pytest.raises(ArgumentError, match="FitResult or a posterior"):
        population_summary(SimpleNamespace(model=model))


# ------------------------------------------------------------------------------------- simulation


def user_kernel_model() -> Model:
    """The log-normal model with its unit level as an opaque kernel (no distribution specs)."""
    base = lognormal_exponential.model()
    unit = base.levels[0]
    opaque = Level("unit", unit.params, latent_gaussian_draw, args=unit.args)
    return Model(base.params, (opaque,), base.observations, name="opaque")


SIM_DESIGN = simfit.Panel.balanced(200, 1)
SIM_N = 200 * 200
# The kernel-density mode of 20,000 such values has a sampling sd of about 0.02 and a bias of
# about 0.02 (plain estimate on the natural scale) or less (on the latent scale).
MODE_TOL = 0.08


@pytest.mark.parametrize("model", [lognormal_exponential.model(), user_kernel_model()], ids=["forced", "user-kernel"])
def test_simulation_agrees_with_exact_forms(model):
    psi = [0.0, 0.5]
    exact = unit_distribution(lognormal_exponential.model(), psi)["unit.rate"]
    method = "simulate" if model.levels[0].distributions else "auto"
    sim = unit_distribution(model, psi, design=SIM_DESIGN, n_sims=200, seed=3, method=method)["unit.rate"]
    tol = tolerances("log", 0.0, 0.5, SIM_N)
    checked = [0, 1, 3, 4, 5]
    assert np.all(np.abs(sim - exact)[checked] <= tol[checked])
    assert abs(sim[2] - exact[2]) <= MODE_TOL


def test_simulation_needs_a_design():
    with pytest.raises(ArgumentError, match=r"unit\.rate.*user-written kernel.*design=panel\.design\(\)"):
        unit_distribution(user_kernel_model(), [0.0, 0.5])


def test_simulated_summaries_use_common_random_numbers():
    model = user_kernel_model()
    a = unit_distribution(model, [[0.0, 0.5], [0.0, 0.5]], design=SIM_DESIGN, n_sims=20)["unit.rate"]
    assert np.array_equal(a[0], a[1])
    # Same keys: a shift of m scales every simulated rate by exp(0.1).
    b = unit_distribution(model, [0.1, 0.5], design=SIM_DESIGN, n_sims=20)["unit.rate"]
    assert np.allclose(b[[0, 1, 3, 4, 5]], math.exp(0.1) * a[0, [0, 1, 3, 4, 5]], rtol=1e-12)


# ------------------------------------------------------------------------------------- uncertainty


def fake_fit(model, free, cov, design=None):
    return SimpleNamespace(model=model, free=np.asarray(free, float), cov_free=np.asarray(cov, float), design=design)


@pytest.mark.parametrize(
    ("model", "free", "cov"),
    [
        (lognormal_exponential.model(), [0.1, math.log(0.5)], [[4e-4, 1e-4], [1e-4, 9e-4]]),
        (dynamic_panel.model(), [0.5, 0.0, 0.0], np.diag([4e-4, 9e-4, 1e-4])),
    ],
    ids=["log", "logit"],
)
def test_delta_method_matches_sampling_distribution(model, free, cov):
    n = 20_000
    frame = population_summary(fake_fit(model, free, cov), alpha=0.1, n_draws=n, seed=4)
    u = np.random.default_rng(11).multivariate_normal(free, cov, size=n)
    values = unit_distribution(model, model.params.to_natural(u))
    sd = np.concatenate([values[k].std(axis=0) for k in values])
    se = frame["se"].to_numpy()
    moving = sd > 0  # the Normal(0, 1) nuisance effects of the dynamic panel are constants
    assert np.all(se[~moving] == 0.0)
    # sd of a sample sd is about sd / sqrt(2 n); a little more for the linearisation.
    assert np.allclose(se[moving], sd[moving], rtol=4 / math.sqrt(2 * n) + 0.01)
    # Sampling intervals of smooth summaries under a small covariance: about estimate -+ 1.645 se.
    z = stats.norm.ppf(0.95)
    half = 0.5 * (frame["upper"] - frame["lower"]).to_numpy()
    assert np.allclose(half[moving], z * se[moving], rtol=0.05)


def test_unidentified_directions_propagate():
    model = random_intercept.model()
    cov = np.diag([0.01, np.inf, 0.02])
    frame = population_summary(fake_fit(model, [1.0, math.log(0.5), 0.0], cov))
    a = frame.loc["unit.a"]
    # mean, median and mode of a_i = mu + tau z are mu: finite; sd and quantiles involve tau.
    assert np.allclose(a.loc[["mean", "median", "mode"], "se"], 0.1)
    assert np.all(np.isinf(a.loc[["sd", "q05", "q95"], "se"]))
    assert a.loc[["sd", "q05", "q95"], ["lower", "upper"]].isna().all().all()
    assert a.loc["mean", "lower"] == pytest.approx(1.0 - stats.norm.ppf(0.95) * 0.1, abs=0.01)
    delta = population_summary(fake_fit(model, [1.0, math.log(0.5), 0.0], cov), interval="delta").loc["unit.a"]
    assert delta.loc["mean", "upper"] == pytest.approx(1.0 + stats.norm.ppf(0.95) * 0.1)


def test_simulated_delta_method_matches_exact():
    fit = fake_fit(lognormal_exponential.model(), [0.1, math.log(0.5)], [[4e-4, 1e-4], [1e-4, 9e-4]], SIM_DESIGN)
    exact = population_summary(fit)
    sim = population_summary(fit, method="simulate")
    # Common random numbers: the derivatives of the simulated mean, sd and quantiles are those
    # of the exact ones up to the Monte Carlo error of 40,000 values (well under 5%).
    rows = [("unit.rate", s) for s in ("mean", "median", "sd", "q05", "q95")]
    assert np.allclose(sim.loc[rows, "se"], exact.loc[rows, "se"], rtol=0.05)
    assert np.allclose(sim["upper"] - sim["estimate"], stats.norm.ppf(0.95) * sim["se"])  # delta interval


def test_posterior_weighted_summaries():
    model = random_intercept.model()
    rng = np.random.default_rng(5)
    draws = np.stack([rng.normal(1.0, 0.1, (500, 3)), rng.normal(1.1, 0.1, (500, 3))])
    draws[..., 1:] = np.abs(draws[..., 1:])
    weights = rng.exponential(size=(2, 500))
    weights[0, :100] = 0.0
    weights /= weights.sum()
    frame = population_summary(SimpleNamespace(model=model, design=None, draws=draws, weights=weights), alpha=0.2)
    assert list(frame.columns) == ["mean", "sd", "lower", "upper"]
    assert frame.index.names == ["parameter", "summary"]
    flat, w = draws.reshape(-1, 3), weights.reshape(-1)
    values = unit_distribution(model, flat)["unit.a"]
    mean = w @ values
    assert np.allclose(frame.loc["unit.a"]["mean"], mean, rtol=1e-12)
    assert frame.loc[("unit.a", "mean"), "mean"] == pytest.approx(w @ flat[:, 0], rel=1e-12)
    assert np.allclose(frame.loc["unit.a"]["sd"], np.sqrt(w @ (values - mean) ** 2), rtol=1e-10)
    # Draws without weight do not count: the interval lies within the weighted draws' range.
    kept = values[w > 0]
    assert np.all(frame.loc["unit.a"]["lower"] >= kept.min(axis=0))
    assert np.all(frame.loc["unit.a"]["upper"] <= kept.max(axis=0))

    unweighted = population_summary(SimpleNamespace(model=model, design=None, draws=draws, weights=None), alpha=0.2)
    all_values = unit_distribution(model, flat)["unit.a"]
    assert np.allclose(unweighted.loc["unit.a"]["mean"], all_values.mean(axis=0), rtol=1e-12)
    assert np.allclose(unweighted.loc["unit.a"]["lower"], np.quantile(all_values, 0.1, axis=0, method="hazen"))


def test_posterior_with_simulated_margins_subsamples():
    model = user_kernel_model()
    rng = np.random.default_rng(2)
    draws = np.column_stack([rng.normal(0.0, 0.05, 4000), np.abs(rng.normal(0.5, 0.04, 4000))]).reshape(2, 2000, 2)
    post = SimpleNamespace(model=model, design=simfit.Panel.balanced(100, 1), draws=draws, weights=None)
    frame = population_summary(post, n_sims=20, max_simulated_draws=30)
    exact = population_summary(SimpleNamespace(model=lognormal_exponential.model(), design=None, draws=draws, weights=None))
    # 30 draws of a summary whose posterior sd is ~0.06: the means agree to a few of its se.
    assert frame.loc[("unit.rate", "mean"), "mean"] == pytest.approx(exact.loc[("unit.rate", "mean"), "mean"], abs=0.05)


# ------------------------------------------------------------------------------------- fit


@pytest.fixture(scope="module")
def ln_fit():
    model = lognormal_exponential.model()
    panel = simfit.simulate(model, simfit.Panel.balanced(100, 50), {"m": 0, "s": 0.5}, seed=1).panel(0)
    return simfit.fit(model, panel, lognormal_exponential.statistics(), n_sims=10)


def test_fit_population_summary(ln_fit):
    frame = ln_fit.population_summary()
    assert list(frame.columns) == ["estimate", "se", "lower", "upper"]
    assert list(frame.index) == [("unit.rate", s) for s in SUMMARY_NAMES]
    m, s = ln_fit.params
    mean = frame.loc[("unit.rate", "mean")]
    assert mean["estimate"] == pytest.approx(math.exp(m + s * s / 2))
    assert abs(mean["estimate"] - math.exp(0.125)) <= 4 * mean["se"]
    assert mean["lower"] < mean["estimate"] < mean["upper"]
    assert frame.loc[("unit.rate", "median"), "estimate"] == pytest.approx(math.exp(m))


def test_fit_summary_section(ln_fit):
    text = ln_fit.summary()
    assert "Population distribution of unit-level parameters" in text
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("unit.rate"))
    assert lines[at + 1].strip().startswith("(")
    assert max(len(line) for line in lines) <= 100
    opaque = dataclasses.replace(ln_fit, model=user_kernel_model(), design=None)
    line = next(line for line in opaque.summary().splitlines() if line.startswith("Population distribution"))
    assert "not available" in line and "design=" in line


def test_spread_on_its_bound_leaves_other_summaries_their_standard_errors():
    import warnings

    import simfit
    from simfit.estimation import fit
    from simfit.models import random_intercept

    model = random_intercept.model()
    data = simfit.Simulator(model, simfit.Panel.balanced(8, 5)).simulate({"mu": 1.0, "tau": 0.3, "sigma": 1.0}, seed=32).panel(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(model, data, random_intercept.statistics(), seed=1, n_sims=50, bootstrap=0)
    assert res.at_bound == ["tau"]
    frame = res.population_summary(interval="delta").loc["unit.a"]
    # The mean, median and mode of a normal margin are mu: their se is mu's.
    for name in ("mean", "median", "mode"):
        assert frame.loc[name, "se"] == pytest.approx(res.se()["mu"], rel=1e-6)
    # The sd and the quantiles move with the spread, whose uncertainty is one-sided: no se.
    assert frame[["se"]].loc[["sd", "q05", "q95"]].isna().all().all()


def test_mode_of_a_spread_at_rounding_level_is_the_point_mass():
    from simfit.population_summary import _kde_mode, _Margin

    margin = _Margin("unit.x", 0, 0, None, (-np.inf, np.inf), None)
    rng = np.random.default_rng(0)
    for scale in (3e-16, 1e-14):  # rounding-level spreads used to break the binned density
        assert _kde_mode(1.0 + scale * rng.normal(size=2000), margin) == pytest.approx(1.0, abs=1e-12)
    wide = 1.0 + 0.1 * rng.normal(size=20000)
    assert _kde_mode(wide, margin) == pytest.approx(1.0, abs=0.05)


def test_parameters_fixed_by_the_model_are_not_population_summaries():
    from simfit.models import random_intercept
    from simfit.population import Normal, population_level

    ri = random_intercept.model()
    level = population_level("unit", [Normal("a", "mu", "tau"), Normal("c", 2.0, 0.0)], list(ri.params))
    model = simfit.Model(list(ri.params), [level], ri.observations)
    assert list(simfit.unit_distribution(model, {"mu": 1.0, "tau": 0.5, "sigma": 1.0})) == ["unit.a"]


# ------------------------------------------------------------------------------------- covariates


@njit(cache=True, error_model="numpy")
def _effect_and_known_se(psi, parent, covariates, args, rng, theta):
    theta[0] = psi[0] + psi[1] * normal(rng)  # the unit's true effect, N(mu, tau^2)
    theta[1] = covariates[0]  # its known standard error, handed to the observations


@njit(cache=True, error_model="numpy")
def _estimate_with_known_se(psi, theta, x, args, rng, y):
    for k in range(y.shape[0]):
        y[k, 0] = theta[0] + theta[1] * normal(rng)


def known_se_model_and_design():
    """The meta-analysis model written with a unit covariate: a user-written level copies each
    unit's known standard error into its parameters for the observation kernel."""
    from simfit.models import meta_analysis

    level = Level("unit", ("theta", "se"), _effect_and_known_se, covariates=("se",))
    model = Model(meta_analysis.PARAMS, (level,), Observations(_estimate_with_known_se, values=("y",)), name="known_se")
    design = simfit.Panel.from_units([[y] for y in meta_analysis.EIGHT_SCHOOLS_Y],
                                     unit_covariates=np.array(meta_analysis.EIGHT_SCHOOLS_SE)[:, None],
                                     unit_covariate_names=("se",)).design()
    return model, design


def test_covariates_are_not_population_parameters_and_simulated_means_carry_their_error():
    # The eight-schools posterior with se as a unit covariate listed unit.se as a population
    # parameter, and put the unit effects' mean 0.25 below mu's posterior mean (100 draws).
    model, design = known_se_model_and_design()
    rng = np.random.default_rng(3)
    draws = np.stack([rng.normal(4.3, 3.3, (2, 2000)), np.abs(rng.normal(3.0, 3.0, (2, 2000)))], axis=-1)
    post = SimpleNamespace(model=model, design=design, draws=draws, weights=None)
    frame = population_summary(post)
    assert list(dict.fromkeys(frame.index.get_level_values("parameter"))) == ["unit.theta"]
    assert list(frame.columns) == ["mean", "sd", "lower", "upper", "mc_se"]
    assert frame.attrs == {"simulated": ["unit.theta"], "simulated_draws": 100, "draws": 4000}
    mean = frame.loc[("unit.theta", "mean")]
    mu_mean, mu_sd = draws[..., 0].mean(), draws[..., 0].std()
    assert mean["mc_se"] < 0.02 * mu_sd  # the mean of theta is linear in mu: the regression takes nearly all the error
    assert abs(mean["mean"] - mu_mean) <= 4 * mean["mc_se"], (mean["mean"], mu_mean, mean["mc_se"])
    assert (frame["mc_se"] > 0).all()
    fit_like = unit_distribution(model, [4.3, 3.0], design=design)
    assert list(fit_like) == ["unit.theta"]


def test_the_posterior_summary_labels_simulated_population_means():
    from simfit.bayes.posterior import Posterior

    model, design = known_se_model_and_design()
    rng = np.random.default_rng(4)
    draws = np.stack([rng.normal(4.3, 3.3, (2, 300)), np.abs(rng.normal(3.0, 3.0, (2, 300)))], axis=-1)
    post = Posterior(model=model, draws=draws, method="bsl", design=design)
    text = post.summary()
    assert "unit.se" not in text and "unit.theta simulated at 100 of the 600 draws: mc_se is the Monte-Carlo" in text
