"""Recovery study of a model-zoo scenario; writes benchmarks/results/<model>.md.

Usage: python benchmarks/bench_zoo_recovery.py SCENARIO [--reps 100] [--jobs 2] [--json]

Runs the scenario's recovery study (its truth or prior, design and fit options) and writes a
Markdown table per population parameter (truth, bias, RMSE, coverage of 95% intervals,
convergence rate, median fit time) to ``benchmarks/results/<scenario>.md``; with ``--json`` the
same figures are the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from simfit.scenario import load_scenario
from simfit.study import recover

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", help="scenario name in scenarios/ or a path")
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = Path(args.scenario)
    if not path.exists():
        path = ROOT / "scenarios" / f"{args.scenario}.toml"
    sc = load_scenario(path)
    model, stats = sc.build()
    seed = sc.study.seed if args.seed is None else args.seed
    started = time.perf_counter()
    result = recover(
        model, sc.design_panel(), stats, sc.truth, prior=sc.truth_spec().prior, grid=sc.grid or None,
        reps=args.reps, seed=seed, alpha=0.05, options=sc.fit, n_jobs=args.jobs, start=sc.start or None,
    )
    wall = time.perf_counter() - started
    summary = result.summary()
    info = result.to_dict()
    lines = [
        f"# Recovery: {path.stem}",
        "",
        f"Scenario `scenarios/{path.name}`, {args.reps} replications, seed {seed}, "
        f"{args.jobs} workers, {wall:.0f} s in all. Produced by "
        f"`python benchmarks/bench_zoo_recovery.py {path.stem} --reps {args.reps}`.",
        "",
        "| parameter | truth (mean) | bias | RMSE | coverage 95% | convergence rate | median fit (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    table = {}
    for name, row in summary.iterrows():
        lines.append(
            f"| {name} | {row['truth_mean']:.4g} | {row['bias']:.4g} | {row['rmse']:.4g} | "
            f"{row['coverage95']:.3f} | {row['convergence_rate']:.3f} | {info['median_fit_s']:.3f} |"
        )
        table[name] = {k: float(row[k]) for k in ("truth_mean", "bias", "rmse", "coverage95", "convergence_rate")}
    short = [n for n, v in table.items() if not 0.90 <= v["coverage95"] <= 0.98]
    lines += ["", f"J-test rejection rate at 5%: {info['jtest_reject_rate']}."]
    if short:
        lines.append(
            f"Coverage outside 0.90-0.98 for: {', '.join(short)} (see the README's model zoo section)."
        )
    out = ROOT / "benchmarks" / "results" / f"{path.stem}.md"
    out.write_text("\n".join(lines) + "\n")
    results = {
        "scenario": path.stem,
        "reps": args.reps,
        "params": table,
        "median_fit_s": info["median_fit_s"],
        "jtest_reject_rate": info["jtest_reject_rate"],
        "coverage_outside_090_098": short,
        "wall_s": wall,
        "table": str(out.relative_to(ROOT)),
    }
    print("\n".join(lines))
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
