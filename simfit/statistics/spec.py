"""Composing auxiliary statistics: unit statistics, aggregations across units, pooled statistics.

Statistics are computed in two compiled stages. A *unit statistic* reduces the observations of one
unit to a few numbers (its mean, its quantiles, its AR(1) coefficient, ...). An *aggregate* reduces
the table of unit statistics (units x unit statistics) of one panel to the final auxiliary
statistics (the mean across units of the unit means, their standard deviation, a correlation
between two unit statistics, pooled moments, ...). The same compiled code runs on observed and on
simulated panels.

:class:`Statistics` puts them together; every final statistic has a name, e.g. ``mean:y.mean``
(mean across units of each unit's mean of ``y``), ``sd:y.acf1``, ``q90:y.var``,
``corr:y.mean,y.var`` or ``pooled:y.var``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from simfit.errors import StatisticsError
from simfit.kernels import AGGREGATE_SIGNATURE, UNIT_STATISTIC_SIGNATURE, compile_kernel

__all__ = ["Layout", "UnitStatistic", "Aggregate", "Across", "Pooled", "Statistics", "StatisticsPlan"]

ColumnRef = str | int


@dataclass(frozen=True)
class Layout:
    """Column names of a panel, used to resolve statistics' column references."""

    value_names: tuple[str, ...]
    covariate_names: tuple[str, ...] = ()

    def value(self, ref: ColumnRef) -> int:
        return _column(ref, self.value_names, "value")

    def covariate(self, ref: ColumnRef) -> int:
        return _column(ref, self.covariate_names, "covariate")


def _column(ref: ColumnRef, names: tuple[str, ...], what: str) -> int:
    if isinstance(ref, str):
        if ref not in names:
            raise StatisticsError(
                f"Unknown {what} column {ref!r}; the panel's {what} columns are "
                f"{', '.join(names) or '(none)'}."
            )
        return names.index(ref)
    if not isinstance(ref, (int, np.integer)) or not 0 <= ref < len(names):
        raise StatisticsError(
            f"{what.capitalize()} column index {ref!r} is out of range; the panel has {len(names)} "
            f"{what} column(s): {', '.join(names) or '(none)'}."
        )
    return int(ref)


ArgsSpec = Sequence[float] | Callable[[Layout], Sequence[float]]


@dataclass(frozen=True, eq=False)
class UnitStatistic:
    """A statistic computed on each unit.

    Parameters
    ----------
    kernel : njit function
        ``kernel(y, x, groups, args, work, out)`` (see :mod:`simfit.kernels`).
    labels : sequence of str
        One label per output; the full name is ``"<value>.<label>"``.
    value : str or int
        The value column the statistic describes (used for naming; kernels receive all columns).
    args : sequence of float, or callable
        Options passed to the kernel, or a function of the panel :class:`Layout` returning them
        (for statistics that refer to columns by name).
    work : callable or int
        Scratch space needed, as a function of the largest number of observations of a unit.
    hidden : bool
        Hidden outputs feed aggregates (e.g. pooled moments) but are not aggregated by ``across``.
    """

    kernel: Callable
    labels: tuple[str, ...]
    value: ColumnRef = 0
    args: ArgsSpec = ()
    work: Callable[[int], int] | int = 0
    hidden: bool = False

    def __post_init__(self) -> None:
        labels = (self.labels,) if isinstance(self.labels, str) else tuple(self.labels)
        if not labels:
            raise StatisticsError("A unit statistic needs at least one output label.")
        object.__setattr__(self, "labels", labels)

    def names(self, layout: Layout) -> tuple[str, ...]:
        prefix = layout.value_names[layout.value(self.value)]
        return tuple(f"{prefix}.{label}" for label in self.labels)

    def resolve_args(self, layout: Layout) -> np.ndarray:
        raw = self.args(layout) if callable(self.args) else self.args
        return np.asarray(raw, dtype=np.float64).reshape(-1)

    def work_size(self, max_obs: int) -> int:
        return int(self.work(max_obs) if callable(self.work) else self.work)


