"""The fast Fabric is the same Fabric: parity with the plain float64 reference written before
the speed work (tests/reference_fabric.py), on fixed inputs and the same dropout masks;
float32 close to float64; results independent of the BLAS thread count; and the flat
optimizer's bookkeeping."""

import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
from reference_fabric import loss_and_grads

from fabric_cli.nn import halves, optim
from fabric_cli.nn.batch_halves import backward_step, forward_step, to_last_target
from fabric_cli.nn.blas import blas_threads, choose_threads, set_blas_threads
from fabric_cli.nn.by_length import forward_by_length
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Capture, backward, forward, forward_by_rows, init_params
from fabric_cli.nn.optim import clip_grad_norm, make_optimizer

CFG = ModelConfig(n_layers=2, n_heads=3, d_model=12, d_head=4, d_mlp=20, n_ctx=7, d_vocab=13)


def spread(cfg, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng, dtype=dtype)
    for p in params.values():
        p += rng.normal(0, 0.3, p.shape).astype(dtype)
    return params


def batch(seed=1):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CFG.d_vocab, (4, 7))
    targets = rng.integers(0, CFG.d_vocab, (4, 7))
    targets[0, 5:] = -1
    return tokens, targets


@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("rates", [(0.2, 0.15), (0.2, 0.0), (0.0, 0.15), (0.0, 0.0)])
def test_a_step_computes_no_column_after_the_last_target_and_learns_the_same(residual,
                                                                            threads, rates):
    """forward_step leaves out the padding after every sentence's last target: the same
    loss and gradients as the whole width (float64, to 1e-10), from the same Dropout masks,
    and the generator left where the whole width leaves it; in one pass and in halves."""
    cfg = replace(CFG, residual=residual)
    params = spread(cfg)
    tokens, targets = batch()
    targets[:, 4:] = -1  # every sentence ends by column 3; 4.. are padding
    targets[2, 4] = 3  # but one goes on a column more
    assert to_last_target(targets) == 5
    assert to_last_target(np.full_like(targets, -1)) == 1
    rates = dict(zip(("dropout", "attn_dropout"), rates, strict=True))
    ours_rng, whole_rng = np.random.default_rng(5), np.random.default_rng(5)
    before = blas_threads()
    try:
        set_blas_threads(threads)
        ours = forward_step(params, cfg, tokens, targets, rng=ours_rng, **rates)
        ours_grads = backward_step(ours)[0]
    finally:
        set_blas_threads(before)
    whole = forward(params, cfg, tokens, targets, rng=whole_rng, **rates)
    assert ours.logits.shape[1] == 5  # the two padding columns were never computed
    assert ours_rng.bit_generator.state == whole_rng.bit_generator.state
    assert ours.loss == pytest.approx(whole.loss, rel=1e-12)
    np.testing.assert_allclose(ours.token_losses, whole.token_losses[:, :5], rtol=1e-12)
    for name, g in backward(whole)[0].items():
        np.testing.assert_allclose(ours_grads[name], g, rtol=1e-10, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("residual,norm", [(True, "LN"), (False, "LN"), (True, None),
                                           (False, None)])
@pytest.mark.parametrize("dropout,attn_dropout", [(0.0, 0.0), (0.2, 0.15)])
def test_loss_and_every_gradient_match_the_plain_reference(residual, norm, dropout,
                                                           attn_dropout):
    cfg = replace(CFG, residual=residual, normalization_type=norm)
    params = spread(cfg)
    tokens, targets = batch()
    result = forward(params, cfg, tokens, targets, dropout=dropout, attn_dropout=attn_dropout,
                     rng=np.random.default_rng(5))
    grads, _ = backward(result)
    ref_loss, ref_grads = loss_and_grads(params, cfg, tokens, targets, dropout, attn_dropout,
                                         np.random.default_rng(5))
    assert result.loss == pytest.approx(ref_loss, rel=1e-12)
    assert set(grads) == set(ref_grads)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref_grads[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_float32_agrees_with_the_float64_reference():
    params64 = spread(CFG)
    params32 = {n: p.astype(np.float32) for n, p in params64.items()}
    tokens, targets = batch()
    result = forward(params32, CFG, tokens, targets, dropout=0.1, attn_dropout=0.1,
                     rng=np.random.default_rng(3))
    grads, _ = backward(result)
    ref_loss, ref_grads = loss_and_grads(params64, CFG, tokens, targets, 0.1, 0.1,
                                         np.random.default_rng(3))
    assert result.loss == pytest.approx(ref_loss, rel=1e-5)
    for name, g in grads.items():
        assert g.dtype == np.float32
        # b_K's true gradient is 0 (a shift of every key cancels in the softmax): float32
        # leaves ~1e-8 of rounding there, so errors are judged against at least 1e-3
        scale = max(np.abs(ref_grads[name]).max(), 1e-3)
        assert np.abs(g - ref_grads[name]).max() / scale < 1e-4, name


def train(params, steps, seed=0, kind="adamw"):
    cfg = replace(CFG, n_ctx=24, d_model=64, d_head=16, n_heads=4, d_mlp=256, d_vocab=50)
    rng = np.random.default_rng(seed)
    opt = make_optimizer(kind, params, lr=1e-2, weight_decay=0.1)
    for _ in range(steps):
        tokens = rng.integers(0, cfg.d_vocab, (32, 24))
        grads, _ = backward(forward(params, cfg, tokens, tokens, dropout=0.1,
                                    attn_dropout=0.1, rng=rng))
        clip_grad_norm(grads, 1.0)
        opt.step(params, grads, 1e-2)
    return params


@pytest.mark.skipif(blas_threads() is None, reason="the BLAS's thread count cannot be set")
def test_a_thread_count_repeats_itself_exactly_and_differs_from_another_only_by_rounding():
    """On Intel's kernels 1 and 2 threads give the same bits; on AMD EPYC's, the weight
    gradients' long sums are split between threads and the last bits move (nn/blas.py), so
    a run never changes its count while it trains."""
    cfg = replace(CFG, n_ctx=24, d_model=64, d_head=16, n_heads=4, d_mlp=256, d_vocab=50)
    before = blas_threads()
    try:
        results = []
        for threads in (1, 2, 2):
            set_blas_threads(threads)
            results.append(train(init_params(cfg, np.random.default_rng(0)), steps=3))
    finally:
        set_blas_threads(before)
    one, two, two_again = results
    assert all(np.array_equal(two[n], two_again[n]) for n in two)
    # three AdamW steps of lr 1e-2 each move a weight by up to 3e-2: the counts may differ
    # by rounding, 1% of one step at most, never by a step's worth
    assert max(float(np.abs(one[n] - two[n]).max()) for n in one) < 1e-4


def split_or_whole(split, measure_on):
    """Three steps with the GELU and the optimizer in two threads, the optimizer in pieces
    of 7 (or neither)."""
    cfg = replace(CFG, n_ctx=24, d_model=64, d_head=16, n_heads=4, d_mlp=256, d_vocab=50)
    halves.MIN_ELEMENTS, optim.PIECE = (1, 7) if split else (1 << 62, 1 << 62)
    assert halves.worth_splitting(2) is split
    rng = np.random.default_rng(0)
    params = init_params(cfg, rng)
    opt = make_optimizer("adamw", params, lr=1e-2, weight_decay=0.1)
    losses, ratios = [], []
    for step in range(3):
        tokens = rng.integers(0, cfg.d_vocab, (32, 24))
        result = forward(params, cfg, tokens, tokens, dropout=0.1, attn_dropout=0.1, rng=rng)
        grads, _ = backward(result)
        clip_grad_norm(grads, 1.0)
        ratios.append(opt.step(params, grads, 1e-2, measure=step == measure_on))
        losses.append(result.loss)
    return params, losses, ratios


@pytest.mark.skipif(blas_threads() is None, reason="the BLAS's thread count cannot be set")
def test_the_gelu_and_the_optimizer_split_in_two_threads_and_pieces_change_no_bit(monkeypatch):
    monkeypatch.setattr(halves, "MIN_ELEMENTS", halves.MIN_ELEMENTS)  # restored after
    monkeypatch.setattr(optim, "PIECE", optim.PIECE)
    before = blas_threads()
    try:
        set_blas_threads(2)
        whole, whole_losses, whole_ratios = split_or_whole(False, measure_on=1)
        split, split_losses, split_ratios = split_or_whole(True, measure_on=1)
    finally:
        set_blas_threads(before)
    assert split_losses == whole_losses
    assert split_ratios == whole_ratios and split_ratios[1]
    assert all(np.array_equal(split[n], whole[n]) for n in whole)


def test_openblas_idle_threads_sleep_soon_unless_the_user_chose_otherwise():
    code = "import fabric_cli, os; print(os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}

    def seen(env):
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()

    assert seen(env) == "20"  # 2^20 cycles of spinning, not OpenBLAS's 2^28
    assert seen({**env, "OPENBLAS_THREAD_TIMEOUT": "28"}) == "28"


def test_in_halves_covers_every_index_once_and_waits_for_a_failing_half(monkeypatch):
    monkeypatch.setattr(halves, "worth_splitting", lambda elements: True)
    seen = np.zeros(9, dtype=int)

    def mark(s):
        seen[s] += 1

    halves.in_halves(mark, 9)
    assert seen.tolist() == [1] * 9

    done = []

    def fail_low(s):
        if s.start == 0:
            raise ValueError("lower half")
        done.append(s)

    with pytest.raises(ValueError):
        halves.in_halves(fail_low, 9)
    assert done == [slice(4, 9)]  # the upper half had finished before the error came out


@pytest.mark.skipif(blas_threads() is None, reason="the BLAS's thread count cannot be set")
def test_choose_threads_keeps_one_of_the_candidates_and_runs_every_step():
    before = blas_threads()
    calls = []
    try:
        choice = choose_threads(lambda: calls.append(blas_threads()), (1, 2), trials=2)
        assert choice["threads"] in (1, 2) and blas_threads() == choice["threads"]
        assert calls[:2] == [1, 2] and set(choice["ms"]) <= {1, 2}
        assert choice["ms"][choice["threads"]] == min(choice["ms"].values())
        assert choose_threads(lambda: None, step_flops=10.0) == {"threads": blas_threads(),
                                                                 "ms": {}}
    finally:
        set_blas_threads(before)


@pytest.mark.skipif(blas_threads() is None, reason="the BLAS's thread count cannot be set")
def test_a_count_whose_first_step_is_slow_is_not_dropped_for_it():
    """The first step at a new count starts threads and touches fresh memory; timed, it
    alone could make the faster count look 1.5x slower and drop it after one round."""
    before = blas_threads()
    set_blas_threads(1)
    seen = {1}  # the process has trained at one thread (fabric bench's warm-up steps)

    def step() -> None:
        n = blas_threads()
        time.sleep(0.06 if n not in seen else (0.004 if n == 1 else 0.001))
        seen.add(n)

    try:
        assert choose_threads(step, (1, 2), trials=2)["threads"] == 2
    finally:
        set_blas_threads(before)


def test_a_parameter_replaced_in_the_dict_is_bound_again_and_still_trained():
    params = {"blocks.0.attn.W_Q": np.ones((2, 3), np.float64),
              "blocks.0.ln1.w": np.ones(3, np.float64)}
    opt = make_optimizer("sgd", params, lr=0.5)
    grads = {n: np.ones_like(p) for n, p in params.items()}
    opt.step(params, grads, 0.5)
    params["blocks.0.ln1.w"] = np.full(3, 4.0)  # a caller swaps in a new array
    opt.step(params, grads, 0.5)
    np.testing.assert_array_equal(params["blocks.0.ln1.w"], 3.5)
    np.testing.assert_array_equal(params["blocks.0.attn.W_Q"], 0.0)
    # the dict's arrays are views of one buffer: moving one moves what the optimizer sees
    assert params["blocks.0.ln1.w"].base is params["blocks.0.attn.W_Q"].base


@pytest.mark.skipif(blas_threads() is None, reason="the BLAS's thread count cannot be set")
def test_the_trainers_thread_tuner_times_each_count_then_keeps_the_faster():
    from fabric_cli.nn.blas import TUNE_ABOVE_FLOPS, ThreadTuner

    before = blas_threads()
    try:
        small = ThreadTuner(TUNE_ABOVE_FLOPS / 10)
        small.before_step()
        assert not small.active and small.report()["threads"] == before
        tuner = ThreadTuner(TUNE_ABOVE_FLOPS * 2, candidates=(1, 2), trials=2)
        seen = []
        for seconds in (0.3, 0.2, 0.4, 0.3, 9.0):  # 1 thread: .3 .4; 2 threads: .2 .3
            tuner.before_step()
            seen.append(blas_threads())
            tuner.after_step(seconds)
        assert seen == [1, 2, 1, 2, 2] and tuner.chosen == 2 and blas_threads() == 2
        assert tuner.report() == {"threads": 2, "ms": {"1": 350.0, "2": 250.0}}
        # a count far slower after one round is not tried again
        busy = ThreadTuner(TUNE_ABOVE_FLOPS * 2, candidates=(1, 2), trials=3)
        seen = []
        for seconds in (0.1, 2.0, 0.1, 0.1):
            busy.before_step()
            seen.append(blas_threads())
            busy.after_step(seconds)
        assert seen == [1, 2, 1, 1] and busy.chosen == 1
    finally:
        set_blas_threads(before)


def test_probe_batches_joined_in_one_pass_give_what_each_gives_alone():
    from fabric_cli.training.probing import JointBatch

    params = spread(CFG, dtype=np.float32)
    rng = np.random.default_rng(4)

    class Batch:  # the two fields JointBatch reads from a ProbeBatch
        def __init__(self, B, T):
            self.tokens = rng.integers(0, CFG.d_vocab, (B, T))
            self.targets = rng.integers(-1, CFG.d_vocab, (B, T))

    batches = [Batch(5, 7), Batch(3, 4), Batch(2, 6)]
    joint = JointBatch(batches)
    parts = joint.split(forward(params, CFG, joint.tokens, joint.targets,
                                capture=Capture(attention=True)))
    for pb, part in zip(batches, parts, strict=True):
        alone = forward(params, CFG, pb.tokens, pb.targets,
                        capture=Capture(attention=True))
        assert part.loss == pytest.approx(alone.loss, rel=1e-5)
        np.testing.assert_allclose(part.logits, alone.logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(part.token_losses, alone.token_losses, rtol=1e-4, atol=1e-5)
        for a, b in zip(part.attention, alone.attention, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("B,rows", [(11, 4), (9, 3), (5, 8)])
def test_a_measuring_pass_in_slices_gives_what_one_pass_gives(B, rows):
    params = spread(CFG, dtype=np.float32, seed=3)
    rng = np.random.default_rng(5)
    tokens = rng.integers(0, CFG.d_vocab, (B, 7))
    targets = rng.integers(-1, CFG.d_vocab, (B, 7))
    capture = Capture(attention=True, stream=True)
    for ablate in ((), [(0, 1), (1, 2)]):
        whole = forward(params, CFG, tokens, targets, capture=capture, ablate=ablate)
        sliced = forward_by_rows(params, CFG, tokens, targets, capture=capture, ablate=ablate,
                                 rows=rows)
        assert sliced.loss == pytest.approx(whole.loss, rel=1e-6)
        np.testing.assert_allclose(sliced.logits, whole.logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sliced.token_losses, whole.token_losses, rtol=1e-5,
                                   atol=1e-6)
        for name in ("attention", "stream"):
            for a, b in zip(getattr(sliced, name), getattr(whole, name), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # no targets: logits only; LayerNorm statistics need the whole batch, so one pass
    assert np.isnan(forward_by_rows(params, CFG, tokens, rows=rows).loss)
    stats = forward_by_rows(params, CFG, tokens, targets, capture=Capture(layernorm=True),
                            rows=rows).layernorm
    assert stats == forward(params, CFG, tokens, targets, capture=Capture(layernorm=True)).layernorm


@pytest.mark.parametrize("B", [11, 5])
def test_the_final_ablations_measures_equal_one_whole_pass_per_set(B, monkeypatch):
    """The final ablation starts each silenced set above the clean blocks (nn/by_length.py
    and tests/test_by_length.py show such a start is the whole pass to the bit); its
    measures equal one whole pass per set, and the unsorted slices' to rounding."""
    from types import SimpleNamespace

    from fabric_cli.analysis import ablation
    from fabric_cli.analysis.ablation import _Silencings, role_measure

    cfg = replace(CFG, n_layers=3)
    params = spread(cfg, dtype=np.float32, seed=4)
    rng = np.random.default_rng(6)
    tokens = rng.integers(0, cfg.d_vocab, (B, 7))
    targets = rng.integers(-1, cfg.d_vocab, (B, 7))
    pb = SimpleNamespace(tokens=tokens, targets=targets, sites={})
    sets = [(), ((0, 1),), ((1, 0),), ((2, 1), (2, 2))]
    for keep in (True, False):  # streams kept; or too large to keep: every pass from the bottom
        if not keep:
            monkeypatch.setattr(ablation, "KEEP_STREAM_BYTES", 0)
        silence = _Silencings(params, cfg, pb, ["pronoun"], None)
        for heads in sets[1:] + sets[:1]:  # a silenced set first: the clean pass runs for it
            got = silence.measure(heads, "pronoun")
            alone = forward_by_length(params, cfg, tokens, targets, ablate=list(heads))
            assert got == role_measure(alone, pb, "pronoun", None)
            unsorted = role_measure(forward_by_rows(params, cfg, tokens, targets,
                                                    ablate=list(heads)), pb, "pronoun", None)
            assert got == pytest.approx(unsorted, rel=1e-5)
        assert (silence._clean_resid is not None) is keep
    with pytest.raises(ValueError):
        forward(params, cfg, tokens, targets, from_layer=1)  # no stream to start from
