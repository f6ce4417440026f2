"""The Loss, the Fabric's judgment: softmax cross-entropy of the next token.

Shapes: B batch, T time, V vocab.
    cross_entropy_forward(logits (B,T,V), targets (B,T) int) -> (loss, token_losses (B,T)), cache
Targets < 0 are padding: ignored, their token loss is 0. The loss is the mean over the
non-ignored targets (0 when there are none). Stable for huge logits: the row's maximum is
subtracted before exponentiating (log-sum-exp).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class CrossEntropy(NamedTuple):
    loss: float
    token_losses: np.ndarray  # (B,T)


class CrossEntropyCache(NamedTuple):
    probs: np.ndarray  # (B,T,V) softmax of the logits
    targets: np.ndarray  # (B,T) with padding clamped to 0
    valid: np.ndarray  # (B,T) bool
    n_valid: int


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, stable for large logits."""
    e = logits - logits.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def cross_entropy_forward(
    logits: np.ndarray, targets: np.ndarray
) -> tuple[CrossEntropy, CrossEntropyCache]:
    valid = targets >= 0
    safe_targets = np.where(valid, targets, 0)
    shifted = logits - logits.max(axis=-1, keepdims=True)  # (B,T,V), max is 0
    probs = np.exp(shifted)
    sums = probs.sum(axis=-1)  # (B,T), in [1, V]
    probs /= sums[..., None]
    target_shifted = np.take_along_axis(shifted, safe_targets[..., None], axis=-1)[..., 0]
    token_losses = np.log(sums) - target_shifted  # -log p(target) = logsumexp - logit
    token_losses *= valid
    n_valid = int(np.count_nonzero(valid))
    loss = float(token_losses.sum(dtype=np.float64)) / max(n_valid, 1)
    return CrossEntropy(loss, token_losses), CrossEntropyCache(probs, safe_targets, valid, n_valid)


def cross_entropy_backward(dloss: float, cache: CrossEntropyCache) -> np.ndarray:
    """dL/dlogits = (softmax - onehot(target)) / n_valid on kept positions, 0 on padding."""
    probs, targets, valid, n_valid = cache
    dlogits = probs.copy()
    np.put_along_axis(
        dlogits,
        targets[..., None],
        np.take_along_axis(probs, targets[..., None], axis=-1) - 1.0,
        axis=-1,
    )
    dlogits *= (valid * (dloss / max(n_valid, 1))).astype(probs.dtype)[..., None]
    return dlogits
