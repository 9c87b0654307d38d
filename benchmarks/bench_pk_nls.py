"""What the PK model's per-subject NLS statistics cost a fit, against its hand-written statistics.

Usage: python benchmarks/bench_pk_nls.py [--reps 3] [--json]

The zoo's PK scenario (``scenarios/pk.toml``: its design, truth and ``[fit]`` options) is
simulated once at the truth and fitted with ``pk.statistics("auxiliary")`` (each subject's
nonlinear least squares, :func:`simfit.statistics.nls`) and with ``pk.statistics("hand")``,
alternately, ``reps`` times each after one warm-up fit of each (compiled code loaded). Timings
taken on a shared machine are compared as ratios of runs interleaved in the same process.

Figures (the last line of stdout is one JSON object with --json; nothing is written to disk):

pk_fit_s_nls / pk_fit_s_hand
    median wall time of a fit with each statistics set.
pk_nls_over_hand
    their ratio (target: at most 2).
pk_stats_ms_nls / pk_stats_ms_hand
    median wall time of the statistics of 1,000 panels at the truth (simulation included), the
    NLS set centred on the observed subjects' fits as fits centre it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import simfit
from simfit.engine import calibrated_statistics
from simfit.models import pk
from simfit.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    scenario = load_scenario(ROOT / "scenarios" / "pk.toml")
    model, _ = scenario.build()
    design, truth, options = scenario.design_panel(), dict(scenario.truth), dict(scenario.fit_table)
    data = simfit.Simulator(model, design).simulate(truth, seed=args.seed).panel(0)
    sets = {"nls": pk.statistics("auxiliary"), "hand": pk.statistics("hand")}
    centred = {"nls": calibrated_statistics(sets["nls"], data)[0], "hand": sets["hand"]}
    simulators = {kind: simfit.Simulator(model, design, stats) for kind, stats in centred.items()}

    def fit_seconds(kind: str) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = time.perf_counter()
            simfit.fit(model, data, sets[kind], seed=1, **options)
            return time.perf_counter() - t

    def stats_seconds(kind: str, seed: int) -> float:
        t = time.perf_counter()
        simulators[kind].statistics(truth, n_sims=1000, seed=seed)
        return time.perf_counter() - t

    for kind in sets:  # warm-up: compiled code loaded, nothing measured
        fit_seconds(kind)
        stats_seconds(kind, 0)
    fits: dict[str, list[float]] = {kind: [] for kind in sets}
    panels: dict[str, list[float]] = {kind: [] for kind in sets}
    for rep in range(args.reps):
        for kind in sets:
            fits[kind].append(fit_seconds(kind))
            panels[kind].append(stats_seconds(kind, rep + 1))
    out = {f"pk_fit_s_{kind}": statistics.median(fits[kind]) for kind in sets}
    out["pk_nls_over_hand"] = out["pk_fit_s_nls"] / out["pk_fit_s_hand"]
    out.update({f"pk_stats_ms_{kind}": 1000.0 * statistics.median(panels[kind]) for kind in sets})
    out["reps"] = args.reps
    out["wall_s"] = time.perf_counter() - started
    if not args.json:
        for key, value in out.items():
            print(f"{key:24s} {value}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
