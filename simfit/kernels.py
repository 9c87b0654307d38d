"""Kernel signatures and the calling of user kernels from compiled engine code.

User kernels (level draws, observation simulators, statistics) are ordinary ``@njit`` functions
with one of the fixed signatures below. simfit compiles each for its signature, checks it once on
small inputs, and hands the compiled engine its *address*. The engine calls kernels through these
addresses, so one compiled (and disk-cached) engine serves every model and every set of
statistics: a new model costs the compilation of its own small kernels only, and calling the
engine never triggers recompilation.

Signatures (all arrays C-contiguous, float64 unless stated):

``draw(psi, parent, covariates, args, rng, theta) -> None``
    Level kernel. ``psi`` (n_params,) population parameters; ``parent`` parameters of the parent
    entity (``psi`` again for the first level); ``covariates`` (k,) of this entity; ``args`` fixed
    options; ``rng`` uint64 stream; writes ``theta`` (n_level_params,).
``simulate(psi, theta, x, args, rng, y) -> None``
    Observation kernel for one innermost entity: ``theta`` its parameters, ``x`` (n, n_cov)
    observation covariates; writes ``y`` (n, n_values).
``unit_statistic(y, x, groups, args, work, out) -> None``
    ``y`` (n, n_values) and ``x`` (n, n_cov) of one unit, ``groups`` int64 offsets of its
    innermost groups relative to the unit (``[0, n]`` without groups), ``work`` scratch space;
    writes ``out`` (n_out,).
``aggregate(unit_stats, columns, args, work, out) -> None``
    ``unit_stats`` (n_units, n_unit_columns) of one simulated panel, ``columns`` int64 indices of
    the unit-statistic columns it reads, ``work`` scratch of at least n_units; writes ``out``.
``curve(beta, x, args, out) -> None``
    Mean curve of an auxiliary model (:func:`simfit.statistics.nls`): ``beta`` (p,) its
    parameters, ``x`` (n, n_cov) the unit's observation covariates; writes ``out`` (n,).
"""

from __future__ import annotations

import inspect
import os
import types as types_module
from collections.abc import Callable

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import NumbaError, UnsupportedBytecodeError
from numba.core.registry import CPUDispatcher
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from simfit.errors import ModelError
from simfit.kernel_cache import key_on_dependencies

__all__ = [
    "DRAW_SIGNATURE",
    "SIMULATE_SIGNATURE",
    "UNIT_STATISTIC_SIGNATURE",
    "AGGREGATE_SIGNATURE",
    "CURVE_SIGNATURE",
    "compile_kernel",
    "call_kernel",
    "borrow",
    "shared_flag",
]

_vec = types.float64[::1]
_mat = types.float64[:, ::1]
_ivec = types.int64[::1]
_rng = types.uint64[::1]

DRAW_SIGNATURE = types.void(_vec, _vec, _vec, _vec, _rng, _vec)
SIMULATE_SIGNATURE = types.void(_vec, _vec, _mat, _vec, _rng, _mat)
UNIT_STATISTIC_SIGNATURE = types.void(_mat, _mat, _ivec, _vec, _vec, _vec)
AGGREGATE_SIGNATURE = types.void(_mat, _ivec, _vec, _vec, _vec)
CURVE_SIGNATURE = types.void(_vec, _mat, _vec, _vec)

_DESCRIPTIONS = {
    DRAW_SIGNATURE: "draw(psi, parent, covariates, args, rng, theta) with 1-D float64 arrays, a "
    "uint64 rng array, writing theta in place and returning nothing",
    SIMULATE_SIGNATURE: "simulate(psi, theta, x, args, rng, y) with psi, theta, args 1-D float64, "
    "x and y 2-D float64 (rows = observations), a uint64 rng array, writing y in place and "
    "returning nothing",
    UNIT_STATISTIC_SIGNATURE: "statistic(y, x, groups, args, work, out) with y and x 2-D float64, "
    "groups 1-D int64, args, work and out 1-D float64, writing out in place and returning nothing",
    AGGREGATE_SIGNATURE: "aggregate(unit_stats, columns, args, work, out) with unit_stats 2-D "
    "float64, columns 1-D int64, args, work and out 1-D float64, writing out in place and "
    "returning nothing",
    CURVE_SIGNATURE: "curve(beta, x, args, out) with beta, args and out 1-D float64, x 2-D float64 "
    "(rows = observations), writing out (one value per observation) in place and returning nothing",
}


