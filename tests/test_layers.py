"""Every layer's forward against an independent formula, and its backward against central
differences in float64 (max relative error <= 1e-6, every element)."""

import math

import numpy as np
import pytest

from fabric_cli.nn.attention import attention_backward, attention_forward
from fabric_cli.nn.dropout import dropout_backward, dropout_forward
from fabric_cli.nn.embedding import (
    embedding_backward,
    embedding_forward,
    unembed_backward,
    unembed_forward,
)
from fabric_cli.nn.layernorm import layernorm_backward, layernorm_forward
from fabric_cli.nn.loss import cross_entropy_backward, cross_entropy_forward
from fabric_cli.nn.mlp import gelu_backward, gelu_forward, mlp_backward, mlp_forward

B, T, C, NH, HS, H, V = 2, 5, 8, 2, 4, 12, 7


def numeric_grad(f, x, h=1e-3):
    """Four-point central differences, written here independently of nn/gradcheck.py."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        orig = x[i]
        vals = []
        for d in (-2 * h, -h, h, 2 * h):
            x[i] = orig + d
            vals.append(f())
        x[i] = orig
        g[i] = (vals[0] - 8 * vals[1] + 8 * vals[2] - vals[3]) / (12 * h)
    return g


def max_rel(a, b):
    """Relative error per element; below 1e-5 (exact zeros, e.g. b_K or dropped units, where
    the differences only see rounding noise ~1e-12) it becomes an absolute error / 1e-5."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-5)))


def check_layer(forward_fn, backward_fn, inputs, rng):
    """forward_fn(*inputs) -> (out, cache); backward_fn(dout, cache) -> grads of every input."""
    out, cache = forward_fn(*inputs)
    R = rng.normal(size=out.shape)
    grads = backward_fn(R, cache)
    assert len(grads) == len(inputs)
    for x, g in zip(inputs, grads, strict=True):
        numeric = numeric_grad(lambda: float(np.sum(forward_fn(*inputs)[0] * R)), x)
        assert g.shape == x.shape
        assert max_rel(g, numeric) <= 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_layernorm_forward_matches_definition_and_backward_matches_differences(rng):
    x = rng.normal(2.0, 3.0, (B, T, C))
    w, b = rng.normal(1, 0.3, C), rng.normal(0, 0.3, C)
    out, _ = layernorm_forward(x, w, b)
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    check_layer(layernorm_forward, layernorm_backward, [x, w, b], rng)


def naive_attention(x, W_Q, W_K, W_V, b_Q, b_K, b_V, W_O, b_O, ablate=(), keep=None, p_drop=0.0):
    """Loops over batch, head and query: the textbook definition, nothing shared. `keep`
    (B,NH,T,T bool) cuts attention weights after the softmax, the rest scaled by 1/(1-p)."""
    out = np.zeros_like(x)
    pattern = np.zeros((x.shape[0], W_Q.shape[0], x.shape[1], x.shape[1]))
    for bi in range(x.shape[0]):
        for h in range(W_Q.shape[0]):
            q, k, v = x[bi] @ W_Q[h] + b_Q[h], x[bi] @ W_K[h] + b_K[h], x[bi] @ W_V[h] + b_V[h]
            for t in range(x.shape[1]):
                s = np.array([q[t] @ k[j] / math.sqrt(W_Q.shape[2]) for j in range(t + 1)])
                p = np.exp(s - s.max())
                p /= p.sum()
                pattern[bi, h, t, : t + 1] = p
                if keep is not None:
                    p = p * keep[bi, h, t, : t + 1] / (1 - p_drop)
                z = p @ v[: t + 1]
                if h not in ablate:
                    out[bi, t] += z @ W_O[h]
        out[bi] += b_O
    return out, pattern


def attention_params(rng):
    shapes = [(NH, C, HS)] * 3 + [(NH, HS)] * 3 + [(NH, HS, C), (C,)]
    return [rng.normal(0, 0.6, s) for s in shapes]


def test_attention_matches_a_loop_over_heads_and_is_causal(rng):
    x = rng.normal(size=(B, T, C))
    weights = attention_params(rng)
    out, cache = attention_forward(x, *weights)
    expected, expected_pattern = naive_attention(x, *weights)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cache.pattern, expected_pattern, rtol=1e-10, atol=1e-14)
    assert np.all(cache.pattern[..., np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] == 0)
    np.testing.assert_allclose(cache.pattern.sum(-1), 1.0, rtol=1e-12)


def test_ablating_a_head_removes_exactly_its_contribution(rng):
    x = rng.normal(size=(B, T, C))
    weights = attention_params(rng)
    full, _ = attention_forward(x, *weights)
    out, _ = attention_forward(x, *weights, ablate={1})
    expected, _ = naive_attention(x, *weights, ablate=(1,))
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert np.abs(full - out).max() > 1e-3  # the head mattered


