"""Engine benchmark: random-number cost, fused simulate -> statistics throughput, threading,
memory and compilation latency, each against a baseline measured in the same run.

Usage: python benchmarks/bench_engine.py [--json] [--quick]

Figures (the last line of stdout is one JSON object with --json):

normal_ns_engine / normal_ns_numba / normal_ns_numpy_generator
    ns per standard-normal draw summed in an @njit loop: simfit's stream, Numba's
    np.random.standard_normal, and a NumPy Generator passed into @njit.
obs_ns_fused / obs_ns_floor / obs_ns_numpy
    ns per simulated observation of the linear random-intercept model (1e5 units x 100
    observations, unit mean and variance, aggregated), single thread: simfit's fused path; a bare
    @njit loop that only seeds the same streams, draws the same normals and sums them; and a
    vectorised NumPy implementation of the same model and statistics.
obs_ns_fused_guarded / obs_ns_fused_check_all
    the same with the model's kernels compiled with bounds checking (as every user kernel is by
    default), and with every kernel checked, statistics included (``SIMFIT_CHECK=1``); their
    ratios to ``obs_ns_fused`` are ``guarded_over_fused`` (target <= 1.10) and
    ``check_all_over_fused``.
thread_speedup_2
    statistics-path time with 1 Numba thread divided by the time with 2.
peak_rss_mb_1e6x1000
    peak resident memory of a fresh process computing the statistics of one simulated panel of
    1e6 units x 1000 observations.
compile_s_first / compile_s_cached
    latency from a fresh process's first Simulator to its first statistics (after imports), with
    an empty and with a warm Numba cache.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
from numba import njit

import simfit
from simfit.models import random_intercept
from simfit.random import normal, seed_stream, stream

TRUTH = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}


def best_of(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@njit(cache=True)
def sum_engine_normals(rng, n):
    s = 0.0
    for _ in range(n):
        s += normal(rng)
    return s


@njit(cache=True)
def sum_numba_normals(n):
    s = 0.0
    for _ in range(n):
        s += np.random.standard_normal()
    return s


@njit(cache=True)
def sum_generator_normals(gen, n):
    s = 0.0
    for _ in range(n):
        s += gen.standard_normal()
    return s


@njit(cache=True)
def floor_loop(seed, n_units, n_obs):
    # The same keyed streams and normal draws as the fused path (one unit draw plus n_obs
    # observation draws per unit), summed; no model, no statistics.
    rng = np.empty(6, dtype=np.uint64)
    s = 0.0
    for i in range(n_units):
        seed_stream(rng, seed, 0, 1, i)
        s += normal(rng)
        seed_stream(rng, seed, 0, 2, i)
        for _ in range(n_obs):
            s += normal(rng)
    return s


def numpy_random_intercept(gen, n_units, n_obs):
    b = gen.standard_normal(n_units)
    e = gen.standard_normal((n_units, n_obs))
    y = TRUTH["mu"] + TRUTH["tau"] * b[:, None] + TRUTH["sigma"] * e
    means = y.mean(axis=1)
    variances = y.var(axis=1, ddof=1)
    return np.array([means.mean(), variances.mean(), means.std(ddof=1)])


def random_numbers(n):
    rng = stream(1)
    gen = np.random.default_rng(1)
    sum_engine_normals(rng, 10)
    sum_numba_normals(10)
    sum_generator_normals(gen, 10)
    return {
        "normal_ns_engine": best_of(lambda: sum_engine_normals(rng, n)) / n * 1e9,
        "normal_ns_numba": best_of(lambda: sum_numba_normals(n)) / n * 1e9,
        "normal_ns_numpy_generator": best_of(lambda: sum_generator_normals(gen, n)) / n * 1e9,
    }


def checked_model():
    """The random-intercept model with its kernels compiled with bounds checking, as a user's are."""
    import dataclasses

    from simfit.kernels import _checked_variant

    model = random_intercept.model()
    levels = [dataclasses.replace(lv, draw=_checked_variant(lv.draw)) for lv in model.levels]
    obs = dataclasses.replace(model.observations, simulate=_checked_variant(model.observations.simulate))
    return simfit.Model(model.params, levels, obs, name="random_intercept (checked)")


