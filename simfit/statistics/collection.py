"""The auxiliary statistics of a model: unit statistics, aggregations across units and pooled
statistics put together, resolved for a panel layout into a compiled :class:`StatisticsPlan`.

The building blocks are in :mod:`simfit.statistics.spec`; the ready-made unit statistics and
aggregates in :mod:`simfit.statistics.unit` and :mod:`simfit.statistics.aggregate`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from simfit.errors import StatisticsError
from simfit.kernels import AGGREGATE_SIGNATURE, UNIT_STATISTIC_SIGNATURE, compile_kernel
from simfit.statistics import aggregate as _agg
from simfit.statistics.spec import (
    Across,
    Aggregate,
    Layout,
    Pooled,
    StatisticsPlan,
    UnitStatistic,
    _flat,
    _offsets,
)

__all__ = ["Statistics"]


class Statistics:
    """The auxiliary statistics of a model.

    Parameters
    ----------
    unit : sequence of UnitStatistic
        Statistics computed on every unit (see :mod:`simfit.statistics.unit`).
    across : sequence of {"mean", "sd"} or Across
        Aggregations applied to every visible unit statistic, e.g. the mean and the standard
        deviation across units of each unit's mean.
    extra : sequence of Aggregate
        Further aggregates reading named unit statistics (correlations, quantiles across units).
    pooled : sequence of Pooled
        Statistics over all observations pooled (see :mod:`simfit.statistics.pooled`).

    Examples
    --------
    >>> from simfit import statistics as st
    >>> spec = st.Statistics(unit=[st.mean(), st.var()], across=["mean", "sd"])
    """

    def __init__(
        self,
        unit: Sequence[UnitStatistic] = (),
        across: Sequence[str | Across] = ("mean", "sd"),
        extra: Sequence[Aggregate] = (),
        pooled: Sequence[Pooled] = (),
    ) -> None:
        shorthand = {"mean": _agg.across_mean, "sd": _agg.across_sd}
        unit = (unit,) if isinstance(unit, UnitStatistic) else unit
        across = (across,) if isinstance(across, (str, Across)) else across
        extra = (extra,) if isinstance(extra, Aggregate) else extra
        pooled = (pooled,) if isinstance(pooled, Pooled) else pooled
        unit = (unit,) if isinstance(unit, Pooled) else unit
        # Statistics with their own aggregation (st.values()) may be listed with the unit ones.
        pooled = tuple(pooled) + tuple(u for u in unit if isinstance(u, Pooled))
        unit = tuple(u for u in unit if not isinstance(u, Pooled))
        self.unit = tuple(unit)
        resolved_across = []
        for a in across:
            if isinstance(a, str):
                if a not in shorthand:
                    raise StatisticsError(
                        f"Unknown aggregation {a!r}; use 'mean', 'sd' or an Across object such as "
                        "across_quantiles([0.1, 0.9])."
                    )
                a = shorthand[a]()
            if not isinstance(a, Across):
                raise StatisticsError(f"across entries must be 'mean', 'sd' or Across objects, got {a!r}.")
            resolved_across.append(a)
        self.across = tuple(resolved_across)
        self.extra = tuple(extra)
        self.pooled = tuple(pooled)
        for u in self.unit:
            if not isinstance(u, UnitStatistic):
                raise StatisticsError(f"unit entries must be UnitStatistic objects, got {u!r}.")
        for e in self.extra:
            if not isinstance(e, Aggregate):
                raise StatisticsError(f"extra entries must be Aggregate objects, got {e!r}.")
        for p in self.pooled:
            if not isinstance(p, Pooled):
                raise StatisticsError(f"pooled entries must be Pooled objects, got {p!r}.")
        if not (self.unit or self.pooled):
            raise StatisticsError("Statistics need at least one unit or pooled statistic.")
        self._compiled: dict = {}

    #: True when the final statistics are a projection of these, fitted on a model's simulations
    #: by :meth:`prepare` (see :mod:`simfit.statistics.projected`).
    projects = False

    def prepare(self, model, design):
        """Fit what the final statistics need from ``model`` on ``design`` (nothing here; a
        projection for projected statistics) and return it, or ``None``."""
        return None

    @property
    def calibrates(self) -> bool:
        """Whether some unit statistic takes something from the observed data (see :meth:`calibrated`)."""
        return any(u.calibrate is not None for u in self.unit)

    def calibrated(self, table: np.ndarray, layout: Layout) -> tuple[Statistics, tuple[str, ...]]:
        """These statistics calibrated on the observed unit statistics.

        Parameters
        ----------
        table : ndarray, shape (n_units, n_unit_columns)
            The unit-statistics table of the observed panel (columns in plan order).
        layout : Layout

        Returns
        -------
        Statistics
            The same statistics, each calibrating unit statistic replaced by its calibrated self
            (the same names), or ``self`` when none calibrates.
        tuple of str
            What each calibration did, in words.
        """
        if not self.calibrates:
            return self, ()
        units, notes, offset = [], [], 0
        for u in self.unit:
            width = len(u.names(layout))
            if u.calibrate is not None:
                u, note = u.calibrate(np.asarray(table[:, offset : offset + width], dtype=np.float64))
                notes.append(note)
            units.append(u)
            offset += width
        return Statistics(unit=units, across=self.across, extra=self.extra, pooled=self.pooled), tuple(notes)

    def plan(self, layout: Layout, max_obs: int) -> StatisticsPlan:
        """Resolve the statistics for a panel layout and compile their kernels."""
        unit_stats = list(self.unit)
        hidden_prefix = []
        for k, p in enumerate(self.pooled):
            unit_stats.append(p.unit)
            hidden_prefix.append(k)
        unit_names: list[str] = []
        visible: list[str] = []
        pooled_inputs: list[tuple[str, ...]] = []
        flag_names: list[str] = []
        unit_sizes, unit_args, unit_addresses, unit_kernels = [], [], [], []
        work = 0
        for k, u in enumerate(unit_stats):
            names = u.names(layout)
            if k >= len(self.unit):
                names = tuple(f"_pooled{k - len(self.unit)}.{n}" for n in names)
                pooled_inputs.append(names)
            elif not u.hidden:
                flagged = {f"{layout.value_names[layout.value(u.value)]}.{f}" for f in u.flags}
                visible.extend(n for n in names if n not in flagged)
                flag_names.extend(n for n in names if n in flagged)
            unit_names.extend(names)
            unit_sizes.append(len(names))
            unit_args.append(u.resolve_args(layout))
            disp, addr = self._compile(u.kernel, UNIT_STATISTIC_SIGNATURE, "unit statistic")
            unit_kernels.append(disp)
            unit_addresses.append(addr)
            work = max(work, u.work_size(max_obs))
        _no_duplicates(unit_names, "unit statistic")

        aggregates = ([a.expand(visible) for a in self.across] if visible else []) + list(self.extra)
        aggregates += [p.combine(names) for p, names in zip(self.pooled, pooled_inputs)]
        if not aggregates or all(not a.inputs for a in aggregates):
            raise StatisticsError(
                "No aggregate statistics: give at least one 'across' aggregation, extra aggregate "
                "or pooled statistic."
            )
        index = {n: j for j, n in enumerate(unit_names)}
        names: list[str] = []
        agg_cols, agg_args, agg_addresses, agg_sizes, agg_kernels = [], [], [], [], []
        for a in aggregates:
            missing = [n for n in a.inputs if n not in index]
            if missing:
                label = a.names[0] if not callable(a.names) else getattr(a.kernel, "__name__", "aggregate")
                raise StatisticsError(
                    f"Aggregate {label!r} reads unknown unit statistic(s) {', '.join(missing)}; "
                    f"unit statistics are {', '.join(visible)}."
                )
            if not a.inputs:
                continue
            out_names = a.output_names(layout)
            agg_cols.append(np.array([index[n] for n in a.inputs], dtype=np.int64))
            agg_args.append(np.asarray(a.args, dtype=np.float64))
            disp, addr = self._compile(a.kernel, AGGREGATE_SIGNATURE, "aggregate")
            agg_kernels.append(disp)
            agg_addresses.append(addr)
            agg_sizes.append(len(out_names))
            names.extend(out_names)
        _no_duplicates(names, "statistic")
        return StatisticsPlan(
            names=tuple(names),
            unit_names=tuple(unit_names),
            unit_addresses=np.ascontiguousarray(np.array(unit_addresses, dtype=np.int64).reshape(-1, 2)),
            unit_args=_flat(unit_args, np.float64),
            unit_args_offsets=_offsets([a.size for a in unit_args]),
            unit_out_offsets=_offsets(unit_sizes),
            unit_work=max(work, 1),
            agg_addresses=np.ascontiguousarray(np.array(agg_addresses, dtype=np.int64).reshape(-1, 2)),
            agg_columns=_flat(agg_cols, np.int64),
            agg_columns_offsets=_offsets([c.size for c in agg_cols]),
            agg_args=_flat(agg_args, np.float64),
            agg_args_offsets=_offsets([a.size for a in agg_args]),
            agg_out_offsets=_offsets(agg_sizes),
            unit_kernels=tuple(unit_kernels),
            agg_kernels=tuple(agg_kernels),
            flag_names=tuple(flag_names),
        )

    def _compile(self, kernel, signature, role):
        key = (id(kernel), signature)
        if key not in self._compiled:
            self._compiled[key] = compile_kernel(kernel, signature, role)
        return self._compiled[key]

    def names(self, layout: Layout) -> tuple[str, ...]:
        """Final statistic names for a layout."""
        return self.plan(layout, max_obs=max(layout.max_obs, 1)).names

    def __repr__(self) -> str:
        return (
            f"<Statistics: {len(self.unit)} unit statistic(s), across "
            f"{[a.label for a in self.across]}, {len(self.extra)} extra, {len(self.pooled)} pooled>"
        )


def _no_duplicates(names: Sequence[str], what: str) -> None:
    seen, dup = set(), []
    for n in names:
        if n in seen:
            dup.append(n)
        seen.add(n)
    if dup:
        raise StatisticsError(
            f"Duplicate {what} name(s) {', '.join(sorted(set(dup)))}; each statistic must appear "
            "once (remove the repeated entry)."
        )
