"""Parameter-recovery studies: does this design recover this model's parameters?

Each replication picks a truth (fixed values, a point of a grid, or a draw from a prior), simulates
an observed panel at it, fits the model with fresh common-random-number keys and records truth,
estimate, standard error, interval, convergence, J statistic and time. Replication ``r`` depends
only on ``(seed, r)``, so results are identical whatever the number of workers or the backend,
and a study written to a folder is checkpointed record by record and resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from simfit import jsonio
from simfit.bayes.priors import describe_prior, make_prior
from simfit.checkpoint import ReplicationStore, _write_atomic
from simfit.data import Panel
from simfit.engine import Simulator
from simfit.errors import ModelError, ScenarioError, SimfitError
from simfit.estimation import FitOptions, derive_seed, fit, require_fit_memory, sequential
from simfit.model import Model
from simfit.parallel import BACKENDS, iter_parallel
from simfit.resources import require_memory
from simfit.statistics.collection import Statistics
from simfit.statistics.projected import Projected, Projection

__all__ = ["TruthSpec", "make_prior", "recover", "RecoveryResult"]

#: File of a study folder holding the projection of projected statistics (reused on resume).
PROJECTION_FILE = "projection.json"


@dataclass(frozen=True)
class TruthSpec:
    """How replications choose their true parameters.

    ``fixed`` values for every parameter; ``grid`` maps some parameters to lists of values
    (replication ``r`` uses point ``r mod n_points`` of their Cartesian product); ``prior`` maps
    some parameters to distributions drawn from independently for each replication.
    """

    fixed: dict
    grid: dict | None = None
    prior: dict | None = None

    def validate(self, model: Model) -> None:
        names = model.param_names
        unknown = sorted(set(self.fixed) - set(names))
        if unknown:
            raise ModelError(f"Unknown parameter(s) {', '.join(unknown)}; the model has {', '.join(names)}.")
        varied = set(self.grid or {}) | set(self.prior or {})
        missing = [n for n in names if n not in self.fixed and n not in varied]
        if missing:
            raise ModelError(f"No truth, grid or prior for parameter(s) {', '.join(missing)}.")
        if self.grid and self.prior and set(self.grid) & set(self.prior):
            raise ModelError("A parameter cannot have both a grid and a prior.")
        for name, values in (self.grid or {}).items():
            if name not in names or not len(values):
                raise ModelError(f"Grid for {name!r}: unknown parameter or empty list.")
            for v in values:
                if not model.params[name].contains(float(v)):
                    raise ModelError(f"Grid value {v} of {name!r} lies outside its bounds {model.params[name].bounds}.")
        for name, dist in (self.prior or {}).items():
            if name not in names:
                raise ModelError(f"Prior for unknown parameter {name!r}.")
            lo, hi = make_prior(dist).support()
            plo, phi = model.params[name].bounds
            if lo < plo or hi > phi:
                raise ModelError(
                    f"The prior of {name!r} has support ({lo}, {hi}) outside the parameter's bounds "
                    f"({plo}, {phi}); choose a prior within the bounds."
                )
        for name, value in self.fixed.items():
            if name not in varied and not model.params[name].contains(float(value)):
                raise ModelError(f"Truth {name} = {value} lies outside its bounds {model.params[name].bounds}.")

    def truth(self, model: Model, seed: int, rep: int) -> dict[str, float]:
        out = {n: float(v) for n, v in self.fixed.items()}
        if self.grid:
            keys = [n for n in model.param_names if n in self.grid]
            points = list(itertools.product(*(self.grid[k] for k in keys)))
            out.update({k: float(v) for k, v in zip(keys, points[rep % len(points)])})
        if self.prior:
            rng = np.random.default_rng(derive_seed(seed, 10, rep))
            for name in model.param_names:
                if name in self.prior:
                    out[name] = float(make_prior(self.prior[name]).rvs(random_state=rng))
        return {n: out[n] for n in model.param_names}

    def describe(self) -> dict:
        prior = {k: describe_prior(v) for k, v in (self.prior or {}).items()}
        return {"fixed": self.fixed, "grid": self.grid or {}, "prior": prior}


def _replicate(model, design, statistics, options: FitOptions, spec: TruthSpec, seed: int, rep: int, alpha: float, start) -> dict:
    record = {"rep": rep, "truth": {n: float("nan") for n in model.param_names}}
    started = time.perf_counter()
    try:
        truth = spec.truth(model, seed, rep)
        record["truth"] = truth
        panel = Simulator(model, design).simulate(truth, seed=derive_seed(seed, 11, rep)).panel(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit(model, panel, statistics, start=start, options=replace(sequential(options), seed=derive_seed(seed, 12, rep)))
        ci = res.conf_int(alpha)  # the default ("auto") intervals
        record.update(
            estimate=res.params.to_dict(),
            interval=ci["method"].to_dict(),
            se=res.se().to_dict(),
            lower=ci["lower"].to_dict(),
            upper=ci["upper"].to_dict(),
            converged=res.converged,
            message=res.message,
            jtest=None if res.jtest is None else res.jtest.statistic,
            jtest_p=None if res.jtest is None else res.jtest.pvalue,
            reasons=[] if res.convergence is None else list(res.convergence.reasons),
            warnings=list(res.warnings),
            flags=fit_flags(res),
        )
    except (SimfitError, ArithmeticError, np.linalg.LinAlgError, ValueError) as exc:
        # A failed replication is a result (it lowers the convergence rate), not a crash.
        nan = {n: float("nan") for n in model.param_names}
        record.update(estimate=nan, se=nan, lower=nan, upper=nan, converged=False, message=f"{type(exc).__name__}: {exc}", jtest=None,
                      jtest_p=None, reasons=[f"the fit failed: {type(exc).__name__}: {exc}"], warnings=[], flags={"failed": True})
    record["seconds"] = time.perf_counter() - started
    return record


#: Flags of a replication's fit, one column each in :attr:`RecoveryResult.replications`.
FLAGS = ("failed", "warned", "not_converged", "noisy", "heavy_tails", "mismatch", "unit_fits_failing", "rival", "jtest_rejects",
         "se_not_finite", "response_surface")


def fit_flags(res) -> dict[str, bool]:
    """What a fit's checks found, as booleans (see :data:`FLAGS`)."""
    screen = res.screen
    text = " ".join(res.warnings)
    notes = " ".join(res.convergence.notes) if res.convergence is not None else ""
    return {
        "failed": False,
        "warned": bool(res.warnings),
        "not_converged": not res.converged,
        "noisy": "noisy" in text,
        "heavy_tails": bool(screen is not None and screen.heavy),
        "mismatch": bool(screen is not None and screen.mismatched),
        "unit_fits_failing": bool(screen is not None and screen.failing_fits),
        "rival": bool(res.fit_warnings),
        "jtest_rejects": "the J test rejects" in text,
        "se_not_finite": "is not finite" in text,
        "response_surface": "quadratic surface of the moments" in notes,
    }


