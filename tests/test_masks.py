"""Dropout's masks from the raw words (nn/masks.py) are NumPy's own float draws compared
with the rate, bit for bit, and leave the generator where NumPy's draw leaves it: every
run's masks, and so every number after them, are what they were."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabric_cli.nn.masks import keep_mask


def numpy_mask(rng, shape, p):
    return rng.random(shape, dtype=np.float32) >= p


def twins(seed, offset):
    """Two generators in one state, moved `offset` float32 draws in (an odd offset leaves a
    high half waiting in the state)."""
    pair = [np.random.default_rng(seed) for _ in range(2)]
    for rng in pair:
        rng.random(offset, dtype=np.float32)
    return pair


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), offset=st.integers(0, 5),
       shape=st.lists(st.integers(0, 9), min_size=1, max_size=4).map(tuple),
       p=st.one_of(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.9, 1e-9, 0.99999999, 1.0]),
                   st.floats(0.0, 1.0)))
def test_the_mask_and_the_state_after_are_numpys(seed, offset, shape, p):
    ours, theirs = twins(seed, offset)
    mask = keep_mask(ours, shape, p)
    expected = numpy_mask(theirs, shape, p)
    assert mask.shape == expected.shape and mask.dtype == bool
    assert np.array_equal(mask, expected)
    assert ours.bit_generator.state == theirs.bit_generator.state
    # and the draws after it are the same: nothing of the stream was skipped or reused
    assert np.array_equal(ours.random(7, dtype=np.float32), theirs.random(7, dtype=np.float32))


def test_a_run_of_masks_of_odd_and_even_sizes_stays_in_step():
    ours, theirs = twins(3, 0)
    for shape, p in [((3, 5), 0.1), ((2, 4, 6, 6), 0.1), ((1,), 0.3), ((32, 24, 64), 0.1),
                     ((7,), 0.5), ((0, 3), 0.1), ((5, 5), 0.0)]:
        assert np.array_equal(keep_mask(ours, shape, p), numpy_mask(theirs, shape, p))
    assert ours.bit_generator.state == theirs.bit_generator.state


def test_rates_on_either_side_of_a_float32_boundary():
    """The threshold is exact where the rate falls between two float32 draws' values."""
    step = 2.0**-24
    for k in (1, 1677721, 1677722, 2**23, 2**24 - 1):
        for p in (k * step, np.nextafter(k * step, 0), np.nextafter(k * step, 1)):
            ours, theirs = twins(11, 1)
            assert np.array_equal(keep_mask(ours, (4097,), float(p)),
                                  numpy_mask(theirs, (4097,), float(p)))


@pytest.mark.parametrize("bits", [np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_other_bit_generators_draw_as_numpy_does(bits):
    ours, theirs = np.random.Generator(bits(5)), np.random.Generator(bits(5))
    assert np.array_equal(keep_mask(ours, (9, 11), 0.1), numpy_mask(theirs, (9, 11), 0.1))
    assert np.array_equal(ours.random(5), theirs.random(5))  # their states hold arrays


@pytest.mark.parametrize("p", [0.1, 0.3, 1e-7, 0.5, 0.7654321, 2.0**-24, 1 - 2.0**-24])
def test_the_threshold_is_the_first_word_numpy_keeps(p):
    """Words at the threshold and one draw below it, turned into floats as NumPy does."""
    from fabric_cli.nn.masks import _threshold

    k = _threshold(p) >> 8  # the least (w >> 8) kept
    floats = np.array([k - 1, k], dtype=np.float32) * np.float32(2.0**-24)
    assert list(floats >= p) == [False, True]
    for w, kept in [((k << 8) - 1, False), (k << 8, True), ((k << 8) + 255, True)]:
        rng = np.random.default_rng(0)
        rng.bit_generator.state = {**rng.bit_generator.state, "has_uint32": 1, "uinteger": w}
        assert keep_mask(rng, (1,), p)[0] == kept
