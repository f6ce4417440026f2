"""The upper half of a step in its own process (nn/half_process.py) is the threads' step bit
for bit, whatever the rates and captures; a child that dies before or during a step changes
nothing but the speed; and the child belongs to fabric alone."""

import os

import numpy as np
import pytest

from fabric_cli.nn import batch_halves, half_process
from fabric_cli.nn.batch_halves import backward_step, forward_step
from fabric_cli.nn.blas import blas_threads
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Capture, init_params
from fabric_cli.nn.optim import clip_grad_norm, make_optimizer

CFG = ModelConfig(n_layers=2, n_heads=4, d_model=32, d_head=8, d_mlp=128, n_ctx=12, d_vocab=29)
STEP = Capture(layernorm=True, dropout=True)
pytestmark = [
    pytest.mark.skipif(blas_threads() is None, reason="the BLAS's thread count cannot be set"),
    pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="no memfd: threads only"),
]


def threads_only(monkeypatch):
    monkeypatch.setattr(batch_halves, "other_half", lambda *a, **k: None)


def train(steps, dropout, attn_dropout, B=9, kill=None):
    """`steps` training steps; returns everything a run would record of them. `kill`:
    "before" a step's forward or "between" its forward and backward, on the last step."""
    params = init_params(CFG, np.random.default_rng(0))
    optimizer = make_optimizer("adamw", params, lr=3e-3, weight_decay=0.1)
    rng = np.random.default_rng(4)
    data = np.random.default_rng(8)
    seen = []
    for step in range(steps):
        tokens = data.integers(0, CFG.d_vocab, (B, CFG.n_ctx))
        targets = data.integers(0, CFG.d_vocab, (B, CFG.n_ctx))
        targets[1, 5 + step % 4:] = -1
        last = step == steps - 1
        if last and kill == "before":
            half_process._current.proc.kill()
            half_process._current.proc.wait()
        result = forward_step(params, CFG, tokens, targets, dropout=dropout,
                              attn_dropout=attn_dropout, rng=rng, capture=STEP)
        if last and kill == "between":
            assert isinstance(result.cache.upper.cache, half_process.UpperElsewhere)
            half_process._current.proc.kill()
            half_process._current.proc.wait()
        grads, flow = backward_step(result, grad_flow=True)
        norm = clip_grad_norm(grads, 1.0)
        optimizer.step(params, grads, 3e-3)
        seen.append((result.loss, result.dropout_keep, result.layernorm, flow, norm,
                     result.token_losses.tobytes(), result.logits.tobytes()))
    return seen, {n: p.copy() for n, p in params.items()}, rng.bit_generator.state


def same(a, b):
    (seen_a, params_a, state_a), (seen_b, params_b, state_b) = a, b
    assert seen_a == seen_b
    assert state_a == state_b
    for name in params_a:
        assert np.array_equal(params_a[name], params_b[name]), name


@pytest.mark.parametrize("dropout,attn_dropout", [(0.1, 0.1), (0.2, 0.0), (0.0, 0.15),
                                                  (0.0, 0.0)])
def test_a_step_with_the_upper_half_elsewhere_is_the_threads_step_to_the_bit(
        two_threads, monkeypatch, dropout, attn_dropout):
    elsewhere = train(4, dropout, attn_dropout)
    assert half_process._current is not None and half_process._current.alive
    assert half_process._current.exchange >= 4  # the child did compute them
    threads_only(monkeypatch)
    same(elsewhere, train(4, dropout, attn_dropout))


@pytest.mark.parametrize("kill", ["before", "between"])
def test_a_child_that_dies_changes_nothing_but_the_speed(two_threads, monkeypatch, kill):
    half_process._failed.clear()
    died = train(3, 0.1, 0.1, B=11, kill=kill)
    assert half_process._current is None or not half_process._current.alive
    threads_only(monkeypatch)
    same(died, train(3, 0.1, 0.1, B=11))
    monkeypatch.undo()
    # the Fabric's halves stay in this process from then on: no child started each step
    assert half_process.other_half(CFG, init_params(CFG, np.random.default_rng(0)), 6,
                                   CFG.n_ctx) is None
    half_process._failed.clear()


def test_the_child_is_of_its_own_session_and_goes_when_closed(two_threads):
    params = init_params(CFG, np.random.default_rng(0))
    other = half_process.other_half(CFG, params, 3, 5)
    assert other is not None and other.alive
    assert os.getsid(other.proc.pid) != os.getsid(0)  # Ctrl-C at the terminal is ours alone
    proc = other.proc
    other.close()
    assert proc.poll() is not None and not other.alive
    # another Fabric, or another batch size, gets a child of its own
    again = half_process.other_half(CFG, params, 4, 5)
    assert again is not None and again is not other and again.alive


def test_the_childs_cpu_time_is_counted(two_threads):
    train(2, 0.1, 0.1, B=6)
    assert half_process.other_cpu_seconds() > 0.0


def test_fabric_bench_says_where_the_upper_half_ran():
    from dataclasses import replace

    from fabric_cli.nn.bench import BenchShape, run_bench

    shape = BenchShape(n_layers=1, n_heads=2, d_model=16, batch=6, seq_len=5, vocab=11)
    two = run_bench(shape, repeats=2, warmup=1, threads=2)
    assert two["blas_threads"] == 2 and two["upper_half_in_child_process"]
    one = run_bench(shape, repeats=2, warmup=1, threads=1)
    assert one["blas_threads"] == 1 and not one["upper_half_in_child_process"]
    single = run_bench(replace(shape, batch=1), repeats=2, warmup=1, threads=2)
    assert not single["in_halves"] and not single["upper_half_in_child_process"]