def _describe_options(options: FitOptions) -> dict:
    """Everything in the fit options that can change a replication's result (its seed and the
    parallel settings are replaced per replication, so they are left out)."""
    out = {}
    for k, v in vars(options).items():
        if k in ("seed", "n_jobs", "backend"):
            continue
        if hasattr(v, "__dataclass_fields__"):
            fields_ = {}
            for name in v.__dataclass_fields__:
                value = getattr(v, name)
                if isinstance(value, np.ndarray):
                    value = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
                elif name in ("seed", "n_jobs", "backend"):
                    continue
                fields_[name] = repr(value)
            out[k] = {"type": type(v).__name__, **fields_}
        else:
            out[k] = v
    return out


def _fingerprint(model: Model, design: Panel, stat_names, spec: TruthSpec, options: FitOptions, seed: int, alpha: float, start) -> str:
    h = hashlib.sha256()
    for arr in (*design.nesting, design.covariates, *design.level_covariates):
        h.update(np.ascontiguousarray(arr).tobytes())
    config = {
        "model": model.name,
        "params": [(p.name, p.bounds, p.start) for p in model.params],
        "levels": [(lv.name, lv.params, lv.args.tolist()) for lv in model.levels],
        "statistics": list(stat_names),
        "truth": spec.describe(),
        "options": _describe_options(options),
        "start": None if start is None else [float(v) for v in start],
        "seed": seed,
        "alpha": alpha,
    }
    if model.fixed:  # only then: the fingerprints of studies without fixed parameters stay as they were
        config["fixed"] = dict(model.fixed)
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()


