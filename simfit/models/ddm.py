"""Hierarchical drift-diffusion model (subjects x trials).

Each subject ``i`` has a drift ``v_i ~ N(v_mu, v_sd^2)`` and a boundary separation
``a_i = exp(log_a + a_sd * z)``; the non-decision time ``t_i = t`` (seconds, positive) and the
starting point, the fraction ``z`` of the separation, are shared; a trial-level condition
(covariate ``cond``, 0 or 1) shifts the drift by ``beta``. On each trial the evidence starts at
``z * a_i`` and follows ``dX = v dt + dW`` (unit diffusion) until it reaches 0 (response 0, an
error) or ``a_i`` (response 1, correct). Values: ``rt`` (decision time + ``t_i``, seconds) and
``response``.

Two simulators (``model(simulator=...)``): ``"euler"`` (default), Euler-Maruyama with ``dt`` =
1 ms, boundaries corrected for the discrete monitoring, and at most ``t_max`` seconds (then the
nearer boundary is reported); ``"exact"``, first-passage times sampled without discretisation
(:mod:`simfit.first_passage`), at a cost per trial that does not grow with the decision time.

Statistics per subject and condition: accuracy, the 10/30/50/70/90% quantiles of correct response
times and the median error response time; averaged (and their spread taken) across subjects.
A between-subject spread of non-decision times is poorly identified by these statistics at
typical designs (tens of subjects, ~100 trials), which is why ``t`` is shared here.

The simulated statistics are step functions of the parameters at the scale of one Euler step, so
fits use finite-difference steps of about 2% (``FIT_OPTIONS``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from numba import njit

from simfit import statistics as st
from simfit.first_passage import wiener_first_passage
from simfit.model import Model, Observations
from simfit.params import Param
from simfit.population import LogNormal, Normal, population_level
from simfit.random import load, normal_from, store, substream
from simfit.statistics._numeric import sorted_quantile

PARAMS = (
    Param("v_mu", start=0.5),
    Param("v_sd", bounds=(0.0, math.inf), start=0.3),
    Param("log_a", start=0.3),
    Param("a_sd", bounds=(0.0, math.inf), start=0.3),
    Param("t", bounds=(0.0, 3.0), start=0.2),
    Param("z", bounds=(0.0, 1.0), start=0.5),
    Param("beta", start=0.0),
)

#: Euler step (s) and longest decision time simulated (s).
DT = 0.001
#: Boundary shift per sqrt(step) of a discretely monitored Brownian motion, -zeta(1/2)/sqrt(2 pi).
BGK_CONSTANT = 0.5826
T_MAX = 5.0
QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
#: Fit options suited to the model (see the module docstring); scenarios set them in [fit].
FIT_OPTIONS = {"diff_step": 0.02, "jacobian_step": 0.02}


@njit(cache=True, error_model="numpy")
def diffusion_trials(psi, theta, x, args, rng, y):
    """Observation kernel: ``theta = (v, a, t)`` of one subject; ``x[:, 0]`` the condition;
    ``args = (dt, t_max, index of z in psi, index of beta in psi, boundary shift)``; writes
    ``y[:, 0]`` the response time and ``y[:, 1]`` the response (1 upper, 0 lower boundary)."""
    dt = args[0]
    t_max = args[1]
    z = psi[int(args[2])]
    beta = psi[int(args[3])]
    shift = args[4]
    v0 = theta[0]
    a = theta[1]
    ndt = theta[2]
    sqrt_dt = math.sqrt(dt)
    max_steps = int(t_max / dt)
    for k in range(y.shape[0]):
        # Each trial its own substream: common random numbers stay aligned trial by trial even
        # though the number of steps depends on the parameters.
        substream(rng, k)
        state = load(rng)
        step_drift = (v0 + beta * x[k, 0]) * dt
        pos = z * a
        lower = shift
        upper = a - shift
        steps = 0
        while lower < pos < upper and steps < max_steps:
            noise, state = normal_from(state)
            pos += step_drift + sqrt_dt * noise
            steps += 1
        store(rng, state)
        y[k, 0] = steps * dt + ndt
        y[k, 1] = 1.0 if pos >= upper or (steps >= max_steps and pos > 0.5 * a) else 0.0


@njit(cache=True, error_model="numpy")
def diffusion_trials_exact(psi, theta, x, args, rng, y):
    """Observation kernel of the exact simulator: as :func:`diffusion_trials`, with
    ``args = (index of z in psi, index of beta in psi)``."""
    z = psi[int(args[0])]
    beta = psi[int(args[1])]
    v0 = theta[0]
    a = theta[1]
    ndt = theta[2]
    for k in range(y.shape[0]):
        substream(rng, k)  # common random numbers aligned trial by trial
        decision, upper = wiener_first_passage(rng, v0 + beta * x[k, 0], a, z)
        y[k, 0] = decision + ndt
        y[k, 1] = upper


SIMULATORS = ("euler", "exact")


def model(dt: float = DT, t_max: float = T_MAX, continuity_correction: bool = True, simulator: str = "euler") -> Model:
    """The hierarchical DDM; ``dt`` and ``t_max`` in seconds.

    ``simulator="euler"``: checking the walk only every ``dt`` lets it cross a boundary unseen
    between steps, which moves each boundary out by about ``0.5826 sqrt(dt)`` (Broadie, Glasserman
    & Kou 1997): at 1 ms, +0.037 on the separation. With ``continuity_correction`` the boundaries
    are moved in by that amount, so the simulated process approximates the continuous-time DDM;
    without it the scheme is plain Euler, as in most DDM simulators.

    ``simulator="exact"``: the continuous-time DDM itself, by exact first-passage sampling
    (:func:`simfit.first_passage.wiener_first_passage`); ``dt``, ``t_max`` and
    ``continuity_correction`` do not apply. Each trial's decision time is a continuous function
    of the parameters between the points where one of its accept or side decisions flips, and
    jumps there, where the Euler times move in steps of ``dt``.
    """
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(map(repr, SIMULATORS))}, got {simulator!r}.")
    subject = population_level(
        "subject",
        [Normal("v", "v_mu", "v_sd"), LogNormal("a", "log_a", "a_sd"), Normal("t", "t", 0.0)],
        PARAMS,
    )
    names = [p.name for p in PARAMS]
    if simulator == "exact":
        kernel, args = diffusion_trials_exact, (names.index("z"), names.index("beta"))
    else:
        shift = BGK_CONSTANT * math.sqrt(dt) if continuity_correction else 0.0
        kernel, args = diffusion_trials, (dt, t_max, names.index("z"), names.index("beta"), shift)
    return Model(
        params=PARAMS,
        levels=(subject,),
        observations=Observations(kernel, values=("rt", "response"), args=args, covariates=("cond",)),
        name="ddm",
        description=__doc__.splitlines()[0] + ("" if simulator == "euler" else " (exact first-passage simulator)"),
    )


@njit(cache=True, error_model="numpy")
def condition_summary_kernel(y, x, groups, args, work, out):
    """args = (condition covariate column, p1, ..., pq): for conditions 0 and 1, the accuracy,
    the quantiles of correct response times and the median error response time."""
    ccol = int(args[0])
    q = args.shape[0] - 1
    per = q + 2
    n = y.shape[0]
    for c in range(2):
        total = 0
        m = 0
        for k in range(n):
            if x[k, ccol] == c:
                total += 1
                if y[k, 1] == 1.0:
                    work[m] = y[k, 0]
                    m += 1
        correct = work[:m]
        correct.sort()
        out[c * per] = m / total if total > 0 else np.nan
        for j in range(q):
            out[c * per + 1 + j] = sorted_quantile(correct, m, args[1 + j]) if m > 0 else np.nan
        out[c * per + q + 1] = _error_median(y, x, ccol, c, work)


@njit(cache=True, inline="always")
def _error_median(y, x, ccol, c, work):
    """Median RT of the error responses in condition ``c`` (NaN without any), sorted in ``work``."""
    e = 0
    for k in range(y.shape[0]):
        if x[k, ccol] == c and y[k, 1] == 0.0:
            work[e] = y[k, 0]
            e += 1
    errors = work[:e]
    errors.sort()
    return sorted_quantile(errors, e, 0.5) if e > 0 else np.nan


def condition_summary(condition: str = "cond", probs=QUANTILES) -> st.UnitStatistic:
    """Per condition: accuracy, correct-RT quantiles and the median error RT of each subject."""
    labels = []
    for c in (0, 1):
        labels.append(f"acc|{condition}={c}")
        labels += [f"q{int(round(100 * p))}|{condition}={c},correct" for p in probs]
        labels.append(f"q50|{condition}={c},error")
    return st.UnitStatistic(
        kernel=condition_summary_kernel,
        labels=tuple(labels),
        value="rt",
        args=lambda layout: [layout.covariate(condition), *probs],
        work=lambda n: n,
    )


@njit(cache=True)
def ez_kernel(y, x, groups, args, work, out):
    """args = (condition column,): per condition, the EZ-diffusion estimates (Wagenmakers, van der
    Maas and Grasman 2007) of drift, log boundary separation and non-decision time from the
    accuracy and the mean and variance of correct RTs, and the median error RT."""
    ccol = int(args[0])
    n = y.shape[0]
    for c in range(2):
        total = 0
        m = 0
        s1 = 0.0
        for k in range(n):
            if x[k, ccol] == c:
                total += 1
                if y[k, 1] == 1.0:
                    s1 += y[k, 0]
                    m += 1
        o = 4 * c
        for j in range(4):
            out[o + j] = np.nan
        if m > 1 and total > 0:
            mrt = s1 / m
            s2 = 0.0
            for k in range(n):
                if x[k, ccol] == c and y[k, 1] == 1.0:
                    s2 += (y[k, 0] - mrt) ** 2
            vrt = s2 / (m - 1)
            pc = m / total
            # Edge correction: accuracy of exactly 1 (or 1/2) has no EZ solution.
            pc = min(pc, 1.0 - 0.5 / total)
            if pc == 0.5:
                pc = 0.5 + 0.5 / total
            if vrt > 0.0:
                lg = math.log(pc / (1.0 - pc))
                xx = lg * (lg * pc * pc - lg * pc + pc - 0.5) / vrt
                if xx > 0.0:
                    v = math.copysign(xx**0.25, pc - 0.5)
                    a = lg / v
                    ya = -v * a
                    mdt = (a / (2.0 * v)) * (1.0 - math.exp(ya)) / (1.0 + math.exp(ya))
                    out[o] = v
                    out[o + 1] = math.log(a)
                    out[o + 2] = mrt - mdt
        out[o + 3] = _error_median(y, x, ccol, c, work)


def ez_summary(condition: str = "cond") -> st.UnitStatistic:
    """Per condition: the subject's EZ-diffusion drift, log boundary separation and non-decision
    time and median error RT (labels ``ez.v|cond=0``, ``ez.log_a|cond=0``, ``ez.ter|cond=0``,
    ``ez.error_q50|cond=0``, ...)."""
    labels = []
    for c in (0, 1):
        labels += [f"ez.v|{condition}={c}", f"ez.log_a|{condition}={c}", f"ez.ter|{condition}={c}", f"ez.error_q50|{condition}={c}"]
    return st.UnitStatistic(
        kernel=ez_kernel, labels=tuple(labels), value="rt", args=lambda layout: [layout.covariate(condition)], work=lambda n: n,
    )


def statistics(kind: str = "hand", log_rt_spreads: bool = True) -> st.Statistics:
    """Statistics of the DDM.

    Parameters
    ----------
    kind : {"hand", "auxiliary"}
        ``"hand"`` (default): mean across subjects of every per-condition summary
        (:func:`condition_summary`), the spread across subjects of the accuracies (for the drift's
        spread) and the log spread across subjects of the log 10% and 50% correct-RT quantiles
        (for the boundary's spread; ``logsdlog:`` labels, see ``log_rt_spreads``). Every statistic is
        defined on every panel: the mean error median of a condition is taken over the subjects
        who err in it, and in a panel where none does, the mean correct median stands in
        (:func:`simfit.statistics.mean_or`); likewise, in a panel where almost no response of a
        condition is correct (a strongly negative drift), the error median stands in for the
        correct-RT quantiles, in their means when no subject has a correct response and in their
        spreads when fewer than two do (:func:`simfit.statistics.sd_or`). ``"auxiliary"``: each
        subject's EZ-diffusion estimates per condition (:func:`ez_summary`), their means, and the
        spreads of the drift and log boundary estimates.
    log_rt_spreads : bool
        ``True`` (default): the RT quantiles' spreads are taken of their logs, and their logs
        reported (:func:`simfit.statistics.sd_or` with ``of_log`` and ``log``). A log-normal
        boundary separation makes a subject's RT quantiles log-normal-like, so that their raw
        spread across 20 subjects is skewed (1.3-2.3) and heavy-tailed (excess kurtosis up to 9)
        with a standard deviation four to five times larger at ``a_sd = 0.5`` than at 0.2; the
        log spread of the logs is near-Gaussian (from ``a_sd = 0.2``, skewness within 0.4 and
        excess kurtosis within 0.7) with a standard deviation of 0.17-0.26 throughout, as a
        Gaussian synthetic likelihood with one covariance assumes. ``False``: the raw spreads
        (``sd:`` labels).
    """
    if kind == "auxiliary":
        spread = [f"rt.ez.{lab}|cond={c}" for lab in ("v", "log_a") for c in (0, 1)]
        return st.Statistics(unit=[ez_summary()], across=["mean"], extra=[st.sd_of(*spread)])
    if kind != "hand":
        raise ValueError(f"kind must be 'hand' or 'auxiliary', got {kind!r}.")
    # The statistics are listed one by one so that each has a stand-in where a panel lacks it (a
    # NaN would stop the fit): the mean correct median for the mean error median when no subject
    # errs in a condition (the two have the same distribution at an unbiased start, z = 1/2), and
    # the error median for the correct-RT quantiles when (almost) no response is correct.
    unit = replace(condition_summary(), hidden=True)
    means, spreads = [], []
    for c in (0, 1):
        error = f"rt.q50|cond={c},error"
        means.append(st.mean_of(f"rt.acc|cond={c}"))
        means += [st.mean_or(f"rt.q{int(round(100 * p))}|cond={c},correct", fallback=error) for p in QUANTILES]
        means.append(st.mean_or(error, fallback=f"rt.q50|cond={c},correct"))
        spreads += [st.sd_or(f"rt.q{q}|cond={c},correct", fallback=error, of_log=log_rt_spreads, log=log_rt_spreads) for q in (10, 50)]
    spread_acc = st.sd_of("rt.acc|cond=0", "rt.acc|cond=1")
    return st.Statistics(unit=[unit], across=[], extra=[*means, spread_acc, *spreads])


def design(n_subjects: int = 30, n_trials: int = 100):
    """Subjects with ``n_trials`` trials each, half in condition 0 and half in condition 1."""
    from simfit.data import Panel

    cond = (np.arange(n_trials) % 2).astype(float)
    return Panel.from_units(
        [np.zeros((n_trials, 2))] * n_subjects,
        covariates=[cond] * n_subjects,
        value_names=("rt", "response"),
        covariate_names=("cond",),
    ).design()
