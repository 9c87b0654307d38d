"""Compiled core of the engine: simulate units, reduce them to statistics, aggregate.

Everything here is an ``@njit(cache=True)`` function on arrays. User kernels arrive as addresses
(see :mod:`simfit.kernels`), so these functions are compiled once and serve every model. The
Python layer in :mod:`simfit.engine` validates inputs, builds the arrays and explains statuses.

Layout of the design arrays
---------------------------
``nest_flat[nest_start[l]:nest_start[l + 1]]`` are the offsets from the entities of level ``l``
to those of level ``l + 1`` (the last array points to observations). Covariates of entity ``e``
of level ``l`` are ``lcov_flat[lcov_start[l] + e * lcov_ncol[l]:][:lcov_ncol[l]]``. A unit's
parameters at every level live in one flat per-thread buffer, level ``l`` starting at
``theta_start[l]`` with room for the largest number of level-``l`` entities of any unit.

Status codes
------------
0 success; ``l + 1`` a level-``l`` draw kernel wrote a non-finite value (or left one unset);
``n_levels + 1`` the observation kernel did. ``info`` then holds
(entity index, row, column, value). The drivers set a unit's status to ``UNFINISHED`` before
simulating it: a kernel that raises inside a parallel loop aborts the iteration without reporting,
so a status still ``UNFINISHED`` afterwards means a kernel raised.

Interrupts
----------
The drivers release the GIL (``nogil``), so that simfit's watchdog thread runs while they do
(see :mod:`simfit.launch`), and take a last argument ``cancel`` (int64, shape (1,)): once it is
non-zero, every thread skips its remaining units or panels and the launch returns early, its
outputs unfinished. A kernel that never returns from one unit is not stopped by it.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from simfit.kernels import (
    aggregate_function,
    borrow,
    draw_function,
    shared_flag,
    simulate_function,
    unit_statistic_function,
)
from simfit.random import STREAM_SIZE, seed_stream


@njit(cache=True)
def _offsets(nest_flat, nest_start, level):
    return nest_flat[nest_start[level] : nest_start[level + 1]]


@njit(cache=True)
def _keep_alive(*arrays):
    # Numba frees an array right after its last use. The per-chunk scratch owners are used only
    # through borrowed views (see kernels.borrow), so they are "used" here, after the chunk's
    # loop, to stay allocated while the views are in use.
    return len(arrays)


@njit(cache=True)
def innermost_range(nest_flat, nest_start, n_levels, unit):
    """Indices [lo, hi) of the innermost entities (groups) of ``unit``."""
    lo = unit
    hi = unit + 1
    for level in range(n_levels - 1):
        off = _offsets(nest_flat, nest_start, level)
        lo = off[lo]
        hi = off[hi]
    return lo, hi


_EXPONENT = np.uint64(0x7FF0000000000000)
_NAN_BITS = np.uint64(0x7FF8000000000000)
#: Status of a unit whose simulation or statistics did not finish (a kernel raised).
UNFINISHED = -1


@njit(cache=True)
def _all_finite(bits):
    """Whether no float64 (given as its uint64 bit patterns) is NaN or infinite: a branch-free
    integer pass that vectorises, unlike a loop of ``math.isfinite``."""
    bad = np.uint64(0)
    for k in range(bits.shape[0]):
        bad |= np.uint64((bits[k] & _EXPONENT) == _EXPONENT)
    return bad == 0


@njit(cache=True)
def _fill_nan(v):
    for j in range(v.shape[0]):
        v[j] = np.nan


@njit(cache=True)
def _first_non_finite_1d(v, info, entity):
    for j in range(v.shape[0]):
        if not math.isfinite(v[j]):
            info[0] = entity
            info[1] = 0
            info[2] = j
            info[3] = v[j]
            return True
    return False


@njit(cache=True, inline="always")
def simulate_unit(
    psi, seed, sim, unit,
    nest_flat, nest_start, lcov_flat, lcov_start, lcov_ncol, x,
    level_addr, level_dim, level_args, level_args_start, obs_addr, obs_args,
    theta_buf, theta_start, y, y_bits, groups, rng, info,
):
    """Simulate one unit of one simulated panel into the per-thread buffers.

    ``y_bits`` is the buffer ``y`` seen as a flat array of uint64, for the finiteness check.

    Writes the unit's observations to ``y[:n_unit]``, its innermost group offsets (relative to the
    unit) to ``groups[:n_groups + 1]`` and the parameters of all its entities to ``theta_buf``.
    Returns a status code (0 = success).
    """
    n_levels = level_dim.shape[0]
    lo = unit
    hi = unit + 1
    for level in range(n_levels):
        d = level_dim[level]
        draw = draw_function(level_addr[level, 0], level_addr[level, 1])
        args = level_args[level_args_start[level] : level_args_start[level + 1]]
        ncol = lcov_ncol[level]
        cst = lcov_start[level]
        base = theta_start[level]
        if level == 0:
            theta = theta_buf[base : base + d]
            _fill_nan(theta)
            seed_stream(rng, seed, sim, 1, unit)
            draw(psi, psi, lcov_flat[cst + unit * ncol : cst + (unit + 1) * ncol], args, rng, theta)
            if _first_non_finite_1d(theta, info, unit):
                return 1
            continue
        off = _offsets(nest_flat, nest_start, level - 1)
        new_lo = off[lo]
        new_hi = off[hi]
        pd = level_dim[level - 1]
        pbase = theta_start[level - 1]
        for p in range(lo, hi):
            parent = theta_buf[pbase + (p - lo) * pd : pbase + (p - lo + 1) * pd]
            for e in range(off[p], off[p + 1]):
                at = base + (e - new_lo) * d
                theta = theta_buf[at : at + d]
                _fill_nan(theta)
                seed_stream(rng, seed, sim, level + 1, e)
                draw(psi, parent, lcov_flat[cst + e * ncol : cst + (e + 1) * ncol], args, rng, theta)
                if _first_non_finite_1d(theta, info, e):
                    return level + 1
        lo = new_lo
        hi = new_hi
    obs_off = _offsets(nest_flat, nest_start, n_levels - 1)
    first = obs_off[lo]
    n = obs_off[hi] - first
    nv = y.shape[1]
    # Unwritten outputs must read as NaN, not as the previous unit's values.
    for k in range(n * nv):
        y_bits[k] = _NAN_BITS
    simulate = simulate_function(obs_addr[0], obs_addr[1])
    d = level_dim[n_levels - 1]
    base = theta_start[n_levels - 1]
    for g in range(lo, hi):
        a = obs_off[g]
        b = obs_off[g + 1]
        groups[g - lo] = a - first
        seed_stream(rng, seed, sim, n_levels + 1, g)
        simulate(psi, theta_buf[base + (g - lo) * d : base + (g - lo + 1) * d], x[a:b], obs_args, rng, y[a - first : b - first])
    groups[hi - lo] = obs_off[hi] - first
    if _all_finite(y_bits[: n * nv]):
        return 0
    for k in range(n):
        for j in range(nv):
            if not math.isfinite(y[k, j]):
                info[0] = unit
                info[1] = k
                info[2] = j
                info[3] = y[k, j]
                return n_levels + 1
    return 0


@njit(cache=True, inline="always")
def unit_statistics(y, x, groups, u_addr, u_args, u_args_start, u_out_start, work, out):
    """Apply every unit statistic to one unit, writing the unit's row of the statistics table."""
    for k in range(u_addr.shape[0]):
        stat = unit_statistic_function(u_addr[k, 0], u_addr[k, 1])
        stat(
            y, x, groups,
            u_args[u_args_start[k] : u_args_start[k + 1]],
            work,
            out[u_out_start[k] : u_out_start[k + 1]],
        )