@dataclass(frozen=True, eq=False)
class Aggregate:
    """A statistic computed from the table of unit statistics of one panel.

    Parameters
    ----------
    kernel : njit function
        ``kernel(unit_stats, columns, args, work, out)``.
    inputs : sequence of str
        Names of the unit statistics it reads, in the order of ``columns``.
    names : sequence of str
        Names of its outputs (final auxiliary statistics).
    args : sequence of float
    """

    kernel: Callable
    inputs: tuple[str, ...]
    names: tuple[str, ...]
    args: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "names", tuple(self.names))
        if not self.names:
            raise StatisticsError("An aggregate needs at least one output name.")


@dataclass(frozen=True, eq=False)
class Across:
    """An aggregation applied column by column to every (visible) unit statistic.

    ``names_of(unit_name)`` gives the output names for one input column; the kernel writes
    ``len(names_of(...))`` outputs per column, column after column.
    """

    kernel: Callable
    label: str
    names_of: Callable[[str], tuple[str, ...]]
    args: tuple[float, ...] = ()

    def expand(self, unit_names: Sequence[str]) -> Aggregate:
        names = tuple(n for u in unit_names for n in self.names_of(u))
        return Aggregate(self.kernel, tuple(unit_names), names, self.args)


@dataclass(frozen=True, eq=False)
class Pooled:
    """A pooled statistic over all observations: per-unit sufficient parts and their combination."""

    unit: UnitStatistic
    combine: Callable[[tuple[str, ...]], Aggregate]


@dataclass(frozen=True, eq=False)
class StatisticsPlan:
    """Statistics resolved for one panel layout: arrays the compiled engine reads.

    Attributes
    ----------
    names : tuple of str
        Final statistic names, length n_stats.
    unit_names : tuple of str
        Columns of the unit-statistics table, length n_unit_columns.
    """

    names: tuple[str, ...]
    unit_names: tuple[str, ...]
    unit_addresses: np.ndarray
    unit_args: np.ndarray
    unit_args_offsets: np.ndarray
    unit_out_offsets: np.ndarray
    unit_work: int
    agg_addresses: np.ndarray
    agg_columns: np.ndarray
    agg_columns_offsets: np.ndarray
    agg_args: np.ndarray
    agg_args_offsets: np.ndarray
    agg_out_offsets: np.ndarray
    unit_kernels: tuple = field(repr=False, default=())
    agg_kernels: tuple = field(repr=False, default=())

    @property
    def n_stats(self) -> int:
        return len(self.names)

    @property
    def n_unit_columns(self) -> int:
        return len(self.unit_names)


def _offsets(sizes: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))]).astype(np.int64)


def _flat(parts: Sequence[np.ndarray], dtype) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.ascontiguousarray(np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in parts]))


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
        from simfit.statistics import aggregate as _agg

        shorthand = {"mean": _agg.across_mean, "sd": _agg.across_sd}
        unit = (unit,) if isinstance(unit, UnitStatistic) else unit
        across = (across,) if isinstance(across, (str, Across)) else across
        extra = (extra,) if isinstance(extra, Aggregate) else extra
        pooled = (pooled,) if isinstance(pooled, Pooled) else pooled
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
        unit_sizes, unit_args, unit_addresses, unit_kernels = [], [], [], []
        work = 0
        for k, u in enumerate(unit_stats):
            names = u.names(layout)
            if u.hidden:
                names = tuple(f"_pooled{k - len(self.unit)}.{n}" for n in names)
                pooled_inputs.append(names)
            else:
                visible.extend(names)
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
                raise StatisticsError(
                    f"Aggregate {a.names[0]!r} reads unknown unit statistic(s) {', '.join(missing)}; "
                    f"unit statistics are {', '.join(visible)}."
                )
            if not a.inputs:
                continue
            agg_cols.append(np.array([index[n] for n in a.inputs], dtype=np.int64))
            agg_args.append(np.asarray(a.args, dtype=np.float64))
            disp, addr = self._compile(a.kernel, AGGREGATE_SIGNATURE, "aggregate")
            agg_kernels.append(disp)
            agg_addresses.append(addr)
            agg_sizes.append(len(a.names))
            names.extend(a.names)
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
        )

    def _compile(self, kernel, signature, role):
        key = (id(kernel), signature)
        if key not in self._compiled:
            self._compiled[key] = compile_kernel(kernel, signature, role)
        return self._compiled[key]

    def names(self, layout: Layout) -> tuple[str, ...]:
        """Final statistic names for a layout."""
        return self.plan(layout, max_obs=1).names

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
