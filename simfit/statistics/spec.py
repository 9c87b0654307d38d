"""Composing auxiliary statistics: unit statistics, aggregations across units, pooled statistics.

Statistics are computed in two compiled stages. A *unit statistic* reduces the observations of one
unit to a few numbers (its mean, its quantiles, its AR(1) coefficient, ...). An *aggregate* reduces
the table of unit statistics (units x unit statistics) of one panel to the final auxiliary
statistics (the mean across units of the unit means, their standard deviation, a correlation
between two unit statistics, pooled moments, ...). The same compiled code runs on observed and on
simulated panels.

:class:`simfit.statistics.collection.Statistics` puts them together; every final statistic has a name, e.g. ``mean:y.mean``
(mean across units of each unit's mean of ``y``), ``sd:y.acf1``, ``q90:y.var``,
``corr:y.mean,y.var`` or ``pooled:y.var``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from simfit.errors import StatisticsError
from simfit.kernels import AGGREGATE_SIGNATURE, UNIT_STATISTIC_SIGNATURE, call_kernel

__all__ = ["Layout", "UnitStatistic", "Aggregate", "Across", "Pooled", "StatisticsPlan"]

ColumnRef = str | int


@dataclass(frozen=True)
class Layout:
    """Column names and shape of a panel, used to resolve statistics' column references (and,
    for statistics with one output per unit, their number and names).

    Attributes
    ----------
    value_names, covariate_names : tuple of str
    n_units : int
        Units of the panel (0 where unknown).
    min_obs, max_obs : int
        Fewest and most observations of a unit (0 where unknown).
    unit_ids : tuple
        Unit labels (empty where the panel has none).
    """

    value_names: tuple[str, ...]
    covariate_names: tuple[str, ...] = ()
    n_units: int = 0
    min_obs: int = 0
    max_obs: int = 0
    unit_ids: tuple = ()

    @classmethod
    def of(cls, panel, value_names: Sequence[str] | None = None) -> Layout:
        """The layout of a :class:`~simfit.data.Panel` (``value_names`` for a design without values)."""
        counts = np.asarray(panel.obs_per_unit)
        ids = () if panel.unit_ids is None else tuple(np.asarray(panel.unit_ids).tolist())
        return cls(
            tuple(panel.value_names if value_names is None else value_names),
            tuple(panel.covariate_names),
            n_units=int(panel.n_units),
            min_obs=int(counts.min()) if counts.size else 0,
            max_obs=int(counts.max()) if counts.size else 0,
            unit_ids=ids,
        )

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
    flags : sequence of str
        Labels of outputs that flag the unit's own fit (1 converged, 0 not; auxiliary models):
        not aggregated, counted and reported by fits (:func:`convergence_flags`).
    calibrate : callable, optional
        For statistics that take something from the observed data before any simulation (an
        auxiliary fit's centre): ``calibrate(table)``, with ``table`` this statistic's outputs on
        the observed units (n_units, n_outputs), returns the calibrated statistic (same labels)
        and what was done, in words. See :meth:`simfit.statistics.Statistics.calibrated`.
    """

    kernel: Callable
    labels: tuple[str, ...] | Callable[[Layout], Sequence[str]]
    value: ColumnRef = 0
    args: ArgsSpec = ()
    work: Callable[[int], int] | int = 0
    hidden: bool = False
    flags: tuple[str, ...] = ()
    calibrate: Callable[[np.ndarray], tuple[UnitStatistic, str]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", tuple(self.flags))
        if callable(self.labels):
            return
        labels = (self.labels,) if isinstance(self.labels, str) else tuple(self.labels)
        if not labels:
            raise StatisticsError("A unit statistic needs at least one output label.")
        object.__setattr__(self, "labels", labels)

    def names(self, layout: Layout) -> tuple[str, ...]:
        prefix = layout.value_names[layout.value(self.value)]
        labels = tuple(self.labels(layout)) if callable(self.labels) else self.labels
        if not labels:
            raise StatisticsError("A unit statistic needs at least one output label.")
        return tuple(f"{prefix}.{label}" for label in labels)

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
    names : sequence of str, or callable
        Names of its outputs (final auxiliary statistics), exactly one per value the kernel
        writes; or a function of the panel :class:`Layout` returning them (for one output per
        unit).
    args : sequence of float
    """

    kernel: Callable
    inputs: tuple[str, ...]
    names: tuple[str, ...] | Callable[[Layout], Sequence[str]]
    args: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not callable(self.names):
            object.__setattr__(self, "names", (self.names,) if isinstance(self.names, str) else tuple(self.names))
            if not self.names:
                raise StatisticsError("An aggregate needs at least one output name.")

    def output_names(self, layout: Layout) -> tuple[str, ...]:
        names = tuple(self.names(layout)) if callable(self.names) else self.names
        if not names:
            raise StatisticsError("An aggregate needs at least one output name.")
        return names


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
    flag_names: tuple[str, ...] = ()

    @property
    def n_stats(self) -> int:
        return len(self.names)

    def check_outputs(self, y: np.ndarray, x: np.ndarray, groups: np.ndarray, n_units: int, where: str) -> None:
        """Run every kernel once from Python on one unit, with its outputs in guarded buffers.

        A kernel writing more values than its declared names (a wrong label list, fewer names
        than an aggregate writes) is reported here, at set-up, instead of corrupting memory in
        the compiled engine.

        Parameters
        ----------
        y : ndarray, shape (n, n_values)
        x : ndarray, shape (n, n_covariates)
        groups : ndarray of int64
            Group offsets of the unit, ``[0, n]`` without groups.
        n_units : int
            Rows of the table the aggregates are probed on (the unit's row repeated).
        where : str
            What the unit is, for messages (e.g. ``"the first unit simulated at the start values"``).
        """
        guard = 8
        work = np.zeros(max(self.unit_work, 4 * y.shape[0] + 64) + guard)
        row = np.full(self.n_unit_columns, np.nan)
        y, x = np.ascontiguousarray(y, dtype=np.float64), np.ascontiguousarray(x, dtype=np.float64)
        groups = np.ascontiguousarray(groups, dtype=np.int64)
        for k in range(len(self.unit_kernels)):
            lo, hi = int(self.unit_out_offsets[k]), int(self.unit_out_offsets[k + 1])
            args = self.unit_args[self.unit_args_offsets[k] : self.unit_args_offsets[k + 1]]
            buf = np.full(hi - lo + 2 * guard, _SENTINEL)
            try:
                call_kernel(
                    UNIT_STATISTIC_SIGNATURE, self.unit_addresses[k],
                    y, x, groups, args, work[: work.size - guard], buf[guard : guard + hi - lo],
                )
            except IndexError as exc:  # a bounds-checked kernel writing past its outputs (or reading past its inputs)
                raise StatisticsError(_past_outputs("unit statistic", self.unit_names[lo:hi], "labels", where)) from exc
            except Exception as exc:
                raise StatisticsError(
                    f"Unit statistic {', '.join(self.unit_names[lo:hi])} raised {type(exc).__name__}: {exc} on "
                    f"{where}; " + _raise_hint(exc)
                ) from exc
            _check_guard(buf, guard, hi - lo, self.unit_names[lo:hi], "unit statistic", "labels")
            row[lo:hi] = buf[guard : guard + hi - lo]
        table = np.ascontiguousarray(np.repeat(row[None], max(int(n_units), 2), axis=0))
        agg_work = np.zeros(max(table.shape[0], table.shape[1]) + 16)
        for k in range(len(self.agg_kernels)):
            lo, hi = int(self.agg_out_offsets[k]), int(self.agg_out_offsets[k + 1])
            buf = np.full(hi - lo + 2 * guard, _SENTINEL)
            try:
                call_kernel(
                    AGGREGATE_SIGNATURE, self.agg_addresses[k],
                    table,
                    self.agg_columns[self.agg_columns_offsets[k] : self.agg_columns_offsets[k + 1]],
                    self.agg_args[self.agg_args_offsets[k] : self.agg_args_offsets[k + 1]],
                    agg_work,
                    buf[guard : guard + hi - lo],
                )
            except IndexError as exc:
                raise StatisticsError(_past_outputs("aggregate", self.names[lo:hi], "names", where)) from exc
            except Exception as exc:
                raise StatisticsError(
                    f"Aggregate {', '.join(self.names[lo:hi])} raised {type(exc).__name__}: {exc} on {where}."
                ) from exc
            _check_guard(buf, guard, hi - lo, self.names[lo:hi], "aggregate", "names")

    @property
    def n_unit_columns(self) -> int:
        return len(self.unit_names)


def _past_outputs(role: str, names: Sequence[str], what: str, where: str) -> str:
    n = len(names)
    return (
        f"The {role} {', '.join(names)} indexes past its arrays on {where}: it declares {n} {what}; give exactly one "
        f"{what[:-1]} per value the kernel writes (and write out[0..{n - 1}] only), and read inside its inputs."
    )


def _raise_hint(exc: Exception) -> str:
    if isinstance(exc, IndexError):
        return "the kernel indexes outside its arrays: write out[0..n-1] only, for one value per declared name."
    return "make the kernel return NaN where it is undefined instead of raising."


# Fills the guard cells around probed outputs: a value no kernel computes by accident (NaN would
# not do, kernels write NaN for undefined statistics).
_SENTINEL = -7.346913579135791e307


def _check_guard(buf: np.ndarray, guard: int, n: int, names: Sequence[str], role: str, what: str) -> None:
    if (buf[:guard] != _SENTINEL).any() or (buf[guard + n :] != _SENTINEL).any():
        after = buf[guard + n :]
        extra = int(np.flatnonzero(after != _SENTINEL).max()) + 1 if (after != _SENTINEL).any() else 0
        raise StatisticsError(
            f"The {role} {', '.join(names)} writes "
            + (f"at least {n + extra} values but declares {n} {what}" if extra else "before its first output")
            + f"; give exactly one {what[:-1]} per value the kernel writes (and write out[0..{n - 1}] only)."
        )
    unset = np.flatnonzero(buf[guard : guard + n] == _SENTINEL)
    if unset.size:
        raise StatisticsError(
            f"The {role} {', '.join(names)} declares {n} {what} but leaves {', '.join(names[k] for k in unset)} unwritten; "
            f"give exactly one {what[:-1]} per value the kernel writes (write NaN where a value is undefined)."
        )


def _offsets(sizes: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, dtype=np.int64))]).astype(np.int64)


def _flat(parts: Sequence[np.ndarray], dtype) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.ascontiguousarray(np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in parts]))


def _probs(probs: Sequence[float], what: str) -> tuple[float, ...]:
    ps = tuple(float(p) for p in np.atleast_1d(probs))
    if not ps or any(not 0.0 <= p <= 1.0 for p in ps):
        raise StatisticsError(f"{what}: probabilities must lie in [0, 1], got {probs!r}.")
    return ps


def _pct(p: float) -> str:
    s = f"{100 * p:g}".replace(".", "_")
    return f"q{s}"
