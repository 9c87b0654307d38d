"""The ``simfit`` command line.

=====================================  =====================================================
``simfit run SCENARIO``                a parameter-recovery study (parallel, checkpointed)
``simfit resume DIR``                  continue a study or a sampling run that was stopped
``simfit fit SCENARIO --data F.csv``   fit observed data in long format
``simfit sample SCENARIO --data F.csv``  posterior draws (surrogate, BSL or ABC-SMC), checkpointed
``simfit check SCENARIO [--data F.csv]``  pre-flight check of the statistics
``simfit simulate SCENARIO``           simulate the scenario at its true parameters
``simfit list`` / ``simfit show S``    the shipped scenarios / one scenario
=====================================  =====================================================

Progress bars go to stderr; ``--json`` prints one JSON summary as the last line of stdout. Errors
print one line and exit with status 2 (``--debug`` shows the traceback); an interrupted study keeps
every finished replication and exits with status 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import pandas as pd

from simfit import jsonio
from simfit.errors import ScenarioError, SimfitError
from simfit.parallel import BACKENDS

ROOT_SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def _scenario_dirs() -> tuple[Path, ...]:
    return (Path.cwd() / "scenarios", ROOT_SCENARIOS)


def _find_scenario(name: str) -> Path:
    path = Path(name)
    if path.exists() or path.suffix == ".toml":
        return path
    for folder in _scenario_dirs():
        candidate = folder / f"{name}.toml"
        if candidate.exists():
            return candidate
    return path


def _load(name: str):
    from simfit.scenario import load_scenario

    return load_scenario(_find_scenario(name))


def _print_table(frame, title: str) -> None:

    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
        print(f"\n{title}\n{frame}")


# ---------------------------------------------------------------------- run / resume


def _run_study(scenario, out: Path, reps: int, seed: int, n_jobs: int, backend: str, scheduler, progress: bool, as_json: bool,
               force: bool = False) -> dict:
    from simfit.scenario import model_source
    from simfit.study import recover

    model, stats = scenario.build()
    design = scenario.design_panel()
    manifest = {
        "scenario_path": str(scenario.path.resolve()),
        "scenario_text": scenario.text,
        "n_jobs": n_jobs,
        "backend": backend,
        "scheduler": scheduler,
        **model_source(scenario.model.name, scenario.path),
    }
    started = time.perf_counter()
    result = recover(
        model, design, stats, scenario.truth,
        prior=scenario.truth_spec().prior, grid=scenario.grid or None,
        reps=reps, seed=seed, alpha=scenario.study.alpha, options=scenario.fit,
        n_jobs=n_jobs, backend=backend, scheduler=scheduler, out=out, progress=progress, manifest=manifest,
        start=scenario.start or None, force=force,
    )
    summary = result.to_dict()
    summary.update(
        scenario=str(scenario.path),
        out=str(out),
        seconds=time.perf_counter() - started,  # this session (a resumed study reuses finished replications)
        compute_seconds=float(sum(r["seconds"] for r in result.records)),  # fitting time over all sessions
        files=sorted(p.name for p in out.iterdir() if not p.name.startswith(".")),
    )
    if not as_json:
        print(f"{model!r}")
        print(f"{len(result.records)} replications, seed {seed}, written to {out}")
        _print_table(result.summary(), "recovery summary (every fit; _converged: converged fits only)")
        print(f"\nconvergence rate {summary['convergence_rate']:.3f}, median fit {summary['median_fit_s']:.3f} s")
        print(f"wall time of this session {summary['seconds']:.1f} s; fitting time of the study over all sessions "
              f"{summary['compute_seconds']:.1f} s")
    return summary


def _cmd_run(args) -> dict:
    scenario = _load(args.scenario)
    study = scenario.study
    out = Path(args.out) if args.out else Path("results") / scenario.path.stem
    return _run_study(
        scenario, out,
        reps=args.reps if args.reps is not None else study.reps,
        seed=args.seed if args.seed is not None else study.seed,
        n_jobs=args.jobs if args.jobs is not None else study.n_jobs,
        backend=args.backend or study.backend,
        scheduler=args.scheduler,
        progress=not args.no_progress,
        as_json=args.json,
        force=args.force,
    )


def _cmd_resume(args) -> dict:
    from simfit.checkpoint import ReplicationStore
    from simfit.scenario import check_model_source, load_scenario

    folder = Path(args.dir)
    store = ReplicationStore.open(folder)
    m = store.manifest
    if "scenario_text" not in m:
        raise ScenarioError(
            f"{folder} was not written by `simfit run` or `simfit sample`; it cannot be resumed from the command line."
        )
    if store.dropped:
        print(f"simfit: dropped {store.dropped} partly written record(s) in {folder}", file=sys.stderr)
    if store.damaged:
        print(f"simfit: removed {store.damaged} damaged record(s) in {folder}; their replications run again", file=sys.stderr)
    if store.manifest_restored:
        print(f"simfit: {folder / 'manifest.json'} was damaged and is restored from its backup copy", file=sys.stderr)
    check_model_source(m, folder)  # before the scenario's code is imported again
    scenario = load_scenario(m["scenario_path"], text=m["scenario_text"])
    if m.get("kind") == "posterior":
        return _run_sample(
            scenario, folder, folder / _SAMPLE_DATA, method=m["method"], chains=int(m["chains"]),
            draws=int(m["draws"]), warmup=int(m["warmup"]), seed=int(m["seed"]),
            n_jobs=args.jobs if args.jobs is not None else int(m.get("n_jobs", 1)),
            options=m.get("method_options", {}), progress=not args.no_progress, as_json=args.json,
        )
    return _run_study(
        scenario, folder, reps=int(m["reps"]), seed=int(m["seed"]),
        n_jobs=args.jobs if args.jobs is not None else int(m.get("n_jobs", 1)),
        backend=args.backend or m.get("backend", "loky"),
        scheduler=args.scheduler or m.get("scheduler"),
        progress=not args.no_progress, as_json=args.json,
    )


# ---------------------------------------------------------------------- fit / simulate


def _fit_options(scenario, args):
    """The scenario's [fit] options with the command line's overrides."""
    from simfit.estimation import FitOptions

    changes = {}
    for key in ("seed", "n_sims", "weighting", "optimizer"):
        if getattr(args, key, None) is not None:
            changes[key] = getattr(args, key)
    if getattr(args, "bootstrap", None) is not None:
        value = args.bootstrap
        changes["bootstrap"] = value if value == "auto" else _count(value, "--bootstrap")
    if not changes:
        return scenario.fit
    try:
        return FitOptions(**{**scenario.fit_table, **changes})
    except SimfitError as exc:
        raise ScenarioError(f"{exc}") from None


def _count(value: str, flag: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ScenarioError(f"{flag} takes 'auto' or a number of replicates, got {value!r}.") from None
    if n < 0:
        raise ScenarioError(f"{flag} must not be negative, got {n}.")
    return n


def _save_fit(result, out: Path, force: bool) -> list[str]:
    """A fit's results in a folder: estimates and intervals (CSV, JSON), the summary, the
    statistics' fit (table and figure) and the population summary."""
    from simfit.plots import plot_statistics_fit

    if out.exists() and not out.is_dir():
        raise ScenarioError(f"--out {out} is a file; give a folder.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ScenarioError(f"{out} already holds files (an earlier fit?); simfit does not replace them. Choose another --out, or pass --force.")
    out.mkdir(parents=True, exist_ok=True)
    result.to_frame().to_csv(out / "estimates.csv", index_label="parameter")
    (out / "fit.json").write_text(jsonio.dumps(result.to_dict(), indent=2))
    (out / "summary.txt").write_text(result.summary() + "\n")
    result.statistics_table().to_csv(out / "statistics.csv", index_label="statistic")
    plot_statistics_fit(result, out / "statistics.png")
    written = ["estimates.csv", "fit.json", "summary.txt", "statistics.csv", "statistics.png"]
    try:
        result.population_summary().to_csv(out / "population.csv")
        written.append("population.csv")
    except SimfitError as exc:  # a model whose population summary is not defined: say so, keep the rest
        (out / "population.txt").write_text(f"No population summary: {exc}\n")
        written.append("population.txt")
    return written


def _cmd_fit(args) -> dict:
    from simfit.estimation import fit
    from simfit.scenario import read_data

    scenario = _load(args.scenario)
    model, stats = scenario.build()
    data = read_data(args.data, scenario.data)
    options = _fit_options(scenario, args)
    result = fit(model, data, stats, start=scenario.start_values(), options=options)
    written = _save_fit(result, Path(args.out), args.force) if args.out else []
    if not args.json:
        print(result.summary())
        if written:
            print(f"written to {args.out}: {', '.join(written)}")
    summary = result.to_dict()
    summary.update(scenario=str(scenario.path), data=str(args.data), out=args.out, files=written)
    return summary


def _cmd_check(args) -> dict:
    from simfit.estimation import fit
    from simfit.preflight import check
    from simfit.scenario import read_data

    scenario = _load(args.scenario)
    model, stats = scenario.build()
    options = scenario.fit
    values = {**dict(zip(model.param_names, model.params.start)), **scenario.start}
    if args.data:
        data = read_data(args.data, scenario.data)
        design = data.design()
        estimate = fit(model, data, stats, start=values, options=dataclasses.replace(options, bootstrap=0))
        at, where = estimate.params.to_dict(), "the estimate from the data"
        stats = estimate.statistics  # auxiliary fits centred on the data, as the fit's
    else:
        design = scenario.design_panel()
        complete = all(n in scenario.truth for n in model.param_names)
        at = {**values, **scenario.truth} if complete else values
        where = "the scenario's [truth]" if complete else "the start values"
    result = check(model, design, stats, at=at, n_sims=options.n_sims, n_cov_sims=options.n_cov_sims, n_boot=args.reps,
                   diff_step=options.diff_step, jacobian_step=options.jacobian_step,
                   seed=options.seed if args.seed is None else args.seed, full_fits=args.full_fits, fit_options=options,
                   n_jobs=args.jobs)
    if not args.json:
        print(f"Checked at {where}.")
        if model.fixed:
            print("Fixed (not estimated): " + ", ".join(f"{k} = {v:g}" for k, v in model.fixed.items()))
        print(result.summary())
    summary = result.to_dict()
    summary.update(scenario=str(scenario.path), data=None if args.data is None else str(args.data), at_source=where,
                   fixed=dict(model.fixed))
    return summary


def _write_new(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path``, refusing to replace an existing file unless ``force``."""
    from simfit.checkpoint import _write_atomic

    if path.exists() and not force:
        raise ScenarioError(f"{path} already exists; simfit does not overwrite files. Choose another --out, or pass --force.")
    _write_atomic(path, text)


def _as_data_file(frame, data_spec):
    """A simulated panel's frame under the column names the scenario's [data] reads."""
    names = {"unit": data_spec.unit}
    if data_spec.group:
        names["group"] = data_spec.group
    for columns in (data_spec.values, data_spec.covariates, data_spec.unit_covariates):
        if isinstance(columns, dict):
            names.update(columns)  # the model's name -> the file's column
    return frame.rename(columns=names)


def _cmd_simulate(args) -> dict:
    from simfit.engine import Simulator

    scenario = _load(args.scenario)
    model, stats = scenario.build()
    design = scenario.design_panel()
    seed = scenario.simulate.seed if args.seed is None else args.seed
    n_sims = scenario.simulate.n_sims if args.n_sims is None else args.n_sims
    truth = scenario.truth_spec().truth(model, seed, 0)
    started = time.perf_counter()
    simulator = Simulator(model, design, stats)
    setup_s = time.perf_counter() - started
    started = time.perf_counter()
    result = simulator.simulate(truth, n_sims=n_sims, seed=seed)
    simulate_s = time.perf_counter() - started
    observed = [simulator.observed(result.panel(s)) for s in range(n_sims)]
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        # Under the columns the scenario's [data] reads, so that `simfit fit` takes the file as it is.
        _write_new(out, _as_data_file(result.to_frame(), scenario.data).to_csv(index=False), args.force)
    summary = {
        "scenario": str(scenario.path),
        "model": model.name,
        "truth": truth,
        "fixed": dict(model.fixed),
        "design": {"levels": list(design.level_sizes()), "observations": design.n_obs},
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
        print(f"truth: {truth}   seed: {seed}")
        width = max(len(n) for n in simulator.names)
        for s, row in enumerate(observed):
            print(f"\nstatistics of simulated panel {s}:")
            for name, value in zip(simulator.names, row):
                print(f"  {name:<{width}}  {value: .6f}")
        print(f"\nset-up (compile or cache load) {setup_s:.2f} s, simulation {simulate_s:.4f} s")
        if args.out:
            print(f"simulated panel written to {args.out}")
    return summary


# ---------------------------------------------------------------------- sample

_SAMPLE_DATA = "data.csv"


def _run_sample(scenario, out: Path, data_path: Path, method, chains, draws, warmup, seed, n_jobs, options, progress, as_json,
                force: bool = False) -> dict:
    from simfit.bayes import sample
    from simfit.scenario import model_source, read_data

    model, stats = scenario.build()
    data = read_data(data_path, scenario.data)
    start = {**dict(zip(model.param_names, model.params.start)), **scenario.start} if scenario.start else None
    manifest = {
        "scenario_path": str(scenario.path.resolve()),
        "scenario_text": scenario.text,
        "n_jobs": n_jobs,
        "method_options": options,
        **model_source(scenario.model.name, scenario.path),
    }
    posterior = sample(
        model, data, stats, scenario.prior, method,
        chains=chains, draws=draws, warmup=warmup, seed=seed, options=dict(options),
        fit_options=scenario.fit, start=start, n_jobs=n_jobs, out=out, progress=progress, manifest=manifest, force=force,
    )
    # The draws first: a figure that fails must not cost them.
    posterior.summary_frame().to_csv(out / "posterior.csv", index_label="parameter")
    posterior.to_frame().to_csv(out / "draws.csv", index=False)
    text = posterior.summary()
    (out / "summary.txt").write_text(text + "\n")
    plots = _plot_posterior(posterior, out)
    summary = posterior.to_dict()
    summary.update(scenario=str(scenario.path), data=str(data_path), out=str(out), plots=plots,
                   files=sorted(p.name for p in out.iterdir() if not p.name.startswith(".")))
    if not as_json:
        print(text)
        figures = f", {', '.join(plots['files'])} (by {plots['by']})" if plots["files"] else ""
        print(f"\nwritten to {out} (posterior.csv, draws.csv, summary.txt{figures})")
    return summary


def _plot_posterior(posterior, out: Path) -> dict:
    """Trace plots and marginal posteriors in ``out``; a failure is reported on stderr, not raised
    (the draws are written already)."""
    from simfit.plots import plot_posterior

    try:
        written = plot_posterior(posterior, out)
    except Exception as exc:  # the figures are extras: the run's results stand without them
        print(f"simfit: posterior plots not written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"files": [], "by": None, "error": f"{type(exc).__name__}: {exc}"}
    return {"files": [p.name for p in written["files"]], "by": written["by"]}


def _cmd_sample(args) -> dict:
    from simfit.bayes.sampling import option_fields

    scenario = _load(args.scenario)
    spec = scenario.sample
    method = args.method or spec.method
    # The scenario's options of the method chosen (with "auto", those of either method it may run).
    options = {k: v for k, v in spec.options.items() if k in option_fields(method)} if spec.method in (method, "auto") else {}
    out = Path(args.out) if args.out else Path("results") / f"{scenario.path.stem}-{method}"
    if args.data:
        source = Path(args.data)
        if not source.exists():
            raise ScenarioError(f"Data file {source} not found.")
        content = source.read_bytes()
    else:
        from simfit.engine import simulate

        model, _ = scenario.build()
        truth = scenario.truth_spec().truth(model, scenario.simulate.seed, 0)
        panel = simulate(model, scenario.design_panel(), truth, seed=scenario.simulate.seed).panel(0)
        content = _as_data_file(panel.to_frame(), scenario.data).to_csv(index=False).encode()
        if not args.json:
            print(f"no --data: sampling data simulated at {truth} (seed {scenario.simulate.seed})")
    if out.is_dir() and not (out / "manifest.json").exists() and any(out.iterdir()) and not args.force:
        shown = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise ScenarioError(
            f"Output folder {out} already holds files ({shown}) and is not a simfit run; simfit would overwrite them. "
            "Choose a new --out folder, or pass --force to write into it."
        )
    # The folder keeps the data it was sampled on (for `simfit resume`); never replace them.
    data_copy = out / _SAMPLE_DATA
    if (out / "manifest.json").exists() and data_copy.exists():
        if data_copy.read_bytes() != content:
            raise ScenarioError(
                f"{out} holds a sampling run on other data; write to a new --out folder, or continue "
                f"that run with `simfit resume {out}`."
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        tmp = data_copy.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(data_copy)
    return _run_sample(
        scenario, out, data_copy, method=method,
        chains=args.chains if args.chains is not None else spec.chains,
        draws=args.draws if args.draws is not None else spec.draws,
        warmup=spec.warmup, seed=args.seed if args.seed is not None else spec.seed,
        n_jobs=args.jobs if args.jobs is not None else spec.n_jobs,
        options=options, progress=not args.no_progress, as_json=args.json, force=True,  # checked above
    )


# ---------------------------------------------------------------------- list / show


def _cmd_list(args) -> dict:
    found = []
    for folder in _scenario_dirs():
        if folder.is_dir():
            found.extend(sorted(str(p) for p in folder.glob("*.toml")))
    found = list(dict.fromkeys(found))
    if not args.json:
        print("\n".join(found) if found else "no scenarios found")
    return {"scenarios": found}


def _show_folder(folder: Path, as_json: bool) -> dict:
    """Print what a simfit output folder holds: its summary, and its JSON as plain data."""
    text = folder / "summary.txt"
    data_file = next((folder / n for n in ("fit.json", "summary.json") if (folder / n).exists()), None)
    if not text.exists() and data_file is None:
        raise ScenarioError(f"{folder} is not a saved fit, sampling run or study (no summary.txt, fit.json or summary.json).")
    if not as_json:
        print(text.read_text() if text.exists() else data_file.read_text())
    info = {"folder": str(folder), "files": sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))}
    if data_file is not None:
        info["content"] = json.loads(data_file.read_text())
    return info


def _cmd_show(args) -> dict:
    from simfit.models import BUILTIN
    from simfit.scenario import load_scenario

    folder = Path(args.scenario)
    if folder.is_dir():  # a saved fit, sampling run or study
        return _show_folder(folder, args.json)
    path = _find_scenario(args.scenario)
    build = args.build
    scenario = load_scenario(path, build=False)  # a user model's code runs only with --build
    scenario_name = scenario.model.name
    builtin = scenario_name in BUILTIN
    if build or builtin:  # built-in models are simfit's own code
        scenario = load_scenario(path)
    info = {"scenario": str(scenario.path), "model": scenario_name}
    model = None
    if build or builtin:
        model, _ = scenario.build()
        info.update(model=model.name, params=list(model.param_names), levels=[lv.name for lv in model.levels])
    info |= {
        "model_options": scenario.model.options,
        "statistics_options": scenario.statistics.options,
        "fixed": scenario.fixed,
        "truth": scenario.truth,
        "prior": scenario.prior,
        "grid": scenario.grid,
        "design": vars(scenario.design),
        "fit": scenario.fit_table,
        "study": vars(scenario.study),
    }
    if not args.json:
        print(scenario.text)
        if model is not None:
            print(f"# {model!r}")
    return info


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simfit", description="Indirect inference for nonlinear hierarchical models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--json", action="store_true", help="print one JSON summary as the last line")
        # SUPPRESS: a subcommand's flag must not reset `simfit --debug CMD` to False.
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")

    def quiet(p):
        # These commands draw no progress bar; they take the flag so that scripts can pass it to every command.
        p.add_argument("--no-progress", action="store_true", help="no progress bar (this command shows none)")

    def parallel(p):
        p.add_argument("--jobs", type=int, default=None, help="parallel workers")
        p.add_argument("--backend", choices=list(BACKENDS), default=None)
        p.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("run", help="run a parameter-recovery study")
    p.add_argument("scenario", help="scenario file (or name of a shipped scenario)")
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="study folder (default results/<scenario>)")
    p.add_argument("--force", action="store_true", help="write into an --out folder that holds other files")
    parallel(p)
    common(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("resume", help="continue a stopped study")
    p.add_argument("dir", help="the study folder")
    parallel(p)
    common(p)
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("fit", help="fit observed data (long CSV: a unit column, value and covariate columns)")
    p.add_argument("scenario")
    p.add_argument("--data", required=True, help="CSV file with the columns named in the scenario's [data]")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--n-sims", type=int, default=None, dest="n_sims", help="simulated panels per evaluation (S)")
    p.add_argument("--weighting", default=None, help="identity, diagonal, optimal or iterated")
    p.add_argument("--optimizer", default=None, help="least_squares, nelder-mead, powell, l-bfgs-b, differential, multistart")
    p.add_argument("--bootstrap", default=None, help="'auto' or a number of replicates (0: none)")
    p.add_argument("--out", default=None, help="folder for the estimates, summary, statistics' fit and population summary")
    p.add_argument("--force", action="store_true", help="write into an --out folder that holds files")
    quiet(p)
    common(p)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("check", help="pre-flight check of the statistics: sensitivity, normality, identification, expected recovery")
    p.add_argument("scenario")
    p.add_argument("--data", default=None, help="CSV file with the columns named in [data]: check at its estimate on its design")
    p.add_argument("--reps", type=int, default=100, help="local-recovery replicates (k-step bootstrap)")
    p.add_argument("--full-fits", type=int, default=0, dest="full_fits",
                   help="also fit this many datasets simulated at the values checked, in full: what fits will do")
    p.add_argument("--jobs", type=int, default=1, help="full fits run in parallel workers")
    p.add_argument("--seed", type=int, default=None)
    quiet(p)
    common(p)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("sample", help="posterior draws given observed data (surrogate, BSL or ABC-SMC), checkpointed")
    p.add_argument("scenario")
    p.add_argument("--data", default=None, help="CSV file with the columns named in [data] (default: simulate at [truth])")
    p.add_argument("--method", choices=["auto", "bsl", "abc-smc", "surrogate"], default=None,
                   help="default: the scenario's [sample] method, else auto (the surrogate sampler where its checks pass, BSL where not)")
    p.add_argument("--chains", type=int, default=None)
    p.add_argument("--draws", type=int, default=None, help="kept draws per chain")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--jobs", type=int, default=None, help="chains run in parallel workers")
    p.add_argument("--out", default=None,
                   help="checkpoint and output folder: draws, summary, trace and marginal plots (default results/<scenario>-<method>)")
    p.add_argument("--force", action="store_true", help="write into an --out folder that holds other files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    common(p)
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("simulate", help="simulate a scenario at its true parameters")
    p.add_argument("scenario")
    p.add_argument("--out", help="write the simulated panel(s) to this CSV file (never replacing one)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--n-sims", type=int, default=None, dest="n_sims")
    quiet(p)
    common(p)
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("list", help="list shipped scenarios")
    common(p)
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="print a scenario (without running its model's code unless --build), or a saved fit/run folder")
    p.add_argument("scenario")
    p.add_argument("--build", action="store_true", help="also build the model (runs the code the scenario names)")
    common(p)
    p.set_defaults(func=_cmd_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None:  # run as the `simfit` command (not called from Python): Ctrl-C always stops it
        from simfit import launch

        launch.HARD_INTERRUPT = True
    try:
        summary = args.func(args)
    except KeyboardInterrupt:
        print("simfit: interrupted; finished replications are saved (simfit resume DIR continues)", file=sys.stderr)
        return 130
    except (SimfitError, ValueError, OSError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"simfit: error: {message}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(jsonio.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
