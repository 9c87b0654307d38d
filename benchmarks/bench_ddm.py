"""Drift-diffusion throughput: simfit against ssm-simulators, single-threaded, same process.

Usage: python benchmarks/bench_ddm.py [--trials 200000] [--exact-trials 2000000] [--json]

Simulates trials of one DDM (v=1, boundary separation a=1.5, start z=0.5, non-decision time
t=0.3, unit diffusion, dt=1 ms, at most 5 s) with simfit's kernel (1 Numba thread; plain Euler,
without simfit's default boundary correction, to simulate the same process as ssm-simulators)
and with ssm-simulators' ``ddm`` model (its ``a`` is half the separation: 0.75), and reports
trials per second of each and the mean response time and accuracy of both with their Monte Carlo
standard errors. Needs the ``bench`` extra (ssm-simulators).

Then simfit's exact simulator (``ddm.model(simulator="exact")``, no time discretisation) on the
same parameters: ``exact_trials_per_s``, its speed-up over ssm-simulators, and its accuracy and
mean decision time over ``--exact-trials`` trials against the closed forms (``exact_z_accuracy``, ``exact_z_mean_decision_time``,
in Monte Carlo standard errors; target: within 2, and ``exact_speedup_vs_ssms`` >= 10), and the
same z-scores over 100 independent seeds (``exact_seeds_*``: mean near 0, sd near 1);
``exact_within_2_mc_se`` is the check on those seeds' 20 million trials pooled. Last, the
Euler simulators converge to the exact law as ``dt`` shrinks: ``euler_convergence`` lists, per
``dt``, the error in accuracy and mean decision time of plain and boundary-corrected Euler.
"""

from __future__ import annotations

import argparse
import math
import time

import numba
import numpy as np

import simfit
from _recovery import print_json
from simfit import first_passage
from simfit.models import ddm

V, A, Z, T, DT = 1.0, 1.5, 0.5, 0.3, 0.001


def simfit_trials(n_trials: int, seed: int, simulator: str = "euler", dt: float = DT, correction: bool = False):
    model = ddm.model(dt=dt, continuity_correction=correction, simulator=simulator)
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


def exact_against_closed_forms(n_trials: int, seed: int) -> dict:
    rt, resp, seconds = simfit_trials(n_trials, seed, simulator="exact")
    out = describe(rt, resp, seconds)
    p = float(first_passage.choice_probability(V, A, Z))
    m = float(first_passage.mean_decision_time(V, A, Z)) + T
    return {
        "exact_trials_per_s": out["trials_per_s"],
        "exact_accuracy": out["accuracy"],
        "closed_form_accuracy": p,
        "exact_z_accuracy": (out["accuracy"] - p) / math.sqrt(p * (1 - p) / out["trials"]),
        "exact_mean_rt": out["mean_rt"],
        "closed_form_mean_rt": m,
        "exact_z_mean_decision_time": (out["mean_rt"] - m) / out["mean_rt_se"],
    }


def exact_over_seeds(n_seeds: int = 100, n_trials: int = 200_000) -> dict:
    """One z-score is a single draw: the z-scores of many independent runs should be standard
    normal (mean 0, sd 1, about 95% within 2)."""
    model = ddm.model(simulator="exact")
    sim = simfit.Simulator(model, ddm.design(100, n_trials // 100))
    truth = {"v_mu": V, "v_sd": 1e-12, "log_a": math.log(A), "a_sd": 1e-12, "t": T, "z": Z, "beta": 0.0}
    p = float(first_passage.choice_probability(V, A, Z))
    m = float(first_passage.mean_decision_time(V, A, Z)) + T
    z = []
    for seed in range(1000, 1000 + n_seeds):
        values = sim.simulate(truth, seed=seed).values[0]
        n = values.shape[0]
        z.append(((values[:, 1].mean() - p) / math.sqrt(p * (1 - p) / n), (values[:, 0].mean() - m) / (values[:, 0].std(ddof=1) / math.sqrt(n))))
    z = np.array(z)
    return {
        "exact_seeds": n_seeds,
        "exact_seeds_z_mean": z.mean(axis=0).tolist(),  # [accuracy, mean decision time]
        "exact_seeds_z_sd": z.std(axis=0, ddof=1).tolist(),
        "exact_seeds_share_within_2": (np.abs(z) <= 2).mean(axis=0).tolist(),
    }


def euler_convergence(n_trials: int, seed: int) -> list[dict]:
    """Errors of the Euler simulators against the closed forms as dt shrinks (common seeds)."""
    p = float(first_passage.choice_probability(V, A, Z))
    m = float(first_passage.mean_decision_time(V, A, Z)) + T
    rows = []
    for dt in (0.008, 0.004, 0.002, 0.001, 0.0005):
        row = {"dt": dt}
        for label, correction in (("plain", False), ("corrected", True)):
            rt, resp, _ = simfit_trials(n_trials, seed, dt=dt, correction=correction)
            row[f"{label}_accuracy_error"] = float(resp.mean() - p)
            row[f"{label}_mean_rt_error"] = float(rt.mean() - m)
        row["mc_se_accuracy"] = math.sqrt(p * (1 - p) / rt.size)
        row["mc_se_mean_rt"] = float(rt.std(ddof=1) / math.sqrt(rt.size))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200_000)
    parser.add_argument("--exact-trials", type=int, default=2_000_000,
                        help="trials of the exact simulator's check against the closed forms (cheap: a sharper check)")
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
    exact = exact_against_closed_forms(args.exact_trials, args.seed)
    results.update(exact)
    results["exact_speedup_vs_ssms"] = exact["exact_trials_per_s"] / theirs["trials_per_s"]
    results.update(exact_over_seeds())
    # The check on all the seeds' trials pooled (z of the pooled mean = mean z * sqrt(seeds)).
    pooled = [zm * math.sqrt(results["exact_seeds"]) for zm in results["exact_seeds_z_mean"]]
    results["exact_pooled_z"] = pooled
    results["exact_within_2_mc_se"] = bool(max(abs(z) for z in pooled) <= 2)
    results["euler_convergence"] = euler_convergence(args.trials, args.seed)
    results["exact_targets_met"] = bool(results["exact_within_2_mc_se"] and results["exact_speedup_vs_ssms"] >= 10)
    print_json(results, args.json)


if __name__ == "__main__":
    main()
