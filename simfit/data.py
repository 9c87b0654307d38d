"""Ragged hierarchical panels in a compressed layout.

A :class:`Panel` stores all observations of all units in one ``values`` array, ordered unit by
unit, with offsets marking where each unit (and, for deeper hierarchies, each group within a unit)
starts. Observation-level covariates sit in a parallel ``covariates`` array; level covariates (one
row per unit, or per group) in ``level_covariates``.

The observed data fix the *design*: number of units, nesting, observations per group and
covariates. Simulated panels reuse that design exactly. A panel without ``values`` is a pure
design, for simulating data that were never observed (:meth:`Panel.balanced`).

Nesting is a chain of offset arrays from units down to observations. For a two-level model
(units -> observations) it is ``(unit_offsets,)``; for units -> groups -> observations it is
``(group_offsets_of_units, observation_offsets_of_groups)``, and so on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simfit.errors import DataError

__all__ = ["Panel"]


def _plain(value):
    """A NumPy scalar as the Python number it holds, for messages (``1``, not ``np.int64(1)``)."""
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True, eq=False)
class Panel:
    """A ragged panel of units (optionally with nested groups) and their observations.

    Parameters
    ----------
    values : ndarray, shape (n_obs, n_values) or None
        Observations, unit by unit (and group by group within units). ``None`` for a pure design.
    nesting : tuple of ndarray of int64
        Offsets chaining units to observations: ``nesting[0]`` has ``n_units + 1`` entries and
        ``nesting[-1]`` ends at ``n_obs``. Each array starts at 0 and is non-decreasing; every unit
        and group has at least one child.
    covariates : ndarray, shape (n_obs, n_covariates), optional
        Observation-level covariates (doses, times, stimuli, regressors).
    level_covariates : tuple of ndarray, optional
        One array per level, shape (n_entities_at_level, k_level): unit covariates first.
    value_names, covariate_names : tuple of str
        Column names; defaults ``y``/``y0, y1, ...`` and ``x0, x1, ...``.
    level_covariate_names : tuple of tuple of str
        Names of each level's covariates.
    unit_ids : ndarray, optional
        Labels of the units (e.g. subject identifiers from a data file).
    """

    values: np.ndarray | None
    nesting: tuple[np.ndarray, ...]
    covariates: np.ndarray | None = None
    level_covariates: tuple[np.ndarray, ...] | None = None
    value_names: tuple[str, ...] | None = None
    covariate_names: tuple[str, ...] | None = None
    level_covariate_names: tuple[tuple[str, ...], ...] | None = None
    unit_ids: np.ndarray | None = None
    _unit_obs_offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        nesting = tuple(_as_offsets(o, k) for k, o in enumerate(self.nesting))
        if not nesting:
            raise DataError("A panel needs at least one offsets array (units -> observations).")
        for k in range(1, len(nesting)):
            if nesting[k].size - 1 != nesting[k - 1][-1]:
                raise DataError(
                    f"Nesting level {k} has {nesting[k].size - 1} entities but level {k - 1} points "
                    f"to {nesting[k - 1][-1]}; each offsets array must end at the number of "
                    "entities of the next level."
                )
        for k, off in enumerate(nesting):
            empty = np.flatnonzero(np.diff(off) == 0)
            if empty.size:
                what = "unit" if k == 0 else f"group (level {k + 1})"
                child = "observations" if k == len(nesting) - 1 else "groups"
                raise DataError(
                    f"{empty.size} {what}(s) have no {child}, first at index {empty[0]}; drop "
                    "empty units and groups before building the panel."
                )
        object.__setattr__(self, "nesting", nesting)
        n_obs = int(nesting[-1][-1])

        values = self.values
        if values is not None:
            values = _as_float_array(values, "values")
            if values.ndim == 1:
                values = values.reshape(-1, 1)
            if values.ndim != 2 or values.shape[0] != n_obs:
                raise DataError(
                    f"values has shape {np.shape(self.values)} but the nesting describes {n_obs} "
                    "observations; pass one row per observation."
                )
            _check_finite(values, "values", nesting)
            values.setflags(write=False)
        object.__setattr__(self, "values", values)

        cov = self.covariates
        if cov is None:
            cov = np.zeros((n_obs, 0))
        cov = _as_float_array(cov, "covariates")
        if cov.ndim == 1:
            cov = cov.reshape(-1, 1)
        if cov.ndim != 2 or cov.shape[0] != n_obs:
            raise DataError(
                f"covariates have shape {np.shape(self.covariates)} but the panel has {n_obs} "
                "observations; pass one row per observation."
            )
        _check_finite(cov, "covariates", nesting)
        cov.setflags(write=False)
        object.__setattr__(self, "covariates", cov)

        n_levels = len(nesting)
        counts = [off.size - 1 for off in nesting]
        level_cov = self.level_covariates
        if level_cov is None:
            level_cov = tuple(np.zeros((n, 0)) for n in counts)
        level_cov = tuple(level_cov)
        if len(level_cov) != n_levels:
            raise DataError(
                f"level_covariates has {len(level_cov)} arrays but the panel has {n_levels} level(s) "
                "above the observations; pass one array per level (use shape (n, 0) for none)."
            )
        checked = []
        for k, (arr, n) in enumerate(zip(level_cov, counts)):
            a = np.zeros((n, 0)) if arr is None else _as_float_array(arr, f"level-{k + 1} covariates")
            if a.ndim == 1:
                a = a.reshape(-1, 1)
            if a.ndim != 2 or a.shape[0] != n:
                what = "unit" if k == 0 else f"level-{k + 1} group"
                raise DataError(
                    f"Covariates of level {k + 1} have shape {np.shape(arr)} but there are {n} "
                    f"{what}s; pass one row per {what}."
                )
            _check_finite(a, f"level-{k + 1} covariates", None)
            a.setflags(write=False)
            checked.append(a)
        object.__setattr__(self, "level_covariates", tuple(checked))

        n_values = (len(self.value_names) if self.value_names else 1) if values is None else values.shape[1]
        names = self.value_names or (("y",) if n_values == 1 else tuple(f"y{j}" for j in range(n_values)))
        object.__setattr__(self, "value_names", _check_names(names, n_values, "value_names"))
        cnames = self.covariate_names or tuple(f"x{j}" for j in range(cov.shape[1]))
        object.__setattr__(self, "covariate_names", _check_names(cnames, cov.shape[1], "covariate_names"))
        lnames = self.level_covariate_names or tuple(
            tuple(f"z{k + 1}_{j}" for j in range(a.shape[1])) for k, a in enumerate(checked)
        )
        if len(lnames) != n_levels:
            raise DataError(f"level_covariate_names needs one tuple per level ({n_levels}).")
        object.__setattr__(
            self,
            "level_covariate_names",
            tuple(_check_names(t, a.shape[1], f"level {k + 1} covariate names") for k, (t, a) in enumerate(zip(lnames, checked))),
        )
        object.__setattr__(self, "_unit_obs_offsets", np.ascontiguousarray(self._unit_obs_offsets_of(nesting)))
        if self.unit_ids is not None:
            ids = np.asarray(self.unit_ids)
            if ids.shape != (self.n_units,):
                raise DataError(f"unit_ids has shape {ids.shape}; expected ({self.n_units},).")
            object.__setattr__(self, "unit_ids", ids)

    # ------------------------------------------------------------------ sizes

    @property
    def n_units(self) -> int:
        return int(self.nesting[0].size - 1)

    @property
    def n_obs(self) -> int:
        return int(self.nesting[-1][-1])

    @property
    def n_levels(self) -> int:
        """Number of levels above the observations (1 for units -> observations)."""
        return len(self.nesting)

    @property
    def n_values(self) -> int:
        return len(self.value_names)

    @property
    def unit_offsets(self) -> np.ndarray:
        """Observation offsets of each unit, shape (n_units + 1,)."""
        return self._unit_obs_offsets

    @property
    def obs_per_unit(self) -> np.ndarray:
        return np.diff(self._unit_obs_offsets)

    @property
    def has_values(self) -> bool:
        return self.values is not None

    def level_sizes(self) -> tuple[int, ...]:
        """Number of entities at each level, units first."""
        return tuple(int(o.size - 1) for o in self.nesting)

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_units(
        cls,
        values: Sequence[np.ndarray],
        covariates: Sequence[np.ndarray] | None = None,
        unit_covariates: np.ndarray | None = None,
        groups: Sequence[Sequence[int]] | None = None,
        value_names: Sequence[str] | None = None,
        covariate_names: Sequence[str] | None = None,
        unit_covariate_names: Sequence[str] | None = None,
        unit_ids: Sequence | None = None,
    ) -> Panel:
        """Build a panel from one array per unit.

        Parameters
        ----------
        values : sequence of ndarray
            ``values[i]`` has shape (n_i,) or (n_i, n_values).
        covariates : sequence of ndarray, optional
            ``covariates[i]`` has shape (n_i,) or (n_i, n_covariates).
        unit_covariates : ndarray, shape (n_units, k), optional
        groups : sequence of sequence of int, optional
            For three-level data, ``groups[i]`` lists the number of observations in each group of
            unit ``i`` (summing to n_i).
        """
        units = [_as_float_array(v, f"values of unit {i}") for i, v in enumerate(values)]
        if not units:
            raise DataError("values is empty; pass at least one unit.")
        sizes = np.array([u.shape[0] if u.ndim else 0 for u in units])
        empty = np.flatnonzero(sizes == 0)
        if empty.size:
            raise DataError(f"Unit {empty[0]} has no observations; drop empty units.")
        widths = {1 if u.ndim == 1 else u.shape[1] for u in units}
        if len(widths) != 1:
            raise DataError(f"Units have different numbers of value columns: {sorted(widths)}.")
        stacked = np.concatenate([u.reshape(u.shape[0], -1) for u in units], axis=0)
        cov = None
        if covariates is not None:
            if len(covariates) != len(units):
                raise DataError(
                    f"covariates has {len(covariates)} entries but values has {len(units)} units; "
                    "pass one covariate array per unit."
                )
            parts = []
            for i, (c, n) in enumerate(zip(covariates, sizes)):
                c = _as_float_array(c, f"covariates of unit {i}")
                c = c.reshape(c.shape[0], -1) if c.ndim else c.reshape(0, 1)
                if c.shape[0] != n:
                    raise DataError(
                        f"Unit {i}: {c.shape[0]} covariate rows for {n} observations; covariates "
                        "need one row per observation."
                    )
                parts.append(c)
            widths = {c.shape[1] for c in parts}
            if len(widths) != 1:
                raise DataError(f"Units have different numbers of covariate columns: {sorted(widths)}.")
            cov = np.concatenate(parts, axis=0)
        unit_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        if groups is None:
            nesting = (unit_offsets,)
        else:
            if len(groups) != len(units):
                raise DataError(f"groups has {len(groups)} entries for {len(units)} units.")
            group_sizes = []
            per_unit = []
            for i, (g, n) in enumerate(zip(groups, sizes)):
                g = [int(s) for s in g]
                if sum(g) != n:
                    raise DataError(
                        f"Unit {i}: group sizes {g} add up to {sum(g)} but the unit has {n} "
                        "observations."
                    )
                group_sizes.extend(g)
                per_unit.append(len(g))
            nesting = (
                np.concatenate([[0], np.cumsum(per_unit)]).astype(np.int64),
                np.concatenate([[0], np.cumsum(group_sizes)]).astype(np.int64),
            )
        level_cov = None
        level_names = None
        if unit_covariates is not None:
            uc = _as_float_array(unit_covariates, "unit_covariates")
            uc = uc.reshape(-1, 1) if uc.ndim == 1 else uc
            if uc.shape[0] != len(units):
                raise DataError(
                    f"unit_covariates has {uc.shape[0]} rows for {len(units)} units; pass one row per unit."
                )
            level_cov = (uc,) + tuple(np.zeros((o.size - 1, 0)) for o in nesting[1:])
            if unit_covariate_names is not None:
                level_names = (tuple(unit_covariate_names),) + tuple(() for _ in nesting[1:])
        return cls(
            values=stacked,
            nesting=nesting,
            covariates=cov,
            level_covariates=level_cov,
            value_names=tuple(value_names) if value_names else None,
            covariate_names=tuple(covariate_names) if covariate_names else None,
            level_covariate_names=level_names,
            unit_ids=None if unit_ids is None else np.asarray(unit_ids),
        )

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        unit: str,
        values: Sequence[str] | str | Mapping[str, str],
        covariates: Sequence[str] | Mapping[str, str] = (),
        unit_covariates: Sequence[str] | Mapping[str, str] = (),
        group: str | None = None,
    ) -> Panel:
        """Build a panel from a long DataFrame with one row per observation.

        Rows are grouped by ``unit`` in order of first appearance, and by ``group`` within units
        (groups in order of first appearance); the order of rows within a unit (or group) is kept,
        which matters for time series.

        Parameters
        ----------
        frame : DataFrame
        unit : str
            Column identifying the unit of each row.
        values : str, sequence of str, or mapping
            Observed value column(s). A mapping ``{model_name: column}`` reads a column under the
            name the model uses (``{"concentration": "Conc"}``); so do ``covariates`` and
            ``unit_covariates``.
        covariates : sequence of str, or mapping
            Observation-level covariate columns.
        unit_covariates : sequence of str, or mapping
            Columns constant within each unit, used as unit-level covariates.
        group : str, optional
            Column identifying groups nested in units (three-level data).
        """
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"Expected a pandas DataFrame, got {type(frame).__name__}.")
        renames: dict[str, str] = {}

        def mapped(spec):
            if isinstance(spec, Mapping):
                for name, column in spec.items():
                    if not isinstance(column, str):
                        raise DataError(f"Column mapping {name!r} = {column!r}: give the data's column name as a string.")
                    if column in renames and renames[column] != name:
                        raise DataError(f"Column {column!r} is mapped to both {renames[column]!r} and {name!r}.")
                    renames[column] = name
                return list(spec)
            return [spec] if isinstance(spec, str) else list(spec)

        values, covariates, unit_covariates = mapped(values), mapped(covariates), mapped(unit_covariates)
        if renames:
            missing = [c for c in renames if c not in frame.columns]
            if missing:
                raise DataError(
                    f"Column(s) {', '.join(map(repr, missing))} not found in the data; available "
                    f"columns: {', '.join(map(str, frame.columns))}."
                )
            clash = [n for c, n in renames.items() if n in frame.columns and n not in renames and n != c]
            if clash:
                raise DataError(f"The data already have column(s) {', '.join(map(repr, clash))}, the name(s) a mapping gives another column.")
            frame = frame.rename(columns=renames)
        file_name = {name: column for column, name in renames.items()}

        def column_text(name: str) -> str:  # the file's column, and the model's name for it
            return f"{file_name[name]!r} (the model's {name!r})" if name in file_name else repr(name)
        needed = [unit, *values, *covariates, *unit_covariates] + ([group] if group else [])
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(
                f"Column(s) {', '.join(map(repr, missing))} not found in the data; available "
                f"columns: {', '.join(map(str, frame.columns))}."
            )
        if frame.empty:
            raise DataError("The data frame has no rows.")
        for c in [*values, *covariates, *unit_covariates]:
            if not pd.api.types.is_numeric_dtype(frame[c]):
                bad = frame[c][pd.to_numeric(frame[c], errors="coerce").isna() & frame[c].notna()]
                example = bad.iloc[0] if len(bad) else frame[c].iloc[0]
                raise DataError(
                    f"Column {column_text(c)} is not numeric (e.g. {_plain(example)!r} in row {_plain(bad.index[0]) if len(bad) else 0}); "
                    "convert or drop non-numeric entries."
                )
        for key in [unit] + ([group] if group else []):
            if frame[key].isna().any():
                raise DataError(f"Column {key!r} has missing entries; every row needs a {key}.")
        keys = [unit] if group is None else [unit, group]
        codes = pd.MultiIndex.from_frame(frame[keys]).factorize()[0] if group else None
        unit_codes, unit_labels = pd.factorize(frame[unit], sort=False)
        order = np.argsort(unit_codes if codes is None else unit_codes * (codes.max() + 1) + codes, kind="stable")
        ordered = frame.iloc[order]
        u_sorted = unit_codes[order]
        n_units = unit_labels.size
        unit_offsets = np.searchsorted(u_sorted, np.arange(n_units + 1)).astype(np.int64)
        if group is None:
            nesting = (unit_offsets,)
        else:
            g_sorted = codes[order]
            starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
            obs_of_groups = np.r_[starts, len(g_sorted)].astype(np.int64)
            groups_of_units = np.searchsorted(starts, unit_offsets).astype(np.int64)
            nesting = (groups_of_units, obs_of_groups)
        value_arr = ordered[values].to_numpy(dtype=float)
        bad = ~np.isfinite(value_arr)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(
                f"Column {column_text(values[c])} has {int(bad[:, c].sum())} missing or infinite value(s), first "
                f"for unit {_plain(unit_labels[u_sorted[r]])!r}; drop or impute them before fitting."
            )
        uc = None
        if unit_covariates:
            uc_frame = ordered[list(unit_covariates)]
            first = uc_frame.iloc[unit_offsets[:-1]].to_numpy(dtype=float)
            varying = np.abs(uc_frame.to_numpy(dtype=float) - np.repeat(first, np.diff(unit_offsets), axis=0)) > 0
            if varying.any():
                r, c = np.argwhere(varying)[0]
                raise DataError(
                    f"Unit covariate {column_text(unit_covariates[c])} varies within unit "
                    f"{_plain(unit_labels[u_sorted[r]])!r}; unit covariates must be constant within a unit."
                )
            uc = first
        level_cov = None
        level_names = None
        if uc is not None:
            level_cov = (uc,) + tuple(np.zeros((o.size - 1, 0)) for o in nesting[1:])
            level_names = (tuple(unit_covariates),) + tuple(() for _ in nesting[1:])
        return cls(
            values=value_arr,
            nesting=nesting,
            covariates=ordered[list(covariates)].to_numpy(dtype=float) if covariates else None,
            level_covariates=level_cov,
            value_names=tuple(values),
            covariate_names=tuple(covariates) if covariates else None,
            level_covariate_names=level_names,
            unit_ids=np.asarray(unit_labels),
        )

    @classmethod
    def balanced(
        cls,
        n_units: int,
        n_obs: int,
        n_groups: int | None = None,
        covariates: np.ndarray | None = None,
        unit_covariates: np.ndarray | None = None,
        value_names: Sequence[str] = ("y",),
        covariate_names: Sequence[str] | None = None,
    ) -> Panel:
        """A balanced design without values: ``n_units`` units of ``n_obs`` observations each
        (or ``n_groups`` groups of ``n_obs`` observations per unit)."""
        for name, v in (("n_units", n_units), ("n_obs", n_obs), ("n_groups", n_groups)):
            if v is not None and (int(v) != v or v < 1):
                raise DataError(f"{name} must be a positive integer, got {v!r}.")
        if n_groups is None:
            nesting = (np.arange(n_units + 1, dtype=np.int64) * n_obs,)
        else:
            nesting = (
                np.arange(n_units + 1, dtype=np.int64) * n_groups,
                np.arange(n_units * n_groups + 1, dtype=np.int64) * n_obs,
            )
        level_cov = None
        if unit_covariates is not None:
            level_cov = (np.asarray(unit_covariates, dtype=float),) + tuple(np.zeros((o.size - 1, 0)) for o in nesting[1:])
        return cls(
            values=None,
            nesting=nesting,
            covariates=covariates,
            level_covariates=level_cov,
            value_names=tuple(value_names),
            covariate_names=tuple(covariate_names) if covariate_names else None,
        )

    def with_values(self, values: np.ndarray, value_names: Sequence[str] | None = None) -> Panel:
        """The same design with new values, shape (n_obs, n_values)."""
        return Panel(
            values=values,
            nesting=self.nesting,
            covariates=self.covariates,
            level_covariates=self.level_covariates,
            value_names=tuple(value_names) if value_names else self.value_names,
            covariate_names=self.covariate_names,
            level_covariate_names=self.level_covariate_names,
            unit_ids=self.unit_ids,
        )

    def design(self) -> Panel:
        """The design alone (values dropped)."""
        return Panel(
            values=None,
            nesting=self.nesting,
            covariates=self.covariates,
            level_covariates=self.level_covariates,
            value_names=self.value_names,
            covariate_names=self.covariate_names,
            level_covariate_names=self.level_covariate_names,
            unit_ids=self.unit_ids,
        )

    def unit(self, i: int) -> np.ndarray:
        """Values of unit ``i``, shape (n_i, n_values)."""
        if self.values is None:
            raise DataError("This panel is a design without values.")
        if not 0 <= i < self.n_units:
            raise DataError(f"Unit index {i} is out of range; the panel has {self.n_units} units.")
        lo, hi = self._unit_obs_offsets[i], self._unit_obs_offsets[i + 1]
        return self.values[lo:hi]

    def to_frame(self) -> pd.DataFrame:
        """Long DataFrame: a ``unit`` column (and ``group`` for nested panels), values and
        covariates."""
        unit_index = np.repeat(np.arange(self.n_units), self.obs_per_unit)
        labels = self.unit_ids[unit_index] if self.unit_ids is not None else unit_index
        data = {"unit": labels}
        if self.n_levels > 1:
            innermost = self.nesting[-1]
            data["group"] = np.repeat(np.arange(innermost.size - 1), np.diff(innermost))
        if self.values is not None:
            for j, name in enumerate(self.value_names):
                data[name] = self.values[:, j]
        for j, name in enumerate(self.covariate_names):
            data[name] = self.covariates[:, j]
        for names, arr, off in zip(self.level_covariate_names, self.level_covariates, self._entity_obs_offsets()):
            for j, name in enumerate(names):
                data[name] = np.repeat(arr[:, j], np.diff(off))
        return pd.DataFrame(data)

    def _entity_obs_offsets(self) -> list[np.ndarray]:
        """Observation offsets of the entities of each level."""
        out = []
        for k in range(self.n_levels):
            off = self.nesting[k]
            for deeper in self.nesting[k + 1 :]:
                off = deeper[off]
            out.append(off)
        return out

    @staticmethod
    def _unit_obs_offsets_of(nesting: tuple[np.ndarray, ...]) -> np.ndarray:
        off = nesting[0]
        for deeper in nesting[1:]:
            off = deeper[off]
        return off

    def __repr__(self) -> str:
        kind = "design" if self.values is None else "panel"
        sizes = " -> ".join(str(n) for n in self.level_sizes())
        return (
            f"<Panel ({kind}): {sizes} -> {self.n_obs} observations; values {list(self.value_names)}, "
            f"covariates {list(self.covariate_names)}>"
        )


def _as_float_array(values, what: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64, order="C", copy=True)
    except (TypeError, ValueError):
        raise DataError(f"{what} must be numeric; convert or drop non-numeric entries.") from None


def _as_offsets(off, k: int) -> np.ndarray:
    arr = np.asarray(off)
    if arr.ndim != 1 or arr.size < 2 or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(
            f"nesting[{k}] must be a 1-D integer array of offsets with at least two entries, got "
            f"{arr.dtype} array of shape {arr.shape}."
        )
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    if arr[0] != 0 or np.any(np.diff(arr) < 0):
        raise DataError(f"nesting[{k}] must start at 0 and be non-decreasing.")
    arr.setflags(write=False)
    return arr


def _check_finite(arr: np.ndarray, what: str, nesting: tuple[np.ndarray, ...] | None) -> None:
    if arr.size == 0 or np.isfinite(arr).all():
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        if nesting is not None:
            unit = int(np.searchsorted(Panel._unit_obs_offsets_of(nesting), r, side="right") - 1)
            where = f" (unit {unit}, row {r}, column {c})"
        else:
            where = f" (row {r}, column {c})"
        raise DataError(
            f"{what} contain {int(bad.sum())} NaN or infinite entr{'y' if bad.sum() == 1 else 'ies'}, "
            f"first {arr[r, c]}{where}; drop or impute them."
        )


def _check_names(names, n: int, what: str) -> tuple[str, ...]:
    names = tuple(str(x) for x in names)
    if len(names) != n:
        raise DataError(f"{what} has {len(names)} names for {n} columns.")
    if len(set(names)) != len(names):
        raise DataError(f"{what} contains duplicates: {names}.")
    return names