def test_attention_dropout_cuts_weights_after_softmax_and_keeps_the_clean_pattern(rng):
    x = rng.normal(size=(B, T, C))
    weights = attention_params(rng)
    keep = rng.random((B, NH, T, T)) >= 0.3
    out, cache = attention_forward(x, *weights, pattern_mask=keep, pattern_p=0.3)
    expected, expected_pattern = naive_attention(x, *weights, keep=keep, p_drop=0.3)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cache.pattern, expected_pattern, rtol=1e-10, atol=1e-14)
    clean, _ = attention_forward(x, *weights)
    assert np.abs(clean - out).max() > 1e-3  # the cut weights mattered

    names = ["W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "W_O", "b_O"]

    def backward(d, c):
        dx, g = attention_backward(d, c)
        return [dx] + [g[n] for n in names]

    check_layer(lambda *a: attention_forward(*a, pattern_mask=keep, pattern_p=0.3), backward,
                [x, *weights], rng)


@pytest.mark.parametrize("ablate", [(), (0,)])
def test_attention_backward_matches_differences(rng, ablate):
    x = rng.normal(size=(B, T, C))
    weights = attention_params(rng)
    names = ["W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "W_O", "b_O"]

    def backward(d, c):
        dx, g = attention_backward(d, c)
        return [dx] + [g[n] for n in names]

    check_layer(lambda *a: attention_forward(*a, ablate=ablate), backward, [x, *weights], rng)


def test_gelu_is_the_tanh_form_and_mlp_backward_matches_differences(rng):
    x = rng.normal(0, 2, (B, T, C))
    out, _ = gelu_forward(x.copy())
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(out, expected, rtol=1e-13)
    check_layer(gelu_forward, lambda d, c: [gelu_backward(d, c)], [x], rng)
    weights = [rng.normal(0, 0.5, s) for s in [(C, H), (H,), (H, C), (C,)]]
    check_layer(mlp_forward, lambda d, c: list(mlp_backward(d, c)), [x, *weights], rng)


def test_embedding_and_unembed_backward_match_differences(rng):
    tokens = rng.integers(0, V, (B, T))
    tokens[0, :3] = 4  # a repeated token must collect every use's gradient
    W_E, W_pos = rng.normal(size=(V, C)), rng.normal(size=(T + 2, C))
    out, _ = embedding_forward(tokens, W_E, W_pos)
    np.testing.assert_array_equal(out[1, 2], W_E[tokens[1, 2]] + W_pos[2])
    check_layer(lambda we, wp: embedding_forward(tokens, we, wp), embedding_backward,
                [W_E, W_pos], rng)
    x = rng.normal(size=(B, T, C))
    check_layer(unembed_forward, lambda d, c: list(unembed_backward(d, c)),
                [x, rng.normal(size=(C, V)), rng.normal(size=V)], rng)


def test_dropout_keeps_about_one_minus_p_scales_the_rest_and_passes_gradients_through_mask(rng):
    x = np.ones((200, 100), dtype=np.float32)
    out, cache = dropout_forward(x, 0.25, np.random.default_rng(3))
    kept = out != 0
    assert out.dtype == np.float32
    assert abs(cache.kept - 0.75) < 0.01 and cache.kept == kept.mean()
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
    mask = rng.random((B, T, C)) > 0.4
    y = rng.normal(size=(B, T, C))
    check_layer(lambda v: dropout_forward(v, 0.4, mask=mask), lambda d, c: [dropout_backward(d, c)],
                [y], rng)
    same, c0 = dropout_forward(y, 0.0)
    assert same is y and c0.kept == 1.0


@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_is_stable_ignores_padding_and_matches_logsumexp(rng, scale):
    logits = rng.normal(size=(B, T, V)) * scale
    logits[0, 0, 0] = scale  # extreme logits, both signs
    logits[0, 1, 1] = -scale
    targets = rng.integers(0, V, (B, T))
    targets[1, 3:] = -1
    ce, cache = cross_entropy_forward(logits, targets)
    valid = targets >= 0
    lse = np.logaddexp.reduce(logits, axis=-1)
    picked = np.take_along_axis(logits, np.maximum(targets, 0)[..., None], -1)[..., 0]
    expected = np.where(valid, lse - picked, 0.0)
    np.testing.assert_allclose(ce.token_losses, expected, rtol=1e-10, atol=1e-9)
    assert math.isclose(ce.loss, expected[valid].mean(), rel_tol=1e-12)
    dlogits = cross_entropy_backward(1.0, cache)
    assert np.isfinite(dlogits).all() and np.all(dlogits[~valid] == 0)
    if scale == 1.0:
        numeric = numeric_grad(lambda: cross_entropy_forward(logits, targets)[0].loss, logits)
        assert max_rel(dlogits, numeric) <= 1e-6
    f32, _ = cross_entropy_forward(logits.astype(np.float32), targets)
    assert np.isfinite(f32.loss)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_attention_stays_exact_when_scores_are_far_beyond_exps_range(rng, dtype):
    # weights so large that some scores exceed their row's diagonal by far more than 88:
    # exp of the difference overflows float32 and float64 alike, and the pattern must still
    # be the softmax (the stabiliser falls back to the row maximum)
    x = rng.normal(size=(B, T, C))
    weights = [w * 60.0 if i < 3 else w for i, w in enumerate(attention_params(rng))]
    out, cache = attention_forward(x.astype(dtype), *(w.astype(dtype) for w in weights))
    expected, expected_pattern = naive_attention(x, *weights)
    assert np.isfinite(cache.pattern).all() and np.isfinite(out).all()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cache.pattern, expected_pattern, atol=tol)
    np.testing.assert_allclose(out, expected, rtol=1e-3 if dtype == np.float32 else 1e-10,
                               atol=1e-3 if dtype == np.float32 else 1e-10)
    scores = np.einsum("bhtd,bhsd->bhts", cache.q, cache.k).astype(np.float64)
    tril = np.tril(np.ones((T, T), bool))
    gap = np.where(tril, scores, -np.inf).max(-1) - np.diagonal(scores, axis1=-2, axis2=-1)
    assert gap.max() > 800  # the overflowing case really happened
