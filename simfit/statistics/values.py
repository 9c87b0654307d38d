"""Each unit's own observations as statistics, for small panels.

With a handful of units and one or a few observations each (a meta-analysis: one estimate per
study with its known standard error), summaries across units throw away what the data say; the
observations themselves are the natural statistics. :func:`values` gives one statistic per
observation, named after its unit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from simfit.errors import StatisticsError
from simfit.statistics.spec import Aggregate, ColumnRef, Layout, Pooled, UnitStatistic

__all__ = ["values", "MAX_VALUES"]

#: Most statistics :func:`values` gives: beyond this, the weighting matrix (statistics squared)
#: cannot be estimated from a feasible number of simulations; summarise units instead.
MAX_VALUES = 200


@njit(cache=True)
def copy_values_kernel(y, x, groups, args, work, out):
    """args = (column,): the unit's observations of the column in order, NaN beyond them."""
    col = int(args[0])
    n = y.shape[0]
    for k in range(out.shape[0]):
        out[k] = y[k, col] if k < n else np.nan


@njit(cache=True)
def table_values_kernel(u, columns, args, work, out):
    """Every unit's row of the given columns, unit after unit."""
    m = columns.shape[0]
    for i in range(u.shape[0]):
        for j in range(m):
            out[i * m + j] = u[i, columns[j]]


def values(value: ColumnRef = 0, names: Sequence[str] | None = None) -> Pooled:
    """Each unit's observations of ``value`` as statistics, one per observation.

    For small panels in which every unit has the same (small) number of observations. Use it in
    ``unit=`` (it is not aggregated across units), alone or with other statistics::

        st.Statistics(unit=[st.values()], across=[])

    Parameters
    ----------
    value : str or int
        The value column.
    names : sequence of str, optional
        One name per unit, in the panel's unit order. Default: the panel's unit ids (or unit
        numbers). Statistics are named ``"<value>[<name>]"`` (``"<value>[<name>].<k>"`` with
        several observations per unit).

    Raises
    ------
    StatisticsError
        At set-up, when ``names`` does not have one entry per unit, the units have different
        numbers of observations, or there would be more than ``MAX_VALUES`` statistics.
    """
    given = None if names is None else tuple(str(n) for n in names)
    if given is not None and len(set(given)) != len(given):
        raise StatisticsError("values: names must be distinct (one per unit).")

    def labels(layout: Layout) -> tuple[str, ...]:
        return tuple(f"v{k}" for k in range(max(layout.max_obs, 1)))

    part = UnitStatistic(
        kernel=copy_values_kernel, labels=labels, value=value, args=lambda layout: [layout.value(value)], hidden=True
    )

    def output_names(layout: Layout) -> tuple[str, ...]:
        column = layout.value_names[layout.value(value)]
        if layout.n_units <= 0:
            raise StatisticsError("values: statistics per unit need the panel's units (build them through a Simulator or fit).")
        if given is not None and len(given) != layout.n_units:
            raise StatisticsError(
                f"values: {len(given)} name(s) given for a panel of {layout.n_units} units; give one name per unit "
                "(or none, to use the panel's unit ids)."
            )
        if layout.min_obs != layout.max_obs:
            raise StatisticsError(
                f"values: units have between {layout.min_obs} and {layout.max_obs} observations; per-observation "
                "statistics need the same number in every unit (summarise unbalanced units with st.mean() etc.)."
            )
        total = layout.n_units * layout.max_obs
        if total > MAX_VALUES:
            raise StatisticsError(
                f"values: {layout.n_units} units x {layout.max_obs} observations would give {total} statistics "
                f"(at most {MAX_VALUES}); use it for small panels and summarise larger ones across units."
            )
        units = given or tuple(str(u) for u in layout.unit_ids) or tuple(str(i) for i in range(layout.n_units))
        if layout.max_obs == 1:
            return tuple(f"{column}[{u}]" for u in units)
        return tuple(f"{column}[{u}].{k}" for u in units for k in range(layout.max_obs))

    return Pooled(part, lambda inputs: Aggregate(table_values_kernel, inputs, output_names))
