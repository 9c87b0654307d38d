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
the prior simulations of generation 0. Every generation is checkpointed; a run resumes from the
last finished generation and continues exactly as if it had never stopped.
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

__all__ = ["ABCOptions", "run_abc_smc"]


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
        Stop once the tolerance is at or below this (on the standardised scale).
    max_generations : int
    max_simulations : int
        Stop once this many panels have been simulated.
    batch : int
        Candidates simulated per engine launch (``n_particles`` by default).
    """

    n_particles: int = 1000
    quantile: float = 0.5
    min_acceptance: float = 0.03
    min_tolerance: float = 0.0
    max_generations: int = 40
    max_simulations: int = 2_000_000
    batch: int | None = None

    def __post_init__(self) -> None:
        for name in ("n_particles", "max_generations", "max_simulations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise EstimationError(f"{name} must be a positive integer, got {v!r}.")
        if self.n_particles < 20:
            raise EstimationError(f"n_particles must be at least 20, got {self.n_particles}.")
        if not 0.0 < self.quantile < 1.0 or not 0.0 <= self.min_acceptance < 1.0 or self.min_tolerance < 0:
            raise EstimationError("quantile must lie in (0, 1), min_acceptance in [0, 1) and min_tolerance be >= 0.")
        if self.batch is not None and (not isinstance(self.batch, (int, np.integer)) or self.batch < 1):
            raise EstimationError(f"batch must be a positive integer, got {self.batch!r}.")


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

    def record(gen, u, w, dist, eps, acc, sims, scale, stopped):
        g = {
            "rep": gen, "generation": gen, "particles": u.tolist(), "log_weights": np.log(w).tolist(),
            "distances": dist.tolist(), "tolerance": eps, "acceptance": acc, "n_simulations": sims,
            "scale": scale.tolist(), "stopped": stopped,
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
        mad = np.median(np.abs(stats[ok] - np.median(stats[ok], axis=0)), axis=0) * 1.4826
        sd = stats[ok].std(axis=0)
        scale = np.where(mad > 0, mad, sd)
        if np.any(scale <= 0):
            raise EstimationError("A statistic does not vary across prior simulations; remove it.")
        dist = _standardised_distance(stats, observed, scale)
        if progress is not None:
            progress(n)
        record(0, u, np.full(n, 1.0 / n), dist, math.inf, 1.0, n, scale, None)

    last = history[-1]
    scale = np.asarray(last["scale"])
    sims_total = int(last["n_simulations"])
    while last["stopped"] is None:
        gen = last["generation"] + 1
        u_prev = np.asarray(last["particles"])
        logw_prev = np.asarray(last["log_weights"])
        w_prev = np.exp(logw_prev - logsumexp(logw_prev))
        d_prev = np.asarray(last["distances"])
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
        kept_u, kept_d = [], []
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
            kept_d.append(dist[ok])
            accepted += int(ok.sum())
            tried += int(inside.sum())
            sims_total += int(inside.sum())
            if progress is not None:
                progress(int(inside.sum()))
            k += 1
            if sims_total >= options.max_simulations and sum(len(x) for x in kept_u) < n:
                break
        u = np.concatenate(kept_u)[:n]
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
        record(gen, u, w, dist, eps, acceptance, sims_total, scale, stopped)
        last = history[-1]
    u = np.asarray(last["particles"])
    logw = np.asarray(last["log_weights"])
    return {
        "particles": params.to_natural(u),
        "weights": np.exp(logw - logsumexp(logw)),
        "distances": np.asarray(last["distances"]),
        "tolerances": [g["tolerance"] for g in history],
        "acceptance": [g["acceptance"] for g in history],
        "n_simulations": int(last["n_simulations"]),
        "generations": int(last["generation"]) + 1,
        "stopped": last["stopped"],
    }
