"""AdamW against its formula, clipping, and the learning-rate schedule."""

import itertools
import math

import numpy as np
import pytest

from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import init_params
from fabric_cli.nn.optim import AdamW, clip_grad_norm, lr_at, make_optimizer

CFG = ModelConfig(n_layers=2, n_heads=2, d_model=8, d_head=4, d_mlp=16, n_ctx=6, d_vocab=11)


def reference_adamw(p, grads, lr, b1, b2, eps, wd, decayed):
    """Element by element, in Python floats: Loshchilov & Hutter's Algorithm 2."""
    p = [float(x) for x in p.reshape(-1)]
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t, g in enumerate(grads, start=1):
        for i, gi in enumerate(g.reshape(-1)):
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            mh, vh = m[i] / (1 - b1**t), v[i] / (1 - b2**t)
            p[i] -= lr * (mh / (math.sqrt(vh) + eps) + (wd * p[i] if decayed else 0.0))
    return np.array(p)


@pytest.mark.parametrize("decay_embeddings", [False, True])
def test_adamw_matches_the_formula_and_decays_only_matrices(decay_embeddings):
    rng = np.random.default_rng(0)
    params = init_params(CFG, rng, dtype=np.float64)
    for p in params.values():
        p += rng.normal(0, 0.5, p.shape)
    start = {n: p.copy() for n, p in params.items()}
    grads = [{n: rng.normal(size=p.shape) for n, p in params.items()} for _ in range(4)]
    opt = AdamW(params, lr=0.05, beta1=0.8, beta2=0.95, weight_decay=0.3,
                decay_embeddings=decay_embeddings)
    for g in grads:
        opt.step(params, {n: a.copy() for n, a in g.items()}, 0.05)
    assert opt.t == 4
    decayed = {"blocks.0.attn.W_Q", "blocks.1.mlp.W_out", "unembed.W_U", "blocks.0.attn.W_O"}
    undecayed = {"blocks.0.ln1.w", "blocks.0.attn.b_Q", "unembed.b_U", "ln_final.w"}
    embeddings = {"embed.W_E", "pos_embed.W_pos"}
    for name in decayed | undecayed | embeddings:
        should_decay = name in decayed or (decay_embeddings and name in embeddings)
        expected = reference_adamw(start[name], [g[name] for g in grads], 0.05, 0.8, 0.95, 1e-8,
                                   0.3, should_decay)
        np.testing.assert_allclose(params[name].reshape(-1), expected, rtol=1e-12, atol=1e-14)


def test_measure_reports_update_to_weight_ratio_per_group():
    rng = np.random.default_rng(1)
    params = init_params(CFG, rng)
    before = {n: p.copy() for n, p in params.items()}
    opt = AdamW(params, lr=1e-3)
    grads = {n: rng.normal(size=p.shape).astype(np.float32) for n, p in params.items()}
    ratios = opt.step(params, grads, 1e-3, measure=True)
    assert list(ratios) == ["embed", "pos_embed", "blocks.0", "blocks.1", "ln_final", "unembed"]
    block0 = [n for n in params if n.startswith("blocks.0.")]
    upd = math.sqrt(sum(float(np.sum((params[n].astype(np.float64) - before[n]) ** 2))
                        for n in block0))
    w = math.sqrt(sum(float(np.sum(before[n].astype(np.float64) ** 2)) for n in block0))
    assert ratios["blocks.0"] == pytest.approx(upd / w, rel=1e-3)
    assert opt.step(params, grads, 1e-3) is None


def test_state_arrays_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    params = init_params(CFG, rng)
    grads = [{n: rng.normal(size=p.shape).astype(np.float32) for n, p in params.items()}
             for _ in range(4)]
    opt = AdamW(params, lr=1e-2, weight_decay=0.1)
    for g in grads[:2]:
        opt.step(params, g, 1e-2)
    copy = {n: p.copy() for n, p in params.items()}
    resumed = AdamW(copy, lr=1e-2, weight_decay=0.1)
    resumed.load_state_arrays({k: v.copy() for k, v in opt.state_arrays().items()}, opt.t)
    for g in grads[2:]:
        opt.step(params, g, 1e-2)
        resumed.step(copy, g, 1e-2)
    assert all(np.array_equal(params[n], copy[n]) for n in params)
    assert min(opt.state_arrays()) == "m.blocks.0.attn.W_K"


