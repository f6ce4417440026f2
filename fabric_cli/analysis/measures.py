"""Probe-time measurements the stories tell and the probes' scores do not: what the residual
stream predicts at the word after each pronoun before and after every block's attention and
MLP (a logit lens), how the pronoun head's query lines up with its antecedent's key against
the other keys, and how large the head's output is beside the stream it writes into.

Shape letters: B batch, T time, C channels, NH heads, HS head size, V vocab, P pronouns.

The stream is recomputed here from the parameters, one block at a time, so every stage can be
read (the model's forward keeps only what backward needs); tests check that this recomputation
ends in the model's own logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LN_EPS = 1e-5  # the model's LayerNorm epsilon (docs/ARCHITECTURE.md)
MEASURE_SENTENCES = 32  # the first probe sentences are enough, and keep the probe cheap


@dataclass
class Streams:
    """The residual stream at every stage, and every head's query, key and output."""

    pre: list[np.ndarray]  # per layer (B,T,C): entering the block
    mid: list[np.ndarray]  # per layer (B,T,C): after attention is added
    post: list[np.ndarray]  # per layer (B,T,C): after the MLP is added
    q: list[np.ndarray]  # per layer (B,NH,T,HS)
    k: list[np.ndarray]  # per layer (B,NH,T,HS)
    head_out: list[np.ndarray]  # per layer (B,NH,T,C): each head's z @ W_O, before b_O
    logits: np.ndarray  # (B,T,V)


def _norm(params: dict, x: np.ndarray, name: str) -> np.ndarray:
    if name + ".w" not in params:  # a Fabric without LayerNorm: the identity
        return x
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * params[name + ".w"] + params[name + ".b"]


def _gelu(x: np.ndarray) -> np.ndarray:  # tanh form ("gelu_new")
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * (x * x * x))))


def _unembed(params: dict, x: np.ndarray) -> np.ndarray:
    return _norm(params, x, "ln_final") @ params["unembed.W_U"] + params["unembed.b_U"]


def stream_forward(params: dict, cfg, tokens: np.ndarray) -> Streams:
    """The Fabric's forward pass without dropout, keeping every stage of the stream."""
    p64 = params  # the model's own precision (float32): a probe must stay cheap
    residual = getattr(cfg, "residual", True)
    B, T = tokens.shape
    x = p64["embed.W_E"][tokens] + p64["pos_embed.W_pos"][:T]
    NH, C, HS = p64["blocks.0.attn.W_Q"].shape
    mask = np.triu(np.ones((T, T), dtype=bool), 1)
    out = Streams([], [], [], [], [], [], np.empty(0))
    for layer in range(cfg.n_layers):
        a = f"blocks.{layer}."
        out.pre.append(x)
        h = _norm(p64, x, a + "ln1")
        q, k, v = (
            (h @ p64[a + f"attn.W_{n}"].transpose(1, 0, 2).reshape(C, NH * HS))
            .reshape(B, T, NH, HS).transpose(0, 2, 1, 3) + p64[a + f"attn.b_{n}"][:, None]
            for n in "QKV")
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1])
        scores = np.where(mask, -np.inf, scores)
        pattern = np.exp(scores - scores.max(-1, keepdims=True))
        pattern /= pattern.sum(-1, keepdims=True)
        heads = (pattern @ v) @ p64[a + "attn.W_O"][None]  # (B,NH,T,HS) @ (1,NH,HS,C)
        attn = heads.sum(1) + p64[a + "attn.b_O"]
        x = x + attn if residual else attn
        out.mid.append(x)
        m = _gelu(_norm(p64, x, a + "ln2") @ p64[a + "mlp.W_in"] + p64[a + "mlp.b_in"])
        mlp = m @ p64[a + "mlp.W_out"] + p64[a + "mlp.b_out"]
        x = x + mlp if residual else mlp
        out.post.append(x)
        out.q.append(q)
        out.k.append(k)
        out.head_out.append(heads)
    out.logits = _unembed(p64, x)
    return out


def _target_prob(params: dict, stream: np.ndarray, b: np.ndarray, q: np.ndarray,
                 target: np.ndarray) -> float:
    """Mean probability the unembedding, read at this stage, gives each true next word."""
    logits = _unembed(params, stream[b, q])  # (P,V)
    logits = logits - logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    return float(probs[np.arange(len(target)), target].mean())


def logit_lens(params: dict, streams: Streams, pb) -> dict | None:
    """At each pronoun, the probability of the word that really follows it, read from the
    stream before each block, after its attention, and after its MLP: `attn_gain` and
    `mlp_gain` are what each branch of each block added (the FFN's own share)."""
    target = pb.targets[pb.pron_b, pb.pron_q]
    keep = target >= 0
    if not keep.any():
        return None
    b, q, target = pb.pron_b[keep], pb.pron_q[keep], target[keep]
    p64 = {k: v.astype(np.float64) for k, v in params.items()
           if k.startswith(("ln_final", "unembed"))}  # only P rows: float64 is cheap here
    layers = []
    for layer, (pre, mid, post) in enumerate(zip(streams.pre, streams.mid, streams.post)):
        before, after_attn, after_mlp = (_target_prob(p64, s, b, q, target)
                                         for s in (pre, mid, post))
        layers.append({"layer": layer, "before": before, "after_attn": after_attn,
                       "after_mlp": after_mlp, "attn_gain": after_attn - before,
                       "mlp_gain": after_mlp - after_attn})
    return {"where": "the word after each pronoun", "measure": "probability of the true word",
            "n": int(keep.sum()), "layers": layers, "final": layers[-1]["after_mlp"]}


