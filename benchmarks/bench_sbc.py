"""Simulation-based calibration of the samplers: BSL, and ABC-SMC on a small panel.

Usage: python benchmarks/bench_sbc.py [--datasets 200] [--units 30] [--obs 20] [--draws 800]
       [--n-sims 24] [--jobs 1] [--rows rows.json] [--json]
       python benchmarks/bench_sbc.py --method abc-smc [--datasets 200] [--particles 1000] [--jobs 1] [--json]

``--method abc-smc``: ABC-SMC (``simfit.sample(method="abc-smc")``, default options) on the
meta-analysis model of the zoo with the eight schools' standard errors: eight units with one
observation each and a known noise per unit, the observations themselves as statistics. Priors
mu ~ Normal(0, 10), tau ~ HalfNormal(10). The rank of the truth is its weighted posterior CDF
among the final particles, scaled to 0..L; intervals are weighted quantiles. The same data sets
are also sampled with every parameter regression-adjusted (``adjust_min_gain=0`` and
``adjust_full_gain=0``, the earlier default) for comparison (``coverage90_adjust_all``). Target: every parameter's 90% coverage in
[0.85, 0.95].

The rest of this docstring is about the BSL check (the default).

Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018): for each data
set k, draw the truth (m, s) from the prior, simulate a panel of the log-normal/exponential model
(unit rates exp(m + s z_i), exponential observations) at it, and sample the posterior with
``simfit.sample(method="bsl")``. If the sampler draws from the posterior, the rank of the truth
among L independent posterior draws is uniform on {0, ..., L} and central posterior intervals
cover the truth at their nominal rate, averaged over the prior.

Priors (independent): m ~ Normal(0, 0.5) and s ~ LogNormal(log_mean=-0.9, log_sd=0.35), i.e.
log s ~ Normal(-0.9, 0.35^2), which puts 95% of s in (0.20, 0.80). Both have the parameter's whole
range as support, so that a preliminary estimate of any simulated data set lies inside it.

Statistics: mean and sd across units of the log unit means, with which the Gaussian synthetic
likelihood is close to the exact likelihood of this model.

Per data set: 2 chains of ``--draws`` kept draws (warm-up ``draws // 2``) with ``--n-sims``
panels per proposal (24 by default; ``"auto"``, the library's default, chooses 8 to 512 per data
set and gives a similar calibration with a few stuck chains at the smallest S, see
``benchmarks/results/sbc.md``). If the smallest effective sample size
(bulk and tail, over the parameters) is below L = 99, the chains are rerun with twice as many
draws (at most twice). Each chain is thinned by (total draws / ESS) and L draws are taken at equal
spacing from the thinned draws for the rank statistic (from all draws, and counted, if the ESS
stays below L); the 50% and 90% central intervals use all draws. A data set whose sampler stops
with an error is run again with a fresh sampler seed (the data and the target posterior are
unchanged), and counted.

Reports per parameter the chi-square p-value of the rank histogram (10 bins of 10 ranks) against
uniformity, the coverage of the 50% and 90% intervals with binomial standard errors at the
nominal rate, and the rank histograms. Targets: every data set sampled, p > 0.01 and each
coverage within 0.05 of nominal. Everything is seeded from ``--seed`` and the data-set index; the
results do not depend on ``--jobs``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
import warnings

import numpy as np
from scipy import stats as sps

import simfit
from simfit.bayes.priors import Priors
from simfit.errors import EstimationError
from simfit.estimation import derive_seed
from simfit.models import lognormal_exponential
from simfit.parallel import run_parallel

PRIOR = {
    "m": {"dist": "normal", "mean": 0.0, "sd": 0.5},
    "s": {"dist": "lognormal", "log_mean": -0.9, "log_sd": 0.35},
}
N_RANKS = 99  # L: posterior draws per data set for the rank statistic
N_BINS = 10  # rank histogram bins ((L + 1) / N_BINS ranks each)
CHAINS = 2
MAX_RUNS = 3  # draws, 2 x draws, 4 x draws
MAX_ATTEMPTS = 5  # sampler seeds tried per data set
TOLERANCE = 0.05  # coverage target: within this of nominal (inclusive)
P_MIN = 0.01  # rank uniformity target: chi-square p-value above this
_CACHE: dict = {}


def _setup():
    """The model and the statistics (built once per process)."""
    if not _CACHE:
        _CACHE["model"] = lognormal_exponential.model()
        _CACHE["statistics"] = simfit.statistics.Statistics(
            unit=[simfit.statistics.log_mean()], across=["mean", "sd"]
        )
    return _CACHE["model"], _CACHE["statistics"]


def draw_truths(n: int, seed: int) -> np.ndarray:
    """One prior draw per data set, each from its own generator, shape (n, n_params)."""
    model, _ = _setup()
    priors = Priors(model.params, PRIOR)
    return np.array([priors.rvs(1, np.random.default_rng(derive_seed(seed, 1, k)))[0] for k in range(n)])


def thin_for_ranks(draws: np.ndarray, ess: float, n_ranks: int) -> np.ndarray:
    """``n_ranks`` roughly independent draws: every chain thinned by (total draws / ESS), then
    ``n_ranks`` taken at equal spacing (fewer than ``n_ranks`` thinned draws: equal spacing over
    all draws). ``draws`` has shape (chains, draws, params)."""
    n_chains, n_draws, _ = draws.shape
    step = max(1, int(math.floor(n_chains * n_draws / max(ess, 1.0))))
    thinned = np.concatenate([draws[c, ::step] for c in range(n_chains)])
    if thinned.shape[0] < n_ranks:
        thinned = draws.reshape(-1, draws.shape[2])
    idx = np.round(np.linspace(0, thinned.shape[0] - 1, n_ranks)).astype(int)
    return thinned[idx]


def sbc_dataset(k: int, truth: np.ndarray, n_units: int, n_obs: int, seed: int, draws: int, n_sims) -> dict:
    """Simulate data set ``k`` at ``truth``, sample its posterior and return the rank of the truth
    and whether the central intervals cover it (one entry per parameter)."""
    model, statistics = _setup()
    names = list(model.param_names)
    data = simfit.simulate(
        model, simfit.Panel.balanced(n_units, n_obs), dict(zip(names, truth)), seed=derive_seed(seed, 2, k)
    ).panel(0)
    started = time.perf_counter()
    errors: list[str] = []
    post = None
    for attempt in range(MAX_ATTEMPTS):
        n_draws = draws
        try:
            for run in range(MAX_RUNS):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    post = simfit.sample(
                        model, data, statistics, PRIOR, method="bsl", chains=CHAINS, draws=n_draws,
                        seed=derive_seed(seed, 3, k, attempt), n_sims=n_sims,
                    )
                ess = float(min(post.ess("bulk").min(), post.ess("tail").min()))
                if ess >= N_RANKS or run == MAX_RUNS - 1:
                    break
                n_draws *= 2
        except EstimationError as exc:
            errors.append(str(exc))
            post = None
            continue
        break
    seconds = time.perf_counter() - started
    if post is None:
        return {"k": k, "failed": True, "errors": errors, "seconds": seconds}
    ranked = thin_for_ranks(post.draws, ess, N_RANKS)
    i50, i90 = post.interval(0.5), post.interval(0.1)
    p = range(len(names))
    return {
        "k": k,
        "failed": False,
        "errors": errors,
        "truth": truth.tolist(),
        "rank": [int(np.sum(ranked[:, j] < truth[j])) for j in p],
        "cover50": [bool(i50["lower"].iloc[j] <= truth[j] <= i50["upper"].iloc[j]) for j in p],
        "cover90": [bool(i90["lower"].iloc[j] <= truth[j] <= i90["upper"].iloc[j]) for j in p],
        "ess": ess,
        "draws": n_draws,
        "rhat": float(post.rhat().max()),
        "acceptance": float(post.info["acceptance"]),
        "n_sims": int(post.info["panels_per_proposal"]),
        "seconds": seconds,
    }


ABC_PRIOR = {"mu": {"dist": "normal", "mean": 0.0, "sd": 10.0}, "tau": {"dist": "halfnormal", "scale": 10.0}}
ABC_COVERAGE90 = (0.85, 0.95)


def _abc_setup():
    from simfit.models import meta_analysis

    if "abc" not in _CACHE:
        design = meta_analysis.eight_schools().design()
        _CACHE["abc"] = (meta_analysis.model(), meta_analysis.statistics(), design)
    return _CACHE["abc"]


def abc_truths(n: int, seed: int) -> np.ndarray:
    model, _, _ = _abc_setup()
    priors = Priors(model.params, ABC_PRIOR)
    return np.array([priors.rvs(1, np.random.default_rng(derive_seed(seed, 11, k)))[0] for k in range(n)])


def _weighted_checks(post, truth: np.ndarray) -> dict:
    flat = post.draws.reshape(-1, post.draws.shape[2])
    w = post.weights.reshape(-1)
    below = (w[:, None] * (flat < truth[None, :])).sum(axis=0)  # posterior CDF at the truth
    i50, i90 = post.interval(0.5), post.interval(0.1)
    p = range(truth.size)
    return {
        "rank": [int(min(math.floor(b * (N_RANKS + 1)), N_RANKS)) for b in below],
        "cover50": [bool(i50["lower"].iloc[j] <= truth[j] <= i50["upper"].iloc[j]) for j in p],
        "cover90": [bool(i90["lower"].iloc[j] <= truth[j] <= i90["upper"].iloc[j]) for j in p],
    }


def abc_dataset(k: int, truth: np.ndarray, seed: int, particles: int) -> dict:
    """ABC-SMC on data set ``k`` (default options, and with every parameter adjusted)."""
    model, statistics, design = _abc_setup()
    names = list(model.param_names)
    data = simfit.simulate(model, design, dict(zip(names, truth)), seed=derive_seed(seed, 12, k)).panel(0)
    started = time.perf_counter()
    out = {"k": k, "failed": False, "errors": [], "truth": truth.tolist()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = simfit.sample(model, data, statistics, ABC_PRIOR, method="abc-smc", n_particles=particles, seed=derive_seed(seed, 13, k))
            everything = simfit.sample(model, data, statistics, ABC_PRIOR, method="abc-smc", n_particles=particles,
                                       seed=derive_seed(seed, 13, k), adjust_min_gain=0.0, adjust_full_gain=0.0)
    except EstimationError as exc:
        return {**out, "failed": True, "errors": [str(exc)], "seconds": time.perf_counter() - started}
    out.update(_weighted_checks(post, truth))
    out["cover90_adjust_all"] = _weighted_checks(everything, truth)["cover90"]
    out["n_simulations"] = int(post.n_simulations)
    out["adjusted"] = post.info["regression_adjustment"]
    out["seconds"] = time.perf_counter() - started
    return out


def _calibration(rows: list[dict], names: list[str]) -> tuple[list[dict], dict]:
    """The data sets sampled, and per parameter the rank histogram, its chi-square p-value and the
    coverage of the 50% and 90% intervals (with their binomial standard errors)."""
    ok = [r for r in rows if not r["failed"]]
    n = len(ok)
    ranks = np.array([r["rank"] for r in ok])
    per_bin = (N_RANKS + 1) // N_BINS
    out: dict = {"sbc_pvalue": {}, "coverage50": {}, "coverage90": {}, "rank_histogram": {}}
    for j, name in enumerate(names):
        counts = np.bincount(ranks[:, j] // per_bin, minlength=N_BINS)
        out["rank_histogram"][name] = counts.tolist()
        out["sbc_pvalue"][name] = float(sps.chisquare(counts).pvalue)
        out["coverage50"][name] = float(np.mean([r["cover50"][j] for r in ok]))
        out["coverage90"][name] = float(np.mean([r["cover90"][j] for r in ok]))
    out["coverage50_se"] = math.sqrt(0.5 * 0.5 / n)
    out["coverage90_se"] = math.sqrt(0.9 * 0.1 / n)
    out["datasets"] = n
    out["failed"] = len(rows) - n
    return ok, out


def summarise_abc(rows: list[dict], names: list[str]) -> dict:
    ok, out = _calibration(rows, names)
    out["coverage90_adjust_all"] = {
        name: float(np.mean([r["cover90_adjust_all"][j] for r in ok])) for j, name in enumerate(names)
    }
    out["n_simulations_median"] = float(np.median([r["n_simulations"] for r in ok]))
    out["tau_adjusted_share"] = float(np.mean(["tau adjusted" in r["adjusted"] for r in ok]))
    out["mu_adjusted_share"] = float(np.mean(["mu adjusted" in r["adjusted"] for r in ok]))
    lo, hi = ABC_COVERAGE90
    out["targets_met"] = bool(out["failed"] == 0 and all(lo <= c <= hi for c in out["coverage90"].values()))
    return out


def main_abc(args) -> None:
    model, _, _ = _abc_setup()
    names = list(model.param_names)
    started = time.perf_counter()
    truths = abc_truths(args.datasets, args.seed)
    rows = run_parallel(abc_dataset, [(k, truths[k], args.seed, args.particles) for k in range(args.datasets)], n_jobs=args.jobs)
    res = summarise_abc(rows, names)
    res["wall_s"] = round(time.perf_counter() - started, 1)
    res["settings"] = {"model": "meta_analysis (eight schools' standard errors)", "particles": args.particles,
                       "priors": ABC_PRIOR, "seed": args.seed, "jobs": args.jobs, "L": N_RANKS}
    print(f"SBC of ABC-SMC, meta-analysis model (8 units, one observation each): {res['datasets']} data sets")
    print(f"{'parameter':<10} {'SBC p':>8} {'coverage50':>16} {'coverage90':>16} {'cov90 adjust all':>17}")
    for name in names:
        print(
            f"{name:<10} {res['sbc_pvalue'][name]:>8.3f} {res['coverage50'][name]:>9.3f} ± {res['coverage50_se']:.3f} "
            f"{res['coverage90'][name]:>9.3f} ± {res['coverage90_se']:.3f} {res['coverage90_adjust_all'][name]:>17.3f}"
        )
    print(f"adjusted: mu in {res['mu_adjusted_share']:.0%} of data sets, tau in {res['tau_adjusted_share']:.0%}")
    print(f"wall time {res['wall_s']:.1f} s; targets met: {res['targets_met']}")
    if args.rows:
        with open(args.rows, "w") as fh:
            json.dump(rows, fh)
    if args.json:
        print(json.dumps(res))


def _within(coverage: float, nominal: float) -> bool:
    # Coverages are multiples of 1 / datasets: compare in whole data sets, free of rounding.
    return abs(coverage - nominal) <= TOLERANCE * (1 + 1e-9)


def summarise(rows: list[dict], names: list[str], draws: int) -> dict:
    ok, out = _calibration(rows, names)
    out["resampled"] = int(sum(len(r["errors"]) > 0 for r in ok))
    out["rerun_longer"] = int(sum(r["draws"] > draws for r in ok))
    out["ess_below_L"] = int(sum(r["ess"] < N_RANKS for r in ok))
    out["ess_median"] = float(np.median([r["ess"] for r in ok]))
    out["ess_min"] = float(np.min([r["ess"] for r in ok]))
    out["rhat_max"] = float(np.max([r["rhat"] for r in ok]))
    out["acceptance_median"] = float(np.median([r["acceptance"] for r in ok]))
    out["n_sims"] = sorted({r["n_sims"] for r in ok})
    out["targets_met"] = bool(
        out["failed"] == 0
        and all(p > P_MIN for p in out["sbc_pvalue"].values())
        and all(_within(c, 0.5) for c in out["coverage50"].values())
        and all(_within(c, 0.9) for c in out["coverage90"].values())
    )
    return out


def print_report(res: dict, names: list[str], args, rows: list[dict]) -> None:
    n = res["datasets"]
    print(
        f"SBC of BSL, log-normal/exponential model: {n} data sets of {args.units} units x "
        f"{args.obs} observations"
    )
    print(f"priors: {', '.join(f'{k} ~ {v}' for k, v in PRIOR.items())}")
    print(
        f"sampler: {CHAINS} chains x {args.draws} draws (warm-up {args.draws // 2}), n_sims={args.n_sims}; "
        f"L = {N_RANKS} thinned draws per data set, {N_BINS} rank bins"
    )
    print()
    print(f"{'parameter':<10} {'SBC p':>8} {'coverage50':>16} {'coverage90':>16}")
    for name in names:
        print(
            f"{name:<10} {res['sbc_pvalue'][name]:>8.3f} "
            f"{res['coverage50'][name]:>9.3f} ± {res['coverage50_se']:.3f} "
            f"{res['coverage90'][name]:>9.3f} ± {res['coverage90_se']:.3f}"
        )
    per_bin = (N_RANKS + 1) // N_BINS
    expected = n / N_BINS
    for name in names:
        print(f"\nrank histogram of {name} (ranks 0-{N_RANKS}; expected {expected:.1f} per bin):")
        for b, c in enumerate(res["rank_histogram"][name]):
            print(f"  {b * per_bin:>3}-{(b + 1) * per_bin - 1:<3} {c:>4}  {'#' * c}")
    print()
    print(
        f"effective sample size (min over bulk/tail and parameters): median {res['ess_median']:.0f}, "
        f"min {res['ess_min']:.0f} ({res['ess_below_L']} below L); max R-hat {res['rhat_max']:.3f}; "
        f"median acceptance {res['acceptance_median']:.3f}"
    )
    print(
        f"data sets rerun with more draws: {res['rerun_longer']}; resampled after a sampler error: "
        f"{res['resampled']}; failed: {res['failed']}"
    )
    errors = [e for r in rows for e in r["errors"]]
    if errors:
        kinds: dict[str, int] = {}
        for e in errors:
            key = re.sub(r"\{[^}]*\}", "{...}", re.sub(r"^Chain \d+: ", "", e)).split(";")[0][:100]
            kinds[key] = kinds.get(key, 0) + 1
        for key, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print(f"  sampler error x{count}: {key}")
    print(f"wall time {res['wall_s']:.1f} s")
    print(f"targets met: {res['targets_met']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--units", type=int, default=30)
    parser.add_argument("--obs", type=int, default=20)
    parser.add_argument("--draws", type=int, default=800, help="kept draws per chain (first run)")
    parser.add_argument("--n-sims", default="24", help="panels per proposal, an integer or 'auto'")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rows", help="write the per-data-set results to this JSON file")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--method", choices=("bsl", "abc-smc"), default="bsl")
    parser.add_argument("--particles", type=int, default=1000, help="ABC-SMC particles")
    args = parser.parse_args()
    if args.method == "abc-smc":
        main_abc(args)
        return
    n_sims = args.n_sims if args.n_sims == "auto" else int(args.n_sims)
    model, _ = _setup()
    names = list(model.param_names)
    started = time.perf_counter()
    truths = draw_truths(args.datasets, args.seed)
    tasks = [
        (k, truths[k], args.units, args.obs, args.seed, args.draws, n_sims) for k in range(args.datasets)
    ]
    rows = run_parallel(sbc_dataset, tasks, n_jobs=args.jobs)
    res = summarise(rows, names, args.draws)
    res["wall_s"] = round(time.perf_counter() - started, 1)
    res["settings"] = {
        "units": args.units, "obs": args.obs, "chains": CHAINS, "draws": args.draws, "n_sims": args.n_sims,
        "L": N_RANKS, "bins": N_BINS, "seed": args.seed, "jobs": args.jobs,
    }
    print_report(res, names, args, rows)
    if args.rows:
        with open(args.rows, "w") as fh:
            json.dump(rows, fh)
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
