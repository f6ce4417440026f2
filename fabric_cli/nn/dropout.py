"""Dropout: during training, silence a random fraction p of units and scale the rest by 1/(1-p).

Inverted dropout, so nothing changes at inference. Shapes: any; the mask has x's shape.
    dropout_forward(x, p, rng=None, mask=None) -> out, cache   (cache.kept: fraction kept)
A given boolean `mask` (True = kept) replaces the random draw, for gradient checks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fabric_cli.nn.masks import keep_mask


class DropoutCache(NamedTuple):
    scale: np.ndarray | None  # mask / (1-p) in x's dtype; None when nothing was dropped
    kept: float  # fraction of units kept (1.0 when p == 0)
    kept_count: int
    total_count: int


def dropout_forward(
    x: np.ndarray,
    p: float,
    rng: np.random.Generator | None = None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, DropoutCache]:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {p}")
    if p == 0.0 and mask is None:
        return x, DropoutCache(None, 1.0, x.size, x.size)
    if mask is None:
        if rng is None:
            raise ValueError("dropout needs a random generator (or a mask)")
        mask = keep_mask(rng, x.shape, p)  # rng.random(x.shape, dtype=np.float32) >= p
    elif mask.shape != x.shape:
        raise ValueError(f"dropout mask shape {mask.shape} != input shape {x.shape}")
    scale = np.multiply(mask, np.asarray(1.0 / (1.0 - p), dtype=x.dtype))  # one pass
    kept_count = int(np.count_nonzero(mask))
    return x * scale, DropoutCache(scale, kept_count / x.size, kept_count, x.size)


def dropout_backward(dout: np.ndarray, cache: DropoutCache) -> np.ndarray:
    if cache.scale is None:
        return dout
    return dout * cache.scale
