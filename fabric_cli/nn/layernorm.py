"""LayerNorm: each token's vector re-centred and re-scaled, then given a learned gain and bias.

Shapes: B batch, T time, C channels. eps 1e-5, biased variance (divide by C), as in GPT-2.
    layernorm_forward(x (B,T,C), w (C,), b (C,)) -> out (B,T,C)
    layernorm_backward(dout (B,T,C), cache) -> dx (B,T,C), dw (C,), db (C,)
Means over the C channels are matrix-vector products (nn/sums.py), not numpy reductions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fabric_cli.nn.sums import ones

EPS = 1e-5


class LayerNormCache(NamedTuple):
    norm: np.ndarray  # (B,T,C) the input, centred and divided by its std
    rstd: np.ndarray  # (B,T,1) 1/sqrt(var + eps)
    w: np.ndarray  # (C,)
    mean: np.ndarray  # (B,T,1) each token's mean, for the statistics
    var: np.ndarray  # (B,T,1) each token's (biased) variance


def _mean_rows(x: np.ndarray) -> np.ndarray:
    """(..., C) -> (..., 1): the mean over the last axis, by BLAS."""
    C = x.shape[-1]
    return (x @ ones(C, np.dtype(x.dtype))) * (1.0 / C)


def layernorm_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = EPS
) -> tuple[np.ndarray, LayerNormCache]:
    mean = _mean_rows(x)
    norm = x - mean
    var = _mean_rows(norm * norm)
    rstd = var + eps
    np.sqrt(rstd, out=rstd)
    np.reciprocal(rstd, out=rstd)
    norm *= rstd
    out = norm * w
    out += b
    return out, LayerNormCache(norm, rstd, w, mean, var)


def layernorm_backward(
    dout: np.ndarray, cache: LayerNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    norm, rstd, w = cache.norm, cache.rstd, cache.w
    C = norm.shape[-1]
    d2 = dout.reshape(-1, C)
    rows = ones(d2.shape[0], np.dtype(d2.dtype), column=False)
    db = rows @ d2
    dnorm = dout * w
    dw = rows @ (dout * norm).reshape(-1, C)
    # dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)): the two means remove what
    # the centring and the scaling took away (llm.c's layernorm derivation).
    mean_dnorm = _mean_rows(dnorm)
    mean_dnorm_norm = _mean_rows(dnorm * norm)
    dx = dnorm
    dx -= mean_dnorm
    dx -= norm * mean_dnorm_norm
    dx *= rstd
    return dx, dw, db


def layernorm_stats(x: np.ndarray, out: np.ndarray,
                    cache: LayerNormCache | None = None) -> dict[str, float]:
    """What LayerNorm saw and what it gave: mean over tokens of each token's mean and std.

    With the forward's cache the input's side comes free (its means and variances); the
    output's std is sqrt(E[out^2] - E[out]^2) per token, clipped at 0 against rounding."""
    if cache is None:
        return {
            "in_mean": float(x.mean()),
            "in_std": float(x.std(axis=-1).mean()),
            "out_mean": float(out.mean()),
            "out_std": float(out.std(axis=-1).mean()),
        }
    out_mean = _mean_rows(out)
    out_var = _mean_rows(out * out)
    out_var -= out_mean * out_mean
    np.maximum(out_var, 0.0, out=out_var)
    return {
        "in_mean": float(cache.mean.mean()),
        "in_std": float(np.sqrt(cache.var).mean()),
        "out_mean": float(out_mean.mean()),
        "out_std": float(np.sqrt(out_var).mean()),
    }
