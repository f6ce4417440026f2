"""The architecture switches: no residual, no LayerNorm; every combination's gradients, the
forward pass against the layer functions composed by hand, and checkpoints that keep them."""

from dataclasses import replace

import numpy as np
import pytest

from fabric_cli.analysis.runs import load_checkpoint, rng_from_state, rng_state, save_checkpoint
from fabric_cli.errors import FabricError
from fabric_cli.nn.attention import attention_forward
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.embedding import embedding_forward, unembed_forward
from fabric_cli.nn.layernorm import layernorm_forward
from fabric_cli.nn.mlp import mlp_forward
from fabric_cli.nn.model import ATTN_NAMES, Capture, backward, forward, init_params, param_shapes
from fabric_cli.nn.optim import make_optimizer

CFG = ModelConfig(n_layers=2, n_heads=2, d_model=8, d_head=4, d_mlp=16, n_ctx=6, d_vocab=11)
SWITCHES = [(r, n) for r in (True, False) for n in ("LN", None)]


def config(residual, norm):
    return replace(CFG, residual=residual, normalization_type=norm)


def spread_params(cfg, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng, dtype=np.float64)
    for p in params.values():
        p += rng.normal(0, spread, p.shape)
    return params


def batch(seed=1):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CFG.d_vocab, (3, 5))
    targets = rng.integers(0, CFG.d_vocab, (3, 5))
    targets[1, 3:] = -1
    return tokens, targets


def by_hand(params, cfg, tokens):
    """The forward pass composed from the layer functions, switches read directly."""
    def norm(x, name):
        if cfg.normalization_type is None:
            return x
        return layernorm_forward(x, params[name + ".w"], params[name + ".b"])[0]

    x = embedding_forward(tokens, params["embed.W_E"], params["pos_embed.W_pos"])[0]
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        a = attention_forward(norm(x, p + "ln1"), *(params[p + "attn." + n] for n in ATTN_NAMES))[0]
        x = x + a if cfg.residual else a
        m = mlp_forward(norm(x, p + "ln2"), *(params[p + "mlp." + n]
                                              for n in ("W_in", "b_in", "W_out", "b_out")))[0]
        x = x + m if cfg.residual else m
    return unembed_forward(norm(x, "ln_final"), params["unembed.W_U"], params["unembed.b_U"])[0]


@pytest.mark.parametrize("residual,norm", SWITCHES)
def test_forward_matches_the_layers_composed_by_hand(residual, norm):
    cfg = config(residual, norm)
    params = spread_params(cfg)
    tokens, _ = batch()
    np.testing.assert_allclose(forward(params, cfg, tokens).logits, by_hand(params, cfg, tokens),
                               rtol=1e-12, atol=1e-12)


def test_without_layernorm_there_are_no_ln_parameters_and_the_rest_is_unchanged():
    with_ln = init_params(CFG, np.random.default_rng(0))
    without = init_params(config(True, None), np.random.default_rng(0))
    assert not any(".ln" in n or n.startswith("ln_final") for n in without)
    assert set(without) == {n for n in with_ln if "ln" not in n.split(".")[-2]}
    assert all(np.array_equal(without[n], with_ln[n]) for n in without)  # same weights drawn
    result = forward(without, config(True, None), batch()[0],
                     capture=Capture(layernorm=True))
    assert result.layernorm == []  # nothing to report: no LayerNorm measured anything


def test_without_the_residual_the_stream_forgets_what_came_before():
    cfg = config(False, "LN")
    params = spread_params(cfg)
    tokens, _ = batch()
    changed = {n: p.copy() for n, p in params.items()}
    # Block 1's attention output is the whole stream between its attention and its MLP, so a
    # change to the embedding reaches the logits only through block 0 -> block 1's attention.
    # Zeroing block 1's attention output projection and bias makes the logits independent of
    # the tokens entirely (the MLP then sees a constant); with the residual it would not.
    changed["blocks.1.attn.W_O"][:] = 0.0
    changed["blocks.1.attn.b_O"][:] = 0.0
    logits = forward(changed, cfg, tokens).logits
    assert np.allclose(logits, logits[0, 0], atol=1e-12)
    with_skip = forward(changed, config(True, "LN"), tokens).logits
    assert not np.allclose(with_skip, with_skip[0, 0], atol=1e-3)


