"""Start-up and scale: how long the first minute takes, and a fit on a large panel.

Usage: python benchmarks/bench_startup.py [--json] [--skip-large] [--skip-quickstart]

Figures (the last line of stdout is one JSON object with --json):

import_s
    ``import simfit`` in a fresh process (median of 5).
compile_engine_cold_s / compile_engine_cached_s
    a fresh process's first ``Simulator`` with statistics, to its first statistics, with an empty
    Numba cache (a temporary ``NUMBA_CACHE_DIR``) and with a warm one.
nls_first_use_cold_s / nls_first_use_warm_s / nls_solver_cold_s
    a fresh process's first statistics of the PK model with its per-subject NLS statistics
    (``st.nls``, 20 subjects, 2 panels): with an empty Numba cache (everything compiled, the engine
    included), with a warm one, and with a cache that holds everything but the NLS solver and the
    curve (what ``st.nls`` adds to a first use once the engine is compiled).
predict_units_s_1000
    ``predict_units`` for 1,000 units of the random-intercept model (after a fit).
posterior_population_summary_s
    ``Posterior.population_summary()`` of 1,000 draws of the random-intercept model.
quickstart_install_s / quickstart_first_run_s
    ``pip install .`` into a new virtual environment, then the README's main job
    (``simfit run scenarios/quickstart.toml``) with an empty Numba cache, every compile included
    (``--skip-quickstart`` leaves them out).
fit_s_1e5x100 / fit_rss_mb_1e5x100
    a default fit of the random-intercept model on 10^5 units x 100 observations, in a fresh
    process: wall time and peak resident memory (``--skip-large`` leaves them out), with the
    panels it simulated (``fit_panels_1e5x100``), those of its bootstrap included
    (``fit_bootstrap_panels_1e5x100``).

Targets: import_s <= 0.5,
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

_NLS_FIRST_USE = """
import sys, time
import simfit
from simfit.models import pk
truth = {"log_ka": 0.4, "ka_sd": 0.3, "log_cl": 1.1, "cl_sd": 0.3, "log_v": 3.4, "v_sd": 0.2, "rho": 0.5, "sigma_prop": 0.1}
model, design = pk.model(), pk.design(20)
kind = sys.argv[1]
if kind == "after_hand":  # the engine from the cache: what st.nls adds
    simfit.Simulator(model, design, pk.statistics("hand")).statistics(truth, n_sims=2, seed=1)
t = time.perf_counter()
simfit.Simulator(model, design, pk.statistics("auxiliary", center="start")).statistics(truth, n_sims=2, seed=1)
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
boot = res.bootstrap.n_simulations if res.bootstrap is not None else 0
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, res.converged, res.n_simulations, boot)
"""


def _child(code: str, env: dict | None = None, argv: tuple[str, ...] = ()) -> list[str]:
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=3600)
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


def nls_first_use_times() -> dict:
    """First use of ``st.nls`` (the PK model's NLS statistics) in fresh processes: with an empty
    cache, a warm one, and one without the NLS solver's files (the engine cached)."""
    with tempfile.TemporaryDirectory() as cache:
        cold = float(_child(_NLS_FIRST_USE, {"NUMBA_CACHE_DIR": cache}, ("cold",))[0])
        warm = float(_child(_NLS_FIRST_USE, {"NUMBA_CACHE_DIR": cache}, ("warm",))[0])
        for root, _, files in os.walk(cache):  # the solver's and the curve's compiled code only
            for name in files:
                if name.startswith(("auxiliary.", "pk.absorption_first_curve")):
                    os.remove(os.path.join(root, name))
        solver = float(_child(_NLS_FIRST_USE, {"NUMBA_CACHE_DIR": cache}, ("after_hand",))[0])
    return {"nls_first_use_cold_s": cold, "nls_first_use_warm_s": warm, "nls_solver_cold_s": solver}


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


def quickstart_first_run() -> dict:
    """The README's main job right after a fresh ``pip install .`` into a new virtual environment,
    with an empty Numba cache: install time and run time (the run includes every compile)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        venv = os.path.join(tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        python = os.path.join(venv, "bin", "python")
        t = time.perf_counter()
        subprocess.run([python, "-m", "pip", "install", "-q", root], check=True, cwd=tmp, capture_output=True)
        install = time.perf_counter() - t
        env = {**os.environ, "NUMBA_CACHE_DIR": os.path.join(tmp, "numba-cache")}
        scenario = os.path.join(root, "scenarios", "quickstart.toml")
        t = time.perf_counter()
        subprocess.run([os.path.join(venv, "bin", "simfit"), "run", scenario, "--out", os.path.join(tmp, "out"), "--no-progress"],
                       check=True, cwd=tmp, env=env, capture_output=True)
        return {"quickstart_install_s": install, "quickstart_first_run_s": time.perf_counter() - t}


def large_fit() -> dict:
    seconds, rss, converged, panels, boot = _child(_LARGE_FIT)
    return {
        "fit_s_1e5x100": float(seconds), "fit_rss_mb_1e5x100": float(rss), "fit_1e5x100_converged": converged == "True",
        # Where the time goes: simulated panels in all, and those of the default bootstrap.
        "fit_panels_1e5x100": int(panels), "fit_bootstrap_panels_1e5x100": int(boot),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-large", action="store_true", help="leave out the 10^5 x 100 fit")
    parser.add_argument("--skip-quickstart", action="store_true", help="leave out the fresh install and first quick-start run")
    args = parser.parse_args()
    started = time.perf_counter()
    out = {"import_s": import_time()}
    out.update(compile_times())
    out.update(nls_first_use_times())
    out.update(prediction_and_summary_times())
    if not args.skip_quickstart:
        out.update(quickstart_first_run())
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