def test_clipping_scales_to_the_max_norm_and_keeps_direction():
    rng = np.random.default_rng(3)
    grads = {"a": rng.normal(size=(4, 5)), "b": rng.normal(size=7)}
    original = {k: v.copy() for k, v in grads.items()}
    norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
    before, after, clipped = clip_grad_norm(grads, 0.5)
    assert clipped and before == pytest.approx(norm) and after == pytest.approx(0.5, rel=1e-5)
    now = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
    assert now == pytest.approx(0.5, rel=1e-5)
    np.testing.assert_allclose(grads["a"] / original["a"], now / norm)
    assert clip_grad_norm(grads, 10.0) == (pytest.approx(now), pytest.approx(now), False)


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    kw = {"base_lr": 1e-3, "warmup_steps": 10, "total_steps": 110, "min_lr_ratio": 0.1}
    assert lr_at(0, **kw) == pytest.approx(1e-4)
    assert lr_at(4, **kw) == pytest.approx(5e-4)
    assert lr_at(9, **kw) == pytest.approx(1e-3)
    assert lr_at(10, **kw) == pytest.approx(1e-3)
    assert lr_at(60, **kw) == pytest.approx(1e-4 + 0.9e-3 * 0.5)  # halfway down the cosine
    assert lr_at(110, **kw) == pytest.approx(1e-4) and lr_at(500, **kw) == pytest.approx(1e-4)
    after = [lr_at(s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(after))


def reference_sgd(p, grads, lr, momentum, wd, decayed):
    """Element by element, in Python floats: heavy-ball momentum (PyTorch's SGD, no
    dampening) with decoupled weight decay; momentum 0 is plain SGD."""
    p = [float(x) for x in p.reshape(-1)]
    buf = [0.0] * len(p)
    for g in grads:
        for i, gi in enumerate(g.reshape(-1)):
            buf[i] = momentum * buf[i] + gi
            p[i] -= lr * buf[i] + (lr * wd * p[i] if decayed else 0.0)
    return np.array(p)


@pytest.mark.parametrize("kind,momentum", [("sgd", 0.0), ("momentum", 0.7)])
def test_sgd_and_momentum_match_their_formulas_and_decay_only_matrices(kind, momentum):
    rng = np.random.default_rng(4)
    params = init_params(CFG, rng, dtype=np.float64)
    for p in params.values():
        p += rng.normal(0, 0.5, p.shape)
    start = {n: p.copy() for n, p in params.items()}
    grads = [{n: rng.normal(size=p.shape) for n, p in params.items()} for _ in range(4)]
    opt = make_optimizer(kind, params, lr=0.05, momentum=0.7, weight_decay=0.3,
                         beta1=0.1, beta2=0.2)  # betas are AdamW's: ignored here
    for g in grads:
        opt.step(params, {n: a.copy() for n, a in g.items()}, 0.05)
    assert opt.t == 4 and opt.kind == kind
    for name in ("blocks.0.attn.W_Q", "unembed.W_U", "blocks.0.ln1.w", "embed.W_E",
                 "unembed.b_U"):
        decayed = name in {"blocks.0.attn.W_Q", "unembed.W_U"}
        expected = reference_sgd(start[name], [g[name] for g in grads], 0.05, momentum, 0.3,
                                 decayed)
        np.testing.assert_allclose(params[name].reshape(-1), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["adamw", "sgd", "momentum"])
def test_every_optimizer_measures_and_round_trips_its_state(kind):
    rng = np.random.default_rng(5)
    params = init_params(CFG, rng)
    grads = [{n: rng.normal(size=p.shape).astype(np.float32) for n, p in params.items()}
             for _ in range(4)]
    opt = make_optimizer(kind, params, lr=1e-2, weight_decay=0.1)
    before = {n: p.copy() for n, p in params.items()}
    ratios = opt.step(params, grads[0], 1e-2, measure=True)
    head = [n for n in params if n.startswith("blocks.1.")]
    upd = math.sqrt(sum(float(np.sum((params[n].astype(np.float64) - before[n]) ** 2))
                        for n in head))
    w = math.sqrt(sum(float(np.sum(before[n].astype(np.float64) ** 2)) for n in head))
    assert ratios["blocks.1"] == pytest.approx(upd / w, rel=1e-3)
    opt.step(params, grads[1], 1e-2)
    state = opt.state_arrays()
    expected_state = {"adamw": {"m", "v"}, "momentum": {"m"}, "sgd": set()}[kind]
    assert {k.split(".")[0] for k in state} == expected_state
    copy = {n: p.copy() for n, p in params.items()}
    resumed = make_optimizer(kind, copy, lr=1e-2, weight_decay=0.1)
    resumed.load_state_arrays({k: v.copy() for k, v in state.items()}, opt.t)
    for g in grads[2:]:
        opt.step(params, g, 1e-2)
        resumed.step(copy, g, 1e-2)
    assert resumed.t == 4 and all(np.array_equal(params[n], copy[n]) for n in params)


def test_an_unknown_optimizer_is_named_with_the_choices():
    with pytest.raises(ValueError, match="adamw, sgd, momentum"):
        make_optimizer("rmsprop", {}, lr=1e-3)
