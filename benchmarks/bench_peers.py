"""simfit against peer estimators on the same datasets: estimagic's MSM and statsmodels' MixedLM.

Usage: python benchmarks/bench_peers.py [--reps 200] [--jobs 1] [--seed 2026] [--json] [--out DIR]

Two comparisons, each on ``reps`` seeded datasets; on every dataset simfit fits first and the peer
second, in the same process and on one thread (Numba, OpenMP, MKL and OpenBLAS are set to one
thread before they load; ``--jobs`` runs whole datasets in parallel processes):

- ``estimagic``: the log-normal/exponential model (``m = 0``, ``s = 0.5``; 100 units x 50
  observations). simfit: ``fit(..., n_sims=10)`` with its defaults (default intervals) and the same
  with ``bootstrap=0`` (Wald intervals). Peer: ``estimagic.estimate_msm`` with a NumPy simulator of
  the same model (10 panels, common random numbers drawn once per dataset), the same four
  statistics as ``lognormal_exponential.statistics()`` (mean and sd across units of the log unit
  means and of the unit means), their covariance from ``get_moments_cov`` (its default 1,000
  bootstrap draws, resampling units; a unit drawn twice counts twice), its default weighting
  (``"diagonal"``), L-BFGS-B from the model's start values (``m = 0``, ``s = 1``, ``s >= 0``) and its
  robust standard errors (which leave out the simulation noise, no ``1 + 1/S`` factor). The peer's
  time covers both calls. The maximum-likelihood reference is the exact MLE by quadrature
  (``_exact_lognormal.py``).
- ``mixedlm``: the linear random-intercept model (``mu = 1``, ``tau = 0.5``, ``sigma = 1``; 50
  units x 20 observations); simfit as above (``n_sims=10``, the quick start's settings). Peer:
  statsmodels ``MixedLM`` by maximum likelihood (``reml=False``), which is also the MLE reference
  (``tau = sqrt(cov_re)``, ``sigma = sqrt(scale)``). Its intervals: ``conf_int()`` for ``mu``;
  ``cov_re +- 1.96 bse_re`` (the summary's standard error) mapped by the square root for ``tau``;
  MixedLM reports no standard error for the residual variance, so ``sigma``'s interval is the
  Wald interval of ``sigma^2`` from the expected information of the balanced design
  (``var = 2 sigma^4 / (N (n - 1))``), mapped by the square root.

Reported per comparison: the median over datasets of the per-dataset time ratio simfit / peer
(``time_ratio_default``, ``time_ratio_wald``), the coverage of 95% intervals per parameter
(``coverage_default``, ``coverage_wald``, ``coverage_peer``), bias and RMSE per estimator,
``rmse_ratio_vs_mle`` (simfit's RMSE over the MLE's; ``rmse_ratio_peer_vs_mle`` likewise), median
seconds and simulated panels per fit (simfit's ``n_simulations``; the peer's simulator calls
times 10), and ``targets_met``: default time ratio <= 0.5 against estimagic and <= 1.0 against
MixedLM, every default coverage in [0.92, 0.98], every RMSE ratio <= 1.10.

A full run (``--reps`` at least the default, 200 datasets per comparison: about 15 minutes with
``--jobs 2`` on two shared cores) writes ``benchmarks/results/peers.json`` and
``peers.md``; a shorter run writes only where ``--out`` points. The last line of stdout is the
JSON of the run with ``--json``. Needs the ``bench`` extra (estimagic, statsmodels).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import warnings
from pathlib import Path

os.environ["NUMBA_NUM_THREADS"] = "1"  # before Numba and the BLAS libraries load: one thread
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import numpy as np
import pandas as pd
from _exact_lognormal import log_likelihood
from scipy.optimize import minimize

import simfit
from simfit.estimation import derive_seed, fit
from simfit.models import lognormal_exponential, random_intercept
from simfit.parallel import run_parallel

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REPS = 200
N_SIMS = 10
Z95 = 1.959963984540054
COMPARISONS = {
    "estimagic": {
        "module": lognormal_exponential, "units": 100, "per_unit": 50, "truth": {"m": 0.0, "s": 0.5},
        "time_target": 0.5,
    },
    "mixedlm": {
        "module": random_intercept, "units": 50, "per_unit": 20, "truth": {"mu": 1.0, "tau": 0.5, "sigma": 1.0},
        "time_target": 1.0,
    },
}
LOGNORMAL_STATS = ("mean:y.logmean", "mean:y.mean", "sd:y.logmean", "sd:y.mean")
_WARM: set[str] = set()


# --------------------------------------------------------------------------- data and simfit


def dataset(name: str, rep: int, seed: int) -> simfit.Panel:
    """Dataset ``rep`` of a comparison (the same seeds as the recovery benchmarks)."""
    spec = COMPARISONS[name]
    design = simfit.Panel.balanced(spec["units"], spec["per_unit"])
    sim = simfit.Simulator(spec["module"].model(), design)
    return sim.simulate(spec["truth"], seed=derive_seed(seed, 100, rep)).panel(0)


def simfit_fit(name: str, data: simfit.Panel, seed: int, **options) -> dict:
    """One timed simfit fit: estimate, 95% interval, seconds and simulated panels."""
    module = COMPARISONS[name]["module"]
    model = module.model()
    names = list(model.param_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        res = fit(model, data, module.statistics(), n_sims=N_SIMS, seed=seed, **options)
        seconds = time.perf_counter() - t
    ci = res.conf_int(0.05)
    return {
        "estimate": res.params[names].tolist(), "lower": ci["lower"][names].tolist(),
        "upper": ci["upper"][names].tolist(), "seconds": seconds, "panels": int(res.n_simulations),
        "converged": bool(res.converged),
    }


# --------------------------------------------------------------------------- estimagic peer


def lognormal_statistics(unit_means: np.ndarray) -> np.ndarray:
    """simfit's default log-normal statistics from unit means (last axis: units), in its order:
    mean and sd (ddof=1) across units of the log unit means and of the unit means."""
    log_means = np.log(unit_means)
    return np.stack(
        [log_means.mean(-1), unit_means.mean(-1), log_means.std(-1, ddof=1), unit_means.std(-1, ddof=1)], axis=-1
    )


def empirical_moments(frame: pd.DataFrame) -> pd.Series:
    """The statistics of a long data frame (columns ``unit``, ``y``; each unit's rows contiguous
    and in index order).

    A unit is a run of rows with one ``unit`` label and increasing index, so a unit drawn twice by
    estimagic's cluster bootstrap (which keeps the labels and the index) counts twice; grouping by
    the label would merge the copies and understate the moments' covariance."""
    unit, index = frame["unit"].to_numpy(), frame.index.to_numpy()
    starts = np.r_[True, (unit[1:] != unit[:-1]) | (index[1:] <= index[:-1])]
    block = np.cumsum(starts) - 1
    means = np.bincount(block, weights=frame["y"].to_numpy()) / np.bincount(block)
    return pd.Series(lognormal_statistics(means), index=LOGNORMAL_STATS)


