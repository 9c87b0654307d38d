"""Weighting matrices for the indirect-inference objective ``Q(psi) = g' W g``.

Each weighting is a small frozen dataclass with one method, ``matrix(omega, n_sims)``, that turns the
simulated covariance ``omega`` of the statistics (one panel's statistics, n_stats x n_stats) into
``W``. ``omega`` is estimated by simulation (:func:`simulated_covariance`) and checked for
ill-conditioning before it is inverted (:func:`regularized_inverse`): a near-singular covariance
is shrunk toward its diagonal, with a warning saying by how much, never inverted silently.

==============  ======================================================================
weighting       W
==============  ======================================================================
``identity``    I
``diagonal``    diag(1 / omega_jj)
``optimal``     ((1 + 1/S) omega)^-1 at a first-step estimate (two-step efficient GMM)
``iterated``    like ``optimal``, re-estimated until the estimate stops moving
``User(W)``     a fixed user matrix
==============  ======================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simfit.errors import EstimationError, warn

__all__ = [
    "Weighting",
    "Identity",
    "Diagonal",
    "Optimal",
    "User",
    "get_weighting",
    "regularized_inverse",
    "IllConditionedWarning",
]

#: Condition number of the statistics' correlation matrix above which it is regularised.
MAX_CONDITION = 1e10


class IllConditionedWarning(UserWarning):
    """The simulated covariance of the statistics is close to singular and was regularised."""


@dataclass(frozen=True)
class Weighting:
    """Base class: ``iterations`` is how many times W is re-estimated after the first step."""

    name = "weighting"
    iterations = 0
    needs_covariance = True

    def matrix(self, omega: np.ndarray, n_sims: int) -> np.ndarray:
        raise NotImplementedError


@dataclass(frozen=True)
class Identity(Weighting):
    """W = I: statistics weighted equally in their own units."""

    name = "identity"
    needs_covariance = False

    def matrix(self, omega, n_sims):
        return np.eye(omega.shape[0])


@dataclass(frozen=True)
class Diagonal(Weighting):
    """W = diag(1 / omega_jj): each statistic weighted by its inverse variance."""

    name = "diagonal"

    def matrix(self, omega, n_sims):
        return np.diag(1.0 / ((1.0 + 1.0 / n_sims) * np.diag(omega)))


@dataclass(frozen=True)
class Optimal(Weighting):
    """W = ((1 + 1/S) omega)^-1 with omega simulated at the previous step's estimate.

    ``iterations=1`` is two-step efficient estimation; more iterations re-estimate omega and the
    parameters until the estimate changes by less than ``tol`` (iterated GMM).
    """

    iterations: int = 1
    tol: float = 1e-6

    @property
    def name(self) -> str:
        return "optimal" if self.iterations == 1 else "iterated"

    def matrix(self, omega, n_sims):
        return regularized_inverse((1.0 + 1.0 / n_sims) * omega)


@dataclass(frozen=True)
class User(Weighting):
    """A fixed, symmetric positive definite weighting matrix given by the user."""

    w: np.ndarray = field(default_factory=lambda: np.eye(1))
    name = "user"
    needs_covariance = False

    def __post_init__(self) -> None:
        w = np.asarray(self.w, dtype=float)
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise EstimationError(f"The weighting matrix must be square, got shape {w.shape}.")
        if not np.all(np.isfinite(w)) or not np.allclose(w, w.T, rtol=1e-10, atol=1e-12):
            raise EstimationError("The weighting matrix must be finite and symmetric.")
        if np.linalg.eigvalsh(w).min() <= 0:
            raise EstimationError("The weighting matrix must be positive definite.")
        object.__setattr__(self, "w", w)

    def matrix(self, omega, n_sims):
        if self.w.shape[0] != omega.shape[0]:
            raise EstimationError(
                f"The weighting matrix is {self.w.shape[0]} x {self.w.shape[0]} but there are "
                f"{omega.shape[0]} statistics."
            )
        return self.w


_BY_NAME = {"identity": Identity, "diagonal": Diagonal, "optimal": Optimal}


def get_weighting(spec) -> Weighting:
    """A :class:`Weighting` from a name (``identity``, ``diagonal``, ``optimal``, ``iterated``),
    a matrix, or a :class:`Weighting` instance."""
    if isinstance(spec, Weighting):
        return spec
    if isinstance(spec, str):
        if spec == "iterated":
            return Optimal(iterations=20)
        if spec in _BY_NAME:
            return _BY_NAME[spec]()
        raise EstimationError(
            f"Unknown weighting {spec!r}; choose identity, diagonal, optimal, iterated, or pass a "
            "matrix."
        )
    if isinstance(spec, np.ndarray) or isinstance(spec, (list, tuple)):
        return User(np.asarray(spec, dtype=float))
    raise EstimationError(f"Cannot use {spec!r} as a weighting.")


def regularized_inverse(cov: np.ndarray, max_condition: float = MAX_CONDITION) -> np.ndarray:
    """Inverse of a covariance matrix, shrunk toward its diagonal when ill-conditioned.

    The matrix is inverted through its correlation matrix ``R``. When ``cond(R)`` exceeds
    ``max_condition``, ``R`` is replaced by ``(1 - lam) R + lam I`` with the smallest ``lam`` that
    brings the condition number down to ``max_condition``, and an :class:`IllConditionedWarning`
    reports ``lam`` and both condition numbers.
    """
    cov = np.asarray(cov, dtype=float)
    sd = np.sqrt(np.diag(cov))
    if np.any(~np.isfinite(sd)) or np.any(sd <= 0):
        raise EstimationError("A statistic has zero or non-finite simulated variance; it cannot be weighted.")
    corr = cov / np.outer(sd, sd)
    eig = np.linalg.eigvalsh(corr)
    lo, hi = max(eig[0], 0.0), eig[-1]
    cond = hi / lo if lo > 0 else np.inf
    if cond > max_condition:
        # (1 - lam) eig + lam has condition max_condition at this lam.
        lam = (hi - max_condition * lo) / (hi - max_condition * lo + max_condition - 1.0)
        lam = float(min(max(lam, 0.0), 1.0))
        corr = (1.0 - lam) * corr + lam * np.eye(corr.shape[0])
        new = np.linalg.eigvalsh(corr)
        warn(
            f"The simulated covariance of the statistics is ill-conditioned (condition number "
            f"{cond:.3g} of the correlation matrix); shrunk toward the diagonal by {lam:.3g} "
            f"(new condition number {new[-1] / new[0]:.3g}). Consider removing redundant "
            "statistics.",
            IllConditionedWarning,
        )
    inv_corr = np.linalg.inv(corr)
    inv = inv_corr / np.outer(sd, sd)
    return 0.5 * (inv + inv.T)
