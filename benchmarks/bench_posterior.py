"""Posterior accuracy and cost of the samplers (BSL, ABC-SMC, surrogate) against the exact posterior.

Usage: python benchmarks/bench_posterior.py [--seed 1] [--json]

Runs on one core (``NUMBA_NUM_THREADS=1`` unless the environment sets it), so ``cpu_s`` is each
method's CPU time and simulated panels (``n_simulations``) its cost in simulations.

The log-normal/exponential model (unit rates exp(m + s z_i), exponential observations), m = 0,
s = 0.5, 100 units x 50 observations, priors m ~ U(-2, 2) and s ~ U(0.01, 2). The unit likelihood
is a one-dimensional integral, so the exact posterior is computed by quadrature on a grid
(benchmarks/_exact_lognormal.py). Both samplers condition on the mean and standard deviation
across units of the log unit means.

For each method: posterior mean and sd of m and s, the ratio of each sd to the exact posterior
sd, |mean - exact mean| in exact sds, split R-hat (BSL, surrogate), effective sample size,
simulated panels, CPU and wall time (after one short warm-up run that loads the compiled engine
from the disk cache). Targets per method: sds within 25% of the exact ones, means within half an
exact sd, R-hat < 1.01, wall time under 5 s. ``best`` is the method with the fewest panels among
those with sd ratios in [0.9, 1.1] and mean errors <= 0.2 exact sds; target: at most 20,000
panels (``best_targets_met``).

An extra line reports BSL with the model's default statistics, which add the mean and sd of the
raw unit means: their skewed sampling distribution makes the Gaussian synthetic likelihood
overconfident (posterior sds below the exact ones), which is why the benchmark uses the log
means.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # before Numba loads: one core

from _exact_lognormal import exact_posterior_from_panel

import simfit
from simfit import statistics as st
from simfit.models import lognormal_exponential

TRUTH = {"m": 0.0, "s": 0.5}
PRIOR = {"m": {"dist": "uniform", "low": -2.0, "high": 2.0}, "s": {"dist": "uniform", "low": 0.01, "high": 2.0}}
METHODS = {
    "bsl": dict(method="bsl", chains=4, draws=2000),
    "abc_smc": dict(method="abc-smc", n_particles=1000),
    "surrogate": dict(method="surrogate", chains=4, draws=2000),
}


def _report(post, exact, seconds, cpu=None) -> dict:
    mean, sd = post.mean(), post.sd()
    rhat = post.rhat()
    return {
        "mean": {k: float(mean[k]) for k in TRUTH},
        "sd": {k: float(sd[k]) for k in TRUTH},
        "sd_ratio": {k: float(sd[k] / exact["sd"][k]) for k in TRUTH},
        "mean_error_in_exact_sd": {k: float(abs(mean[k] - exact["mean"][k]) / exact["sd"][k]) for k in TRUTH},
        "rhat": None if rhat.isna().all() else {k: float(rhat[k]) for k in TRUTH},
        "ess": float(post.ess().min()),
        "n_simulations": int(post.n_simulations),
        "wall_s": float(seconds),
        "cpu_s": None if cpu is None else float(cpu),
    }


def _targets_met(r: dict) -> bool:
    ok = all(0.75 <= v <= 1.25 for v in r["sd_ratio"].values())
    ok &= all(v <= 0.5 for v in r["mean_error_in_exact_sd"].values())
    ok &= r["rhat"] is None or all(v < 1.01 for v in r["rhat"].values())
    return bool(ok and r["wall_s"] < 5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="seed of the data set and of the samplers")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    model = lognormal_exponential.model()
    stats = st.Statistics(unit=[st.log_mean()], across=["mean", "sd"])
    data = simfit.simulate(model, simfit.Panel.balanced(100, 50), TRUTH, seed=args.seed).panel(0)

    started = time.perf_counter()
    exact = exact_posterior_from_panel(data)
    exact_s = time.perf_counter() - started

    started = time.perf_counter()
    simfit.sample(model, data, stats, PRIOR, method="bsl", chains=1, draws=20, warmup=20, seed=0)  # load compiled code
    warm_s = time.perf_counter() - started

    results: dict = {}
    for key, kwargs in METHODS.items():
        started, cpu = time.perf_counter(), time.process_time()
        post = simfit.sample(model, data, stats, PRIOR, seed=args.seed, **kwargs)
        results[key] = _report(post, exact, time.perf_counter() - started, time.process_time() - cpu)
        results[key]["targets_met"] = _targets_met(results[key])
        if not args.json:
            print(post.summary(), "\n")

    started = time.perf_counter()
    post = simfit.sample(model, data, lognormal_exponential.statistics(), PRIOR, seed=args.seed, **METHODS["bsl"])
    default = _report(post, exact, time.perf_counter() - started)

    results["exact"] = {"mean": exact["mean"], "sd": exact["sd"], "wall_s": exact_s}
    results["bsl_default_statistics"] = {k: default[k] for k in ("sd_ratio", "mean_error_in_exact_sd", "wall_s")}
    results["warmup_run_s"] = warm_s
    results["numba_threads"] = int(os.environ["NUMBA_NUM_THREADS"])
    accurate = [
        k for k in METHODS
        if all(0.9 <= v <= 1.1 for v in results[k]["sd_ratio"].values())
        and all(v <= 0.2 for v in results[k]["mean_error_in_exact_sd"].values())
    ]
    best = min(accurate, key=lambda k: results[k]["n_simulations"], default=None)
    results["best"] = best
    results["best_targets_met"] = bool(best is not None and results[best]["n_simulations"] <= 20_000)
    if not args.json:
        print(f"exact posterior: mean {exact['mean']}, sd {exact['sd']} ({exact_s:.2f} s)")
        for key in METHODS:
            r = results[key]
            print(
                f"{key:8s} sd/exact {r['sd_ratio']}  |mean error|/exact sd {r['mean_error_in_exact_sd']}  "
                f"rhat {r['rhat']}  ess {r['ess']:.0f}  panels {r['n_simulations']:,}  cpu {r['cpu_s']:.2f} s  wall {r['wall_s']:.2f} s  "
                f"targets met: {r['targets_met']}"
            )
        print(f"BSL with the default statistics (raw unit means too): sd/exact {default['sd_ratio']}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