def qk_alignment(streams: Streams, pb, layer: int, head: int) -> dict | None:
    """The head's score (q·k / sqrt(HS)) from each pronoun to its antecedent's key, against
    the mean score to the other words before it (not <bos>, not the pronoun itself)."""
    if pb.n_pronouns == 0:
        return None
    q = streams.q[layer][pb.pron_b, head, pb.pron_q]  # (P,HS)
    keys = streams.k[layer][pb.pron_b, head]  # (P,T,HS)
    scores = np.einsum("ph,pth->pt", q, keys) / math.sqrt(q.shape[-1])
    ante = scores[np.arange(len(q)), pb.pron_k]
    others = []
    for i, (qi, ki) in enumerate(zip(pb.pron_q, pb.pron_k)):
        rest = [j for j in range(1, int(qi)) if j != int(ki)]
        if rest:
            others.append(float(scores[i, rest].mean()))
    if not others:
        return None
    cos = np.einsum("ph,ph->p", q, streams.k[layer][pb.pron_b, head, pb.pron_k]) / (
        np.linalg.norm(q, axis=-1) * np.linalg.norm(streams.k[layer][pb.pron_b, head, pb.pron_k],
                                                     axis=-1) + 1e-12)
    return {"layer": layer, "head": head, "antecedent": float(ante.mean()),
            "others": float(np.mean(others)), "gap": float(ante.mean() - np.mean(others)),
            "cosine": float(cos.mean())}


def head_share(streams: Streams, pb, layer: int, head: int) -> dict | None:
    """How large the head's output is beside the stream it is added to, at the pronouns."""
    if pb.n_pronouns == 0:
        return None
    out = streams.head_out[layer][pb.pron_b, head, pb.pron_q]  # (P,C)
    stream = streams.pre[layer][pb.pron_b, pb.pron_q]
    head_norm = float(np.linalg.norm(out, axis=-1).mean())
    resid_norm = float(np.linalg.norm(stream, axis=-1).mean())
    return {"layer": layer, "head": head, "head_norm": head_norm, "resid_norm": resid_norm,
            "ratio": head_norm / resid_norm if resid_norm > 0 else float("nan")}


GRADIENT_SENTENCES = 3  # one backward pass each, and one per pronoun: keep the probe cheap
# The per-sentence backward passes cost about a quarter of a probe, so the Gradient's own
# measurements are taken only at probes on multiples of this many steps (and at step 0).
GRADIENT_EVERY = 600


def _global_norm(grads: dict) -> float:
    return float(math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())))


def gradient_spread(params: dict, cfg, pb, n: int = GRADIENT_SENTENCES) -> dict | None:
    """The Gradient of one sentence at a time against the Gradient of the batch they make:
    per-sentence global norms (mean, min, max) and the norm of their batch's mean loss."""
    from fabric_cli.nn.model import backward, forward

    n = min(n, pb.tokens.shape[0])
    if n < 2:
        return None
    norms = []
    for i in range(n):
        result = forward(params, cfg, pb.tokens[i:i + 1], pb.targets[i:i + 1])
        norms.append(_global_norm(backward(result)[0]))
    batch = forward(params, cfg, pb.tokens[:n], pb.targets[:n])
    return {"n": n, "mean": float(np.mean(norms)), "min": float(np.min(norms)),
            "max": float(np.max(norms)), "batch": _global_norm(backward(batch)[0])}


def gradient_reach(params: dict, cfg, pb, n: int = GRADIENT_SENTENCES) -> dict | None:
    """How much of the Gradient born at the word after a pronoun reaches its antecedent's
    position in the input (the position embedding's gradient row there), against the mean over
    the other positions before the pronoun; with the mean distance pronoun − antecedent."""
    from fabric_cli.nn.model import backward, forward

    ante, others, distance = [], [], []
    for i in range(min(len(pb.pron_b), n)):
        b, q, k = int(pb.pron_b[i]), int(pb.pron_q[i]), int(pb.pron_k[i])
        targets = np.full_like(pb.targets[b:b + 1], -1)
        targets[0, q] = pb.targets[b, q]  # only the word after the pronoun is judged
        if targets[0, q] < 0:
            continue
        grads = backward(forward(params, cfg, pb.tokens[b:b + 1], targets))[0]
        rows = np.linalg.norm(grads["pos_embed.W_pos"].astype(np.float64), axis=-1)
        rest = [j for j in range(1, q) if j != k]
        if not rest:
            continue
        ante.append(float(rows[k]))
        others.append(float(rows[rest].mean()))
        distance.append(q - k)
    if not ante:
        return None
    return {"n": len(ante), "antecedent": float(np.mean(ante)), "others": float(np.mean(others)),
            "distance": float(np.mean(distance))}


def probe_measures(params: dict, cfg, pb, heads: list[dict], step: int = 0) -> dict:
    """What a probe event records from this module (docs/chronicle.md): `logit_lens`,
    `gradient_spread`, `gradient_reach`, and for the best pronoun head `qk_alignment` and
    `head_share`."""
    streams = stream_forward(params, cfg, pb.tokens)
    rows = [r for r in heads if math.isfinite(float(r["scores"].get("pronoun", math.nan)))]
    best = max(rows, key=lambda r: r["scores"]["pronoun"]) if rows else None
    found = {"logit_lens": logit_lens(params, streams, pb), "qk_alignment": None,
             "head_share": None}
    if step % GRADIENT_EVERY == 0:
        found["gradient_spread"] = gradient_spread(params, cfg, pb)
        found["gradient_reach"] = gradient_reach(params, cfg, pb)
    if best is not None:
        found["qk_alignment"] = qk_alignment(streams, pb, best["layer"], best["head"])
        found["head_share"] = head_share(streams, pb, best["layer"], best["head"])
    from fabric_cli.analysis.qkspace import qk_space  # every head's q/k map (qkspace.py)

    found["qk_space"] = qk_space(streams, pb)
    return found