def lognormal_simulator(n_units: int, per_unit: int, seed: int):
    """``simulate_moments(params)`` for estimagic: the mean statistics of ``N_SIMS`` panels of the
    log-normal/exponential model, with standard normal and exponential draws fixed once (common
    random numbers); ``calls`` counts its evaluations."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N_SIMS, n_units))
    e = rng.standard_exponential((N_SIMS, n_units, per_unit))
    calls = [0]

    def simulate_moments(params: dict) -> pd.Series:
        calls[0] += 1
        rates = np.exp(params["m"] + params["s"] * z)
        y = e / rates[..., None]  # exponential observations of rate exp(m + s z_i)
        return pd.Series(lognormal_statistics(y.mean(-1)).mean(axis=0), index=LOGNORMAL_STATS)

    return simulate_moments, calls


def estimagic_fit(data: simfit.Panel, seed: int) -> dict:
    """One timed ``estimate_msm`` fit (the moments' bootstrap covariance included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import estimagic as em
        import optimagic as om

    spec = COMPARISONS["estimagic"]
    frame = data.to_frame()
    simulate_moments, calls = lognormal_simulator(spec["units"], spec["per_unit"], derive_seed(seed, 1))
    start = {p.name: float(p.start) for p in spec["module"].model().params}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        moments_cov = em.get_moments_cov(
            frame, empirical_moments, bootstrap_kwargs={"cluster_by": "unit", "seed": derive_seed(seed, 2)}
        )
        cov_seconds = time.perf_counter() - t
        res = em.estimate_msm(
            simulate_moments, empirical_moments(frame), moments_cov, start, optimize_options="scipy_lbfgsb",
            bounds=om.Bounds(lower={"m": -np.inf, "s": 0.0}),
        )
        lower, upper = res.ci()
        seconds = time.perf_counter() - t
    return {
        "estimate": [float(res.params[n]) for n in start], "lower": [float(lower[n]) for n in start],
        "upper": [float(upper[n]) for n in start], "seconds": seconds, "moments_cov_seconds": cov_seconds,
        "panels": calls[0] * N_SIMS, "converged": bool(res.optimize_result.success),
    }


def exact_mle(data: simfit.Panel) -> list[float]:
    """The exact maximum-likelihood estimate of ``(m, s)`` (unit likelihoods by quadrature)."""
    y = data.values[:, 0]
    offsets = np.asarray(data.unit_offsets)
    n_obs, sums = np.diff(offsets), np.add.reduceat(y, offsets[:-1])
    res = minimize(
        lambda p: -log_likelihood(p[0], np.exp(p[1]), n_obs, sums)[()], x0=[0.0, np.log(0.5)],
        method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9},
    )
    return [float(res.x[0]), float(np.exp(res.x[1]))]


