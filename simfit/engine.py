"""The simulation engine: simulate synthetic panels and their auxiliary statistics.

:class:`Simulator` is a factory in the manner of respy's ``get_simulate_func``: it validates the
model, the design and the statistics once, compiles and checks the user kernels, lays out every
array the compiled code needs, and then offers fast methods whose hot loops run only compiled
kernels:

* :meth:`Simulator.statistics` -- the fused path: an ``(n_sims, n_stats)`` array, each unit simulated
  into per-thread scratch and reduced at once (memory O(units x statistics));
* :meth:`Simulator.simulate` -- whole simulated panels, for inspection and for generating
  "observed" data;
* :meth:`Simulator.observed` -- the same statistics, same compiled code, on observed data.

Random numbers come from streams keyed by ``(seed, simulation, level, entity)``
(:mod:`simfit.random`): the same seed gives bit-identical results at any number of threads and
for any chunking, and simulation ``s`` is the same whether it is computed alone or among others.

:func:`simulate`, :func:`simulate_statistics` and :func:`observed_statistics` are one-call
conveniences around :class:`Simulator`.
"""

from __future__ import annotations

import linecache
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import pandas as pd

from simfit import _engine
from simfit.data import Panel
from simfit.errors import ArgumentError, DataError, KernelError, ModelError, SimulationError, StatisticsError
from simfit.kernels import (
    AGGREGATE_SIGNATURE,
    DRAW_SIGNATURE,
    SIMULATE_SIGNATURE,
    UNIT_STATISTIC_SIGNATURE,
    call_kernel,
    compile_kernel,
)
from simfit.launch import interruptible, launch, running
from simfit.model import Model
from simfit.random import STREAM_SIZE, seed_stream
from simfit.resources import require_memory
from simfit.statistics.collection import Statistics
from simfit.statistics.spec import Layout, StatisticsPlan, _raise_hint

__all__ = [
    "Simulator",
    "SimulationResult",
    "simulate",
    "simulate_statistics",
    "observed_statistics",
    "panel_statistics",
    "panel_unit_statistics",
]

# Unit-statistics tables (and their status codes) of one launch are kept below this size by
# simulating in blocks of panels: on 10^5 units a block is still ~20 panels, enough to keep every
# core busy, and a fit's peak memory stays near the data's own.
_TABLE_BYTES = 64 * 2**20
# Aim for at least this many observations per parallel chunk, so per-chunk set-up is negligible.
_OBS_PER_CHUNK = 4096
_MAX_SEED = 2**63 - 1
_MAX_SIMULATION = 2**56

ParamsLike = Sequence[float] | Mapping[str, float] | np.ndarray


def _check_seed(seed, what: str = "seed") -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= _MAX_SEED:
        raise ArgumentError(f"{what} must be an integer in [0, 2**63 - 1], got {seed!r}.")
    return int(seed)


def _check_first_sim(first_sim, n_sims: int) -> int:
    first_sim = _check_seed(first_sim, "first_sim")
    if first_sim + n_sims > _MAX_SIMULATION:
        raise ArgumentError(f"Simulation indices must stay below 2**56; got first_sim={first_sim}, n_sims={n_sims}.")
    return first_sim


def _check_count(n, what: str) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ArgumentError(f"{what} must be a positive integer, got {n!r}.")
    return int(n)


@dataclass(frozen=True)
class _DesignArrays:
    nest_flat: np.ndarray
    nest_start: np.ndarray
    lcov_flat: np.ndarray
    lcov_start: np.ndarray
    lcov_ncol: np.ndarray
    x: np.ndarray
    max_entities: np.ndarray  # per level, most entities of that level in one unit
    max_obs: int
    entity_start: np.ndarray  # (n_levels, n_units + 1): first entity of each level in each unit

    @classmethod
    def from_panel(cls, panel: Panel) -> _DesignArrays:
        nesting = panel.nesting
        n_units = panel.n_units
        nest_flat = np.ascontiguousarray(np.concatenate(nesting), dtype=np.int64)
        nest_start = np.concatenate([[0], np.cumsum([o.size for o in nesting])]).astype(np.int64)
        entity_start = np.empty((len(nesting), n_units + 1), dtype=np.int64)
        entity_start[0] = np.arange(n_units + 1)
        for level in range(1, len(nesting)):
            entity_start[level] = nesting[level - 1][entity_start[level - 1]]
        max_entities = np.diff(entity_start, axis=1).max(axis=1).astype(np.int64)
        lcov = panel.level_covariates
        lcov_flat = np.ascontiguousarray(np.concatenate([a.reshape(-1) for a in lcov] + [np.zeros(1)]))
        lcov_start = np.concatenate([[0], np.cumsum([a.size for a in lcov])[:-1]]).astype(np.int64)
        lcov_ncol = np.array([a.shape[1] for a in lcov], dtype=np.int64)
        x = np.require(panel.covariates, dtype=np.float64, requirements=["C", "W"])
        return cls(
            nest_flat=nest_flat,
            nest_start=nest_start,
            lcov_flat=lcov_flat,
            lcov_start=lcov_start,
            lcov_ncol=lcov_ncol,
            x=x,
            max_entities=max_entities,
            max_obs=int(panel.obs_per_unit.max()),
            entity_start=np.ascontiguousarray(entity_start),
        )


@dataclass(frozen=True)
class _ModelArrays:
    level_addr: np.ndarray
    level_dim: np.ndarray
    level_args: np.ndarray
    level_args_start: np.ndarray
    obs_addr: np.ndarray
    obs_args: np.ndarray
    kernels: tuple


@dataclass(frozen=True)
class SimulationResult:
    """Simulated panels sharing one design.

    Attributes
    ----------
    values : ndarray, shape (n_sims, n_obs, n_values)
        Simulated observations.
    params : dict of str -> ndarray
        For each level, the simulated entity parameters, shape (n_sims, n_entities, n_level_params).
    psi : ndarray, shape (n_params,)
        Population parameters used (natural scale).
    seed : int
    design : Panel
    model : Model
    """

    values: np.ndarray
    params: dict
    psi: np.ndarray
    seed: int
    design: Panel
    model: Model

    @property
    def n_sims(self) -> int:
        return self.values.shape[0]

    def panel(self, s: int = 0) -> Panel:
        """Simulated panel ``s`` as a :class:`~simfit.data.Panel` (e.g. to use as observed data)."""
        return self.design.with_values(self.values[s], self.model.value_names)

    def level_params(self, level: str, s: int = 0) -> pd.DataFrame:
        """Entity parameters of one level in simulation ``s`` as a DataFrame."""
        names = {lv.name: lv for lv in self.model.levels}
        if level not in names:
            raise ModelError(f"Unknown level {level!r}; the model's levels are {', '.join(names)}.")
        return pd.DataFrame(self.params[level][s], columns=list(names[level].params))

    def to_frame(self) -> pd.DataFrame:
        """Long DataFrame of all simulated panels with a ``sim`` column and the parameters of each
        observation's unit (and group)."""
        frames = []
        for s in range(self.n_sims):
            f = self.panel(s).to_frame()
            f.insert(0, "sim", s)
            offsets = self.design._entity_obs_offsets()
            for lv, off in zip(self.model.levels, offsets):
                reps = np.diff(off)
                for j, name in enumerate(lv.params):
                    f[f"{lv.name}.{name}"] = np.repeat(self.params[lv.name][s, :, j], reps)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)


