"""Proving the Gradient honest: every analytic gradient against central differences.

All in float64 on a small Fabric (2 layers, 2 heads, d_model 8, T 5, vocab 11, some padding
targets). Each layer function's input gradient is checked on L = sum(out * R) for a fixed
random R, so dout = R; the full model's gradient is checked for every parameter tensor on the
real loss, in every combination of the switches (residual on/off x LayerNorm on/off x dropout
with fixed masks or none). The default Fabric (residual, LayerNorm, dropout) is checked
element by element; each other combination, to stay within a few seconds, along one random
direction per tensor: the analytic g . d against the central difference of f(p + s d) in s,
which a wrong element of g would show unless its error happened to cancel against others
along a random Gaussian d. AdamW, SGD and momentum are checked against their formulas
written out independently.

Derivatives use the 4-point central stencil (f(-2h) - 8f(-h) + 8f(h) - f(2h)) / 12h with
h = 1e-3: truncation error ~h^4, rounding ~1e-16/h, both far below the tolerance.
Every element is compared with err = |a - n| / max(|a| + |n|, 1e-6): a relative error where
the gradient is larger than 1e-6, and below that an absolute one (scaled by 1e-6), so exact
zeros (tokens absent from the batch, padded positions) are judged fairly against the noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from fabric_cli.nn.attention import attention_backward, attention_forward
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.dropout import dropout_backward, dropout_forward
from fabric_cli.nn.embedding import unembed_backward, unembed_forward
from fabric_cli.nn.layernorm import layernorm_backward, layernorm_forward
from fabric_cli.nn.loss import cross_entropy_backward, cross_entropy_forward
from fabric_cli.nn.mlp import gelu_backward, gelu_forward, mlp_backward, mlp_forward
from fabric_cli.nn.model import backward, forward, init_params
from fabric_cli.nn.optim import make_optimizer

TOLERANCE = 1e-6
STEP = 1e-3
FLOOR = 1e-6

CHECK_CONFIG = ModelConfig(
    n_layers=2, n_heads=2, d_model=8, d_head=4, d_mlp=16, n_ctx=6, d_vocab=11
)


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Largest element-wise |a - n| / max(|a| + |n|, 1e-6)."""
    a, n = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if a.shape != n.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - n) / np.maximum(np.abs(a) + np.abs(n), FLOOR)))


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = STEP) -> np.ndarray:
    """dF/dx for every element of x, perturbing x in place (and restoring it)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        values = []
        for offset in (-2 * h, -h, h, 2 * h):
            flat[i] = orig + offset
            values.append(f())
        flat[i] = orig
        gflat[i] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)
    return grad


def _row(check: str, analytic: np.ndarray, numeric: np.ndarray, kind: str) -> dict:
    err = relative_error(analytic, numeric)
    return {"check": check, "kind": kind, "elements": int(np.size(numeric)),
            "max_rel_error": err, "passed": bool(err <= TOLERANCE)}


def _layer_input_check(
    name: str, layer: Callable, back: Callable, x: np.ndarray, rng: np.random.Generator
) -> dict:
    """Check dx of `layer(x) -> (out, cache)` on L = sum(out * R)."""
    out, cache = layer(x)
    R = rng.normal(size=out.shape)
    dx = back(R, cache)
    numeric = numerical_gradient(lambda: float(np.sum(layer(x)[0] * R)), x)
    return _row(f"{name}: dx", dx, numeric, "layer input")


def layer_checks(rng: np.random.Generator) -> list[dict]:
    B, T, C, NH, HS, H, V = 2, 5, 8, 2, 4, 16, 11
    x = rng.normal(size=(B, T, C))
    ln_w, ln_b = rng.normal(1.0, 0.3, C), rng.normal(0, 0.3, C)
    attn_w = [rng.normal(0, 0.6, s) for s in
              [(NH, C, HS)] * 3 + [(NH, HS)] * 3 + [(NH, HS, C), (C,)]]
    mlp_w = [rng.normal(0, 0.5, s) for s in [(C, H), (H,), (H, C), (C,)]]
    W_U, b_U = rng.normal(0, 0.5, (C, V)), rng.normal(0, 0.5, V)
    mask = rng.random((B, T, C)) >= 0.3
    pattern_mask = rng.random((B, attn_w[0].shape[0], T, T)) >= 0.3
    logits = rng.normal(0, 2.0, (B, T, V))
    targets = rng.integers(0, V, (B, T))
    targets[0, -2:] = -1  # padding is ignored

    def ce(lg: np.ndarray) -> tuple[float, object]:
        out, cache = cross_entropy_forward(lg, targets)
        return out.loss, cache

    return [
        _layer_input_check("layernorm", lambda v: layernorm_forward(v, ln_w, ln_b),
                           lambda d, c: layernorm_backward(d, c)[0], x, rng),
        _layer_input_check("attention", lambda v: attention_forward(v, *attn_w),
                           lambda d, c: attention_backward(d, c)[0], x, rng),
        _layer_input_check("attention, head 1 ablated",
                           lambda v: attention_forward(v, *attn_w, ablate={1}),
                           lambda d, c: attention_backward(d, c)[0], x, rng),
        _layer_input_check("attention, attention dropout (fixed mask, p=0.3)",
                           lambda v: attention_forward(v, *attn_w, pattern_mask=pattern_mask,
                                                       pattern_p=0.3),
                           lambda d, c: attention_backward(d, c)[0], x, rng),
        _layer_input_check("gelu", gelu_forward, gelu_backward, x, rng),
        _layer_input_check("mlp", lambda v: mlp_forward(v, *mlp_w),
                           lambda d, c: mlp_backward(d, c)[0], x, rng),
        _layer_input_check("dropout (fixed mask, p=0.3)",
                           lambda v: dropout_forward(v, 0.3, mask=mask), dropout_backward, x, rng),
        _layer_input_check("unembed", lambda v: unembed_forward(v, W_U, b_U),
                           lambda d, c: unembed_backward(d, c)[0], x, rng),
        _row("cross-entropy: dlogits",
             cross_entropy_backward(1.0, ce(logits)[1]),
             numerical_gradient(lambda: ce(logits)[0], logits), "layer input"),
    ]


@dataclass(frozen=True)
class Combination:
    """One setting of the model's switches, as fabric check names it."""

    residual: bool = True
    layernorm: bool = True
    dropout: bool = True  # dropout and attention dropout on, with fixed masks

    @property
    def label(self) -> str:
        return (f"residual {'on' if self.residual else 'off'}, "
                f"LayerNorm {'on' if self.layernorm else 'off'}, "
                f"dropout {'masks' if self.dropout else 'off'}")

    def as_dict(self) -> dict:
        return {"residual": self.residual, "layernorm": self.layernorm, "dropout": self.dropout}


