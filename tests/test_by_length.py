"""A measuring pass in slices sorted by length, each cut after its own last target, gives what
the whole batch gives at every target; and a silenced pass started above the clean blocks
from the kept streams is the whole silenced pass to the bit."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabric_cli.nn.by_length import forward_by_length, length_slices
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import forward, init_params

CFG = ModelConfig(n_layers=3, n_heads=3, d_model=12, d_head=4, d_mlp=20, n_ctx=9, d_vocab=13)


def spread(seed=0):
    rng = np.random.default_rng(seed)
    params = init_params(CFG, rng, dtype=np.float32)
    for p in params.values():
        p += rng.normal(0, 0.3, p.shape).astype(np.float32)
    return params


def sentences(B, seed, T=9):
    """Right-padded sentences of random lengths (some with no target at all)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, CFG.d_vocab, (B, T))
    targets = rng.integers(0, CFG.d_vocab, (B, T))
    lengths = rng.integers(0, T + 1, B)
    for b, n in enumerate(lengths):
        targets[b, n:] = -1
    return tokens, targets


@settings(max_examples=40, deadline=None)
@given(B=st.integers(1, 40), T=st.integers(1, 9), rows=st.integers(1, 16),
       seed=st.integers(0, 10**6))
def test_slices_hold_every_sequence_once_each_as_wide_as_its_last_target(B, T, rows, seed):
    _, targets = sentences(B, seed, T)
    slices = length_slices(targets, rows)
    seen = np.concatenate([which for which, _ in slices])
    assert sorted(seen.tolist()) == list(range(B))
    assert max(len(which) for which, _ in slices) <= max(rows, 1)
    widths = [width for _, width in slices]
    assert widths == sorted(widths)  # shortest first
    for which, width in slices:
        assert 1 <= width <= T
        assert not (targets[which, width:] >= 0).any()  # nothing cut holds a target
        assert any((targets[b, width - 1] >= 0) for b in which) or width == 1


@pytest.mark.parametrize("B,rows", [(23, 5), (8, 3), (6, 64)])
def test_sorted_slices_give_what_one_whole_pass_gives_at_every_target(B, rows):
    params = spread()
    tokens, targets = sentences(B, seed=B)
    valid = targets >= 0
    for ablate in ((), [(0, 1)], [(1, 0), (2, 2)]):
        whole = forward(params, CFG, tokens, targets, ablate=ablate)
        got = forward_by_length(params, CFG, tokens, targets, ablate=ablate, rows=rows)
        assert got.loss == pytest.approx(whole.loss, rel=1e-5)
        np.testing.assert_allclose(got.token_losses, whole.token_losses, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.logits[valid], whole.logits[valid], rtol=1e-5,
                                   atol=1e-5)
    assert not got.token_losses[~valid].any()


@pytest.mark.parametrize("rows", [4, 100])
def test_a_silenced_pass_started_from_the_kept_streams_is_the_whole_pass_to_the_bit(rows):
    params = spread(1)
    tokens, targets = sentences(17, seed=3)
    clean = forward_by_length(params, CFG, tokens, targets, rows=rows, keep_resid=True)
    assert len(clean.resid) == len(length_slices(targets, rows))
    assert all(len(streams) == CFG.n_layers for streams in clean.resid)
    assert all(len(z) == CFG.n_layers for z in clean.z)
    for heads in ([(1, 0)], [(2, 1), (2, 2)], [(1, 2), (2, 0)], [(0, 1)], [(0, 0), (2, 2)]):
        lowest = min(layer for layer, _ in heads)
        whole = forward_by_length(params, CFG, tokens, targets, ablate=heads, rows=rows)
        for z_in in (None, [z[lowest] for z in clean.z]):  # from the stream, or its heads too
            started = forward_by_length(params, CFG, tokens, targets, ablate=heads, rows=rows,
                                        from_layer=lowest, z_in=z_in,
                                        resid_in=[streams[lowest] for streams in clean.resid])
            assert np.array_equal(started.logits, whole.logits)
            assert np.array_equal(started.token_losses, whole.token_losses)
            assert started.loss == whole.loss
        # one block too high, the silenced block's own change is lost
        if lowest + 1 < CFG.n_layers:
            wrong = forward_by_length(params, CFG, tokens, targets, ablate=heads, rows=rows,
                                      from_layer=lowest + 1,
                                      resid_in=[s[lowest + 1] for s in clean.resid])
            assert not np.array_equal(wrong.logits, whole.logits)
    again = forward_by_length(params, CFG, tokens, targets, rows=rows, keep_resid=True)
    for kept, fresh in zip(clean.z, again.z, strict=True):  # the kept z were never zeroed
        assert all(np.array_equal(a, b) for a, b in zip(kept, fresh, strict=True))


