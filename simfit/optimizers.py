"""Optimizers for the indirect-inference objective, on the unconstrained parameter scale.

Every optimizer is a small frozen dataclass with one method::

    minimize(problem, x0) -> OptimizerResult

where ``problem`` offers ``objective(u)`` (the scalar ``g' W g``), ``residuals(u)`` (a vector ``r``
with ``r' r = g' W g``) and ``search_box`` (lower, upper) on the unconstrained scale for global
methods. With common random numbers the objective is a smooth deterministic function of ``u``
wherever the simulator is, so derivative-based methods on finite differences work.

=====================  =================================================================
optimizer              method
=====================  =================================================================
``least_squares``      trust-region least squares on the whitened moments (default; fast)
``nelder-mead``        Nelder-Mead simplex (derivative-free)
``powell``             Powell's conjugate directions (derivative-free)
``l-bfgs-b``           L-BFGS-B on central finite differences (step ``problem.diff_step``)
``differential``       differential evolution over ``search_box`` (global), then polished
``multistart``         a local optimizer from several points of ``search_box`` (parallel)
=====================  =================================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from scipy.stats import qmc

from simfit.errors import EstimationError
from simfit.inference import central_jacobian, forward_jacobian

__all__ = [
    "OptimizerResult",
    "Optimizer",
    "LeastSquares",
    "NelderMead",
    "Powell",
    "LBFGSB",
    "DifferentialEvolution",
    "Multistart",
    "get_optimizer",
    "with_options",
]


@dataclass(frozen=True)
class OptimizerResult:
    """What an optimizer reports (in the manner of ``scipy.optimize.OptimizeResult``).

    Attributes
    ----------
    x : ndarray
        Minimiser on the unconstrained scale.
    fun : float
        Objective value ``g' W g`` at ``x``.
    success : bool
    message : str
    nfev : int
        Objective (or residual) evaluations.
    seconds : float
        Wall time.
    method : str
    rejected : int
        Evaluations whose simulated statistics were not finite (or whose parameters reached a
        bound), penalised as rejected parameter values (set by the fit).
    """

    x: np.ndarray
    fun: float
    success: bool
    message: str
    nfev: int
    seconds: float
    method: str
    rejected: int = 0


@dataclass(frozen=True)
class Optimizer:
    """Base class of the optimizers."""

    name = "optimizer"
    is_global = False  # searches problem.search_box itself (no global phase before it)

    def minimize(self, problem, x0: np.ndarray) -> OptimizerResult:
        raise NotImplementedError


@dataclass(frozen=True)
class LeastSquares(Optimizer):
    """Trust-region reflective least squares (``scipy.optimize.least_squares``) on ``r(u)``.

    Converges in few evaluations because the objective is a sum of squares of smooth residuals;
    the default. It stops, successfully, once the Gauss-Newton model at the current point
    predicts a decrease of the objective below ``settle`` (``g' W g`` is in chi-square units, so
    a decrease of 1e-6 is what a move of about 0.001 standard errors makes): iterations beyond
    that polish the minimum of one simulated objective far below its standard error and change
    nothing a user can see. A tiny ``settle`` (1e-300) runs to scipy's own tolerances.
    """

    xtol: float = 1e-8
    ftol: float = 1e-10
    max_nfev: int = 2000
    settle: float = 1e-6
    name = "least_squares"

    def minimize(self, problem, x0):
        t = time.perf_counter()
        step = getattr(problem, "diff_step", 1e-4)
        last: dict = {}

        def residuals(u):
            r = problem.residuals(u)
            last["x"], last["r"] = np.array(u, dtype=float), r
            return r

        def jacobian(u):
            # Steps step * max(1, |u_j|): scipy's relative steps shrink to round-off for parameters
            # near zero, where a simulator that is piecewise constant at small scales would show a
            # zero derivative. The residuals at u are those scipy has just evaluated.
            f0 = last["r"] if "x" in last and np.array_equal(last["x"], u) else None
            jac = forward_jacobian(problem.residuals, u, step, f0)
            last["jx"], last["jac"] = np.array(u, dtype=float), jac
            return jac

        settled = []

        def callback(intermediate_result):
            x, r = intermediate_result.x, intermediate_result.fun
            if "jx" not in last or not np.array_equal(last["jx"], x) or not np.all(np.isfinite(r)):
                return
            direction = np.linalg.lstsq(last["jac"], -r, rcond=None)[0]
            predicted = float(np.sum((last["jac"] @ direction) ** 2))
            if predicted < self.settle:
                settled.append(predicted)
                raise StopIteration

        res = optimize.least_squares(
            residuals,
            x0,
            jac=jacobian,
            method="trf",
            xtol=self.xtol,
            ftol=self.ftol,
            gtol=1e-10,
            max_nfev=self.max_nfev,
            x_scale="jac",
            callback=callback,
        )
        success, message = bool(res.status > 0), str(res.message)
        if settled:
            success = True
            message = f"the Gauss-Newton step predicts a decrease of {settled[0]:.1e} (below {self.settle:g})"
        return OptimizerResult(
            x=res.x,
            fun=float(2.0 * res.cost),
            success=success,
            message=message,
            nfev=int(res.nfev + (res.njev or 0) * len(x0)),
            seconds=time.perf_counter() - t,
            method=self.name,
        )


def _scipy_minimize(problem, x0, method, options, name, jac=None):
    t = time.perf_counter()
    res = optimize.minimize(problem.objective, x0, method=method, options=options, jac=jac)
    return OptimizerResult(
        x=np.asarray(res.x, dtype=float),
        fun=float(res.fun),
        success=bool(res.success),
        message=str(res.message),
        nfev=int(res.nfev),
        seconds=time.perf_counter() - t,
        method=name,
    )


@dataclass(frozen=True)
class NelderMead(Optimizer):
    """Nelder-Mead simplex (derivative-free)."""

    xatol: float = 1e-6
    fatol: float = 1e-10
    maxfev: int = 5000
    name = "nelder-mead"

    def minimize(self, problem, x0):
        opts = {"xatol": self.xatol, "fatol": self.fatol, "maxfev": self.maxfev, "adaptive": len(x0) > 3}
        return _scipy_minimize(problem, x0, "Nelder-Mead", opts, self.name)


@dataclass(frozen=True)
class Powell(Optimizer):
    """Powell's method (derivative-free)."""

    xtol: float = 1e-6
    ftol: float = 1e-10
    maxfev: int = 5000
    name = "powell"

    def minimize(self, problem, x0):
        return _scipy_minimize(problem, x0, "Powell", {"xtol": self.xtol, "ftol": self.ftol, "maxfev": self.maxfev}, self.name)


