"""Population pharmacokinetics: one compartment, first-order oral absorption.

Subject ``i`` receives dose ``D`` (mg) at time 0; its concentration at time ``t`` (h) is
``C(t) = D ka / (V (ka - ke)) (exp(-ke t) - exp(-ka t))`` with ``ke = CL / V``. Per-subject
absorption rate ``ka`` (1/h) is log-normal; clearance ``CL`` (L/h) and volume ``V`` (L) are
jointly log-normal with latent correlation ``rho``. Observations carry proportional and additive
residual error: ``y = C (1 + sigma_prop e1) + sigma_add e2``. Sampling times and doses are
observation covariates (columns ``time`` and ``dose``) and may differ between subjects.

Statistics per subject: the least-squares fit of ``log(y / dose)`` on ``(1, t, log t)`` (three
coefficients and the log residual variance, a flexible auxiliary model of the curve) and the
log of the dose-normalised area under the observed curve; their means and spreads across
subjects and the correlations that carry the CL-V correlation. The area is computed over the
subject's rows in order, so a subject's rows must be sorted by time (``Panel.from_frame`` keeps
the file's order within a subject).

Flip-flop: swapping ``ka`` and ``ke`` (with ``V`` scaled by ``ke / ka``) gives the same mean curve,
so the objective has a second optimum that only the random effects tell apart. Fits of oral
absorption data usually take ``ka > ke``; the scenario searches a box around the starts narrow
enough (``search_width = 1``) to stay on that side.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from simfit import statistics as st
from simfit.data import Panel
from simfit.errors import DataError
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import LogNormal, MvNormal, population_level
from simfit.random import normal
from simfit.statistics._numeric import solve_normal_equations

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

#: Additive residual sd (mg/L), fixed (set it through ``model(sigma_add=...)``).
SIGMA_ADD = 0.05


@njit(cache=True, error_model="numpy")
def concentrations(psi, theta, x, args, rng, y):
    """Observation kernel: ``theta = (ka, CL, V)``, ``x[:, 0]`` times (h), ``x[:, 1]`` doses (mg);
    ``args = (index of sigma_prop in psi, sigma_add)``."""
    sigma_prop = psi[int(args[0])]
    sigma_add = args[1]
    ka = theta[0]
    ke = theta[1] / theta[2]
    v = theta[2]
    for j in range(y.shape[0]):
        t = x[j, 0]
        if abs(ka - ke) > 1e-9:
            c = x[j, 1] * ka / (v * (ka - ke)) * (math.exp(-ke * t) - math.exp(-ka * t))
        else:  # the limit ka -> ke
            c = x[j, 1] * ka / v * t * math.exp(-ke * t)
        y[j, 0] = c * (1.0 + sigma_prop * normal(rng)) + sigma_add * normal(rng)


def model(sigma_add: float = SIGMA_ADD) -> Model:
    """The population PK model; ``sigma_add`` is the fixed additive residual sd."""
    subject = population_level(
        "subject",
        [
            LogNormal("ka", "log_ka", "ka_sd"),
            MvNormal(("cl", "v"), ("log_cl", "log_v"), ("cl_sd", "v_sd"), ("rho",), links=("log", "log")),
        ],
        PARAMS,
    )
    names = [p.name for p in PARAMS]
    return Model(
        params=PARAMS,
        levels=(subject,),
        observations=Observations(
            concentrations, values=("concentration",), args=(names.index("sigma_prop"), sigma_add), covariates=("time", "dose")
        ),
        name="pk",
        description=__doc__.splitlines()[0],
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


def subject_fit(value="concentration", start=(1.0, 3.0, 30.0), prior_sd: float | None = 1.0) -> st.UnitStatistic:
    """Per-subject nonlinear least squares of the model's own curve on the log scale, absorption
    faster than elimination (:func:`absorption_first_curve`), from ``start`` = (ka - ke, CL, V).
    Labels ``nls.log_kd`` (log(ka - ke)), ``nls.log_cl``, ``nls.log_v``, ``nls.log_sd``."""
    positive = (0.0, math.inf)
    return st.nls(
        absorption_first_curve, dict(zip(("kd", "cl", "v"), start)), bounds=[positive] * 3, value=value, residuals="log",
        prior_sd=prior_sd,
    )


def statistics(kind: str = "auxiliary") -> st.Statistics:
    """Statistics of the PK model.

    Parameters
    ----------
    kind : {"auxiliary", "hand"}
        ``"auxiliary"`` (default): each subject's nonlinear least-squares estimates of log ka,
        log CL and log V and its log residual sd (:func:`subject_fit`), their means and sds
        across subjects and the correlations between the three estimates. ``"hand"``: means and
        sds of a linear curve summary (:func:`curve_summary`) and three correlations between them.
    """
    if kind == "hand":
        return st.Statistics(
            unit=[curve_summary()],
            across=["mean", "sd"],
            extra=[st.corr(*[(f"concentration.{a}", f"concentration.{b}") for a, b in (("log_auc", "b_t"), ("log_auc", "b0"), ("b0", "b_t"))])],
        )
    if kind != "auxiliary":
        raise ValueError(f"kind must be 'auxiliary' or 'hand', got {kind!r}.")
    fit_names = ("nls.log_kd", "nls.log_cl", "nls.log_v")
    pairs = [(f"concentration.{a}", f"concentration.{b}") for i, a in enumerate(fit_names) for b in fit_names[i + 1 :]]
    return st.Statistics(unit=[subject_fit()], across=["mean", "sd"], extra=[st.corr(*pairs)])


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
