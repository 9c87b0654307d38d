"""Memory requests checked against the machine: sizes in words, refusals that name the fix."""

import pytest

from simfit.errors import ArgumentError
from simfit.resources import format_bytes, physical_memory, require_memory


def test_physical_memory_is_positive_bytes():
    assert isinstance(physical_memory(), int) and physical_memory() > 0


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1 KB"), (1536, "1.5 KB"), (3 * 1024**3, "3 GB"), (1024**5, "1 PB"), (2048 * 1024**5, "2.05e+03 PB")],
)
def test_format_bytes_picks_the_largest_unit_below(n, text):
    assert format_bytes(n) == text


def test_require_memory_refuses_above_its_share_of_the_machine_and_names_the_fix():
    total = physical_memory()
    require_memory(0.5 * total, "a small table", "use less", share=0.8)
    with pytest.raises(ArgumentError, match=r"^A big table would need about .*; use fewer units\.$"):
        require_memory(0.9 * total, "a big table", "use fewer units", share=0.8)