def bounds_checked(kernel: Callable) -> bool:
    """Whether ``kernel`` is compiled in a bounds-checked copy: the kernels of user code (simfit's
    own are tested), and every kernel when the environment sets ``SIMFIT_CHECK=1`` (which also
    turns on Numba's bounds checking for everything, the engine included; see :mod:`simfit`)."""
    if os.environ.get("SIMFIT_CHECK", "") not in ("", "0"):
        return True
    module = getattr(getattr(kernel, "py_func", kernel), "__module__", "") or ""
    return not (module == "simfit" or module.startswith("simfit."))


def _checked_variant(kernel: CPUDispatcher) -> CPUDispatcher:
    """The same kernel compiled with Numba's bounds checking: an index outside an array raises
    IndexError (reported as the kernel's error) instead of reading or writing other memory.

    Numba's disk cache does not tell checked from unchecked builds apart, so the checked one is a
    copy of the function under its own name (its own cache entry)."""
    cached = _CHECKED.get(id(kernel))
    if cached is not None and cached[0] is kernel:
        return cached[1]
    py = kernel.py_func
    copy = types_module.FunctionType(py.__code__, py.__globals__, py.__name__, py.__defaults__, py.__closure__)
    copy.__qualname__ = py.__qualname__ + "__bounds_checked"
    copy.__module__ = py.__module__
    copy.__doc__ = py.__doc__
    options = {k: v for k, v in kernel.targetoptions.items() if k not in ("nopython", "boundscheck")}
    caching = type(kernel._cache).__name__ != "NullCache"
    try:
        checked = njit(boundscheck=True, cache=caching, **options)(copy)
    except Exception:  # caching impossible for this function (no source file): compile without
        checked = njit(boundscheck=True, **options)(copy)
    _CHECKED[id(kernel)] = (kernel, checked)
    return checked


_CHECKED: dict[int, tuple] = {}


def compile_kernel(kernel: Callable, signature, role: str, checked: bool | None = None) -> tuple[CPUDispatcher, np.ndarray]:
    """Compile ``kernel`` for ``signature`` and return it with its addresses.

    Parameters
    ----------
    kernel : numba dispatcher or Python function
        A plain Python function is compiled with ``njit`` (without disk caching). A dispatcher
        with ``cache=True`` is cached under a stamp of what it calls
        (:func:`simfit.kernel_cache.key_on_dependencies`).
    signature : numba signature
        One of the ``*_SIGNATURE`` constants.
    role : str
        What the kernel is for, used in error messages (e.g. ``"level 'unit' draw kernel"``).
    checked : bool, optional
        Compile with bounds checking (default: :func:`bounds_checked`): a kernel indexing outside
        its arrays, for some parameters or units only, raises an error naming it instead of
        corrupting memory.

    Returns
    -------
    dispatcher : numba dispatcher
    addresses : ndarray of int64, shape (2,)
        C-wrapper and native addresses of the compiled function, valid while the dispatcher lives.
    """
    if not isinstance(kernel, CPUDispatcher):
        if not callable(kernel):
            raise ModelError(f"The {role} must be a function decorated with @njit, got {kernel!r}.")
        kernel = njit(kernel)
    already = kernel.py_func.__qualname__.endswith("__bounds_checked")  # a dispatcher this returned
    if not already and (bounds_checked(kernel) if checked is None else checked):
        kernel = _checked_variant(kernel)
    key_on_dependencies(kernel)  # its disk cache notices a change in a function it calls
    name = getattr(kernel, "__name__", repr(kernel))
    try:
        n_args = len(inspect.signature(kernel.py_func).parameters)
    except (TypeError, ValueError):
        n_args = len(signature.args)
    if n_args != len(signature.args):
        raise ModelError(
            f"The {role} {name!r} takes {n_args} argument(s) but must take {len(signature.args)}: "
            f"{_DESCRIPTIONS[signature]}."
        )
    try:
        kernel.compile(signature.args)  # typed by the arguments alone, to report a bad return type
        cres = kernel.overloads[signature.args]
    except (NumbaError, TypeError, UnsupportedBytecodeError) as exc:
        first_line = str(exc).strip().splitlines()
        detail = next((ln for ln in first_line if ln.strip() and "Failed in" not in ln), "")
        raise ModelError(
            f"The {role} {name!r} does not compile for the expected signature "
            f"{_DESCRIPTIONS[signature]}. Numba said: {detail.strip()}"
        ) from exc
    if cres.signature.return_type != types.none:
        raise ModelError(
            f"The {role} {name!r} returns {cres.signature.return_type}; it must write its results "
            f"into its output array and return nothing: {_DESCRIPTIONS[signature]}."
        )
    lib = cres.library
    c_addr = lib.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name)
    jit_addr = lib.get_pointer_to_function(cres.fndesc.llvm_func_name)
    return kernel, np.array([c_addr, jit_addr], dtype=np.int64)


