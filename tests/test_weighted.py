import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from simfit.weighted import systematic_resample, weighted_quantile


@settings(max_examples=100, deadline=None)
@given(arrays(float, st.integers(1, 30), elements=st.floats(0.0, 1.0)), st.integers(1, 500), st.integers(0, 2**32 - 1))
def test_systematic_resampling_keeps_each_weight_to_within_one_draw(w, size, seed):
    if w.sum() == 0:
        return
    w = w / w.sum()
    idx = systematic_resample(w, size, np.random.default_rng(seed))
    counts = np.bincount(idx, minlength=w.size)
    assert counts.sum() == size
    # Evenly spaced positions: each index is drawn floor or ceil of size * weight times.
    assert np.all(np.abs(counts - size * w) < 1.0 + 1e-9)


def test_equal_weights_give_the_midpoint_rule_quantiles(rng):
    # Each sorted draw at the middle of its weight's interval: Hazen's definition.
    values = rng.standard_normal(101)
    q = [0.1, 0.25, 0.5, 0.75, 0.9]
    assert np.allclose(weighted_quantile(values, q, np.full(101, 3.0)), np.quantile(values, q, method="hazen"))
