"""Indirect-inference estimation: ``fit(model, data, statistics)``.

The estimator minimises ``Q(psi) = g' W g`` with ``g = s_obs - mean_S s_sim(psi)``, the observed
statistics minus the mean of ``S`` simulated panels' statistics. The simulated panels use fixed
random keys at every ``psi`` (common random numbers), so ``Q`` is smooth wherever the simulator
is, and the optimizer works on the unconstrained scale of the parameter transforms.

One call runs the whole procedure and returns a :class:`~simfit.results.FitResult` whose
uncertainty methods (``se``, ``conf_int``, ...) take options without refitting:

1. a global phase: the objective at a Sobol sample of the search box in one engine launch, and
   local optimisations from the best few points (:mod:`simfit.starts`);
2. the optimally weighted step from the best first-step solution (and from any other the data
   cannot tell from it);
3. convergence checks at the solution: flat, rough or noisy directions, a solution that never
   left its start (:mod:`simfit.convergence`); a finite-difference step too small for the noise
   is enlarged and the last step re-run;
4. inference: Jacobian, sandwich, J test, identification; a k-step parametric bootstrap where the
   diagnostics say the sandwich cannot be trusted (:mod:`simfit.bootstrap`,
   :mod:`simfit.intervals`); one-sided intervals for estimates on a bound.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import chi2

from simfit.bootstrap import BootstrapDraws, gauss_newton_map, kstep_bootstrap
from simfit.convergence import ConvergenceCheck, check_roughness
from simfit.data import Panel
from simfit.engine import ParamsLike, Simulator, calibrated_statistics, explain_nonfinite_observed
from simfit.errors import EstimationError, KernelError, SimfitError, warn
from simfit.inference import central_jacobian, fd_steps, identification, j_test, sandwich
from simfit.intervals import ProfileCurve, sandwich_concerns
from simfit.model import Model
from simfit.optimizers import LeastSquares, Optimizer, OptimizerResult, get_optimizer, with_options
from simfit.parallel import BACKENDS, run_parallel
from simfit.resources import require_memory
from simfit.response_surface import DESIGN_WIDTH_SE, refine_on_surface
from simfit.results import FitResult, StepRecord
from simfit.screen import screen_statistics
from simfit.seeding import derive_seed
from simfit.starts import (
    LocalSolutionsWarning,
    compare_solutions,
    global_candidates,
    objective_quantile,
    search_box,
)
from simfit.statistics.auxiliary import FIT_CONVERGED, FIT_REASONS
from simfit.statistics.collection import Statistics
from simfit.weighting import Diagonal, Optimal, Weighting, get_weighting

__all__ = ["FitOptions", "fit", "derive_seed", "MomentProblem", "ConvergenceWarning", "EstimateWarning", "profile_at_bound", "relative_steps"]

# Residual returned where the simulator fails, so an optimizer steps back instead of crashing.
_PENALTY = 1e8


REJECTED_LEVEL = 0.999  # a first-step minimum above this quantile of its null distribution is rejected
AUTO_BOOTSTRAP = 200  # k-step replicates a fit runs where its intervals need the bootstrap
BOOTSTRAP_METHODS = ("kstep", "full")


@dataclass(frozen=True)
class FitOptions:
    """Options of :func:`fit` (scenario files use the same names).

    Attributes
    ----------
    n_sims : int
        Simulated panels ``S`` per evaluation of the objective.
    seed : int
        Seeds everything: common random numbers, covariance simulations, bootstrap.
    weighting : str, Weighting or array
        ``identity``, ``diagonal``, ``optimal`` (two-step), ``iterated`` or a matrix.
    optimizer : str or Optimizer
        ``least_squares``, ``nelder-mead``, ``powell``, ``l-bfgs-b``, ``differential`` or
        ``multistart``.
    optimizer_options : dict, optional
        Options of the optimizer by name, e.g. ``{"maxfev": 2000, "xatol": 1e-4}`` for
        Nelder-Mead (the fields of its class in :mod:`simfit.optimizers`).
    n_cov_sims : int
        Panels simulated to estimate the covariance of the statistics for the optimal weighting
        and for inference (a tenth of them at the start values, for the first step).
    jacobian_step : float, sequence or mapping
        Relative central-difference step on the unconstrained scale, for the inference Jacobian:
        one for all parameters, one per parameter, or ``{name: step}`` (others 1e-3).
    diff_step : float, sequence or mapping
        Relative finite-difference step of gradient-based optimizers, likewise per parameter
        (others 1e-4). Simulators whose outputs are step functions of the parameters at small
        scales (a diffusion discretised in time, counts) need steps large enough to change some
        simulated outcomes, e.g. 0.02; the convergence check enlarges a step that sees only noise.
    search_width : float
        Half-width, on the unconstrained scale, of the box around the start (and the model's
        declared starts) searched by the global phase and global optimizers.
    global_points : int
        Quasi-random points of the search box at which the objective is screened, in one engine
        launch, before the local phase (0: start from ``start`` only).
    n_starts : int
        Local optimisations, from the best distinct screened points (the start among them); their
        solutions are compared (``FitResult.local_solutions``), and the distinct ones start the
        optimally weighted step too, which keeps the best. When the start was not among them and
        the best first-step minimum is one the data reject (its objective above
        :func:`simfit.starts.objective_quantile` at 0.999, or statistics that do not vary or are
        not finite there), the start is optimised from as well.
    bootstrap : int or "auto"
        Parametric-bootstrap replicates; ``"auto"`` runs 200 where the diagnostics say the
        sandwich intervals cannot be trusted (see :mod:`simfit.intervals`) and none elsewhere.
    bootstrap_method : {"kstep", "full"}
        ``kstep``: each replicate takes ``bootstrap_steps`` Gauss-Newton steps from the estimate,
        batched (:mod:`simfit.bootstrap`); ``full``: each replicate is re-fitted.
    bootstrap_steps : int
        ``k`` of the k-step bootstrap.
    check_convergence : bool
        Check the solution for roughness, flatness and noise (a few evaluations per parameter).
    n_jobs : int
        Parallel workers for multistart and the full bootstrap.
    backend : str
        joblib backend for them.
    """

    n_sims: int = 10
    seed: int = 0
    weighting: object = "optimal"
    optimizer: object = "least_squares"
    optimizer_options: dict | None = None
    n_cov_sims: int = 500
    jacobian_step: object = 1e-3
    diff_step: object = 1e-4
    search_width: float = 3.0
    global_points: int = 64
    n_starts: int = 3
    bootstrap: object = "auto"
    bootstrap_method: str = "kstep"
    bootstrap_steps: int = 2
    check_convergence: bool = True
    n_jobs: int = 1
    backend: str = "loky"

    def __post_init__(self) -> None:
        for name in ("n_sims", "n_cov_sims"):
            v = getattr(self, name)
            if not _is_int(v) or v < 2:
                raise EstimationError(f"{name} must be an integer of at least 2, got {v!r}.")
        if not _is_int(self.seed) or self.seed < 0:
            raise EstimationError(f"seed must be a non-negative integer, got {self.seed!r}.")
        if not (self.bootstrap == "auto" or (_is_int(self.bootstrap) and self.bootstrap >= 0)):
            raise EstimationError(f"bootstrap must be a non-negative integer or 'auto', got {self.bootstrap!r}.")
        if self.bootstrap_method not in BOOTSTRAP_METHODS:
            raise EstimationError(f"bootstrap_method must be one of {', '.join(BOOTSTRAP_METHODS)}, got {self.bootstrap_method!r}.")
        for name, low in (("bootstrap_steps", 1), ("global_points", 0), ("n_starts", 1)):
            v = getattr(self, name)
            if not _is_int(v) or v < low:
                raise EstimationError(f"{name} must be an integer of at least {low}, got {v!r}.")
        for name in ("jacobian_step", "diff_step"):
            object.__setattr__(self, name, _check_steps(getattr(self, name), name))
        if not self.search_width > 0:
            raise EstimationError(f"search_width must be positive, got {self.search_width!r}.")
        if not isinstance(self.check_convergence, bool):
            raise EstimationError(f"check_convergence must be true or false, got {self.check_convergence!r}.")
        if self.backend not in BACKENDS:
            raise EstimationError(f"Unknown parallel backend {self.backend!r}; choose one of {', '.join(BACKENDS)}.")
        if not _is_int(self.n_jobs) or not (self.n_jobs >= 1 or self.n_jobs == -1):
            raise EstimationError(f"n_jobs must be a positive integer or -1 (all cores), got {self.n_jobs!r}.")
        object.__setattr__(self, "weighting", get_weighting(self.weighting))
        optimizer = get_optimizer(self.optimizer)
        if self.optimizer_options:
            optimizer = with_options(optimizer, self.optimizer_options)
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "optimizer_options", None)  # now part of the optimizer itself


def _is_int(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


def _check_steps(value, name: str):
    """A relative step: one float, a tuple of floats or a {parameter: float} mapping, each in (0, 1)."""
    if isinstance(value, Mapping):
        items = dict(value)
        steps = list(items.values())
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = tuple(value)
        steps = list(items)
    else:
        items, steps = value, [value]
    for v in steps:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not 0 < float(v) < 1:
            raise EstimationError(f"{name} must lie in (0, 1) (one value, one per parameter or {{name: value}}), got {value!r}.")
    if isinstance(items, dict):
        return {str(k): float(v) for k, v in items.items()}
    if isinstance(items, tuple):
        return tuple(float(v) for v in items)
    return float(items)


def relative_steps(value, params, default: float) -> np.ndarray:
    """The relative steps of every parameter, shape (n_params,), from a float, sequence or mapping."""
    n = len(params)
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(params.names))
        if unknown:
            raise EstimationError(f"Steps given for unknown parameter(s) {', '.join(unknown)}; the model has {', '.join(params.names)}.")
        return np.array([value.get(name, default) for name in params.names], dtype=float)
    if isinstance(value, tuple):
        if len(value) != n:
            raise EstimationError(f"{len(value)} steps given for {n} parameters ({', '.join(params.names)}).")
        return np.array(value, dtype=float)
    return np.full(n, float(value))


class MomentProblem:
    """The objective of one estimation step: moments, whitened residuals and ``g' W g``.

    Parameters
    ----------
    simulator : Simulator
    observed : ndarray, shape (n_stats,)
    n_sims, seed : int
        Common random numbers: simulations ``0..n_sims-1`` of ``seed`` at every evaluation.
    weight : ndarray, shape (n_stats, n_stats)
    search_box : (ndarray, ndarray)
        Box on the unconstrained scale for global optimizers.
    diff_step : float
        Relative finite-difference step for gradient-based optimizers.
    """

    def __init__(
        self, simulator: Simulator, observed: np.ndarray, n_sims: int, seed: int, weight: np.ndarray, search_box, diff_step: float = 1e-4
    ):
        self.simulator = simulator
        self.diff_step = diff_step
        self.params = simulator.model.params
        self.observed = observed
        self.n_sims = n_sims
        self.seed = seed
        self.weight = weight
        self.root = np.linalg.cholesky(weight)  # W = L L'
        self.search_box = search_box
        self.failures = 0

    def mean_statistics(self, u: np.ndarray) -> np.ndarray:
        psi = self.params.to_natural(np.asarray(u, dtype=float))
        return self.simulator.statistics(psi, n_sims=self.n_sims, seed=self.seed).mean(axis=0)

    def moments(self, u: np.ndarray) -> np.ndarray:
        return self.observed - self.mean_statistics(u)

    def residuals(self, u: np.ndarray) -> np.ndarray:
        try:
            g = self.moments(u)
        except KernelError:  # a kernel raising stops the fit, as everywhere
            raise
        except SimfitError:  # non-finite simulator output, or parameters at the edge of their bounds: rejected
            self.failures += 1
            return np.full(self.observed.size, _PENALTY)
        if not np.all(np.isfinite(g)):
            self.failures += 1
            return np.full(self.observed.size, _PENALTY)
        return self.root.T @ g

    def objective(self, u: np.ndarray) -> float:
        r = self.residuals(u)
        return float(r @ r)


def _as_start(model: Model, start: ParamsLike | None) -> np.ndarray:
    if start is None:
        return model.params.start
    if isinstance(start, dict):  # some parameters: the others from the model's starts
        start = {**dict(zip(model.param_names, model.params.start)), **start}
    try:
        return model.free_vector(start)
    except SimfitError as exc:
        raise EstimationError(f"Invalid start values: {exc}") from None


def require_fit_memory(options: FitOptions, n_stats: int) -> None:
    """Refuse, before any simulation, a fit whose largest batch of statistics cannot fit in memory."""
    n_boot = 200 if options.bootstrap == "auto" else int(options.bootstrap or 0)
    panels = max(int(options.n_cov_sims), int(options.n_sims) * max(int(options.global_points), n_boot, 1))
    require_memory(
        8.0 * panels * (n_stats + 2), f"a fit with n_sims = {int(options.n_sims):,} ({panels:,} panels in one batch)",
        "use fewer simulations per evaluation (n_sims), covariance simulations (n_cov_sims) or bootstrap replicates",
    )


def constant_statistics(level: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """Statistics that do not vary across simulated panels, shape (n_stats,) of bool: a standard
    deviation of 0, or below rounding of the statistic's own simulated level (whatever the units of
    the data: the scale of observed values plays no part)."""
    sd = np.sqrt(np.maximum(np.diag(omega), 0.0))
    return sd <= 1e-12 * np.abs(level)


def _simulated_moments(sim: Simulator, psi: np.ndarray, n: int, seed: int, names) -> tuple[np.ndarray, np.ndarray]:
    """Mean (n_stats,) and covariance (n_stats, n_stats) of ``n`` simulated panels' statistics."""
    draws = _simulated_draws(sim, psi, n, seed, names)
    return draws.mean(axis=0), np.atleast_2d(np.cov(draws, rowvar=False, ddof=1))


