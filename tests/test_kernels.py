"""Kernel compilation and calling through addresses."""

import numpy as np
import pytest
from numba import njit

from simfit.errors import ModelError
from simfit.kernels import DRAW_SIGNATURE, SIMULATE_SIGNATURE, UNIT_STATISTIC_SIGNATURE, compile_kernel


def test_plain_python_functions_are_compiled():
    def draw(psi, parent, covariates, args, rng, theta):
        theta[0] = psi[0] + 1.0

    dispatcher, addresses = compile_kernel(draw, DRAW_SIGNATURE, "draw kernel")
    assert addresses.shape == (2,) and np.all(addresses > 0)
    theta = np.zeros(1)
    dispatcher(np.array([2.0]), np.zeros(1), np.zeros(0), np.zeros(0), np.zeros(6, np.uint64), theta)
    assert theta[0] == 3.0


def test_recompiling_the_same_kernel_gives_the_same_address():
    @njit
    def stat(y, x, groups, args, work, out):
        out[0] = y.shape[0]

    first, a = compile_kernel(stat, UNIT_STATISTIC_SIGNATURE, "unit statistic")
    again, b = compile_kernel(stat, UNIT_STATISTIC_SIGNATURE, "unit statistic")
    assert np.array_equal(a, b) and first is again and len(first.signatures) == 1
    assert first is not stat  # a user kernel is compiled in its bounds-checked variant


def test_non_callable_is_rejected():
    with pytest.raises(ModelError, match="must be a function"):
        compile_kernel(3, DRAW_SIGNATURE, "draw kernel")


def test_a_kernel_numba_cannot_compile_is_a_model_error_not_a_numba_traceback():
    def importing(psi, theta, x, args, rng, y):
        import math

        for k in range(y.shape[0]):
            y[k, 0] = math.sqrt(2.0)

    with pytest.raises(ModelError, match="does not compile.*IMPORT_NAME"):
        compile_kernel(importing, SIMULATE_SIGNATURE, "observation kernel")
