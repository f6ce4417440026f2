"""LayerNorm: each token's vector re-centred and re-scaled, then given a learned gain and bias.

Shapes: B batch, T time, C channels. eps 1e-5, biased variance (divide by C), as in GPT-2.
    layernorm_forward(x (B,T,C), w (C,), b (C,)) -> out (B,T,C)
    layernorm_backward(dout (B,T,C), cache) -> dx (B,T,C), dw (C,), db (C,)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

EPS = 1e-5


class LayerNormCache(NamedTuple):
    norm: np.ndarray  # (B,T,C) the input, centred and divided by its std
    rstd: np.ndarray  # (B,T,1) 1/sqrt(var + eps)
    w: np.ndarray  # (C,)


def layernorm_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = EPS
) -> tuple[np.ndarray, LayerNormCache]:
    mean = x.mean(axis=-1, keepdims=True)
    norm = x - mean
    var = np.mean(norm * norm, axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    norm *= rstd
    out = norm * w
    out += b
    return out, LayerNormCache(norm, rstd, w)


def layernorm_backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    norm, rstd, w = cache
    C = norm.shape[-1]
    lead = tuple(range(norm.ndim - 1))
    dw = np.sum(dout * norm, axis=lead)
    db = np.sum(dout, axis=lead)
    dnorm = dout * w
    # dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)): the two means remove what
    # the centring and the scaling took away (llm.c's layernorm derivation).
    mean_dnorm = dnorm.mean(axis=-1, keepdims=True)
    mean_dnorm_norm = np.einsum("...c,...c->...", dnorm, norm)[..., None] / C
    dx = dnorm - mean_dnorm
    dx -= norm * mean_dnorm_norm
    dx *= rstd
    return dx, dw, db


def layernorm_stats(x: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """What LayerNorm saw and what it gave: mean over tokens of each token's mean and std."""
    return {
        "in_mean": float(x.mean()),
        "in_std": float(x.std(axis=-1).mean()),
        "out_mean": float(out.mean()),
        "out_std": float(out.std(axis=-1).mean()),
    }