def _check_declared_covariates(model: Model, design: Panel) -> None:
    """The covariates a model's kernels declare they read are the design's first columns, in order."""
    wanted = [("observation kernel", model.observations.covariates, design.covariate_names, "Observations(covariates=...)",
               "[data] covariates, or Panel.from_frame(covariates=[...])")]
    for k, lv in enumerate(model.levels):
        names = design.level_covariate_names[k] if design.level_covariate_names else ()
        wanted.append((f"draw kernel of level {lv.name!r}", lv.covariates, names, f"Level({lv.name!r}, covariates=...)",
                       "[data] unit_covariates, or Panel.from_frame(unit_covariates=[...])"))
    for role, declared, present, where, fix in wanted:
        if not declared:
            continue
        missing = [c for c in declared if c not in present]
        if missing:
            raise DataError(
                f"The {role} reads covariate(s) {', '.join(map(repr, missing))} (declared in {where}) but the data have "
                f"{', '.join(map(repr, present)) or 'no such covariates'}; add the column(s) ({fix}) or map the file's "
                "names to the model's."
            )
        if tuple(present[: len(declared)]) != tuple(declared):
            raise DataError(
                f"The {role} reads covariates in the order {', '.join(declared)} (declared in {where}) but the data list "
                f"them as {', '.join(present)}; list them in the declared order ({fix})."
            )