def _function_from_address(signature):
    """An intrinsic turning a pair of addresses into a callable first-class function value."""
    fnty = types.FunctionType(signature)

    @intrinsic
    def as_function(typingctx, c_addr, jit_addr):
        def codegen(context, builder, sig, args):
            proxy = cgutils.create_struct_proxy(fnty)(context, builder)
            voidptr = context.get_value_type(types.voidptr)
            proxy.c_addr = builder.inttoptr(args[0], voidptr)
            proxy.py_addr = voidptr(None)
            proxy.jit_addr = builder.inttoptr(args[1], voidptr)
            return proxy._getvalue()

        return fnty(types.int64, types.int64), codegen

    return as_function


draw_function = _function_from_address(DRAW_SIGNATURE)
simulate_function = _function_from_address(SIMULATE_SIGNATURE)
unit_statistic_function = _function_from_address(UNIT_STATISTIC_SIGNATURE)
aggregate_function = _function_from_address(AGGREGATE_SIGNATURE)
curve_function = _function_from_address(CURVE_SIGNATURE)


# Calls of one kernel from Python (set-up checks, replays of a failed unit) go through these
# compiled trampolines, which release the GIL: while a kernel that loops for ever runs there,
# simfit's watchdog thread can still take a Ctrl-C (see simfit.launch). A kernel's exception
# passes through them unchanged, type and message.


@njit(cache=True, nogil=True)
def _call_draw(address, psi, parent, covariates, args, rng, theta):
    draw_function(address[0], address[1])(psi, parent, covariates, args, rng, theta)


@njit(cache=True, nogil=True)
def _call_simulate(address, psi, theta, x, args, rng, y):
    simulate_function(address[0], address[1])(psi, theta, x, args, rng, y)


@njit(cache=True, nogil=True)
def _call_unit_statistic(address, y, x, groups, args, work, out):
    unit_statistic_function(address[0], address[1])(y, x, groups, args, work, out)


@njit(cache=True, nogil=True)
def _call_aggregate(address, unit_stats, columns, args, work, out):
    aggregate_function(address[0], address[1])(unit_stats, columns, args, work, out)


_TRAMPOLINES = {
    DRAW_SIGNATURE: _call_draw,
    SIMULATE_SIGNATURE: _call_simulate,
    UNIT_STATISTIC_SIGNATURE: _call_unit_statistic,
    AGGREGATE_SIGNATURE: _call_aggregate,
}


def call_kernel(signature, address: np.ndarray, *args) -> None:
    """Call the kernel compiled for ``signature`` at ``address`` (from :func:`compile_kernel`)
    from Python, without holding the GIL. ``args`` are its arguments, C-contiguous arrays of the
    signature's types (read-only inputs are copied: the signature's arrays are writable); the
    kernel's own exception propagates."""
    _TRAMPOLINES[signature](address, *(a if a.flags.writeable else a.copy() for a in args))


@intrinsic
def borrow(typingctx, arr):
    """The same array without its reference-counted owner.

    Numba counts references to arrays with atomic operations; a function taking many arrays and
    called once per unit spends more time on that bookkeeping than on simulating. The engine
    borrows its inputs once per parallel chunk, so per-unit calls and slices pass plain views.
    A borrowed array must not outlive the array it was borrowed from.
    """
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, value=args[0])
        dst = make_array(sig.return_type)(context, builder)
        for name in ("nitems", "itemsize", "data", "shape", "strides"):
            setattr(dst, name, getattr(src, name))
        dst.meminfo = context.get_constant_null(types.MemInfoPointer(types.voidptr))
        dst.parent = context.get_constant_null(types.pyobject)
        return dst._getvalue()

    return arr(arr), codegen


@intrinsic
def shared_flag(typingctx, flag):
    """``flag[0]`` (an int64 array that another thread may set), read from memory every time.

    A plain read in a loop may be hoisted out of it by the optimiser (nothing in the loop writes
    the array as far as it can tell), so that the loop never sees the other thread's store.
    """
    if not (isinstance(flag, types.Array) and flag.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        data = make_array(sig.args[0])(context, builder, value=args[0]).data
        return builder.load_atomic(data, "acquire", 8)

    return types.int64(flag), codegen