@dataclass(frozen=True)
class LBFGSB(Optimizer):
    """L-BFGS-B with central finite-difference gradients (smooth under common random numbers)."""

    gtol: float = 1e-8
    maxiter: int = 1000
    name = "l-bfgs-b"

    def minimize(self, problem, x0):
        step = getattr(problem, "diff_step", 1e-4)

        def grad(u):
            return central_jacobian(lambda v: np.array([problem.objective(v)]), u, step)[0]

        result = _scipy_minimize(problem, x0, "L-BFGS-B", {"gtol": self.gtol, "maxiter": self.maxiter}, self.name, jac=grad)
        return result


@dataclass(frozen=True)
class DifferentialEvolution(Optimizer):
    """Differential evolution over ``problem.search_box`` (global), polished by least squares."""

    maxiter: int = 200
    popsize: int = 15
    tol: float = 1e-8
    seed: int = 0
    name = "differential"
    is_global = True

    def minimize(self, problem, x0):
        t = time.perf_counter()
        lower, upper = problem.search_box
        res = optimize.differential_evolution(
            problem.objective,
            bounds=list(zip(lower, upper)),
            maxiter=self.maxiter,
            popsize=self.popsize,
            tol=self.tol,
            seed=np.random.default_rng(self.seed),
            x0=np.clip(x0, lower, upper),
            polish=False,
        )
        polished = LeastSquares().minimize(problem, res.x)
        best = polished if polished.fun <= res.fun else None
        return OptimizerResult(
            x=best.x if best else np.asarray(res.x),
            fun=best.fun if best else float(res.fun),
            success=bool(res.success) and (best is None or best.success),
            message=f"{res.message}; polished by least squares: {polished.message}",
            nfev=int(res.nfev) + polished.nfev,
            seconds=time.perf_counter() - t,
            method=self.name,
        )


