"""Posterior of the DDM scenario: wall time, convergence and simulation-based calibration.

Usage: python benchmarks/bench_ddm_posterior.py [--no-sbc] [--datasets 100] [--subjects 20] [--trials 60] [--rows FILE] [--json]

1. ``simfit sample scenarios/ddm.toml`` as a user runs it (40 subjects x 100 trials, seven
   population parameters, the scenario's priors, ``method="surrogate"``, 2 cores): ``wall_s`` of
   the whole command, ``rhat_max``, ``surrogate_check`` and the panels it simulated.
2. Unless ``--no-sbc``: SBC over ``--datasets`` data sets drawn from the scenario's priors on a
   reduced design (``--subjects`` x ``--trials``, stated in the output): per parameter the
   coverage of the central 50% and 90% intervals with its binomial standard error, and whether
   each lies within 2 of them (``sbc``). Data sets whose sampler fails are counted.

Targets: ``wall_s`` <= 300, ``rhat_max`` <= 1.01, every coverage within 2 binomial standard
errors of nominal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIO = os.path.join(ROOT, "scenarios", "ddm.toml")


def scenario_posterior() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "simfit", "sample", SCENARIO, "--out", os.path.join(tmp, "post"), "--json", "--no-progress"],
            capture_output=True, text=True, cwd=ROOT,
        )
        wall = time.perf_counter() - started
    if run.returncode != 0:
        raise RuntimeError(run.stderr[-2000:])
    out = json.loads(run.stdout.strip().splitlines()[-1])
    rhat = [p["rhat"] for p in out["params"].values()]
    return {
        "wall_s": wall,
        "rhat_max": float(max(rhat)),
        "n_simulations": out.get("n_simulations"),
        "surrogate_check": out.get("info", {}).get("surrogate_check"),
    }


def _sbc_one(k: int, seed: int, subjects: int, trials: int) -> dict:
    import simfit
    from simfit.bayes.priors import Priors
    from simfit.estimation import derive_seed
    from simfit.models import ddm
    from simfit.scenario import load_scenario

    scenario = load_scenario(SCENARIO)
    model, stats = scenario.build()
    prior = scenario.prior
    priors = Priors(model.params, prior)
    truth = priors.rvs(1, np.random.default_rng(derive_seed(seed, 1, k)))[0]
    data = simfit.simulate(model, ddm.design(subjects, trials), dict(zip(model.param_names, truth)), seed=derive_seed(seed, 2, k)).panel(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            post = simfit.sample(model, data, stats, prior, method="surrogate", seed=derive_seed(seed, 3, k),
                                 fit_options=simfit.FitOptions(**ddm.FIT_OPTIONS))
    except simfit.SimfitError as exc:
        return {"k": k, "failed": True, "error": str(exc)[:300]}
    i50, i90 = post.interval(0.5), post.interval(0.1)
    flat = post.draws.reshape(-1, truth.size)
    return {
        "k": k, "failed": False, "truth": truth.tolist(),
        "quantile_of_truth": np.mean(flat < truth, axis=0).tolist(),
        "mean": post.mean().tolist(), "sd": post.sd().tolist(),
        "surrogate_check": post.info.get("surrogate_check"),
        "rounds": post.info.get("rounds"), "lack_of_fit": post.info.get("lack_of_fit"),
        "round_shift": post.info.get("round_shift"), "n_simulations": post.n_simulations,
        "fit_converged": bool(post.fit.converged) if post.fit is not None else None,
        "cover50": [bool(i50["lower"].iloc[j] <= truth[j] <= i50["upper"].iloc[j]) for j in range(truth.size)],
        "cover90": [bool(i90["lower"].iloc[j] <= truth[j] <= i90["upper"].iloc[j]) for j in range(truth.size)],
        "rhat_max": float(post.rhat().max()),
    }


def sbc(datasets: int, seed: int, subjects: int, trials: int, jobs: int, rows_path: str | None = None) -> dict:
    from simfit.bayes.surrogate import SHIFT_MAX, SURROGATE_CHECK_RANGE
    from simfit.models import ddm
    from simfit.parallel import run_parallel

    rows = run_parallel(_sbc_one, [(k, seed, subjects, trials) for k in range(datasets)], n_jobs=jobs)
    ok = [r for r in rows if not r["failed"]]
    n = len(ok)
    names = [p.name for p in ddm.PARAMS]
    out = {"design": f"{subjects} subjects x {trials} trials", "datasets": n, "failed": len(rows) - n,
           "coverage50": {}, "coverage90": {}, "se50": math.sqrt(0.25 / max(n, 1)), "se90": math.sqrt(0.09 / max(n, 1))}
    for j, name in enumerate(names):
        out["coverage50"][name] = float(np.mean([r["cover50"][j] for r in ok]))
        out["coverage90"][name] = float(np.mean([r["cover90"][j] for r in ok]))
    # Spread over data sets of (posterior mean - truth) / posterior sd: about 1 where the posterior
    # sds are right, above 1 where they are too small.
    out["z_sd"] = {name: float(np.std([(r["mean"][j] - r["truth"][j]) / r["sd"][j] for r in ok])) for j, name in enumerate(names)}
    checks = np.array([r["surrogate_check"] if r["surrogate_check"] is not None else np.nan for r in ok], dtype=float)
    out["surrogate_check_median"] = float(np.nanmedian(checks)) if n else None
    low, high = SURROGATE_CHECK_RANGE
    out["surrogate_warnings"] = int(np.sum((checks < low) | (checks > high)))
    out["rounds_median"] = float(np.median([r["rounds"] for r in ok])) if n else None
    out["rounds_max"] = int(max(r["rounds"] for r in ok)) if n else None
    # Posteriors that had not settled when the rounds ran out (each says so in a warning).
    out["unsettled"] = int(sum(r["round_shift"] > SHIFT_MAX for r in ok))
    out["n_simulations_median"] = float(np.median([r["n_simulations"] for r in ok])) if n else None
    out["errors"] = [r["error"] for r in rows if r["failed"]][:5]
    if rows_path:
        with open(rows_path, "w") as fh:
            json.dump(rows, fh)
    out["within_2_se"] = bool(
        all(abs(c - 0.5) <= 2 * out["se50"] for c in out["coverage50"].values())
        and all(abs(c - 0.9) <= 2 * out["se90"] for c in out["coverage90"].values())
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-sbc", action="store_true")
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rows", help="write each data set's SBC result to this JSON file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = scenario_posterior()
    out["targets_met"] = bool(out["wall_s"] <= 300 and out["rhat_max"] <= 1.01)
    if not args.no_sbc:
        out["sbc"] = sbc(args.datasets, args.seed, args.subjects, args.trials, args.jobs, args.rows)
        out["targets_met"] = bool(out["targets_met"] and out["sbc"]["within_2_se"] and out["sbc"]["failed"] == 0)
    if not args.json:
        for key, value in out.items():
            print(f"{key:20s} {value}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