# --------------------------------------------------------------------------- MixedLM peer


def mixedlm_fit(data: simfit.Panel) -> dict:
    """One timed MixedLM maximum-likelihood fit, mapped to ``(mu, tau, sigma)`` with intervals."""
    import statsmodels.formula.api as smf

    frame = data.to_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        res = smf.mixedlm("y ~ 1", frame, groups=frame["unit"]).fit(reml=False)
        seconds = time.perf_counter() - t
        mu_lo, mu_hi = res.conf_int().iloc[0]
        tau2, tau2_se = float(res.cov_re.iloc[0, 0]), float(np.asarray(res.bse_re)[0])
    sigma2 = float(res.scale)
    n_units, n_obs = frame["unit"].nunique(), len(frame)
    sigma2_se = sigma2 * math.sqrt(2.0 / (n_obs - n_units))  # expected information, balanced design
    tau_ci = _sqrt_interval(tau2, tau2_se)
    sigma_ci = _sqrt_interval(sigma2, sigma2_se)
    return {
        "estimate": [float(res.fe_params.iloc[0]), math.sqrt(tau2), math.sqrt(sigma2)],
        "lower": [float(mu_lo), tau_ci[0], sigma_ci[0]], "upper": [float(mu_hi), tau_ci[1], sigma_ci[1]],
        "seconds": seconds, "converged": bool(res.converged),
    }


def _sqrt_interval(variance: float, se: float) -> tuple[float, float]:
    """The 95% Wald interval of a variance, mapped to the standard deviation's scale."""
    lo, hi = variance - Z95 * se, variance + Z95 * se
    return math.sqrt(max(lo, 0.0)), math.sqrt(max(hi, 0.0))


# --------------------------------------------------------------------------- one dataset


def replicate(name: str, rep: int, seed: int) -> dict:
    """Fit dataset ``rep``: simfit (default, then Wald only), then the peer; MLE last, untimed.

    The first call in a process runs the same fits once untimed, so compilation, cache loading
    and first imports stay out of the timings."""
    if name not in _WARM:
        _WARM.add(name)
        replicate(name, rep, seed)
    data = dataset(name, rep, seed)
    fit_seed = derive_seed(seed, 200, rep)
    row = {
        "default": simfit_fit(name, data, fit_seed),
        "wald": simfit_fit(name, data, fit_seed, bootstrap=0),
    }
    if name == "estimagic":
        row["peer"] = estimagic_fit(data, derive_seed(seed, 300, rep))
        row["mle"] = exact_mle(data)
    else:
        row["peer"] = mixedlm_fit(data)
        row["mle"] = row["peer"]["estimate"]
    return row


# --------------------------------------------------------------------------- summaries


def summarise(name: str, rows: list[dict]) -> dict:
    """Time ratios, coverage, bias, RMSE and panels of one comparison over its datasets."""
    spec = COMPARISONS[name]
    names = list(spec["truth"])
    true = np.array([spec["truth"][n] for n in names])

    def per_param(values) -> dict:
        return {n: float(v) for n, v in zip(names, values)}

    def coverage(kind: str) -> dict:
        lo = np.array([r[kind]["lower"] for r in rows])
        hi = np.array([r[kind]["upper"] for r in rows])
        return per_param(np.mean((lo <= true) & (true <= hi), axis=0))

    err = {kind: np.array([r[kind]["estimate"] for r in rows]) - true for kind in ("default", "peer")}
    err["mle"] = np.array([r["mle"] for r in rows]) - true
    rmse = {kind: np.sqrt(np.mean(e**2, axis=0)) for kind, e in err.items()}
    seconds = {kind: np.array([r[kind]["seconds"] for r in rows]) for kind in ("default", "wald", "peer")}
    out = {
        "time_ratio_default": float(np.median(seconds["default"] / seconds["peer"])),
        "time_ratio_wald": float(np.median(seconds["wald"] / seconds["peer"])),
        "coverage_default": coverage("default"),
        "coverage_wald": coverage("wald"),
        "coverage_peer": coverage("peer"),
        "rmse_ratio_vs_mle": per_param(rmse["default"] / rmse["mle"]),
        "rmse_ratio_peer_vs_mle": per_param(rmse["peer"] / rmse["mle"]),
        "rmse": {kind: per_param(v) for kind, v in (("simfit", rmse["default"]), ("peer", rmse["peer"]), ("mle", rmse["mle"]))},
        "bias": {kind: per_param(np.mean(err[key], axis=0)) for kind, key in (("simfit", "default"), ("peer", "peer"), ("mle", "mle"))},
        "median_seconds": {kind: float(np.median(v)) for kind, v in seconds.items()},
        "panels_per_fit": {kind: float(np.median([r[kind]["panels"] for r in rows])) for kind in ("default", "wald")},
        "convergence_rate": {kind: float(np.mean([r[kind]["converged"] for r in rows])) for kind in ("default", "peer")},
        "reps": len(rows),
    }
    if name == "estimagic":
        out["panels_per_fit"]["peer"] = float(np.median([r["peer"]["panels"] for r in rows]))
        out["median_seconds"]["peer_moments_cov"] = float(np.median([r["peer"]["moments_cov_seconds"] for r in rows]))
    out["targets"] = {
        "time_ratio_default": out["time_ratio_default"] <= spec["time_target"],
        "coverage_default": all(0.92 <= v <= 0.98 for v in out["coverage_default"].values()),
        "rmse_ratio_vs_mle": all(v <= 1.10 for v in out["rmse_ratio_vs_mle"].values()),
    }
    out["targets_met"] = all(out["targets"].values())
    return out


