"""Posterior expectations beside modes for a weakly identified population spread.

Usage: python benchmarks/bench_modes.py [--datasets 100] [--jobs 2] [--seed 2026] [--json]

Scenario ``scenarios/few_units.toml``: the linear random-intercept model
``y_ij = mu + b_i + e_ij``, ``b_i ~ N(0, tau^2)``, 8 units x 5 observations, ``mu = 1``,
``tau = 0.3``, ``sigma = 1``; its priors, fit options (the extremum estimate) and synthetic-likelihood
sampler options.

(a) One dataset, simulated with the scenario's ``[simulate]`` seed and sampled with its ``[sample]``
    options (what ``simfit sample scenarios/few_units.toml`` shows): per parameter the truth, the
    extremum estimate of the sampler's preliminary fit with its sandwich standard error and 95%
    interval, the joint posterior mode (``Posterior.map()``), the mode of the marginal posterior,
    and the posterior mean, sd and 90% interval.
(b) ``--datasets`` datasets simulated at the truth, each fitted (``simfit.fit`` with the scenario's
    ``[fit]`` options) and sampled with its own seeds: for the spread ``tau``, how often the
    extremum estimate, the joint MAP, the marginal posterior mode and the posterior mean lie within
    0.05 of zero, the mean of each against the truth, and the coverage of the 90% posterior
    interval and of the fit's 95% interval. Extremum-estimate figures use every dataset; posterior
    figures the datasets whose sampling succeeded (failures are counted and reported). Results do
    not depend on ``--jobs``.

The marginal mode is the highest point of a Gaussian kernel density estimate of one parameter's
draws on its natural scale, reflected at a finite lower bound (the density of a spread then has
zero slope at 0, as the likelihood of this model, a function of ``tau^2``, does) with Silverman's
bandwidth computed from the bulk effective sample size of the draws.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

import simfit
from simfit.bayes.posterior import weighted_quantile
from simfit.errors import SimfitError
from simfit.estimation import derive_seed
from simfit.parallel import run_parallel
from simfit.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "few_units.toml"
SPREAD = "tau"
NEAR_ZERO = 0.05
GRID = 1024
# Estimates below this are printed as 0: they sit on the bound (an optimizer far out on the log scale).
TINY = 1e-10


def marginal_mode(x: np.ndarray, lower: float = -np.inf, ess: float | None = None, weights: np.ndarray | None = None) -> float:
    """Mode of a one-dimensional posterior from its draws.

    Gaussian kernel density estimate on the natural scale, reflected at ``lower`` when it is
    finite (so that the estimate has no spurious dip at a bound where the density is highest),
    maximised on a grid from the bound (or the smallest draw) to the 99.5% quantile. The bandwidth
    is Silverman's rule ``0.9 min(sd, IQR / 1.34) n^(-1/5)`` with ``n`` the effective sample size.
    """
    x = np.asarray(x, dtype=float)
    w = np.full(x.size, 1.0 / x.size) if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    keep = np.isfinite(x)
    x, w = x[keep], w[keep] / w[keep].sum()
    n = float(ess) if ess is not None and np.isfinite(ess) else float(x.size)
    n = min(max(n, 10.0), float(x.size))
    mean = np.sum(w * x)
    sd = np.sqrt(np.sum(w * (x - mean) ** 2))
    q25, q75 = weighted_quantile(x, [0.25, 0.75], w if weights is not None else None)
    scale = min(sd, (q75 - q25) / 1.349) if q75 > q25 else sd
    if not scale > 0:
        return float(x[0])
    h = 0.9 * scale * n ** -0.2
    top = float(weighted_quantile(x, 0.995, w if weights is not None else None))
    start = lower if np.isfinite(lower) else float(x.min())
    grid = np.linspace(start, top, GRID)
    density = np.zeros(GRID)
    for chunk in np.array_split(np.arange(x.size), max(1, x.size // 1000)):
        xc, wc = x[chunk], w[chunk]
        density += (np.exp(-0.5 * ((grid[:, None] - xc) / h) ** 2) * wc).sum(axis=1)
        if np.isfinite(lower):
            density += (np.exp(-0.5 * ((grid[:, None] - (2 * lower - xc)) / h) ** 2) * wc).sum(axis=1)
    return float(grid[int(np.argmax(density))])


def draw_posterior(model, statistics, data, scenario, seed: int):
    """``simfit.sample`` with the scenario's priors, ``[fit]`` and ``[sample]`` settings (as
    ``simfit sample`` runs it)."""
    spec = scenario.sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return simfit.sample(
            model, data, statistics, scenario.prior, spec.method, chains=spec.chains, draws=spec.draws,
            warmup=spec.warmup, seed=seed, options=dict(spec.options), fit_options=scenario.fit,
        )


def fit_summary(model, fit) -> dict:
    """Per parameter: the extremum estimate, its sandwich se and 95% interval."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        se = fit.se()
        ci95 = fit.conf_int(0.05)
    return {
        name: {
            "estimate": float(fit.params[name]),
            "se": float(se[name]),
            "ci95": [float(ci95.loc[name, "lower"]), float(ci95.loc[name, "upper"])],
        }
        for name in model.param_names
    }


