"""``sample()``: posterior draws of the population parameters on the same engine as ``fit()``.

The samplers share the set-up (priors checked against the bounds, the statistics of the observed
panel, a compiled simulator on its design) and the checkpointing (one record per chain block or
per generation, appended the moment it is done):

* ``method="auto"`` (the default): the surrogate sampler, whose posterior is kept when its own
  checks pass (:func:`~simfit.bayes.surrogate.failed_checks`: new panels at posterior draws are
  predicted, and the posterior has settled); where one fails, BSL runs instead, from the same
  preliminary fit, and the posterior's ``info["method_choice"]`` and a :class:`FallbackWarning`
  say why;
* ``method="bsl"``: Bayesian synthetic likelihood (:mod:`simfit.bayes.synthetic_likelihood`),
  started at and scaled by a preliminary :func:`~simfit.estimation.fit`;
* ``method="abc-smc"``: ABC by sequential Monte Carlo (:mod:`simfit.bayes.abc_smc`);
* ``method="surrogate"``: the Gaussian synthetic likelihood of a regression surrogate trained on
  batched simulations where the posterior mass is (:mod:`simfit.bayes.surrogate`), started, like
  BSL, from a preliminary fit: a few thousand panels instead of BSL's hundred thousand.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import Field, asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from simfit.bayes.abc_smc import ABCOptions, adjustment_weight, run_abc_smc
from simfit.bayes.normalising import Normalising, fit_normalising
from simfit.bayes.posterior import Posterior
from simfit.bayes.priors import Priors
from simfit.bayes.surrogate import (
    SURROGATE_CHECK_RANGE,
    SurrogateOptions,
    SurrogateWarning,
    failed_checks,
    run_surrogate,
)
from simfit.bayes.synthetic_likelihood import BSLOptions, SyntheticLikelihood, choose_n_sims, run_chains
from simfit.checkpoint import ReplicationStore
from simfit.data import Panel
from simfit.engine import Simulator, calibrated_statistics, explain_nonfinite_observed
from simfit.errors import EstimationError, KernelError, SimfitError, warn
from simfit.estimation import FitOptions, _as_start, derive_seed, fit, sequential
from simfit.model import Model
from simfit.parallel import BACKENDS, run_parallel
from simfit.statistics.collection import Statistics

__all__ = ["sample", "METHODS", "SAMPLER_OPTIONS", "AutoOptions", "FallbackWarning", "option_fields", "make_options"]


class FallbackWarning(UserWarning):
    """``method="auto"``: the surrogate sampler failed its own check, and BSL ran instead."""


@dataclass(frozen=True)
class AutoOptions:
    """Options of ``method="auto"``: the surrogate sampler's, and BSL's for the fallback.

    Attributes
    ----------
    surrogate : SurrogateOptions
    bsl : BSLOptions
    """

    surrogate: SurrogateOptions = field(default_factory=SurrogateOptions)
    bsl: BSLOptions = field(default_factory=BSLOptions)

    @classmethod
    def from_mapping(cls, values: Mapping) -> AutoOptions:
        """The defaults with ``values`` applied (see :meth:`updated`)."""
        return cls().updated(values)

    def updated(self, changes: Mapping) -> AutoOptions:
        """These options with ``changes`` applied, each to the method that has it
        (``target_acceptance``, which both have, to both).

        Raises
        ------
        EstimationError
            For a name neither method has, or a value its method refuses.
        """
        unknown = sorted(set(changes) - set(option_fields("auto")))
        if unknown:
            raise EstimationError(
                f"Unknown auto option(s) {', '.join(unknown)}; options are those of the surrogate sampler "
                f"({', '.join(SurrogateOptions.__dataclass_fields__)}) and of BSL ({', '.join(BSLOptions.__dataclass_fields__)})."
            )

        def part(options):
            return replace(options, **{k: v for k, v in changes.items() if k in type(options).__dataclass_fields__})

        return AutoOptions(surrogate=part(self.surrogate), bsl=part(self.bsl))


METHODS = ("auto", "bsl", "abc-smc", "surrogate")
#: The options class of each method.
SAMPLER_OPTIONS = {"auto": AutoOptions, "bsl": BSLOptions, "abc-smc": ABCOptions, "surrogate": SurrogateOptions}
# The surrogate's record in a checkpoint folder of method="auto" (BSL's chain blocks are 0 and up).
_AUTO_SURROGATE_REP = -1


def option_fields(method: str) -> dict[str, Field]:
    """The options a method takes, by name (``"auto"``: the surrogate sampler's and BSL's).

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.

    Returns
    -------
    dict of str to dataclasses.Field
    """
    classes = (SurrogateOptions, BSLOptions) if method == "auto" else (SAMPLER_OPTIONS[method],)
    return {f.name: f for cls in classes for f in fields(cls)}


def make_options(method: str, values: Mapping) -> AutoOptions | BSLOptions | ABCOptions | SurrogateOptions:
    """The options object of ``method`` from a mapping of option names to values.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    values : mapping

    Returns
    -------
    AutoOptions, BSLOptions, ABCOptions or SurrogateOptions
    """
    if method == "auto":
        return AutoOptions.from_mapping(values)
    return SAMPLER_OPTIONS[method](**values)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise EstimationError(f"{name} must be an integer of at least {minimum}, got {value!r}.")
    return int(value)


def _method_options(method: str, options, kwargs: dict):
    cls = SAMPLER_OPTIONS[method]
    if options is None:
        options = cls()
    elif isinstance(options, Mapping):
        kwargs = {**dict(options), **kwargs}
        options = cls()
    elif not isinstance(options, cls):
        raise EstimationError(f"options for method {method!r} must be {cls.__name__} or a mapping, got {type(options).__name__}.")
    if kwargs and method == "auto":
        return options.updated(kwargs)
    if kwargs:
        unknown = sorted(set(kwargs) - set(cls.__dataclass_fields__))
        if unknown:
            raise EstimationError(
                f"Unknown {method} option(s) {', '.join(unknown)}; options are {', '.join(cls.__dataclass_fields__)}."
            )
        options = replace(options, **kwargs)
    return options


def _check_bsl_n_sims(opts: BSLOptions, observed: np.ndarray) -> None:
    """The unbiased synthetic likelihood needs more panels per proposal than statistics + 3."""
    if opts.n_sims != "auto" and opts.unbiased and not opts.shrinkage and opts.n_sims <= observed.size + 3:
        raise EstimationError(
            f"The unbiased synthetic likelihood needs more panels per proposal than statistics + 3 "
            f"({observed.size + 3}); got n_sims={opts.n_sims}. Raise n_sims, use n_sims='auto', or set unbiased=False."
        )


def _fingerprint(model, data: Panel, names, priors: Priors, method, options, chains, draws, warmup, seed, fit_options, start) -> str:
    h = hashlib.sha256()
    for arr in (data.values, *data.nesting, data.covariates, *data.level_covariates):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(json.dumps({
        "model": model.name,
        "params": [(p.name, p.bounds, p.start) for p in model.params],
        "levels": [(lv.name, lv.params, lv.args.tolist()) for lv in model.levels],
        "observations": (model.observations.values, model.observations.args.tolist()),
        "statistics": list(names), "priors": priors.describe(), "method": method, "options": asdict(options),
        "chains": chains, "draws": draws, "warmup": warmup, "seed": seed,
        "fit": {k: str(v) for k, v in asdict(fit_options).items()},
        "start": None if start is None else {k: float(v) for k, v in dict(start).items()},
        **({"fixed": dict(model.fixed)} if model.fixed else {}),  # (absent without: earlier runs' fingerprints stand)
    }, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def sample(
    model: Model,
    data: Panel,
    statistics: Statistics,
    prior: Mapping | Priors,
    method: str = "auto",
    *,
    chains: int = 4,
    draws: int = 1000,
    warmup: int | None = None,
    seed: int = 0,
    options: AutoOptions | BSLOptions | ABCOptions | SurrogateOptions | Mapping | None = None,
    fit_options: FitOptions | None = None,
    start: Mapping | None = None,
    n_jobs: int = 1,
    backend: str = "loky",
    out: str | Path | None = None,
    progress: bool = False,
    manifest: dict | None = None,
    force: bool = False,
    fixed: Mapping[str, float] | None = None,
    **kwargs,
) -> Posterior:
    """Draw from the posterior of the population parameters given the observed statistics.

    Parameters
    ----------
    model : Model
    data : Panel
        Observed panel; it fixes the design of the simulated panels.
    statistics : Statistics
        The auxiliary statistics the posterior conditions on.
    prior : mapping or Priors
        ``{parameter: prior}`` for every estimated parameter: a table such as ``{"dist":
        "halfnormal", "scale": 1}`` or a frozen ``scipy.stats`` distribution (see
        :mod:`simfit.bayes.priors`); fixed parameters take none.
    method : {"auto", "bsl", "abc-smc", "surrogate"}
        ``"auto"`` (default): the surrogate sampler, the cheapest, whose posterior is kept when
        its own checks pass (:func:`~simfit.bayes.surrogate.failed_checks`); where one fails,
        BSL, with a :class:`FallbackWarning` naming it. ``info["method_choice"]`` of the result
        says which ran and why; its ``method`` is the one that ran.
    chains, draws, warmup : int
        BSL and the surrogate sampler: chains, kept draws per chain and warm-up iterations per
        chain (``draws // 2`` by default). ABC-SMC ignores them (its population size is
        ``n_particles``).
    seed : int
        Seeds everything; the result does not depend on ``n_jobs``.
    options : AutoOptions, BSLOptions, ABCOptions, SurrogateOptions or mapping, optional
        The method's options; for ``"auto"``, a mapping takes the options of both the surrogate
        sampler and BSL.
    fit_options : FitOptions, optional
        Options of the preliminary fit (BSL and the surrogate sampler).
    start : mapping, optional
        Start values of the preliminary fit.
    n_jobs, backend : int, str
        Chains run in parallel joblib workers when ``n_jobs > 1`` (BSL); each worker's Numba
        threads share the cores.
    out : path, optional
        Checkpoint folder: each chain block (BSL), generation (ABC-SMC) or surrogate run is
        appended the moment it finishes; calling ``sample`` again with the same arguments and
        folder resumes.
    progress : bool
        Progress bar on stderr.
    manifest : dict, optional
        Extra entries for the folder's manifest (the command line stores the scenario there).
    force : bool
        Write into an ``out`` folder that already holds files of its own.
    fixed : mapping of str to float, optional
        Parameters held at known values instead of sampled (:meth:`Model.fix`); the posterior's
        model is the fixed one, and its summary lists them.
    **kwargs
        Override fields of the method's options (``n_sims=40``, ``n_particles=2000``, ...; with
        ``"auto"``, ``n_design=400`` goes to the surrogate sampler, ``n_sims=40`` to BSL).

    Returns
    -------
    Posterior
    """
    started = time.perf_counter()
    if fixed:
        model = model.fix(fixed)
    if method not in METHODS:
        raise EstimationError(f"Unknown sampling method {method!r}; choose one of {', '.join(METHODS)}.")
    opts = _method_options(method, options, kwargs)
    chains = _check_int(chains, "chains", 1)
    draws = _check_int(draws, "draws", 1)
    warmup = draws // 2 if warmup is None else _check_int(warmup, "warmup", 0)
    seed = _check_int(seed, "seed", 0)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or not (n_jobs >= 1 or n_jobs == -1):
        raise EstimationError(f"n_jobs must be a positive integer or -1 (all cores), got {n_jobs!r}.")
    if backend not in BACKENDS:
        raise EstimationError(f"Unknown parallel backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if not isinstance(data, Panel) or not data.has_values:
        raise EstimationError("data must be a Panel with observed values (Panel.from_frame / from_units).")
    priors = prior if isinstance(prior, Priors) and prior.params is model.params else Priors(model.params, prior, model.fixed)
    _as_start(model, start)  # an invalid start is the user's to fix, not a fit failure to work around
    design = data.design()
    # Auxiliary fits centred on the observed units' fits, as fit() centres them (the preliminary
    # fit calibrates the statistics it is given the same way, so it matches the sampler's).
    calibrated, calibration = calibrated_statistics(statistics, data)
    simulator = Simulator(model, design, calibrated)
    observed = simulator.observed(data)
    bad = ~np.isfinite(observed)
    if bad.any():
        raise EstimationError(explain_nonfinite_observed(simulator, data, bad))
    if method in ("bsl", "auto"):
        _check_bsl_n_sims(opts.bsl if method == "auto" else opts, observed)
    # The preliminary fit is fit() with these options (their seed included), so it agrees with a
    # fit the user runs with the same options; only its worker pools are turned off.
    fit_options = sequential(fit_options or FitOptions())

    store = None
    records: dict = {}
    setup = None
    if out is not None:
        fingerprint = _fingerprint(model, data, simulator.names, priors, method, opts, chains, draws, warmup, seed, fit_options, start)
        store = ReplicationStore.create(out, {
            "kind": "posterior", "fingerprint": fingerprint, "method": method, "chains": chains,
            "draws": draws, "warmup": warmup, "seed": seed, "options": asdict(opts),
            "priors": priors.describe(), **(manifest or {}),
        }, force=force)
        records = store.records
        setup = store.manifest.get("setup")
    n_before = len(records)

    bar = None if method == "auto" else _progress_bar(progress, method, chains * (warmup + draws) if method == "bsl" else None)
    try:
        if method == "auto":
            post = _sample_auto(
                model, data, statistics, simulator, observed, priors, opts, chains, draws, warmup, seed,
                fit_options, start, n_jobs, backend, store, records, setup, progress,
            )
        elif method == "surrogate":
            post = _sample_surrogate(
                model, data, statistics, simulator, observed, priors, opts, chains, draws, warmup, seed,
                fit_options, start, store, records, bar,
            )
        elif method == "bsl":
            post = _sample_bsl(
                model, data, statistics, simulator, observed, priors, opts, chains, draws, warmup, seed,
                fit_options, start, n_jobs, backend, store, records, setup, bar,
            )
        else:
            post = _sample_abc(model, simulator, observed, priors, opts, seed, store, records, bar)
    finally:
        if bar is not None:
            bar.close()
        if store is not None:
            this_run = time.perf_counter() - started
            if "post" in locals() and len(store.records) > n_before:  # new work: count its time with the earlier runs'
                store.update_manifest(compute_seconds=float(store.manifest.get("compute_seconds", 0.0)) + this_run)
            store.close()
    seconds = time.perf_counter() - started
    info = dict(post.info or {})
    if calibration:
        info["auxiliary_fits"] = "; ".join(calibration)
    if store is not None:
        info["compute_seconds"] = float(store.manifest.get("compute_seconds", seconds))
    return replace(post, statistics=calibrated, design=design, priors=priors, seconds=seconds, info=info)


def _progress_bar(progress: bool, method: str, total):
    if not progress:
        return None
    from tqdm.auto import tqdm

    unit = "it" if method == "bsl" else "panels"
    return tqdm(total=total, unit=unit, desc=f"sample {method}", leave=False)


def _start_points(fit_result, target: SyntheticLikelihood, chains: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centre of the chains, their starts and the initial proposal shape (unconstrained scale).

    The centre is the preliminary estimate, each chain starting at a draw from its sandwich
    distribution. Where the estimate says little (a coordinate with infinite or very large
    variance, typically a spread estimated on its bound, or an estimate far in the prior's tail)
    the centre is moved inside the prior's central 99.8% and the scale taken from the prior.
    """
    priors = target.priors
    params = priors.params
    u_hat = np.asarray(fit_result.free, dtype=float).copy()
    cov = np.asarray(fit_result.cov_free, dtype=float).copy()
    with np.errstate(all="ignore"):
        lo = params.to_free(np.array([d.ppf(0.001) for d in priors.dists]))
        hi = params.to_free(np.array([d.ppf(0.999) for d in priors.dists]))
        q16 = params.to_free(np.array([d.ppf(0.16) for d in priors.dists]))
        q84 = params.to_free(np.array([d.ppf(0.84) for d in priors.dists]))
    prior_var = np.where(np.isfinite(q84 - q16), ((q84 - q16) / 2) ** 2, 1.0)
    outside = ~np.isfinite(u_hat) | (u_hat < lo) | (u_hat > hi)
    u_hat = np.where(outside, np.clip(np.nan_to_num(u_hat, nan=0.5 * (lo + hi)), lo, hi), u_hat)
    diag = np.diag(cov)
    vague = ~np.isfinite(diag) | (diag <= 0) | (diag > prior_var)
    cov[vague, :] = 0.0
    cov[:, vague] = 0.0
    cov[vague, vague] = prior_var[vague]
    cov = 0.5 * (cov + cov.T)
    if not np.all(np.isfinite(cov)) or np.linalg.eigvalsh(cov).min() <= 0:
        cov = np.diag(np.where(np.isfinite(np.diag(cov)) & (np.diag(cov) > 0), np.diag(cov), prior_var))
    if not np.isfinite(target.log_prior(u_hat[None])[0]):
        raise EstimationError(
            f"The prior density is zero at the preliminary estimate "
            f"{dict(zip(params.names, np.round(params.to_natural(u_hat), 6).tolist()))} even after moving it into the "
            "prior's central range; check the priors."
        )
    # Starts outside the prior's support are redrawn by _finite_starts, with the likelihood check.
    rng = np.random.default_rng(derive_seed(seed, 51))
    starts = u_hat + rng.standard_normal((chains, u_hat.size)) @ np.linalg.cholesky(cov).T
    return u_hat, starts, cov