def recover(
    model: Model,
    design: Panel,
    statistics: Statistics,
    truth: Mapping[str, float] | None = None,
    *,
    prior: Mapping | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
    reps: int = 100,
    seed: int = 0,
    alpha: float = 0.05,
    options: FitOptions | None = None,
    n_jobs: int = 1,
    backend: str = "loky",
    scheduler: str | None = None,
    out: str | Path | None = None,
    progress: bool = False,
    manifest: dict | None = None,
    start: Mapping[str, float] | None = None,
    force: bool = False,
    fixed: Mapping[str, float] | None = None,
) -> RecoveryResult:
    """Run a parameter-recovery study.

    Parameters
    ----------
    model, design, statistics
        What to simulate (on ``design``) and fit.
    truth : mapping
        Fixed true values (and the values of parameters not in ``grid`` or ``prior``).
    prior : mapping, optional
        Per parameter, a prior to draw the truth from in each replication (see :func:`make_prior`).
    grid : mapping, optional
        Per parameter, a list of true values; replications cycle through their Cartesian product.
    reps : int
        Number of replications.
    seed : int
        Seeds everything; replication ``r`` depends only on ``(seed, r)``.
    alpha : float
        Intervals have coverage ``1 - alpha``.
    options : FitOptions
        How each replication is fitted (its seed is replaced by a fresh one per replication).
    n_jobs, backend, scheduler
        Parallel replications: ``loky`` (processes), ``threading``, or ``dask`` (a dask.distributed
        cluster at ``scheduler``, or a local one).
    out : path, optional
        Study folder: every replication is persisted the moment it finishes; running the same
        study into the same folder resumes it; tables and plots are written there at the end.
    progress : bool
        Show a progress bar on stderr.
    manifest : dict, optional
        Extra information stored in the folder's manifest (e.g. the scenario file's text).
    force : bool
        Write into an ``out`` folder that already holds files of its own (by default refused,
        so that nothing of the user's is overwritten; another study's folder is always refused).
    fixed : mapping, optional
        Parameters held at known values in every simulation and fit (:meth:`Model.fix`); ``truth``
        may name them at those values.
    start : mapping, optional
        Starting values of every fit (the model's by default); partial mappings are completed
        with the model's starts.
    """
    if not isinstance(reps, (int, np.integer)) or isinstance(reps, bool) or reps < 1:
        raise ScenarioError(f"reps must be a positive integer, got {reps!r}.")
    if not 0 < alpha < 1:
        raise ScenarioError(f"alpha must lie in (0, 1), got {alpha!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ScenarioError(f"seed must be a non-negative integer, got {seed!r}.")
    if backend not in BACKENDS:
        raise ScenarioError(f"Unknown parallel backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or not (n_jobs >= 1 or n_jobs == -1):
        raise ScenarioError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}.")
    options = options or FitOptions()
    if fixed:
        model = model.fix(fixed)
    start_vec = None
    if start:
        defaults = dict(zip(model.param_names, model.params.start))
        start_vec = model.free_vector({**defaults, **dict(start)})
    spec = TruthSpec(model.without_fixed(truth or {}), dict(grid) if grid else None, dict(prior) if prior else None)
    spec.validate(model)
    saved_projection = Path(out) / PROJECTION_FILE if out is not None else None
    if isinstance(statistics, Projected) and statistics.projection is None and saved_projection is not None and saved_projection.exists():
        statistics.projection = Projection.from_dict(json.loads(saved_projection.read_text()))  # a resumed study's own
    require_memory(4096.0 * reps, f"{reps:,} replications' records", "run fewer replications (reps)")
    names = Simulator(model, design, statistics).names  # validates kernels and statistics first (fits a projection)
    require_fit_memory(options, len(names))
    for rep in range(min(reps, 3)):  # priors and grids produce valid truths (before any folder exists)
        model.params.as_vector(spec.truth(model, seed, rep))
    fingerprint = _fingerprint(model, design, names, spec, options, seed, alpha, start_vec)
    store = None
    if out is not None:
        info = {"fingerprint": fingerprint, "reps": int(reps), "seed": int(seed), "model": model.name, **(manifest or {})}
        store = ReplicationStore.create(out, info, force=force)
        if store.manifest.get("reps") != int(reps):
            store.update_manifest(reps=int(reps))  # a study extended or shortened on purpose
        records = {r: rec for r, rec in store.records.items() if r < reps}
        if isinstance(statistics, Projected) and not saved_projection.exists():
            tmp = saved_projection.with_suffix(".json.tmp")
            tmp.write_text(jsonio.dumps(statistics.projection.to_dict()))
            os.replace(tmp, saved_projection)
    else:
        records = {}
    todo = [r for r in range(reps) if r not in records]
    tasks = [(model, design, statistics, options, spec, seed, r, alpha, start_vec) for r in todo]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=reps, initial=reps - len(todo), desc="replications", unit="rep")
    try:
        for record in iter_parallel(_replicate, tasks, n_jobs=n_jobs, backend=backend, scheduler=scheduler):
            records[int(record["rep"])] = record
            if store is not None:
                store.append(record)
            if bar is not None:
                bar.update(1)
        result = RecoveryResult(model.param_names, [records[r] for r in range(reps)], alpha=alpha, seed=seed)
        if out is not None:
            result.save(out)
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            store.close()
    return result