class Simulator:
    """Compiled simulation of a model on a fixed design, with optional auxiliary statistics.

    Parameters
    ----------
    model : Model
    design : Panel
        Fixes units, nesting, observations per group and covariates; values, if any, are ignored
        here (pass observed panels to :meth:`observed`).
    statistics : Statistics, optional
        Needed for :meth:`statistics` and :meth:`observed`.

    Raises
    ------
    ModelError
        If the design does not fit the model, or a kernel has the wrong signature, raises, or
        writes outside its outputs when checked on the first unit at the start values.
    """

    @interruptible
    def __init__(self, model: Model, design: Panel, statistics: Statistics | None = None) -> None:
        if not isinstance(model, Model):
            raise ModelError(f"Expected a Model, got {type(model).__name__}.")
        if not isinstance(design, Panel):
            raise DataError(f"Expected a Panel as design, got {type(design).__name__}.")
        if design.n_levels != model.n_levels:
            raise DataError(
                f"The design has {design.n_levels} level(s) above the observations but model "
                f"{model.name!r} has {model.n_levels} ({', '.join(lv.name for lv in model.levels)}); "
                "build the panel with matching nesting (e.g. Panel.from_frame(..., group=...))."
            )
        _check_declared_covariates(model, design)
        self.model = model
        self.design = design
        self._d = _DesignArrays.from_panel(design)
        started = time.perf_counter()
        self._m = self._compile_model(model)
        dims = self._m.level_dim
        self._theta_start = np.concatenate([[0], np.cumsum(self._d.max_entities * dims)[:-1]]).astype(np.int64)
        self._theta_size = int(max(1, (self._d.max_entities * dims).sum()))
        self._max_groups = int(self._d.max_entities[-1])
        self.layout = Layout.of(design, model.value_names)
        self.statistics_spec = statistics
        self._plan = None
        self._projection = None
        if statistics is not None:
            if not isinstance(statistics, Statistics):
                raise ModelError(f"statistics must be a Statistics object, got {type(statistics).__name__}.")
            self._plan = statistics.plan(self.layout, self._d.max_obs)
        self.panels_simulated = 0  # panels whose statistics this simulator computed (a cost count)
        self._probe()
        if statistics is not None and statistics.projects:
            # Final statistics are the candidates' projection onto the parameters (fitted on a
            # pilot simulation the first time, then kept with the statistics).
            self._projection = statistics.prepare(model, design)
        self.compile_seconds = time.perf_counter() - started

    def __reduce__(self):
        # Compiled addresses are only valid in this process: rebuild from the declarations
        # (kernels load from the disk cache) when sent to a worker process.
        return (Simulator, (self.model, self.design, self.statistics_spec))

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def _compile_model(model: Model) -> _ModelArrays:
        addrs, kernels, dims, args = [], [], [], []
        for lv in model.levels:
            disp, addr = compile_kernel(lv.draw, DRAW_SIGNATURE, f"draw kernel of level {lv.name!r}")
            addrs.append(addr)
            kernels.append(disp)
            dims.append(lv.n_params)
            args.append(lv.args)
        disp, obs_addr = compile_kernel(model.observations.simulate, SIMULATE_SIGNATURE, "observation kernel")
        kernels.append(disp)
        return _ModelArrays(
            level_addr=np.ascontiguousarray(np.array(addrs, dtype=np.int64)),
            level_dim=np.array(dims, dtype=np.int64),
            level_args=np.ascontiguousarray(np.concatenate(args + [np.zeros(0)])),
            level_args_start=np.concatenate([[0], np.cumsum([a.size for a in args])]).astype(np.int64),
            obs_addr=obs_addr,
            obs_args=np.ascontiguousarray(model.observations.args, dtype=np.float64),
            kernels=tuple(kernels),
        )

    def _probe(self) -> None:
        """Run every kernel once from Python on the first entities at the start values.

        Outputs are views into guarded buffers: a kernel writing past its declared outputs (a wrong
        number of parameters or value columns) is caught here with a clear message instead of
        corrupting memory later.
        """
        psi = _floats(self.model.expand(self.model.params.start))
        d = self._d
        rng = np.zeros(STREAM_SIZE, dtype=np.uint64)
        parent = psi
        guard = 4
        for level, lv in enumerate(self.model.levels):
            dim = lv.n_params
            buf = np.full(dim + 2 * guard, np.nan)
            theta = buf[guard : guard + dim]
            lcov = self.design.level_covariates[level]
            seed_stream(rng, 0, 0, level + 1, 0)
            outside = (
                f"The draw kernel of level {lv.name!r} writes outside theta: the level declares "
                f"{dim} parameter(s) ({', '.join(lv.params)}) but the kernel writes more. Make "
                "the kernel write exactly theta[0..n-1] or declare all its parameters."
            )
            args = (psi, parent, _floats(lcov[0]), _floats(lv.args), rng, theta)
            self._call_probe(
                DRAW_SIGNATURE, self._m.level_addr[level], self._m.kernels[level], args, f"draw kernel of level {lv.name!r}",
                self._draw_arrays(level, parent.size), "declare every parameter the kernel writes",
            )
            if not (np.isnan(buf[:guard]).all() and np.isnan(buf[guard + dim :]).all()):
                raise ModelError(outside)
            missing = [lv.params[j] for j in range(dim) if np.isnan(theta[j])]
            if missing:
                raise ModelError(
                    f"The draw kernel of level {lv.name!r} left parameter(s) {', '.join(missing)} "
                    f"unset (or set them to NaN) at the start values {self._psi_text(psi)}; it must "
                    "write every declared parameter."
                )
            parent = theta.copy()
        obs = self.model.observations
        off = self.design.nesting[-1]
        n = int(off[1] - off[0])
        nv = obs.n_values
        buf = np.full((n + 2 * guard, nv), np.nan)
        y = buf[guard : guard + n]
        seed_stream(rng, 0, 0, self.model.n_levels + 1, 0)
        outside = (
            f"The observation kernel writes outside y: the model declares {nv} value column(s) "
            f"({', '.join(obs.values)}) and y has one row per observation; write y[k, j] for k < "
            "y.shape[0] and j < the number of declared values only."
        )
        args = (psi, parent, _floats(d.x[:n]), _floats(obs.args), rng, y)
        self._call_probe(
            SIMULATE_SIGNATURE, self._m.obs_addr, self._m.kernels[-1], args, "observation kernel",
            self._observation_arrays(n, parent.size),
            "declare every value column the kernel writes and every covariate it reads",
        )
        if not (np.isnan(buf[:guard]).all() and np.isnan(buf[guard + n :]).all()):
            raise ModelError(outside)
        unset = np.isnan(y)
        if unset.any():
            k, j = np.argwhere(unset)[0]
            raise ModelError(
                f"The observation kernel left y[{k}, {j}] ({obs.values[j]!r}) unset (or NaN) at the "
                f"start values {self._psi_text(psi)}; it must write every declared value column of "
                "every observation."
            )
        if self._plan is not None:
            with running(lambda: f"the statistics' kernels on the first unit simulated at the start values {self._psi_text(psi)}"):
                self._plan.check_outputs(
                    np.array(y), d.x[:n], np.array([0, n], dtype=np.int64), self.design.n_units,
                    "the first unit simulated at the start values",
                )

    def _call_probe(self, signature, address, kernel, args, role, arrays: str, declare: str):
        psi = args[0]
        try:
            with running(lambda: f"the {role} on the first unit at the start values {self._psi_text(psi)}"):
                call_kernel(signature, address, *args)
        except IndexError as exc:  # a bounds-checked kernel indexing outside its arrays (reading or writing)
            raise ModelError(
                f"The {role} indexes outside its arrays{_index_error_site(kernel, args)} at the start values "
                f"{self._psi_text(psi)} on the first unit, where {arrays}; index inside them, and {declare}."
            ) from exc
        except Exception as exc:  # a user kernel raising is reported with its role
            raise ModelError(f"The {role} raised {type(exc).__name__}: {exc}") from exc

    def _draw_arrays(self, level: int, n_parent: int) -> str:
        """The shapes a level's draw kernel sees, in words (for messages)."""
        lv = self.model.levels[level]
        names = self.design.level_covariate_names[level] if self.design.level_covariate_names else ()
        return (
            f"theta has {_entries(lv.n_params)} ({', '.join(lv.params)}), psi {len(self.model.all_params)}, "
            f"parent {n_parent}, covariates {len(names)}" + (f" ({', '.join(names)})" if names else "")
            + f" and args {lv.args.size}"
        )

    def _observation_arrays(self, n_obs: int, n_theta: int) -> str:
        """The shapes the observation kernel sees for ``n_obs`` observations, in words."""
        obs = self.model.observations
        covariates = self.design.covariate_names
        return (
            f"y is {n_obs} x {obs.n_values} (observations x values {', '.join(obs.values)}), x is {n_obs} x "
            f"{len(covariates)} " + (f"(observations x covariates {', '.join(covariates)})" if covariates else "(no covariates)")
            + f", theta has {_entries(n_theta)} ({', '.join(self.model.levels[-1].params)}), psi "
            f"{len(self.model.all_params)} and args {obs.args.size}"
        )

    def _launch_text(self, rows: np.ndarray, n_sims: int) -> str:
        first = self._psi_text(rows[0])
        at = f"parameters {first}" if len(rows) == 1 else f"{len(rows)} parameter vectors, the first {first}"
        return f"the simulation of {n_sims} panel(s) of model {self.model.name!r} at {at}"

    def _psi_text(self, psi: np.ndarray) -> str:
        names = self.model.all_params.names if len(psi) == len(self.model.all_params) else self.model.param_names
        return "{" + ", ".join(f"{n}: {v:.6g}" for n, v in zip(names, psi)) + "}"

    def _chunk(self, n_tasks: int) -> int:
        return _chunk_size(n_tasks, self.design.n_obs / self.design.n_units)

    # ------------------------------------------------------------------ public API

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the auxiliary statistics."""
        plan = self._require_plan()
        return plan.names if self._projection is None else self._projection.names

    @property
    def flag_names(self) -> tuple[str, ...]:
        """Columns of the unit-statistics table that flag an auxiliary fit (1: a fit whose estimates
        are statistics), not statistics themselves."""
        return self._require_plan().flag_names

    @property
    def unit_names(self) -> tuple[str, ...]:
        """Names of the unit statistics (columns of :meth:`unit_statistics` tables)."""
        return self._require_plan().unit_names

    def psi(self, params: ParamsLike) -> np.ndarray:
        """Validated natural-scale vector of the estimated parameters from an array or a
        ``{name: value}`` mapping (which may hold the fixed parameters too, at their values)."""
        return self.model.free_vector(params)

    @interruptible
    def statistics(self, params: ParamsLike, n_sims: int = 1, seed: int = 0, first_sim: int = 0) -> np.ndarray:
        """Auxiliary statistics of ``n_sims`` simulated panels, shape (n_sims, n_stats).

        Simulation ``s`` uses random keys ``(seed, first_sim + s, ...)``: the same keys give the
        same draws at every ``params`` (common random numbers).
        """
        psi = self.psi(params)
        return self._project(self._batch_statistics(psi[None], n_sims, seed, first_sim, "raise")[0])

    @interruptible
    def statistics_batch(
        self, params: np.ndarray, n_sims: int = 1, seed: int = 0, first_sim: int | np.ndarray = 0, failures: str = "raise"
    ) -> np.ndarray:
        """Statistics of ``n_sims`` panels at each of many parameter vectors, in one launch.

        Parameters
        ----------
        params : ndarray, shape (n_psi, n_params)
            Natural-scale population parameters, one row per vector (e.g. particles, proposals).
        n_sims : int
            Panels per parameter vector. Panel ``j`` of row ``p`` uses the random keys of simulation
            ``first_sim + p * n_sims + j``, so every row gets fresh, non-overlapping keys.
        seed : int
        first_sim : int or ndarray of int, shape (n_psi,)
            One index: rows follow each other as above. One per row: panel ``j`` of row ``p``
            uses the keys of simulation ``first_sim[p] + j``, so rows may share keys (common random
            numbers across rows, or overlapping windows of one stream), still in one launch.
        failures : {"raise", "nan"}
            A simulator producing NaN or infinite output raises :class:`SimulationError`
            (``"raise"``) or leaves NaN in the statistics of that panel (``"nan"``, for samplers
            that reject such parameters). A kernel that raises always raises
            :class:`~simfit.errors.KernelError`, naming it, the simulation, the unit and the
            parameters.

        Returns
        -------
        ndarray, shape (n_psi, n_sims, n_stats)
        """
        rows = np.asarray(params, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(self.model.params):
            raise ArgumentError(
                f"params must have shape (n_psi, {len(self.model.params)}) for parameters "
                f"({', '.join(self.model.param_names)}), got {rows.shape}."
            )
        if failures not in ("raise", "nan"):
            raise ArgumentError(f"failures must be 'raise' or 'nan', got {failures!r}.")
        return self._project(self._batch_statistics(self._psi_rows(rows), n_sims, seed, first_sim, failures))

    def _project(self, stats: np.ndarray) -> np.ndarray:
        return stats if self._projection is None else self._projection.apply(stats)

    def _psi_rows(self, rows: np.ndarray) -> np.ndarray:
        """Validated parameter rows (n, n_params), each strictly inside the bounds."""
        params = self.model.params
        rows = np.array(rows, dtype=np.float64, order="C")
        inside = (rows > params.lower) & (rows < params.upper)
        if not inside.all():
            r, j = (int(v) for v in np.argwhere(~inside)[0])
            params.as_vector(rows[r])  # raises with the parameter, its value and bounds
            raise ArgumentError(f"Parameter row {int(r)} has an invalid value {float(rows[r, j])!r}.")
        return rows

    def _batch_statistics(self, rows, n_sims, seed, first_sim, failures) -> np.ndarray:
        plan = self._require_plan()
        seed = _check_seed(seed)
        n_sims = _check_count(n_sims, "n_sims")
        n_psi = rows.shape[0]
        total = n_psi * n_sims
        if np.ndim(first_sim) == 0:
            first_sim = _check_first_sim(first_sim, max(total, 1))
            row_first = first_sim + n_sims * np.arange(n_psi, dtype=np.int64)
        else:
            row_first = np.asarray(first_sim)
            if row_first.shape != (n_psi,) or not np.issubdtype(row_first.dtype, np.integer):
                raise ArgumentError(f"first_sim must be one integer or one per row (shape ({n_psi},)), got {row_first!r}.")
            if row_first.size:  # the smallest and the largest bound every row's indices
                _check_first_sim(int(row_first.min()), n_sims)
                _check_first_sim(int(row_first.max()), n_sims)
            row_first = row_first.astype(np.int64)
        require_memory(
            8.0 * total * (plan.n_stats + 2), f"the statistics of {total:,} simulated panels",
            "simulate fewer panels at once (n_sims, bootstrap replicates, particles)",
        )
        out = np.empty((n_psi, n_sims, plan.n_stats))
        if n_psi == 0:
            return out
        flat = out.reshape(total, plan.n_stats)
        self.panels_simulated += total
        per_sim = self.design.n_units * (max(plan.n_unit_columns, 1) + 1) * 8  # table and status
        block = max(1, min(total, _TABLE_BYTES // per_sim))
        for lo in range(0, total, block):
            nb = min(block, total - lo)
            # Launch over whole panels lo..lo+nb-1; their rows are lo // n_sims ... (a block may
            # split a row's panels, so pass the rows from the first one touched).
            r0 = lo // n_sims
            r1 = (lo + nb - 1) // n_sims + 1
            offset = lo - r0 * n_sims
            index = np.arange(lo, lo + nb, dtype=np.int64)
            keys = row_first[index // n_sims] + index % n_sims  # each panel's simulation index
            table, status = self._simulate_table(rows[r0:r1], n_sims, seed, keys, nb, offset=offset)
            failed = status.any(axis=1)
            if failed.any():
                if failures == "raise" or (status == _engine.UNFINISHED).any():
                    s = int(np.flatnonzero(failed)[0])
                    psi = rows[(lo + s) // n_sims]
                    self._raise_on_status(status[s : s + 1], psi, seed, int(keys[s]), None)
                table[failed] = 0.0  # aggregates of failed panels are replaced below

            def where(s, lo=lo, keys=keys):
                return f"simulation {int(keys[s])} at parameters {self._psi_text(rows[(lo + s) // n_sims])}"

            _aggregate(plan, table, flat[lo : lo + nb], where)
            flat[lo : lo + nb][failed] = np.nan
        return out

    @interruptible
    def unit_statistics(
        self, params: ParamsLike, n_sims: int = 1, seed: int = 0, first_sim: int = 0, return_params: bool = False
    ):
        """Unit-statistics tables of simulated panels, shape (n_sims, n_units, n_unit_columns).

        Parameters
        ----------
        params : mapping or array, shape (n_params,) or (n_sims, n_params)
            One parameter vector for every simulation, or one row per simulation.
        return_params : bool
            Also return each simulated unit's own (first-level) parameters, shape
            (n_sims, n_units, n_unit_params), from the same launch.
        """
        self._require_plan()
        n_sims = _check_count(n_sims, "n_sims")
        arr = np.asarray(params, dtype=np.float64) if not isinstance(params, Mapping) else None
        if arr is not None and arr.ndim == 2:
            if arr.shape != (n_sims, len(self.model.params)):
                raise ArgumentError(f"A parameter row per simulation needs shape ({n_sims}, {len(self.model.params)}), got {arr.shape}.")
            rows, per = self._psi_rows(arr), 1
        else:
            rows, per = self.psi(params)[None], n_sims
        seed, first_sim = _check_seed(seed), _check_first_sim(first_sim, n_sims)
        table, status, theta = self._simulate_table(rows, per, seed, first_sim, n_sims, keep_params=True)
        if status.any():
            s = int(np.flatnonzero(status.any(axis=1))[0])
            self._raise_on_status(status[s : s + 1], rows[s // per], seed, first_sim + s, None)
        return (table, theta) if return_params else table

    @interruptible
    def simulate(self, params: ParamsLike, n_sims: int = 1, seed: int = 0, first_sim: int = 0) -> SimulationResult:
        """Simulate whole panels (values and every entity's parameters)."""
        psi = self.psi(params)
        seed = _check_seed(seed)
        n_sims = _check_count(n_sims, "n_sims")
        first_sim = _check_first_sim(first_sim, n_sims)
        d, m = self._d, self._m
        n_units = self.design.n_units
        sizes = self.design.level_sizes()
        thetas_start = np.concatenate([[0], np.cumsum([n_sims * n * k for n, k in zip(sizes, m.level_dim)])]).astype(np.int64)
        require_memory(
            8.0 * (thetas_start[-1] + n_sims * self.design.n_obs * self.model.observations.n_values + 6 * n_sims * n_units),
            f"{n_sims:,} whole simulated panels of {self.design.n_obs:,} observations",
            "simulate fewer panels (n_sims); statistics of many panels need no whole panels (Simulator.statistics)",
        )
        thetas_flat = np.empty(int(thetas_start[-1]))
        values = np.empty((n_sims, self.design.n_obs, self.model.observations.n_values))
        status = np.full((n_sims, n_units), _engine.UNFINISHED, dtype=np.int64)
        info = np.zeros((n_sims, n_units, 4))
        launch(
            _engine.simulate_panels,
            self.model.expand(psi), seed, first_sim, n_sims, self._chunk(n_sims * n_units),
            d.nest_flat, d.nest_start, d.lcov_flat, d.lcov_start, d.lcov_ncol, d.x,
            m.level_addr, m.level_dim, m.level_args, m.level_args_start, m.obs_addr, m.obs_args,
            self._theta_size, self._theta_start, d.max_obs, self._max_groups,
            np.ascontiguousarray(self.design.unit_offsets), d.entity_start, thetas_flat, thetas_start[:-1].copy(),
            values, status, info,
            what=lambda: self._launch_text(psi[None], n_sims),
        )
        self._raise_on_status(status, psi, seed, first_sim, info)
        params = {
            lv.name: thetas_flat[thetas_start[k] : thetas_start[k + 1]].reshape(n_sims, sizes[k], lv.n_params)
            for k, lv in enumerate(self.model.levels)
        }
        return SimulationResult(values=values, params=params, psi=psi, seed=seed, design=self.design, model=self.model)

    @interruptible
    def observed(self, panel: Panel) -> np.ndarray:
        """Auxiliary statistics of an observed panel, shape (n_stats,), by the same compiled code."""
        return self._project(self._aggregate(self.observed_unit_statistics(panel)[None], np.empty((1, self._require_plan().n_stats)))[0])

    @interruptible
    def observed_unit_statistics(self, panel: Panel) -> np.ndarray:
        """Unit-statistics table of an observed panel, shape (n_units, n_unit_columns).

        The panel must have the simulator's design (units, nesting, covariates): observed and
        simulated statistics are comparable only on the same design.
        """
        plan = self._require_plan()
        self._check_same_design(panel)
        return _observed_table(self.statistics_spec, plan, self.layout, panel)

    def explain_nonfinite(
        self, params: ParamsLike, n_sims: int = 1, seed: int = 0, first_sim: int = 0, draws: np.ndarray | None = None
    ) -> str:
        """Why some statistics of ``n_sims`` panels simulated at ``params`` are NaN or infinite, in
        one line, with what to do.

        Looks at the first failing panel (its random keys replay it exactly): how many units'
        auxiliary fits failed there and why (:data:`~simfit.statistics.auxiliary.FIT_REASONS`),
        which unit statistic (of those the failing statistics aggregate) is NaN for every unit,
        infinite for some, or defined for fewer than two units; else the aggregate itself.

        Parameters
        ----------
        params : mapping or array
            The estimated parameters (natural scale).
        n_sims, seed, first_sim : int
            The panels of :meth:`statistics` (simulation ``s`` uses keys ``(seed, first_sim + s)``).
        draws : ndarray, shape (n_sims, n_stats), optional
            Their statistics, if already computed (else they are simulated).

        Returns
        -------
        str
            One sentence (an empty string when every statistic is finite).
        """
        from simfit.statistics.auxiliary import FIT_CONVERGED, FIT_REASONS

        plan = self._require_plan()
        psi = self.psi(params)
        draws = self.statistics(psi, n_sims, seed, first_sim) if draws is None else np.asarray(draws, dtype=np.float64)
        bad_panel = ~np.isfinite(draws).all(axis=1)
        if not bad_panel.any():
            return ""
        s = int(np.flatnonzero(bad_panel)[0])
        bad = ~np.isfinite(draws[s])
        names = np.asarray(self.names)[bad]
        table = self.unit_statistics(psi, n_sims=1, seed=seed, first_sim=first_sim + s)[0]
        n_units = table.shape[0]
        ids = self.design.unit_ids

        def unit_label(i) -> object:
            label = ids[int(i)] if ids is not None else int(i)
            return label.item() if isinstance(label, np.generic) else label

        causes, fixes = [], []
        for flag in plan.flag_names:
            codes = table[:, plan.unit_names.index(flag)]
            failed = codes != FIT_CONVERGED
            if failed.any():
                reasons = ", ".join(
                    f"{int(np.sum(codes == code))} {FIT_REASONS.get(float(code), f'failed (code {code:g})')}"
                    for code in np.unique(codes[failed])
                )
                causes.append(f"the auxiliary fits {flag.rsplit('.', 1)[0]} failed on {int(failed.sum())} of {n_units} units ({reasons})")
                fixes.append("start the auxiliary fits nearer the data (their start, bounds or prior_sd)")
        columns = range(len(plan.unit_names))
        if self._projection is None:  # the unit statistics the failing statistics aggregate
            read = set()
            for k in range(len(plan.agg_out_offsets) - 1):
                if bad[plan.agg_out_offsets[k] : plan.agg_out_offsets[k + 1]].any():
                    read.update(plan.agg_columns[plan.agg_columns_offsets[k] : plan.agg_columns_offsets[k + 1]].tolist())
            columns = sorted(read)
        undefined, single = [], []
        for j in columns:
            column, values = plan.unit_names[j], table[:, j]
            infinite = np.flatnonzero(np.isinf(values))
            defined = int(np.isfinite(values).sum())
            if infinite.size:
                causes.append(f"{column} is infinite for {infinite.size} unit(s) (first {unit_label(infinite[0])!r})")
            elif defined == 0:
                undefined.append(column)
            elif defined < 2:
                single.append(column)
        if undefined:
            causes.append(f"{', '.join(undefined)} {'is' if len(undefined) == 1 else 'are'} NaN for every unit")
        if single:
            causes.append(f"{', '.join(single)} {'is' if len(single) == 1 else 'are'} defined for one unit only (a spread or "
                          "correlation across units needs two)")
        if not causes:
            causes.append("every unit statistic they read is finite for at least two units, so the aggregate itself is "
                          "not (a correlation of a constant, say)")
        fixes.append("use statistics defined for every panel" + (" (st.mean_or, st.sd_or give a fallback)" if not fixes else ""))
        return (
            f"Statistic(s) {', '.join(names)} are NaN or infinite in {int(bad_panel.sum())} of {len(draws)} panels simulated at "
            f"{self._psi_text(psi)}; in panel {first_sim + s} (seed {seed}): {'; '.join(causes)}. Fix: {', or '.join(dict.fromkeys(fixes))}."
        )

    # ------------------------------------------------------------------ internals

    def _check_same_design(self, panel: Panel) -> None:
        design = self.design
        if not isinstance(panel, Panel):
            raise DataError(f"Expected a Panel, got {type(panel).__name__}.")
        same = panel.n_levels == design.n_levels and all(
            np.array_equal(a, b) for a, b in zip(panel.nesting, design.nesting)
        )
        if not same:
            raise DataError(
                f"The panel's design ({' -> '.join(map(str, panel.level_sizes()))} -> {panel.n_obs} "
                f"observations) differs from the simulator's ({' -> '.join(map(str, design.level_sizes()))} "
                f"-> {design.n_obs}); build the Simulator on the observed panel's design (panel.design())."
            )
        if not np.array_equal(panel.covariates, design.covariates) or not all(
            np.array_equal(a, b) for a, b in zip(panel.level_covariates, design.level_covariates)
        ):
            raise DataError(
                "The panel's covariates differ from the simulator's design; simulate on the observed "
                "panel's design (panel.design())."
            )

    def _replay_unit(self, psi, seed, sim, unit) -> None:
        """Re-run one unit kernel by kernel from Python; raise with the kernel's own exception.

        Used only after a kernel raised inside the parallel engine, where the exception is lost:
        the keyed streams make the replay draw exactly the same numbers.
        """
        psi = _floats(psi)
        with running(lambda: f"the kernels replayed on simulation {sim}, unit {unit} at parameters {self._psi_text(psi)}"):
            self._replay_unit_kernels(psi, seed, sim, unit)

    def _replay_unit_kernels(self, psi, seed, sim, unit) -> None:
        rng = np.zeros(STREAM_SIZE, dtype=np.uint64)
        where = f"in simulation {sim}, unit {unit}, at parameters {self._psi_text(psi)}"
        psi = self.model.expand(psi)
        nesting = self.design.nesting
        entities = {unit: psi}
        lo, hi = unit, unit + 1
        for level, lv in enumerate(self.model.levels):
            if level > 0:
                off = nesting[level - 1]
                entities = {e: entities[p] for p in range(lo, hi) for e in range(off[p], off[p + 1])}
                lo, hi = off[lo], off[hi]
            drawn = {}
            for e, parent in entities.items():
                theta = np.full(lv.n_params, np.nan)
                seed_stream(rng, seed, sim, level + 1, e)
                cov = np.array(self.design.level_covariates[level][e], dtype=np.float64)
                args = (psi, np.ascontiguousarray(parent), cov, lv.args, rng.copy(), theta)
                try:
                    call_kernel(
                        DRAW_SIGNATURE, self._m.level_addr[level], psi, _floats(parent), cov, _floats(lv.args), rng, theta
                    )
                except Exception as exc:
                    entity = f" for {lv.name} {e - lo} of the unit" if level > 0 else ""
                    args = (psi, _floats(parent), cov, _floats(lv.args), rng, theta)
                    raise KernelError(
                        f"The draw kernel of level {lv.name!r} {_raised(exc, self._m.kernels[level], args)}{entity} {where}"
                        + (f", where {self._draw_arrays(level, len(parent))}." if isinstance(exc, IndexError) else f"; {_simulation_hint(exc)}")
                    ) from exc
                drawn[e] = theta
            entities = drawn
        obs = self.model.observations
        obs_off = nesting[-1]
        first = obs_off[lo]
        y = np.full((obs_off[hi] - first, obs.n_values), np.nan)
        for g in range(lo, hi):
            a, b = obs_off[g], obs_off[g + 1]
            seed_stream(rng, seed, sim, self.model.n_levels + 1, g)
            block = np.full((b - a, obs.n_values), np.nan)
            args = (psi, entities[g], np.array(self._d.x[a:b]), obs.args, rng.copy(), block)
            try:
                call_kernel(
                    SIMULATE_SIGNATURE, self._m.obs_addr, psi, _floats(entities[g]), _floats(self._d.x[a:b]),
                    _floats(obs.args), rng, block,
                )
            except Exception as exc:
                # Models without groups: the observations' entity is the unit, named in `where`.
                entity = f" for {self.model.levels[-1].name} {g - lo} of the unit" if self.model.n_levels > 1 else ""
                args = (psi, _floats(entities[g]), _floats(self._d.x[a:b]), _floats(obs.args), rng, block)
                raise KernelError(
                    f"The observation kernel {_raised(exc, self._m.kernels[-1], args)}{entity} {where}"
                    + (f", where {self._observation_arrays(b - a, len(entities[g]))}." if isinstance(exc, IndexError) else f"; {_simulation_hint(exc)}")
                ) from exc
            y[a - first : b - first] = block
        if self._plan is not None:
            groups = np.asarray(obs_off[lo : hi + 1] - first, dtype=np.int64)
            x = self._d.x[first : obs_off[hi]]
            _replay_unit_statistics(self._plan, y, x, groups, f"unit {unit} {where}", KernelError)

    def _require_plan(self):
        if self._plan is None:
            raise ModelError("This Simulator has no statistics; pass statistics=Statistics(...) when creating it.")
        return self._plan

    def _simulate_table(self, rows, sims_per_psi, seed, first_sim, n_sims, offset=0, keep_params=False):
        """Unit-statistics table and statuses of simulations ``first_sim .. first_sim + n_sims - 1``
        (or of the simulation indices in ``first_sim`` when it is an array of ``n_sims`` keys);
        simulation ``s`` of the launch runs at ``rows[(offset + s) // sims_per_psi]``."""
        if np.ndim(first_sim) == 0:
            keys = np.arange(first_sim, first_sim + n_sims, dtype=np.int64)
        else:
            keys = np.ascontiguousarray(first_sim, dtype=np.int64)
        plan = self._plan
        d, m = self._d, self._m
        n_units = self.design.n_units
        table = np.empty((n_sims, n_units, plan.n_unit_columns))
        status = np.full((n_sims, n_units), _engine.UNFINISHED, dtype=np.int64)
        theta = np.empty((n_sims if keep_params else 0, n_units, int(m.level_dim[0])))
        launch(
            _engine.simulate_unit_statistics,
            self.model.expand(rows), sims_per_psi, offset, seed, keys, n_sims, self._chunk(n_sims * n_units),
            d.nest_flat, d.nest_start, d.lcov_flat, d.lcov_start, d.lcov_ncol, d.x,
            m.level_addr, m.level_dim, m.level_args, m.level_args_start, m.obs_addr, m.obs_args,
            self._theta_size, self._theta_start, d.max_obs, self._max_groups, self.model.observations.n_values,
            plan.unit_addresses, plan.unit_args, plan.unit_args_offsets, plan.unit_out_offsets, plan.unit_work,
            table, status, theta,
            work=int(n_sims * self.design.n_obs), what=lambda: self._launch_text(rows, n_sims),
        )
        if keep_params:
            return table, status, theta
        return table, status

    def _aggregate(self, table: np.ndarray, out: np.ndarray) -> np.ndarray:
        return _aggregate(self._plan, table, out)

    def _raise_on_status(self, status, psi, seed, first_sim, info) -> None:
        if not status.any():
            return
        s, i = (int(v) for v in np.argwhere(status != 0)[0])
        if status[s, i] == _engine.UNFINISHED:
            self._replay_unit(psi, seed, first_sim + s, i)
            raise KernelError(
                f"A kernel raised inside the compiled engine (simulation {first_sim + s}, unit {i}) "
                f"at parameters {self._psi_text(psi)} but not when replayed from Python; make the "
                "kernels return NaN for invalid input instead of raising."
            )
        if info is None:
            # The fused path keeps no details; simulating panel s alone reproduces it exactly
            # (keyed streams) and raises with the location of the value.
            self.simulate(psi, 1, seed, first_sim + s)
            raise SimulationError(f"Simulation {first_sim + s}, unit {i} failed with status {status[s, i]}.")
        code = int(status[s, i])
        entity, row, col, value = info[s, i]
        entity, row, col = int(entity), int(row), int(col)
        n_levels = self.model.n_levels
        where = f"simulation {first_sim + s}, unit {i}"
        hint = ""
        if code <= n_levels:
            lv = self.model.levels[code - 1]
            what = (
                f"the draw kernel of level {lv.name!r} produced {value} for parameter "
                f"{lv.params[col]!r} of {lv.name} {entity}"
            )
            if any(getattr(dist, "dim", 1) > 1 for dist in lv.distributions):
                hint = " For a multivariate normal level, the latent correlations may not form a positive definite matrix at these values."
        else:
            what = (
                f"the observation kernel produced {value} for value {self.model.value_names[col]!r} "
                f"in observation {row} of the unit"
            )
        raise SimulationError(
            f"Non-finite simulation output: {what} ({where}, seed {seed}) at parameters "
            f"{self._psi_text(psi)}. Check the kernel for divisions by zero, logs of non-positive "
            f"numbers or overflow at these values, and that it writes every output.{hint}"
        )


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _raised(exc: Exception, kernel, args) -> str:
    """What a kernel did, for a message: "indexes outside its arrays at line ..." for an
    IndexError (reading or writing, which the bounds check does not tell), else "raised ..."."""
    if isinstance(exc, IndexError):
        return f"indexes outside its arrays{_index_error_site(kernel, args)}"
    return f"raised {type(exc).__name__}: {exc}"


def _index_error_site(kernel, args) -> str:
    """Where a kernel indexes outside its arrays, found by running its Python source on copies of
    the same inputs (NumPy names the index, axis and size, Numba's bounds check does not):
    ``" at line 14 of model.py, `y[k, 0] = x[k, 1]` (index 1 is out of bounds for axis 1 with
    size 1)"``, or ``""`` where the Python run does not reproduce it."""
    py = getattr(kernel, "py_func", None)
    if py is None:
        return ""
    copies = [np.array(a) if isinstance(a, np.ndarray) else a for a in args]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            py(*copies)
    except IndexError as exc:
        tb, site = exc.__traceback__, None
        while tb is not None:
            if tb.tb_frame.f_code is py.__code__:
                site = tb.tb_lineno
            tb = tb.tb_next
        if site is None:
            return ""
        source = linecache.getline(py.__code__.co_filename, site).strip()
        return f" at line {site} of {Path(py.__code__.co_filename).name}, `{source}` ({exc})"
    except Exception:  # the Python run differs (types, other errors): no site
        return ""
    return ""


def _simulation_hint(exc: Exception) -> str:
    if isinstance(exc, IndexError):
        return "the kernel indexes outside its arrays there (theta, x, y or args)."
    return (
        "a kernel raising stops the run: make it write NaN where the model is undefined (with "
        "@njit(error_model=\"numpy\") a division by zero gives inf or NaN), which rejects those parameter values."
    )


def _floats(a) -> np.ndarray:
    """A C-contiguous float64 array, as kernels take their inputs."""
    return np.ascontiguousarray(a, dtype=np.float64)


def _chunk_size(n_tasks: int, obs_per_task: float) -> int:
    """Tasks per parallel chunk: enough observations to amortise set-up, enough chunks to balance."""
    by_size = max(1, int(_OBS_PER_CHUNK / max(1.0, obs_per_task)))
    by_balance = max(1, n_tasks // (8 * numba.get_num_threads()))
    return int(min(by_size, by_balance))


def _replay_unit_statistics(
    plan: StatisticsPlan, y: np.ndarray, x: np.ndarray, groups: np.ndarray, where: str, error: type = StatisticsError
) -> None:
    """Run each unit statistic from Python on one unit; raise ``error`` with the first kernel's exception."""
    work = np.empty(max(plan.unit_work, 4 * y.shape[0] + 64))
    out = np.full(plan.n_unit_columns, np.nan)
    y, x, groups = np.ascontiguousarray(y), np.ascontiguousarray(x), np.ascontiguousarray(groups, dtype=np.int64)
    for k in range(len(plan.unit_kernels)):
        lo, hi = plan.unit_out_offsets[k], plan.unit_out_offsets[k + 1]
        args = plan.unit_args[plan.unit_args_offsets[k] : plan.unit_args_offsets[k + 1]]
        call = (np.ascontiguousarray(y), np.ascontiguousarray(x), groups, args, work, out[lo:hi])
        try:
            with running(lambda: f"the unit statistics replayed on {where}"):
                call_kernel(UNIT_STATISTIC_SIGNATURE, plan.unit_addresses[k], *call)
        except IndexError as exc:  # reading or writing: the bounds check does not tell
            names = plan.unit_names[lo:hi]
            raise error(
                f"Unit statistic {', '.join(names)} indexes outside its arrays{_index_error_site(plan.unit_kernels[k], call)} on "
                f"{where}, where y is {y.shape[0]} x {y.shape[1]} (observations x values), x is {x.shape[0]} x "
                f"{x.shape[1]} (observations x covariates) and out has {_entries(hi - lo)} ({', '.join(names)}); "
                "index inside them, and declare one label per value the kernel writes."
            ) from exc
        except Exception as exc:
            raise error(
                f"Unit statistic {', '.join(plan.unit_names[lo:hi])} raised {type(exc).__name__}: {exc} on "
                f"{where}; " + _raise_hint(exc)
            ) from exc


def _aggregate(plan: StatisticsPlan, table: np.ndarray, out: np.ndarray, where=None) -> np.ndarray:
    """Aggregate the unit-statistics tables (n_panels, n_units, n_unit_columns) into ``out``.

    An aggregate kernel raising is an error naming it and the panel: ``where(s)`` describes
    simulated panel ``s`` (a :class:`KernelError`); without it the panels are observed ones (a
    :class:`StatisticsError`).
    """
    status = np.full(table.shape[0], _engine.UNFINISHED, dtype=np.int64)
    launch(
        _engine.aggregate,
        table, plan.agg_addresses, plan.agg_columns, plan.agg_columns_offsets,
        plan.agg_args, plan.agg_args_offsets, plan.agg_out_offsets, out, status,
        work=int(table.shape[0] * table.shape[1] * max(1, plan.n_stats)),
        what=lambda: f"the aggregates of {table.shape[0]} panel(s)",
    )
    if status.any():
        s = int(np.flatnonzero(status)[0])
        error, panel = (StatisticsError, f"panel {s}") if where is None else (KernelError, where(s))
        work = np.empty(table.shape[1] + 16)
        for k in range(len(plan.agg_kernels)):
            lo, hi = plan.agg_out_offsets[k], plan.agg_out_offsets[k + 1]
            try:
                with running(lambda: f"the aggregates replayed on {panel}"):
                    call_kernel(
                        AGGREGATE_SIGNATURE, plan.agg_addresses[k],
                        np.ascontiguousarray(table[s]),
                        plan.agg_columns[plan.agg_columns_offsets[k] : plan.agg_columns_offsets[k + 1]],
                        plan.agg_args[plan.agg_args_offsets[k] : plan.agg_args_offsets[k + 1]],
                        work,
                        np.empty(hi - lo),
                    )
            except Exception as exc:
                raise error(
                    f"Aggregate {', '.join(plan.names[lo:hi])} raised {type(exc).__name__}: {exc} on {panel}; "
                    + _raise_hint(exc)
                ) from exc
        raise error(f"An aggregate kernel raised inside the compiled engine on {panel} but not when replayed from Python.")
    return out


def _observed_table(spec: Statistics, plan: StatisticsPlan, layout: Layout, panel: Panel) -> np.ndarray:
    """Unit-statistics table (n_units, n_unit_columns) of a panel with values."""
    if not isinstance(panel, Panel) or not panel.has_values:
        raise DataError("Statistics of observed data need a Panel with values.")
    if panel.value_names != layout.value_names:
        raise DataError(
            f"The panel's value columns {list(panel.value_names)} differ from the model's "
            f"{list(layout.value_names)}; name the data columns like the model's values."
        )
    if panel.covariate_names != layout.covariate_names:
        raise DataError(
            f"The panel's covariates {list(panel.covariate_names)} differ from the expected "
            f"{list(layout.covariate_names)}."
        )
    arrays = _DesignArrays.from_panel(panel)
    work = spec.plan(layout, arrays.max_obs).unit_work
    table = np.empty((panel.n_units, plan.n_unit_columns))
    status = np.full(panel.n_units, _engine.UNFINISHED, dtype=np.int64)
    values = np.require(panel.values, requirements=["C", "W"])
    launch(
        _engine.observed_unit_statistics,
        values,
        _chunk_size(panel.n_units, panel.n_obs / panel.n_units),
        arrays.nest_flat, arrays.nest_start, arrays.x, int(arrays.max_entities[-1]),
        plan.unit_addresses, plan.unit_args, plan.unit_args_offsets, plan.unit_out_offsets, work, table, status,
        what=lambda: f"the unit statistics of an observed panel of {panel.n_units} units",
    )
    if status.any():
        i = int(np.flatnonzero(status)[0])
        a, b = panel.unit_offsets[i], panel.unit_offsets[i + 1]
        inner = panel.nesting[-1]
        lo, hi = arrays.entity_start[-1, i], arrays.entity_start[-1, i + 1]
        groups = np.asarray(inner[lo : hi + 1] - a, dtype=np.int64)
        _replay_unit_statistics(plan, values[a:b], arrays.x[a:b], groups, f"observed unit {i}")
        raise StatisticsError(f"A unit statistic raised inside the compiled engine on observed unit {i}.")
    return table


def _check_plan_outputs(plan: StatisticsPlan, panel: Panel) -> None:
    """Probe the statistics' kernels on the panel's first unit (see ``StatisticsPlan.check_outputs``)."""
    if not isinstance(panel, Panel) or not panel.has_values:
        raise DataError("Statistics of observed data need a Panel with values.")
    arrays = _DesignArrays.from_panel(panel)
    a, b = panel.unit_offsets[0], panel.unit_offsets[1]
    inner = panel.nesting[-1]
    lo, hi = arrays.entity_start[-1, 0], arrays.entity_start[-1, 1]
    groups = np.asarray(inner[lo : hi + 1] - a, dtype=np.int64)
    with running(lambda: "the statistics' kernels on the first unit of the panel"):
        plan.check_outputs(panel.values[a:b], arrays.x[a:b], groups, panel.n_units, "the first unit of the panel")


@interruptible
def panel_statistics(statistics: Statistics, panel: Panel) -> pd.Series:
    """Auxiliary statistics of a panel with values, as a labelled series (no model needed)."""
    layout = Layout.of(panel)
    plan = statistics.plan(layout, int(panel.obs_per_unit.max()))
    _check_plan_outputs(plan, panel)
    table = _observed_table(statistics, plan, layout, panel)
    values = _aggregate(plan, table[None], np.empty((1, plan.n_stats)))[0]
    if statistics.projects:
        if statistics.projection is None:
            raise StatisticsError(
                "Projected statistics need their projection, fitted on a model's simulations: call "
                "statistics.prepare(model, design) first (fit() and Simulator do)."
            )
        return pd.Series(statistics.projection.apply(values), index=list(statistics.projection.names))
    return pd.Series(values, index=list(plan.names))


@interruptible
def panel_unit_statistics(statistics: Statistics, panel: Panel) -> pd.DataFrame:
    """Unit statistics of a panel with values: one row per unit, one column per unit statistic."""
    layout = Layout.of(panel)
    plan = statistics.plan(layout, int(panel.obs_per_unit.max()))
    _check_plan_outputs(plan, panel)
    return pd.DataFrame(_observed_table(statistics, plan, layout, panel), columns=list(plan.unit_names))


#: Calibration passes: the first from the statistics' own starts, the second from its result.
CALIBRATION_PASSES = 2


def calibrated_statistics(statistics: Statistics, panel: Panel) -> tuple[Statistics, tuple[str, ...]]:
    """``statistics`` calibrated on the observed ``panel`` (see :meth:`Statistics.calibrated`):
    auxiliary fits centred on the median of the observed units' fits, in two passes (the first
    from the statistics' own start, the second from the first's centre).

    Returns
    -------
    Statistics
        ``statistics`` itself when nothing calibrates.
    tuple of str
        What was done, in words (empty when nothing calibrates).
    """
    notes: tuple[str, ...] = ()
    for _ in range(CALIBRATION_PASSES):
        if not statistics.calibrates:
            break
        layout = Layout.of(panel)
        plan = statistics.plan(layout, int(panel.obs_per_unit.max()))
        statistics, notes = statistics.calibrated(_observed_table(statistics, plan, layout, panel), layout)
    return statistics, notes


def simulate(model: Model, design: Panel, params: ParamsLike, n_sims: int = 1, seed: int = 0) -> SimulationResult:
    """Simulate ``n_sims`` panels of ``model`` on ``design`` at population parameters ``params``.

    Examples
    --------
    >>> from simfit.models import random_intercept
    >>> from simfit.data import Panel
    >>> sim = simulate(random_intercept.model(), Panel.balanced(50, 20), {"mu": 1, "tau": 0.5, "sigma": 1}, seed=1)
    >>> observed = sim.panel(0)
    """
    return Simulator(model, design).simulate(params, n_sims=n_sims, seed=seed)


def simulate_statistics(
    model: Model,
    design: Panel,
    statistics: Statistics,
    params: ParamsLike,
    n_sims: int = 1,
    seed: int = 0,
) -> pd.DataFrame:
    """Auxiliary statistics of ``n_sims`` simulated panels as a labelled table (n_sims x n_stats)."""
    sim = Simulator(model, design, statistics)
    return pd.DataFrame(sim.statistics(params, n_sims=n_sims, seed=seed), columns=list(sim.names))


def observed_statistics(model: Model, panel: Panel, statistics: Statistics) -> pd.Series:
    """Auxiliary statistics of an observed panel as a labelled series."""
    sim = Simulator(model, panel, statistics)
    return pd.Series(sim.observed(panel), index=list(sim.names), name="observed")


#: Values beyond this overflow once squared (the largest float is 1.8e308): a variance, a product
#: or a regression on them is infinite or NaN.
OVERFLOW_VALUE = 1e150


def explain_nonfinite_observed(sim: Simulator, panel: Panel, bad: np.ndarray) -> str:
    """Why the statistics flagged by ``bad`` are NaN or infinite on an observed panel, in one line,
    with what to do: the unit (and its observation) holding a value whose square overflows; a unit
    statistic infinite for some unit, or undefined for every unit (aggregates leave out the units
    where it is NaN), with how many of them have one observation; or else the aggregates across
    units themselves."""
    names = np.asarray(sim.names)[np.asarray(bad, dtype=bool)]
    counts, offsets = panel.obs_per_unit, panel.unit_offsets

    def unit_label(i) -> object:
        label = panel.unit_ids[int(i)] if panel.unit_ids is not None else int(i)
        return label.item() if isinstance(label, np.generic) else label

    causes, fixes = [], []
    huge = np.argwhere(np.abs(panel.values) > OVERFLOW_VALUE)
    if huge.size:
        row, col = (int(v) for v in huge[0])
        unit = int(np.searchsorted(offsets, row, side="right") - 1)
        more = f"; {len(huge)} such values in all" if len(huge) > 1 else ""
        causes.append(
            f"unit {unit_label(unit)!r} has {panel.value_names[col]} = {panel.values[row, col]:.3g} (its observation "
            f"{row - int(offsets[unit]) + 1} of {int(counts[unit])}{more}), beyond {OVERFLOW_VALUE:.0e}, where squares "
            "overflow"
        )
        fixes.append("rescale the values or correct that entry")
    table = sim.observed_unit_statistics(panel)
    for j, column in enumerate(sim.unit_names):
        infinite = np.flatnonzero(np.isinf(table[:, j]))
        if infinite.size:
            causes.append(f"{column} is infinite for {infinite.size} unit(s) (first {unit_label(infinite[0])!r})")
        elif np.isnan(table[:, j]).all():
            single = int((counts == 1).sum())
            why = f" ({'each has' if single == panel.n_units else f'{single} of them have'} one observation)" if single else ""
            causes.append(f"{column} is undefined for every unit{why}")
            fixes.append("use statistics defined on these units" + (", or units with more observations" if single else ""))
    if not causes:
        causes.append(
            "every unit statistic is finite where defined, so an aggregate across units is not (a spread needs two "
            "units with the unit statistic defined)"
        )
    fixes = fixes or ["drop those statistics or change the design"]
    return (
        f"Statistic(s) {', '.join(names)} are NaN or infinite on the observed data: {'; '.join(causes)}; "
        f"{', or '.join(dict.fromkeys(fixes))}."
    )
