"""Indirect-inference estimation: ``fit(model, data, statistics)``.

The estimator minimises ``Q(psi) = g' W g`` with ``g = s_obs - mean_S s_sim(psi)``, the observed
statistics minus the mean of ``S`` simulated panels' statistics. The simulated panels use fixed
random keys at every ``psi`` (common random numbers), so ``Q`` is smooth wherever the simulator
is, and the optimizer works on the unconstrained scale of the parameter transforms.

One call runs the whole procedure (first step, optimal weighting, inference, optionally a
parametric bootstrap) and returns a :class:`~simfit.results.FitResult` whose uncertainty methods
(``se``, ``conf_int``, ...) take options without refitting.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace

import numpy as np

from simfit.data import Panel
from simfit.engine import ParamsLike, Simulator
from simfit.errors import EstimationError, SimfitError
from simfit.inference import central_jacobian, identification, j_test, sandwich
from simfit.model import Model
from simfit.optimizers import Optimizer, OptimizerResult, get_optimizer
from simfit.parallel import BACKENDS, run_parallel
from simfit.results import FitResult, StepRecord
from simfit.statistics.spec import Statistics
from simfit.weighting import Diagonal, Optimal, Weighting, get_weighting

__all__ = ["FitOptions", "fit", "derive_seed", "MomentProblem"]

# Residual returned where the simulator fails, so an optimizer steps back instead of crashing.
_PENALTY = 1e8


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
    n_cov_sims : int
        Panels simulated to estimate the covariance of the statistics for the optimal weighting
        and for inference (a tenth of them at the start values, for the first step).
    jacobian_step : float
        Relative central-difference step on the unconstrained scale, for the inference Jacobian.
    diff_step : float
        Relative finite-difference step of gradient-based optimizers. Simulators whose outputs are
        step functions of the parameters at small scales (a diffusion discretised in time, counts)
        need steps large enough to change some simulated outcomes, e.g. 0.02.
    search_width : float
        Half-width, on the unconstrained scale, of the box around the start searched by global
        optimizers (clipped to finite bounds).
    bootstrap : int
        Parametric bootstrap replications (0: none).
    n_jobs : int
        Parallel workers for multistart and bootstrap.
    backend : str
        joblib backend for them.
    """

    n_sims: int = 10
    seed: int = 0
    weighting: object = "optimal"
    optimizer: object = "least_squares"
    n_cov_sims: int = 500
    jacobian_step: float = 1e-3
    diff_step: float = 1e-4
    search_width: float = 3.0
    bootstrap: int = 0
    n_jobs: int = 1
    backend: str = "loky"

    def __post_init__(self) -> None:
        for name in ("n_sims", "n_cov_sims"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
                raise EstimationError(f"{name} must be an integer of at least 2, got {v!r}.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise EstimationError(f"seed must be a non-negative integer, got {self.seed!r}.")
        if not isinstance(self.bootstrap, (int, np.integer)) or self.bootstrap < 0:
            raise EstimationError(f"bootstrap must be a non-negative integer, got {self.bootstrap!r}.")
        if not (0 < self.jacobian_step < 1) or not (0 < self.diff_step < 1) or not self.search_width > 0:
            raise EstimationError("jacobian_step and diff_step must lie in (0, 1) and search_width be positive.")
        if self.backend not in BACKENDS:
            raise EstimationError(f"Unknown parallel backend {self.backend!r}; choose one of {', '.join(BACKENDS)}.")
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, (int, np.integer)) or not (self.n_jobs >= 1 or self.n_jobs == -1):
            raise EstimationError(f"n_jobs must be a positive integer or -1 (all cores), got {self.n_jobs!r}.")
        object.__setattr__(self, "weighting", get_weighting(self.weighting))
        object.__setattr__(self, "optimizer", get_optimizer(self.optimizer))


def derive_seed(seed: int, *tags: int) -> int:
    """A seed for a sub-task, derived deterministically from ``seed`` and integer ``tags``."""
    state = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(t) for t in tags)).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


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
        except SimfitError:  # simulator failed or parameters at the edge of their bounds
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
    try:
        return model.params.as_vector(start)
    except SimfitError as exc:
        raise EstimationError(f"Invalid start values: {exc}") from None


