"""Approximate Bayesian computation by sequential Monte Carlo (ABC-SMC).

A population of weighted particles moves from the prior towards the posterior through a
decreasing sequence of tolerances (Beaumont, Cornuet, Marin & Robert 2009; Del Moral, Doucet &
Jasra 2012):

1. generation 0 draws the particles from the prior;
2. the next tolerance is a quantile of the current particles' distances;
3. candidates are drawn from the weighted particles and moved by a Gaussian kernel on the
   unconstrained scale with twice the particles' weighted covariance; they are simulated in
   batches, all candidates of a batch in one launch of the engine, and kept when their distance
   is below the tolerance;
4. weights are prior over proposal density; stop when the acceptance rate falls below
   ``min_acceptance``, the tolerance below ``min_tolerance``, or a budget is spent.

Distances are Euclidean on statistics divided by their spread (median absolute deviation) among
the prior simulations of generation 0 (or, with ``adaptive_scale``, among the candidates of the
previous generation, Prangle 2017). The final particles are corrected by local-linear regression
on their statistics (Beaumont, Zhang & Balding 2002), which removes most of the blur the last
tolerance leaves, for each parameter the regression predicts: a linear adjustment of a
parameter the statistics do not predict linearly (a spread on few units, whose statistics inform
it through their dispersion) adds noise and, through the link, bias. So each parameter's
adjustment is scaled by a weight that rises continuously with the regression's cross-validated
R^2, from 0 at ``adjust_min_gain`` to 1 at ``adjust_full_gain``: a small change in the data moves
the posterior a little, never by the whole adjustment at once (a hard threshold moved a location's
posterior mean by 0.9 posterior sd between two seeds). Every generation is checkpointed; a run
resumes from the last finished generation and continues exactly as if it had never stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from simfit.bayes.priors import Priors
from simfit.engine import Simulator
from simfit.errors import EstimationError
from simfit.estimation import derive_seed

__all__ = ["ABCOptions", "run_abc_smc", "regression_adjust", "adjustment_weight"]


@dataclass(frozen=True)
class ABCOptions:
    """Options of ABC-SMC.

    Attributes
    ----------
    n_particles : int
        Particles per generation.
    quantile : float
        Each tolerance is this quantile of the previous generation's distances.
    min_acceptance : float
        Stop after a generation whose acceptance rate is below this.
    min_tolerance : float
        Stop once the tolerance is at or below this (on the generation's standardised scale).
    max_generations : int
    max_simulations : int
        Stop once this many panels have been simulated.
    batch : int
        Candidates simulated per engine launch (``n_particles`` by default).
    adaptive_scale : bool
        Rescale the statistics in each generation by their spread among the previous
        generation's candidates (otherwise by their spread among the prior simulations).
    adjust : bool
        Correct the final particles by local-linear regression on their statistics
        (Beaumont, Zhang & Balding 2002): the tolerance's blur of the posterior shrinks to what a
        linear relation between parameters and statistics cannot explain.
    adjust_min_gain, adjust_full_gain : float
        Adjust a parameter (on the unconstrained scale) by as much as the regression predicts it:
        by a weight rising linearly from 0, where its 5-fold cross-validated R^2 among the final
        particles is at most ``adjust_min_gain``, to 1 (the full adjustment), where it is at least
        ``adjust_full_gain`` (see :func:`adjustment_weight`). Below the first the adjustment can
        only add noise and bias; the parameter keeps its particles. Equal values make a hard
        threshold, which a small change in the data can flip.
    """

    n_particles: int = 1000
    quantile: float = 0.5
    min_acceptance: float = 0.03
    min_tolerance: float = 0.0
    max_generations: int = 40
    max_simulations: int = 2_000_000
    batch: int | None = None
    adaptive_scale: bool = False
    adjust: bool = True
    adjust_min_gain: float = 0.1
    adjust_full_gain: float = 0.3

    def __post_init__(self) -> None:
        for name in ("n_particles", "max_generations", "max_simulations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise EstimationError(f"{name} must be a positive integer, got {v!r}.")
        if self.n_particles < 20:
            raise EstimationError(f"n_particles must be at least 20, got {self.n_particles}.")
        if not 0.0 < self.quantile < 1.0 or not 0.0 <= self.min_acceptance < 1.0 or self.min_tolerance < 0:
            raise EstimationError("quantile must lie in (0, 1), min_acceptance in [0, 1) and min_tolerance be >= 0.")
        if not 0.0 <= self.adjust_min_gain < 1.0 or not self.adjust_min_gain <= self.adjust_full_gain < 1.0:
            raise EstimationError(
                f"adjust_min_gain and adjust_full_gain must satisfy 0 <= adjust_min_gain <= adjust_full_gain < 1, got "
                f"{self.adjust_min_gain!r} and {self.adjust_full_gain!r}."
            )
        if self.batch is not None and (not isinstance(self.batch, (int, np.integer)) or self.batch < 1):
            raise EstimationError(f"batch must be a positive integer, got {self.batch!r}.")


def adjustment_weight(gains: np.ndarray, min_gain: float, full_gain: float) -> np.ndarray:
    """How much of the regression adjustment each parameter gets, from its cross-validated R^2:
    0 up to ``min_gain``, 1 from ``full_gain``, linear in between (a step at ``min_gain`` when the
    two are equal); 0 where the gain is NaN."""
    gains = np.asarray(gains, dtype=float)
    if full_gain > min_gain:
        weight = np.clip((gains - min_gain) / (full_gain - min_gain), 0.0, 1.0)
    else:
        weight = (gains >= min_gain).astype(float)
    return np.where(np.isfinite(gains), weight, 0.0)


def regression_adjust(
    u: np.ndarray,
    weights: np.ndarray,
    deviations: np.ndarray,
    distances: np.ndarray,
    tolerance: float,
    min_gain: float = 0.0,
    folds: int = 5,
    full_gain: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local-linear regression adjustment of ABC particles (Beaumont, Zhang & Balding 2002),
    parameter by parameter as far as the regression predicts the parameter.

    Parameters
    ----------
    u : ndarray, shape (n, n_params)
        Particles on the unconstrained scale.
    weights : ndarray, shape (n,)
    deviations : ndarray, shape (n, n_stats)
        Scaled simulated minus observed statistics of each particle.
    distances : ndarray, shape (n,)
    tolerance : float
    min_gain, full_gain : float
        Parameter ``j`` moves by ``adjustment_weight(gains[j], min_gain, full_gain)`` times its
        adjustment (``gains[j]`` the cross-validated R^2 of its regression): not at all up to
        ``min_gain``, fully from ``full_gain`` (default ``min_gain``: a hard threshold).
    folds : int
        Folds of the cross-validation (a fixed assignment: particle ``i`` in fold ``i % folds``).

    Returns
    -------
    (ndarray, ndarray, ndarray)
        Particles with parameter ``j`` replaced by ``u - lambda_j (s - s_obs) B`` (``B`` the
        weighted least-squares slopes of ``u`` on the statistics, ``lambda_j`` its adjustment
        weight); weights multiplied by the Epanechnikov kernel ``1 - (d / tolerance)^2``, whether
        or not a parameter moves (so that no parameter's posterior jumps when another's weight
        leaves 0); and the gains, shape (n_params,): ``1 -`` the kernel-weighted out-of-fold
        squared error of the regression over that of the training folds' weighted mean (NaN where
        not computed). Particles and weights are returned unchanged when the tolerance is
        infinite or too few particles carry weight.
    """
    gains = np.full(u.shape[1], np.nan)
    if not math.isfinite(tolerance) or tolerance <= 0:
        return u, weights, gains
    kernel = np.clip(1.0 - (distances / tolerance) ** 2, 0.0, None)
    w = weights * kernel
    if w.sum() <= 0 or 1.0 / np.sum((w / w.sum()) ** 2) < 5 * (deviations.shape[1] + 1):
        return u, weights, gains
    w = w / w.sum()
    x = np.column_stack([np.ones(u.shape[0]), deviations])
    gains = _cross_validated_gain(u, w, x, folds)
    lam = adjustment_weight(gains, min_gain, min_gain if full_gain is None else full_gain)
    root_w = np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(root_w * x, root_w * u, rcond=None)
    out = u - lam[None, :] * (deviations @ coef[1:])
    return out, w, gains


def _cross_validated_gain(u: np.ndarray, w: np.ndarray, x: np.ndarray, folds: int) -> np.ndarray:
    """Per column of ``u``: 1 - out-of-fold weighted squared error of the weighted regression on
    ``x`` over that of the weighted mean of the training folds."""
    fold = np.arange(u.shape[0]) % folds
    err_fit = np.zeros(u.shape[1])
    err_mean = np.zeros(u.shape[1])
    for f in range(folds):
        train, test = fold != f, fold == f
        if w[train].sum() <= 0 or w[test].sum() <= 0:
            return np.full(u.shape[1], np.nan)
        root_w = np.sqrt(w[train])[:, None]
        coef, *_ = np.linalg.lstsq(root_w * x[train], root_w * u[train], rcond=None)
        centre = np.average(u[train], axis=0, weights=w[train])
        err_fit += w[test] @ (u[test] - x[test] @ coef) ** 2
        err_mean += w[test] @ (u[test] - centre) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(err_mean > 0, 1.0 - err_fit / err_mean, np.nan)


def _robust_scale(stats: np.ndarray) -> np.ndarray:
    """Spread of each statistic: the normal-consistent median absolute deviation, or the sd
    where that is zero (statistics with many ties)."""
    if stats.shape[0] < 2:
        return np.zeros(stats.shape[1])
    mad = np.median(np.abs(stats - np.median(stats, axis=0)), axis=0) * 1.4826
    return np.where(mad > 0, mad, stats.std(axis=0))


def _standardised_distance(stats: np.ndarray, observed: np.ndarray, scale: np.ndarray) -> np.ndarray:
    d = np.sqrt((((stats - observed) / scale) ** 2).sum(axis=1))
    d[~np.isfinite(d)] = np.inf
    return d


def run_abc_smc(
    simulator: Simulator,
    observed: np.ndarray,
    priors: Priors,
    options: ABCOptions,
    seed: int,
    generations: list[dict] | None = None,
    store=None,
    progress=None,
) -> dict:
    """Run (or finish) ABC-SMC.

    Parameters
    ----------
    simulator : Simulator
        On the observed panel's design, with the statistics.
    observed : ndarray, shape (n_stats,)
    priors : Priors
    options : ABCOptions
    seed : int
    generations : list of dict, optional
        Checkpointed generations so far (resume).
    store : ReplicationStore, optional
        Where every finished generation is appended.
    progress : callable, optional
        Called with the number of panels just simulated.

    Returns
    -------
    dict
        ``particles`` (n_particles, n_params) natural scale, ``weights`` (n_particles,),
        ``distances``, ``tolerances`` (per generation), ``acceptance`` (per generation),
        ``n_simulations``, ``stopped`` (the reason).
    """
    params = priors.params
    n = options.n_particles
    batch = options.batch or n
    history = sorted(generations or [], key=lambda g: g["generation"])
    # Continue after the last of the consecutive generations 0, 1, ..., k.
    history = history[: next((k for k, g in enumerate(history) if g["generation"] != k), len(history))]

    def simulate(candidates_u: np.ndarray, gen: int, k: int) -> np.ndarray:
        psi = params.to_natural(candidates_u)
        out = simulator.statistics_batch(psi, 1, derive_seed(seed, 41, gen), k * batch, failures="nan")
        return out[:, 0, :]

    def record(gen, u, w, stats, dist, eps, acc, sims, scale, next_scale, stopped):
        g = {
            "rep": gen, "generation": gen, "particles": u.tolist(), "log_weights": np.log(w).tolist(),
            "statistics": stats.tolist(), "distances": dist.tolist(), "tolerance": eps, "acceptance": acc,
            "n_simulations": sims, "scale": scale.tolist(), "next_scale": next_scale.tolist(), "stopped": stopped,
        }
        if store is not None:
            store.append(g)
        history.append(g)

    if not history:
        rng = np.random.default_rng(derive_seed(seed, 40, 0))
        psi0 = priors.rvs(n, rng)
        u = params.to_free(psi0)
        stats = simulate(u, 0, 0)
        ok = np.all(np.isfinite(stats), axis=1)
        if ok.sum() < max(10, n // 2):
            raise EstimationError(
                f"The simulator failed (non-finite statistics) at {n - ok.sum()} of {n} prior draws; "
                "narrow the priors to parameter values the model can simulate."
            )
        scale = _robust_scale(stats[ok])
        if np.any(scale <= 0):
            raise EstimationError("A statistic does not vary across prior simulations; remove it.")
        dist = _standardised_distance(stats, observed, scale)
        if progress is not None:
            progress(n)
        record(0, u, np.full(n, 1.0 / n), stats, dist, math.inf, 1.0, n, scale, scale, None)

    last = history[-1]
    sims_total = int(last["n_simulations"])
    while last["stopped"] is None:
        gen = last["generation"] + 1
        u_prev = np.asarray(last["particles"])
        logw_prev = np.asarray(last["log_weights"])
        w_prev = np.exp(logw_prev - logsumexp(logw_prev))
        # The distance of this generation: statistics scaled by their spread among all candidates
        # of the previous one (or among the prior simulations), so that as the particles close
        # in, the statistics that still discriminate keep their weight (Prangle 2017).
        scale = np.asarray(last["next_scale"] if options.adaptive_scale else history[0]["scale"])
        d_prev = _standardised_distance(np.asarray(last["statistics"]), observed, scale)
        eps = float(np.quantile(d_prev[np.isfinite(d_prev)], options.quantile))
        cov = 2.0 * np.atleast_2d(np.cov(u_prev, rowvar=False, aweights=w_prev))
        # A ridge keeps the kernel proper when the particles have collapsed in some direction.
        cov = cov + 1e-10 * np.eye(cov.shape[0]) * max(np.trace(cov), 1e-300)
        try:
            root = np.linalg.cholesky(cov)
        except np.linalg.LinAlgError:
            raise EstimationError(
                f"ABC-SMC generation {gen}: the particles have collapsed (their covariance is singular); "
                "use more particles or fewer generations (min_acceptance, max_generations)."
            ) from None
        inv = np.linalg.inv(cov)
        rng = np.random.default_rng(derive_seed(seed, 40, gen))
        kept_u, kept_s, kept_d, simulated = [], [], [], []  # simulated: for adaptive_scale only
        tried = 0
        accepted = 0
        k = 0
        while sum(len(x) for x in kept_u) < n:
            parents = rng.choice(n, size=batch, p=w_prev)
            cand = u_prev[parents] + rng.standard_normal((batch, u_prev.shape[1])) @ root.T
            lp = priors.logpdf_free(cand)
            inside = np.isfinite(lp)
            stats = np.full((batch, observed.size), np.nan)
            if inside.any():
                stats[inside] = simulate(cand[inside], gen, k)
            dist = _standardised_distance(stats, observed, scale)
            ok = inside & (dist <= eps)
            kept_u.append(cand[ok])
            kept_s.append(stats[ok])
            kept_d.append(dist[ok])
            if options.adaptive_scale:
                simulated.append(stats[inside])
            accepted += int(ok.sum())
            tried += int(inside.sum())
            sims_total += int(inside.sum())
            if progress is not None:
                progress(int(inside.sum()))
            k += 1
            if sims_total >= options.max_simulations and sum(len(x) for x in kept_u) < n:
                break
        u = np.concatenate(kept_u)[:n]
        accepted_stats = np.concatenate(kept_s)[:n]
        dist = np.concatenate(kept_d)[:n]
        if u.shape[0] < n:
            # The budget ran out inside this generation: keep the previous, complete one.
            last = dict(last, stopped="max_simulations", n_simulations=sims_total)
            history[-1] = last
            if store is not None:
                store.append(dict(last, rep=last["generation"]))
            break
        # Every simulated candidate of the generation counts, also those of the last batch
        # beyond the n-th acceptance.
        acceptance = accepted / tried
        lp = priors.logpdf_free(u)
        diff = u[:, None, :] - u_prev[None, :, :]
        log_kernel = -0.5 * np.einsum("ijk,kl,ijl->ij", diff, inv, diff)
        log_mix = logsumexp(log_kernel + np.log(w_prev)[None, :], axis=1)
        logw = lp - log_mix
        w = np.exp(logw - logsumexp(logw))
        stopped = None
        if acceptance < options.min_acceptance:
            stopped = "min_acceptance"
        elif eps <= options.min_tolerance:
            stopped = "min_tolerance"
        elif sims_total >= options.max_simulations:
            stopped = "max_simulations"
        elif gen >= options.max_generations:
            stopped = "max_generations"
        next_scale = scale
        if options.adaptive_scale:
            pool = np.concatenate(simulated)
            next_scale = _robust_scale(pool[np.all(np.isfinite(pool), axis=1)])
            next_scale = np.where(next_scale > 0, next_scale, scale)
        record(gen, u, w, accepted_stats, dist, eps, acceptance, sims_total, scale, next_scale, stopped)
        last = history[-1]
    u = np.asarray(last["particles"])
    logw = np.asarray(last["log_weights"])
    weights = np.exp(logw - logsumexp(logw))
    gains = np.full(u.shape[1], np.nan)
    if options.adjust:
        scale = np.asarray(last["scale"])
        u, weights, gains = regression_adjust(
            u, weights, (np.asarray(last["statistics"]) - observed) / scale, np.asarray(last["distances"]), last["tolerance"],
            min_gain=options.adjust_min_gain, full_gain=options.adjust_full_gain,
        )
    return {
        "adjustment_gains": gains,
        "particles": params.to_natural(u),
        "weights": weights,
        "distances": np.asarray(last["distances"]),
        "tolerances": [g["tolerance"] for g in history],
        "acceptance": [g["acceptance"] for g in history],
        "n_simulations": int(last["n_simulations"]),
        "generations": int(last["generation"]) + 1,
        "stopped": last["stopped"],
    }
