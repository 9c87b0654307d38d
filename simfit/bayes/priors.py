"""Prior distributions of the population parameters.

A prior is declared per parameter, in code or in a scenario's ``[prior]`` table, as a table naming
a family and its parameters, or as any frozen ``scipy.stats`` distribution:

==============  ===========================  =================================================
family          parameters                   distribution
==============  ===========================  =================================================
``normal``      ``mean``, ``sd``             normal
``lognormal``   ``log_mean``, ``log_sd``     ``exp(N(log_mean, log_sd^2))``
``uniform``     ``low``, ``high``            uniform on ``[low, high]``
``halfnormal``  ``scale``                    ``|N(0, scale^2)|``
``halfcauchy``  ``scale``                    ``|Cauchy(0, scale)|``
``beta``        ``a``, ``b`` [``low``,       beta on ``[low, high]`` (``[0, 1]`` by default)
                ``high``]
==============  ===========================  =================================================

:class:`Priors` joins them into the prior of the whole parameter vector and checks that each
prior lives inside its parameter's bounds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats as sps

from simfit.errors import ModelError, ScenarioError
from simfit.params import ParamSet

__all__ = ["PRIOR_FAMILIES", "make_prior", "describe_prior", "Priors"]

PRIOR_FAMILIES = {
    "normal": (("mean", "sd"), (), lambda a: sps.norm(a["mean"], a["sd"])),
    "lognormal": (("log_mean", "log_sd"), (), lambda a: sps.lognorm(a["log_sd"], scale=np.exp(a["log_mean"]))),
    "uniform": (("low", "high"), (), lambda a: sps.uniform(a["low"], a["high"] - a["low"])),
    "halfnormal": (("scale",), (), lambda a: sps.halfnorm(scale=a["scale"])),
    "halfcauchy": (("scale",), (), lambda a: sps.halfcauchy(scale=a["scale"])),
    "beta": (
        ("a", "b"),
        (("low", 0.0), ("high", 1.0)),
        lambda a: sps.beta(a["a"], a["b"], loc=a["low"], scale=a["high"] - a["low"]),
    ),
}


def make_prior(spec) -> sps.rv_continuous:
    """A frozen scipy distribution from a prior declaration.

    Parameters
    ----------
    spec : mapping or frozen scipy.stats distribution
        ``{"dist": "uniform", "low": 0, "high": 1}`` (families in the module docstring), or a
        frozen continuous ``scipy.stats`` distribution, returned as it is.

    Raises
    ------
    ScenarioError
        Unknown family, missing or unknown parameters, non-finite numbers, non-positive scales.
    """
    if hasattr(spec, "rvs") and hasattr(spec, "support") and hasattr(spec, "logpdf"):
        return spec
    if not isinstance(spec, Mapping) or "dist" not in spec:
        raise ScenarioError(
            f"A prior must be a table with a 'dist' key (e.g. {{dist = \"normal\", mean = 0, sd = 1}}) "
            f"or a frozen scipy.stats distribution, got {spec!r}."
        )
    family = spec["dist"]
    if not isinstance(family, str) or family not in PRIOR_FAMILIES:
        raise ScenarioError(f"Unknown prior family {family!r}; choose one of {', '.join(PRIOR_FAMILIES)}.")
    required, optional, build = PRIOR_FAMILIES[family]
    given = {k: v for k, v in spec.items() if k != "dist"}
    allowed = set(required) | {k for k, _ in optional}
    if not set(required) <= set(given) or not set(given) <= allowed:
        takes = ", ".join(required) + (f" (optionally {', '.join(k for k, _ in optional)})" if optional else "")
        raise ScenarioError(f"A {family} prior takes {takes}; got {', '.join(given) or 'nothing'}.")
    for k, v in given.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
            raise ScenarioError(f"Prior parameter {k} of a {family} prior must be a finite number, got {v!r}.")
    values = {k: float(d) for k, d in optional} | {k: float(v) for k, v in given.items()}
    with np.errstate(all="ignore"):
        dist = build(values)
        lo, hi = dist.support()
        ok = not (np.isnan(lo) or np.isnan(hi)) and lo < hi and not np.isnan(dist.median())
    if not ok or dist.pdf(dist.median()) <= 0:
        raise ScenarioError(f"Invalid {family} prior {given}: scales and shapes must be positive and low < high.")
    return dist


def describe_prior(spec) -> dict:
    """A JSON-ready description of a prior declaration (for manifests and results)."""
    if isinstance(spec, Mapping):
        return dict(spec)
    return {
        "dist": spec.dist.name,
        "args": [float(a) for a in spec.args],
        "kwds": {k: float(v) for k, v in spec.kwds.items()},
    }


class Priors:
    """The prior of the whole population-parameter vector: independent priors per parameter.

    Parameters
    ----------
    params : ParamSet
        The model's population parameters.
    spec : mapping
        ``{parameter name: declaration}`` for every parameter (see :func:`make_prior`).
    fixed : mapping of str to float, optional
        The model's parameters held at known values (:attr:`simfit.Model.fixed`): they take no
        prior.

    Raises
    ------
    ModelError
        A parameter without a prior, a prior for an unknown or a fixed parameter, or a prior whose
        support reaches outside its parameter's bounds.
    """

    def __init__(self, params: ParamSet, spec: Mapping, fixed: Mapping[str, float] | None = None) -> None:
        if isinstance(spec, Priors):
            spec = spec.spec
        if not isinstance(spec, Mapping):
            raise ModelError(f"priors must be a mapping {{parameter: prior}}, got {type(spec).__name__}.")
        names = params.names
        held = [n for n in spec if n in (fixed or {})]
        if held:
            raise ModelError(
                f"Prior(s) for {', '.join(held)}, held at {', '.join(f'{fixed[n]:g}' for n in held)} (fixed, not estimated); "
                "remove the prior(s), or estimate the parameter(s) instead of fixing them."
            )
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise ModelError(f"Prior(s) for unknown parameter(s) {', '.join(unknown)}; the model has {', '.join(names)}.")
        missing = [n for n in names if n not in spec]
        if missing:
            raise ModelError(
                f"No prior for parameter(s) {', '.join(missing)}; give every parameter a prior "
                "(in code or in the scenario's [prior] table)."
            )
        dists = []
        for name in names:
            try:
                dist = make_prior(spec[name])
            except ScenarioError as exc:
                raise ModelError(f"Prior of {name!r}: {exc}") from None
            lo, hi = (float(v) for v in dist.support())
            plo, phi = params[name].bounds
            if lo < plo or hi > phi:
                raise ModelError(
                    f"The prior of {name!r} has support [{lo:g}, {hi:g}], outside the parameter's "
                    f"bounds ({plo:g}, {phi:g}); choose a prior within the bounds (e.g. halfnormal, "
                    "lognormal or uniform for a positive parameter)."
                )
            dists.append(dist)
        self.params = params
        self.spec = {n: spec[n] for n in names}
        self.dists = tuple(dists)

    @property
    def names(self) -> tuple[str, ...]:
        return self.params.names

    def logpdf(self, psi: np.ndarray) -> np.ndarray:
        """Log prior density at natural-scale parameters.

        Parameters
        ----------
        psi : ndarray, shape (n_params,) or (n, n_params)

        Returns
        -------
        float or ndarray, shape (n,)
            ``-inf`` outside the support.
        """
        psi = np.asarray(psi, dtype=float)
        rows = np.atleast_2d(psi)
        out = np.zeros(rows.shape[0])
        with np.errstate(all="ignore"):
            for j, dist in enumerate(self.dists):
                out += dist.logpdf(rows[:, j])
        out[np.isnan(out)] = -np.inf
        return out if psi.ndim == 2 else float(out[0])

    def logpdf_free(self, u: np.ndarray) -> np.ndarray:
        """Log prior density of the unconstrained parameters ``u`` (n, n_params), shape (n,):
        the natural-scale density times the Jacobian ``|d psi / d u|`` of the transforms."""
        u = np.atleast_2d(np.asarray(u, dtype=float))
        lp = self.logpdf(self.params.to_natural(u))
        with np.errstate(divide="ignore"):
            jac = np.log(np.abs(self.params.jacobian_diag(u))).sum(axis=1)
        out = lp + jac
        out[~np.isfinite(lp)] = -np.inf
        return out

    def rvs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws, shape (n, n_params), kept strictly inside the bounds."""
        draws = np.column_stack([dist.rvs(size=n, random_state=rng) for dist in self.dists])
        for j, p in enumerate(self.params):
            lo, hi = p.bounds
            # A draw exactly on a bound (e.g. 0 from a half-normal's atom at float precision) is
            # not a valid parameter value for the transforms.
            draws[:, j] = np.clip(draws[:, j], np.nextafter(lo, np.inf), np.nextafter(hi, -np.inf))
        return draws

    def describe(self) -> dict:
        """``{parameter: description}``, JSON-ready."""
        return {n: describe_prior(s) for n, s in self.spec.items()}

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}: {d.dist.name}{tuple(round(float(a), 6) for a in d.args)}" for n, d in zip(self.names, self.dists))
        return f"<Priors {inner}>"
