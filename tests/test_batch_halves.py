"""A training step in two halves of the batch, one per core (nn/batch_halves.py), is the
whole batch's step: the same Dropout masks and generator state, the same loss, the
gradients to float32 rounding; and it repeats itself to the bit."""

from dataclasses import replace

import numpy as np
import pytest

from fabric_cli.nn import batch_halves, halves
from fabric_cli.nn.blas import blas_threads
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Capture, backward, forward, init_params
from fabric_cli.nn.optim import clip_grad_norm, make_optimizer

CFG = ModelConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, d_mlp=128, n_ctx=12, d_vocab=29)
STEP = Capture(layernorm=True, dropout=True)  # what the trainer asks of a step
settable = pytest.mark.skipif(blas_threads() is None,
                              reason="the BLAS's thread count cannot be set")


def batch(B=7, seed=1):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CFG.d_vocab, (B, CFG.n_ctx))
    targets = rng.integers(0, CFG.d_vocab, (B, CFG.n_ctx))
    targets[2, 4:] = -1  # padding, more of it in the first half than the second
    targets[0, 9:] = -1
    return tokens, targets


def test_masks_drawn_before_give_the_pass_the_generator_would_draw():
    params = init_params(CFG, np.random.default_rng(0))
    tokens, targets = batch()
    drawing, ahead = np.random.default_rng(5), np.random.default_rng(5)
    live = forward(params, CFG, tokens, targets, dropout=0.2, attn_dropout=0.15, rng=drawing,
                   capture=STEP)
    masks, units = batch_halves.draw_masks(CFG, *tokens.shape, 0.2, 0.15, ahead)
    given = forward(params, CFG, tokens, targets, dropout=0.2, attn_dropout=0.15,
                    drawn=masks, capture=STEP)
    assert len(masks) == 3 * CFG.n_layers and len(units) == 2 * CFG.n_layers
    assert np.array_equal(live.logits, given.logits) and live.loss == given.loss
    assert live.dropout_keep == given.dropout_keep
    assert drawing.random() == ahead.random()  # the generator moved on exactly as far


@settable
def test_a_step_in_halves_is_the_whole_batchs_step_to_rounding(two_threads):
    params = init_params(CFG, np.random.default_rng(0))
    for p in params.values():
        p += np.random.default_rng(3).normal(0, 0.2, p.shape).astype(p.dtype)
    tokens, targets = batch()
    whole_rng, halves_rng = np.random.default_rng(5), np.random.default_rng(5)
    whole = forward(params, CFG, tokens, targets, dropout=0.2, attn_dropout=0.15,
                    rng=whole_rng, capture=STEP)
    whole_grads, whole_flow = backward(whole, grad_flow=True)
    split = batch_halves.forward_step(params, CFG, tokens, targets, dropout=0.2,
                                      attn_dropout=0.15, rng=halves_rng, capture=STEP)
    assert isinstance(split.cache, batch_halves.HalvesCache)  # it did split: 3 and 4 rows
    grads, flow = batch_halves.backward_step(split, grad_flow=True)
    assert blas_threads() == 2  # given back after each half ran on one
    assert whole_rng.random() == halves_rng.random()
    assert split.dropout_keep == whole.dropout_keep
    assert split.loss == pytest.approx(whole.loss, rel=1e-6)
    assert np.allclose(split.logits, whole.logits, rtol=1e-5, atol=1e-6)
    assert np.allclose(split.token_losses, whole.token_losses, rtol=1e-5, atol=1e-6)
    scale = max(float(np.abs(g).max()) for g in whole_grads.values())
    for name, g in whole_grads.items():  # b_K's true gradient is 0: there, rounding alone
        assert np.allclose(grads[name], g, rtol=1e-4, atol=1e-5 * scale), name
    for ours, theirs in zip(flow, whole_flow, strict=True):
        assert ours["layer"] == theirs["layer"]
        for key in batch_halves.FLOW_KEYS:
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-9), key
    for ours, theirs in zip(split.layernorm, whole.layernorm, strict=True):
        assert ours["name"] == theirs["name"]
        for key in ("in_mean", "in_std", "out_mean", "out_std"):
            assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), key


def train(steps=3, B=8):
    cfg = replace(CFG, n_ctx=10)
    rng = np.random.default_rng(0)
    params = init_params(cfg, rng)
    opt = make_optimizer("adamw", params, lr=1e-2, weight_decay=0.1)
    for _ in range(steps):
        tokens = rng.integers(0, cfg.d_vocab, (B, cfg.n_ctx))
        result = batch_halves.forward_step(params, cfg, tokens, tokens, dropout=0.1,
                                           attn_dropout=0.1, rng=rng, capture=STEP)
        grads, _ = batch_halves.backward_step(result, grad_flow=True)
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads, 1e-2)
    return params


