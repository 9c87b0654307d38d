"""Recovery of the log-normal/exponential model.

Usage: python benchmarks/bench_recovery_lognormal.py [--reps 100] [--json]

Unit rates theta_i = exp(m + s z_i) (m=0, s=0.5), exponential observations of rate theta_i,
100 units x 50 observations, S=10, optimal weighting; reports per parameter bias, RMSE and the
coverage of 95% intervals, the convergence rate and the median fit time.
"""

from __future__ import annotations

import argparse

import numpy as np

import simfit
from _recovery import print_json, run_fits, simulate_datasets, summarise
from simfit.models import lognormal_exponential

TRUTH = {"m": 0.0, "s": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = lognormal_exponential.model()
    stats = lognormal_exponential.statistics()
    datasets = simulate_datasets(model, simfit.Panel.balanced(100, 50), TRUTH, args.reps, args.seed)
    run_fits(model, datasets[:1], stats, args.seed)  # compile / load cache
    rows = run_fits(model, datasets, stats, args.seed, n_sims=10)
    results = summarise(rows, list(model.param_names), TRUTH)
    p = np.array([r["jtest_p"] for r in rows])
    results["jtest_reject_rate"] = float(np.mean(p < 0.05))
    results["convergence_rate"] = float(np.mean([r["converged"] for r in rows]))
    results["median_fit_s"] = float(np.median([r["seconds"] for r in rows]))
    results["reps"] = args.reps
    print_json(results, args.json)


if __name__ == "__main__":
    main()
