from hypothesis import given, settings
from hypothesis import strategies as st

from simfit.seeding import derive_seed

seeds = st.integers(min_value=0, max_value=2**63 - 1)
tags = st.lists(st.integers(min_value=0, max_value=2**31), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(seeds, tags)
def test_a_derived_seed_depends_only_on_the_seed_and_tags(seed, tag):
    a = derive_seed(seed, *tag)
    assert a == derive_seed(seed, *tag)
    assert 0 <= a < 2**63  # a valid seed for numpy and for the engine's int64 keys


@settings(max_examples=200, deadline=None)
@given(seeds, tags, tags)
def test_different_tags_give_different_seeds(seed, a, b):
    if a != b:
        assert derive_seed(seed, *a) != derive_seed(seed, *b)


def test_tags_are_ordered_and_the_seed_matters():
    assert derive_seed(1, 2, 3) != derive_seed(1, 3, 2)
    assert derive_seed(1, 2) != derive_seed(2, 2)
