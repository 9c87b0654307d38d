"""Normal-normal hierarchical model with known standard errors (a random-effects meta-analysis).

Each unit (a study, a school) reports one estimate ``y_j`` with a known standard error ``se_j``
(observation covariate ``se``); the true effects are ``theta_j ~ N(mu, tau^2)`` and ``y_j ~
N(theta_j, se_j^2)``. With a handful of units and one observation each, the observations
themselves are the statistics (:func:`simfit.statistics.values`), and the exact posterior of
``(mu, tau)`` is a two-dimensional integral (:func:`exact_posterior`), so samplers can be checked
against it.

:func:`eight_schools` is the classic example (Rubin 1981): coaching effects in eight schools.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simfit import statistics as st
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import Normal, population_level
from simfit.random import normal

PARAMS = (
    Param("mu", start=0.0),
    Param("tau", bounds=(0.0, math.inf), start=1.0),
)

#: Rubin's (1981) eight schools: estimated coaching effects and their standard errors.
EIGHT_SCHOOLS_Y = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
EIGHT_SCHOOLS_SE = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)


@njit(cache=True, error_model="numpy")
def known_noise(psi, theta, x, args, rng, y):
    """``y[k] = theta[0] + se_k z_k`` with ``se_k = x[k, 0]``, the known standard error."""
    for k in range(y.shape[0]):
        y[k, 0] = theta[0] + x[k, 0] * normal(rng)


def model() -> Model:
    """The model with parameters ``mu`` (mean effect) and ``tau`` (between-unit sd)."""
    unit = population_level("unit", [Normal("theta", mean="mu", sd="tau")], PARAMS)
    return Model(
        params=PARAMS,
        levels=(unit,),
        observations=Observations(known_noise, values=("y",), covariates=("se",)),
        name="meta_analysis",
        description=__doc__.splitlines()[0],
    )


def statistics() -> st.Statistics:
    """Every unit's estimate (sufficient with the known standard errors)."""
    return st.Statistics(unit=[st.values("y")], across=[])


def panel(y, se):
    """A panel of one estimate per unit with its standard error."""
    from simfit.data import Panel

    y = np.asarray(y, dtype=float)
    se = np.asarray(se, dtype=float)
    if y.shape != se.shape or y.ndim != 1:
        raise ValueError(f"y and se must be 1-D of the same length, got shapes {y.shape} and {se.shape}.")
    if not np.all(se > 0):
        raise ValueError("standard errors must be positive.")
    return Panel.from_units([[v] for v in y], covariates=[[s] for s in se], value_names=("y",), covariate_names=("se",))


def eight_schools():
    """The eight-schools data as a panel."""
    return panel(EIGHT_SCHOOLS_Y, EIGHT_SCHOOLS_SE)


def exact_posterior(y, se, log_prior, mu_grid, tau_grid):
    """Posterior of ``(mu, tau)`` on a grid, from the marginal likelihood ``y_j ~ N(mu, tau^2 +
    se_j^2)``.

    Parameters
    ----------
    y, se : ndarray, shape (n_units,)
    log_prior : callable
        ``log_prior(mu, tau)`` on broadcast arrays (natural scale).
    mu_grid, tau_grid : ndarray
        Evenly spaced grids; the posterior mass outside them is ignored.

    Returns
    -------
    ndarray, shape (len(mu_grid), len(tau_grid))
        Posterior probabilities of the grid cells (summing to one).
    """
    y = np.asarray(y, dtype=float)[None, None, :]
    se = np.asarray(se, dtype=float)[None, None, :]
    mu, tau = np.meshgrid(mu_grid, tau_grid, indexing="ij")
    var = tau[..., None] ** 2 + se**2
    loglik = -0.5 * np.sum(np.log(2 * np.pi * var) + (y - mu[..., None]) ** 2 / var, axis=-1)
    logp = loglik + log_prior(mu, tau)
    p = np.exp(logp - np.max(logp))
    return p / p.sum()
