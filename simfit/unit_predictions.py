"""Unit-level predictions: each unit's own parameters given its data and the fitted population.

The simulation analogue of the random-effect predictions of lme4 (``ranef``) and nlme (BLUPs and
their nonlinear counterparts), for models without a tractable likelihood. For every unit ``i`` the
conditional distribution of its first-level parameters ``theta_i`` given its observations and
the population is approximated by simulation:

1. ``K`` whole panels are simulated on the observed design in one engine launch. Simulated unit
   ``i`` of panel ``k`` has exactly the observed unit's design (number of observations, groups,
   covariates), so the ``K`` simulated units ``i`` are candidates ``(theta_ik, s_ik)`` from the
   joint distribution of that unit's parameters and unit statistics.
2. Candidates are weighted by the distance of their unit statistics ``s_ik`` to the observed
   ``s_i``, and their parameters are corrected by local-linear regression on the statistics
   (Beaumont, Zhang & Balding 2002). The weighted adjusted sample approximates
   ``theta_i | s_i``; its mean is the prediction and its weighted quantiles the interval.

The prediction is as informative as the unit statistics are about a unit's parameters: the
statistics that identify the population need not be the best ones for a single unit, so
:func:`predict_units` accepts other ``statistics`` than those of the fit.

References
----------
Beaumont, M. A., Zhang, W. and Balding, D. J. (2002). Approximate Bayesian computation in
population genetics. *Genetics* 162, 2025-2035.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

import numpy as np
import pandas as pd
from numba import njit

from simfit.data import Panel
from simfit.engine import Simulator, _check_seed
from simfit.errors import ArgumentError, DataError, ModelError, StatisticsError
from simfit.model import Level, Model
from simfit.results import FitResult
from simfit.statistics import Statistics

__all__ = ["predict_units"]

LINKS = {"identity": 0, "log": 1, "logit": 2}
_MIN_CANDIDATES = 100
# Scale of a normal sample from its median absolute deviation.
_MAD_TO_SD = 1.482602218505602
# The regression adjustment needs this many effective candidates per regression coefficient;
# below that the local fit would chase noise, and the kernel-weighted sample is used as is.
_MIN_ESS_PER_COEFFICIENT = 5.0
# Keep transformed parameters finite where a log or logit link meets its bound numerically.
_TINY = 1e-300
_LOGIT_EPS = 1e-15


def predict_units(
    result,
    data: Panel,
    n_candidates: int = 4000,
    seed: int = 0,
    alpha: float = 0.1,
    *,
    accept: float = 0.1,
    adjust: bool = True,
    statistics: Statistics | None = None,
    transforms: Mapping[str, str | tuple] | None = None,
) -> pd.DataFrame:
    """Predict each unit's own parameters: conditional mean and central interval given its data.

    Parameters
    ----------
    result : FitResult or posterior
        The fitted population. A :class:`~simfit.results.FitResult` gives *empirical Bayes*
        predictions: the population is fixed at the point estimate, so the intervals ignore the
        uncertainty of the estimate (like lme4's conditional variances). A posterior is any
        object with ``draws`` (n_chains, n_draws, n_params) on the natural scale, ``weights``
        (None or (n_chains, n_draws), non-negative, normalised here), ``model`` and
        ``statistics``; each candidate panel is simulated at a draw resampled by weight, so
        predictions and intervals integrate over the population's posterior uncertainty.
    data : Panel
        Observed panel with values. It fixes the design of the candidate panels and may differ
        from the fitted panel (e.g. new units).
    n_candidates : int, default 4000
        Simulated panels ``K`` (at least 100); every unit gets ``K`` candidates.
    seed : int, default 0
        Seed of the simulation keys and of the posterior resampling.
    alpha : float, default 0.1
        The intervals are central ``1 - alpha`` intervals.
    accept : float, default 0.1
        Fraction of candidates within the kernel bandwidth: the bandwidth of each unit is the
        ``accept`` quantile of its candidates' distances.
    adjust : bool, default True
        Correct the accepted candidates' parameters by local-linear regression on their unit
        statistics. Without it the predictions are plain kernel-weighted averages.
    statistics : Statistics, optional
        Unit statistics to compare candidates with the observed units; ``result.statistics`` by
        default. Only the unit statistics are used (aggregates are irrelevant here).
    transforms : mapping of str to str or tuple, optional
        Scale of the regression adjustment per unit parameter: ``"identity"``, ``"log"`` or
        ``"logit"`` / ``("logit", lo, hi)``. By default the link of the parameter's built-in
        population distribution (:mod:`simfit.population`), and identity for parameters drawn
        by user kernels.

    Returns
    -------
    DataFrame, shape (n_units, 3 * n_unit_params + 1)
        Indexed by unit label (``data.unit_ids``, else ``0 .. n_units - 1``), with columns
        ``p``, ``p_lower``, ``p_upper`` for each unit parameter ``p`` of the model's first level
        (natural scale) and ``ess``, the effective sample size ``(sum w)^2 / sum w^2`` of the
        unit's kernel weights. ``attrs`` records the settings.

    Raises
    ------
    ArgumentError
        A bad count, probability, seed, transform, or an unsupported ``result``.
    DataError
        ``data`` without values, or with other value columns or nesting than the model's.
    StatisticsError
        No statistics to compare units with, or statistics without unit statistics.

    Notes
    -----
    Weights. Each unit-statistic column is standardised, per unit, by the median absolute
    deviation of that unit's candidates (the standard deviation if the MAD is zero); the distance
    is Euclidean and the weights Epanechnikov, ``w = 1 - (d / h)^2`` for ``d < h``. A column that
    is NaN for the observed unit (e.g. the variance of a single observation) or constant across
    its candidates is left out for that unit; candidates with NaN in a used column get no weight.
    A unit with no usable column gets the population distribution itself (all candidates
    weighted equally).

    Adjustment. On the accepted candidates, the transformed parameters ``phi = g(theta)`` are
    regressed by weighted least squares on the standardised differences ``x = (s - s_obs) / scale``
    and replaced by ``phi - x' beta`` (Beaumont, Zhang & Balding 2002). Working on the link scale
    keeps adjusted values inside the parameter's support and makes the linear model closer to
    true. The prediction is the weighted mean of ``g^-1(phi - x' beta)`` (the conditional mean on
    the natural scale), the interval the weighted ``alpha/2`` and ``1 - alpha/2`` quantiles. The
    adjustment is skipped for a unit whose effective sample size is below five per regression
    coefficient; such units still get the weighted answer, and a small ``ess`` flags them.
    The intervals are as good as the local linear model: where the parameters depend on the
    statistics far from linearly within the bandwidth, or with a spread that changes across it,
    a smaller ``accept`` with more candidates tightens the approximation.

    Cost. The candidates take ``8 * K * n_units * (n_unit_columns + n_unit_params)`` bytes
    (4000 candidates of 10,000 units with 2 unit statistics and 1 parameter: 0.96 GB).

    Examples
    --------
    >>> import simfit
    >>> from simfit.models import random_intercept
    >>> from simfit.unit_predictions import predict_units
    >>> model = random_intercept.model()
    >>> truth = {"mu": 1.0, "tau": 0.5, "sigma": 1.0}
    >>> panel = simfit.simulate(model, simfit.Panel.balanced(100, 5), truth, seed=1).panel(0)
    >>> fitted = simfit.fit(model, panel, random_intercept.statistics(), n_sims=10)
    >>> pred = predict_units(fitted, panel)
    >>> list(pred.columns)
    ['a', 'a_lower', 'a_upper', 'ess']
    """
    n_candidates = _check_count(n_candidates)
    seed = _check_seed(seed)
    alpha = _check_probability(alpha, "alpha", "0.1 for 90% intervals")
    accept = _check_accept(accept)
    if not isinstance(adjust, (bool, np.bool_)):
        raise ArgumentError(f"adjust must be True or False, got {adjust!r}.")

    model, fit_statistics, params, method = _population(result, n_candidates, seed)
    statistics = fit_statistics if statistics is None else statistics
    if statistics is None:
        raise StatisticsError(
            "No statistics to compare the units with: the result does not carry the statistics it "
            "was fitted with; pass statistics=Statistics(unit=[...], ...)."
        )
    if not isinstance(statistics, Statistics):
        raise StatisticsError(f"statistics must be a Statistics object, got {type(statistics).__name__}.")
    _check_data(data, model)
    level = model.levels[0]
    links, lo, hi = _links(level, transforms)

    sim = Simulator(model, data.design(), statistics)
    # The unit statistics the user declared; pooled statistics add internal per-unit parts
    # (counts, raw moment sums) that would duplicate or mis-scale them.
    names = [n for u in statistics.unit for n in u.names(sim.layout)]
    if not names:
        raise StatisticsError(
            "The statistics have no unit statistics (only pooled ones), so units cannot be compared "
            "with their candidates; pass statistics=Statistics(unit=[mean(), var()], ...) or similar."
        )
    columns = [sim.unit_names.index(n) for n in names]
    observed = sim.observed_unit_statistics(data)[:, columns]
    table, theta = sim.unit_statistics(params, n_sims=n_candidates, seed=seed, return_params=True)
    if len(columns) < table.shape[2]:
        table = table[:, :, columns]
    _check_support(theta, level, links, lo, hi)

    probs = np.array([alpha / 2.0, 1.0 - alpha / 2.0])
    n_units, n_params = data.n_units, level.n_params
    mean = np.empty((n_units, n_params))
    quantiles = np.empty((n_units, n_params, probs.size))
    ess = np.empty(n_units)
    n_accept = max(1, math.ceil(accept * n_candidates))
    weigh_and_adjust(
        np.ascontiguousarray(table), np.ascontiguousarray(theta), np.ascontiguousarray(observed),
        n_accept, bool(adjust), links, lo, hi, probs, mean, quantiles, ess,
    )

    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(level.params):
        out[name] = mean[:, j]
        out[f"{name}_lower"] = quantiles[:, j, 0]
        out[f"{name}_upper"] = quantiles[:, j, 1]
    out["ess"] = ess
    labels = data.unit_ids if data.unit_ids is not None else np.arange(n_units)
    frame = pd.DataFrame(out, index=pd.Index(labels, name="unit"))
    frame.attrs.update(
        method=method,
        alpha=alpha,
        n_candidates=n_candidates,
        accept=accept,
        adjust=bool(adjust),
        seed=seed,
        transforms={name: _link_name(links[j], lo[j], hi[j]) for j, name in enumerate(level.params)},
        unit_statistics=names,
    )
    return frame


# ---------------------------------------------------------------------- validation and set-up


def _check_count(n) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < _MIN_CANDIDATES:
        raise ArgumentError(
            f"n_candidates must be an integer of at least {_MIN_CANDIDATES}, got {n!r}; the kernel "
            "weights need many candidates per unit (a few thousand is typical)."
        )
    return int(n)


def _is_real(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def _check_probability(value, what: str, hint: str) -> float:
    if not _is_real(value) or not 0.0 < float(value) < 1.0:
        raise ArgumentError(f"{what} must be a number strictly between 0 and 1, got {value!r}; e.g. {hint}.")
    return float(value)


def _check_accept(value) -> float:
    if not _is_real(value) or not 0.0 < float(value) <= 1.0:
        raise ArgumentError(
            f"accept must be a fraction in (0, 1], got {value!r}; it is the share of candidates "
            "inside the kernel bandwidth (0.1 is typical)."
        )
    return float(value)


def _check_data(data, model: Model) -> None:
    if not isinstance(data, Panel):
        raise DataError(f"data must be a Panel with the observed values, got {type(data).__name__}.")
    if not data.has_values:
        raise DataError(
            "data has no values: unit predictions condition on each unit's observations; pass the "
            "observed panel, not its design."
        )
    if data.n_levels != model.n_levels:
        raise DataError(
            f"data has {data.n_levels} level(s) above the observations but model {model.name!r} has "
            f"{model.n_levels} ({', '.join(lv.name for lv in model.levels)}); build the panel with "
            "matching nesting."
        )
    if tuple(data.value_names) != tuple(model.value_names):
        raise DataError(
            f"data has value columns {list(data.value_names)} but the model simulates "
            f"{list(model.value_names)}; name the data columns like the model's values."
        )


def _population(result, n_candidates: int, seed: int) -> tuple[Model, Statistics | None, np.ndarray, str]:
    """Model, statistics and the population parameters of the candidate panels: one vector
    (n_params,) for a point estimate, or one row per panel (n_candidates, n_params)."""
    if isinstance(result, FitResult):
        # A fresh writable copy: the engine's compiled drivers take writable arrays only.
        params = np.array(result.params.to_numpy(dtype=float), dtype=np.float64)
        return result.model, result.statistics, params, "empirical Bayes"
    needed = ("draws", "weights", "model", "statistics")
    if not all(hasattr(result, a) for a in needed):
        raise ArgumentError(
            f"result must be a FitResult or a posterior with attributes {', '.join(needed)}; got "
            f"{type(result).__name__}."
        )
    model = result.model
    if not isinstance(model, Model):
        raise ModelError(f"The posterior's model must be a Model, got {type(model).__name__}.")
    n_params = len(model.params)
    draws = np.asarray(result.draws, dtype=np.float64)
    if draws.ndim != 3 or draws.shape[2] != n_params or draws.shape[0] * draws.shape[1] == 0:
        raise ArgumentError(
            f"The posterior's draws must have shape (n_chains, n_draws, {n_params}) for parameters "
            f"({', '.join(model.param_names)}), got {draws.shape}."
        )
    flat = draws.reshape(-1, n_params)
    if result.weights is None:
        probs = np.full(flat.shape[0], 1.0 / flat.shape[0])
    else:
        weights = np.asarray(result.weights, dtype=np.float64)
        if weights.shape != draws.shape[:2]:
            raise ArgumentError(
                f"The posterior's weights must have shape {draws.shape[:2]} (one per draw), got {weights.shape}."
            )
        total = weights.sum()
        if not np.all(np.isfinite(weights)) or (weights < 0).any() or not total > 0:
            raise ArgumentError("The posterior's weights must be finite, non-negative and not all zero.")
        probs = weights.reshape(-1) / total
    rng = np.random.default_rng(seed)
    rows = flat[rng.choice(flat.shape[0], size=n_candidates, replace=True, p=probs)]
    return model, result.statistics, rows, "posterior"


def _links(level: Level, transforms: Mapping[str, str | tuple] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Link code and bounds of each unit parameter, shape (n_unit_params,) each."""
    n = level.n_params
    links = np.zeros(n, dtype=np.int64)
    lo = np.zeros(n)
    hi = np.ones(n)
    for dist in level.distributions:
        for name, link, bounds in zip(dist.names, dist.links, dist.bounds):
            j = level.params.index(name)
            links[j] = LINKS[link]
            lo[j], hi[j] = bounds
    if transforms is None:
        return links, lo, hi
    if not isinstance(transforms, Mapping):
        raise ArgumentError(f"transforms must map unit parameter names to links, got {transforms!r}.")
    for name, spec in transforms.items():
        if name not in level.params:
            raise ArgumentError(
                f"transforms names {name!r}, which is not a parameter of level {level.name!r} "
                f"({', '.join(level.params)})."
            )
        j = level.params.index(name)
        parsed = _parse_transform(spec)
        if parsed is None:
            raise ArgumentError(
                f"transforms[{name!r}] = {spec!r} is not a link; use 'identity', 'log', 'logit' or "
                "('logit', lo, hi) with finite lo < hi."
            )
        links[j], lo[j], hi[j] = parsed
    return links, lo, hi


def _parse_transform(spec) -> tuple[int, float, float] | None:
    """``(link code, lo, hi)`` of a transform specification, or None if it is not one."""
    if isinstance(spec, str):
        return (LINKS[spec], 0.0, 1.0) if spec in LINKS else None
    if not isinstance(spec, tuple) or len(spec) != 3 or spec[0] != "logit":
        return None
    try:
        lo, hi = float(spec[1]), float(spec[2])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        return None
    return LINKS["logit"], lo, hi


def _check_support(theta: np.ndarray, level: Level, links: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Raise if simulated unit parameters (K, n_units, n_params) leave the support of their link."""
    for j, name in enumerate(level.params):
        values = theta[:, :, j]
        if links[j] == LINKS["log"]:
            outside, support = bool((values < 0.0).any()), "non-negative"
        elif links[j] == LINKS["logit"]:
            outside, support = bool(((values < lo[j]) | (values > hi[j])).any()), f"within [{lo[j]:g}, {hi[j]:g}]"
        else:
            continue
        if outside:
            raise ArgumentError(
                f"Unit parameter {name!r} is not always {support} in the simulations, so its "
                f"{_link_name(links[j], lo[j], hi[j])} transform does not apply; pass "
                f"transforms={{{name!r}: 'identity'}} or a link that fits its range."
            )


def _link_name(code: int, lo: float, hi: float) -> str:
    if code == LINKS["log"]:
        return "log"
    if code == LINKS["logit"]:
        return f"logit({lo:g}, {hi:g})"
    return "identity"


# ---------------------------------------------------------------------- compiled kernels


@njit(cache=True)
def to_link_scale(theta, link, lo, hi):
    """``g(theta)`` for link code 0 (identity), 1 (log) or 2 (logit on ``(lo, hi)``), kept finite."""
    if link == 1:
        return math.log(max(theta, _TINY))
    if link == 2:
        u = min(max((theta - lo) / (hi - lo), _LOGIT_EPS), 1.0 - _LOGIT_EPS)
        return math.log(u / (1.0 - u))
    return theta


@njit(cache=True)
def from_link_scale(phi, link, lo, hi):
    """Inverse of :func:`to_link_scale`."""
    if link == 1:
        return math.exp(phi)
    if link == 2:
        return lo + (hi - lo) / (1.0 + math.exp(-phi))
    return phi


@njit(cache=True)
def robust_scale(x, work):
    """Normal-consistent MAD of ``x`` (n,), or its standard deviation when the MAD is zero
    (statistics with many ties); 0 for a constant ``x``. ``work`` (n,) is scratch."""
    centre = np.median(x)
    for k in range(x.size):
        work[k] = abs(x[k] - centre)
    mad = _MAD_TO_SD * np.median(work)
    if mad > 0.0:
        return mad
    return np.std(x)


@njit(cache=True)
def epanechnikov_weights(dist, n_accept, w):
    """Epanechnikov weights ``w`` (K,) for distances ``dist`` (K,) with the bandwidth at the
    ``n_accept``-th smallest distance; NaN distances get weight 0.

    When the bandwidth leaves no candidate strictly inside it (ties, exact matches), the
    candidates at or within the bandwidth share equal weights.
    """
    n = dist.size
    finite = np.empty(n)
    nf = 0
    for k in range(n):
        if not math.isnan(dist[k]):
            finite[nf] = dist[k]
            nf += 1
    if nf == 0:
        w[:] = 1.0
        return
    m = min(n_accept, nf)
    h = np.partition(finite[:nf], m - 1)[m - 1]
    total = 0.0
    if h > 0.0:
        for k in range(n):
            d = dist[k]
            w[k] = 1.0 - (d / h) ** 2 if d < h else 0.0
            total += w[k]
    if total > 0.0:
        return
    for k in range(n):
        w[k] = 1.0 if dist[k] <= h else 0.0


@njit(cache=True)
def weighted_quantile(values, weights, order, total, p):
    """Quantile ``p`` of ``values`` (m,) with ``weights`` (m,) summing to ``total``;
    ``order`` sorts ``values``. Interpolates between the centres of the weight masses."""
    prev_c = 0.0
    prev_v = values[order[0]]
    acc = 0.0
    for r in range(order.size):
        j = order[r]
        c = (acc + 0.5 * weights[j]) / total
        acc += weights[j]
        if c >= p:
            if r == 0 or c == prev_c:
                return values[j]
            return prev_v + (p - prev_c) / (c - prev_c) * (values[j] - prev_v)
        prev_c = c
        prev_v = values[j]
    return prev_v


@njit(cache=True)
def weigh_and_adjust(cand_stats, cand_theta, obs_stats, n_accept, adjust, links, lo, hi, probs, mean, quantiles, ess):
    """Kernel weights, regression adjustment and summaries of every unit's candidates.

    Parameters
    ----------
    cand_stats : ndarray, shape (K, n_units, n_columns)
        Unit statistics of the candidates (candidate ``k`` of unit ``i`` is ``[k, i]``).
    cand_theta : ndarray, shape (K, n_units, n_params)
        Their unit parameters (natural scale).
    obs_stats : ndarray, shape (n_units, n_columns)
        Observed unit statistics.
    n_accept : int
        The bandwidth is the ``n_accept``-th smallest distance.
    adjust : bool
        Apply the local-linear regression adjustment.
    links : ndarray of int64, shape (n_params,)
    lo, hi : ndarray, shape (n_params,)
        Link of each parameter and logit bounds (see :func:`to_link_scale`).
    probs : ndarray, shape (n_probs,)
        Quantile levels.
    mean : ndarray, shape (n_units, n_params)
    quantiles : ndarray, shape (n_units, n_params, n_probs)
    ess : ndarray, shape (n_units,)
        Outputs.
    """
    n_cand, n_units, n_cols = cand_stats.shape
    n_params = cand_theta.shape[2]
    column = np.empty(n_cand)
    work = np.empty(n_cand)
    z = np.empty((n_cand, n_cols))
    dist = np.empty(n_cand)
    w = np.empty(n_cand)
    used = np.empty(n_cols, dtype=np.int64)
    scale = np.empty(n_cols)
    kept = np.empty(n_cand, dtype=np.int64)
    phi = np.empty((n_cand, n_params))
    wk = np.empty(n_cand)
    values = np.empty(n_cand)
    for i in range(n_units):
        n_used = 0
        for c in range(n_cols):
            if not np.isfinite(obs_stats[i, c]):
                continue
            nf = 0
            for k in range(n_cand):
                v = cand_stats[k, i, c]
                if np.isfinite(v):
                    column[nf] = v
                    nf += 1
            if nf < 2:
                continue
            s = robust_scale(column[:nf], work[:nf])
            if s > 0.0:
                used[n_used] = c
                scale[n_used] = s
                n_used += 1

        for k in range(n_cand):
            acc = 0.0
            for u in range(n_used):
                x = (cand_stats[k, i, used[u]] - obs_stats[i, used[u]]) / scale[u]
                z[k, u] = x
                acc += x * x
            dist[k] = math.sqrt(acc) if np.isfinite(acc) else np.nan
        epanechnikov_weights(dist, n_accept, w)

        m = 0
        total = 0.0
        total_sq = 0.0
        regress = adjust and n_used > 0
        for k in range(n_cand):
            if w[k] > 0.0:
                # Only when every candidate's distance is undefined do NaN statistics get weight.
                regress = regress and not math.isnan(dist[k])
                kept[m] = k
                wk[m] = w[k]
                total += w[k]
                total_sq += w[k] * w[k]
                for p in range(n_params):
                    phi[m, p] = to_link_scale(cand_theta[k, i, p], links[p], lo[p], hi[p])
                m += 1
        ess[i] = total * total / total_sq

        if regress and ess[i] >= _MIN_ESS_PER_COEFFICIENT * (n_used + 1):
            design = np.empty((m, n_used + 1))
            response = np.empty((m, n_params))
            for r in range(m):
                sw = math.sqrt(wk[r])
                design[r, 0] = sw
                for u in range(n_used):
                    design[r, u + 1] = sw * z[kept[r], u]
                for p in range(n_params):
                    response[r, p] = sw * phi[r, p]
            beta = np.linalg.lstsq(design, response)[0]
            for r in range(m):
                for p in range(n_params):
                    shift = 0.0
                    for u in range(n_used):
                        shift += beta[u + 1, p] * z[kept[r], u]
                    phi[r, p] -= shift

        for p in range(n_params):
            acc = 0.0
            for r in range(m):
                values[r] = phi[r, p]
                acc += wk[r] * from_link_scale(phi[r, p], links[p], lo[p], hi[p])
            mean[i, p] = acc / total
            order = np.argsort(values[:m])
            for q in range(probs.size):
                quantiles[i, p, q] = from_link_scale(
                    weighted_quantile(values[:m], wk[:m], order, total, probs[q]), links[p], lo[p], hi[p]
                )