def posterior_summary(model, post) -> dict:
    """Per parameter: joint MAP, marginal mode, posterior mean, sd, 90% interval, diagnostics."""
    flat = post.draws.reshape(-1, post.draws.shape[2])
    weights = None if post.weights is None else post.weights.reshape(-1)
    ess, rhat = post.ess("bulk"), post.rhat()
    mean, sd, interval, post_map = post.mean(), post.sd(), post.interval(0.1), post.map()
    out = {}
    for j, name in enumerate(model.param_names):
        out[name] = {
            "map": float(post_map[name]),
            "marginal_mode": marginal_mode(flat[:, j], model.params[name].bounds[0], ess[name], weights),
            "mean": float(mean[name]),
            "sd": float(sd[name]),
            "ci90": [float(interval.loc[name, "lower"]), float(interval.loc[name, "upper"])],
            # Share of the draws below the joint MAP: near 0 when the MAP sits in the extreme tail.
            "map_quantile": float(np.mean(flat[:, j] < post_map[name])),
            "rhat": float(rhat[name]),
            "ess_bulk": float(ess[name]),
        }
    return out


def _replicate(r: int, seed: int, scenario_path: str) -> dict:
    """Dataset ``r``: simulate at the scenario's truth; fit it; sample its posterior (own seeds).

    The extremum estimate is a separate fit with the scenario's ``[fit]`` options, so that it is
    recorded also when the sampler fails.
    """
    sc = load_scenario(scenario_path)
    model, stats = sc.build()
    data = simfit.simulate(model, sc.design_panel(), sc.truth, seed=derive_seed(seed, 100, r)).panel(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = simfit.fit(model, data, stats, options=replace(sc.fit, seed=derive_seed(seed, 300, r)))
    row = {"dataset": r, "fit": fit_summary(model, fit), "converged": bool(fit.converged), "posterior": None, "error": None}
    started = time.perf_counter()
    try:
        post = draw_posterior(model, stats, data, sc, derive_seed(seed, 200, r))
    except SimfitError as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
    else:
        row["posterior"] = posterior_summary(model, post)
    row["seconds"] = time.perf_counter() - started
    return row


def _fmt(v: float) -> str:
    if not np.isfinite(v) or abs(v) > 1e300:
        return "inf" if v > 0 else "-inf" if v < 0 else "n/a"
    if 0 < abs(v) < TINY:
        return "0"
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def one_dataset_table(fit: dict, posterior: dict, truth: dict) -> list[str]:
    lines = [
        "| parameter | truth | extremum estimate (se) | fit 95% interval | joint MAP | marginal mode "
        "| posterior mean | posterior sd | 90% posterior interval |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in truth:
        f, p = fit[name], posterior[name]
        lines.append(
            f"| {name} | {truth[name]:g} | {_fmt(f['estimate'])} ({_fmt(f['se'])}) "
            f"| [{_fmt(f['ci95'][0])}, {_fmt(f['ci95'][1])}] | {_fmt(p['map'])} | {_fmt(p['marginal_mode'])} "
            f"| {_fmt(p['mean'])} | {_fmt(p['sd'])} | [{_fmt(p['ci90'][0])}, {_fmt(p['ci90'][1])}] |"
        )
    bound = [name for name in truth if 0 < fit[name]["estimate"] < TINY]
    if bound:
        lines += ["", f"Estimate 0: the extremum estimate of {', '.join(bound)} lies on its bound (below {TINY:g}); "
                  "its sandwich se is then undefined (n/a) or infinite and the fit's interval unbounded."]
    return lines


def _covers(intervals: np.ndarray, value: float) -> np.ndarray:
    return (intervals[:, 0] <= value) & (value <= intervals[:, 1])


def summarise(rows: list[dict], truth: dict) -> dict:
    """Frequencies, means and coverages over the datasets.

    Extremum-estimate figures use every dataset; posterior figures the datasets whose sampling
    succeeded (``sampled``), beside the extremum-estimate figures of the same datasets.
    """
    t = truth[SPREAD]
    ok = [r for r in rows if r["posterior"] is not None]
    est_all = np.array([r["fit"][SPREAD]["estimate"] for r in rows])
    ci95_all = np.array([r["fit"][SPREAD]["ci95"] for r in rows], dtype=float)
    failed = np.array([r["posterior"] is None for r in rows])

    def fcol(key, subset):
        return np.array([r["fit"][SPREAD][key] for r in subset], dtype=float)

    def pcol(key, name=SPREAD):
        return np.array([r["posterior"][name][key] for r in ok], dtype=float)

    est = fcol("estimate", ok)
    spread = {
        "truth": t,
        "datasets": len(rows),
        "estimate_near_zero": float(np.mean(est_all < NEAR_ZERO)),
        "mean_estimate": float(np.mean(est_all)),
        "bias_estimate": float(np.mean(est_all) - t),
        "rmse_estimate": float(np.sqrt(np.mean((est_all - t) ** 2))),
        "coverage95_fit": float(np.mean(_covers(ci95_all, t))),
        "fit_ci95_upper_above_10": float(np.mean(~(ci95_all[:, 1] <= 10.0))),
        "fit_converged": float(np.mean([r["converged"] for r in rows])),
        "sampling_failures": int(failed.sum()),
        "sampling_failures_with_estimate_near_zero": int(np.sum(failed & (est_all < NEAR_ZERO))),
        "sampled": len(ok),
    }
    if ok:
        mp, mode, mean = pcol("map"), pcol("marginal_mode"), pcol("mean")
        spread.update({
            "sampled_estimate_near_zero": float(np.mean(est < NEAR_ZERO)),
            "sampled_map_near_zero": float(np.mean(mp < NEAR_ZERO)),
            "sampled_marginal_mode_near_zero": float(np.mean(mode < NEAR_ZERO)),
            "sampled_posterior_mean_near_zero": float(np.mean(mean < NEAR_ZERO)),
            "sampled_mean_estimate": float(np.mean(est)),
            "sampled_mean_map": float(np.mean(mp)),
            "sampled_mean_marginal_mode": float(np.mean(mode)),
            "sampled_mean_posterior_mean": float(np.mean(mean)),
            "sampled_bias_estimate": float(np.mean(est) - t),
            "sampled_bias_map": float(np.mean(mp) - t),
            "sampled_bias_marginal_mode": float(np.mean(mode) - t),
            "sampled_bias_posterior_mean": float(np.mean(mean) - t),
            "sampled_rmse_estimate": float(np.sqrt(np.mean((est - t) ** 2))),
            "sampled_rmse_posterior_mean": float(np.sqrt(np.mean((mean - t) ** 2))),
            "sampled_coverage90_posterior": float(np.mean(_covers(np.array([r["posterior"][SPREAD]["ci90"] for r in ok]), t))),
            "sampled_coverage95_fit": float(np.mean(_covers(np.array([r["fit"][SPREAD]["ci95"] for r in ok]), t))),
            "map_below_q01": float(np.mean(pcol("map_quantile") < 0.01)),
            "map_quantile_median": float(np.median(pcol("map_quantile"))),
            "rhat_above_1_01": float(np.mean(pcol("rhat") > 1.01)),
            "rhat_max": float(np.max(pcol("rhat"))),
            "ess_bulk_median": float(np.median(pcol("ess_bulk"))),
        })
    others = {}
    for name, v in truth.items():
        if name == SPREAD:
            continue
        e = np.array([r["fit"][name]["estimate"] for r in rows])
        c95 = np.array([r["fit"][name]["ci95"] for r in rows], dtype=float)
        others[name] = {
            "truth": v,
            "bias_estimate": float(np.mean(e) - v),
            "coverage95_fit": float(np.mean(_covers(c95, v))),
        }
        if ok:
            c90 = np.array([r["posterior"][name]["ci90"] for r in ok], dtype=float)
            others[name]["sampled_bias_posterior_mean"] = float(np.mean(pcol("mean", name)) - v)
            others[name]["sampled_coverage90_posterior"] = float(np.mean(_covers(c90, v)))
    return {"spread": spread, "others": others}


def report(summary: dict, rows: list[dict]) -> list[str]:
    s = summary["spread"]
    n, m = s["datasets"], s["sampled"]
    lines = [
        f"| summary of {SPREAD} (truth {s['truth']:g}) | datasets | share within {NEAR_ZERO} of 0 | mean | bias |",
        "|---|---|---|---|---|",
        f"| extremum estimate | all {n} | {s['estimate_near_zero']:.2f} | {s['mean_estimate']:.3f} | {s['bias_estimate']:+.3f} |",
    ]
    if m:
        for label, key in (("extremum estimate", "estimate"), ("joint MAP (`Posterior.map()`)", "map"),
                           ("marginal posterior mode", "marginal_mode"), ("posterior mean", "posterior_mean")):
            lines.append(
                f"| {label} | sampled {m} | {s[f'sampled_{key}_near_zero']:.2f} | {s[f'sampled_mean_{key}']:.3f} "
                f"| {s[f'sampled_bias_{key}']:+.3f} |"
            )
    lines += [
        "",
        f"- coverage of the fit's 95% interval of {SPREAD}: {s['coverage95_fit']:.2f} (all {n}); its upper end "
        f"lies above 10 in {s['fit_ci95_upper_above_10']:.2f} of the datasets; fits converged: {s['fit_converged']:.2f}",
        f"- sampling failed on {s['sampling_failures']} of {n} datasets "
        f"({s['sampling_failures_with_estimate_near_zero']} of them with the extremum estimate of {SPREAD} within {NEAR_ZERO} of 0)",
    ]
    if m:
        lines += [
            f"- coverage of the 90% posterior interval of {SPREAD}: {s['sampled_coverage90_posterior']:.2f} "
            f"(fit's 95% interval on the same datasets: {s['sampled_coverage95_fit']:.2f})",
            f"- RMSE of {SPREAD} on the sampled datasets: extremum estimate {s['sampled_rmse_estimate']:.3f}, "
            f"posterior mean {s['sampled_rmse_posterior_mean']:.3f}",
            f"- joint MAP of {SPREAD} below the 1% quantile of its own draws in {s['map_below_q01']:.2f} of the "
            f"sampled datasets (median share of draws below it: {s['map_quantile_median']:.4f})",
            f"- R-hat of {SPREAD} above 1.01 in {s['rhat_above_1_01']:.2f} of the sampled datasets (max {s['rhat_max']:.3f}); "
            f"median bulk ESS {s['ess_bulk_median']:.0f}",
        ]
    for name, o in summary["others"].items():
        text = f"- {name}: bias of the estimate {o['bias_estimate']:+.3f}, fit 95% coverage {o['coverage95_fit']:.2f}"
        if m:
            text += (f"; bias of the posterior mean {o['sampled_bias_posterior_mean']:+.3f}, "
                     f"90% posterior coverage {o['sampled_coverage90_posterior']:.2f}")
        lines.append(text)
    errors = sorted({r["error"].split(" {")[0] for r in rows if r["error"]})
    for e in errors:
        lines.append(f"- sampler error: {e}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--scenario", default=str(SCENARIO))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = Path(args.scenario).resolve()
    sc = load_scenario(path)
    model, stats = sc.build()
    truth = {n: sc.truth[n] for n in model.param_names}

    started = time.perf_counter()
    data = simfit.simulate(model, sc.design_panel(), truth, seed=sc.simulate.seed).panel(0)
    one = {"simulate_seed": sc.simulate.seed, "sample_seed": sc.sample.seed}
    try:
        post = draw_posterior(model, stats, data, sc, sc.sample.seed)
    except SimfitError as exc:
        one["error"] = f"{type(exc).__name__}: {exc}"
        print(f"(a) one dataset: sampling failed: {one['error']}")
    else:
        one.update(seconds=post.seconds, fit=fit_summary(model, post.fit), posterior=posterior_summary(model, post))
        print(f"(a) one dataset: {path.name}, [simulate] seed {sc.simulate.seed}, [sample] seed {sc.sample.seed}, "
              f"{post.seconds:.1f} s sampling ({time.perf_counter() - started:.1f} s with set-up)")
        print()
        print("\n".join(one_dataset_table(one["fit"], one["posterior"], truth)))
    print()

    started = time.perf_counter()
    tasks = [(r, args.seed, str(path)) for r in range(args.datasets)]
    rows = run_parallel(_replicate, tasks, n_jobs=args.jobs)
    wall = time.perf_counter() - started
    summary = summarise(rows, truth)
    median_s = float(np.median([r["seconds"] for r in rows]))
    print(f"(b) {args.datasets} datasets at the truth, seed {args.seed}, {args.jobs} worker(s), {wall:.0f} s "
          f"(median {median_s:.2f} s of sampling per dataset)")
    print()
    print("\n".join(report(summary, rows)))
    results = {
        "scenario": path.stem,
        "truth": truth,
        "one_dataset": one,
        "datasets": args.datasets,
        "seed": args.seed,
        "jobs": args.jobs,
        "near_zero": NEAR_ZERO,
        **summary,
        "failed_datasets": [r["dataset"] for r in rows if r["error"]],
        "wall_s": wall,
        "median_sampling_s": median_s,
    }
    if args.json:
        print(json.dumps(_plain(results)))


def _plain(value):
    """JSON-ready: non-finite numbers become null."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


if __name__ == "__main__":
    main()
