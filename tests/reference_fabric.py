"""The Fabric as it was written before it was made fast: plain, one formula per line, float64.

A reference for tests/test_speed.py only, never imported by the package. It draws dropout
masks from the generator in the same order as nn/model.py (per block: the attention-weight
mask, the attention-output mask, the MLP-output mask), so the two see the same cuts.
"""

from __future__ import annotations

import math

import numpy as np

EPS = 1e-5


def layernorm(x, w, b):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    norm = (x - mean) / np.sqrt(var + EPS)
    return norm * w + b, (norm, 1 / np.sqrt(var + EPS), w)


def layernorm_back(d, cache):
    norm, rstd, w = cache
    dn = d * w
    dx = rstd * (dn - dn.mean(-1, keepdims=True) - norm * (dn * norm).mean(-1, keepdims=True))
    lead = tuple(range(d.ndim - 1))
    return dx, (d * norm).sum(lead), d.sum(lead)


def gelu(x):
    t = np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))
    return 0.5 * x * (1 + t), (x, t)


def gelu_back(d, cache):
    x, t = cache
    inner = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x**2)
    return d * (0.5 * (1 + t) + 0.5 * x * (1 - t**2) * inner)


def attention(x, p, pre, keep, rate):
    """Head by head. keep: (B,NH,T,T) bool or None; returns out, cache."""
    W_Q, W_K, W_V = p[pre + "W_Q"], p[pre + "W_K"], p[pre + "W_V"]
    b_Q, b_K, b_V = p[pre + "b_Q"], p[pre + "b_K"], p[pre + "b_V"]
    HS, T = W_Q.shape[2], x.shape[1]
    q = np.einsum("btc,hcs->bhts", x, W_Q) + b_Q[None, :, None, :]
    k = np.einsum("btc,hcs->bhts", x, W_K) + b_K[None, :, None, :]
    v = np.einsum("btc,hcs->bhts", x, W_V) + b_V[None, :, None, :]
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(HS)
    scores = np.where(np.tril(np.ones((T, T), bool)), scores, -np.inf)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    pattern = e / e.sum(-1, keepdims=True)
    scale = keep / (1 - rate) if keep is not None else np.ones_like(pattern)
    z = (pattern * scale) @ v
    out = np.einsum("bhts,hsc->btc", z, p[pre + "W_O"]) + p[pre + "b_O"]
    return out, (x, q, k, v, pattern, scale, z, p[pre + "W_O"], W_Q, W_K, W_V)


def attention_back(d, cache):
    x, q, k, v, pattern, scale, z, W_O, W_Q, W_K, W_V = cache
    HS = q.shape[-1]
    g = {"W_O": np.einsum("bhts,btc->hsc", z, d), "b_O": d.sum((0, 1))}
    dz = np.einsum("btc,hsc->bhts", d, W_O)
    dcut = dz @ v.swapaxes(-1, -2)
    dv = (pattern * scale).swapaxes(-1, -2) @ dz
    dpattern = dcut * scale
    dscores = pattern * (dpattern - (pattern * dpattern).sum(-1, keepdims=True)) / math.sqrt(HS)
    dq = dscores @ k
    dk = dscores.swapaxes(-1, -2) @ q
    dx = 0
    for name, dproj, W in (("Q", dq, W_Q), ("K", dk, W_K), ("V", dv, W_V)):
        g["W_" + name] = np.einsum("btc,bhts->hcs", x, dproj)
        g["b_" + name] = dproj.sum((0, 2))
        dx = dx + np.einsum("bhts,hcs->btc", dproj, W)
    return dx, g


def loss_and_grads(params, cfg, tokens, targets, dropout, attn_dropout, rng):
    """(loss, grads) of the mean cross-entropy over targets >= 0."""
    B, T = tokens.shape
    ln = cfg.normalization_type == "LN"
    caches = []
    x = params["embed.W_E"][tokens] + params["pos_embed.W_pos"][:T]

    def mask(shape, rate):
        if rate <= 0:
            return None
        return rng.random(shape, dtype=np.float32) >= rate

    def norm(v, name):
        return layernorm(v, params[name + ".w"], params[name + ".b"]) if ln else (v, None)

    for layer in range(cfg.n_layers):
        pre = f"blocks.{layer}."
        h, c1 = norm(x, pre + "ln1")
        keep = mask((B, cfg.n_heads, T, T), attn_dropout)
        a, ca = attention(h, params, pre + "attn.", keep, attn_dropout)
        m1 = mask(a.shape, dropout)
        s1 = m1 / (1 - dropout) if m1 is not None else 1.0
        x = x + a * s1 if cfg.residual else a * s1
        h2, c2 = norm(x, pre + "ln2")
        pre_act = h2 @ params[pre + "mlp.W_in"] + params[pre + "mlp.b_in"]
        act, cg = gelu(pre_act)
        o = act @ params[pre + "mlp.W_out"] + params[pre + "mlp.b_out"]
        m2 = mask(o.shape, dropout)
        s2 = m2 / (1 - dropout) if m2 is not None else 1.0
        x = x + o * s2 if cfg.residual else o * s2
        caches.append((c1, ca, s1, c2, h2, act, cg, s2))
    final, cf = norm(x, "ln_final")
    logits = final @ params["unembed.W_U"] + params["unembed.b_U"]
    valid = targets >= 0
    safe = np.where(valid, targets, 0)
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    n = max(int(valid.sum()), 1)
    loss = float(-(np.take_along_axis(logp, safe[..., None], -1)[..., 0] * valid).sum() / n)

    g = {}
    dlogits = np.exp(logp)
    np.put_along_axis(dlogits, safe[..., None],
                      np.take_along_axis(dlogits, safe[..., None], -1) - 1, -1)
    dlogits *= valid[..., None] / n
    g["unembed.W_U"] = np.einsum("btc,btv->cv", final, dlogits)
    g["unembed.b_U"] = dlogits.sum((0, 1))
    dx = dlogits @ params["unembed.W_U"].T
    if ln:
        dx, g["ln_final.w"], g["ln_final.b"] = layernorm_back(dx, cf)
    for layer in reversed(range(cfg.n_layers)):
        pre = f"blocks.{layer}."
        c1, ca, s1, c2, h2, act, cg, s2 = caches[layer]
        do = dx * s2
        g[pre + "mlp.W_out"] = np.einsum("bth,btc->hc", act, do)
        g[pre + "mlp.b_out"] = do.sum((0, 1))
        dpre = gelu_back(do @ params[pre + "mlp.W_out"].T, cg)
        g[pre + "mlp.W_in"] = np.einsum("btc,bth->ch", h2, dpre)
        g[pre + "mlp.b_in"] = dpre.sum((0, 1))
        dh2 = dpre @ params[pre + "mlp.W_in"].T
        if ln:
            dh2, g[pre + "ln2.w"], g[pre + "ln2.b"] = layernorm_back(dh2, c2)
        dx = dx + dh2 if cfg.residual else dh2
        da = dx * s1
        dh, ga = attention_back(da, ca)
        for name, value in ga.items():
            g[pre + "attn." + name] = value
        if ln:
            dh, g[pre + "ln1.w"], g[pre + "ln1.b"] = layernorm_back(dh, c1)
        dx = dx + dh if cfg.residual else dh
    one_hot = np.eye(cfg.d_vocab)[tokens]
    g["embed.W_E"] = np.einsum("btv,btc->vc", one_hot, dx)
    g["pos_embed.W_pos"] = np.zeros_like(params["pos_embed.W_pos"])
    g["pos_embed.W_pos"][:T] = dx.sum(0)
    return loss, g
