"""Recovery with hand-written, auxiliary-model and projected statistics.

Usage: python benchmarks/bench_statistics.py [--models pk,lognormal,ddm] [--reps 100] [--jobs 2] [--json]

For each model, ``reps`` datasets are simulated at a fixed truth and fitted with the default
options (the scenario's ``[fit]`` table for the zoo models) and each of three statistic sets:

- ``hand``: the hand-written set (the zoo's ``statistics("hand")``; for the log-normal model the
  log unit means and unit means, their means and sds);
- ``auxiliary``: auxiliary-model estimates per unit (PK: nonlinear least squares of the model's
  own curve, ``pk.statistics("auxiliary")``; log-normal: the exponential maximum-likelihood
  estimate of each unit's log rate, its mean and sd across units; DDM: a logistic regression of
  the choices on the stimulus and the log-RT moments by response);
- ``projected``: ``st.projected`` of the union of both (pilot of 1,000 panels).

Reported per model, set and parameter: bias, RMSE and coverage of the default 95% interval, and
the median fit time (``--local``: the same keys from ``simfit.check`` at the truth, its k-step
replicates standing in for full fits, for models whose fits take minutes). For the log-normal model also the RMSE of the exact maximum-likelihood
estimate on the same datasets (by quadrature, ``_exact_lognormal.py``) and each set's RMSE
relative to it (``rmse_ratio_vs_mle``). A full run writes ``benchmarks/results/statistics.json``;
the last line of stdout is the JSON of the run.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

import simfit
from simfit import statistics as st
from simfit.estimation import derive_seed, fit
from simfit.parallel import run_parallel
from simfit.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("pk", "lognormal", "ddm")
SETS = ("hand", "auxiliary", "projected")
_CACHE: dict = {}


def statistic_sets(name: str) -> dict:
    if name == "pk":
        from simfit.models import pk

        hand, aux = pk.statistics("hand"), pk.statistics("auxiliary")
    elif name == "lognormal":
        from simfit.models import lognormal_exponential

        hand = lognormal_exponential.statistics()
        aux = st.Statistics(unit=[st.log_mean()], across=["mean", "sd"])
    else:
        from simfit.models import ddm

        hand = ddm.statistics()
        aux = ddm.statistics("auxiliary")
    unit = list(hand.unit) + [u for u in aux.unit if u.kernel not in {h.kernel for h in hand.unit} or u.labels not in {h.labels for h in hand.unit}]
    union = st.Statistics(unit=unit, across=list(hand.across),
                          extra=list(hand.extra) + list(aux.extra), pooled=list(hand.pooled) + list(aux.pooled))
    return {"hand": hand, "auxiliary": aux, "projected": st.projected(union, pilot=1000)}


def setup(name: str):
    """(model, statistic sets, design, truth, fit options) of a benchmark model."""
    if name in _CACHE:
        return _CACHE[name]
    if name == "lognormal":
        from simfit.models import lognormal_exponential

        out = (lognormal_exponential.model(), simfit.Panel.balanced(100, 50), {"m": 0.0, "s": 0.5}, {"n_sims": 10})
    else:
        sc = load_scenario(ROOT / "scenarios" / f"{name}.toml")
        model, _ = sc.build()
        out = (model, sc.design_panel(), dict(sc.truth), dict(sc.fit_table))
    model, design, truth, options = out
    sets = statistic_sets(name)
    for stats in sets.values():  # compile, and fit the projection once (it travels to the workers)
        simfit.Simulator(model, design, stats)
    _CACHE[name] = (model, sets, design, truth, options)
    return _CACHE[name]


def exact_mle(panel) -> list[float]:
    from _exact_lognormal import log_likelihood

    y = panel.values[:, 0]
    offsets = np.asarray(panel.unit_offsets)
    n_obs, sums = np.diff(offsets), np.add.reduceat(y, offsets[:-1])
    res = minimize(lambda p: -log_likelihood(p[0], np.exp(p[1]), n_obs, sums)[()], x0=[0.0, np.log(0.5)], method="Nelder-Mead",
                   options={"xatol": 1e-7, "fatol": 1e-9})
    return [float(res.x[0]), float(np.exp(res.x[1]))]


def replicate(name: str, kind: str, rep: int, seed: int, extra: dict) -> dict:
    model, sets, design, truth, options = setup(name)
    data = simfit.Simulator(model, design).simulate(truth, seed=derive_seed(seed, 100, rep)).panel(0)
    names = list(model.param_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        res = fit(model, data, sets[kind], seed=derive_seed(seed, 200, rep), **{**options, **extra})
        seconds = time.perf_counter() - t
    ci = res.conf_int(0.05)
    row = {"estimate": res.params[names].tolist(), "lower": ci["lower"][names].tolist(), "upper": ci["upper"][names].tolist(),
           "seconds": seconds, "converged": bool(res.converged)}
    if name == "lognormal" and kind == "hand":
        row["mle"] = exact_mle(data)
    return row


def table(name: str, rows: list[dict]) -> dict:
    model, _, _, truth, _ = setup(name)
    names = list(model.param_names)
    true = np.array([truth[n] for n in names])
    est = np.array([r["estimate"] for r in rows])
    lo, hi = np.array([r["lower"] for r in rows]), np.array([r["upper"] for r in rows])
    err = est - true
    return {
        "rmse": {n: float(np.sqrt(np.mean(err[:, j] ** 2))) for j, n in enumerate(names)},
        "bias": {n: float(np.mean(err[:, j])) for j, n in enumerate(names)},
        "coverage95": {n: float(np.mean((lo[:, j] <= true[j]) & (true[j] <= hi[:, j]))) for j, n in enumerate(names)},
        "median_fit_s": float(np.median([r["seconds"] for r in rows])),
        "convergence_rate": float(np.mean([r["converged"] for r in rows])),
        "reps": len(rows),
    }


def local_table(name: str, kind: str, reps: int, seed: int) -> dict:
    """The same keys from the pre-flight check's local recovery at the truth (k-step replicates)."""
    model, sets, design, truth, options = setup(name)
    fit_options = simfit.FitOptions(**options)
    report = simfit.check(model, design, sets[kind], at=truth, n_sims=fit_options.n_sims, n_cov_sims=fit_options.n_cov_sims,
                          n_boot=reps, diff_step=fit_options.diff_step, jacobian_step=fit_options.jacobian_step, seed=seed)
    rec = report.recovery
    return {
        "rmse": rec["rmse"].to_dict(), "bias": rec["bias"].to_dict(), "coverage95": rec["coverage_default"].to_dict(),
        "method": f"local: simfit.check at the truth, {reps} two-step replicates (not full fits)",
        "check_seconds": report.seconds, "reps": reps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-global", action="store_true", help="fit with global_points=0 (the DDM's fits take minutes otherwise)")
    parser.add_argument("--local", action="store_true",
                        help="measure by simfit.check at the truth (reps k-step replicates) instead of reps full fits")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    extra = {"global_points": 0} if args.no_global else {}
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if sorted(set(models) - set(MODELS)) or sorted(set(sets) - set(SETS)):
        parser.error(f"choose models from {', '.join(MODELS)} and sets from {', '.join(SETS)}")
    started = time.perf_counter()
    results: dict = {}
    for name in models:
        setup(name)
        results[name] = {}
        for kind in sets:
            t = time.perf_counter()
            if args.local:
                results[name][kind] = local_table(name, kind, args.reps, args.seed)
                results[name][kind]["wall_s"] = time.perf_counter() - t
                print(f"{name} {kind} (local): rmse {results[name][kind]['rmse']} coverage {results[name][kind]['coverage95']}", flush=True)
                continue
            rows = run_parallel(replicate, [(name, kind, r, args.seed, extra) for r in range(args.reps)], n_jobs=args.jobs)
            results[name][kind] = table(name, rows)
            results[name][kind]["wall_s"] = time.perf_counter() - t
            results[name][kind]["global_phase"] = not args.no_global
            if name == "lognormal" and kind == "hand":
                mle = np.array([r["mle"] for r in rows])
                truth = setup(name)[3]
                results[name]["mle_rmse"] = {n: float(np.sqrt(np.mean((mle[:, j] - truth[n]) ** 2))) for j, n in enumerate(("m", "s"))}
            print(f"{name} {kind}: rmse {results[name][kind]['rmse']} coverage {results[name][kind]['coverage95']}", flush=True)
        if name == "lognormal" and "mle_rmse" in results[name]:
            for kind in sets:
                results[name][kind]["rmse_ratio_vs_mle"] = {
                    n: results[name][kind]["rmse"][n] / results[name]["mle_rmse"][n] for n in ("m", "s")
                }
    if name_pk := results.get("pk"):
        if "hand" in name_pk:
            means = ("log_ka", "log_cl", "log_v")
            results["pk_mean_rmse_ratio"] = {
                kind: {n: name_pk[kind]["rmse"][n] / name_pk["hand"]["rmse"][n] for n in means} for kind in name_pk if kind != "hand"
            }
    results["reps"] = args.reps
    results["wall_s"] = time.perf_counter() - started
    path = ROOT / "benchmarks" / "results" / "statistics.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    for key, value in results.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key].update(value)
        else:
            merged[key] = value
    path.write_text(json.dumps(merged, indent=1) + "\n")
    print(json.dumps(results) if args.json else json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
