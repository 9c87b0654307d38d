"""Drift-diffusion throughput: simfit against ssm-simulators, single-threaded, same process.

Usage: python benchmarks/bench_ddm.py [--trials 200000] [--json]

Simulates trials of one DDM (v=1, boundary separation a=1.5, start z=0.5, non-decision time
t=0.3, unit diffusion, dt=1 ms, at most 5 s) with simfit's kernel (1 Numba thread; plain Euler,
without simfit's default boundary correction, to simulate the same process as ssm-simulators)
and with ssm-simulators' ``ddm`` model (its ``a`` is half the separation: 0.75), and reports
trials per second of each and the mean response time and accuracy of both with their Monte Carlo
standard errors. Needs the ``bench`` extra (ssm-simulators).
"""

from __future__ import annotations

import argparse
import math
import time

import numba
import numpy as np

import simfit
from _recovery import print_json
from simfit.models import ddm

V, A, Z, T, DT = 1.0, 1.5, 0.5, 0.3, 0.001


def simfit_trials(n_trials: int, seed: int):
    model = ddm.model(dt=DT, continuity_correction=False)
    n_subjects = 100
    design = ddm.design(n_subjects, max(1, n_trials // n_subjects))
    truth = {"v_mu": V, "v_sd": 1e-12, "log_a": math.log(A), "a_sd": 1e-12, "t": T, "z": Z, "beta": 0.0}
    sim = simfit.Simulator(model, design)
    sim.simulate(truth, seed=seed)  # compile / load cache
    started = time.perf_counter()
    values = sim.simulate(truth, seed=seed + 1).values[0]
    return values[:, 0], values[:, 1], time.perf_counter() - started


def ssms_trials(n_trials: int, seed: int):
    from ssms.basic_simulators.simulator import simulator

    theta = np.array([[V, A / 2, Z, T]])
    simulator(theta=theta, model="ddm", n_samples=100, delta_t=DT, max_t=5.0, random_state=seed)
    started = time.perf_counter()
    out = simulator(theta=theta, model="ddm", n_samples=n_trials, delta_t=DT, max_t=5.0, random_state=seed + 1)
    seconds = time.perf_counter() - started
    return out["rts"].reshape(-1), (out["choices"].reshape(-1) > 0).astype(float), seconds


def describe(rt, resp, seconds):
    n = rt.size
    return {
        "trials": n,
        "trials_per_s": n / seconds,
        "mean_rt": float(rt.mean()),
        "mean_rt_se": float(rt.std(ddof=1) / math.sqrt(n)),
        "accuracy": float(resp.mean()),
        "accuracy_se": float(math.sqrt(resp.mean() * (1 - resp.mean()) / n)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    numba.set_num_threads(1)
    ours = describe(*simfit_trials(args.trials, args.seed))
    theirs = describe(*ssms_trials(args.trials, args.seed))
    z_rt = (ours["mean_rt"] - theirs["mean_rt"]) / math.hypot(ours["mean_rt_se"], theirs["mean_rt_se"])
    z_acc = (ours["accuracy"] - theirs["accuracy"]) / math.hypot(ours["accuracy_se"], theirs["accuracy_se"])
    results = {
        "simfit_trials_per_s": ours["trials_per_s"],
        "ssms_trials_per_s": theirs["trials_per_s"],
        "speedup": ours["trials_per_s"] / theirs["trials_per_s"],
        "simfit_mean_rt": ours["mean_rt"],
        "simfit_mean_rt_se": ours["mean_rt_se"],
        "ssms_mean_rt": theirs["mean_rt"],
        "ssms_mean_rt_se": theirs["mean_rt_se"],
        "simfit_accuracy": ours["accuracy"],
        "simfit_accuracy_se": ours["accuracy_se"],
        "ssms_accuracy": theirs["accuracy"],
        "ssms_accuracy_se": theirs["accuracy_se"],
        "z_mean_rt_difference": z_rt,
        "z_accuracy_difference": z_acc,
        "agree_within_mc_error": bool(abs(z_rt) < 4 and abs(z_acc) < 4),
        "trials": ours["trials"],
    }
    print_json(results, args.json)


if __name__ == "__main__":
    main()
