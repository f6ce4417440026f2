"""The probe-time measurements, each against an independent computation with the model's own
forward pass (float64 parameters, so agreement is tight)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fabric_cli.analysis.measures import head_share, logit_lens, qk_alignment, stream_forward
from fabric_cli.analysis.probes import build_probe_batch
from fabric_cli.language.corpus import Corpus
from fabric_cli.nn.model import Capture, forward, init_params
from fabric_cli.scenario import load_scenario


@pytest.fixture(scope="module")
def setup():
    corpus = Corpus(load_scenario("tiny"))
    cfg = corpus.model_config()
    params = init_params(cfg, np.random.default_rng(3), dtype=np.float64)
    rng = np.random.default_rng(5)  # bigger weights than at birth, so the stages differ
    params = {k: v + rng.normal(0, 0.3, v.shape) for k, v in params.items()}
    pb = build_probe_batch(corpus.probe_set("train")[:16], corpus.batch)
    return cfg, params, pb


def test_the_recomputed_stream_ends_in_the_models_own_logits(setup):
    cfg, params, pb = setup
    streams = stream_forward(params, cfg, pb.tokens)
    model = forward(params, cfg, pb.tokens)
    assert np.allclose(streams.logits, model.logits, atol=1e-9)
    assert len(streams.pre) == len(streams.mid) == len(streams.post) == cfg.n_layers


def test_the_logit_lens_after_the_last_block_is_the_models_probability_of_the_true_word(setup):
    cfg, params, pb = setup
    lens = logit_lens(params, stream_forward(params, cfg, pb.tokens), pb)
    model = forward(params, cfg, pb.tokens)
    logits = model.logits[pb.pron_b, pb.pron_q]
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    target = pb.targets[pb.pron_b, pb.pron_q]
    keep = target >= 0
    expected = probs[np.arange(len(target)), target][keep].mean()
    assert lens["final"] == pytest.approx(expected, rel=1e-9)
    for row in lens["layers"]:  # each branch's gain is the difference of its two readings
        assert row["attn_gain"] == pytest.approx(row["after_attn"] - row["before"])
        assert row["mlp_gain"] == pytest.approx(row["after_mlp"] - row["after_attn"])
    layers = lens["layers"]
    assert all(a["after_mlp"] == b["before"] for a, b in itertools.pairwise(layers))


def test_query_key_alignment_is_what_the_attention_pattern_implies(setup):
    """softmax is shift-invariant in log space: log p(antecedent) − mean log p(other words)
    is the score gap, so the model's own attention pattern gives the gap independently."""
    cfg, params, pb = setup
    streams = stream_forward(params, cfg, pb.tokens)
    model = forward(params, cfg, pb.tokens, capture=Capture(attention=True))
    for layer in range(cfg.n_layers):
        for head in range(cfg.n_heads):
            found = qk_alignment(streams, pb, layer, head)
            with np.errstate(divide="ignore"):  # the masked future is 0; never read below
                logp = np.log(model.attention[layer][pb.pron_b, head, pb.pron_q])
            gaps = []
            for i, (q, k) in enumerate(zip(pb.pron_q, pb.pron_k)):
                rest = [j for j in range(1, int(q)) if j != int(k)]
                assert rest  # every tiny-language pronoun has other words before it
                gaps.append(logp[i, k] - logp[i, rest].mean())
            assert found["gap"] == pytest.approx(np.mean(gaps), rel=1e-6, abs=1e-9)
            assert found["gap"] == pytest.approx(found["antecedent"] - found["others"])


def test_head_share_is_the_norm_of_the_heads_own_write(setup):
    cfg, params, pb = setup
    streams = stream_forward(params, cfg, pb.tokens)
    # the heads' own writes, summed with the bias, are exactly what attention added
    added = streams.mid[0] - streams.pre[0]
    assert np.allclose(streams.head_out[0].sum(1) + params["blocks.0.attn.b_O"], added)
    share = head_share(streams, pb, 0, 1)
    mine = streams.head_out[0][pb.pron_b, 1, pb.pron_q]
    stream = streams.pre[0][pb.pron_b, pb.pron_q]
    assert share["head_norm"] == pytest.approx(np.linalg.norm(mine, axis=-1).mean())
    assert share["resid_norm"] == pytest.approx(np.linalg.norm(stream, axis=-1).mean())
    assert share["ratio"] == pytest.approx(share["head_norm"] / share["resid_norm"])


@pytest.mark.parametrize("residual, normalization", [(False, "LN"), (True, None), (False, None)])
def test_the_stream_is_recomputed_for_every_architecture_switch(setup, residual, normalization):
    import dataclasses

    base_cfg, _, pb = setup
    cfg = dataclasses.replace(base_cfg, residual=residual, normalization_type=normalization)
    params = init_params(cfg, np.random.default_rng(4), dtype=np.float64)
    streams = stream_forward(params, cfg, pb.tokens)
    assert np.allclose(streams.logits, forward(params, cfg, pb.tokens).logits, atol=1e-9)
    if not residual:  # each block's attention replaces the stream: mid is attention's output
        added = streams.head_out[0].sum(1) + params["blocks.0.attn.b_O"]
        assert np.allclose(streams.mid[0], added)


def test_the_batch_gradient_is_the_token_weighted_mean_of_the_sentences_own(setup):
    from fabric_cli.analysis.measures import gradient_spread
    from fabric_cli.nn.model import backward

    cfg, params, pb = setup
    found = gradient_spread(params, cfg, pb, n=4)
    per, weights = [], []
    for i in range(4):
        per.append(backward(forward(params, cfg, pb.tokens[i:i + 1], pb.targets[i:i + 1]))[0])
        weights.append(int((pb.targets[i] >= 0).sum()))
    total = sum(weights)
    mean_grad = {k: sum(w * g[k] for w, g in zip(weights, per)) / total for k in per[0]}
    expected = np.sqrt(sum(float((v ** 2).sum()) for v in mean_grad.values()))
    assert found["batch"] == pytest.approx(expected, rel=1e-9)
    assert found["min"] <= found["mean"] <= found["max"] and found["n"] == 4


def test_the_gradient_reaching_the_antecedent_matches_central_differences(setup):
    from fabric_cli.analysis.measures import gradient_reach

    cfg, params, pb = setup
    found = gradient_reach(params, cfg, pb, n=1)
    b, q, k = int(pb.pron_b[0]), int(pb.pron_q[0]), int(pb.pron_k[0])
    targets = np.full_like(pb.targets[b:b + 1], -1)
    targets[0, q] = pb.targets[b, q]
    eps, row = 1e-6, []
    for c in range(cfg.d_model):
        hi, lo = dict(params), dict(params)
        for sign, p in ((1, hi), (-1, lo)):
            w = params["pos_embed.W_pos"].copy()
            w[k, c] += sign * eps
            p["pos_embed.W_pos"] = w
        up = forward(hi, cfg, pb.tokens[b:b + 1], targets).loss
        down = forward(lo, cfg, pb.tokens[b:b + 1], targets).loss
        row.append((up - down) / (2 * eps))
    assert found["antecedent"] == pytest.approx(np.linalg.norm(row), rel=1e-5)
    assert found["distance"] == q - k and found["n"] == 1