@dataclass(frozen=True)
class Multistart(Optimizer):
    """Run ``local`` from ``x0`` and from ``n_starts - 1`` scrambled-Halton points of the search box;
    keep the best. ``n_jobs`` > 1 runs the starts in parallel processes (joblib)."""

    n_starts: int = 8
    local: Optimizer = field(default_factory=lambda: LeastSquares())
    n_jobs: int = 1
    backend: str = "loky"
    seed: int = 0
    name = "multistart"
    is_global = True

    def minimize(self, problem, x0):
        from simfit.parallel import run_parallel

        t = time.perf_counter()
        lower, upper = problem.search_box
        points = [np.asarray(x0, dtype=float)]
        if self.n_starts > 1:
            halton = qmc.Halton(d=len(x0), scramble=True, seed=np.random.default_rng(self.seed))
            points += list(qmc.scale(halton.random(self.n_starts - 1), lower, upper))
        results = run_parallel(_local_run, [(self.local, problem, p) for p in points], n_jobs=self.n_jobs, backend=self.backend)
        best = min(results, key=lambda r: r.fun if np.isfinite(r.fun) else np.inf)
        n_ok = sum(r.success for r in results)
        return OptimizerResult(
            x=best.x,
            fun=best.fun,
            success=best.success,
            message=f"best of {len(results)} starts ({n_ok} converged): {best.message}",
            nfev=sum(r.nfev for r in results),
            seconds=time.perf_counter() - t,
            method=self.name,
        )


def _local_run(local: Optimizer, problem, x0) -> OptimizerResult:
    return local.minimize(problem, x0)


_BY_NAME = {
    "least_squares": LeastSquares,
    "nelder-mead": NelderMead,
    "powell": Powell,
    "l-bfgs-b": LBFGSB,
    "differential": DifferentialEvolution,
    "multistart": Multistart,
}


def get_optimizer(spec) -> Optimizer:
    """An :class:`Optimizer` from its name or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    raise EstimationError(f"Unknown optimizer {spec!r}; choose one of {', '.join(_BY_NAME)}.")


def with_options(optimizer: Optimizer, options: dict) -> Optimizer:
    """``optimizer`` with some of its settings replaced by name (``{"maxfev": 2000}``).

    Raises
    ------
    EstimationError
        A name that is not a setting of this optimizer, or a value of the wrong kind.
    """
    from dataclasses import fields, replace

    allowed = {f.name: f for f in fields(optimizer) if f.name not in ("seed",)}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise EstimationError(
            f"Unknown option(s) {', '.join(unknown)} for optimizer {optimizer.name!r}; its options are "
            f"{', '.join(allowed) or 'none'}."
        )
    checked = {}
    for name, value in options.items():
        current = getattr(optimizer, name)
        if name == "local":
            checked[name] = get_optimizer(value)
        elif isinstance(current, bool) or isinstance(value, bool):
            if not isinstance(value, bool) or not isinstance(current, bool):
                raise EstimationError(f"Optimizer option {name} = {value!r}: expected {type(current).__name__}.")
            checked[name] = value
        elif isinstance(current, int) and not isinstance(current, bool):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise EstimationError(f"Optimizer option {name} = {value!r}: expected a positive integer.")
            checked[name] = int(value)
        elif isinstance(current, float):
            if not isinstance(value, (int, float, np.floating, np.integer)) or not float(value) > 0:
                raise EstimationError(f"Optimizer option {name} = {value!r}: expected a positive number.")
            checked[name] = float(value)
        else:
            checked[name] = value
    return replace(optimizer, **checked)
