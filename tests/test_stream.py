"""The residual stream's scale per layer (a probe-time capture), checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fabric_cli.analysis.stream import stream_scale
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Capture, forward, init_params


def _cfg(**kw) -> ModelConfig:
    return ModelConfig(n_layers=2, n_heads=2, d_model=8, d_head=4, d_mlp=16, n_ctx=6,
                       d_vocab=20, **kw)


@pytest.mark.parametrize("switches", [{}, {"residual": False, "normalization_type": None}])
def test_stream_scale_is_each_real_tokens_std_entering_each_layer_and_at_the_top(switches):
    cfg = _cfg(**switches)
    params = init_params(cfg, np.random.default_rng(0), dtype=np.float64)
    params["pos_embed.W_pos"] += 0.5  # make the scale visibly differ from the init's
    tokens = np.array([[1, 5, 7, 0, 0, 0], [1, 9, 3, 4, 11, 0]])
    result = forward(params, cfg, tokens, capture=Capture(stream=True))
    scale = stream_scale(result.stream, tokens)
    assert len(scale) == cfg.n_layers + 1
    # entering layer 0: token plus position embedding, computed here independently
    embedded = params["embed.W_E"][tokens] + params["pos_embed.W_pos"][None, :6]
    real = tokens != 0
    assert scale[0] == pytest.approx(float(embedded.std(axis=-1)[real].mean()), rel=1e-12)
    if cfg.normalization_type is None:
        # without ln_final the logits are the top of the stream times W_U: solve for it
        top, *_ = np.linalg.lstsq(params["unembed.W_U"].T,
                                  (result.logits - params["unembed.b_U"]).reshape(-1, 20).T,
                                  rcond=None)
        top = top.T.reshape(2, 6, 8)
        assert scale[-1] == pytest.approx(float(top.std(axis=-1)[real].mean()), rel=1e-8)


def test_no_capture_costs_nothing():
    cfg = _cfg()
    params = init_params(cfg, np.random.default_rng(0))
    assert forward(params, cfg, np.array([[1, 2, 3]])).stream is None