@njit(cache=True, parallel=True, nogil=True)
def simulate_unit_statistics(
    psi_rows, sims_per_psi, row_offset, seed, sim_keys, n_sims, chunk,
    nest_flat, nest_start, lcov_flat, lcov_start, lcov_ncol, x,
    level_addr, level_dim, level_args, level_args_start, obs_addr, obs_args,
    theta_size, theta_start, max_obs, max_groups, n_values,
    u_addr, u_args, u_args_start, u_out_start, u_work,
    table, status, theta_out, cancel,
):
    """Fused path: simulate every (simulation, unit) and reduce it at once to unit statistics.

    Simulation ``s`` runs at the population parameters ``psi_rows[(row_offset + s) // sims_per_psi]``
    with the random keys of simulation ``sim_keys[s]`` (int64, shape (n_sims,)), so one launch
    serves many parameter vectors (``row_offset``: simulations of the first row done by an earlier
    launch), each with keys of its own or shared.
    ``table`` (n_sims, n_units, n_unit_columns) receives the unit statistics, ``status``
    (n_sims, n_units) the status codes and, unless it is empty, ``theta_out`` (n_sims, n_units,
    n_unit_params) each unit's own (first-level) parameters. Memory is per thread, never per
    observation.
    """
    n_units = table.shape[1]
    n_levels = level_dim.shape[0]
    total = n_sims * n_units
    n_chunks = (total + chunk - 1) // chunk
    keep_theta = theta_out.shape[0] > 0
    d0 = level_dim[0]
    for c in prange(n_chunks):
        rng_own = np.empty(STREAM_SIZE, dtype=np.uint64)
        theta_own = np.empty(theta_size)
        y_own = np.empty((max_obs, n_values))
        groups_own = np.empty(max_groups + 1, dtype=np.int64)
        work_own = np.empty(u_work)
        info_own = np.empty(4)
        # Borrowed views: no reference counting in the per-unit calls below (see kernels.borrow).
        rng, theta_buf, y, groups = borrow(rng_own), borrow(theta_own), borrow(y_own), borrow(groups_own)
        y_bits = borrow(y_own.reshape(-1).view(np.uint64))
        work, info = borrow(work_own), borrow(info_own)
        b_psi_rows, b_nest_flat, b_nest_start = borrow(psi_rows), borrow(nest_flat), borrow(nest_start)
        b_sim_keys = borrow(sim_keys)
        b_lcov_flat, b_lcov_start, b_lcov_ncol, b_x = borrow(lcov_flat), borrow(lcov_start), borrow(lcov_ncol), borrow(x)
        b_level_addr, b_level_dim, b_level_args = borrow(level_addr), borrow(level_dim), borrow(level_args)
        b_level_args_start, b_obs_addr, b_obs_args = borrow(level_args_start), borrow(obs_addr), borrow(obs_args)
        b_theta_start, b_table = borrow(theta_start), borrow(table)
        b_u_addr, b_u_args = borrow(u_addr), borrow(u_args)
        b_u_args_start, b_u_out_start = borrow(u_args_start), borrow(u_out_start)
        obs_off = _offsets(b_nest_flat, b_nest_start, n_levels - 1)
        stop = min(total, (c + 1) * chunk)
        for t in range(c * chunk, stop):
            if shared_flag(cancel) != 0:
                break
            s = t // n_units
            i = t - s * n_units
            status[s, i] = UNFINISHED
            code = simulate_unit(
                b_psi_rows[(row_offset + s) // sims_per_psi], seed, b_sim_keys[s], i,
                b_nest_flat, b_nest_start, b_lcov_flat, b_lcov_start, b_lcov_ncol, b_x,
                b_level_addr, b_level_dim, b_level_args, b_level_args_start, b_obs_addr, b_obs_args,
                theta_buf, b_theta_start, y, y_bits, groups, rng, info,
            )
            status[s, i] = code
            if code != 0:
                b_table[s, i, :] = np.nan
                continue
            if keep_theta:
                for j in range(d0):
                    theta_out[s, i, j] = theta_buf[b_theta_start[0] + j]
            lo, hi = innermost_range(b_nest_flat, b_nest_start, n_levels, i)
            a = obs_off[lo]
            b = obs_off[hi]
            status[s, i] = UNFINISHED
            unit_statistics(
                y[: b - a], b_x[a:b], groups[: hi - lo + 1],
                b_u_addr, b_u_args, b_u_args_start, b_u_out_start, work, b_table[s, i],
            )
            status[s, i] = 0
        _keep_alive(rng_own, theta_own, y_own, groups_own, work_own, info_own)


@njit(cache=True, parallel=True, nogil=True)
def observed_unit_statistics(
    values, chunk, nest_flat, nest_start, x, max_groups,
    u_addr, u_args, u_args_start, u_out_start, u_work, table, status, cancel,
):
    """Unit statistics of an observed panel: ``table`` (n_units, n_unit_columns); ``status``
    (n_units,) ends at 0 for every unit whose statistics finished."""
    n_units = table.shape[0]
    n_levels = nest_start.shape[0] - 1
    n_chunks = (n_units + chunk - 1) // chunk
    for c in prange(n_chunks):
        groups = np.empty(max_groups + 1, dtype=np.int64)
        work = np.empty(u_work)
        for i in range(c * chunk, min(n_units, (c + 1) * chunk)):
            if shared_flag(cancel) != 0:
                break
            lo, hi = innermost_range(nest_flat, nest_start, n_levels, i)
            obs_off = _offsets(nest_flat, nest_start, n_levels - 1)
            a = obs_off[lo]
            b = obs_off[hi]
            for g in range(lo, hi + 1):
                groups[g - lo] = obs_off[g] - a
            status[i] = UNFINISHED
            unit_statistics(
                values[a:b], x[a:b], groups[: hi - lo + 1],
                u_addr, u_args, u_args_start, u_out_start, work, table[i],
            )
            status[i] = 0


@njit(cache=True, parallel=True, nogil=True)
def aggregate(table, a_addr, a_cols, a_cols_start, a_args, a_args_start, a_out_start, out, status, cancel):
    """Aggregate the unit-statistics table of each panel: ``out`` (n_sims, n_stats); ``status``
    (n_sims,) ends at 0 for every panel whose aggregates finished."""
    n_units = table.shape[1]
    for s in prange(table.shape[0]):
        if shared_flag(cancel) != 0:
            continue
        status[s] = UNFINISHED
        work = np.empty(n_units + 16)
        for k in range(a_addr.shape[0]):
            agg = aggregate_function(a_addr[k, 0], a_addr[k, 1])
            agg(
                table[s],
                a_cols[a_cols_start[k] : a_cols_start[k + 1]],
                a_args[a_args_start[k] : a_args_start[k + 1]],
                work,
                out[s, a_out_start[k] : a_out_start[k + 1]],
            )
        status[s] = 0


@njit(cache=True, parallel=True, nogil=True)
def simulate_panels(
    psi, seed, first_sim, n_sims, chunk,
    nest_flat, nest_start, lcov_flat, lcov_start, lcov_ncol, x,
    level_addr, level_dim, level_args, level_args_start, obs_addr, obs_args,
    theta_size, theta_start, max_obs, max_groups,
    unit_obs_start, entity_start, thetas_flat, thetas_start, values, status, info_out, cancel,
):
    """Materialising path: the same per-unit simulation, copied out to whole panels.

    ``values`` (n_sims, n_obs, n_values); level ``l`` parameters of entity ``e`` in simulation
    ``s`` go to ``thetas_flat[thetas_start[l] + (s * n_entities_l + e) * dim_l:]``, where
    ``entity_start[l, i]`` is the first level-``l`` entity of unit ``i``.
    """
    n_units = status.shape[1]
    n_levels = level_dim.shape[0]
    n_values = values.shape[2]
    total = n_sims * n_units
    n_chunks = (total + chunk - 1) // chunk
    for c in prange(n_chunks):
        rng = np.empty(STREAM_SIZE, dtype=np.uint64)
        theta_buf = np.empty(theta_size)
        y = np.empty((max_obs, n_values))
        y_bits = y.reshape(-1).view(np.uint64)
        groups = np.empty(max_groups + 1, dtype=np.int64)
        info = np.empty(4)
        for t in range(c * chunk, min(total, (c + 1) * chunk)):
            if shared_flag(cancel) != 0:
                break
            s = t // n_units
            i = t - s * n_units
            status[s, i] = UNFINISHED
            code = simulate_unit(
                psi, seed, first_sim + s, i,
                nest_flat, nest_start, lcov_flat, lcov_start, lcov_ncol, x,
                level_addr, level_dim, level_args, level_args_start, obs_addr, obs_args,
                theta_buf, theta_start, y, y_bits, groups, rng, info,
            )
            status[s, i] = code
            if code != 0:
                info_out[s, i, :] = info
            a = unit_obs_start[i]
            b = unit_obs_start[i + 1]
            values[s, a:b, :] = y[: b - a, :]
            for level in range(n_levels):
                d = level_dim[level]
                n_ent = entity_start[level, n_units]
                e0 = entity_start[level, i]
                e1 = entity_start[level, i + 1]
                dst = thetas_start[level] + (s * n_ent + e0) * d
                src = theta_start[level]
                for k in range((e1 - e0) * d):
                    thetas_flat[dst + k] = theta_buf[src + k]