class RecoveryResult:
    """Replications of a recovery study and their summary.

    Attributes
    ----------
    records : list of dict
        One per replication, in replication order.
    """

    def __init__(self, param_names: Sequence[str], records: list[dict], alpha: float = 0.05, seed: int = 0):
        self.param_names = list(param_names)
        self.records = records
        self.alpha = alpha
        self.seed = seed

    @property
    def replications(self) -> pd.DataFrame:
        """One row per replication: truth, estimate, se, interval and its method (``auto``, see
        :meth:`simfit.results.FitResult.conf_int`) per parameter; convergence, J statistic and
        time."""
        rows = []
        for rec in self.records:
            row = {"rep": rec["rep"], "converged": bool(rec["converged"]), "seconds": rec["seconds"], "jtest": rec["jtest"], "jtest_p": rec["jtest_p"]}
            flags = rec.get("flags", {})  # records of studies begun before flags were kept have none
            for flag in FLAGS:
                row[f"flag_{flag}"] = bool(flags.get(flag, False))
            for n in self.param_names:
                row[f"truth_{n}"] = rec["truth"][n]
                row[f"estimate_{n}"] = rec["estimate"][n]
                row[f"se_{n}"] = rec["se"][n]
                row[f"lower_{n}"] = rec["lower"][n]
                row[f"upper_{n}"] = rec["upper"][n]
                row[f"interval_{n}"] = rec.get("interval", {}).get(n, "")
            row["message"] = rec["message"]
            row["reasons"] = " | ".join(rec.get("reasons", []))
            row["warnings"] = " | ".join(rec.get("warnings", []))
            rows.append(row)
        return pd.DataFrame(rows).astype({"jtest": float, "jtest_p": float})

    def summary(self) -> pd.DataFrame:
        """Per parameter: mean truth, bias, relative bias, RMSE, interval coverage and correlation
        of truth and estimate over every replication with an estimate (``n``), and the same over
        the converged ones side by side (suffix ``_converged``); the convergence rate and the
        share of fits that warned."""
        rep = self.replications
        fitted = rep[np.isfinite(rep[[f"estimate_{n}" for n in self.param_names]].to_numpy(dtype=float)).all(axis=1)]
        rows = {}
        for n in self.param_names:
            row = {"truth_mean": float(np.mean(fitted[f"truth_{n}"])) if len(fitted) else np.nan}
            for suffix, subset in (("", fitted), ("_converged", fitted[fitted["converged"]])):
                row.update({f"{k}{suffix}": v for k, v in self._accuracy(subset, n).items()})
            row["convergence_rate"] = float(rep["converged"].mean())
            row["warned_rate"] = float(rep["flag_warned"].mean())
            rows[n] = row
        frame = pd.DataFrame(rows).T
        for col in ("n", "n_converged"):
            frame[col] = frame[col].astype(int)
        return frame

    def _accuracy(self, subset: pd.DataFrame, n: str) -> dict:
        t = subset[f"truth_{n}"].to_numpy(dtype=float)
        e = subset[f"estimate_{n}"].to_numpy(dtype=float)
        err = e - t
        covered = (subset[f"lower_{n}"] <= subset[f"truth_{n}"]) & (subset[f"truth_{n}"] <= subset[f"upper_{n}"])
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.mean(err / t) if len(t) and np.all(t != 0) else np.nan
            varies = len(t) > 1 and np.ptp(t) > 1e-9 * max(1.0, float(np.max(np.abs(t))))  # not a fixed truth (up to rounding)
            corr = np.corrcoef(t, e)[0, 1] if varies and np.std(e) > 0 else np.nan
        return {
            "bias": float(np.mean(err)) if len(t) else np.nan,
            "relative_bias": float(rel),
            "rmse": float(np.sqrt(np.mean(err**2))) if len(t) else np.nan,
            f"coverage{int(round(100 * (1 - self.alpha)))}": float(np.mean(covered)) if len(t) else np.nan,
            "corr_truth_estimate": float(corr),
            "n": int(len(t)),
        }

    def to_dict(self) -> dict:
        summary = self.summary()
        rep = self.replications
        p = rep["jtest_p"].dropna()
        return {
            "reps": len(self.records),
            "seed": self.seed,
            "alpha": self.alpha,
            "params": {
                n: {k: (None if pd.isna(v) else (int(v) if k.startswith("n") else float(v))) for k, v in summary.loc[n].items()}
                for n in self.param_names
            },
            "convergence_rate": float(rep["converged"].mean()),
            "flags": {flag: float(rep[f"flag_{flag}"].mean()) for flag in FLAGS},
            "jtest_reject_rate": float((p < 0.05).mean()) if len(p) else None,  # at 5%, every fit with a J test
            "median_fit_s": float(rep["seconds"].median()),
        }

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``replications.csv``, ``summary.csv``, ``summary.json`` and the plots."""
        from simfit.plots import plot_coverage, plot_recovery

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "replications": folder / "replications.csv",
            "summary": folder / "summary.csv",
            "summary_json": folder / "summary.json",
            "recovery_plot": folder / "recovery.png",
            "coverage_plot": folder / "coverage.png",
        }
        # Whole files or none: a kill while saving leaves the previous tables (or none), never a torn one.
        _write_atomic(paths["replications"], self.replications.to_csv(index=False))
        _write_atomic(paths["summary"], self.summary().to_csv(index_label="param"))
        _write_atomic(paths["summary_json"], jsonio.dumps(self.to_dict(), indent=2))
        plot_recovery(self, paths["recovery_plot"])
        plot_coverage(self, paths["coverage_plot"])
        return paths

    def __repr__(self) -> str:
        return f"<RecoveryResult: {len(self.records)} replications of {', '.join(self.param_names)}>"