DEFAULT_COMBINATION = Combination()
COMBINATIONS = tuple(Combination(r, ln, d) for r in (True, False) for ln in (True, False)
                     for d in (True, False))


def check_model(
    seed: int = 0, combination: Combination = DEFAULT_COMBINATION
) -> tuple[ModelConfig, dict, np.ndarray, np.ndarray]:
    """The small float64 Fabric every parameter check uses, with weights spread wide enough
    that attention is far from uniform and every gradient is well above the noise. Without
    LayerNorm nothing rescales the stream, so the spread is smaller (0.3, not 0.4) to keep
    the logits, and with them the rounding noise of the differences, in the same range."""
    rng = np.random.default_rng(seed)
    cfg = replace(CHECK_CONFIG, residual=combination.residual,
                  normalization_type="LN" if combination.layernorm else None)
    params = init_params(cfg, rng, dtype=np.float64)
    spread = 0.4 if combination.layernorm else 0.3
    for p in params.values():
        p += rng.normal(0, spread, p.shape)
    tokens = rng.integers(0, cfg.d_vocab, (3, 5))
    targets = rng.integers(0, cfg.d_vocab, (3, 5))
    targets[1, 3:] = -1
    targets[2, 4] = -1
    return cfg, params, tokens, targets


def directional_derivative(f: Callable[[], float], x: np.ndarray, d: np.ndarray,
                           h: float = STEP) -> float:
    """d/ds f(x + s d) at s = 0 by the same 4-point stencil, perturbing x in place."""
    orig = x.copy()
    values = []
    for offset in (-2 * h, -h, h, 2 * h):
        np.add(orig, offset * d, out=x)
        values.append(f())
    x[...] = orig
    return (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)


