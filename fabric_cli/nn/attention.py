"""Causal multi-head self-attention: every head asks each earlier token how much it matters.

Shapes: B batch, T time, C channels (d_model), NH heads, HS head size (d_head).
Weights in TransformerLens' layout:
    W_Q, W_K, W_V (NH,C,HS); b_Q, b_K, b_V (NH,HS); W_O (NH,HS,C); b_O (C,)
    attention_forward(x (B,T,C), ...) -> out (B,T,C), cache   (cache.pattern: (B,NH,T,T))
Scores are scaled by 1/sqrt(HS); a query attends to itself and earlier keys only. Every head
is computed at once with batched matmuls over (B,NH,T,HS): no loop over heads or tokens.

Made fast without changing the mathematics (tests/test_layers.py holds the formulas):
- one matmul projects q, k and v for every head (W_Q, W_K, W_V packed side by side), and the
  1/sqrt(HS) is folded into the packed W_Q and b_Q, so the scores need no scaling pass;
- q, k, v and the heads' output z are views into the packed arrays, never copies: z is
  written by matmul straight into the (B,T,NH,HS) layout W_O reads;
- the softmax is stabilised by each row's own diagonal score (the query with itself, never
  masked) instead of the row maximum: numpy's max along a 24-long axis cost more than the
  rest of the softmax. Any stabiliser gives the same softmax; the diagonal can only fail
  where another score exceeds it by more than float32's exp range (~88), and then the row
  sums are not finite and the pattern is recomputed with the true maximum;
- sums along the last axis are matrix-vector products (BLAS) rather than numpy reductions.
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

from fabric_cli.nn.sums import column_sums, row_sums


class AttentionCache(NamedTuple):
    x2: np.ndarray  # (B*T, C) the input
    q: np.ndarray  # (B,NH,T,HS) queries, already scaled by 1/sqrt(HS)
    k: np.ndarray  # (B,NH,T,HS)
    v: np.ndarray  # (B,NH,T,HS)
    pattern: np.ndarray  # (B,NH,T,T) softmax of the scores: where each head looks
    z_flat: np.ndarray  # (B*T, NH*HS) heads' outputs side by side, before W_O
    W_qkv: np.ndarray  # (C, 3*NH*HS) W_Q/sqrt(HS), W_K, W_V packed for one matmul
    W_O_flat: np.ndarray  # (NH*HS, C)
    ablate: tuple[int, ...]
    scale: float
    dropped: np.ndarray | None  # (B,NH,T,T) mask/(1-p) of attention dropout, or None
    cut: np.ndarray  # (B,NH,T,T) the pattern z was made from: pattern * dropped, or pattern


def pack_qkv(W_Q: np.ndarray, W_K: np.ndarray, W_V: np.ndarray,
             q_scale: float = 1.0) -> np.ndarray:
    """(NH,C,HS) x3 -> (C, 3*NH*HS): column (which*NH + h)*HS + s is head h's s-th q/k/v unit.
    W_Q is multiplied by q_scale on the way in."""
    NH, C, HS = W_Q.shape
    packed = np.empty((C, 3, NH, HS), dtype=np.result_type(W_Q, W_K, W_V))
    np.multiply(W_Q.transpose(1, 0, 2), q_scale, out=packed[:, 0])
    packed[:, 1] = W_K.transpose(1, 0, 2)
    packed[:, 2] = W_V.transpose(1, 0, 2)
    return packed.reshape(C, 3 * NH * HS)


def _pack_bias(b_Q: np.ndarray, b_K: np.ndarray, b_V: np.ndarray, q_scale: float) -> np.ndarray:
    NH, HS = b_Q.shape
    packed = np.empty((3, NH, HS), dtype=np.result_type(b_Q, b_K, b_V))
    np.multiply(b_Q, q_scale, out=packed[0])
    packed[1] = b_K
    packed[2] = b_V
    return packed.reshape(-1)


@functools.lru_cache(maxsize=32)
def causal_mask(T: int, dtype: np.dtype) -> np.ndarray:
    """(T,T): 0 where key <= query, -inf where the key is in the future. Read-only, shared."""
    mask = np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)
    mask.flags.writeable = False
    return mask


def causal_pattern(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """softmax(q k^T + causal mask) over keys, (B,NH,T,T); q already carries the scale."""
    T = q.shape[-2]
    mask = causal_mask(T, np.dtype(q.dtype))
    scores = q @ k.swapaxes(-1, -2)  # (B,NH,T,T): query t, key s
    scores += mask
    stabiliser = scores.diagonal(axis1=-2, axis2=-1)[..., None].copy()  # never masked
    scores -= stabiliser
    with np.errstate(over="ignore"):  # overflow is caught below, by the sums
        np.exp(scores, out=scores)
    sums = row_sums(scores)
    if not np.isfinite(sums).all():
        # a score exceeded its row's diagonal by more than exp's range (or the Fabric tore):
        # start again, stabilised by the true row maximum as the textbook does
        scores = q @ k.swapaxes(-1, -2)
        scores += mask
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        sums = row_sums(scores)
    np.reciprocal(sums, out=sums)
    scores *= sums
    return scores


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
    scale = 1.0 / math.sqrt(HS)
    W_qkv = pack_qkv(W_Q, W_K, W_V, scale)
    qkv = x2 @ W_qkv  # (B*T, 3*NH*HS)
    qkv += _pack_bias(b_Q, b_K, b_V, scale)
    qkv = qkv.reshape(B, T, 3, NH, HS).transpose(2, 0, 3, 1, 4)  # (3,B,NH,T,HS), a view
    q, k, v = qkv[0], qkv[1], qkv[2]
    pattern = causal_pattern(q, k)  # (B,NH,T,T)
    dropped = None
    cut = pattern
    if pattern_mask is not None and pattern_p > 0:
        dropped = np.multiply(pattern_mask, np.asarray(1.0 / (1.0 - pattern_p), dtype=x.dtype))
        cut = pattern * dropped
    z = np.empty((B, T, NH, HS), dtype=qkv.dtype)  # the layout W_O reads
    np.matmul(cut, v, out=z.transpose(0, 2, 1, 3))
    ablate = tuple(sorted(set(ablate)))
    out, z_flat, W_O_flat = heads_output(z, W_O, b_O, ablate)
    cache = AttentionCache(x2, q, k, v, pattern, z_flat, W_qkv, W_O_flat, ablate, scale,
                           dropped, cut)
    return out, cache


def heads_output(z: np.ndarray, W_O: np.ndarray, b_O: np.ndarray,
                 ablate: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The heads' outputs z (B,T,NH,HS) through W_O, the `ablate` heads' zeroed first (in z
    itself): (out (B,T,C), z_flat (B*T, NH*HS), W_O_flat). A measuring pass that starts from
    a clean pass's z (nn/model.py, `z_in`) gives what the whole pass gives, to the bit."""
    B, T, NH, HS = z.shape
    if ablate:
        z[:, :, list(ablate)] = 0.0
    z_flat = z.reshape(B * T, NH * HS)
    W_O_flat = W_O.reshape(NH * HS, -1)
    out = z_flat @ W_O_flat
    out += b_O
    return out.reshape(B, T, -1), z_flat, W_O_flat


