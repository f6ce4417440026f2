"""Figures at the far ends of a float: the narrators' numbers never end a story in an
internal error, and a power of ten always has a mantissa from 1 to 10."""

from __future__ import annotations

import pytest

from fabric_cli.narrate.format import pct, sig


@pytest.mark.parametrize(("value", "written"), [
    (1e-320, "1 × 10^-320"),  # below float64's normal range
    (5e-324, "5 × 10^-324"),  # the smallest float there is
    (2.5e-310, "2.5 × 10^-310"),
    (6.86e-15, "6.86 × 10^-15"),
    (-1.69e11, "-1.69 × 10^11"),
])
def test_a_power_of_ten_is_written_with_its_own_exponent(value, written):
    assert sig(value) == written


def test_a_share_too_large_to_scale_is_a_word_not_a_crash():
    assert pct(1e307) == "infinity"
    assert pct(-1e307) == "minus infinity"