def _covariance_at(sim: Simulator, psi: np.ndarray, n: int, seed: int, names, strict: bool = False):
    """Covariance of ``n`` simulated panels' statistics at ``psi`` (n_stats, n_stats) and which
    statistics do not vary there (n_stats,) of bool; ``None`` where a statistic is NaN or infinite
    in some panel or the simulator fails, unless ``strict`` (then that raises)."""
    try:
        level, omega = _simulated_moments(sim, psi, n, seed, names)
    except KernelError:
        raise
    except SimfitError:
        if strict:
            raise
        return None
    return omega, constant_statistics(level, omega)


def _rejected(fun: float, at: tuple[np.ndarray, np.ndarray] | None, weight: np.ndarray, n_sims: int) -> bool:
    """Whether a first-step minimum is one the data reject: its objective beyond the 99.9% point
    of the objective's distribution at the truth, statistics that do not vary there, or statistics
    not defined there (``at`` is None)."""
    if at is None or not np.isfinite(fun):
        return True
    omega, constant = at
    return bool(constant.any()) or fun > objective_quantile(weight, omega, n_sims, REJECTED_LEVEL)


def _require_varying(names, constant: np.ndarray, where: str, consequence: str) -> None:
    """Raise, naming them, when statistics do not vary across simulated panels at ``where``."""
    if constant.any():
        raise EstimationError(
            f"Statistic(s) {', '.join(np.asarray(names)[constant])} do not vary across simulated panels at "
            f"{where}; {consequence}"
        )


