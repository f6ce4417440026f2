"""Causal multi-head self-attention: every head asks each earlier token how much it matters.

Shapes: B batch, T time, C channels (d_model), NH heads, HS head size (d_head).
Weights in TransformerLens' layout:
    W_Q, W_K, W_V (NH,C,HS); b_Q, b_K, b_V (NH,HS); W_O (NH,HS,C); b_O (C,)
    attention_forward(x (B,T,C), ...) -> out (B,T,C), cache   (cache.pattern: (B,NH,T,T))
Scores are scaled by 1/sqrt(HS); a query attends to itself and earlier keys only. Every head
is computed at once with batched matmuls over (B,NH,T,HS): no loop over heads or tokens.
`ablate` names heads whose output z (before W_O) is zeroed, for causal experiments.
`pattern_mask` (B,NH,T,T bool, with `pattern_p`) is attention dropout (GPT-2's attn_pdrop):
some of each head's attention weights are cut for this pass and the rest scaled by
1/(1-p). The cached `pattern` stays the clean one: where the head looks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np


class AttentionCache(NamedTuple):
    x2: np.ndarray  # (B*T, C) the input
    q: np.ndarray  # (B,NH,T,HS)
    k: np.ndarray  # (B,NH,T,HS)
    v: np.ndarray  # (B,NH,T,HS)
    pattern: np.ndarray  # (B,NH,T,T) softmax of the scores: where each head looks
    z_flat: np.ndarray  # (B*T, NH*HS) heads' outputs side by side, before W_O
    W_qkv: np.ndarray  # (C, 3*NH*HS) W_Q, W_K, W_V packed for one matmul
    W_O_flat: np.ndarray  # (NH*HS, C)
    ablate: tuple[int, ...]
    scale: float
    dropped: np.ndarray | None  # (B,NH,T,T) mask/(1-p) of attention dropout, or None


def pack_qkv(W_Q: np.ndarray, W_K: np.ndarray, W_V: np.ndarray) -> np.ndarray:
    """(NH,C,HS) x3 -> (C, 3*NH*HS): column (which*NH + h)*HS + s is head h's s-th q/k/v unit."""
    NH, C, HS = W_Q.shape
    return np.concatenate((W_Q, W_K, W_V), axis=0).transpose(1, 0, 2).reshape(C, 3 * NH * HS)


@functools.lru_cache(maxsize=32)
def causal_mask(T: int, dtype: np.dtype) -> np.ndarray:
    """(T,T): 0 where key <= query, -inf where the key is in the future. Read-only, shared."""
    mask = np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)
    mask.flags.writeable = False
    return mask


def attention_forward(
    x: np.ndarray,
    W_Q: np.ndarray,
    W_K: np.ndarray,
    W_V: np.ndarray,
    b_Q: np.ndarray,
    b_K: np.ndarray,
    b_V: np.ndarray,
    W_O: np.ndarray,
    b_O: np.ndarray,
    ablate: Iterable[int] = (),
    pattern_mask: np.ndarray | None = None,
    pattern_p: float = 0.0,
) -> tuple[np.ndarray, AttentionCache]:
    B, T, C = x.shape
    NH, _, HS = W_Q.shape
    x2 = x.reshape(B * T, C)
    W_qkv = pack_qkv(W_Q, W_K, W_V)
    qkv = x2 @ W_qkv  # (B*T, 3*NH*HS)
    qkv += np.concatenate((b_Q, b_K, b_V), axis=0).reshape(-1)
    qkv = qkv.reshape(B, T, 3, NH, HS).transpose(2, 0, 3, 1, 4)  # (3,B,NH,T,HS), a view
    q, k, v = qkv[0], qkv[1], qkv[2]
    scale = 1.0 / math.sqrt(HS)
    scores = q @ k.swapaxes(-1, -2)  # (B,NH,T,T): query t, key s
    scores *= scale
    scores += causal_mask(T, np.dtype(x.dtype))
    # Softmax in place; the diagonal is never masked, so every row's max is finite.
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    pattern = scores
    dropped = None
    if pattern_mask is not None and pattern_p > 0:
        dropped = pattern_mask * np.asarray(1.0 / (1.0 - pattern_p), dtype=x.dtype)
        z = (pattern * dropped) @ v  # (B,NH,T,HS)
    else:
        z = pattern @ v  # (B,NH,T,HS)
    ablate = tuple(sorted(set(ablate)))
    if ablate:
        z[:, list(ablate)] = 0.0
    z_flat = z.transpose(0, 2, 1, 3).reshape(B * T, NH * HS)
    W_O_flat = W_O.reshape(NH * HS, C)
    out = z_flat @ W_O_flat
    out += b_O
    cache = AttentionCache(x2, q, k, v, pattern, z_flat, W_qkv, W_O_flat, ablate, scale,
                           dropped)
    return out.reshape(B, T, C), cache


def attention_backward(
    dout: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Returns dx (B,T,C) and the weight gradients keyed W_Q, W_K, W_V, b_Q, b_K, b_V, W_O, b_O."""
    x2, q, k, v, pattern, z_flat, W_qkv, W_O_flat, ablate, scale, dropped = cache
    B, NH, T, HS = q.shape
    C = x2.shape[1]
    d2 = dout.reshape(B * T, C)
    dW_O = (z_flat.T @ d2).reshape(NH, HS, C)
    db_O = d2.sum(axis=0)
    dz = (d2 @ W_O_flat.T).reshape(B, T, NH, HS).transpose(0, 2, 1, 3)  # (B,NH,T,HS)
    if ablate:
        dz[:, list(ablate)] = 0.0
    dpattern = dz @ v.swapaxes(-1, -2)  # (B,NH,T,T)
    dqkv = np.empty((B, T, 3, NH, HS), dtype=x2.dtype)
    dq, dk, dv = (dqkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # views (B,NH,T,HS)
    if dropped is not None:  # z was computed from the cut pattern
        np.matmul((pattern * dropped).swapaxes(-1, -2), dz, out=dv)
        dpattern *= dropped
    else:
        np.matmul(pattern.swapaxes(-1, -2), dz, out=dv)
    # Softmax backward: dscores = p * (dp - sum_s p*dp); masked cells have p = 0.
    dscores = dpattern * pattern
    dscores -= pattern * dscores.sum(axis=-1, keepdims=True)
    dscores *= scale
    np.matmul(dscores, k, out=dq)
    np.matmul(dscores.swapaxes(-1, -2), q, out=dk)
    dqkv2 = dqkv.reshape(B * T, 3 * NH * HS)
    dW_qkv = (x2.T @ dqkv2).reshape(C, 3 * NH, HS).transpose(1, 0, 2)  # (3*NH, C, HS)
    db_qkv = dqkv2.sum(axis=0).reshape(3 * NH, HS)
    dx = (dqkv2 @ W_qkv.T).reshape(B, T, C)
    grads = {
        "W_Q": dW_qkv[:NH], "W_K": dW_qkv[NH:2 * NH], "W_V": dW_qkv[2 * NH:],
        "b_Q": db_qkv[:NH], "b_K": db_qkv[NH:2 * NH], "b_V": db_qkv[2 * NH:],
        "W_O": dW_O, "b_O": db_O,
    }
    return dx, grads
