"""Auxiliary statistics: unit statistics, aggregations across units and pooled statistics.

>>> from simfit import statistics as st
>>> spec = st.Statistics(
...     unit=[st.mean(), st.var(), st.autocorr(1)],
...     across=["mean", "sd"],
...     extra=[st.corr(("y.mean", "y.acf1"))],
...     pooled=[st.pooled_moments("y", ("mean", "var", "kurt"))],
... )

User statistics are written the same way: an ``@njit`` kernel with the signature of
:mod:`simfit.kernels` wrapped in :class:`UnitStatistic` or :class:`Aggregate`.
"""

from simfit.statistics.aggregate import (
    across_mean,
    across_quantiles,
    across_sd,
    corr,
    kurtosis_of,
    mean_of,
    mean_or,
    quantiles_of,
    sd_of,
    sd_or,
    skewness_of,
)
from simfit.statistics.auxiliary import glm, nls
from simfit.statistics.collection import Statistics
from simfit.statistics.pooled import pooled_moments, pooled_proportions
from simfit.statistics.projected import Projected, Projection, projected
from simfit.statistics.spec import (
    Across,
    Aggregate,
    Layout,
    Pooled,
    StatisticsPlan,
    UnitStatistic,
)
from simfit.statistics.unit import (
    ar,
    autocorr,
    conditional_quantiles,
    group_variances,
    kurtosis,
    log_mean,
    mean,
    moments,
    ols,
    proportions,
    quantiles,
    sd,
    skewness,
    var,
)
from simfit.statistics.values import values

__all__ = [
    "Statistics", "StatisticsPlan", "UnitStatistic", "Aggregate", "Across", "Pooled", "Layout",
    "mean", "log_mean", "var", "sd", "skewness", "kurtosis", "moments", "quantiles", "conditional_quantiles",
    "autocorr", "ols", "ar", "proportions", "group_variances",
    "across_mean", "across_sd", "across_quantiles", "mean_of", "mean_or", "sd_of", "sd_or", "skewness_of",
    "kurtosis_of", "quantiles_of", "corr",
    "pooled_moments", "pooled_proportions", "values", "nls", "glm",
    "projected", "Projected", "Projection",
]