def test_a_deeper_fabric_and_no_targets_at_all():
    cfg = replace(CFG, n_layers=1)
    params = init_params(cfg, np.random.default_rng(0), dtype=np.float32)
    tokens = np.zeros((3, 4), dtype=np.int64)
    targets = np.full((3, 4), -1)
    got = forward_by_length(params, cfg, tokens, targets)
    assert got.loss == 0.0 and not got.token_losses.any()


def test_the_silenced_sets_stop_when_enough_says_so_and_keep_what_they_measured():
    from types import SimpleNamespace

    from fabric_cli.analysis.ablation import measure_silencings

    params = spread(2)
    tokens, targets = sentences(12, seed=5)
    pb = SimpleNamespace(tokens=tokens, targets=targets, sites={})
    sets = [frozenset(), frozenset({(0, 1)}), frozenset({(2, 0)})]
    calls = []

    def enough():
        calls.append(1)
        return len(calls) >= 2

    some = measure_silencings(params, CFG, pb, sets, ["prev"], None, enough=enough)
    assert list(some) == sets[:2]  # asked after each set: the second said enough
    every = measure_silencings(params, CFG, pb, sets, ["prev"], None)
    assert list(every) == sets and all(every[s] == some[s] for s in some)


def test_the_clean_streams_serve_a_later_call_on_the_same_weights(monkeypatch):
    from types import SimpleNamespace

    from fabric_cli.analysis import ablation

    params = spread(3)
    tokens, targets = sentences(10, seed=6)
    pb = SimpleNamespace(tokens=tokens, targets=targets, sites={})
    clean_passes = []
    real = ablation.forward_by_length

    def counted(*args, **kwargs):
        if kwargs.get("keep_resid"):
            clean_passes.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ablation, "forward_by_length", counted)
    streams: dict = {}
    first = ablation.measure_silencings(params, CFG, pb, [frozenset(), frozenset({(1, 0)})],
                                        ["prev"], None, streams=streams)
    later = ablation.measure_silencings(params, CFG, pb, [frozenset({(2, 1)})], ["prev"], None,
                                        streams=streams)
    assert len(clean_passes) == 1 and "resid" in streams  # the later call started from them
    alone = ablation.measure_silencings(params, CFG, pb, [frozenset({(2, 1)})], ["prev"], None)
    assert later[frozenset({(2, 1)})] == alone[frozenset({(2, 1)})]  # to the bit
    assert len(clean_passes) == 2 and first


def test_the_final_ablation_gives_the_loop_every_set_above_block_0_and_splits_the_rest():
    from fabric_cli.training.probe_flow import shares

    sets = [frozenset({(0, 1)}), frozenset({(2, 0)}), frozenset({(0, 2), (1, 1)}),
            frozenset({(1, 3)}), frozenset({(0, 3)}), frozenset({(0, 0), (0, 1)})]
    mine, theirs = shares(sets, 3)
    assert sorted(mine + theirs, key=sorted) == sorted(sets, key=sorted)
    assert frozenset({(2, 0)}) in mine and frozenset({(1, 3)}) in mine
    assert all(min(layer for layer, _ in s) == 0 for s in theirs)
    blocks = [sum(3 - min(layer for layer, _ in s) for s in side) for side in (mine, theirs)]
    assert abs(blocks[0] - blocks[1]) <= 3  # within one pass from the bottom
    assert shares([], 3) == ([], [])
