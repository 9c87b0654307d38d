"""JSON that every parser reads: non-finite numbers written as ``null``.

Python's :mod:`json` writes ``NaN`` and ``Infinity``, which are not JSON: strict parsers (and
``json.loads(..., parse_constant=...)`` raising) reject them. simfit's outputs (``--json`` lines,
summary and projection files) go through :func:`dumps`, which writes them as ``null``: an
undefined standard error, an interval's infinite upper limit, a statistic of a failed fit.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["finite", "dumps"]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, and NumPy scalars and arrays as
    plain Python numbers and lists (recursively through dicts, lists and tuples)."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return finite(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def dumps(value: Any, **kwargs) -> str:
    """``json.dumps`` of :func:`finite` ``(value)``, refusing any remaining non-finite number."""
    import json

    kwargs.setdefault("default", str)
    return json.dumps(finite(value), allow_nan=False, **kwargs)
