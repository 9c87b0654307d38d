"""Start-up and scale: how long the first minute takes, and a fit on a large panel.

Usage: python benchmarks/bench_startup.py [--json] [--skip-large]

Figures (the last line of stdout is one JSON object with --json):

import_s
    ``import simfit`` in a fresh process (median of 5).
compile_engine_cold_s / compile_engine_cached_s
    a fresh process's first ``Simulator`` with statistics, to its first statistics, with an empty
    Numba cache (a temporary ``NUMBA_CACHE_DIR``) and with a warm one.
predict_units_s_1000
    ``predict_units`` for 1,000 units of the random-intercept model (after a fit).
posterior_population_summary_s
    ``Posterior.population_summary()`` of 1,000 draws of the random-intercept model.
fit_s_1e5x100 / fit_rss_mb_1e5x100
    a default fit of the random-intercept model on 10^5 units x 100 observations, in a fresh
    process: wall time and peak resident memory (``--skip-large`` leaves them out).

Targets (issue "Real data from the command line, and a fast first minute"): import_s <= 0.5,
predict_units_s_1000 and posterior_population_summary_s <= 2, fit_s_1e5x100 <= 60,
fit_rss_mb_1e5x100 <= 1000.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

_IMPORT = "import time; t = time.perf_counter(); import simfit; print(time.perf_counter() - t)"

_COMPILE = """
import time
import simfit
from simfit.models import random_intercept
t = time.perf_counter()
sim = simfit.Simulator(random_intercept.model(), simfit.Panel.balanced(100, 10), random_intercept.statistics())
sim.statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, n_sims=2, seed=1)
print(time.perf_counter() - t)
"""

_LARGE_FIT = """
import resource, time, warnings
import simfit
from simfit.models import random_intercept
model = random_intercept.model()
data = simfit.Simulator(model, simfit.Panel.balanced(100_000, 100)).simulate({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, seed=1).panel(0)
t = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    res = simfit.fit(model, data, random_intercept.statistics(), seed=1)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, res.converged)
"""


def _child(code: str, env: dict | None = None) -> list[str]:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    return run.stdout.split()


def import_time(repeats: int = 5) -> float:
    return statistics.median(float(_child(_IMPORT)[0]) for _ in range(repeats))


def compile_times() -> dict:
    with tempfile.TemporaryDirectory() as cache:
        cold = float(_child(_COMPILE, {"NUMBA_CACHE_DIR": cache})[0])
        warm = float(_child(_COMPILE, {"NUMBA_CACHE_DIR": cache})[0])
    return {"compile_engine_cold_s": cold, "compile_engine_cached_s": warm}


def prediction_and_summary_times() -> dict:
    import simfit
    from simfit.bayes.posterior import Posterior
    from simfit.models import random_intercept

    model = random_intercept.model()
    truth = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}
    data = simfit.Simulator(model, simfit.Panel.balanced(1000, 10)).simulate(truth, seed=2).panel(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = simfit.fit(model, data, random_intercept.statistics(), seed=1, bootstrap=0)
        simfit.predict_units(res, data)  # compile and warm up
        t = time.perf_counter()
        simfit.predict_units(res, data)
        predict = time.perf_counter() - t
    rng = np.random.default_rng(3)
    draws = np.array([1.0, 0.5, 1.0]) + np.array([0.05, 0.03, 0.02]) * rng.standard_normal((1, 1000, 3))
    Posterior(model=model, draws=draws, method="bsl", design=data.design()).population_summary()  # warm up
    post = Posterior(model=model, draws=draws + 0.001, method="bsl", design=data.design())  # nothing cached
    t = time.perf_counter()
    post.population_summary()
    return {"predict_units_s_1000": predict, "posterior_population_summary_s": time.perf_counter() - t}


def large_fit() -> dict:
    seconds, rss, converged = _child(_LARGE_FIT)
    return {"fit_s_1e5x100": float(seconds), "fit_rss_mb_1e5x100": float(rss), "fit_1e5x100_converged": converged == "True"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-large", action="store_true", help="leave out the 10^5 x 100 fit")
    args = parser.parse_args()
    started = time.perf_counter()
    out = {"import_s": import_time()}
    out.update(compile_times())
    out.update(prediction_and_summary_times())
    if not args.skip_large:
        out.update(large_fit())
    out["targets_met"] = bool(
        out["import_s"] <= 0.5 and out["predict_units_s_1000"] <= 2 and out["posterior_population_summary_s"] <= 2
        and (args.skip_large or (out["fit_s_1e5x100"] <= 60 and out["fit_rss_mb_1e5x100"] <= 1000))
    )
    out["wall_s"] = time.perf_counter() - started
    if not args.json:
        for key, value in out.items():
            print(f"{key:34s} {value}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