def markdown(results: dict) -> str:
    """The results as markdown tables (one per comparison)."""
    lines = [f"# simfit against peers ({results['reps']} datasets per comparison, seed {results['seed']}, one thread per fit)", ""]
    for name, res in ((n, results[n]) for n in COMPARISONS):
        target = COMPARISONS[name]["time_target"]
        sec = res["median_seconds"]
        lines += [
            f"## {name}", "",
            f"Median per-dataset time ratio simfit / peer: default {res['time_ratio_default']:.2f} (target <= {target}), "
            f"Wald only {res['time_ratio_wald']:.2f}. Median seconds: simfit default {sec['default']:.3f}, "
            f"Wald only {sec['wald']:.3f}, peer {sec['peer']:.3f}. Panels per simfit fit: default "
            f"{res['panels_per_fit']['default']:.0f}, Wald only {res['panels_per_fit']['wald']:.0f}. "
            f"Targets met: {'yes' if res['targets_met'] else 'no'}.", "",
            "| parameter | coverage default | coverage Wald | coverage peer | RMSE simfit | RMSE peer | RMSE MLE "
            "| simfit / MLE | peer / MLE |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in res["coverage_default"]:
            lines.append(
                f"| {p} | {res['coverage_default'][p]:.3f} | {res['coverage_wald'][p]:.3f} | {res['coverage_peer'][p]:.3f} "
                f"| {res['rmse']['simfit'][p]:.4f} | {res['rmse']['peer'][p]:.4f} | {res['rmse']['mle'][p]:.4f} "
                f"| {res['rmse_ratio_vs_mle'][p]:.3f} | {res['rmse_ratio_peer_vs_mle'][p]:.3f} |"
            )
        lines.append("")
    lines.append(f"Coverage Monte Carlo se at 0.95: {results['coverage_se']:.3f}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS)
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes over datasets (each fit on one thread)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, help="directory for peers.json and peers.md (default: benchmarks/results on a full run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict = {}
    for name in COMPARISONS:
        t = time.perf_counter()
        rows = run_parallel(replicate, [(name, r, args.seed) for r in range(args.reps)], n_jobs=args.jobs)
        results[name] = summarise(name, rows)
        results[name]["wall_s"] = time.perf_counter() - t
        print(f"{name}: time ratio default {results[name]['time_ratio_default']:.2f} wald {results[name]['time_ratio_wald']:.2f}, "
              f"coverage default {results[name]['coverage_default']}, rmse ratio {results[name]['rmse_ratio_vs_mle']} "
              f"({results[name]['wall_s']:.0f} s)", flush=True)
    results.update(
        reps=args.reps, seed=args.seed, jobs=args.jobs, n_sims=N_SIMS, coverage_se=float(np.sqrt(0.95 * 0.05 / args.reps)),
        targets_met=all(results[n]["targets_met"] for n in COMPARISONS), wall_s=time.perf_counter() - started,
    )
    out = args.out or (ROOT / "benchmarks" / "results" if args.reps >= DEFAULT_REPS else None)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "peers.json").write_text(json.dumps(results, indent=1) + "\n")
        (out / "peers.md").write_text(markdown(results))
    print(json.dumps(results) if args.json else json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
