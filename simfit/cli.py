"""The ``simfit`` command line.

``simfit simulate SCENARIO`` simulates the scenario's model at its true parameters on its design
and prints the auxiliary statistics (``--out FILE.csv`` also writes the simulated panel);
``simfit list`` lists the shipped scenarios; ``simfit show SCENARIO`` prints a scenario.
Errors print one line and exit with status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from simfit.errors import SimfitError

SCENARIO_DIRS = (Path.cwd() / "scenarios", Path(__file__).resolve().parent.parent / "scenarios")


def _find_scenario(name: str) -> Path:
    path = Path(name)
    if path.exists() or path.suffix == ".toml":
        return path
    for folder in SCENARIO_DIRS:
        candidate = folder / f"{name}.toml"
        if candidate.exists():
            return candidate
    return path


def _cmd_simulate(args) -> dict:
    from simfit.engine import Simulator
    from simfit.scenario import load_scenario

    scenario = load_scenario(_find_scenario(args.scenario))
    model = scenario.build_model()
    stats = scenario.build_statistics()
    design = scenario.design.panel()
    seed = scenario.simulate.seed if args.seed is None else args.seed
    n_sims = scenario.simulate.n_sims if args.n_sims is None else args.n_sims
    started = time.perf_counter()
    simulator = Simulator(model, design, stats)
    setup_s = time.perf_counter() - started
    started = time.perf_counter()
    result = simulator.simulate(scenario.truth, n_sims=n_sims, seed=seed)
    simulate_s = time.perf_counter() - started
    observed = [simulator.observed(result.panel(s)) for s in range(n_sims)] if stats is not None else []
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result.to_frame().to_csv(out, index=False)
    summary = {
        "scenario": str(scenario.path),
        "model": model.name,
        "truth": scenario.truth,
        "design": {"units": design.n_units, "observations": design.n_obs, "levels": design.level_sizes()},
        "seed": seed,
        "n_sims": n_sims,
        "statistics": [dict(zip(simulator.names, map(float, row))) for row in observed],
        "setup_s": round(setup_s, 4),
        "simulate_s": round(simulate_s, 4),
        "out": args.out,
    }
    if not args.json:
        print(f"{model!r}")
        print(f"design: {design!r}")
        print(f"truth: {scenario.truth}   seed: {seed}")
        for s, row in enumerate(observed):
            print(f"\nstatistics of simulated panel {s}:")
            width = max(len(n) for n in simulator.names)
            for name, value in zip(simulator.names, row):
                print(f"  {name:<{width}}  {value: .6f}")
        print(f"\nset-up (compile or cache load) {setup_s:.2f} s, simulation {simulate_s:.4f} s")
        if args.out:
            print(f"simulated panel written to {args.out}")
    return summary


def _cmd_list(args) -> dict:
    found = []
    for folder in SCENARIO_DIRS:
        if folder.is_dir():
            found.extend(sorted(str(p) for p in folder.glob("*.toml")))
    found = list(dict.fromkeys(found))
    if not args.json:
        print("\n".join(found) if found else "no scenarios found")
    return {"scenarios": found}


def _cmd_show(args) -> dict:
    from simfit.scenario import load_scenario

    scenario = load_scenario(_find_scenario(args.scenario))
    model = scenario.build_model()
    info = {
        "scenario": str(scenario.path),
        "model": model.name,
        "params": list(model.param_names),
        "levels": [lv.name for lv in model.levels],
        "truth": scenario.truth,
        "design": vars(scenario.design),
        "simulate": vars(scenario.simulate),
    }
    if not args.json:
        print(scenario.path.read_text())
        print(f"# {model!r}")
    return info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simfit", description="Indirect inference for nonlinear hierarchical models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="simulate a scenario at its true parameters")
    p.add_argument("scenario", help="scenario file (or name of a shipped scenario)")
    p.add_argument("--out", help="write the simulated panel(s) to this CSV file")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--n-sims", type=int, default=None, dest="n_sims")
    p.add_argument("--json", action="store_true", help="print one JSON summary as the last line")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("list", help="list shipped scenarios")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="print a scenario")
    p.add_argument("scenario")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = args.func(args)
    except (SimfitError, ValueError, OSError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"simfit: error: {message}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
