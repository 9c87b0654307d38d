"""Strict JSON: non-finite numbers are written as null."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from simfit import jsonio


def _refuse(name):
    raise ValueError(name)


@given(hs.recursive(hs.floats(allow_nan=True, allow_infinity=True) | hs.integers() | hs.text(max_size=3) | hs.none(),
                    lambda children: hs.lists(children, max_size=3) | hs.dictionaries(hs.text(max_size=3), children, max_size=3),
                    max_leaves=10))
def test_anything_serialises_to_strict_json(value):
    text = jsonio.dumps(value)
    back = json.loads(text, parse_constant=_refuse)

    def same(a, b):
        if isinstance(a, float) and not math.isfinite(a):
            return b is None
        if isinstance(a, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict):
            return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
        return a == b

    assert same(value, back)


def test_numpy_values_become_plain_numbers():
    text = jsonio.dumps({"a": np.float64(np.inf), "b": np.array([1.0, np.nan]), "c": np.int64(3), "d": np.bool_(True)})
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": 3, "d": True}
    with pytest.raises(ValueError):
        json.loads(json.dumps(float("nan")), parse_constant=_refuse)  # what the module avoids
