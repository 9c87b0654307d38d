"""Statistics made near-Gaussian for the synthetic likelihood.

A Gaussian synthetic likelihood is only as good as the statistics' normality. A skewed statistic
(the spread across units of their raw means, a variance) makes its Gaussian density too narrow
on the long side and too wide on the short one, and the posterior of the parameters it informs
comes out too narrow (the log-normal benchmark's default statistics: posterior sd 0.77 times the
exact one) or shifted. Any one-to-one transform of the statistics carries the same information,
so :func:`fit_normalising` fits one per statistic, once, to panels simulated at the preliminary
estimate: a Yeo-Johnson power transform (Yeo and Johnson 2000) of the statistic centred on its
median and scaled by its robust spread, with the power chosen by maximum likelihood; a statistic
that is already symmetric keeps (about) the identity. The same fixed map is then applied to the
observed statistics and to every simulated panel's. :meth:`Normalising.report` says which
statistics were transformed and whether some stay far from normal after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from simfit.screen import robust_scale

__all__ = ["Normalising", "fit_normalising", "SKEW_TRANSFORMED", "SKEW_LEFT"]

#: Statistics whose simulated skewness exceeds this (in absolute value) get a power transform;
#: the others keep the identity (a fitted power would only add noise there).
SKEW_TRANSFORMED = 0.25
#: Skewness and excess kurtosis left after the transform above which the report warns.
SKEW_LEFT = 0.5
KURTOSIS_LEFT = 2.0


@dataclass(frozen=True)
class Normalising:
    """A fixed per-statistic map towards normality.

    Attributes
    ----------
    names : tuple of str
    centre, scale : ndarray, shape (n_stats,)
        Median and robust spread of the statistics at the preliminary estimate.
    power : ndarray, shape (n_stats,)
        Yeo-Johnson power of each statistic; NaN for the identity.
    skew_before, skew_after, kurtosis_after : ndarray, shape (n_stats,)
        Skewness of the simulated statistics before and after, and excess kurtosis after.
    """

    names: tuple[str, ...]
    centre: np.ndarray
    scale: np.ndarray
    power: np.ndarray
    skew_before: np.ndarray
    skew_after: np.ndarray
    kurtosis_after: np.ndarray

    @property
    def transformed(self) -> tuple[str, ...]:
        return tuple(n for n, p in zip(self.names, self.power) if np.isfinite(p))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The transformed statistics, same shape as ``values`` (..., n_stats); NaN stays NaN."""
        x = np.asarray(values, dtype=np.float64)
        out = x.copy()
        for j, lam in enumerate(self.power):
            if np.isfinite(lam):
                out[..., j] = _yeo_johnson((x[..., j] - self.centre[j]) / self.scale[j], lam)
        return out

    def report(self) -> tuple[str, ...]:
        """Notes on what was done, and a warning line where statistics stay far from normal."""
        lines = []
        if self.transformed:
            lines.append(
                f"statistics {', '.join(self.transformed)} were skewed at the preliminary estimate (skewness up to "
                f"{np.nanmax(np.abs(self.skew_before)):.2g}) and are scored after a Yeo-Johnson power transform fitted there"
            )
        left = [n for n, s, k in zip(self.names, self.skew_after, self.kurtosis_after) if abs(s) > SKEW_LEFT or k > KURTOSIS_LEFT]
        if left:
            lines.append(
                f"WARNING: statistics {', '.join(left)} are far from normal even after the transform (heavy tails), so the "
                "Gaussian synthetic likelihood may make the posterior too narrow; use statistics that average over more "
                "observations, or method='abc-smc', which assumes no distribution"
            )
        return tuple(lines)

    def to_dict(self) -> dict:
        return {
            "names": list(self.names), "centre": self.centre.tolist(), "scale": self.scale.tolist(),
            "power": [None if not np.isfinite(p) else float(p) for p in self.power],
            "skew_before": self.skew_before.tolist(), "skew_after": self.skew_after.tolist(),
            "kurtosis_after": self.kurtosis_after.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Normalising:
        return cls(
            names=tuple(d["names"]), centre=np.asarray(d["centre"], dtype=float), scale=np.asarray(d["scale"], dtype=float),
            power=np.array([np.nan if p is None else p for p in d["power"]], dtype=float),
            skew_before=np.asarray(d["skew_before"], dtype=float), skew_after=np.asarray(d["skew_after"], dtype=float),
            kurtosis_after=np.asarray(d["kurtosis_after"], dtype=float),
        )


def _yeo_johnson(z: np.ndarray, lam: float) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return stats.yeojohnson(z, lmbda=lam)


def fit_normalising(draws: np.ndarray, names: Sequence[str]) -> Normalising:
    """Fit the map on statistics of panels simulated at one parameter value.

    Parameters
    ----------
    draws : ndarray, shape (n_panels, n_stats)
        Finite statistics of independent panels (rows with a NaN are left out).
    names : sequence of str
    """
    x = np.asarray(draws, dtype=np.float64)
    x = x[np.all(np.isfinite(x), axis=1)]
    centre, scale = robust_scale(x)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - centre) / scale
    skew_before = stats.skew(z, axis=0, bias=False)
    power = np.full(x.shape[1], np.nan)
    after = z.copy()
    for j in range(x.shape[1]):
        if abs(skew_before[j]) > SKEW_TRANSFORMED:
            transformed, lam = stats.yeojohnson(z[:, j])
            power[j], after[:, j] = lam, transformed
    return Normalising(
        names=tuple(names), centre=centre, scale=scale, power=power, skew_before=skew_before,
        skew_after=stats.skew(after, axis=0, bias=False), kurtosis_after=stats.kurtosis(after, axis=0, bias=False),
    )