def attention_backward(
    dout: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Returns dx (B,T,C) and the weight gradients keyed W_Q, W_K, W_V, b_Q, b_K, b_V, W_O, b_O."""
    x2, q, k, v, pattern, z_flat, W_qkv, W_O_flat, ablate, scale, dropped, cut = cache
    B, NH, T, HS = q.shape
    C = x2.shape[1]
    d2 = dout.reshape(B * T, C)
    dW_O = (z_flat.T @ d2).reshape(NH, HS, C)
    db_O = column_sums(d2)
    dz = (d2 @ W_O_flat.T).reshape(B, T, NH, HS).transpose(0, 2, 1, 3)  # (B,NH,T,HS) view
    if ablate:
        dz[:, list(ablate)] = 0.0
    dpattern = dz @ v.swapaxes(-1, -2)  # (B,NH,T,T)
    dqkv = np.empty((B, T, 3, NH, HS), dtype=x2.dtype)
    dq, dk, dv = (dqkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # views (B,NH,T,HS)
    np.matmul(cut.swapaxes(-1, -2), dz, out=dv)
    if dropped is not None:  # z was computed from the cut pattern
        dpattern *= dropped
    # Softmax backward: dscores = p * (dp - sum_s p*dp); masked cells have p = 0.
    dpattern *= pattern
    row = row_sums(dpattern)
    row = row * pattern  # (B,NH,T,T)
    dscores = np.subtract(dpattern, row, out=dpattern)  # already scaled: q carries the scale
    np.matmul(dscores, k, out=dq)
    np.matmul(dscores.swapaxes(-1, -2), q, out=dk)
    dqkv2 = dqkv.reshape(B * T, 3 * NH * HS)
    dW_qkv = x2.T @ dqkv2  # (C, 3*NH*HS)
    db_qkv = column_sums(dqkv2)
    dx = (dqkv2 @ W_qkv.T).reshape(B, T, C)
    # back from the packed, pre-scaled layout to TransformerLens' (NH,C,HS) per projection
    dW = dW_qkv.reshape(C, 3, NH, HS)
    dW_Q = dW[:, 0].transpose(1, 0, 2) * scale
    db = db_qkv.reshape(3, NH, HS)
    grads = {
        "W_Q": dW_Q, "W_K": dW[:, 1].transpose(1, 0, 2), "W_V": dW[:, 2].transpose(1, 0, 2),
        "b_Q": db[0] * scale, "b_K": db[1], "b_V": db[2],
        "W_O": dW_O, "b_O": db_O,
    }
    return dx, grads
