"""Population pharmacokinetics: one compartment, first-order oral absorption.

Subject ``i`` receives dose ``D`` at time 0; its concentration at time ``t`` is
``C(t) = D ka / (V (ka - ke)) (exp(-ke t) - exp(-ka t))`` with ``ke = CL / V``. Units are the
data's own: the defaults (starts, ``SIGMA_ADD``, ``NLS_START``) are in mg, L and h; doses per kg
give CL and V per kg. Sampling times and doses are observation covariates (columns ``time`` and
``dose``) and may differ between subjects.

``model()`` is the default model: per-subject absorption rate ``ka`` log-normal, clearance ``CL``
and volume ``V`` jointly log-normal with latent correlation ``rho``, proportional residual error
plus a small fixed additive one, ``y = C (1 + sigma_prop e1) + sigma_add e2``. Its options give
the variants published models use (``model(random=("ka", "cl"), error="additive",
elimination="ke")`` is the classic model of oral theophylline data):

- ``random``: which of ka, CL and V vary between subjects; the others take one value for every
  subject and their ``*_sd`` parameters disappear (``rho`` exists only when both CL and V vary).
- ``error``: ``"proportional"`` (``sigma_prop`` estimated, additive sd ``sigma_add`` fixed),
  ``"additive"`` (``y = C + sigma_add e2``, ``sigma_add`` estimated) or ``"combined"`` (both
  estimated).
- ``elimination``: ``"volume"`` (population parameters ``log_cl`` and ``log_v``) or ``"ke"``
  (``log_cl`` and ``log_ke``: each subject's ``V = CL / ke``, so V varies with CL; ``random``
  then picks among ka, CL and ke).

A parameter known from elsewhere is held at its value with ``model.fix({"sigma_add": 0.5})``
(``simfit.fit(..., fixed=...)``, a scenario's ``[fixed]`` table).

Statistics (:func:`statistics`): each subject's nonlinear least-squares fit of the model's own
curve (log ka - ke, log CL, log V and the log residual sd), their means and spreads across
subjects and the correlations of the three estimates. They describe the data, not the variant,
so every variant uses them. ``statistics("hand")`` is an earlier hand-written set: per subject,
the least-squares fit of ``log(y / dose)`` on ``(1, t, log t)`` and the log of the
dose-normalised area under the observed curve, computed over the subject's rows in order (so a
subject's rows must be sorted by time; ``Panel.from_frame`` keeps the file's order).

Flip-flop: swapping ``ka`` and ``ke`` (with ``V`` scaled by ``ke / ka``) gives the same mean curve,
so the objective has a second optimum that only the random effects tell apart. Fits of oral
absorption data usually take ``ka > ke``; the scenario searches a box around the starts narrow
enough (``search_width = 1``) to stay on that side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numba import njit

from simfit import statistics as st
from simfit.data import Panel
from simfit.errors import DataError, ModelError, StatisticsError
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import LogNormal, MvNormal, population_level
from simfit.random import normal
from simfit.statistics._numeric import solve_normal_equations
from simfit.statistics.auxiliary import SANE_WIDTH

PARAMS = (
    Param("log_ka", start=0.0),
    Param("ka_sd", bounds=(0.0, math.inf), start=0.3),
    Param("log_cl", start=1.0),
    Param("cl_sd", bounds=(0.0, math.inf), start=0.3),
    Param("log_v", start=3.0),
    Param("v_sd", bounds=(0.0, math.inf), start=0.3),
    Param("rho", bounds=(-1.0, 1.0), start=0.0),
    Param("sigma_prop", bounds=(0.0, math.inf), start=0.2),
)
#: Parameters of the variants only (``model(elimination="ke")``, ``model(error="additive")``).
VARIANT_PARAMS = (
    Param("log_ke", start=-2.0),  # ke = CL / V at the default starts
    Param("ke_sd", bounds=(0.0, math.inf), start=0.3),
    Param("sigma_add", bounds=(0.0, math.inf), start=0.1),
)

#: Additive residual sd (mg/L) of ``error="proportional"``, fixed (set it through ``model(sigma_add=...)``).
SIGMA_ADD = 0.05

#: The choices of :func:`model`'s options.
ERRORS = ("proportional", "additive", "combined")
ELIMINATIONS = ("volume", "ke")


@njit(cache=True, error_model="numpy")
def concentrations(psi, theta, x, args, rng, y):
    """Observation kernel: ``theta = (ka, CL, V)``, or ``(ka, CL, ke)``, ``x[:, 0]`` times (h),
    ``x[:, 1]`` doses (mg); ``args = (index of sigma_prop in psi or -1 for none, fixed sigma_add[,
    index of sigma_add in psi or -1 for the fixed one[, 1 if theta[2] is ke]])`` (the default
    model passes the first two)."""
    sigma_prop = psi[int(args[0])] if args[0] >= 0.0 else 0.0
    sigma_add = psi[int(args[2])] if args.shape[0] > 2 and args[2] >= 0.0 else args[1]
    ka = theta[0]
    if args.shape[0] > 3 and args[3] == 1.0:
        ke = theta[2]
        v = theta[1] / ke
    else:
        ke = theta[1] / theta[2]
        v = theta[2]
    for j in range(y.shape[0]):
        t = x[j, 0]
        if abs(ka - ke) > 1e-9:
            c = x[j, 1] * ka / (v * (ka - ke)) * (math.exp(-ke * t) - math.exp(-ka * t))
        else:  # the limit ka -> ke
            c = x[j, 1] * ka / v * t * math.exp(-ke * t)
        y[j, 0] = c * (1.0 + sigma_prop * normal(rng)) + sigma_add * normal(rng)


def model(
    random: Sequence[str] | None = None,
    error: str = "proportional",
    elimination: str = "volume",
    sigma_add: float = SIGMA_ADD,
) -> Model:
    """The population PK model, or one of its variants (see the module docstring).

    Parameters
    ----------
    random : sequence of {"ka", "cl", "v"} (``"ke"`` for ``elimination="ke"``), optional
        The subject parameters that vary between subjects (log-normal, each with an ``*_sd``
        parameter); the others are one value for every subject. Default: all three. ``rho``, the
        latent correlation of the two elimination parameters (CL and V, or CL and ke), exists
        when both vary.
    error : {"proportional", "additive", "combined"}
        Residual error: ``C (1 + sigma_prop e1) + sigma_add e2`` with ``sigma_add`` fixed, ``C +
        sigma_add e2``, or the first with both estimated.
    elimination : {"volume", "ke"}
        The population parameters of elimination: ``log_cl`` and ``log_v``, or ``log_cl`` and
        ``log_ke`` (each subject's V is then CL / ke).
    sigma_add : float
        The fixed additive residual sd of ``error="proportional"``; the other error models
        estimate it (to hold it at a known value, ``model(...).fix({"sigma_add": value})``).

    Returns
    -------
    Model
        Parameters ``log_ka``, ``ka_sd``, ``log_cl``, ``cl_sd``, ``log_v`` (or ``log_ke``),
        ``v_sd`` (or ``ke_sd``), ``rho``, ``sigma_prop``, ``sigma_add``, in this order, less those
        the options leave out; its subject level draws ``(ka, cl, v)`` (or ``(ka, cl, ke)``).
        ``model()`` is the default model: log-normal ka, correlated log-normal CL and V,
        proportional error.
    """
    second = "ke" if elimination == "ke" else "v"
    if elimination not in ELIMINATIONS:
        raise ModelError(f"pk.model: elimination must be one of {', '.join(map(repr, ELIMINATIONS))}, got {elimination!r}.")
    if error not in ERRORS:
        raise ModelError(f"pk.model: error must be one of {', '.join(map(repr, ERRORS))}, got {error!r}.")
    varying = ("ka", "cl", second)
    if random is None:
        random = varying
    if isinstance(random, str) or not all(isinstance(r, str) for r in random):
        raise ModelError(f"pk.model: random must be a list of names among {', '.join(varying)}, got {random!r}.")
    unknown = [r for r in random if r not in varying]
    if unknown:
        why = " (with elimination='ke' each subject's V is CL / ke)" if elimination == "ke" and "v" in unknown else ""
        raise ModelError(f"pk.model: random names {', '.join(map(repr, unknown))}; choose among {', '.join(varying)}{why}.")
    if isinstance(sigma_add, bool) or not isinstance(sigma_add, (int, float)) or not (math.isfinite(sigma_add) and sigma_add >= 0):
        raise ModelError(f"pk.model: sigma_add must be a non-negative number, got {sigma_add!r}.")
    if error != "proportional" and sigma_add != SIGMA_ADD:
        raise ModelError(
            f"pk.model: with error={error!r} sigma_add is a parameter, estimated; hold it at {sigma_add:g} with "
            f"model(...).fix({{'sigma_add': {sigma_add:g}}}) (a scenario's [fixed] table) instead."
        )
    if set(random) == set(varying) and (error, elimination) == ("proportional", "volume"):  # the default model, as it always was
        return _build(PARAMS, [LogNormal("ka", "log_ka", "ka_sd"), *_elimination("v", True, True)], sigma_add, (), "")
    declared = {p.name: p for p in PARAMS + VARIANT_PARAMS}
    names = ["log_ka", "ka_sd", "log_cl", "cl_sd", f"log_{second}", f"{second}_sd", "rho", "sigma_prop", "sigma_add"]
    dropped = {f"{r}_sd" for r in varying if r not in random}
    if not ("cl" in random and second in random):
        dropped.add("rho")
    if error == "additive":
        dropped.add("sigma_prop")
    if error == "proportional":
        dropped.add("sigma_add")
    params = tuple(declared[n] for n in names if n not in dropped)
    dists = [LogNormal("ka", "log_ka", "ka_sd" if "ka" in random else 0.0), *_elimination(second, "cl" in random, second in random)]
    kept = [p.name for p in params]
    extra = (kept.index("sigma_add") if "sigma_add" in kept else -1, 1.0 if second == "ke" else 0.0)
    variant = f" (random {', '.join(r for r in varying if r in random) or 'none'}; {error} error; {elimination} elimination)"
    return _build(params, dists, sigma_add, extra, variant)


def _elimination(second: str, cl_varies: bool, second_varies: bool) -> list[MvNormal]:
    """The distribution(s) of a subject's CL and V (or ke): correlated when both vary, else each
    on its own (a constant sd 0 for one that does not vary)."""
    if cl_varies and second_varies:
        return [MvNormal(("cl", second), ("log_cl", f"log_{second}"), ("cl_sd", f"{second}_sd"), ("rho",), links=("log", "log"))]
    return [
        LogNormal("cl", "log_cl", "cl_sd" if cl_varies else 0.0),
        LogNormal(second, f"log_{second}", f"{second}_sd" if second_varies else 0.0),
    ]


def _build(params, dists, sigma_add: float, extra: tuple, variant: str) -> Model:
    names = [p.name for p in params]
    prop_at = names.index("sigma_prop") if "sigma_prop" in names else -1
    return Model(
        params=params,
        levels=(population_level("subject", dists, params),),
        observations=Observations(
            concentrations, values=("concentration",), args=(prop_at, sigma_add, *extra), covariates=("time", "dose")
        ),
        name="pk",
        description=__doc__.splitlines()[0] + variant,
    )


@njit(cache=True, error_model="numpy")
def curve_summary_kernel(y, x, groups, args, work, out):
    """args = (value column, time column, dose column): coefficients of log(y / dose) on
    (1, t, log t) over positive observations, their log residual variance, and log(AUC / dose)."""
    col = int(args[0])
    tcol = int(args[1])
    dcol = int(args[2])
    n = y.shape[0]
    xtx = work[:9]
    xty = work[9:12]
    xtx[:] = 0.0
    xty[:] = 0.0
    m = 0
    row = work[12:15]
    for j in range(n):
        if y[j, col] > 0.0 and x[j, tcol] > 0.0:
            row[0] = 1.0
            row[1] = x[j, tcol]
            row[2] = math.log(x[j, tcol])
            ly = math.log(y[j, col] / x[j, dcol])
            for a in range(3):
                xty[a] += row[a] * ly
                for b in range(3):
                    xtx[a * 3 + b] += row[a] * row[b]
            m += 1
    if m > 3 and solve_normal_equations(xtx, xty, 3):
        rss = 0.0
        for j in range(n):
            if y[j, col] > 0.0 and x[j, tcol] > 0.0:
                t = x[j, tcol]
                r = math.log(y[j, col] / x[j, dcol]) - (xty[0] + xty[1] * t + xty[2] * math.log(t))
                rss += r * r
        out[0] = xty[0]
        out[1] = xty[1]
        out[2] = xty[2]
        out[3] = math.log(rss / (m - 3)) if rss > 0.0 else np.nan
    else:
        out[:4] = np.nan
    auc = 0.0
    for j in range(1, n):
        auc += 0.5 * (y[j, col] + y[j - 1, col]) * (x[j, tcol] - x[j - 1, tcol])
    out[4] = math.log(auc / x[0, dcol]) if auc > 0.0 and x[0, dcol] > 0.0 else np.nan


def curve_summary(value="concentration", time="time", dose="dose") -> st.UnitStatistic:
    """Per-subject curve summary (labels ``b0``, ``b_t``, ``b_logt``, ``log_rvar``, ``log_auc``)."""
    return st.UnitStatistic(
        kernel=curve_summary_kernel,
        labels=("b0", "b_t", "b_logt", "log_rvar", "log_auc"),
        value=value,
        args=lambda layout: [layout.value(value), layout.covariate(time), layout.covariate(dose)],
        work=15,
    )


@njit(cache=True, error_model="numpy")
def mean_curve(beta, x, args, out):
    """The model's mean concentration at ``beta = (ka, CL, V)``, ``x[:, 0]`` times and ``x[:, 1]``
    doses: the structural curve, for per-subject nonlinear least squares (:func:`statistics`)."""
    ka = beta[0]
    v = beta[2]
    ke = beta[1] / v
    for j in range(out.shape[0]):
        t = x[j, 0]
        if abs(ka - ke) > 1e-9:
            out[j] = x[j, 1] * ka / (v * (ka - ke)) * (math.exp(-ke * t) - math.exp(-ka * t))
        else:
            out[j] = x[j, 1] * ka / v * t * math.exp(-ke * t)


@njit(cache=True, error_model="numpy")
def absorption_first_curve(beta, x, args, out):
    """:func:`mean_curve` parameterised by ``beta = (ka - ke, CL, V)``: a positive first
    parameter keeps absorption faster than elimination, the side of the flip-flop pair the
    model's fits take, so a subject's fit cannot jump between the two."""
    v = beta[2]
    ke = beta[1] / v
    ka = beta[0] + ke
    for j in range(out.shape[0]):
        t = x[j, 0]
        out[j] = x[j, 1] * ka / (v * beta[0]) * (math.exp(-ke * t) - math.exp(-ka * t))


#: Start of each subject's curve fit, (ka - ke, CL, V) in the units of the model's defaults (mg, L,
#: h); fits centre the subjects' fits on the data from there (``center="data"``).
NLS_START = (1.0, 3.0, 30.0)
#: Sd of the penalty of each subject's fit towards the centre (log scale), see :func:`simfit.statistics.nls`.
NLS_PRIOR_SD = 1.0


def subject_fit(
    value="concentration",
    start: Sequence[float] = NLS_START,
    prior_sd: float | str | Sequence[float] | None = NLS_PRIOR_SD,
    center: str = "data",
    sane_width: float = SANE_WIDTH,
    max_iter: int = 200,
) -> st.UnitStatistic:
    """Per-subject nonlinear least squares of the model's own curve on the log scale, absorption
    faster than elimination (:func:`absorption_first_curve`), from ``start`` = (ka - ke, CL, V);
    the other options are :func:`simfit.statistics.nls`'s. Labels ``nls.log_kd`` (log(ka - ke)),
    ``nls.log_cl``, ``nls.log_v``, ``nls.log_sd``."""
    if isinstance(start, (str, Mapping)) or len(start) != 3:
        raise StatisticsError(f"pk: start takes three positive numbers, (ka - ke, CL, V), got {start!r}.")
    positive = (0.0, math.inf)
    return st.nls(
        absorption_first_curve, dict(zip(("kd", "cl", "v"), start)), bounds=[positive] * 3, value=value, residuals="log",
        prior_sd=prior_sd, center=center, sane_width=sane_width, max_iter=max_iter,
    )


def statistics(
    kind: str = "auxiliary",
    start: Sequence[float] = NLS_START,
    prior_sd: float | str | Sequence[float] | None = NLS_PRIOR_SD,
    center: str = "data",
    sane_width: float = SANE_WIDTH,
    max_iter: int = 200,
) -> st.Statistics:
    """Statistics of the PK model (of every variant: they describe the data).

    Parameters
    ----------
    kind : {"auxiliary", "hand"}
        ``"auxiliary"`` (default): each subject's nonlinear least-squares estimates of log ka - ke,
        log CL and log V and its log residual sd (:func:`subject_fit`), their means and sds
        across subjects and the correlations between the three estimates. ``"hand"``: means and
        sds of a linear curve summary (:func:`curve_summary`) and three correlations between them.
    start : three positive numbers
        ``"auxiliary"`` only: the start of each subject's fit, (ka - ke, CL, V) in the data's
        units (``(1.0, 0.04, 0.5)`` for doses per kg and concentrations in mg/L, say).
    prior_sd, center, sane_width, max_iter
        ``"auxiliary"`` only: options of the subjects' fits (:func:`simfit.statistics.nls`).
    """
    if kind == "hand":
        given = {k: v for k, v, default in (("start", start, NLS_START), ("prior_sd", prior_sd, NLS_PRIOR_SD), ("center", center, "data"),
                                            ("sane_width", sane_width, SANE_WIDTH), ("max_iter", max_iter, 200)) if not _same(v, default)}
        if given:
            raise ValueError(f"{', '.join(given)} apply to kind='auxiliary' (the subjects' curve fits), not to kind='hand'.")
        return st.Statistics(
            unit=[curve_summary()],
            across=["mean", "sd"],
            extra=[st.corr(*[(f"concentration.{a}", f"concentration.{b}") for a, b in (("log_auc", "b_t"), ("log_auc", "b0"), ("b0", "b_t"))])],
        )
    if kind != "auxiliary":
        raise ValueError(f"kind must be 'auxiliary' or 'hand', got {kind!r}.")
    fit_names = ("nls.log_kd", "nls.log_cl", "nls.log_v")
    pairs = [(f"concentration.{a}", f"concentration.{b}") for i, a in enumerate(fit_names) for b in fit_names[i + 1 :]]
    fit = subject_fit(start=start, prior_sd=prior_sd, center=center, sane_width=sane_width, max_iter=max_iter)
    return st.Statistics(unit=[fit], across=["mean", "sd"], extra=[st.corr(*pairs)])


def _same(value, default) -> bool:
    try:
        return bool(np.array_equal(np.asarray(value, dtype=object), np.asarray(default, dtype=object)))
    except (TypeError, ValueError):
        return False


#: Nominal sampling times (h); each subject's times are jittered around them.
NOMINAL_TIMES = (0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 24.0)


def design(n_subjects: int = 40, n_samples: int = len(NOMINAL_TIMES), dose: float = 100.0, seed: int = 0) -> Panel:
    """Subjects sampled at the first ``n_samples`` nominal times, each jittered by up to +-10%
    (seeded), all given ``dose`` mg."""
    if not 1 <= n_samples <= len(NOMINAL_TIMES):
        raise DataError(
            f"n_samples must lie between 1 and {len(NOMINAL_TIMES)} (the nominal times {NOMINAL_TIMES}); "
            "for other sampling schemes take the design from a data file."
        )
    rng = np.random.default_rng(seed)
    times = np.asarray(NOMINAL_TIMES[:n_samples])
    covs = [np.column_stack([times * rng.uniform(0.9, 1.1, times.size), np.full(times.size, dose)]) for _ in range(n_subjects)]
    return Panel.from_units(
        [np.zeros(times.size)] * n_subjects, covariates=covs, value_names=("concentration",), covariate_names=("time", "dose")
    ).design()
