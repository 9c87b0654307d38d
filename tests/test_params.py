"""Parameters: transforms derived from bounds, vectorised round trips, validation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from simfit.errors import ModelError
from simfit.params import Param, ParamSet


@pytest.mark.parametrize(
    "bounds, transform",
    [((-math.inf, math.inf), "identity"), ((0, math.inf), "log"), ((-math.inf, 2), "log"), ((-1, 1), "logit")],
)
def test_transform_derived_from_bounds(bounds, transform):
    assert Param("p", bounds=bounds).transform == transform


finite = hs.floats(min_value=-50, max_value=50, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(lo=finite, width=hs.floats(min_value=1e-2, max_value=100), u=hs.floats(min_value=-12, max_value=12))
def test_round_trip_from_free_scale(lo, width, u):
    # |u| <= 12 keeps natural values representable well inside the bounds in float64.
    for bounds in [(lo, lo + width), (lo, math.inf), (-math.inf, lo), (-math.inf, math.inf)]:
        p = Param("p", bounds=bounds)
        x = p.to_natural(u)
        assert p.contains(float(x))
        assert np.isclose(p.to_free(x), u, rtol=1e-5, atol=1e-5)


@settings(max_examples=100, deadline=None)
@given(values=hs.lists(hs.floats(min_value=0.01, max_value=0.99), min_size=1, max_size=20))
def test_vectorised_round_trip_natural(values):
    ps = ParamSet((Param("a"), Param("b", (0, math.inf)), Param("c", (0, 1))))
    v = np.array(values)
    natural = np.stack([v * 10 - 5, v * 3, v], axis=-1)
    free = ps.to_free(natural)
    assert free.shape == natural.shape
    assert np.allclose(ps.to_natural(free), natural, rtol=1e-10, atol=1e-12)


def test_jacobian_matches_finite_differences():
    ps = ParamSet((Param("a"), Param("b", (0, math.inf)), Param("c", (-2, 3)), Param("d", (-math.inf, 1))))
    u = np.array([0.3, -0.2, 0.7, 0.1])
    h = 1e-6
    fd = (ps.to_natural(u + h) - ps.to_natural(u - h)) / (2 * h)
    assert np.allclose(ps.jacobian_diag(u), fd, rtol=1e-6)


def test_start_outside_bounds_is_rejected():
    with pytest.raises(ModelError, match="outside its bounds"):
        Param("tau", bounds=(0, math.inf), start=-1)


def test_empty_bounds_and_bad_transform_are_rejected():
    with pytest.raises(ModelError, match="empty"):
        Param("p", bounds=(1, 1))
    with pytest.raises(ModelError, match="does not fit bounds"):
        Param("p", bounds=(0, 1), transform="log")
    with pytest.raises(ModelError, match="unknown transform"):
        Param("p", transform="probit")


def test_paramset_vectors_and_errors():
    ps = ParamSet((Param("mu"), Param("tau", (0, math.inf))))
    assert np.array_equal(ps.as_vector({"tau": 2.0, "mu": 1.0}), [1.0, 2.0])
    with pytest.raises(ModelError, match="Unknown parameter"):
        ps.as_vector({"mu": 1, "tau": 1, "sigma": 1})
    with pytest.raises(ModelError, match="Missing"):
        ps.as_vector({"mu": 1})
    with pytest.raises(ModelError, match="outside its bounds"):
        ps.as_vector([1.0, -1.0])
    with pytest.raises(ModelError, match="Expected 2"):
        ps.as_vector([1.0])
    with pytest.raises(ModelError, match="Duplicate"):
        ParamSet((Param("a"), Param("a")))


def test_far_free_values_stay_inside_the_bounds():
    for bounds, u in [((-1, 3), 40.0), ((-math.inf, -1), -800.0), ((2, math.inf), 800.0), ((0, 1), -1e4)]:
        p = Param("p", bounds=bounds)
        x = float(p.to_natural(u))
        assert p.contains(x), (bounds, u, x)


def test_non_numeric_values_are_model_errors():
    ps = ParamSet((Param("a"), Param("b")))
    with pytest.raises(ModelError, match="must be numbers"):
        ps.as_vector(["x", "y"])
    with pytest.raises(ModelError, match="must be numbers"):
        ps.as_vector({"a": "x", "b": 1})
