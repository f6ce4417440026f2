"""The whole Fabric: gradients of every parameter, ablation, determinism, learning."""

import numpy as np
import pytest

from fabric_cli.errors import FabricError
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Capture, backward, forward, init_params, param_shapes
from fabric_cli.nn.optim import AdamW, clip_grad_norm

CFG = ModelConfig(n_layers=2, n_heads=2, d_model=8, d_head=4, d_mlp=16, n_ctx=6, d_vocab=11)


def spread_params(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = init_params(CFG, rng, dtype=dtype)
    for p in params.values():
        p += rng.normal(0, 0.4, p.shape).astype(dtype)
    return params


def batch(seed=1):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CFG.d_vocab, (3, 5))
    targets = rng.integers(0, CFG.d_vocab, (3, 5))
    targets[1, 3:] = -1
    return tokens, targets


def test_parameters_have_transformerlens_names_and_shapes():
    params = init_params(CFG, np.random.default_rng(0))
    assert params["blocks.1.attn.W_Q"].shape == (2, 8, 4)
    assert params["blocks.0.attn.W_O"].shape == (2, 4, 8)
    assert params["embed.W_E"].shape == (11, 8) and params["unembed.W_U"].shape == (8, 11)
    assert params["pos_embed.W_pos"].shape == (6, 8) and params["blocks.0.mlp.W_in"].shape == (8, 16)
    assert list(params) == list(param_shapes(CFG))
    assert all(p.dtype == np.float32 for p in params.values())
    np.testing.assert_array_equal(params["blocks.0.ln1.w"], 1.0)


def test_every_parameter_gradient_matches_central_differences_with_dropout():
    params = spread_params()
    tokens, targets = batch()

    def loss():
        return forward(params, CFG, tokens, targets, dropout=0.2,
                       rng=np.random.default_rng(7)).loss  # same masks every call

    grads, _ = backward(forward(params, CFG, tokens, targets, dropout=0.2,
                                rng=np.random.default_rng(7)))
    assert set(grads) == set(params)
    rng = np.random.default_rng(2)
    h = 1e-3
    for name, p in params.items():
        flat = p.reshape(-1)
        # a dense sample: every element of small tensors, 24 of the larger ones
        idx = rng.choice(flat.size, size=min(flat.size, 24), replace=False)
        for i in idx:
            orig = flat[i]
            vals = []
            for d in (-2 * h, -h, h, 2 * h):
                flat[i] = orig + d
                vals.append(loss())
            flat[i] = orig
            numeric = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
            analytic = grads[name].reshape(-1)[i]
            err = abs(analytic - numeric) / max(abs(analytic) + abs(numeric), 1e-6)
            assert err <= 1e-6, (name, i, analytic, numeric)


def test_ablating_a_head_equals_zeroing_its_output_projection():
    params = spread_params()
    tokens, _ = batch()
    ablated = forward(params, CFG, tokens, ablate=[(1, 0)], capture=Capture(attention=True))
    zeroed = {n: p.copy() for n, p in params.items()}
    zeroed["blocks.1.attn.W_O"][0] = 0.0  # z_h @ W_O[h] is the head's whole contribution
    independent = forward(zeroed, CFG, tokens)
    full = forward(params, CFG, tokens, capture=Capture(attention=True))
    np.testing.assert_allclose(ablated.logits, independent.logits, rtol=1e-12, atol=1e-12)
    assert np.abs(full.logits - ablated.logits).max() > 1e-3
    np.testing.assert_array_equal(ablated.attention[1], full.attention[1])  # it still looks


def test_capture_records_only_what_was_asked():
    params = spread_params()
    tokens, targets = batch()
    plain = forward(params, CFG, tokens, targets)
    assert plain.attention is None and plain.layernorm is None and plain.dropout_keep is None
    seen = forward(params, CFG, tokens, targets, dropout=0.5, rng=np.random.default_rng(0),
                   capture=Capture(attention=True, layernorm=True, dropout=True))
    assert [a.shape for a in seen.attention] == [(3, 2, 5, 5)] * 2
    assert [s["name"] for s in seen.layernorm] == [
        "blocks.0.ln1", "blocks.0.ln2", "blocks.1.ln1", "blocks.1.ln2", "ln_final"]
    assert all(abs(s["out_std"] - 1) < 1 for s in seen.layernorm)
    assert 0.3 < seen.dropout_keep < 0.7
    assert np.isnan(forward(params, CFG, tokens).loss)


def test_grad_flow_rows_chain_from_top_to_bottom():
    params = spread_params()
    tokens, targets = batch()
    result = forward(params, CFG, tokens, targets)
    grads, flow = backward(result, grad_flow=True)
    assert [r["layer"] for r in flow] == [0, 1]
    assert flow[0]["arriving"] == flow[1]["leaving"]  # block 1's input is block 0's output
    assert all(r["skip"] == r["arriving"] and r["block"] > 0 for r in flow)
    # what leaves the bottom block reaches the embeddings: summed over the batch it is W_pos's
    # gradient, so its norm bounds that gradient's norm from above (triangle inequality)
    assert np.linalg.norm(grads["pos_embed.W_pos"]) <= flow[0]["leaving"] * np.sqrt(3) + 1e-12
    assert backward(result)[1] is None


def test_float32_stays_float32():
    params = init_params(CFG, np.random.default_rng(0))
    tokens, targets = batch()
    result = forward(params, CFG, tokens, targets, dropout=0.1, rng=np.random.default_rng(0))
    grads, _ = backward(result)
    assert result.logits.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


def train(seed, steps, dropout=0.1):
    rng = np.random.default_rng(seed)
    params = init_params(CFG, rng)
    opt = AdamW(params, lr=1e-2, weight_decay=0.01)
    tokens, targets = batch()
    losses = []
    for _ in range(steps):
        result = forward(params, CFG, tokens, targets, dropout=dropout, rng=rng)
        grads, _ = backward(result)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads, 1e-2)
        losses.append(result.loss)
    return params, losses


def test_same_seed_gives_bitwise_identical_weights():
    a, _ = train(seed=5, steps=15)
    b, _ = train(seed=5, steps=15)
    c, _ = train(seed=6, steps=15)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not np.array_equal(a["unembed.W_U"], c["unembed.W_U"])


def test_loss_falls_to_near_zero_when_memorising_a_few_sequences():
    _, losses = train(seed=0, steps=300, dropout=0.0)
    assert losses[0] > 2.0  # about log(11) at the start
    assert losses[-1] < 0.05


@pytest.mark.parametrize("tokens", [np.zeros((1, 7), int), np.full((1, 3), 11), np.ones((3,), int)])
def test_bad_inputs_are_one_clear_error(tokens):
    params = init_params(CFG, np.random.default_rng(0))
    with pytest.raises(FabricError):
        forward(params, CFG, tokens)
