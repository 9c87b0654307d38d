"""Robust starts and honest convergence: PK fits from random starts, and a chaotic simulator.

Usage: python benchmarks/bench_starts.py [--starts 20] [--chaotic 20] [--jobs 2] [--json]

1. The PK zoo scenario's data (``scenarios/data/pk_example.csv``) fitted from ``--starts`` starts
   drawn uniformly in the default search box (``simfit.starts.search_box`` of width 3 around the
   model's declared starts, wider than the scenario's own), with the scenario's fit (global phase, then local optimisations from the best points)
   and, for comparison, with the local optimizer from the start alone (``global_points=0``).
   ``share_at_best``: the fraction of fits that end within 0.1 standard errors (every parameter,
   unconstrained scale) of the solution with the smallest objective.
2. The logistic-map population (``simfit.models.logistic_map``) in its chaotic regime
   (``r_mu = 3.8``), ``--chaotic`` datasets. The objective is noise at every finite-difference
   step there, but smooth on average over a standard error: the fit's noise-aware local phase (a
   quadratic response surface of the moments) may report convergence within the noise.
   ``false_convergence`` is the share of fits that report convergence while wrong: at their
   start, or with the truth outside the default 99% interval of some parameter or more than 5
   standard errors away. ``chaotic_converged`` and ``chaotic_coverage95`` (per parameter, over
   every fit) say how often the fits converge and how often their default 95% intervals hold
   the truth. ``converged_elsewhere`` is the share that converge to a smooth local optimum in the
   non-chaotic regime (``r_mu < 3.57``, a large ``sigma`` standing in for the chaos), with the
   share of those the J test rejects at 5%. In the smooth regime (``r_mu = 2.7``),
   ``smooth_converged`` is the share of fits that converge.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import simfit
from simfit.errors import SimfitError
from simfit.estimation import FitOptions, derive_seed, fit
from simfit.models import logistic_map
from simfit.parallel import run_parallel
from simfit.scenario import load_scenario, read_data
from simfit.starts import search_box

ROOT = Path(__file__).resolve().parent.parent


def pk_problem():
    sc = load_scenario(ROOT / "scenarios" / "pk.toml")
    model, stats = sc.build()
    data = read_data(sc.resolve(sc.design.data), sc.data, sc.path)
    return sc, model, stats, data


def pk_fit(start, global_phase: bool) -> dict:
    sc, model, stats, data = pk_problem()
    options = {**sc.fit_table, "bootstrap": 0}
    if not global_phase:
        options.update(global_points=0, n_starts=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        try:
            res = fit(model, data, stats, start=dict(zip(model.param_names, start)), seed=7, **options)
        except SimfitError as exc:  # a fit that stops with an error ends nowhere: counted, not at the best
            return {"free": [np.nan] * len(start), "se_free": [np.nan] * len(start), "objective": np.inf,
                    "converged": False, "seconds": time.perf_counter() - t, "error": str(exc)[:300]}
    return {"free": res.free.tolist(), "se_free": np.sqrt(np.diag(res.cov_free)).tolist(), "objective": float(res.steps[-1].result.fun),
            "converged": res.converged, "seconds": time.perf_counter() - t}


def share_at_best(rows) -> float:
    best = min(rows, key=lambda r: r["objective"])
    ref, se = np.array(best["free"]), np.array(best["se_free"])
    at = [bool(np.all(np.abs(np.array(r["free"]) - ref) <= 0.1 * se)) for r in rows]
    return float(np.mean(at))


def chaotic_fit(r_mu: float, rep: int, seed: int) -> dict:
    model, stats = logistic_map.model(), logistic_map.statistics()
    truth = {"r_mu": r_mu, "r_sd": 0.05, "sigma": 0.05}
    data = simfit.Simulator(model, simfit.Panel.balanced(50, 30)).simulate(truth, seed=derive_seed(seed, 400, rep)).panel(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit(model, data, stats, seed=derive_seed(seed, 401, rep), bootstrap=0)
    moved = bool(np.max(np.abs(res.free - model.params.to_free(model.params.start))) > 1e-6)
    ci95, ci99, se = res.conf_int(0.05), res.conf_int(0.01), res.se()
    covered = {n: bool(ci95.loc[n, "lower"] <= v <= ci95.loc[n, "upper"]) for n, v in truth.items()}
    wrong = any(not (ci99.loc[n, "lower"] <= v <= ci99.loc[n, "upper"]) or (np.isfinite(se[n]) and abs(res.params[n] - v) > 5 * se[n])
                for n, v in truth.items())
    return {"converged": res.converged, "moved": moved, "reasons": list(res.convergence.reasons), "wrong": wrong,
            "covered": covered, "r_mu": float(res.params["r_mu"]), "jtest_p": float(res.jtest.pvalue)}


def _share(flags) -> float | None:
    return float(np.mean(flags)) if len(flags) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--chaotic", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    sc, model, _, _ = pk_problem()
    params = model.params
    # Starts from the default box (width 3 on the unconstrained scale), wider than the scenario's.
    lower, upper = search_box(params, None, FitOptions().search_width)
    rng = np.random.default_rng(args.seed)
    starts = [params.to_natural(rng.uniform(lower, upper)) for _ in range(args.starts)]
    pk_fit(starts[0], True)  # compile / load the cache
    default = run_parallel(pk_fit, [(s, True) for s in starts], n_jobs=args.jobs)
    local = run_parallel(pk_fit, [(s, False) for s in starts], n_jobs=args.jobs)
    chaotic = run_parallel(chaotic_fit, [(3.8, r, args.seed) for r in range(args.chaotic)], n_jobs=args.jobs)
    smooth = run_parallel(chaotic_fit, [(2.7, r, args.seed) for r in range(args.chaotic)], n_jobs=args.jobs)
    results = {
        "share_at_best": share_at_best(default),
        "share_at_best_local_only": share_at_best(local),
        "pk_converged": float(np.mean([r["converged"] for r in default])),
        "pk_errors": sum("error" in r for r in default),
        "pk_errors_local_only": sum("error" in r for r in local),
        "pk_median_fit_s": float(np.median([r["seconds"] for r in default])),
        "pk_median_fit_s_local_only": float(np.median([r["seconds"] for r in local])),
        "false_convergence": float(np.mean([r["converged"] and (not r["moved"] or r["wrong"]) for r in chaotic])),
        "chaotic_converged": float(np.mean([r["converged"] for r in chaotic])),
        "chaotic_coverage95": {n: float(np.mean([r["covered"][n] for r in chaotic])) for n in chaotic[0]["covered"]},
        "converged_elsewhere": float(np.mean([r["converged"] and r["moved"] and r["r_mu"] <= 3.57 for r in chaotic])),
        "converged_elsewhere_jtest_rejects": _share([r["jtest_p"] < 0.05 for r in chaotic if r["converged"] and r["r_mu"] <= 3.57]),
        "chaotic_flagged_noisy": float(np.mean([any("noisy" in x for x in r["reasons"]) for r in chaotic])),
        "smooth_converged": float(np.mean([r["converged"] for r in smooth])),
        "starts": args.starts,
        "chaotic_datasets": args.chaotic,
    }
    results["targets_met"] = results["share_at_best"] >= 0.95 and results["false_convergence"] == 0.0
    results["wall_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(results))
    else:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