def _finite_starts(target: SyntheticLikelihood, centre, starts, prop_cov, seed: int, attempts: int = 20):
    """Starts where the synthetic likelihood, with the very keys the chains will use first, is
    not zero; a start that fails is redrawn around the centre (finally: the centre itself)."""
    rng = np.random.default_rng(derive_seed(seed, 53))
    root = np.linalg.cholesky(prop_cov)
    sim_seed = derive_seed(seed, 31)  # the chains' keys: see run_chains
    starts = np.array(starts, dtype=float)
    used = 0
    for attempt in range(attempts + 1):
        ll = target.loglik(starts, sim_seed, 0)
        used += starts.shape[0] * target.n_sims
        bad = ~np.isfinite(ll) | ~np.isfinite(target.log_prior(starts))
        if not bad.any():
            return starts, used
        for c in np.flatnonzero(bad):
            starts[c] = centre if attempt >= attempts - 1 else centre + root @ rng.standard_normal(centre.size)
    psi = dict(zip(target.params.names, np.round(target.params.to_natural(centre), 6)))
    raise EstimationError(
        f"The synthetic likelihood is zero at and around the preliminary estimate {psi}: the observed "
        "statistics lie outside the simulated ones. Check the model and the statistics, or raise n_sims."
    )


def _preliminary_fit(model, data, statistics, start, fit_options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            # Only its estimate and sandwich covariance are used: no bootstrap.
            return fit(model, data, statistics, start=start, options=replace(fit_options, bootstrap=0))
        except KernelError:  # a kernel raising stops the sampler as it stops the fit
            raise
        except SimfitError as exc:
            raise EstimationError(f"The preliminary fit that starts and scales the sampler failed: {exc}") from exc


def _surrogate_warnings(res: dict) -> list[str]:
    """What the summary and a :class:`SurrogateWarning` say about a surrogate run's problems."""
    warnings_ = []
    if not res["settled"]:
        warnings_.append(
            f"after {res['rounds']} rounds the posterior has not settled (a posterior mean moved by {res['shift']:.3g} "
            "of its sds in the last round, where it moves by less than 1 once the design is where the posterior is): "
            "it may be far from where the statistics put it; raise rounds, start the fit nearer, or use method='bsl'"
        )
    if not res["local"]:
        warnings_.append(
            f"after {res['rounds']} rounds the design is still too wide for the quadratic (residual variance "
            f"{res['lack_of_fit']:.3g} times the simulation noise): the likelihood keeps the residuals' covariance, "
            "so the posterior may be wider than the statistics support and shifted by the misfit; raise rounds or use "
            "method='bsl'"
        )
    check = res["surrogate_check"]
    if math.isfinite(check) and not SURROGATE_CHECK_RANGE[0] <= check <= SURROGATE_CHECK_RANGE[1]:
        warnings_.append(
            f"the surrogate predicts new simulations poorly (check {check:.3g}, 1 where it holds): its quadratic "
            "mean and covariance do not describe the statistics over the posterior, whose draws may be "
            "wrong; use method='bsl' or 'abc-smc'"
        )
    return warnings_


def _surrogate_start(fit_result, simulator, observed, priors, chains: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The surrogate's first pass: the preliminary estimate and its covariance (unconstrained scale)."""
    target = SyntheticLikelihood(simulator, observed, priors, 10)
    centre, _, cov = _start_points(fit_result, target, chains, seed)
    return centre, cov


def _surrogate_record(fit_result, centre, cov, simulator, observed, priors, opts: SurrogateOptions, chains, draws, warmup,
                      seed, fit_options, progress: Callable[[int], object] | None, rep: int) -> dict:
    """Run the surrogate sampler from the first pass ``centre``, ``cov``: the checkpoint record of
    its posterior (draws on the unconstrained scale), with the checks it failed."""
    res = run_surrogate(simulator, observed, priors, opts, centre, cov, chains, draws, warmup, seed, progress=progress)
    check = res["surrogate_check"]
    done = {
        "rep": rep,
        "draws": res["draws"].tolist(),
        "log_posterior": res["log_posterior"].tolist(),
        "estimate": fit_result.params.to_dict(),
        "n_simulations": int(res["n_simulations"]) + _fit_simulations(fit_result),
        "failed_checks": failed_checks(res),
        "info": {
            "preliminary_fit": _preliminary_fit_record(fit_result, fit_options),
            "design_points": res["design_points"],
            "failed_design_points": res["failed"],
            "acceptance": round(res["acceptance"], 3),
            "surrogate_check": None if not math.isfinite(check) else round(check, 3),
            "surrogate_r2_min": round(float(np.nanmin(res["r2"])), 3),
            "rounds": res["rounds"],
            "lack_of_fit": None if not math.isfinite(res["lack_of_fit"]) else round(res["lack_of_fit"], 3),
            "round_shift": round(res["shift"], 3),
        },
    }
    warnings_ = _surrogate_warnings(res)
    if warnings_:
        done["info"]["warning"] = "; ".join(warnings_)
    return done


def _surrogate_posterior(model, done: dict, fit_result) -> Posterior:
    """The surrogate sampler's posterior from its record (warning of its problems)."""
    if done["info"].get("warning"):
        warn("Surrogate posterior: " + done["info"]["warning"] + ".", SurrogateWarning)
    params = model.params
    draws_u = np.asarray(done["draws"], dtype=float)
    return Posterior(
        model=model,
        draws=params.to_natural(draws_u.reshape(-1, draws_u.shape[2])).reshape(draws_u.shape),
        method="surrogate",
        log_posterior=np.asarray(done["log_posterior"], dtype=float),
        estimate=pd.Series(done["estimate"], name="estimate")[list(model.param_names)],
        n_simulations=int(done["n_simulations"]),
        info=dict(done["info"]),
        fit=fit_result,
    )


def _sample_surrogate(model, data, statistics, simulator, observed, priors, opts: SurrogateOptions, chains, draws, warmup,
                      seed, fit_options, start, store, records, bar) -> Posterior:
    done = records.get(0) if records else None
    fit_result = None
    if done is None:
        fit_result = _preliminary_fit(model, data, statistics, start, fit_options)
        centre, cov = _surrogate_start(fit_result, simulator, observed, priors, chains, seed)
        done = _surrogate_record(fit_result, centre, cov, simulator, observed, priors, opts, chains, draws, warmup, seed,
                                 fit_options, bar.update if bar is not None else None, rep=0)
        if store is not None:
            store.append(done)
    return _surrogate_posterior(model, done, fit_result)


def _surrogate_attempt(fit_result, simulator, observed, priors, opts: SurrogateOptions, chains, draws, warmup, seed,
                       fit_options, progress: bool) -> dict:
    """``method="auto"``'s run of the surrogate sampler: its record, or, where it stopped with an
    error (too few finite panels, a statistic constant over the design, ...), a record of that."""
    centre, cov = _surrogate_start(fit_result, simulator, observed, priors, chains, seed)
    panels = [0]
    bar = _progress_bar(progress, "surrogate", None)

    def count(n: int) -> None:
        panels[0] += n
        if bar is not None:
            bar.update(n)

    try:
        return _surrogate_record(fit_result, centre, cov, simulator, observed, priors, opts, chains, draws, warmup, seed,
                                 fit_options, count, rep=_AUTO_SURROGATE_REP)
    except (EstimationError, np.linalg.LinAlgError) as exc:
        return {
            "rep": _AUTO_SURROGATE_REP,
            "n_simulations": _fit_simulations(fit_result) + panels[0],
            "failed_checks": {"error": f"the surrogate sampler stopped: {exc}"},
        }
    finally:
        if bar is not None:
            bar.close()


def _attempt_note(attempt: dict) -> str:
    """What the surrogate sampler's run cost and found, for the summary of a posterior BSL took over."""
    note = f"{attempt['n_simulations']:,} panels (its preliminary fit included, which BSL then started from)"
    info = attempt.get("info")
    if info:
        note += f"; prediction check {info['surrogate_check']}, {info['rounds']} rounds, last shift {info['round_shift']} sds"
    return note


def _sample_auto(model, data, statistics, simulator, observed, priors, opts: AutoOptions, chains, draws, warmup, seed,
                 fit_options, start, n_jobs, backend, store, records, setup, progress: bool) -> Posterior:
    """The surrogate sampler's posterior where its checks pass; BSL's, saying why, where one fails."""
    attempt = records.get(_AUTO_SURROGATE_REP)
    fit_result = None
    if attempt is None:
        fit_result = _preliminary_fit(model, data, statistics, start, fit_options)
        attempt = _surrogate_attempt(fit_result, simulator, observed, priors, opts.surrogate, chains, draws, warmup, seed,
                                     fit_options, progress)
        if store is not None:
            store.append(attempt)
    failed = attempt["failed_checks"]
    if not failed:
        post = _surrogate_posterior(model, attempt, fit_result)
        low, high = SURROGATE_CHECK_RANGE
        choice = (
            f"auto: the surrogate sampler, whose checks passed (prediction check {post.info['surrogate_check']} within "
            f"[{low:g}, {high:g}]; the posterior settled, its means moving by {post.info['round_shift']} sds in the last round)"
        )
        return replace(post, info={"method_choice": choice, **post.info})
    reason = "; ".join(failed.values())
    warn(
        f"method='auto' sampled by BSL, not the surrogate sampler, because {reason}. Pass method='bsl' or 'surrogate' "
        "to choose the method yourself.",
        FallbackWarning,
    )
    bar = _progress_bar(progress, "bsl", chains * (warmup + draws))
    try:
        post = _sample_bsl(
            model, data, statistics, simulator, observed, priors, opts.bsl, chains, draws, warmup, seed, fit_options, start,
            n_jobs, backend, store, {k: v for k, v in records.items() if k != _AUTO_SURROGATE_REP}, setup, bar,
            fit_result=fit_result,
        )
    finally:
        if bar is not None:
            bar.close()
    info = {
        "method_choice": f"auto: BSL, because the surrogate sampler failed its check ({', '.join(failed)}): {reason}",
        "surrogate_attempt": _attempt_note(attempt),
        **post.info,
    }
    return replace(post, n_simulations=post.n_simulations + int(attempt["n_simulations"]), info=info)


def _sample_bsl(model, data, statistics, simulator, observed, priors, opts: BSLOptions, chains, draws, warmup, seed,
                fit_options, start, n_jobs, backend, store, records, setup, bar, fit_result=None) -> Posterior:
    """BSL's posterior; ``fit_result``, when given, is the preliminary fit already run (its panels
    then counted by whoever ran it)."""
    estimate = None
    if setup is None:
        own_fit = fit_result is None
        if own_fit:
            fit_result = _preliminary_fit(model, data, statistics, start, fit_options)
        normalising = None
        if opts.normalise:
            at = simulator.statistics_batch(
                fit_result.params.to_numpy()[None], opts.normalise_panels, derive_seed(seed, 53), failures="nan"
            )[0]
            normalising = fit_normalising(at, simulator.names)
            if not normalising.transformed:
                normalising = None
        target = SyntheticLikelihood(simulator, observed, priors, 10, opts.shrinkage, opts.unbiased, normalising)
        centre, starts, prop_cov = _start_points(fit_result, target, chains, seed)
        setup_sims = (_fit_simulations(fit_result) if own_fit else 0) + (opts.normalise_panels if opts.normalise else 0)
        if opts.n_sims == "auto":
            points = np.vstack([centre[None], starts])
            n_sims, loglik_sd, used = choose_n_sims(target, points, derive_seed(seed, 52), opts.target_loglik_sd)
            setup_sims += used
        else:
            n_sims, loglik_sd = int(opts.n_sims), None
        target.n_sims = n_sims
        starts, used = _finite_starts(target, centre, starts, prop_cov, seed)
        setup_sims += used
        setup = {
            "starts": starts.tolist(), "proposal_cov": prop_cov.tolist(), "n_sims": n_sims,
            "loglik_sd": loglik_sd, "estimate": fit_result.params.to_dict(), "n_simulations": setup_sims,
            "preliminary_fit": _preliminary_fit_record(fit_result, fit_options),
            "normalising": None if normalising is None else normalising.to_dict(),
        }
        if store is not None:
            store.update_manifest(setup=setup)
    estimate = pd.Series(setup["estimate"], name="estimate")[list(model.param_names)]
    n_sims = int(setup["n_sims"])
    normalising = Normalising.from_dict(setup["normalising"]) if setup.get("normalising") else None
    target = SyntheticLikelihood(simulator, observed, priors, n_sims, opts.shrinkage, opts.unbiased, normalising)
    starts = np.asarray(setup["starts"], dtype=float)
    prop_cov = np.asarray(setup["proposal_cov"], dtype=float)
    by_chain: dict[int, list] = {c: [] for c in range(chains)}
    for r in records.values():
        by_chain.setdefault(int(r["chain"]), []).append(r)
    if bar is not None:
        bar.update(sum(max((r["state"]["t"] for r in v), default=0) for v in by_chain.values()))
    # Chains run in lockstep, in n_jobs groups of consecutive chains; a chain's draws depend only
    # on its number and the seed (see run_chains), so the grouping does not change the result.
    workers = max(1, min(chains, n_jobs if n_jobs > 0 else (os.cpu_count() or 1)))
    groups = [[int(c) for c in g] for g in np.array_split(np.arange(chains), workers)]
    tasks = [
        (target, g, chains, starts, prop_cov, warmup, draws, seed, opts.block, opts.target_acceptance, opts.independence,
         {c: by_chain[c] for c in g}, store)
        for g in groups
    ]
    if len(tasks) == 1:
        results = run_chains(*tasks[0], progress=bar.update if bar is not None else None)
    else:
        results = [r for group in run_parallel(run_chains, tasks, n_jobs=len(tasks), backend=backend) for r in group]
        if bar is not None:
            bar.update(bar.total - bar.n)
    results.sort(key=lambda r: r["chain"])
    n_sims_used = sum(r["n_simulations"] for r in results) + int(setup.get("n_simulations", 0))
    info = {
        "preliminary_fit": setup.get("preliminary_fit"),
        "panels_per_proposal": n_sims,
        "loglik_sd_at_estimate": None if setup.get("loglik_sd") is None else round(float(setup["loglik_sd"]), 3),
        "warmup": warmup,
        "acceptance": round(float(np.mean([r["acceptance"] for r in results])), 3),
    }
    if normalising is not None:
        info["statistics"] = "; ".join(normalising.report())
    return Posterior(
        model=model,
        draws=np.stack([r["draws"] for r in results]),
        method="bsl",
        log_posterior=np.stack([r["log_posterior"] for r in results]),
        estimate=estimate,
        n_simulations=int(n_sims_used),
        info=info,
        fit=fit_result,
    )


def _preliminary_fit_record(fit_result, fit_options: FitOptions) -> dict:
    """What the summary says about the fit the chains started from (plain data, kept in a
    checkpoint folder's manifest)."""
    return {
        "seed": int(fit_options.seed),
        "n_sims": int(fit_options.n_sims),
        "weighting": getattr(fit_options.weighting, "name", str(fit_options.weighting)),
        "converged": bool(fit_result.converged),
        "se": {k: float(v) for k, v in fit_result.se().items()},
    }


def _fit_simulations(fit_result) -> int:
    """Panels a fit simulated."""
    return int(fit_result.n_simulations)


def _adjustment_note(names, gains, opts: ABCOptions) -> str:
    """Which parameters the regression adjustment moved, with each regression's cross-validated R^2."""
    if not opts.adjust:
        return "off"
    if not np.isfinite(gains).any():
        return "none (no finite tolerance or too few weighted particles)"
    weights = adjustment_weight(gains, opts.adjust_min_gain, opts.adjust_full_gain)
    parts = [
        f"{n} {'adjusted' if lam == 1 else 'kept' if lam == 0 else f'adjusted by {lam:.2f}'} (cv R2 {g:.2f})"
        for n, g, lam in zip(names, gains, weights)
    ]
    if opts.adjust_full_gain > opts.adjust_min_gain:
        rule = f"the adjustment rises from none at cv R2 {opts.adjust_min_gain:g} to full at {opts.adjust_full_gain:g}"
    else:
        rule = f"adjusted where cv R2 >= {opts.adjust_min_gain:g}"
    return f"{', '.join(parts)}; {rule}"


def _sample_abc(model, simulator, observed, priors, opts: ABCOptions, seed, store, records, bar) -> Posterior:
    generations = list(records.values())
    res = run_abc_smc(simulator, observed, priors, opts, seed, generations, store, bar.update if bar is not None else None)
    info = {
        "preliminary_fit": None,
        "generations": res["generations"],
        "stopped": res["stopped"],
        "final_tolerance": round(float(res["tolerances"][-1]), 4) if math.isfinite(res["tolerances"][-1]) else None,
        "final_acceptance": round(float(res["acceptance"][-1]), 4),
        "tolerances": [float(t) for t in res["tolerances"]],
        "acceptance_by_generation": [float(a) for a in res["acceptance"]],
        "regression_adjustment": _adjustment_note(model.param_names, res["adjustment_gains"], opts),
    }
    return Posterior(
        model=model,
        draws=res["particles"][None],
        method="abc-smc",
        weights=res["weights"][None],
        n_simulations=res["n_simulations"],
        info=info,
    )