@settable
def test_a_run_in_halves_repeats_itself_to_the_bit(two_threads):
    first, again = train(), train()
    assert all(np.array_equal(first[n], again[n]) for n in first)


def test_a_step_stays_whole_where_halves_cannot_help_or_cannot_capture(monkeypatch):
    tokens = np.zeros((6, 4), dtype=int)
    monkeypatch.setattr(batch_halves, "blas_threads", lambda: 2)
    assert batch_halves.step_in_halves(tokens, STEP)
    assert not batch_halves.step_in_halves(tokens[:1], STEP)  # one sequence has no halves
    assert not batch_halves.step_in_halves(tokens, Capture(attention=True))  # patterns: whole
    assert not batch_halves.step_in_halves(tokens, Capture(z=True))  # halves keep no z
    monkeypatch.setattr(batch_halves, "blas_threads", lambda: 1)  # no core to spare
    assert not batch_halves.step_in_halves(tokens, STEP)
    params = init_params(CFG, np.random.default_rng(0))
    result = batch_halves.forward_step(params, CFG, tokens, tokens, capture=STEP)
    assert not isinstance(result.cache, batch_halves.HalvesCache)


def test_the_helper_half_works_under_the_callers_error_state_and_is_waited_for():
    def overflow():
        return np.array([3e38], dtype=np.float32) * np.float32(10)

    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        halves.side_by_side(lambda: 1, overflow)  # raised here, from the helper
    with np.errstate(over="ignore"):
        low, high = halves.side_by_side(lambda: 1, overflow)
    assert low == 1 and np.isinf(high[0])
    finished = []

    def slow_upper():
        import time

        time.sleep(0.05)
        finished.append(True)

    def failing_lower():
        raise ValueError("lower half")

    with pytest.raises(ValueError):
        halves.side_by_side(failing_lower, slow_upper)
    assert finished == [True]  # the upper half had finished before the error came out


@pytest.mark.parametrize("B,T,offset", [(7, 12, 0), (7, 12, 1), (2, 5, 3), (9, 3, 2)])
def test_each_half_draws_its_own_rows_of_the_masks_one_whole_draw_gives(B, T, offset):
    """The generator's stream positioned for each half (a float32 draw takes half of a
    64-bit output, so where a half begins depends on what is waiting): the same masks and
    the same generator state after, whatever odd counts came before."""
    cfg = replace(CFG, n_ctx=T, d_model=5, n_heads=3)  # odd sizes: halves begin mid-output
    whole_rng, planned_rng = np.random.default_rng(9), np.random.default_rng(9)
    for rng in (whole_rng, planned_rng):
        rng.random(offset, dtype=np.float32)  # 1 or 3 leave a high half waiting
    masks, units = batch_halves.draw_masks(cfg, B, T, 0.3, 0.2, whole_rng)
    plan = batch_halves.plan_masks(cfg, B, T, B // 2, 0.3, 0.2, planned_rng)
    lower, upper = batch_halves.draw_half(plan, 0), batch_halves.draw_half(plan, 1)
    assert len(lower) == len(masks) == 3 * cfg.n_layers
    for whole, low, high in zip(masks, lower, upper, strict=True):
        assert np.array_equal(whole[:B // 2], low) and np.array_equal(whole[B // 2:], high)
    assert planned_rng.bit_generator.state == whole_rng.bit_generator.state
    assert [m.shape[1:] for m, u in zip(lower, plan.units, strict=True) if u] == [
        m.shape[1:] for m in units]


@settable
def test_a_generator_other_than_pcg64_draws_the_whole_masks_first(two_threads):
    assert batch_halves.plan_masks(CFG, 6, 12, 3, 0.1, 0.1,
                                   np.random.Generator(np.random.MT19937(4))) is None
    params = init_params(CFG, np.random.default_rng(0))
    tokens, targets = batch()
    whole_rng = np.random.Generator(np.random.MT19937(4))
    split_rng = np.random.Generator(np.random.MT19937(4))
    whole = forward(params, CFG, tokens, targets, dropout=0.2, attn_dropout=0.15,
                    rng=whole_rng, capture=STEP)
    split = batch_halves.forward_step(params, CFG, tokens, targets, dropout=0.2,
                                      attn_dropout=0.15, rng=split_rng, capture=STEP)
    assert isinstance(split.cache, batch_halves.HalvesCache)
    assert split.dropout_keep == whole.dropout_keep
    assert split_rng.random() == whole_rng.random()  # moved on alike
    assert np.allclose(split.logits, whole.logits, rtol=1e-5, atol=1e-6)