def guarded_throughput(n_units, n_obs, fused_ns):
    """ns per observation with the model's kernels bounds-checked (every user kernel by default),
    and with every kernel checked, statistics included (SIMFIT_CHECK=1)."""
    design = simfit.Panel.balanced(n_units, n_obs)
    total = n_units * n_obs
    out = {}
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        sim = simfit.Simulator(checked_model(), design, random_intercept.statistics())
        sim.statistics(TRUTH, seed=0)
        out["obs_ns_fused_guarded"] = best_of(lambda: sim.statistics(TRUTH, seed=1)) / total * 1e9
        os.environ["SIMFIT_CHECK"] = "1"
        try:
            stats = random_intercept.statistics()  # a new Statistics compiles its kernels checked
            sim_all = simfit.Simulator(checked_model(), design, stats)
            sim_all.statistics(TRUTH, seed=0)
            out["obs_ns_fused_check_all"] = best_of(lambda: sim_all.statistics(TRUTH, seed=1)) / total * 1e9
        finally:
            del os.environ["SIMFIT_CHECK"]
    finally:
        numba.set_num_threads(before)
    out["guarded_over_fused"] = out["obs_ns_fused_guarded"] / fused_ns
    out["check_all_over_fused"] = out["obs_ns_fused_check_all"] / fused_ns
    return out


def throughput(n_units, n_obs):
    sim = simfit.Simulator(random_intercept.model(), simfit.Panel.balanced(n_units, n_obs), random_intercept.statistics())
    total = n_units * n_obs
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        sim.statistics(TRUTH, seed=0)
        fused = best_of(lambda: sim.statistics(TRUTH, seed=1))
        floor_loop(1, 10, 10)
        floor = best_of(lambda: floor_loop(1, n_units, n_obs))
        gen = np.random.default_rng(1)
        numpy_t = best_of(lambda: numpy_random_intercept(gen, n_units, n_obs), repeats=3)
        out = {
            "obs_ns_fused": fused / total * 1e9,
            "obs_ns_floor": floor / total * 1e9,
            "obs_ns_numpy": numpy_t / total * 1e9,
        }
        if numba.config.NUMBA_NUM_THREADS >= 2:
            numba.set_num_threads(2)
            sim.statistics(TRUTH, seed=0)
            two = best_of(lambda: sim.statistics(TRUTH, seed=1))
            out["thread_speedup_2"] = fused / two
        else:
            out["thread_speedup_2"] = None
    finally:
        numba.set_num_threads(before)
    out["fused_over_floor"] = out["obs_ns_fused"] / out["obs_ns_floor"]
    out["numpy_over_fused"] = out["obs_ns_numpy"] / out["obs_ns_fused"]
    return out


_CHILD_MEMORY = """
import resource, simfit
from simfit.models import random_intercept
sim = simfit.Simulator(random_intercept.model(), simfit.Panel.balanced({units}, {obs}), random_intercept.statistics())
s = sim.statistics({{"mu": 1.0, "tau": 0.5, "sigma": 1.0}}, n_sims=1, seed=1)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, s[0, 0])
"""

_CHILD_COMPILE = """
import time, simfit
from simfit.models import random_intercept
t = time.perf_counter()
sim = simfit.Simulator(random_intercept.model(), simfit.Panel.balanced(100, 10), random_intercept.statistics())
sim.statistics({"mu": 1.0, "tau": 0.5, "sigma": 1.0}, n_sims=2, seed=1)
print(time.perf_counter() - t)
"""


def run_child(code, env=None):
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return res.stdout.split()


def memory(n_units, n_obs):
    rss, _ = run_child(_CHILD_MEMORY.format(units=n_units, obs=n_obs))
    return {f"peak_rss_mb_{n_units:.0e}x{n_obs}".replace("+0", "").replace("+", ""): float(rss)}


def compile_latency():
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        first = float(run_child(_CHILD_COMPILE, env)[0])
        cached = float(run_child(_CHILD_COMPILE, env)[0])
    return {"compile_s_first": first, "compile_s_cached": cached}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    args = parser.parse_args()
    n_draws = 10**6 if args.quick else 2 * 10**7
    units, obs = (10**4, 100) if args.quick else (10**5, 100)
    mem_units, mem_obs = (10**4, 1000) if args.quick else (10**6, 1000)

    results = {"machine_threads": numba.config.NUMBA_NUM_THREADS}
    results.update(random_numbers(n_draws))
    results["normal_speedup_vs_numba"] = results["normal_ns_numba"] / results["normal_ns_engine"]
    results.update(throughput(units, obs))
    results.update(guarded_throughput(units, obs, results["obs_ns_fused"]))
    results.update(memory(mem_units, mem_obs))
    results.update(compile_latency())
    results = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in results.items()}

    targets = {
        "normal_speedup_vs_numba": (">=", 2.0),
        "fused_over_floor": ("<=", 2.0),
        "numpy_over_fused": (">=", 5.0),
        "thread_speedup_2": (">=", 1.6),
    }
    width = max(len(k) for k in results)
    for key, value in results.items():
        target = targets.get(key)
        note = f"   (target {target[0]} {target[1]})" if target else ""
        print(f"{key:<{width}}  {value}{note}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
