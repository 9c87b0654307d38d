"""Bayesian synthetic likelihood (Wood 2010; Price, Drovandi, Lee & Nott 2018).

The likelihood of the observed statistics ``s_obs`` at population parameters ``psi`` is replaced
by a Gaussian one, ``N(s_obs; mu(psi), Sigma(psi))``, whose mean and covariance are estimated from
``S`` panels simulated at ``psi`` with fresh random keys at every proposal. An adaptive
random-walk Metropolis sampler on the unconstrained scale of the parameter transforms explores
the posterior; as in pseudo-marginal MCMC, the estimate at the current state is kept until a
proposal is accepted.

Each chain works in blocks of iterations. A block draws its proposals from a generator seeded by
``(seed, chain, block)`` and its simulations from keys ``(seed, chain, iteration)``, and ends with
a checkpoint record holding its draws and the sampler's state, so a chain resumed from its last
record continues exactly as if it had never stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simfit.bayes.priors import Priors
from simfit.engine import Simulator
from simfit.errors import EstimationError
from simfit.estimation import derive_seed

__all__ = ["BSLOptions", "SyntheticLikelihood", "gaussian_loglik", "choose_n_sims", "run_chains"]

# Robbins-Monro adaptation of the proposal scale during warm-up: step size t ** -_ADAPT_DECAY.
_ADAPT_DECAY = 0.6
# Warm-up states needed before their covariance shapes the proposals (and, after warm-up, before
# independence proposals are used at all: with a shorter warm-up there is nothing to fit them to).
_MIN_ADAPT = 100
# Degrees of freedom of the independence proposal (heavier tails than the posterior's).
_T_DF = 5.0


def _t_logpdf(x: np.ndarray, mean: np.ndarray, root: np.ndarray) -> float:
    """Log density of the multivariate t proposal up to a constant."""
    z = np.linalg.solve(root, x - mean)
    return -0.5 * (_T_DF + x.size) * math.log1p(float(z @ z) / _T_DF)


@dataclass(frozen=True)
class BSLOptions:
    """Options of the synthetic-likelihood sampler.

    Attributes
    ----------
    n_sims : int or "auto"
        Panels simulated per proposal. ``"auto"`` picks the smallest of ``n_stats + 6`` times 1,
        2, 4, ... (at most 640) for which the standard deviation of the log synthetic likelihood
        at the preliminary estimate and at the chains' starts is at most ``target_loglik_sd``
        (Price et al. 2018 recommend 1 to 2; see :func:`choose_n_sims`).
    shrinkage : float
        Shrink the statistics' covariance towards its diagonal,
        ``(1 - shrinkage) * Sigma + shrinkage * diag(Sigma)``; helps when ``S`` is small
        compared with the number of statistics (the plug-in Gaussian density is used then).
    unbiased : bool
        Estimate the Gaussian density without bias (see :func:`gaussian_loglik`).
    target_acceptance : float
        Acceptance rate the proposal scale is adapted to during warm-up.
    target_loglik_sd : float
        See ``n_sims``.
    independence : float
        After warm-up, the probability of proposing an independent draw from a Student t fitted
        to the warm-up states rather than a random-walk step (0: random walk only).
    block : int
        Iterations per checkpoint record.
    normalise : bool
        Score statistics that are skewed at the preliminary estimate after a power transform
        fitted there (:mod:`simfit.bayes.normalising`): the Gaussian likelihood then describes
        them (the log-normal benchmark's default statistics: posterior sds 0.77 of the exact ones
        without it).
    normalise_panels : int
        Panels simulated at the preliminary estimate to fit the transform.
    """

    n_sims: int | str = "auto"
    shrinkage: float = 0.0
    unbiased: bool = True
    target_acceptance: float = 0.25
    target_loglik_sd: float = 1.5
    independence: float = 0.5
    block: int = 250
    normalise: bool = True
    normalise_panels: int = 500

    def __post_init__(self) -> None:
        if self.n_sims != "auto" and (
            isinstance(self.n_sims, bool) or not isinstance(self.n_sims, (int, np.integer)) or self.n_sims < 3
        ):
            raise EstimationError(f"n_sims must be 'auto' or an integer of at least 3, got {self.n_sims!r}.")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise EstimationError(f"shrinkage must lie in [0, 1], got {self.shrinkage!r}.")
        if not 0.0 <= self.independence <= 1.0:
            raise EstimationError(f"independence must lie in [0, 1], got {self.independence!r}.")
        if not 0.0 < self.target_acceptance < 1.0 or not self.target_loglik_sd > 0:
            raise EstimationError("target_acceptance must lie in (0, 1) and target_loglik_sd be positive.")
        if isinstance(self.block, bool) or not isinstance(self.block, (int, np.integer)) or self.block < 1:
            raise EstimationError(f"block must be a positive integer, got {self.block!r}.")
        if not isinstance(self.normalise, bool):
            raise EstimationError(f"normalise must be true or false, got {self.normalise!r}.")
        if isinstance(self.normalise_panels, bool) or not isinstance(self.normalise_panels, (int, np.integer)) or self.normalise_panels < 50:
            raise EstimationError(f"normalise_panels must be an integer of at least 50, got {self.normalise_panels!r}.")


def gaussian_loglik(sims: np.ndarray, observed: np.ndarray, shrinkage: float = 0.0, unbiased: bool = True) -> np.ndarray | float:
    """Log synthetic likelihood of ``observed`` given simulated statistics.

    Parameters
    ----------
    sims : ndarray, shape (S, n_stats) or (K, S, n_stats)
        Simulated statistics at one parameter vector, or at each of ``K``.
    observed : ndarray, shape (n_stats,)
    shrinkage : float
        Shrink the covariance towards its diagonal (then the plug-in estimator is used).
    unbiased : bool
        Use the unbiased estimator of the Gaussian density (Ghurye & Olkin 1969; the "uBSL" of
        Price et al. 2018), so that the sampler targets the Gaussian synthetic-likelihood
        posterior whatever ``S``. The plug-in estimator ``N(observed; mean, cov)`` is biased
        upwards in precision (by about ``(S - 1) / (S - n_stats - 2)``) and gives too narrow
        posteriors when ``S`` is not much larger than the number of statistics. Needs
        ``S > n_stats + 3``.

    Returns
    -------
    float or ndarray, shape (K,)
        The log density estimate up to a constant that depends only on ``S`` and ``n_stats``;
        ``-inf`` when a simulated statistic is not finite, the covariance is singular, or (unbiased
        estimator) the observed statistics lie outside the simulated cloud's ellipsoid.
    """
    sims = np.asarray(sims, dtype=float)
    single = sims.ndim == 2
    batch = sims[None] if single else sims
    k, n, d = batch.shape
    out = np.full(k, -math.inf)
    ok = np.all(np.isfinite(batch), axis=(1, 2))
    if ok.any():
        good = batch[ok]
        mu = good.mean(axis=1)
        centred = good - mu[:, None, :]
        scatter = np.einsum("ksi,ksj->kij", centred, centred)  # (S - 1) * cov
        use_unbiased = unbiased and not shrinkage
        if not use_unbiased:
            scatter /= n - 1
            if shrinkage:
                diag = np.einsum("kii->ki", scatter)
                scatter = (1.0 - shrinkage) * scatter
                scatter[:, np.arange(d), np.arange(d)] += shrinkage * diag
        values = np.full(good.shape[0], -math.inf)
        for j, (m, x) in enumerate(zip(scatter, observed - mu)):
            try:
                root = np.linalg.cholesky(m)
            except np.linalg.LinAlgError:
                continue
            z = np.linalg.solve(root, x)
            half_logdet = float(np.log(np.diag(root)).sum())
            if not use_unbiased:
                values[j] = -0.5 * float(z @ z) - half_logdet
                continue
            # Ghurye-Olkin with the matrix determinant lemma: log p = const - log|M| / 2
            # + (S - d - 3) / 2 * log(1 - x' M^-1 x / (1 - 1/S)), M = scatter.
            q = float(z @ z) / (1.0 - 1.0 / n)
            if q < 1.0:
                values[j] = -half_logdet + 0.5 * (n - d - 3) * math.log1p(-q)
        out[ok] = values
    return float(out[0]) if single else out


class SyntheticLikelihood:
    """The unnormalised log posterior on the unconstrained scale, for many points at once.

    ``log p(u) = log SL(psi(u)) + log prior(psi(u)) + log |d psi / d u|``.

    Parameters
    ----------
    simulator : Simulator
        On the observed panel's design, with the statistics.
    observed : ndarray, shape (n_stats,)
    priors : Priors
    n_sims : int
        Panels per point.
    shrinkage : float
    unbiased : bool
    """

    def __init__(
        self, simulator: Simulator, observed: np.ndarray, priors: Priors, n_sims: int, shrinkage: float = 0.0, unbiased: bool = True,
        transform=None,
    ):
        self.simulator = simulator
        self.transform = transform
        self.observed = observed if transform is None else transform(observed)
        self.priors = priors
        self.params = simulator.model.params
        self.n_sims = int(n_sims)
        self.shrinkage = float(shrinkage)
        self.unbiased = bool(unbiased)

    def log_prior(self, u: np.ndarray) -> np.ndarray:
        """Log prior on the unconstrained scale at rows ``u`` (K, n_params); shape (K,)."""
        return self.priors.logpdf_free(u)

    def loglik(self, u: np.ndarray, seed: int, first_sim: int) -> np.ndarray:
        """Log synthetic likelihood at rows ``u`` (K, n_params); row ``k`` uses the simulations
        ``first_sim + k * n_sims ...`` of ``seed``. Returns shape (K,)."""
        psi = self.params.to_natural(np.atleast_2d(u))
        sims = self.simulator.statistics_batch(psi, self.n_sims, seed, first_sim, failures="nan")
        if self.transform is not None:
            sims = self.transform(sims)
        return np.atleast_1d(gaussian_loglik(sims, self.observed, self.shrinkage, self.unbiased))


def choose_n_sims(target: SyntheticLikelihood, points: np.ndarray, seed: int, sd_target: float, reps: int = 20) -> tuple[int, float, int]:
    """Panels per proposal for the sampler.

    The smallest ``S`` among ``n_stats + 6`` times 1, 2, 4, ... (at most 640) for which the log
    synthetic likelihood, evaluated ``reps`` times with independent keys at each of ``points``
    (the centre first, then the chains' starts, about one posterior sd away), varies by at most
    ``sd_target`` at the centre and at the median point, counting a point where an estimate was
    zero as infinitely variable: a noisy estimate makes chains stick where it happened to be high.

    Returns
    -------
    (int, float, int)
        ``S``, the median standard deviation over the points, and the panels simulated.
    """
    points = np.atleast_2d(np.asarray(points, dtype=float))
    n = target.observed.size + 6
    used = 0
    while True:
        target.n_sims = n
        values = target.loglik(np.repeat(points, reps, axis=0), seed, 0).reshape(points.shape[0], reps)
        used += points.shape[0] * reps * n
        with np.errstate(invalid="ignore"):
            sds = np.where(np.all(np.isfinite(values), axis=1), np.std(values, axis=1, ddof=1), math.inf)
        sd = float(np.median(sds))
        if (sds[0] <= sd_target and sd <= sd_target) or n >= 640:
            return n, sd, used
        n = min(2 * n, 640)


def _chain_state(u0: np.ndarray, prop_cov: np.ndarray) -> dict:
    d = u0.size
    return {
        "t": 0, "u": u0.tolist(), "loglik": None, "logprior": None,
        "log_scale": math.log(2.38 / math.sqrt(d)), "prop_cov": np.asarray(prop_cov).tolist(),
        "n_adapt": 0, "mean": np.zeros(d).tolist(), "m2": np.zeros((d, d)).tolist(),
        "accepted": 0, "accepted_warmup": 0,
    }


def run_chains(
    target: SyntheticLikelihood,
    chains: list[int],
    n_chains: int,
    starts: np.ndarray,
    prop_cov: np.ndarray,
    warmup: int,
    draws: int,
    seed: int,
    block: int,
    target_acceptance: float,
    independence: float = 0.5,
    records: dict[int, list[dict]] | None = None,
    store=None,
    progress=None,
) -> list[dict]:
    """Run (or finish) some chains in lockstep; return their draws and statistics.

    All chains advance together, so each iteration simulates every chain's proposal in one
    launch of the engine. Chain ``c``'s proposals come from a generator seeded by
    ``(seed, c, block)`` and its simulations at iteration ``t`` from the keys
    ``((t + 1) * n_chains + c) * S ...``: a chain's draws do not depend on which chains run with
    it, in which process, or whether it was resumed.

    Parameters
    ----------
    target : SyntheticLikelihood
    chains : list of int
        Consecutive chain numbers to run here.
    n_chains : int
        Number of chains of the whole run (fixes the simulation keys).
    starts : ndarray, shape (n_chains, n_params)
        Starts of all chains on the unconstrained scale.
    prop_cov : ndarray, shape (n_params, n_params)
        Initial proposal shape (scaled by ``2.38^2 / n_params``), e.g. the sandwich covariance of
        a preliminary fit.
    warmup, draws : int
        Adaptive warm-up iterations (discarded) and kept iterations per chain.
    seed : int
    block : int
        Iterations per checkpoint record.
    target_acceptance : float
    independence : float
        Probability, after warm-up, of an independence proposal from a Student t (5 degrees of
        freedom) with the chain's warm-up mean and covariance instead of a random-walk step.
    records : dict, optional
        ``{chain: [records]}`` checkpointed so far (resume).
    store : ReplicationStore, optional
        Where each chain's record is appended after every block.
    progress : callable, optional
        Called with the number of chain iterations just done.

    Returns
    -------
    list of dict
        Per chain: ``chain``, ``draws`` (draws, n_params) natural scale, ``log_posterior``
        (draws,), ``acceptance`` (after warm-up), ``acceptance_warmup``, ``n_simulations``.
    """
    chains = list(chains)
    if chains != list(range(chains[0], chains[0] + len(chains))):
        raise EstimationError("run_chains needs consecutive chain numbers.")
    sim_seed = derive_seed(seed, 31)
    n_sims = target.n_sims
    total = warmup + draws
    d = starts.shape[1]
    records = records or {}
    states, kept_draws, kept_lp = [], [], []
    for c in chains:
        rec = sorted(records.get(c, []), key=lambda r: r["block"])
        # Resume after the last of the consecutive blocks 0, 1, ..., k (a damaged record in the
        # middle means the blocks after it are recomputed).
        gap = next((k for k, r in enumerate(rec) if r["block"] != k), len(rec))
        rec = rec[:gap]
        kept_draws.append([x for r in rec for x in r["draws"]])
        kept_lp.append([x for r in rec for x in r["log_posterior"]])
        states.append(dict(rec[-1]["state"]) if rec else _chain_state(np.asarray(starts[c], dtype=float), prop_cov))
    m = len(chains)
    fresh = [i for i, st in enumerate(states) if st["loglik"] is None]
    if fresh:
        # Initial values use the keys of "iteration -1": (0 * n_chains + c) * S.
        u0 = np.array([states[i]["u"] for i in range(m)])
        lp0 = target.log_prior(u0)
        ll0 = target.loglik(np.where(np.isfinite(lp0)[:, None], u0, u0[np.argmax(lp0)]), sim_seed, chains[0] * n_sims)
        for i in fresh:
            states[i]["loglik"], states[i]["logprior"] = float(ll0[i]), float(lp0[i])
    for i, st in enumerate(states):
        psi = dict(zip(target.params.names, np.round(target.params.to_natural(np.asarray(st["u"])), 6)))
        if not math.isfinite(st["logprior"]):
            raise EstimationError(
                f"Chain {chains[i]}: the prior density (with the Jacobian of the transforms) is zero at "
                f"the start {psi}; check the priors."
            )
        if not math.isfinite(st["loglik"]):
            raise EstimationError(
                f"Chain {chains[i]}: the synthetic likelihood is zero at the start {psi}: the simulator "
                "gives non-finite statistics there, or the observed statistics lie far outside the "
                "simulated ones; check the model and the statistics at these values."
            )

    u = np.array([st["u"] for st in states], dtype=float)
    ll = np.array([st["loglik"] for st in states])
    lp = np.array([st["logprior"] for st in states])
    log_scale = np.array([st["log_scale"] for st in states])
    base_cov = np.asarray(states[0]["prop_cov"], dtype=float)
    n_adapt = np.array([st["n_adapt"] for st in states])
    mean = np.array([st["mean"] for st in states], dtype=float).reshape(m, d)
    m2 = np.array([st["m2"] for st in states], dtype=float).reshape(m, d, d)
    accepted = np.array([st["accepted"] for st in states])
    accepted_warmup = np.array([st["accepted_warmup"] for st in states])
    t_chain = np.array([st["t"] for st in states])

    t = int(t_chain.min())
    while t < total:
        b = t // block
        stop = min(total, (b + 1) * block)
        rngs = [np.random.default_rng(derive_seed(seed, 30, c, b)) for c in chains]
        roots = [_root(base_cov, mean[i], m2[i], n_adapt[i], d) for i in range(m)]
        block_draws = [[] for _ in range(m)]
        block_lp = [[] for _ in range(m)]
        t_before = t_chain.copy()
        while t < stop:
            # A chain resumed from a later block than the others waits for them.
            active = t_chain == t
            proposal = u.copy()
            log_u = np.zeros(m)
            log_q = np.zeros(m)  # log q(current) - log q(proposal), for independence proposals
            for i in np.flatnonzero(active):
                if t >= warmup and n_adapt[i] >= _MIN_ADAPT and independence and rngs[i].uniform() < independence:
                    # After warm-up, a share of the proposals are independent draws from a
                    # Student t fitted to the warm-up states: near-Gaussian posteriors are then
                    # explored in a few steps instead of a random walk's many.
                    z = rngs[i].standard_normal(d)
                    w = rngs[i].chisquare(_T_DF) / _T_DF
                    proposal[i] = mean[i] + (roots[i] @ z) / math.sqrt(w)
                    log_q[i] = _t_logpdf(u[i], mean[i], roots[i]) - _t_logpdf(proposal[i], mean[i], roots[i])
                else:
                    proposal[i] = u[i] + math.exp(log_scale[i]) * (roots[i] @ rngs[i].standard_normal(d))
                log_u[i] = math.log1p(-rngs[i].uniform())  # log of a uniform on (0, 1]
            lp_new = np.where(active, target.log_prior(proposal), -math.inf)
            ll_new = np.full(m, -math.inf)
            simulate = np.isfinite(lp_new)
            if simulate.any():
                # Every chain's row is simulated (rows not needed repeat the current state) so
                # that the keys of a chain do not depend on the others.
                rows = np.where(simulate[:, None], proposal, u)
                ll_all = target.loglik(rows, sim_seed, ((t + 1) * n_chains + chains[0]) * n_sims)
                ll_new[simulate] = ll_all[simulate]
            accept = active & np.isfinite(ll_new) & (log_u < ll_new + lp_new - ll - lp + log_q)
            u[accept], ll[accept], lp[accept] = proposal[accept], ll_new[accept], lp_new[accept]
            for i in np.flatnonzero(active):
                if t < warmup:
                    accepted_warmup[i] += accept[i]
                    # Adapt the scale (Robbins-Monro) and the shape (running covariance of the
                    # warm-up states, Haario et al. 2001); both are frozen after warm-up so that
                    # the kept draws come from a fixed Markov kernel.
                    log_scale[i] += (t + 1) ** -_ADAPT_DECAY * (float(accept[i]) - target_acceptance)
                    n_adapt[i] += 1
                    delta = u[i] - mean[i]
                    mean[i] += delta / n_adapt[i]
                    m2[i] += np.outer(delta, u[i] - mean[i])
                    if (n_adapt[i] >= _MIN_ADAPT and n_adapt[i] % 50 == 0) or t == warmup - 1:
                        roots[i] = _root(base_cov, mean[i], m2[i], n_adapt[i], d)
                else:
                    accepted[i] += accept[i]
                    block_draws[i].append(target.params.to_natural(u[i]).tolist())
                    block_lp[i].append(float(ll[i] + lp[i]))
                t_chain[i] += 1
            t += 1
        for i, c in enumerate(chains):
            if t_chain[i] > t_before[i]:  # the chain advanced in this block
                state = {
                    "t": int(t_chain[i]), "u": u[i].tolist(), "loglik": float(ll[i]), "logprior": float(lp[i]),
                    "log_scale": float(log_scale[i]), "prop_cov": base_cov.tolist(), "n_adapt": int(n_adapt[i]),
                    "mean": mean[i].tolist(), "m2": m2[i].tolist(), "accepted": int(accepted[i]),
                    "accepted_warmup": int(accepted_warmup[i]),
                }
                kept_draws[i].extend(block_draws[i])
                kept_lp[i].extend(block_lp[i])
                if store is not None:
                    store.append({
                        "rep": c * 1_000_000 + b, "chain": c, "block": b, "state": state,
                        "draws": block_draws[i], "log_posterior": block_lp[i],
                    })
        if progress is not None:
            progress(int((t_chain - t_before).sum()))
    return [
        {
            "chain": c,
            "draws": np.array(kept_draws[i], dtype=float).reshape(draws, d),
            "log_posterior": np.array(kept_lp[i], dtype=float),
            "acceptance": int(accepted[i]) / max(draws, 1),
            "acceptance_warmup": int(accepted_warmup[i]) / max(warmup, 1),
            "n_simulations": (total + 1) * n_sims,
        }
        for i, c in enumerate(chains)
    ]


def _root(base_cov: np.ndarray, mean: np.ndarray, m2: np.ndarray, n_adapt: int, d: int) -> np.ndarray:
    """Cholesky factor of the proposal shape: the warm-up covariance once 100 states are in,
    the initial shape before (a small ridge keeps it positive definite)."""
    cov = m2 / (n_adapt - 1) if n_adapt >= _MIN_ADAPT else base_cov
    scale = np.sqrt(np.maximum(np.diag(cov), 1e-300))
    corr = cov / np.outer(scale, scale)
    try:
        return scale[:, None] * np.linalg.cholesky(corr + 1e-6 * np.eye(d))
    except np.linalg.LinAlgError:
        return np.diag(scale)
