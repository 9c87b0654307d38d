"""Synthetic likelihood with a regression surrogate: posteriors from a few thousand panels.

BSL simulates ``S`` fresh panels at every proposal, tens of thousands of times. When one panel is
expensive, most of that work re-learns the same smooth relation between parameters and
statistics. The surrogate sampler learns it once, from batched simulations placed where the
posterior mass is (in the manner of Wilkinson 2014 and of Järvenpää et al. 2018, with a
polynomial in place of a Gaussian process):

1. **First pass** (a quasi-Bayesian, Laplace-type posterior; Chernozhukov and Hong 2003): the
   preliminary :func:`~simfit.estimation.fit` and its sandwich covariance on the unconstrained
   scale, widened towards the prior where the fit says little, place the first design.
2. **Rounds**: draw ``n_design`` parameter vectors from a normal around the current posterior,
   its covariance times ``inflate^2``, and simulate one panel at each, all in one launch of the
   engine; simulate ``n_noise`` more panels at the design's centre. Regress the statistics on a
   quadratic in the standardised parameters, on their natural scale by default (the points of
   all rounds inside this round's design region).
3. **Surrogate posterior**: ``log p(u) = log prior(u) + log N(s_obs; m(u), Sigma (1 + h(u)))``,
   with ``m(u)`` the fitted mean, ``h(u)`` the leverage of ``u`` in the regression (the
   surrogate's own uncertainty about ``m(u)``) and ``Sigma`` the covariance of the panels
   simulated at the centre, the simulation noise of one panel, plus each statistic's residual
   variance beyond that noise among the design points inside the 99% region of the round's
   previous posterior (what the quadratic misses where the posterior is, an error of ``m(u)``
   that the leverage does not hold; left out, the DDM's posterior sds were 1.3-1.5 times too
   small, see ``benchmarks/results/ddm_posterior.md``). Where the regression's residuals
   exceed that noise by more than :data:`LACK_OF_FIT_MAX` (the design is too wide for a
   quadratic, as a first design placed by a rough fit can be), ``Sigma`` is the residuals'
   covariance instead (each statistic's log variance linear in the parameters), which is
   conservative there; rounds continue until the last design is local (for up to
   :data:`WIDE_ROUNDS` beyond ``rounds``) and the posterior has settled around it (for up to
   :data:`EXTRA_ROUNDS`; no parameter's posterior mean more than :data:`SHIFT_MAX` posterior sds
   from the design's centre: a preliminary fit far in the tail places the first design where the
   posterior is not, and the rounds then walk towards it). Taking the residuals' covariance
   throughout makes the posterior too wide by what the quadratic misses, and its design wider still: on the DDM, residual variances of
   the fastest RT quantiles were 10 to 20 times their noise, and posterior sds of the
   non-decision time 2.5 times those with the noise's covariance. The posterior is restricted to
   the round's design region (the ellipsoid holding 99% of its points: a quadratic extrapolated
   beyond the design can curve back towards the observed statistics). Its evaluations simulate
   nothing: random-walk Metropolis chains (proposal covariance adapted in warm-up) draw from it,
   and their mean and covariance place the next round's design.

**Check**: ``n_check`` panels simulated at draws of the final posterior, where the surrogate is
used; their prediction errors, standardised by the likelihood's covariance and leverage, should
have mean square 1 (``info["surrogate_check"]``; far from 1 means the quadratic mean or the
covariance do not describe the statistics over the posterior, and a :class:`SurrogateWarning` and
the summary say so). Statistics whose spread, rather than their mean, carries a parameter (the
estimates of a few units informing their between-unit sd) are such a case: use ABC-SMC or BSL
there. :func:`failed_checks` names the checks a run failed; ``sample(method="auto")``, the
default, falls back to BSL on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2

from simfit.bayes.priors import Priors
from simfit.engine import Simulator
from simfit.errors import EstimationError
from simfit.estimation import derive_seed

__all__ = [
    "SurrogateOptions", "run_surrogate", "QuadraticSurrogate", "SurrogateWarning", "SURROGATE_CHECK_RANGE", "failed_checks",
]

# A surrogate check (mean squared standardised prediction error of new simulations, 1 where the
# surrogate holds, with a standard error near sqrt(2 / (n_stats n_design))) outside this range is
# reported as a misfit: above, the surrogate is overconfident; below, its variances are too large.
SURROGATE_CHECK_RANGE = (0.67, 1.5)


# A design over which the regression's residual variance exceeds the simulation noise by more
# than this factor (median over statistics) is too wide for a quadratic: that round's likelihood
# keeps the residuals' covariance, which is conservative there, and not the noise's, under which a
# misfitting mean would make the posterior confidently wrong.
LACK_OF_FIT_MAX = 2.0
# Design points needed where the posterior is (inside its 99% region) to measure there what the
# quadratic misses; with fewer, the whole design's residuals measure it.
MISFIT_MIN_POINTS = 50
# A round's posterior with a parameter's mean more than this many of its posterior sds from the
# design's centre (the posterior mean of the round before) has not settled: the design was placed
# where the posterior is not, and the quadratic extrapolated towards it. Started from a
# preliminary fit far in the prior's tail, the DDM's posterior moves several sds per round, and
# stopped early it is confidently wrong; settled, it moves by less than one
# (``benchmarks/results/ddm_posterior.md``).
SHIFT_MAX = 1.0
# Rounds beyond ``SurrogateOptions.rounds``, at most, to reach a design over which the quadratic
# holds and around which the posterior has settled.
EXTRA_ROUNDS = 4
# After this many of them, a design still too wide for the quadratic is kept (the posterior must
# still settle): on the DDM's 100 SBC data sets, four extra rounds left 56 designs too wide where
# two had left 55, at 3,000 more panels each.
WIDE_ROUNDS = 2


class SurrogateWarning(UserWarning):
    """The surrogate does not predict new simulations: its posterior may be wrong."""


@dataclass(frozen=True)
class SurrogateOptions:
    """Options of the surrogate sampler.

    Attributes
    ----------
    n_design : int
        Panels simulated per round (one per design point).
    rounds : int
        Design rounds (the first placed by the preliminary fit, the others by the surrogate
        posterior of the round before); more until the last design is local (with
        ``covariance="fixed"``: the regression's residuals within :data:`LACK_OF_FIT_MAX` times
        the simulation noise; up to :data:`WIDE_ROUNDS` more) and the posterior has settled (no
        parameter's mean moved by more than :data:`SHIFT_MAX` of its sds in the last round; up
        to :data:`EXTRA_ROUNDS` more).
    inflate : float
        The design's spread relative to the current posterior (covariance times ``inflate^2``).
    target_acceptance : float
        Acceptance rate the chains' proposal scale is adapted to in warm-up.
    covariance : {"fixed", "varying"}
        The statistics' covariance in the synthetic likelihood. ``"fixed"`` (default): the
        covariance of ``n_noise`` panels simulated at the centre of each round's design (the
        posterior mean of the round before), taken wherever the likelihood is evaluated: a
        quasi-posterior in the manner of Chernozhukov and Hong (2003), whose intervals rest only
        on the statistics' mean being normal. ``"varying"``: the covariance of the regression's
        residuals, its log variances linear in the parameters, as BSL's varies with them; the
        dispersion of one observed vector of statistics then informs the parameters as if the
        statistics were exactly Gaussian, which makes posteriors overconfident when they are
        skewed or heavy-tailed, and the residuals overstate the noise wherever the quadratic does
        not follow a statistic exactly (on the DDM, 5 to 20 times for the fastest RT quantiles).
    n_noise : int
        Panels simulated at each round's design centre for the statistics' covariance
        (``covariance="fixed"``).
    n_check : int
        Panels simulated at draws of the final posterior to check the final surrogate
        (``info["surrogate_check"]``).
    scale : {"natural", "unconstrained"}
        The parameters the quadratic is in. ``"natural"`` (default): the model's own scale, on
        which a statistic carried by a spread varies with its square near zero and is flat
        below what the data resolve; a quadratic in the log spread (``"unconstrained"``) bends
        up there instead, and a posterior of a spread whose truth is near zero is pushed away
        from it or collapses onto it.
    """

    n_design: int = 1000
    rounds: int = 3
    inflate: float = 2.0
    target_acceptance: float = 0.3
    covariance: str = "fixed"
    n_noise: int = 500
    n_check: int = 200
    scale: str = "natural"

    def __post_init__(self) -> None:
        for name in ("n_design", "rounds", "n_noise", "n_check"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise EstimationError(f"{name} must be a positive integer, got {v!r}.")
        if not self.inflate >= 1.0:
            raise EstimationError(f"inflate must be at least 1, got {self.inflate!r}.")
        if not 0.0 < self.target_acceptance < 1.0:
            raise EstimationError(f"target_acceptance must lie in (0, 1), got {self.target_acceptance!r}.")
        if self.covariance not in ("fixed", "varying"):
            raise EstimationError(f"covariance must be 'fixed' or 'varying', got {self.covariance!r}.")
        if self.scale not in ("natural", "unconstrained"):
            raise EstimationError(f"scale must be 'natural' or 'unconstrained', got {self.scale!r}.")


class QuadraticSurrogate:
    """Mean of the statistics as a quadratic in standardised parameters, fitted by least squares;
    their covariance with log variances linear in the parameters and constant correlations.

    Parameters
    ----------
    u : ndarray, shape (n, n_params)
        Design points (unconstrained scale).
    stats : ndarray, shape (n, n_stats)
        One simulated panel's statistics at each point.
    centre : ndarray, shape (n_params,)
    cov : ndarray, shape (n_params, n_params)
        Standardise ``u`` by this centre and covariance (for conditioning). Ignored with
        ``transform``: the transformed design points' mean and covariance standardise them.
    noise : ndarray, shape (n_rep, n_stats), optional
        Statistics of ``n_rep`` panels simulated at ``centre``. Given, and the residuals within
        :data:`LACK_OF_FIT_MAX` times their variances (median over statistics), their covariance
        (its inverse made unbiased) plus ``diag(misfit)`` is the statistics' covariance wherever
        the likelihood is evaluated and new simulations predicted: the simulation noise, and
        ``misfit``, each statistic's residual variance beyond the noise's (what the quadratic
        misses over the design, or over ``where``; zero where it follows the statistic).
    transform : callable, optional
        Maps unconstrained points, shape (n, n_params), to those the quadratic is in (e.g.
        ``Params.to_natural``); the identity if omitted.
    where : ndarray of bool, shape (n,), optional
        The design points where the posterior is, over which ``misfit`` is measured (all points
        if omitted, or if fewer than :data:`MISFIT_MIN_POINTS`).
    """

    def __init__(self, u: np.ndarray, stats: np.ndarray, centre: np.ndarray, cov: np.ndarray,
                 noise: np.ndarray | None = None, transform=None, where: np.ndarray | None = None) -> None:
        self.transform = transform
        if transform is not None:
            x = transform(np.atleast_2d(u))
            centre = x.mean(axis=0)
            cov = np.atleast_2d(np.cov(x, rowvar=False))
            cov = cov + 1e-12 * max(float(np.max(np.diag(cov))), 1e-300) * np.eye(cov.shape[0])
        self.centre = np.asarray(centre, dtype=float)
        self.root = np.linalg.cholesky(np.asarray(cov, dtype=float))
        features = self.features(u)
        n, k = features.shape
        if n <= k + stats.shape[1]:
            raise EstimationError(
                f"The surrogate needs more design points than its {k} regression terms plus {stats.shape[1]} "
                f"statistics; got {n}. Raise n_design."
            )
        self.coef, *_ = np.linalg.lstsq(features, stats, rcond=None)
        resid = stats - features @ self.coef
        # Each statistic's log variance linear in the standardised parameters (the spread of a
        # statistic changes with the parameters, as BSL's covariance does at every proposal);
        # E log(chi2_1) = -1.2704 corrects the regression of log squared residuals.
        linear = features[:, : 1 + self.centre.size]
        floor = 1e-12 * max(float(np.max(resid**2)), 1e-300)
        log_sq = np.log(np.maximum(resid**2, floor)) + 1.2704
        self.var_coef, *_ = np.linalg.lstsq(linear, log_sq, rcond=None)
        fitted = linear @ self.var_coef
        # Predictions stay within the log variances fitted on the design (no extrapolation).
        self.log_var_range = (fitted.min(axis=0), fitted.max(axis=0))
        scaled = resid / np.exp(0.5 * fitted)
        corr = scaled.T @ scaled / (n - k)
        sd = np.sqrt(np.diag(corr))
        if not (np.all(np.isfinite(corr)) and np.all(sd > 0)):
            raise EstimationError("The surrogate's residual covariance is not finite; a statistic may be constant or "
                                  "explode over the design. Check the statistics or use method='bsl'.")
        shift = 2.0 * np.log(sd)  # the scaled residuals' variances back into the scale
        self.var_coef[0] += shift
        self.log_var_range = (self.log_var_range[0] + shift, self.log_var_range[1] + shift)
        corr = corr / np.outer(sd, sd)
        try:
            self.corr_root = np.linalg.cholesky(corr)
        except np.linalg.LinAlgError:
            # Statistics (nearly) collinear in their residuals: a small ridge keeps the density proper.
            corr = 0.999 * corr + 0.001 * np.eye(corr.shape[0])
            self.corr_root = np.linalg.cholesky(corr)
        self.corr = corr
        self.half_logdet_corr = float(np.log(np.diag(self.corr_root)).sum())
        self.noise_root = None
        self.lack_of_fit = math.nan
        self.misfit = None
        self.gram_inv = np.linalg.pinv(features.T @ features)
        if noise is not None:
            root = _noise_root(np.asarray(noise, dtype=float))
            # Residual variance over pure noise variance, the median over statistics: near 1
            # where the quadratic follows the statistics over the design.
            resid_var = (resid**2).sum(axis=0) / (n - k)
            noise_var = (root**2).sum(axis=1)
            self.lack_of_fit = float(np.median(resid_var / noise_var))
            if self.lack_of_fit <= LACK_OF_FIT_MAX:
                # What the quadratic misses over the design, statistic by statistic (its residual
                # variance beyond the noise), is an error of the surrogate's mean the likelihood
                # must allow for: left out, the posterior is as confident as if the mean were exact.
                local_var = resid_var
                if where is not None and np.sum(where) >= MISFIT_MIN_POINTS:
                    # Over the points where the posterior is, not the whole (wider) design, where
                    # the quadratic misses more: E resid_i^2 = sigma^2 (1 - h_i).
                    lev = np.einsum("ij,jk,ik->i", features[where], self.gram_inv, features[where])
                    local_var = (resid[where] ** 2).sum(axis=0) / np.sum(1.0 - lev)
                self.misfit = np.maximum(local_var - noise_var, 0.0)
                root = np.linalg.cholesky(root @ root.T + np.diag(self.misfit))
                self.noise_root, self.half_logdet_noise = root, float(np.log(np.diag(root)).sum())
        total = ((stats - stats.mean(axis=0)) ** 2).sum(axis=0)
        self.r2 = np.where(total > 0, 1.0 - (resid**2).sum(axis=0) / np.where(total > 0, total, 1.0), np.nan)

    def features(self, u: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(u) if self.transform is None else self.transform(np.atleast_2d(u))
        z = np.linalg.solve(self.root, (x - self.centre).T).T
        i, j = np.triu_indices(z.shape[1])
        return np.column_stack([np.ones(z.shape[0]), z, z[:, i] * z[:, j]])

    def _standardised(self, u: np.ndarray, stats: np.ndarray):
        """Prediction errors whitened by the statistics' covariance at ``u`` (the replicates'
        covariance where the surrogate has one), the leverage ``h(u)`` and ``log |Sigma(u)| / 2``."""
        f = self.features(u)
        lev = np.einsum("ij,jk,ik->i", f, self.gram_inv, f)
        resid = stats - f @ self.coef
        if self.noise_root is not None:
            z = np.linalg.solve(self.noise_root, resid.T).T
            return z, lev, np.full(z.shape[0], self.half_logdet_noise)
        linear = f[:, : 1 + self.centre.size]
        log_sd = 0.5 * np.clip(linear @ self.var_coef, *self.log_var_range)
        z = np.linalg.solve(self.corr_root, (resid * np.exp(-log_sd)).T).T
        return z, lev, log_sd.sum(axis=1) + self.half_logdet_corr

    def standardised_errors(self, u: np.ndarray, stats: np.ndarray) -> np.ndarray:
        """Mahalanobis squared prediction errors of new simulations, under the likelihood's
        covariance and divided by their expectation (the number of statistics times ``1 + h``):
        mean 1 where the surrogate holds."""
        z, lev, _ = self._standardised(u, stats)
        return (z**2).sum(axis=1) / ((1.0 + lev) * stats.shape[1])

    def loglik(self, u: np.ndarray, observed: np.ndarray) -> np.ndarray:
        """``log N(observed; m(u), Sigma(u) (1 + h(u)))`` up to a constant, shape (K,)."""
        u = np.atleast_2d(u)
        z, lev, half_log_det = self._standardised(u, np.broadcast_to(observed, (u.shape[0], observed.size)))
        d = observed.size
        return -0.5 * (z**2).sum(axis=1) / (1.0 + lev) - 0.5 * d * np.log1p(lev) - half_log_det


def _shift(delta: np.ndarray, cov: np.ndarray) -> float:
    """The largest move ``delta`` of a posterior mean, in posterior sds (``cov``'s diagonal)."""
    return float(np.max(np.abs(delta) / np.sqrt(np.diag(cov))))


def _noise_root(noise: np.ndarray) -> np.ndarray:
    """Cholesky root of the replicates' covariance, scaled by
    ``(n - 1) / (n - d - 2)`` so that its inverse, which the likelihood uses, is unbiased."""
    noise = noise[np.all(np.isfinite(noise), axis=1)]
    n, d = noise.shape
    if n < d + 5:
        raise EstimationError(
            f"The statistics' covariance needs more than {d + 4} finite panels at the design's centre; got {n}. "
            "Raise n_noise, or check the simulator there."
        )
    cov = np.atleast_2d(np.cov(noise, rowvar=False)) * (n - 1) / (n - d - 2)
    sd = np.sqrt(np.diag(cov))
    if not np.all(sd > 0):
        raise EstimationError("A statistic is constant over the panels simulated at the design's centre; drop it.")
    corr = cov / np.outer(sd, sd)
    try:
        root = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        # Statistics (nearly) collinear: a small ridge keeps the density proper.
        root = np.linalg.cholesky(0.999 * corr + 0.001 * np.eye(d))
    return sd[:, None] * root


# Metropolis steps per kept draw: the surrogate is cheap to evaluate, so the chains can afford to
# be thinned to nearly independent draws (random-walk Metropolis keeps about one effective draw
# in ten in a few dimensions).
THIN = 10
# Each chain is made of this many independent sub-chains run side by side (one vectorised
# evaluation serves all), its draws their kept draws one after the other.
SUB_CHAINS = 10


def _metropolis(logp, centre, cov, chains, warmup, draws, rng, target_acceptance):
    """Random-walk Metropolis chains on a cheap log density, shape (chains, draws, p).

    Each chain is :data:`SUB_CHAINS` sub-chains (vectorised together), each warmed up on its
    own and keeping every :data:`THIN`-th state; the proposal scale adapts in warm-up
    (Robbins-Monro on the acceptance rate, shared) and its shape to the warm-up draws once half
    the warm-up has run.
    """
    n_out, n_draws = chains, draws
    chains = n_out * SUB_CHAINS
    draws = -(-n_draws // SUB_CHAINS)
    p = centre.size
    root = np.linalg.cholesky(cov)
    x = centre + rng.standard_normal((chains, p)) @ root.T
    lp = logp(x)
    for _ in range(100):  # starts where the density is positive
        bad = ~np.isfinite(lp)
        if not bad.any():
            break
        x[bad] = centre + 0.5 * rng.standard_normal((int(bad.sum()), p)) @ root.T
        lp[bad] = logp(x[bad])
    if not np.all(np.isfinite(lp)):
        raise EstimationError("The surrogate posterior is zero around the preliminary estimate; check the priors.")
    log_scale = math.log(2.38 / math.sqrt(p))
    out = np.empty((chains, draws, p))
    out_lp = np.empty((chains, draws))
    history = []
    accepted = 0
    for t in range(warmup + draws):
        for _ in range(1 if t < warmup else THIN):
            prop = x + math.exp(log_scale) * rng.standard_normal((chains, p)) @ root.T
            lp_prop = logp(prop)
            take = np.log(rng.uniform(size=chains)) < lp_prop - lp
            x[take], lp[take] = prop[take], lp_prop[take]
            if t >= warmup:
                accepted += int(take.sum())
        if t < warmup:
            log_scale += (take.mean() - target_acceptance) * (t + 1) ** -0.6
            history.append(x.copy())
            if t + 1 == warmup // 2 and t + 1 >= 20:
                shape = np.cov(np.concatenate(history[len(history) // 2 :]), rowvar=False)
                shape = np.atleast_2d(shape) + 1e-12 * np.eye(p)
                try:
                    root = np.linalg.cholesky(shape)
                    log_scale = math.log(2.38 / math.sqrt(p))
                except np.linalg.LinAlgError:
                    pass
        else:
            out[:, t - warmup] = x
            out_lp[:, t - warmup] = lp
    out = out.reshape(n_out, SUB_CHAINS * draws, p)[:, :n_draws]
    out_lp = out_lp.reshape(n_out, SUB_CHAINS * draws)[:, :n_draws]
    return out, out_lp, accepted / max(1, chains * draws * THIN)


def run_surrogate(
    simulator: Simulator,
    observed: np.ndarray,
    priors: Priors,
    options: SurrogateOptions,
    centre: np.ndarray,
    cov: np.ndarray,
    chains: int,
    draws: int,
    warmup: int,
    seed: int,
    progress=None,
) -> dict:
    """Run the surrogate sampler (see the module docstring).

    Parameters
    ----------
    simulator : Simulator
        On the observed panel's design, with the statistics.
    observed : ndarray, shape (n_stats,)
    priors : Priors
    options : SurrogateOptions
    centre, cov : ndarray
        The first pass: centre (n_params,) and covariance (n_params, n_params) on the
        unconstrained scale.
    chains, draws, warmup : int
        Of the chains on the final surrogate (earlier rounds use a quarter of the draws).
    seed : int
    progress : callable, optional
        Called with the number of panels just simulated.

    Returns
    -------
    dict
        ``draws`` (chains, draws, n_params) unconstrained; ``log_posterior``; ``n_simulations``;
        ``acceptance``; ``surrogate_check`` (mean standardised squared error of the last round's
        simulations under the surrogate before them; NaN with one round); ``r2`` (per statistic);
        ``shift`` (the last round's largest move of a posterior mean, in posterior sds) and
        ``settled`` (it within :data:`SHIFT_MAX`);
        ``failed`` (design points whose panel failed); ``n_check`` (check panels with finite
        statistics). :func:`failed_checks` judges it.
    """
    params = priors.params
    centre = np.asarray(centre, dtype=float)
    cov = np.asarray(cov, dtype=float)
    p = centre.size
    us, ss = [], []
    failed = 0
    extra = 0  # panels simulated for the noise covariance and the check
    surrogate = None
    result = None

    def simulate(u, key, r):
        stats = simulator.statistics_batch(params.to_natural(u), 1, derive_seed(seed, key, r), 0, failures="nan")[:, 0, :]
        if progress is not None:
            progress(int(u.shape[0]))
        return stats

    r = -1
    while True:
        r += 1
        rng = np.random.default_rng(derive_seed(seed, 60, r))
        root = np.linalg.cholesky(cov)
        u = centre + options.inflate * (rng.standard_normal((options.n_design, p)) @ root.T)
        inside = np.isfinite(priors.logpdf_free(u))
        u = u[inside]
        stats = simulate(u, 61, r)
        ok = np.all(np.isfinite(stats), axis=1)
        failed += int((~ok).sum())
        if ok.sum() < 0.5 * max(1, u.shape[0]):
            raise EstimationError(
                f"Surrogate round {r}: the simulator failed (non-finite statistics) at {int((~ok).sum())} of "
                f"{u.shape[0]} design points around {dict(zip(params.names, np.round(params.to_natural(centre), 4).tolist()))}; "
                "narrow the priors or check the model there."
            )
        us.append(u[ok])
        ss.append(stats[ok])
        # The simulation noise at the design's centre: the likelihood's covariance wherever the
        # quadratic follows the statistics over the design (see QuadraticSurrogate).
        noise = None
        if options.covariance == "fixed":
            noise = simulate(np.repeat(centre[None], options.n_noise, axis=0), 63, r)
            extra += options.n_noise

        # The surrogate is trusted where this round's design is: a quadratic extrapolated beyond
        # it can curve back towards the observed statistics and make a spurious mode. It is also
        # fitted there only: earlier rounds' points outside that region, where the statistics may
        # bend away from any quadratic that holds near the posterior, would spoil the local fit.
        design_root = options.inflate * root
        design_centre = centre.copy()
        z2 = (np.linalg.solve(design_root, (u[ok] - centre).T) ** 2).sum(axis=0)
        radius2 = float(np.quantile(z2, 0.99))
        all_u, all_s = np.concatenate(us), np.concatenate(ss)
        z2_all = (np.linalg.solve(design_root, (all_u - centre).T) ** 2).sum(axis=0)
        near = z2_all <= radius2
        transform = params.to_natural if options.scale == "natural" else None
        # Where the posterior of the round before is: its 99% region (the design is that
        # posterior widened by ``inflate``).
        where = z2_all[near] * options.inflate**2 <= chi2.ppf(0.99, p)
        surrogate = QuadraticSurrogate(all_u[near], all_s[near], centre, cov, noise, transform, where)

        def logp(x, s=surrogate, c=design_centre, r=design_root, r2=radius2):
            lp = priors.logpdf_free(x)
            lp[(np.linalg.solve(r, (x - c).T) ** 2).sum(axis=0) > r2] = -math.inf
            out = np.full(x.shape[0], -math.inf)
            fin = np.isfinite(lp)
            if fin.any():
                out[fin] = lp[fin] + s.loglik(x[fin], observed)
            return out

        # The last round is a local one (its likelihood takes the simulation noise), unless the
        # design is still too wide after WIDE_ROUNDS more, whose posterior has settled where its
        # design was placed, unless it has not after EXTRA_ROUNDS more.
        local = options.covariance == "varying" or surrogate.noise_root is not None
        may_stop = r >= options.rounds - 1 and (local or r >= options.rounds - 1 + min(WIDE_ROUNDS, EXTRA_ROUNDS))
        final = r >= options.rounds - 1 + EXTRA_ROUNDS
        n_draws = draws if may_stop or final else max(200, draws // 4)
        n_warm = warmup if may_stop or final else max(200, warmup // 4)
        mcmc_rng = np.random.default_rng(derive_seed(seed, 62, r))
        chain_draws, chain_lp, acceptance = _metropolis(logp, centre, cov, chains, n_warm, n_draws, mcmc_rng, options.target_acceptance)
        flat = chain_draws.reshape(-1, p)
        previous = centre
        centre = flat.mean(axis=0)
        cov = np.atleast_2d(np.cov(flat, rowvar=False)) + 1e-12 * np.eye(p)
        shift = _shift(centre - previous, cov)
        result = (chain_draws, chain_lp, acceptance)
        if (may_stop and shift <= SHIFT_MAX) or final:
            break
    chain_draws, chain_lp, acceptance = result

    # The check: new panels at draws of the final posterior, where the surrogate is used.
    pick = np.random.default_rng(derive_seed(seed, 64)).choice(flat.shape[0], size=options.n_check, replace=flat.shape[0] < options.n_check)
    check_u = flat[pick]
    check_stats = simulate(check_u, 65, 0)
    extra += options.n_check
    fine = np.all(np.isfinite(check_stats), axis=1)
    check = float(np.mean(surrogate.standardised_errors(check_u[fine], check_stats[fine]))) if fine.any() else math.inf
    return {
        "draws": chain_draws,
        "log_posterior": chain_lp,
        "n_simulations": int(sum(x.shape[0] for x in us) + failed + extra),
        "acceptance": float(acceptance),
        "surrogate_check": check,
        "rounds": r + 1,
        "lack_of_fit": surrogate.lack_of_fit,
        "local": bool(local),
        "shift": shift,
        "settled": bool(shift <= SHIFT_MAX),
        "r2": surrogate.r2,
        "failed": failed,
        "design_points": int(sum(x.shape[0] for x in us)),
        "n_check": int(fine.sum()),
    }


def failed_checks(result: dict) -> dict[str, str]:
    """The surrogate's own checks of a :func:`run_surrogate` result that failed, each with why.

    Two checks decide whether the surrogate posterior can be trusted (``sample(method="auto")``
    falls back to BSL when either fails):

    * ``"prediction"``: the mean squared standardised prediction error of the panels simulated
      at draws of the final posterior (``surrogate_check``) lies within
      :data:`SURROGATE_CHECK_RANGE` (it is 1 where the surrogate's mean and covariance describe
      the statistics over the posterior);
    * ``"settled"``: no posterior mean moved by more than :data:`SHIFT_MAX` of its sds in the
      last round (a posterior still on its way is confidently wrong).

    A design that stayed too wide for the quadratic (``local`` false) is not among them: its
    likelihood keeps the residuals' covariance, which errs towards a wider posterior.

    Parameters
    ----------
    result : dict
        As returned by :func:`run_surrogate`.

    Returns
    -------
    dict of str to str
        Failed check -> a sentence saying what was measured; empty when every check passed.
    """
    failed = {}
    check = float(result["surrogate_check"])
    low, high = SURROGATE_CHECK_RANGE
    if not (math.isfinite(check) and low <= check <= high):
        failed["prediction"] = (
            f"the surrogate's prediction check is {check:.3g}, outside [{low:g}, {high:g}] (mean squared standardised "
            f"error of {result.get('n_check', 'the')} new panels at posterior draws, 1 where the surrogate holds)"
        )
    if not result["settled"]:
        failed["settled"] = (
            f"the surrogate posterior has not settled after {result['rounds']} rounds (a posterior mean moved by "
            f"{result['shift']:.3g} of its sds in the last round, at most {SHIFT_MAX:g} where it has)"
        )
    return failed