def model_checks(seed: int = 0, dropout: float = 0.25, attn_dropout: float = 0.2,
                 combination: Combination = DEFAULT_COMBINATION,
                 every_element: bool = True) -> list[dict]:
    cfg, params, tokens, targets = check_model(seed, combination)
    if not combination.dropout:
        dropout = attn_dropout = 0.0

    def run():
        # A fresh generator with the same seed draws the same dropout masks every time.
        return forward(params, cfg, tokens, targets, dropout=dropout, attn_dropout=attn_dropout,
                       rng=np.random.default_rng(seed + 1))

    grads, _ = backward(run())
    rows = []
    direction_rng = np.random.default_rng(seed + 2)
    for name, p in params.items():
        if every_element:
            row = _row(name, grads[name], numerical_gradient(lambda: run().loss, p), "parameter")
        else:
            d = direction_rng.normal(size=p.shape)
            row = _row(name, np.array([np.vdot(grads[name], d)]),
                       np.array([directional_derivative(lambda: run().loss, p, d)]), "parameter")
        row.update(combination=combination.label, switches=combination.as_dict(),
                   method="every element" if every_element else "random direction")
        rows.append(row)
    return rows


def switch_checks(seed: int = 0) -> list[dict]:
    """Every combination of the switches: the default element-wise, the rest by direction."""
    rows = []
    for combination in COMBINATIONS:
        rows += model_checks(seed, combination=combination,
                             every_element=combination == DEFAULT_COMBINATION)
    return rows


def adam_reference(p, grads_seq, lr, b1, b2, eps, wd, decay):
    """AdamW as in Loshchilov & Hutter, Algorithm 2, one element-wise line per equation."""
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads_seq, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * (m_hat / (np.sqrt(v_hat) + eps) + (wd * p if decay else 0.0))
    return p


def sgd_reference(p, grads_seq, lr, momentum, wd, decay):
    """SGD with (heavy-ball) momentum, PyTorch's form, decoupled decay; momentum 0 is SGD."""
    p = p.copy()
    buf = np.zeros_like(p)
    for g in grads_seq:
        buf = momentum * buf + g
        p = p - lr * buf - (lr * wd * p if decay else 0.0)
    return p


def optimizer_checks(seed: int = 0, steps: int = 3) -> list[dict]:
    rng = np.random.default_rng(seed)
    start = {"blocks.0.attn.W_Q": rng.normal(size=(2, 3, 4)), "blocks.0.ln1.w": rng.normal(size=5),
             "embed.W_E": rng.normal(size=(4, 3))}
    grads_seq = [{n: rng.normal(size=p.shape) for n, p in start.items()} for _ in range(steps)]
    lr, wd, b1, b2, eps, mu = 0.01, 0.1, 0.9, 0.95, 1e-8, 0.8
    rows = []
    for kind in ("adamw", "sgd", "momentum"):
        params = {n: p.copy() for n, p in start.items()}
        opt = make_optimizer(kind, params, lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd,
                             momentum=mu)
        for g in grads_seq:
            opt.step(params, {n: a.copy() for n, a in g.items()}, lr)
        for name, moved in params.items():
            decay = name.endswith("W_Q")
            history = [g[name] for g in grads_seq]
            if kind == "adamw":
                expected = adam_reference(start[name], history, lr, b1, b2, eps, wd, decay)
            else:
                expected = sgd_reference(start[name], history, lr, mu if kind == "momentum"
                                         else 0.0, wd, decay)
            # compare the moves, not the weights, so a wrong step cannot hide behind large
            # weights
            rows.append(_row(f"{kind}: {steps} steps on {name}", moved - start[name],
                             expected - start[name], "optimizer"))
    return rows


def run_gradcheck(seed: int = 0) -> list[dict]:
    """Every check, as rows {check, kind, elements, max_rel_error, passed}; the model's rows
    also name their `combination` of switches (and `switches`, `method`)."""
    rng = np.random.default_rng(seed)
    return switch_checks(seed) + layer_checks(rng) + optimizer_checks(seed)
