"""Coverage of simfit's default 95% intervals, and the cost of the k-step bootstrap.

Usage: python benchmarks/bench_intervals.py [--models lognormal,lmm,ddm,pk] [--reps 100] [--jobs 2] [--json]

For each model, ``reps`` datasets are simulated at a fixed truth and fitted with the default
options (the scenario's ``[fit]`` table for the zoo models); each fit records the default
(``auto``) interval and, from the same fit's 200 k-step bootstrap replicates, the Wald,
percentile and bootstrap-t intervals. Reported per model and parameter: the coverage of each,
the method ``auto`` chose, bias and RMSE.

Models: ``lognormal`` (log-normal rates, exponential observations, 100 units x 50, S = 10),
``lmm`` (linear random intercept, 50 x 20, ``scenarios/quickstart.toml``), ``ddm`` and ``pk``
(their zoo scenarios).

On the log-normal model the script also measures ``bootstrap_time_ratio`` (a 200-replicate
k-step bootstrap's time over the fit's own) and ``kstep_vs_full_width`` (k-step over full-refit
bootstrap percentile-interval widths, 200 replicates each, on a few datasets).

Every run updates ``benchmarks/results/intervals.json`` with the models it ran (the others are
kept, each with its own settings), so models of very different cost can be run apart; the last
line of stdout is the JSON of this run. ``--no-global`` fits with the local phase alone
(``global_points=0``; the intervals are the default ones): a DDM fit with the global phase takes
minutes on one core.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

import simfit
from simfit.estimation import derive_seed, fit
from simfit.parallel import run_parallel
from simfit.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("lognormal", "lmm", "ddm", "pk")
METHODS = ("auto", "wald", "percentile", "bootstrap-t")
_CACHE: dict = {}


def setup(name: str):
    """(model, statistics, design, truth, fit options) of a benchmark model."""
    if name in _CACHE:
        return _CACHE[name]
    if name == "lognormal":
        from simfit.models import lognormal_exponential

        model, stats = lognormal_exponential.model(), lognormal_exponential.statistics()
        out = (model, stats, simfit.Panel.balanced(100, 50), {"m": 0.0, "s": 0.5}, {"n_sims": 10})
    else:
        sc = load_scenario(ROOT / "scenarios" / f"{'quickstart' if name == 'lmm' else name}.toml")
        model, stats = sc.build()
        out = (model, stats, sc.design_panel(), dict(sc.truth), dict(sc.fit_table))
    _CACHE[name] = out
    return out


def replicate(name: str, rep: int, seed: int, extra: dict | None = None) -> dict:
    model, stats, design, truth, options = setup(name)
    options = {**options, **(extra or {})}
    data = simfit.Simulator(model, design).simulate(truth, seed=derive_seed(seed, 100, rep)).panel(0)
    names = list(model.param_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        res = fit(model, data, stats, seed=derive_seed(seed, 200, rep), **{**options, "bootstrap": 200})
        seconds = time.perf_counter() - t
    # The default fit is this one, less the bootstrap where bootstrap="auto" would not run it.
    default_panels = res.n_simulations - (0 if res.concerns.need_bootstrap(res.at_bound) else res.bootstrap.n_simulations)
    row = {"estimate": res.params[names].tolist(), "converged": res.converged, "seconds": seconds,
           "bootstrap_seconds": res.bootstrap.seconds, "methods": res.interval_methods("auto")[names].tolist(),
           "default_panels": default_panels}
    for m in METHODS:
        ci = res.conf_int(0.05, m)
        row[m] = [ci["lower"][names].tolist(), ci["upper"][names].tolist()]
    return row


def coverage_table(name: str, rows: list[dict]) -> dict:
    model, _, _, truth, _ = setup(name)
    names = list(model.param_names)
    true = np.array([truth[n] for n in names])
    est = np.array([r["estimate"] for r in rows])
    out = {"bias": {}, "rmse": {}, "auto_method": {}}
    for m in METHODS:
        lo = np.array([r[m][0] for r in rows])
        hi = np.array([r[m][1] for r in rows])
        inside = (lo <= true) & (true <= hi)
        out[f"coverage_{m}"] = {n: float(np.mean(inside[:, j])) for j, n in enumerate(names)}
    for j, n in enumerate(names):
        err = est[:, j] - true[j]
        out["bias"][n] = float(np.mean(err))
        out["rmse"][n] = float(np.sqrt(np.mean(err**2)))
        picked = [r["methods"][j] for r in rows]
        out["auto_method"][n] = {m: picked.count(m) / len(picked) for m in sorted(set(picked))}
    out["convergence_rate"] = float(np.mean([r["converged"] for r in rows]))
    out["median_fit_s"] = float(np.median([r["seconds"] for r in rows]))
    out["default_panels_per_fit"] = float(np.median([r["default_panels"] for r in rows]))
    out["reps"] = len(rows)
    return out


def bootstrap_cost(seed: int, datasets: int = 5) -> dict:
    """k-step bootstrap time over fit time, and k-step over full-bootstrap interval widths."""
    model, stats, design, truth, options = setup("lognormal")
    names = list(model.param_names)
    ratios, widths = [], []
    for r in range(datasets):
        data = simfit.Simulator(model, design).simulate(truth, seed=derive_seed(seed, 300, r)).panel(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = fit(model, data, stats, seed=r, **{**options, "bootstrap": 0})
            kstep = fit(model, data, stats, seed=r, **{**options, "bootstrap": 200})
            full = fit(model, data, stats, seed=r, **{**options, "bootstrap": 200, "bootstrap_method": "full"})
        ratios.append(kstep.bootstrap.seconds / plain.seconds)
        wk = kstep.conf_int(0.05, "percentile")
        wf = full.conf_int(0.05, "percentile")
        widths.append([(wk["upper"][n] - wk["lower"][n]) / (wf["upper"][n] - wf["lower"][n]) for n in names])
    widths = np.array(widths)
    return {
        "bootstrap_time_ratio": float(np.median(ratios)),
        "kstep_vs_full_width": {n: float(np.mean(widths[:, j])) for j, n in enumerate(names)},
        "cost_datasets": datasets,
    }


def _merge(path: Path, results: dict) -> dict:
    """The results file updated with this run's models (and its bootstrap-cost figures)."""
    merged = json.loads(path.read_text()) if path.exists() else {}
    for key in ("coverage_default", "coverage_wald", "coverage_percentile", "coverage_bootstrap_t", "models"):
        merged.setdefault(key, {}).update(results[key])
    for key in ("bootstrap_time_ratio", "kstep_vs_full_width", "cost_datasets"):
        if key in results:
            merged[key] = results[key]
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-global", action="store_true", help="fit with global_points=0")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    extra = {"global_points": 0} if args.no_global else {}
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    started = time.perf_counter()
    results: dict = {"coverage_default": {}, "coverage_wald": {}, "coverage_percentile": {}, "coverage_bootstrap_t": {}, "models": {}}
    for name in models:
        t = time.perf_counter()
        replicate(name, 0, args.seed, extra)  # compile / load the cache before timing in workers
        rows = run_parallel(replicate, [(name, r, args.seed, extra) for r in range(args.reps)], n_jobs=args.jobs)
        table = coverage_table(name, rows)
        table["wall_s"] = time.perf_counter() - t
        table["global_phase"] = not args.no_global
        results["coverage_default"][name] = table.pop("coverage_auto")
        results["coverage_wald"][name] = table.pop("coverage_wald")
        results["coverage_percentile"][name] = table.pop("coverage_percentile")
        results["coverage_bootstrap_t"][name] = table.pop("coverage_bootstrap-t")
        results["models"][name] = table
        print(f"{name}: default {results['coverage_default'][name]} wald {results['coverage_wald'][name]} "
              f"({table['wall_s']:.0f} s)", flush=True)
    if "lognormal" in models:
        results.update(bootstrap_cost(args.seed))
    results["reps"] = args.reps
    results["wall_s"] = time.perf_counter() - started
    merged = _merge(ROOT / "benchmarks" / "results" / "intervals.json", results)
    values = [v for cov in merged["coverage_default"].values() for v in cov.values()]
    merged["min_coverage_default"] = float(min(values))
    merged["max_coverage_default"] = float(max(values))
    merged["targets_met"] = bool(
        0.92 <= merged["min_coverage_default"] and merged["max_coverage_default"] <= 0.98
        and merged.get("bootstrap_time_ratio", 0.0) <= 3.0 and set(merged["models"]) == set(MODELS)
    )
    (ROOT / "benchmarks" / "results" / "intervals.json").write_text(json.dumps(merged, indent=1) + "\n")
    values = [v for cov in results["coverage_default"].values() for v in cov.values()]
    results["min_coverage_default"] = float(min(values))
    results["max_coverage_default"] = float(max(values))
    results["coverage_se"] = float(np.sqrt(0.95 * 0.05 / args.reps))
    if args.json:
        print(json.dumps(results))
    else:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
