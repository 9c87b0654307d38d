"""Screen of the simulated statistics at an estimate: do they behave as the fit assumes?

A fit weighs its statistics by their simulated covariance, tests them with the J statistic and
reports them in standard deviations, all of which treat the statistics as roughly Gaussian. A few
simulated panels far out (an auxiliary fit running away in some units, a ratio with a small
denominator) break that silently: the same outliers that move a simulated mean inflate the
variance that standardises it, so the mismatch looks small and the optimal weighting discounts
exactly the statistics that go wrong. At the estimate the fit simulates ``n_cov_sims`` panels for
the covariance anyway; :func:`screen_statistics` looks at them on a robust scale (median and
``1.4826 * MAD``), which outliers do not inflate:

* **heavy tails**: more than :data:`MAX_TAIL_SHARE` of the panels beyond :data:`TAIL_Z` robust
  scales of the median (a Gaussian puts 6e-7 there, Student's t with 3 degrees of freedom 1%),
  or a standard deviation more than :data:`MAX_SD_RATIO` times the robust scale (1 for a
  Gaussian, 1.5 for t with 3 degrees of freedom, 2.4 for a log-normal of log-sd 1);
* **mismatch**: the observed statistic more than :data:`MAX_ROBUST_Z` robust scales from the
  simulated median and further out than every simulated panel, whatever its standardised
  difference says (a statistic with long tails puts some simulated panels out there too);
* **failed unit fits**: auxiliary fits (``st.nls``, ``st.glm``) failing on more than
  :data:`MAX_UNIT_FAILURES` of the units, observed or simulated: the aggregates then average over
  a set of units that changes with the parameters.

A fit whose statistics fail the screen is not converged (:mod:`simfit.convergence`), and its
summary names them and what helps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["StatisticsScreen", "screen_statistics", "robust_scale", "TAIL_Z", "MAX_TAIL_SHARE", "MAX_SD_RATIO", "MAX_ROBUST_Z"]

TAIL_Z = 5.0
MAX_TAIL_SHARE = 0.02
MAX_SD_RATIO = 2.0
MAX_ROBUST_Z = 4.0
MAX_UNIT_FAILURES = 0.10
_MAD_TO_SD = 1.482602218505602  # 1 / Phi^-1(3/4): the MAD of a Gaussian times this is its sd
_IQR_TO_SD = 1.0 / 1.3489795003921634


def robust_scale(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and robust scale of each column, shape (n_stats,) each.

    The scale is ``1.4826 * MAD`` (the sd for Gaussian draws); where half the draws are equal (a
    MAD of 0), the interquartile range over 1.349, then the standard deviation.
    """
    x = np.asarray(draws, dtype=np.float64)
    med = np.median(x, axis=0)
    scale = _MAD_TO_SD * np.median(np.abs(x - med), axis=0)
    zero = ~(scale > 0)
    if zero.any():
        q75, q25 = np.percentile(x[:, zero], [75, 25], axis=0)
        scale[zero] = (q75 - q25) * _IQR_TO_SD
        still = zero.copy()
        still[zero] = ~(scale[zero] > 0)
        if still.any():
            scale[still] = np.std(x[:, still], axis=0, ddof=1) if x.shape[0] > 1 else 0.0
    return med, scale


