"""Where tokens enter and leave the Fabric: token + learned position embedding, and the unembed.

Shapes: B batch, T time, C channels (d_model), V vocab, n_ctx the longest sequence.
    embedding_forward(tokens (B,T) int, W_E (V,C), W_pos (n_ctx,C)) -> out (B,T,C)
    unembed_forward(x (B,T,C), W_U (C,V), b_U (V,)) -> logits (B,T,V)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class EmbeddingCache(NamedTuple):
    tokens: np.ndarray  # (B,T) int
    vocab_shape: tuple[int, int]  # W_E.shape
    pos_shape: tuple[int, int]  # W_pos.shape
    dtype: np.dtype


def embedding_forward(
    tokens: np.ndarray, W_E: np.ndarray, W_pos: np.ndarray
) -> tuple[np.ndarray, EmbeddingCache]:
    T = tokens.shape[1]
    out = W_E[tokens]  # (B,T,C), a fresh array (fancy indexing copies)
    out += W_pos[:T]
    return out, EmbeddingCache(tokens, W_E.shape, W_pos.shape, W_E.dtype)


def embedding_backward(
    dout: np.ndarray, cache: EmbeddingCache
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (dW_E, dW_pos); token ids have no gradient."""
    tokens, vocab_shape, pos_shape, dtype = cache
    B, T, C = dout.shape
    # Rows of W_E used several times in the batch collect every use's gradient: one-hot (B*T,V)
    # transposed times dout, a small matmul that is several times faster than np.add.at.
    one_hot = tokens.reshape(-1, 1) == np.arange(vocab_shape[0])
    dW_E = one_hot.T.astype(dtype) @ dout.reshape(B * T, C)
    dW_pos = np.zeros(pos_shape, dtype=dtype)
    dW_pos[:T] = dout.sum(axis=0)
    return dW_E, dW_pos


class UnembedCache(NamedTuple):
    x2: np.ndarray  # (B*T, C)
    W_U: np.ndarray  # (C, V)


def unembed_forward(
    x: np.ndarray, W_U: np.ndarray, b_U: np.ndarray
) -> tuple[np.ndarray, UnembedCache]:
    B, T, C = x.shape
    x2 = x.reshape(B * T, C)
    logits = x2 @ W_U
    logits += b_U
    return logits.reshape(B, T, -1), UnembedCache(x2, W_U)


def unembed_backward(
    dlogits: np.ndarray, cache: UnembedCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (dx (B,T,C), dW_U, db_U)."""
    x2, W_U = cache
    B, T, V = dlogits.shape
    d2 = dlogits.reshape(B * T, V)
    dx = (d2 @ W_U.T).reshape(B, T, -1)
    return dx, x2.T @ d2, d2.sum(axis=0)