def _best_run(runs) -> int:
    """Index of the (solution, result) pair with the smallest finite objective."""
    return int(np.argmin([r.fun if np.isfinite(r.fun) else np.inf for _, r in runs]))


def _rounded(model: Model, psi: np.ndarray) -> dict:
    return {k: float(v) for k, v in zip(model.param_names, np.round(psi, 4))}


def _simulated_draws(sim: Simulator, psi: np.ndarray, n: int, seed: int, names) -> np.ndarray:
    draws = sim.statistics(psi, n_sims=n, seed=seed)
    if not np.all(np.isfinite(draws)):
        raise EstimationError(sim.explain_nonfinite(psi, n, seed, draws=draws))
    return draws


def fit(
    model: Model,
    data: Panel,
    statistics: Statistics,
    start: ParamsLike | None = None,
    options: FitOptions | None = None,
    fixed: Mapping[str, float] | None = None,
    **kwargs,
) -> FitResult:
    """Estimate the population parameters of ``model`` from ``data`` by indirect inference.

    Parameters
    ----------
    model : Model
    data : Panel
        Observed panel; it also fixes the design of the simulated panels.
    statistics : Statistics
        Auxiliary statistics, at least as many as parameters.
    start : mapping or array, optional
        Starting values (natural scale); ``Param.start`` by default.
    options : FitOptions, optional
    fixed : mapping of str to float, optional
        Parameters held at known values instead of estimated (:meth:`Model.fix`); the result's
        model is the fixed one, and its summary lists them.
    **kwargs
        Override fields of ``options`` (``n_sims=20``, ``weighting="diagonal"``, ...).

    Returns
    -------
    FitResult

    Raises
    ------
    EstimationError
        Fewer statistics than parameters, a start outside the bounds, statistics that are NaN on
        the observed data or constant in simulations: raised before optimizing.

    Warns
    -----
    ConvergenceWarning
        The convergence checks do not confirm the solution (``result.convergence.reasons``).
    LocalSolutionsWarning
        Local optimisations ended at solutions the data cannot tell apart
        (``result.local_solutions``).
    WeakIdentificationWarning
        The statistics barely move some parameter combination.
    """
    started = time.perf_counter()
    options = options or FitOptions()
    if kwargs:
        unknown = sorted(set(kwargs) - set(FitOptions.__dataclass_fields__))
        if unknown:
            raise EstimationError(
                f"Unknown fit option(s) {', '.join(unknown)}; options are "
                f"{', '.join(FitOptions.__dataclass_fields__)}."
            )
        options = replace(options, **kwargs)
    if not isinstance(data, Panel) or not data.has_values:
        raise EstimationError("data must be a Panel with observed values (Panel.from_frame / from_units).")
    if fixed:
        model = model.fix(fixed)
    psi0 = _as_start(model, start)
    statistics, calibration = calibrated_statistics(statistics, data)
    sim = Simulator(model, data.design(), statistics)
    names = sim.names
    n_params = len(model.params)
    if len(names) < n_params:
        raise EstimationError(
            f"{len(names)} statistics cannot identify {n_params} parameters "
            f"({', '.join(model.param_names)}); add statistics (at least one per parameter)."
        )
    require_fit_memory(options, len(names))
    observed = sim.observed(data)
    bad = ~np.isfinite(observed)
    if bad.any():
        raise EstimationError(explain_nonfinite_observed(sim, data, bad))
    unit_fit_failures = _unit_fit_failures(sim, data)
    n_sims = int(options.n_sims)
    # Keys of the simulated panels are derived from the seed, never the seed itself, so that data
    # simulated with simulate(seed=s) are not one of the panels fitted to them with fit(seed=s).
    seed = derive_seed(int(options.seed), 0)
    cov_seed = derive_seed(int(options.seed), 1)
    params = model.params
    u0 = params.to_free(psi0)
    box = search_box(params, u0, options.search_width)
    diff_step = relative_steps(options.diff_step, params, 1e-4)
    jacobian_step = relative_steps(options.jacobian_step, params, 1e-3)
    weighting: Weighting = options.weighting
    optimizer: Optimizer = _seeded(options.optimizer, derive_seed(int(options.seed), 5))

    # At the start only the variances matter (constant-statistic check, diagonal first step):
    # a tenth of the covariance simulations is enough.
    level0, omega0 = _simulated_moments(sim, psi0, max(50, options.n_cov_sims // 10), cov_seed, names)
    _require_varying(names, constant_statistics(level0, omega0), "the start values", "a constant statistic carries no information, remove it.")

    # First step: from the best few points of a global screening (or the start alone). The
    # covariance behind the first-step weighting is simulated at the best point of the sample
    # (which does not depend on the start), so that fits from different starts weigh the
    # statistics alike.
    steps: list[StepRecord] = []
    rejected: dict[str, int] = {}  # parameter values rejected for non-finite statistics, by phase
    first_label = "first step (diagonal)" if isinstance(weighting, Optimal) else weighting.name
    MomentProblem(sim, observed, n_sims, seed, np.eye(len(names)), box, diff_step).moments(u0)  # a simulator failing at the start raises here
    omega_first = omega0
    if options.global_points and not getattr(optimizer, "is_global", False):
        screen_box = search_box(params, None, options.search_width)
        starts, _, sample_best, rejected["global phase"] = global_candidates(
            sim, observed, n_sims, derive_seed(int(options.seed), 6), screen_box, u0, options.global_points, options.n_starts
        )
        if np.any(sample_best != u0):
            try:
                level_first, omega_first = _simulated_moments(
                    sim, params.to_natural(sample_best), max(50, options.n_cov_sims // 10), cov_seed, names
                )
                if constant_statistics(level_first, omega_first).any():
                    omega_first = omega0  # a statistic constant there: weigh as at the start
            except KernelError:
                raise
            except SimfitError:
                omega_first = omega0
    else:
        starts = u0[None, :]
    weight = Diagonal().matrix(omega_first, n_sims) if isinstance(weighting, Optimal) else weighting.matrix(omega_first, n_sims)
    step_probe = None
    if options.check_convergence:
        # Statistics that are step functions of the parameters at the finite-difference scale
        # (counts, choices, thresholds) show an optimizer zero slopes or jumps, and it stops
        # where it started: the steps are chosen from the noise before the local phase.
        step_probe = _probe_steps(sim, observed, n_sims, seed, weight, box, diff_step, starts[0], omega_first)
        if step_probe is not None:
            diff_step = step_probe
            jacobian_step = np.maximum(jacobian_step, diff_step)
    runs = [_step(sim, observed, n_sims, seed, weight, box, optimizer, start_k, diff_step) for start_k in starts]
    # A spread driven to its bound leaves the optimizer on a plateau (on the log scale the objective
    # flattens as the spread goes to 0): such solutions are re-started with those parameters back
    # at their starts, and the better of the two is kept.
    escapes = []
    for uk, _ in runs:
        stalled = [j for j, name in enumerate(params.names) if name in params.on_bound(params.to_natural(uk))]
        if stalled and not params.on_bound(psi0):
            restart = uk.copy()
            restart[stalled] = u0[stalled]
            escapes.append(restart)
    for restart in _distinct(escapes, np.full(len(u0), np.inf)):
        runs.append(_step(sim, observed, n_sims, seed, weight, box, optimizer, restart, diff_step))
        starts = np.vstack([starts, restart])
    best = _best_run(runs)
    # The first step's covariance, simulated at its solution: the optimal weighting's (so the
    # same keys as there), else a tenth of it for the check alone.
    start_tried = any(np.array_equal(s, u0) for s in starts)
    optimal_next = isinstance(weighting, Optimal) and weighting.iterations > 0
    n_check = options.n_cov_sims if optimal_next else max(50, options.n_cov_sims // 10)
    at_first = None
    if optimal_next or not start_tried:
        at_first = _covariance_at(sim, params.to_natural(runs[best][0]), n_check, cov_seed, names)
    if not start_tried and _rejected(runs[best][1].fun, at_first, weight, n_sims):
        # The screen ranks points by their statistics' distance from the data; one near the data
        # can still lie in a poor optimum's basin. A minimum the data reject (or where statistics
        # stop varying) is not taken without optimising from the start as well.
        runs.append(_step(sim, observed, n_sims, seed, weight, box, optimizer, u0, diff_step))
        starts = np.vstack([starts, u0])
        if _best_run(runs) != best:
            best = _best_run(runs)
            at_first = _covariance_at(sim, params.to_natural(runs[best][0]), n_check, cov_seed, names) if optimal_next else None
    u, res = runs[best]
    u_first_start = starts[best]
    label = first_label if len(runs) == 1 else f"{first_label}, best of {len(runs)} starts"
    steps.append(StepRecord(label, res, params.to_natural(u)))
    # Other first-step solutions that the first-step objective cannot tell from the best start the
    # next step too: under the optimal weighting one of them may be the better optimum.
    competitive = float(chi2.ppf(0.95, n_params))  # first-step objectives the data cannot tell apart
    others = _distinct([uk for k, (uk, rk) in enumerate(runs) if k != best and rk.fun <= res.fun + competitive], u)
    rivals, rival_weight = runs, weight  # solutions of one objective, compared with the estimate at the end
    omega_latest = omega_first  # the statistics' covariance nearest the solution so far
    if isinstance(weighting, Optimal):
        for it in range(weighting.iterations):
            if it == 0 and at_first is not None:
                omega, constant = at_first
            else:
                omega, constant = _covariance_at(sim, params.to_natural(u), options.n_cov_sims, cov_seed, names, strict=True)
            _require_varying(
                names, constant, f"the estimate of step {it + 1}, {_rounded(model, params.to_natural(u))}",
                "so the optimal weighting cannot be formed: the optimisation has stopped where the model cannot "
                "reproduce them. Give a start nearer the data, raise global_points, or use weighting='diagonal'.",
            )
            weight = weighting.matrix(omega, n_sims)
            omega_latest = omega
            candidates = [_step(sim, observed, n_sims, seed, weight, box, optimizer, v, diff_step) for v in [u, *others]]
            if it == 0:
                rivals, rival_weight = candidates, weight
            others = []
            u_new, res = candidates[_best_run(candidates)]
            steps.append(StepRecord(f"optimal weighting, step {it + 2}", res, params.to_natural(u_new)))
            moved = np.max(np.abs(u_new - u))
            u = u_new
            if moved < weighting.tol:
                break

    # Convergence: roughness, flatness and noise at the solution; a step too small for the noise
    # is enlarged and the last step re-run once.
    problem = MomentProblem(sim, observed, n_sims, seed, weight, box, diff_step)
    rough = None
    step_adapted = False
    if options.check_convergence:
        moment_sd = np.sqrt((1.0 + 1.0 / n_sims) * np.diag(omega0))
        rough = check_roughness(problem.moments, u, fd_steps(u, diff_step), moment_sd)
        wanted = rough.suggested_step > rough.step
        if wanted.any() and not rough.noisy:
            diff_step = np.where(wanted, rough.suggested_step / np.maximum(1.0, np.abs(u)), diff_step)
            jacobian_step = np.maximum(jacobian_step, diff_step)
            u_new, res = _step(sim, observed, n_sims, seed, weight, box, optimizer, u, diff_step)
            steps.append(StepRecord("re-run with steps enlarged to the noise", res, params.to_natural(u_new)))
            u = u_new
            step_adapted = True
            problem = MomentProblem(sim, observed, n_sims, seed, weight, box, diff_step)

    surface = None
    if rough is not None and rough.rough:
        # Rough at the finite-difference scale: the minimum and the slope are taken from a
        # quadratic surface of the moments fitted over a region a few standard errors wide.
        surface = _refine_on_surface(problem, u, jacobian_step, weight, omega_latest, n_sims, rough, derive_seed(int(options.seed), 9))
        if surface is not None:
            u = surface.u
            steps.append(StepRecord(
                f"response surface of the moments ({surface.n_points} points, {surface.rounds} design(s))",
                # Judged by whether it settled (a convergence reason of its own), not as an optimizer.
                replace(steps[-1].result, x=u, fun=problem.objective(u), message="minimum of the fitted surface",
                        success=True, nfev=surface.n_points, rejected=0), params.to_natural(u),
            ))

    psi_hat = params.to_natural(u)
    final_draws = _simulated_draws(sim, psi_hat, options.n_cov_sims, derive_seed(int(options.seed), 2), names)
    omega = np.atleast_2d(np.cov(final_draws, rowvar=False, ddof=1))
    constant = constant_statistics(final_draws.mean(axis=0), omega)
    _require_varying(
        names, constant, f"the estimate {_rounded(model, psi_hat)}",
        "so the model cannot reproduce their observed values there and the estimate's covariance is undefined. "
        "Give a start nearer the data or raise global_points; if the statistic is constant wherever the model "
        "is plausible, remove it.",
    )
    moments = problem.moments(u)
    try:
        # d mean s_sim / du: the surface's slope where the objective is rough, else differences.
        jac = -surface.jacobian if surface is not None else -central_jacobian(problem.moments, u, jacobian_step)
    except KernelError:
        raise
    except SimfitError as exc:
        raise EstimationError(f"The Jacobian at the estimate could not be simulated: {exc}") from exc
    if not np.all(np.isfinite(jac)):
        raise EstimationError(
            "The Jacobian of the statistics at the estimate is not finite (a statistic is NaN next "
            f"to the estimate {dict(zip(model.param_names, np.round(psi_hat, 6)))}); use statistics "
            "defined for every simulated panel."
        )
    cov_free = sandwich(jac, weight, omega, n_sims)
    if surface is not None:
        cov_free = cov_free + surface.cov_extra  # the surface's own error at the estimate
    jtest = j_test(moments, weight, n_params, final_draws, jac, n_sims) if isinstance(weighting, Optimal) else None
    ident = identification(jac, omega, model.param_names)
    se_free = np.sqrt(np.diag(cov_free))
    screen = screen_statistics(
        final_draws, observed, names, _unit_failure_shares(sim, data, psi_hat, unit_fit_failures, derive_seed(int(options.seed), 8))
    )
    convergence = _convergence(params, steps[-1].result, u, u_first_start, moments, jac, weight, se_free, rough, step_adapted, screen, surface)
    if not convergence.ok:
        warn(
            "The fit has not converged: " + "; ".join(convergence.reasons),
            ConvergenceWarning,
        )

    local = None
    if len(runs) > 1:
        local = compare_solutions(params, [(st, uk, rk.fun, rk.success) for st, (uk, rk) in zip(starts, runs)], best, se_free)
    # Candidates of an earlier weighting are re-optimised under the final one before they count.
    fit_warnings = _rival_solutions(
        model, rivals, u, se_free, isinstance(weighting, Optimal), _FinalObjective(problem, optimizer),
        reoptimise=not np.array_equal(rival_weight, weight), rough=surface is not None,
    )

    at_bound = params.on_bound(psi_hat)
    concerns = sandwich_concerns(
        params, psi_hat, params.natural_se(u, se_free), len(names), data.n_units, n_sims,
        ident.condition, ident.rank, at_bound,
    )
    n_boot = options.bootstrap
    if n_boot == "auto":
        n_boot = AUTO_BOOTSTRAP if concerns.need_bootstrap(at_bound) else 0
    boot = None
    if n_boot:
        if options.bootstrap_method == "kstep":
            active = np.array([p.name not in at_bound for p in params])
            boot = kstep_bootstrap(
                sim, u, jac, weight, n_sims, int(n_boot), derive_seed(int(options.seed), 7),
                steps=options.bootstrap_steps, se_free_hat=se_free, active=active,
            )
        else:
            boot = _bootstrap(model, data.design(), statistics, psi_hat, replace(options, bootstrap=int(n_boot)))

    profiles = {}
    for name in at_bound:
        j = params.index(name)
        # The fit's own optimal weighting, which the estimate minimises (else the optimal one at it).
        profile_weight = weight if isinstance(weighting, Optimal) else None
        profiles[name] = profile_at_bound(sim, observed, n_sims, seed, omega, u, j, box, diff_step, weight=profile_weight)

    result = FitResult(
        model=model,
        names=names,
        observed=observed,
        simulated=observed - moments,
        free=u,
        cov_free=cov_free,
        jacobian=jac,
        weight=weight,
        omega=omega,
        jtest=jtest,
        identification=ident,
        steps=tuple(steps),
        options=options,
        seconds=time.perf_counter() - started,
        compile_seconds=sim.compile_seconds,
        bootstrap=boot,
        n_obs=data.n_obs,
        n_units=data.n_units,
        statistics=statistics,
        design=data.design(),
        n_simulations=sim.panels_simulated,
        convergence=convergence,
        local_solutions=local,
        concerns=concerns,
        profiles=profiles,
        unit_fit_failures={f: sum(c.values()) for f, c in unit_fit_failures.items()},
        unit_fit_reasons=unit_fit_failures,
        screen=screen,
        calibration=calibration,
        fit_warnings=fit_warnings,
        rejected={**rejected, "optimisation": sum(step.result.rejected for step in steps)},
    )
    for line in result.warnings:
        if not line.startswith("not converged") and line not in fit_warnings:
            warn(f"The estimate may be wrong: {line}.", EstimateWarning)
    return result


#: A rival solution is one this many standard errors away (in some parameter) whose objective
#: exceeds the estimate's by less than the 95% point of chi-square(1).
RIVAL_DISTANCE_SE = 2.0


def _rival_solutions(
    model: Model, runs, u: np.ndarray, se_free: np.ndarray, optimal: bool, final, reoptimise: bool, rough: bool = False
) -> tuple[str, ...]:
    """WARNING lines for local solutions of the estimate's objective that lie far from it with an
    objective the data cannot tell from its own (a flip-flop pair, a mirror image); warns.

    ``runs`` are (solution, result) pairs of the local phase; ``final`` (:class:`_FinalObjective`)
    evaluates the fit's final objective and, with ``reoptimise`` (the runs minimised an earlier
    weighting), re-optimises a candidate under it, so that only a solution of the final objective
    counts, against the estimate's own final value.
    """
    params = model.params
    tolerance = float(chi2.ppf(0.95, 1 if optimal else len(u)))
    best = final.objective(u)
    # Where the objective is noise at the scale of a standard error (the response surface ran),
    # its local minima within the surface's design are the noise's: only another basin counts.
    apart = RIVAL_DISTANCE_SE + (2.0 * DESIGN_WIDTH_SE if rough else 0.0)
    psi = params.to_natural(u)
    se = params.natural_se(u, se_free)  # natural scale: a spread at 0 is finitely far from 0.3

    def distance(v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.abs(params.to_natural(v) - psi) / se
        return np.where(np.isfinite(dist), dist, 0.0)

    def rival(v, r) -> bool:
        on_bound = params.on_bound(params.to_natural(v))  # a spread driven to its bound: not another optimum
        return not on_bound and np.isfinite(r.fun) and r.fun - best <= tolerance and distance(v).max() > apart

    lines = []
    for uk, rk in runs:
        if not rival(uk, rk) and not (reoptimise and distance(uk).max() > apart):
            continue
        if reoptimise:
            uk, rk = final(uk)
            if not rival(uk, rk):
                continue
        dist = distance(uk)
        far = np.argsort(-dist)[:3]
        what = ", ".join(f"{model.param_names[j]} {params.to_natural(uk)[j]:.4g}" for j in far)
        lines.append(
            f"another local solution ({what}; {dist.max():.1f} standard errors away) fits the statistics about as well "
            f"(objective {rk.fun:.4g} against {best:.4g}): the data do not tell the two apart, so the estimate may be "
            "the wrong one. See result.local_solutions; fix or bound the parameters that separate them (search_width, "
            "fixed=...), or add statistics that do"
        )
    if lines:
        warn(
            "Local optimisations ended at solutions that differ by more than their standard errors with objectives the "
            "data do not tell apart; the estimate is the best of them. " + lines[0] + ".",
            LocalSolutionsWarning,
        )
    return tuple(lines)


class _FinalObjective:
    """Re-optimise from a point under the fit's final objective (for :func:`_rival_solutions`)."""

    def __init__(self, problem: MomentProblem, optimizer: Optimizer):
        self.problem, self.optimizer = problem, optimizer

    def __call__(self, u0: np.ndarray):
        res = self.optimizer.minimize(self.problem, np.asarray(u0, dtype=float))
        return np.asarray(res.x, dtype=float), res

    def objective(self, u: np.ndarray) -> float:
        return self.problem.objective(u)


class EstimateWarning(UserWarning):
    """A fit whose estimate or intervals may be wrong for a reason besides convergence (a J test
    rejecting the model, a standard error that is not finite): ``FitResult.warnings``."""


class UnitFitWarning(UserWarning):
    """Auxiliary-model statistics whose per-unit fit failed on some observed units."""


def _unit_fit_failures(sim: Simulator, data: Panel) -> dict[str, dict[str, int]]:
    """Observed units whose auxiliary-model fit failed, by flag and reason (see
    :data:`simfit.statistics.auxiliary.FIT_REASONS`); warns when any did."""
    flags = sim.flag_names
    if not flags:
        return {}
    table = sim.observed_unit_statistics(data)
    counts = {}
    for f in flags:
        column = table[:, sim.unit_names.index(f)]
        counts[f] = {FIT_REASONS.get(float(code), f"failed (code {code:g})"): int(np.sum(column == code))
                     for code in np.unique(column[column != FIT_CONVERGED])}
    failed = {f: c for f, c in counts.items() if c}
    if failed:
        warn(
            "Auxiliary-model fits failed on some observed units ("
            + "; ".join(f"{f.rsplit('.', 1)[0]}: " + ", ".join(f"{n} of {data.n_units} {why}" for why, n in c.items())
                        for f, c in failed.items())
            + "); those units are left out of the aggregates. Check the curve's start values and bounds.",
            UnitFitWarning,
        )
    return counts


#: Panels whose unit tables the screen reads for the share of failed auxiliary fits.
SCREEN_UNIT_PANELS = 20


def _unit_failure_shares(sim: Simulator, data: Panel, psi: np.ndarray, observed_failures: dict, seed: int) -> dict:
    """Per auxiliary-fit flag, the share of failed fits on the observed units and on the units of
    ``SCREEN_UNIT_PANELS`` panels simulated at ``psi``."""
    flags = sim.flag_names
    if not flags:
        return {}
    tables = sim.unit_statistics(psi, n_sims=SCREEN_UNIT_PANELS, seed=seed)
    out = {}
    for f in flags:
        column = tables[:, :, sim.unit_names.index(f)]
        out[f] = (sum(observed_failures.get(f, {}).values()) / data.n_units, float(np.mean(column != FIT_CONVERGED)))
    return out


class ConvergenceWarning(UserWarning):
    """A fit whose solution the convergence checks do not confirm."""


def _convergence(
    params, result: OptimizerResult, u, u_start, moments, jac, weight, se_free, rough, step_adapted, screen=None, surface=None
) -> ConvergenceCheck:
    """The fit's convergence verdict: the optimizer's criteria, a move from the start (or a start
    shown to be the optimum), and no flat, rough or noise-dominated direction at the solution."""
    names = params.names
    reasons, notes = [], []
    if not result.success:
        reasons.append(f"the optimizer's criteria do not hold ({result.message})")
    moved = bool(np.max(np.abs(u - u_start)) > 1e-6 * max(1.0, float(np.max(np.abs(u_start)))))
    if not moved:
        # The start may be the optimum: then a Gauss-Newton step from it is negligible.
        a = gauss_newton_map(jac, weight, np.ones(len(names), bool))
        step = a @ moments
        with np.errstate(invalid="ignore", divide="ignore"):
            small = np.abs(step) <= 0.01 * se_free
        if np.all(np.isfinite(step)) and small.all() and (rough is None or not (rough.rough or rough.flat)):
            moved = True
            notes.append("the start is the optimum (a Gauss-Newton step from it is negligible)")
        else:
            reasons.append("the solution is the start: the optimizer did not move from it")
    if rough is not None:
        on_bound = set(params.on_bound(params.to_natural(u)))
        flat = [names[j] for j in rough.flat if names[j] not in on_bound]
        if flat:
            reasons.append(f"the objective is flat in {', '.join(flat)} at the solution")
        if surface is not None:
            if surface.settled:
                notes.append(
                    f"the objective is rough at the finite-difference scale along {', '.join(names[j] for j in rough.rough)} "
                    f"(noise up to {np.nanmax(rough.noise):.2g} sampling sds): the estimate is the minimum of a quadratic "
                    f"surface of the moments fitted on {surface.n_points} points within {DESIGN_WIDTH_SE:g} standard errors, "
                    "its slope the Jacobian, and the surface's error is added to the covariance"
                )
            else:
                reasons.append(
                    f"the objective is noisy along {', '.join(names[j] for j in rough.rough)} and the minimum of the quadratic "
                    f"surface of the moments left its design {surface.rounds} times, so no optimum was found within the "
                    "noise; use more simulations (n_sims), statistics that average over more observations, or a "
                    "posterior from simfit.sample"
                )
        elif rough.noisy:
            worst = max(rough.noisy, key=lambda j: rough.noise[j])
            reasons.append(
                f"the objective is noisy along {', '.join(names[j] for j in rough.noisy)}: its noise is "
                f"{rough.noise[worst]:.2g} sampling standard deviations of the statistics (along {names[worst]}), "
                "so common random numbers do not make it smooth here (a chaotic simulator, or counts) and the "
                "optimizer may stop anywhere; use more simulations (n_sims), statistics that average over more "
                "observations, a larger diff_step, or a posterior from simfit.sample"
            )
        if step_adapted:
            notes.append("finite-difference steps were enlarged to the noise of the objective and the last step re-run")
    if screen is not None:
        reasons.extend(screen.reasons())
    return ConvergenceCheck(
        optimizer_success=bool(result.success), moved=moved, roughness=rough, step_adapted=step_adapted,
        reasons=tuple(reasons), notes=tuple(notes),
    )


def _distinct(points: list[np.ndarray], u: np.ndarray, tol: float = 1e-3) -> list[np.ndarray]:
    """The points that differ from ``u`` and from each other (max-norm above ``tol``)."""
    out: list[np.ndarray] = []
    for p in points:
        if np.max(np.abs(p - u)) > tol and all(np.max(np.abs(p - q)) > tol for q in out):
            out.append(p)
    return out


def _step(sim, observed, n_sims, seed, weight, box, optimizer: Optimizer, u0, diff_step) -> tuple[np.ndarray, OptimizerResult]:
    problem = MomentProblem(sim, observed, n_sims, seed, weight, box, diff_step)
    problem.moments(u0)  # a simulator failing at the start raises here, with its location
    res = optimizer.minimize(problem, np.asarray(u0, dtype=float))
    if problem.failures:
        message = f"{res.message} ({problem.failures} evaluation(s) failed and were penalised)"
        res = replace(res, message=message, rejected=problem.failures)
    return np.asarray(res.x, dtype=float), res


#: Designs of the noise-aware local phase whose width is set from the previous one's slope.
SURFACE_WIDTH_ROUNDS = 3


def _refine_on_surface(problem, u, jacobian_step, weight, omega, n_sims, rough, seed):
    """The noise-aware local phase (:mod:`simfit.response_surface`) from ``u``, with a design
    ``DESIGN_WIDTH_SE`` standard errors wide (at least the steps the noise calls for); ``None``
    where the standard errors cannot be had (a flat direction)."""
    steps = np.maximum(fd_steps(u, jacobian_step), rough.suggested_step)
    jac = central_jacobian(problem.moments, u, steps / np.maximum(1.0, np.abs(u)))
    se = np.sqrt(np.diag(sandwich(-jac, weight, omega, n_sims)))
    if not np.all(np.isfinite(se)):
        return None
    moment_sd = np.sqrt((1.0 + 1.0 / n_sims) * np.maximum(np.diag(omega), 1e-300))
    # Differences at a step the noise still dominates see jumps: too steep a slope, too small a
    # standard error, and a design too narrow to average the noise. The design's width is
    # therefore taken again from the surface's own slope until the two agree (within 1.5x).
    width = np.maximum(DESIGN_WIDTH_SE * se, steps)
    surface = None
    for _ in range(SURFACE_WIDTH_ROUNDS):
        # Unbounded: the search box is where the global phase looks, not a limit of the estimate.
        try:
            found = refine_on_surface(problem.moments, u, width, weight, moment_sd, seed)
        except KernelError:
            raise
        except SimfitError:
            # The designs walked where the simulator fails: no optimum within the noise was found
            # (the last surface, not settled; without one the fit reports the noisy objective).
            return None if surface is None else replace(surface, settled=False)
        surface = found
        u = surface.u  # the next design (if any) around this one's minimum
        se = np.sqrt(np.diag(sandwich(surface.jacobian, weight, omega, n_sims) + surface.cov_extra))
        wanted = np.maximum(DESIGN_WIDTH_SE * np.where(np.isfinite(se), se, width / DESIGN_WIDTH_SE), steps)
        if np.all((wanted <= 1.5 * width) & (wanted >= width / 1.5)):
            break
        width = wanted
    return surface


def _probe_steps(sim, observed, n_sims, seed, weight, box, diff_step, u, omega) -> np.ndarray | None:
    """Relative finite-difference steps large enough for the noise of the moments at ``u``, where
    the default ones are too small (a step-function simulator); ``None`` where they are fine."""
    problem = MomentProblem(sim, observed, n_sims, seed, weight, box, diff_step)
    moment_sd = np.sqrt((1.0 + 1.0 / n_sims) * np.maximum(np.diag(omega), 1e-300))
    try:
        report = check_roughness(problem.moments, u, fd_steps(u, diff_step), moment_sd)
    except KernelError:
        raise
    except SimfitError:  # non-finite statistics near the start: the optimizer's penalties handle them
        return None
    wanted = report.suggested_step > report.step
    if not wanted.any():
        return None
    return np.where(wanted, report.suggested_step / np.maximum(1.0, np.abs(u)), diff_step)


class _Restricted:
    """The moment problem with parameter ``j`` held at ``value`` (unconstrained scale)."""

    def __init__(self, problem: MomentProblem, j: int, value: float):
        self.problem, self.j, self.value = problem, j, value
        keep = np.ones(len(problem.params), bool)
        keep[j] = False
        self.keep = keep
        self.diff_step = np.asarray(problem.diff_step, dtype=float)[keep] if np.ndim(problem.diff_step) else problem.diff_step
        self.search_box = (problem.search_box[0][keep], problem.search_box[1][keep])

    def full(self, v: np.ndarray) -> np.ndarray:
        u = np.empty(self.keep.size)
        u[self.keep] = v
        u[self.j] = self.value
        return u

    def residuals(self, v):
        return self.problem.residuals(self.full(v))

    def objective(self, v):
        return self.problem.objective(self.full(v))


def profile_at_bound(
    sim, observed, n_sims, seed, omega, u_hat, j, box, diff_step, weight=None, max_doublings: int = 24, refine: int = 3
) -> ProfileCurve:
    """The distance statistic along parameter ``j``, estimated on its bound, moved away from it.

    With an optimal weighting (``weight``, the fit's own, or ``((1 + 1/S) Omega)^-1`` at the
    estimate), the other parameters are re-estimated with parameter ``j`` held at values at growing
    distances from its bound; the rise of the objective over its smallest value seen is recorded
    (:class:`~simfit.intervals.ProfileCurve`).
    """
    params = sim.model.params
    p = params[j]
    weight = Optimal().matrix(omega, n_sims) if weight is None else weight
    problem = MomentProblem(sim, observed, n_sims, seed, weight, box, diff_step)
    local = LeastSquares()
    q_min = problem.objective(u_hat)
    if len(params) > 1:
        q_min = min(q_min, local.minimize(_Restricted(problem, j, u_hat[j]), np.delete(u_hat, j)).fun)
    lo, hi = p.bounds
    bound = lo if abs(params.to_natural(u_hat)[j] - lo) <= abs(params.to_natural(u_hat)[j] - hi) else hi
    direction = 1.0 if bound == lo else -1.0
    scale = abs(p.start - bound)
    target = float(chi2.ppf(0.95, 1))  # covers one-sided levels down to alpha = 0.025
    values, rises = [], []
    others = np.delete(u_hat, j)

    def rise_at(distance: float) -> float:
        nonlocal others
        x = bound + direction * distance
        if not p.contains(x):
            return np.inf
        u_j = float(p.to_free(x))
        if len(params) > 1:
            res = local.minimize(_Restricted(problem, j, u_j), others)
            if np.isfinite(res.fun) and res.fun < 1e7:
                others = np.asarray(res.x, dtype=float)
            q = res.fun
        else:
            q = problem.objective(np.array([u_j]))
        values.append(x)
        rises.append(q - q_min)
        return q - q_min

    distance = scale / 16.0
    first = rise_at(distance)
    if first >= target:  # already above: come down towards the bound
        for _ in range(max_doublings):
            distance /= 2.0
            if rise_at(distance) < target:
                break
    else:
        for _ in range(max_doublings):
            distance *= 2.0
            if rise_at(distance) >= target:
                break
    # Refine where the rise crosses the 95% one-sided level (chi-square(1) 0.90 quantile).
    level = float(chi2.ppf(0.90, 1))
    for _ in range(refine):
        d = np.abs(np.array(values) - bound)
        r = np.array(rises)
        below, above = d[r < level], d[r >= level]
        if not below.size or not above.size:
            break
        lo_d = below.max()
        beyond = above[above > lo_d]
        if not beyond.size:
            break
        rise_at(float(np.sqrt(lo_d * beyond.min())))
    # An optimum away from the bound that the estimate missed lowers the baseline.
    rises = np.array(rises) - min(0.0, float(np.min(rises))) if rises else np.array(rises)
    far = hi if bound == lo else lo
    return ProfileCurve(bound=float(bound), values=np.array(values), increase=rises, far_bound=float(far))


def _seeded(optimizer: Optimizer, seed: int) -> Optimizer:
    """The optimizer with its own random starts seeded from the fit's seed."""
    if hasattr(optimizer, "seed"):
        return replace(optimizer, seed=seed)
    return optimizer


def sequential(options: FitOptions) -> FitOptions:
    """The options for a fit that runs inside a parallel worker: no nested worker pools."""
    optimizer = options.optimizer
    if hasattr(optimizer, "n_jobs"):
        optimizer = replace(optimizer, n_jobs=1)
    return replace(options, n_jobs=1, optimizer=optimizer)


def _bootstrap_one(model, design, statistics, psi_hat, options, b):
    data_seed = derive_seed(options.seed, 3, b)
    boot_options = replace(sequential(options), bootstrap=0, global_points=0, seed=derive_seed(options.seed, 4, b))
    missing = np.full((3, len(model.params)), np.nan)
    try:
        panel = Simulator(model, design).simulate(psi_hat, n_sims=1, seed=data_seed).panel(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit(model, panel, statistics, start=psi_hat, options=boot_options)
        if not res.converged:
            return missing
        return np.vstack([res.params.to_numpy(), res.free, np.sqrt(np.diag(res.cov_free))])
    except KernelError:
        raise
    except (SimfitError, np.linalg.LinAlgError):  # a failed draw is recorded as missing
        return missing


def _bootstrap(model, design, statistics, psi_hat, options) -> BootstrapDraws:
    """The full parametric bootstrap: every replicate re-fitted from the estimate (parallel)."""
    started = time.perf_counter()
    tasks = [(model, design, statistics, psi_hat, options, b) for b in range(int(options.bootstrap))]
    out = np.array(run_parallel(_bootstrap_one, tasks, n_jobs=options.n_jobs, backend=options.backend))
    return BootstrapDraws(
        natural=out[:, 0], free=out[:, 1], se_free=out[:, 2], method="full", steps=None,
        seconds=time.perf_counter() - started, n_simulations=0,
    )
