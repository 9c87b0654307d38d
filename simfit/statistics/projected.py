"""Semi-automatic statistics: candidate statistics projected onto the parameters.

Fearnhead and Prangle (2012): the best statistic for a parameter is its posterior mean given the
data; a regression of the parameter on many candidate statistics, fitted on simulations, is a
practical estimate of it. :func:`projected` simulates a pilot design of parameter vectors around
the model's starts (the box of the fit's global phase), computes the candidate statistics of one
panel at each, regresses each parameter (on its unconstrained scale) on the standardised
candidates and their squares, and uses the fitted values as the statistics: one per parameter,
named ``proj:<parameter>``.

The projection is fitted once, the first time the statistics meet a model and design (or
explicitly with :meth:`Projected.prepare`), and kept with the statistics: every fit, bootstrap
replicate and recovery replication that uses them uses the same projection, and a study folder
stores it (``projection.json``) so that a resumed study does too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simfit.errors import StatisticsError
from simfit.statistics.collection import Statistics

__all__ = ["Projection", "Projected", "projected"]


@dataclass(frozen=True)
class Projection:
    """A fitted projection of candidate statistics onto the parameters.

    Attributes
    ----------
    names : tuple of str
        Output statistic names, ``proj:<parameter>``, one per parameter.
    inputs : tuple of str
        Candidate statistic names, in the order the projection reads them.
    center, scale : ndarray, shape (n_inputs,)
        Standardisation of the candidates (pilot mean and sd).
    coef : ndarray, shape (1 + n_features, n_params)
        Intercept, then coefficients of the standardised candidates (and of their squares when
        ``quadratic``).
    quadratic : bool
    r2 : ndarray, shape (n_params,)
        Share of each parameter's pilot variance the projection explains: near 0, the
        candidates barely inform that parameter.
    pilot : int
        Pilot panels used (after dropping failed simulations).
    seed : int
    """

    names: tuple[str, ...]
    inputs: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    quadratic: bool
    r2: np.ndarray
    pilot: int
    seed: int

    def features(self, stats: np.ndarray) -> np.ndarray:
        z = (np.asarray(stats, dtype=np.float64) - self.center) / self.scale
        parts = [np.ones(z.shape[:-1] + (1,)), z] + ([z * z] if self.quadratic else [])
        return np.concatenate(parts, axis=-1)

    def apply(self, stats: np.ndarray) -> np.ndarray:
        """Projected statistics of candidate statistics ``stats``, shape (..., n_inputs) -> (..., n_params)."""
        return self.features(stats) @ self.coef

    def to_dict(self) -> dict:
        return {
            "names": list(self.names), "inputs": list(self.inputs), "center": self.center.tolist(),
            "scale": self.scale.tolist(), "coef": self.coef.tolist(), "quadratic": self.quadratic,
            "r2": self.r2.tolist(), "pilot": self.pilot, "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Projection:
        return cls(
            names=tuple(d["names"]), inputs=tuple(d["inputs"]), center=np.asarray(d["center"], dtype=np.float64),
            scale=np.asarray(d["scale"], dtype=np.float64), coef=np.asarray(d["coef"], dtype=np.float64),
            quadratic=bool(d["quadratic"]), r2=np.asarray(d["r2"], dtype=np.float64), pilot=int(d["pilot"]), seed=int(d["seed"]),
        )


def fit_projection(
    params_free: np.ndarray, stats: np.ndarray, inputs: tuple[str, ...], param_names: tuple[str, ...],
    quadratic: bool = True, seed: int = 0, ridge: float = 1e-6,
) -> Projection:
    """Least-squares projection of ``params_free`` (n, n_params) on candidate ``stats`` (n, n_inputs).

    Rows with a non-finite statistic are dropped; a (tiny, relative) ridge keeps the normal
    equations solvable when candidates are collinear.
    """
    ok = np.isfinite(stats).all(axis=1) & np.isfinite(params_free).all(axis=1)
    x, y = stats[ok], params_free[ok]
    center = x.mean(axis=0)
    scale = x.std(axis=0)
    constant = ~(scale > 1e-12 * np.maximum(1.0, np.abs(center)))
    if constant.any():
        raise StatisticsError(
            f"projected: candidate statistic(s) {', '.join(np.asarray(inputs)[constant])} do not vary over the pilot "
            "design; remove them."
        )
    probe = Projection(tuple(f"proj:{n}" for n in param_names), inputs, center, scale, np.zeros((1, 1)), quadratic, np.zeros(0), int(ok.sum()), seed)
    feats = probe.features(x)
    if feats.shape[0] < 2 * feats.shape[1]:
        raise StatisticsError(
            f"projected: {feats.shape[0]} usable pilot panels for {feats.shape[1]} regression terms; use a pilot of at "
            f"least {2 * feats.shape[1]} (more is better) or fewer candidates."
        )
    gram = feats.T @ feats
    penalty = ridge * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(gram + penalty, feats.T @ y)
    resid = y - feats @ coef
    r2 = 1.0 - resid.var(axis=0) / np.maximum(y.var(axis=0), 1e-300)
    return Projection(probe.names, inputs, center, scale, coef, quadratic, r2, int(ok.sum()), seed)


class Projected(Statistics):
    """Candidate statistics and their projection onto the parameters (see :func:`projected`)."""

    projects = True

    def __init__(self, candidates: Statistics, pilot: int = 1000, quadratic: bool = True, width: float = 1.0,
                 seed: int = 0, projection: Projection | None = None) -> None:
        if not isinstance(candidates, Statistics) or isinstance(candidates, Projected):
            raise StatisticsError("projected: candidates must be a Statistics object (the statistics to project).")
        if int(pilot) < 10:
            raise StatisticsError(f"projected: pilot must be at least 10 panels, got {pilot!r}.")
        if not width > 0:
            raise StatisticsError(f"projected: width must be positive, got {width!r}.")
        super().__init__(candidates.unit, candidates.across, candidates.extra, candidates.pooled)
        self.candidates = candidates
        self.pilot = int(pilot)
        self.quadratic = bool(quadratic)
        self.width = float(width)
        self.seed = int(seed)
        self.projection = projection

    @property
    def calibrates(self) -> bool:
        """Projected statistics are fitted on a pilot simulation, not on the observed data."""
        return False

    def prepare(self, model, design) -> Projection:
        """The projection for ``model`` on ``design``: fitted on a pilot simulation the first time
        (deterministic given ``seed``), then kept."""
        from simfit.engine import Simulator
        from simfit.seeding import derive_seed
        from simfit.starts import search_box

        sim = Simulator(model, design, self.candidates)
        if self.projection is not None:
            if self.projection.inputs != sim.names or self.projection.names != tuple(f"proj:{n}" for n in model.param_names):
                raise StatisticsError(
                    "projected: the stored projection reads statistics "
                    f"{list(self.projection.inputs)} for parameters {list(self.projection.names)}, but these candidates give "
                    f"{list(sim.names)} for {list(model.param_names)}; fit a new projection (projection=None)."
                )
            return self.projection
        params = model.params
        lower, upper = search_box(params, None, self.width)
        rng = np.random.default_rng(derive_seed(self.seed, 31))
        u = lower + (upper - lower) * rng.random((self.pilot, len(params)))
        stats = sim.statistics_batch(params.to_natural(u), n_sims=1, seed=derive_seed(self.seed, 32), failures="nan")[:, 0, :]
        self.projection = fit_projection(u, stats, sim.names, tuple(model.param_names), self.quadratic, self.seed)
        return self.projection

    def __repr__(self) -> str:
        state = "fitted" if self.projection is not None else "not fitted yet"
        return f"<Projected statistics: {self.candidates!r} projected on the parameters (pilot {self.pilot}, {state})>"


def projected(candidates: Statistics, pilot: int = 1000, quadratic: bool = True, width: float = 1.0, seed: int = 0,
              projection: Projection | dict | None = None) -> Projected:
    """Semi-automatic statistics (Fearnhead and Prangle 2012): one statistic per parameter, the
    regression of the parameter on ``candidates`` fitted on a pilot simulation.

    Parameters
    ----------
    candidates : Statistics
        Many statistics that may carry information (more than the parameters; their squares are
        added when ``quadratic``).
    pilot : int
        Pilot panels, one per parameter vector drawn uniformly in the box of the fit's global
        phase (``width`` on either side of the model's starts, on the unconstrained scale).
    quadratic : bool
        Regress on the candidates' squares too.
    width : float
    seed : int
        Seed of the pilot design and simulations.
    projection : Projection or dict, optional
        A projection fitted before (``FitResult.statistics.projection``, a study's
        ``projection.json``): used as is instead of a new pilot.

    Examples
    --------
    >>> from simfit import statistics as st
    >>> stats = st.projected(st.Statistics(unit=[st.moments(), st.quantiles([0.1, 0.5, 0.9])]), pilot=1000)
    """
    if isinstance(projection, dict):
        projection = Projection.from_dict(projection)
    return Projected(candidates, pilot, quadratic, width, seed, projection)