@dataclass(frozen=True)
class StatisticsScreen:
    """The screen of the simulated statistics at an estimate.

    Attributes
    ----------
    names : tuple of str
        Statistic names.
    median, robust_sd, sd : ndarray, shape (n_stats,)
        Simulated median, robust scale (``1.4826 * MAD``) and standard deviation of one panel's
        statistics.
    tail_share : ndarray, shape (n_stats,)
        Share of the simulated panels beyond ``TAIL_Z`` robust scales of the median.
    robust_z : ndarray, shape (n_stats,)
        Observed minus simulated median, in robust scales.
    beyond : ndarray, shape (n_stats,)
        Share of the simulated panels at least as far from the median as the observed value.
    n_panels : int
        Simulated panels screened.
    unit_failures : dict of str to (float, float)
        Per auxiliary-fit flag: the share of failed fits on the observed units and on the
        simulated units.
    """

    names: tuple[str, ...]
    median: np.ndarray
    robust_sd: np.ndarray
    sd: np.ndarray
    tail_share: np.ndarray
    robust_z: np.ndarray
    beyond: np.ndarray
    n_panels: int
    unit_failures: dict

    @property
    def sd_ratio(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.robust_sd > 0, self.sd / self.robust_sd, 1.0)

    @property
    def heavy(self) -> tuple[str, ...]:
        """Statistics with heavy tails among the simulated panels."""
        bad = (self.tail_share > MAX_TAIL_SHARE) | (self.sd_ratio > MAX_SD_RATIO)
        return tuple(np.asarray(self.names)[bad])

    @property
    def mismatched(self) -> tuple[str, ...]:
        """Statistics whose observed value lies far out in the simulated distribution (robust scale)."""
        return tuple(np.asarray(self.names)[(np.abs(self.robust_z) > MAX_ROBUST_Z) & (self.beyond == 0.0)])

    @property
    def failing_fits(self) -> dict:
        """Auxiliary fits failing on more than ``MAX_UNIT_FAILURES`` of the observed or simulated units."""
        return {k: v for k, v in self.unit_failures.items() if max(v) > MAX_UNIT_FAILURES}

    @property
    def ok(self) -> bool:
        return not (self.heavy or self.mismatched or self.failing_fits)

    def reasons(self) -> tuple[str, ...]:
        """Why the statistics fail the screen, in words, each with what helps (empty when they pass)."""
        out = []
        heavy = self.heavy
        if heavy:
            idx = [self.names.index(n) for n in heavy]
            worst = max(idx, key=lambda j: (self.tail_share[j], self.sd_ratio[j]))
            out.append(
                f"the simulated statistics {_list(heavy)} have heavy tails at the estimate ({self.tail_share[worst]:.1%} of "
                f"{self.n_panels} panels beyond {TAIL_Z:g} robust sds of the median for {self.names[worst]}, whose sd is "
                f"{self.sd_ratio[worst]:.3g} times its robust scale), so a few panels move their means and inflate the "
                "variance that weighs and tests them; use statistics that outliers do not dominate (per-unit fits with "
                "a penalty, st.nls' default prior_sd='auto'; medians or log scales), or more simulations (n_sims)"
            )
        mismatched = self.mismatched
        if mismatched:
            idx = [self.names.index(n) for n in mismatched]
            worst = max(idx, key=lambda j: abs(self.robust_z[j]))
            out.append(
                f"the model does not reproduce the observed {_list(mismatched)} at the estimate: the observed value lies "
                f"{abs(self.robust_z[worst]):.3g} robust sds from the simulated median of {self.names[worst]}, beyond all "
                f"{self.n_panels} simulated panels; a start nearer the data, more global_points, or statistics the model "
                "can match"
            )
        for flag, (observed, simulated) in self.failing_fits.items():
            out.append(
                f"the auxiliary fits {flag.rsplit('.', 1)[0]} fail on {observed:.0%} of the observed and {simulated:.0%} of "
                "the simulated units at the estimate, so its aggregates average over a set of units that changes with the "
                "parameters; give the fit a start or bounds nearer the data, a penalty (prior_sd), or fewer parameters"
            )
        return tuple(out)

    def to_frame(self):
        """One row per statistic: simulated median, robust sd, sd, tail share, observed robust z."""
        import pandas as pd

        return pd.DataFrame(
            {"median": self.median, "robust_sd": self.robust_sd, "sd": self.sd, "tail_share": self.tail_share,
             "robust_z": self.robust_z},
            index=list(self.names),
        )


def screen_statistics(
    draws: np.ndarray, observed: np.ndarray, names: Sequence[str], unit_failures: dict | None = None
) -> StatisticsScreen:
    """Screen simulated statistics at an estimate (see the module docstring).

    Parameters
    ----------
    draws : ndarray, shape (n_panels, n_stats)
        Statistics of panels simulated at the estimate (fresh random keys).
    observed : ndarray, shape (n_stats,)
    names : sequence of str
    unit_failures : dict of str to (float, float), optional
        Per auxiliary-fit flag, the share of failed fits on the observed and simulated units.
    """
    x = np.asarray(draws, dtype=np.float64)
    med, rs = robust_scale(x)
    sd = np.std(x, axis=0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        far = np.abs(x - med) > TAIL_Z * rs
        tail = np.where(rs > 0, far.mean(axis=0), 0.0)
        z = np.where(rs > 0, (np.asarray(observed, dtype=np.float64) - med) / rs, 0.0)
    beyond = np.mean(np.abs(x - med) >= np.abs(np.asarray(observed, dtype=np.float64) - med), axis=0)
    return StatisticsScreen(
        names=tuple(names), median=med, robust_sd=rs, sd=sd, tail_share=tail, robust_z=z, beyond=beyond, n_panels=int(x.shape[0]),
        unit_failures=dict(unit_failures or {}),
    )


def _list(names: Sequence[str], most: int = 4) -> str:
    names = list(names)
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