@pytest.mark.parametrize("residual,norm", SWITCHES)
@pytest.mark.parametrize("dropout", [0.0, 0.25])
def test_every_parameter_gradient_matches_central_differences(residual, norm, dropout):
    cfg = config(residual, norm)
    params = spread_params(cfg)
    tokens, targets = batch()

    def run():
        return forward(params, cfg, tokens, targets, dropout=dropout, attn_dropout=dropout,
                       rng=np.random.default_rng(7))

    grads, _ = backward(run())
    assert set(grads) == set(params) == set(param_shapes(cfg))
    rng = np.random.default_rng(2)
    h = 1e-3
    for name, p in params.items():
        flat = p.reshape(-1)
        for i in rng.choice(flat.size, size=min(flat.size, 6), replace=False):
            orig = flat[i]
            vals = []
            for d in (-2 * h, -h, h, 2 * h):
                flat[i] = orig + d
                vals.append(run().loss)
            flat[i] = orig
            numeric = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
            analytic = grads[name].reshape(-1)[i]
            # relative, with a floor at the stencil's own noise: float64 rounding of a loss
            # of ~4 over 12h leaves ~1e-12 in `numeric` (b_K's true gradient is exactly 0,
            # and one CPU's rounding gave -1.04e-12 against the floor's old 1e-6 * 1e-6)
            err = abs(analytic - numeric) / max(abs(analytic) + abs(numeric), 1e-5)
            assert err <= 1e-6, (name, i, analytic, numeric)


def test_grad_flow_without_the_residual_says_nothing_passed_the_skip():
    cfg = config(False, "LN")
    params = spread_params(cfg)
    tokens, targets = batch()
    _, flow = backward(forward(params, cfg, tokens, targets), grad_flow=True)
    assert all(r["skip"] == 0.0 for r in flow)
    assert all(r["block"] == r["leaving"] and r["arriving"] > 0 for r in flow)
    assert flow[0]["arriving"] == flow[1]["leaving"]
    _, on = backward(forward(params, config(True, "LN"), tokens, targets), grad_flow=True)
    assert all(r["skip"] == r["arriving"] for r in on)


def test_config_rejects_an_unknown_normalisation_and_a_non_boolean_residual():
    with pytest.raises(FabricError, match="normalization_type"):
        replace(CFG, normalization_type="RMS")
    with pytest.raises(FabricError, match="residual"):
        replace(CFG, residual="no")
    assert ModelConfig.from_dict(config(False, None).to_dict()) == config(False, None)


@pytest.mark.parametrize("kind", ["adamw", "sgd", "momentum"])
def test_a_switched_checkpoint_records_the_switches_and_resumes_bit_exactly(tmp_path, kind):
    cfg = replace(config(False, None), n_layers=1)
    rng = np.random.default_rng(0)
    params = init_params(cfg, rng)

    def make(ps):
        return make_optimizer(kind, ps, lr=1e-2, weight_decay=0.1, momentum=0.9)

    def step(ps, opt, gen):
        tokens = gen.integers(0, cfg.d_vocab, (4, 6))
        targets = gen.integers(-1, cfg.d_vocab, (4, 6))
        grads, _ = backward(forward(ps, cfg, tokens, targets, dropout=0.2, rng=gen))
        opt.step(ps, grads, 1e-2)

    opt = make(params)
    for _ in range(3):
        step(params, opt, rng)
    save_checkpoint(tmp_path / "run", cfg, params, opt, step=3,
                    rng_states={"data": rng_state(rng)})
    for _ in range(3):
        step(params, opt, rng)

    ck = load_checkpoint(tmp_path / "run", with_optimizer=True)
    assert ck.cfg == cfg and ck.cfg.residual is False and ck.cfg.normalization_type is None
    resumed = make(ck.params)
    resumed.load_state_arrays(ck.optimizer_arrays, ck.optimizer_t)
    gen = rng_from_state(ck.rng_states["data"])
    for _ in range(3):
        step(ck.params, resumed, gen)
    assert all(np.array_equal(params[n], ck.params[n]) for n in params)
    if kind != "adamw":  # a momentum or SGD state cannot pass for AdamW's
        with pytest.raises(FabricError, match="adamw"):
            make_optimizer("adamw", ck.params, lr=1e-2).load_state_arrays(
                ck.optimizer_arrays, ck.optimizer_t)
