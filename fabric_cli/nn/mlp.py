"""The Feed-Forward network: widen each token's vector, bend it with GELU, narrow it back.

Shapes: B batch, T time, C channels (d_model), H = d_mlp hidden width.
    mlp_forward(x (B,T,C), W_in (C,H), b_in (H,), W_out (H,C), b_out (C,)) -> out (B,T,C)
GELU in its tanh form ("gelu_new", GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fabric_cli.nn.halves import in_halves
from fabric_cli.nn.sums import column_sums

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_CUBIC = 0.044715


class GeluCache(NamedTuple):
    x: np.ndarray
    one_plus_tanh: np.ndarray  # 1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)), for the derivative


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, GeluCache]:
    t = np.empty_like(x)
    out = np.empty_like(x)

    def rows(s: slice) -> None:  # a large array's two halves at once (nn/halves.py)
        # u = sqrt(2/pi) (x + 0.044715 x^3) = x (sqrt(2/pi) + sqrt(2/pi) 0.044715 x^2)
        xs, ts, outs = x[s], t[s], out[s]
        np.multiply(xs, xs, out=ts)
        ts *= _SQRT_2_OVER_PI * _CUBIC
        ts += _SQRT_2_OVER_PI
        ts *= xs
        np.tanh(ts, out=ts)
        ts += 1.0  # 1 + tanh(u)
        np.multiply(ts, xs, out=outs)
        outs *= 0.5

    in_halves(rows, x.shape[0], x.size)
    return out, GeluCache(x, t)


def gelu_backward(dout: np.ndarray, cache: GeluCache) -> np.ndarray:
    x, tp1 = cache  # tp1 = 1 + t
    slope = np.empty_like(x)  # dout has x's shape

    def rows(s: slice) -> None:
        # d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), and
        # 1 - t^2 = (1 + t)(2 - (1 + t)), so
        # d/dx = (1 + t) [0.5 + x (2 - (1 + t)) 0.5 sqrt(2/pi) (1 + 3 * 0.044715 x^2)]
        xs, tp1s, ss = x[s], tp1[s], slope[s]
        np.multiply(xs, xs, out=ss)
        ss *= 0.5 * _SQRT_2_OVER_PI * 3.0 * _CUBIC
        ss += 0.5 * _SQRT_2_OVER_PI
        ss *= xs
        ss *= np.subtract(2.0, tp1s, dtype=tp1s.dtype)
        ss += 0.5
        ss *= tp1s
        ss *= dout[s]

    in_halves(rows, x.shape[0], x.size)
    return slope


class MLPCache(NamedTuple):
    x2: np.ndarray  # (B*T, C)
    act: np.ndarray  # (B*T, H) GELU output
    gelu: GeluCache
    W_in: np.ndarray
    W_out: np.ndarray


def mlp_forward(
    x: np.ndarray, W_in: np.ndarray, b_in: np.ndarray, W_out: np.ndarray, b_out: np.ndarray
) -> tuple[np.ndarray, MLPCache]:
    B, T, C = x.shape
    x2 = x.reshape(B * T, C)
    pre = x2 @ W_in  # (B*T, H)
    pre += b_in
    act, gelu_cache = gelu_forward(pre)
    out = act @ W_out  # (B*T, C)
    out += b_out
    return out.reshape(B, T, C), MLPCache(x2, act, gelu_cache, W_in, W_out)


def mlp_backward(
    dout: np.ndarray, cache: MLPCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (dx, dW_in, db_in, dW_out, db_out)."""
    x2, act, gelu_cache, W_in, W_out = cache
    B, T, C = dout.shape
    d2 = dout.reshape(B * T, C)
    dW_out = act.T @ d2
    db_out = column_sums(d2)
    dpre = gelu_backward(d2 @ W_out.T, gelu_cache)
    dW_in = x2.T @ dpre
    db_in = column_sums(dpre)
    dx = (dpre @ W_in.T).reshape(B, T, C)
    return dx, dW_in, db_in, dW_out, db_out
