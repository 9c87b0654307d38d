"""Requests checked against the machine before any work: a clear refusal instead of a raw
``MemoryError`` halfway through (or an hour of building a list that cannot fit)."""

from __future__ import annotations

import os

from simfit.errors import ArgumentError

__all__ = ["physical_memory", "require_memory", "format_bytes"]


def physical_memory() -> int:
    """Bytes of physical memory of this machine (a large default where the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 1 << 40


def format_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "bytes" else f"{int(n)} bytes"
        n /= 1024
    return f"{n:.3g} PB"  # pragma: no cover


def require_memory(nbytes: float, what: str, fix: str, share: float = 0.8) -> None:
    """Raise :class:`ArgumentError` when ``nbytes`` exceed ``share`` of the physical memory.

    Parameters
    ----------
    nbytes : float
        Estimated size of the request.
    what : str
        What would be allocated (e.g. ``"the statistics of 10^12 simulated panels"``).
    fix : str
        What to change (e.g. ``"use fewer simulations (n_sims)"``).
    """
    limit = share * physical_memory()
    if nbytes > limit:
        raise ArgumentError(
            f"{what[0].upper()}{what[1:]} would need about {format_bytes(nbytes)}, more than this machine's "
            f"{format_bytes(physical_memory())} of memory allows; {fix}."
        )
