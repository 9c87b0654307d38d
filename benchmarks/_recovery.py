"""Shared helpers of the recovery benchmarks: run seeded fits and summarise them."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np

import simfit
from simfit.estimation import derive_seed, fit


def simulate_datasets(model, design, truth, reps, seed):
    sim = simfit.Simulator(model, design)
    return [sim.simulate(truth, seed=derive_seed(seed, 100, r)).panel(0) for r in range(reps)]


def run_fits(model, datasets, statistics, seed, **options):
    """Fit every dataset with fresh common-random-number seeds; one row of results per fit."""
    names = list(model.param_names)
    rows = []
    for r, data in enumerate(datasets):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            res = fit(model, data, statistics, seed=derive_seed(seed, 200, r), **options)
            elapsed = time.perf_counter() - t
        ci = res.conf_int(0.05)
        rows.append(
            {
                "estimate": res.params[names].to_numpy(),
                "se": res.se()[names].to_numpy(),
                "lower": ci["lower"][names].to_numpy(),
                "upper": ci["upper"][names].to_numpy(),
                "converged": res.converged,
                "jtest_p": np.nan if res.jtest is None else res.jtest.pvalue,
                "seconds": elapsed,
            }
        )
    return rows


def summarise(rows, names, truth):
    est = np.array([r["estimate"] for r in rows])
    lower = np.array([r["lower"] for r in rows])
    upper = np.array([r["upper"] for r in rows])
    true = np.array([truth[n] for n in names])
    out = {}
    for j, n in enumerate(names):
        err = est[:, j] - true[j]
        out[n] = {
            "truth": float(true[j]),
            "bias": float(err.mean()),
            "rmse": float(np.sqrt(np.mean(err**2))),
            "coverage95": float(np.mean((lower[:, j] <= true[j]) & (true[j] <= upper[:, j]))),
        }
    return out


def print_json(results, as_json):
    for key, value in results.items():
        print(f"{key}: {value}")
    if as_json:
        print(json.dumps(results))
