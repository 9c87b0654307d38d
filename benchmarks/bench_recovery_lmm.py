"""Recovery of the linear random-intercept model, against maximum likelihood.

Usage: python benchmarks/bench_recovery_lmm.py [--reps 200] [--json]

Fits y_ij = mu + b_i + e_ij (mu=1, tau=0.5, sigma=1; 50 units x 20 observations) on seeded
datasets with simfit (S=10, optimal weighting) and with statsmodels MixedLM by maximum likelihood
on the same datasets, and reports per parameter bias, RMSE, RMSE relative to the MLE's and the
coverage of 95% intervals, the J test's rejection rate at 5% and median fit times. Needs the
``bench`` extra (statsmodels).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import simfit
from _recovery import print_json, run_fits, simulate_datasets, summarise
from simfit.models import random_intercept

TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


def mle_fit(data):
    import statsmodels.formula.api as smf

    frame = data.to_frame()
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = smf.mixedlm("y ~ 1", frame, groups=frame["unit"]).fit(reml=False)
    seconds = time.perf_counter() - t
    return np.array([res.fe_params.iloc[0], np.sqrt(res.cov_re.iloc[0, 0]), np.sqrt(res.scale)]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = random_intercept.model()
    names = list(model.param_names)
    datasets = simulate_datasets(model, simfit.Panel.balanced(50, 20), TRUTH, args.reps, args.seed)
    run_fits(model, datasets[:1], random_intercept.statistics(), args.seed)  # compile / load cache
    rows = run_fits(model, datasets, random_intercept.statistics(), args.seed, n_sims=10)
    results = summarise(rows, names, TRUTH)
    mle = [mle_fit(d) for d in datasets]
    mle_est = np.array([m[0] for m in mle])
    true = np.array([TRUTH[n] for n in names])
    for j, n in enumerate(names):
        mle_rmse = float(np.sqrt(np.mean((mle_est[:, j] - true[j]) ** 2)))
        results[n]["mle_rmse"] = mle_rmse
        results[n]["rmse_ratio_vs_mle"] = results[n]["rmse"] / mle_rmse
    p = np.array([r["jtest_p"] for r in rows])
    results["jtest_reject_rate"] = float(np.mean(p < 0.05))
    results["convergence_rate"] = float(np.mean([r["converged"] for r in rows]))
    results["median_fit_s"] = float(np.median([r["seconds"] for r in rows]))
    results["mle_median_fit_s"] = float(np.median([m[1] for m in mle]))
    results["reps"] = args.reps
    print_json(results, args.json)


if __name__ == "__main__":
    main()