def _search_box(u0: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    # Global optimizers search u0 +- width on the unconstrained scale (a factor exp(width) for
    # log-transformed parameters).
    return u0 - width, u0 + width


def _simulated_covariance(sim: Simulator, psi: np.ndarray, n: int, seed: int, names) -> np.ndarray:
    draws = sim.statistics(psi, n_sims=n, seed=seed)
    bad = ~np.all(np.isfinite(draws), axis=0)
    if bad.any():
        raise EstimationError(
            f"Statistic(s) {', '.join(np.asarray(names)[bad])} are NaN or infinite in some simulated "
            "panels at the current parameters; use statistics defined for every panel."
        )
    omega = np.cov(draws, rowvar=False, ddof=1)
    return np.atleast_2d(omega)


def fit(
    model: Model,
    data: Panel,
    statistics: Statistics,
    start: ParamsLike | None = None,
    options: FitOptions | None = None,
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
    psi0 = _as_start(model, start)
    sim = Simulator(model, data.design(), statistics)
    names = sim.names
    n_params = len(model.params)
    if len(names) < n_params:
        raise EstimationError(
            f"{len(names)} statistics cannot identify {n_params} parameters "
            f"({', '.join(model.param_names)}); add statistics (at least one per parameter)."
        )
    observed = sim.observed(data)
    bad = ~np.isfinite(observed)
    if bad.any():
        raise EstimationError(
            f"Statistic(s) {', '.join(np.asarray(names)[bad])} are NaN or infinite on the observed "
            "data (e.g. a variance of units with one observation); drop them or change the design."
        )
    n_sims = int(options.n_sims)
    # Keys of the simulated panels are derived from the seed, never the seed itself, so that data
    # simulated with simulate(seed=s) are not one of the panels fitted to them with fit(seed=s).
    seed = derive_seed(int(options.seed), 0)
    cov_seed = derive_seed(int(options.seed), 1)
    u0 = model.params.to_free(psi0)
    box = _search_box(u0, options.search_width)
    weighting: Weighting = options.weighting
    optimizer: Optimizer = _seeded(options.optimizer, derive_seed(int(options.seed), 5))

    # At the start only the variances matter (constant-statistic check, diagonal first step):
    # a tenth of the covariance simulations is enough.
    omega0 = _simulated_covariance(sim, psi0, max(50, options.n_cov_sims // 10), cov_seed, names)
    constant = np.diag(omega0) <= 1e-14 * np.maximum(1.0, np.abs(observed)) ** 2
    if constant.any():
        raise EstimationError(
            f"Statistic(s) {', '.join(np.asarray(names)[constant])} do not vary across simulated "
            f"panels at the start values; a constant statistic carries no information, remove it."
        )

    steps: list[StepRecord] = []
    if isinstance(weighting, Optimal):
        weight = Diagonal().matrix(omega0, n_sims)
        u, res = _step(sim, observed, n_sims, seed, weight, box, optimizer, u0, options.diff_step)
        steps.append(StepRecord("first step (diagonal)", res, model.params.to_natural(u)))
        for it in range(weighting.iterations):
            omega = _simulated_covariance(sim, model.params.to_natural(u), options.n_cov_sims, cov_seed, names)
            weight = weighting.matrix(omega, n_sims)
            u_new, res = _step(sim, observed, n_sims, seed, weight, box, optimizer, u, options.diff_step)
            steps.append(StepRecord(f"optimal weighting, step {it + 2}", res, model.params.to_natural(u_new)))
            moved = np.max(np.abs(u_new - u))
            u = u_new
            if moved < weighting.tol:
                break
    else:
        weight = weighting.matrix(omega0, n_sims)
        u, res = _step(sim, observed, n_sims, seed, weight, box, optimizer, u0, options.diff_step)
        steps.append(StepRecord(weighting.name, res, model.params.to_natural(u)))

    psi_hat = model.params.to_natural(u)
    omega = _simulated_covariance(sim, psi_hat, options.n_cov_sims, derive_seed(int(options.seed), 2), names)
    problem = MomentProblem(sim, observed, n_sims, seed, weight, box)
    moments = problem.moments(u)
    try:
        jac = -central_jacobian(problem.moments, u, options.jacobian_step)  # d mean s_sim / du
    except SimfitError as exc:
        raise EstimationError(f"The Jacobian at the estimate could not be simulated: {exc}") from exc
    if not np.all(np.isfinite(jac)):
        raise EstimationError(
            "The Jacobian of the statistics at the estimate is not finite (a statistic is NaN next "
            f"to the estimate {dict(zip(model.param_names, np.round(psi_hat, 6)))}); use statistics "
            "defined for every simulated panel."
        )
    cov_free = sandwich(jac, weight, omega, n_sims)
    jtest = j_test(moments, weight, n_params) if isinstance(weighting, Optimal) else None
    ident = identification(jac, omega, model.param_names)

    boot = None
    if options.bootstrap:
        boot = _bootstrap(model, data.design(), statistics, psi_hat, options)

    return FitResult(
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
        bootstrap_estimates=boot,
        n_obs=data.n_obs,
        n_units=data.n_units,
        statistics=statistics,
        design=data.design(),
    )


def _step(sim, observed, n_sims, seed, weight, box, optimizer: Optimizer, u0, diff_step) -> tuple[np.ndarray, OptimizerResult]:
    problem = MomentProblem(sim, observed, n_sims, seed, weight, box, diff_step)
    problem.moments(u0)  # a simulator failing at the start raises here, with its location
    res = optimizer.minimize(problem, np.asarray(u0, dtype=float))
    if problem.failures:
        res = replace(res, message=f"{res.message} ({problem.failures} evaluation(s) failed and were penalised)")
    return np.asarray(res.x, dtype=float), res


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
    boot_options = replace(sequential(options), bootstrap=0, seed=derive_seed(options.seed, 4, b))
    try:
        panel = Simulator(model, design).simulate(psi_hat, n_sims=1, seed=data_seed).panel(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit(model, panel, statistics, start=psi_hat, options=boot_options)
        if not res.converged:
            return np.full(len(model.params), np.nan)
        return res.params.to_numpy()
    except (SimfitError, np.linalg.LinAlgError):  # a failed draw is recorded as missing
        return np.full(len(model.params), np.nan)


def _bootstrap(model, design, statistics, psi_hat, options) -> np.ndarray:
    tasks = [(model, design, statistics, psi_hat, options, b) for b in range(int(options.bootstrap))]
    return np.array(run_parallel(_bootstrap_one, tasks, n_jobs=options.n_jobs, backend=options.backend))

