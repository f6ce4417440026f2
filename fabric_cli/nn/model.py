"""The Fabric: a pre-LayerNorm decoder-only transformer, forward and backward, in NumPy.

Shapes: B batch, T time, C channels (d_model), NH heads, HS head size, V vocab.
    tokens (B,T) int -> embed + pos_embed -> resid_pre_0 (B,T,C)
    block l:  resid_mid_l  = resid_pre_l + dropout(attn(ln1(resid_pre_l)))   (attn may also
              drop attention weights inside each head: attention dropout)
              resid_post_l = resid_mid_l + dropout(mlp(ln2(resid_mid_l)))
    ln_final -> unembed -> logits (B,T,V) -> cross-entropy against targets (B,T), -1 ignored
Parameters carry TransformerLens' names and shapes, so other tools can read the weights.

Two switches take parts away, to show what they are for (ModelConfig):
    residual=False            no skip path: resid_mid_l = dropout(attn(ln1(resid_pre_l))) and
                              resid_post_l = dropout(mlp(ln2(resid_mid_l))), each block's
                              output replaces the stream instead of being added to it
    normalization_type=None   no LayerNorm anywhere (ln1, ln2, ln_final are the identity) and
                              no ln parameters, as TransformerLens' own normalization_type=None
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fabric_cli.errors import FabricError
from fabric_cli.nn.allocator import keep_freed_memory
from fabric_cli.nn.attention import attention_backward, attention_forward, heads_output
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.dropout import dropout_backward, dropout_forward
from fabric_cli.nn.embedding import (
    embedding_backward,
    embedding_forward,
    unembed_backward,
    unembed_forward,
)
from fabric_cli.nn.layernorm import layernorm_backward, layernorm_forward, layernorm_stats
from fabric_cli.nn.loss import cross_entropy_backward, cross_entropy_forward
from fabric_cli.nn.masks import keep_mask
from fabric_cli.nn.mlp import mlp_backward, mlp_forward

Params = dict[str, np.ndarray]

# Steps allocate many ~1 MB arrays; recycling them instead of re-mapping pages halves a
# step's time (see allocator.py). Once per process, on first import of the model.
keep_freed_memory()

ATTN_NAMES = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "W_O", "b_O")


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's TransformerLens name and shape, bottom of the Fabric to the top."""
    C, NH, HS, H, V = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.d_vocab
    shapes: dict[str, tuple[int, ...]] = {"embed.W_E": (V, C), "pos_embed.W_pos": (cfg.n_ctx, C)}
    ln = cfg.layernorm  # without LayerNorm there are no ln parameters (TransformerLens' way)
    for layer in range(cfg.n_layers):
        p = f"blocks.{layer}."
        if ln:
            shapes.update({p + "ln1.w": (C,), p + "ln1.b": (C,)})
        shapes.update({
            p + "attn.W_Q": (NH, C, HS), p + "attn.W_K": (NH, C, HS), p + "attn.W_V": (NH, C, HS),
            p + "attn.b_Q": (NH, HS), p + "attn.b_K": (NH, HS), p + "attn.b_V": (NH, HS),
            p + "attn.W_O": (NH, HS, C), p + "attn.b_O": (C,),
        })
        if ln:
            shapes.update({p + "ln2.w": (C,), p + "ln2.b": (C,)})
        shapes.update({
            p + "mlp.W_in": (C, H), p + "mlp.b_in": (H,),
            p + "mlp.W_out": (H, C), p + "mlp.b_out": (C,),
        })
    if ln:
        shapes.update({"ln_final.w": (C,), "ln_final.b": (C,)})
    shapes.update({"unembed.W_U": (C, V), "unembed.b_U": (V,)})
    return shapes


def init_params(cfg: ModelConfig, rng: np.random.Generator, dtype: Any = np.float32) -> Params:
    """Weights ~ N(0, init_range); biases 0; LayerNorm gains 1. Drawn in name order."""
    params: Params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[1]
        if ".ln" in name or name.startswith("ln_final"):
            value = np.ones(shape) if leaf == "w" else np.zeros(shape)
        elif leaf.startswith("b"):
            value = np.zeros(shape)
        else:
            value = rng.normal(0.0, cfg.init_range, size=shape)
        params[name] = value.astype(dtype)
    return params


def count_params(params: Params) -> int:
    return int(sum(p.size for p in params.values()))


@dataclass(frozen=True)
class Capture:
    """What forward records beyond the loss; each costs time, so only when asked."""

    attention: bool = False  # every head's pattern, (B,NH,T,T) per layer
    layernorm: bool = False  # mean/std in and out of every LayerNorm
    dropout: bool = False  # fraction of units Dropout kept
    stream: bool = False  # each token's std across channels of the residual stream, per layer
    resid: bool = False  # the residual stream itself entering each layer, (B,T,C) per layer
    z: bool = False  # the heads' outputs before W_O, (B,T,NH,HS) per layer


@dataclass
class ForwardResult:
    loss: float  # mean cross-entropy over non-padding targets; nan without targets
    logits: np.ndarray  # (B,T,V)
    token_losses: np.ndarray | None  # (B,T), 0 where ignored; None without targets
    attention: list[np.ndarray] | None = None  # per layer (B,NH,T,T)
    layernorm: list[dict] | None = None  # {"name","in_mean","in_std","out_mean","out_std"}
    dropout_keep: float | None = None
    stream: list[np.ndarray] | None = None  # (B,T) entering each layer, then at the top
    resid: list[np.ndarray] | None = None  # (B,T,C) entering each layer (Capture.resid)
    z: list[np.ndarray] | None = None  # (B,T,NH,HS) per layer (Capture.z)
    cache: Any = field(default=None, repr=False)  # for backward only


def _check_inputs(cfg: ModelConfig, tokens: np.ndarray, targets: np.ndarray | None) -> None:
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise FabricError(f"tokens must be a (batch, time) integer array, got {tokens.shape}")
    if tokens.shape[1] > cfg.n_ctx or tokens.shape[1] < 1:
        raise FabricError(
            f"sequence of {tokens.shape[1]} tokens does not fit the model's context of "
            f"{cfg.n_ctx}; use a shorter sentence"
        )
    if tokens.size and (tokens.min() < 0 or tokens.max() >= cfg.d_vocab):
        raise FabricError(f"token ids must lie in 0..{cfg.d_vocab - 1}")
    if targets is not None and targets.shape != tokens.shape:
        raise FabricError(f"targets shape {targets.shape} != tokens shape {tokens.shape}")


def forward(
    params: Params,
    cfg: ModelConfig,
    tokens: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
    capture: Capture | None = None,
    ablate: Iterable[tuple[int, int]] = (),
    attn_dropout: float = 0.0,
    from_layer: int = 0,
    resid_in: np.ndarray | None = None,
    drawn: Iterable[np.ndarray] | None = None,
    z_in: np.ndarray | None = None,
) -> ForwardResult:
    """Run tokens (B,T) through the Fabric. `ablate`: (layer, head) pairs whose z is zeroed.

    `dropout` cuts units of each block's attention and MLP outputs; `attn_dropout` cuts
    attention weights inside every head (GPT-2's attn_pdrop). Both draw from `rng`, or take
    their masks from `drawn`, drawn before in the order this pass would draw them
    (nn/batch_halves.py draws a whole batch's and gives each half its rows).
    `from_layer` with `resid_in`: start at that block from the stream an earlier pass
    captured entering it (Capture.resid), for a measuring pass whose changes all lie at or
    above it; captures then cover the blocks from there up, and there is no backward. With
    `z_in` too, that block's heads' outputs as the earlier pass made them (Capture.z), so
    only what follows them is computed there (its silenced heads zeroed, then W_O)."""
    _check_inputs(cfg, tokens, targets)
    starts = from_layer > 0 or resid_in is not None or z_in is not None
    if starts and (resid_in is None or resid_in.shape != (*tokens.shape, cfg.d_model)):
        raise ValueError("from_layer needs resid_in, the (B,T,C) stream entering that block")
    capture = capture or Capture()
    if z_in is not None and capture.attention:
        raise ValueError("a pass started from z_in has no attention pattern of that block")
    ablate_by_layer: dict[int, set[int]] = {}
    for layer, head in ablate:
        ablate_by_layer.setdefault(int(layer), set()).add(int(head))
    attention = [] if capture.attention else None
    ln_stats = [] if capture.layernorm else None
    stream = [] if capture.stream else None
    resids = [] if capture.resid else None
    zs = [] if capture.z else None
    kept = [0, 0]  # units kept, units seen by Dropout
    draws = None if drawn is None else iter(drawn)

    def drop(x: np.ndarray) -> tuple[np.ndarray, Any]:
        mask = next(draws) if draws is not None and dropout > 0 else None
        out, c = dropout_forward(x, dropout, rng, mask)
        kept[0] += c.kept_count
        kept[1] += c.total_count
        return out, c

    def norm(x: np.ndarray, name: str) -> tuple[np.ndarray, Any]:
        if not cfg.layernorm:
            return x, None  # no LayerNorm: the identity, and nothing for backward to undo
        out, c = layernorm_forward(x, params[name + ".w"], params[name + ".b"])
        if ln_stats is not None:
            ln_stats.append({"name": name, **layernorm_stats(x, out, c)})
        return out, c

    if starts:
        resid, emb_cache = resid_in, None
    else:
        resid, emb_cache = embedding_forward(tokens, params["embed.W_E"],
                                             params["pos_embed.W_pos"])
    blocks = []
    for layer in range(from_layer, cfg.n_layers):
        p = f"blocks.{layer}."
        if resids is not None:
            resids.append(resid)  # never written in place: each block makes a new stream
        if stream is not None:
            stream.append(resid.std(axis=-1))  # resid_pre_l
        if layer == from_layer and z_in is not None:  # the earlier pass's heads, some silenced
            ln1_c = attn_c = None
            attn_out = heads_output(z_in.copy(), params[p + "attn.W_O"], params[p + "attn.b_O"],
                                    tuple(sorted(ablate_by_layer.get(layer, ()))))[0]
        else:
            ln1_out, ln1_c = norm(resid, p + "ln1")
            pattern_mask = None
            if attn_dropout > 0 and draws is not None:
                pattern_mask = next(draws)
            elif attn_dropout > 0:
                if rng is None:
                    raise ValueError("attention dropout needs a random generator")
                B, T = tokens.shape
                pattern_mask = keep_mask(rng, (B, cfg.n_heads, T, T), attn_dropout)
            attn_out, attn_c = attention_forward(
                ln1_out, *(params[p + "attn." + n] for n in ATTN_NAMES),
                ablate=ablate_by_layer.get(layer, ()), pattern_mask=pattern_mask,
                pattern_p=attn_dropout,
            )
            if attention is not None:
                attention.append(attn_c.pattern)
            if zs is not None:
                zs.append(attn_c.z_flat.reshape(*tokens.shape, cfg.n_heads, cfg.d_head))
        attn_out, drop1_c = drop(attn_out)
        resid = resid + attn_out if cfg.residual else attn_out  # resid_mid
        ln2_out, ln2_c = norm(resid, p + "ln2")
        mlp_out, mlp_c = mlp_forward(
            ln2_out, params[p + "mlp.W_in"], params[p + "mlp.b_in"],
            params[p + "mlp.W_out"], params[p + "mlp.b_out"],
        )
        mlp_out, drop2_c = drop(mlp_out)
        resid = resid + mlp_out if cfg.residual else mlp_out  # resid_post
        blocks.append((ln1_c, attn_c, drop1_c, ln2_c, mlp_c, drop2_c))
    if stream is not None:
        stream.append(resid.std(axis=-1))  # what the top of the Fabric hands to ln_final
    final, lnf_c = norm(resid, "ln_final")
    logits, unembed_c = unembed_forward(final, params["unembed.W_U"], params["unembed.b_U"])

    loss, token_losses, loss_c = float("nan"), None, None
    if targets is not None:
        ce, loss_c = cross_entropy_forward(logits, targets)
        loss, token_losses = ce.loss, ce.token_losses
    return ForwardResult(
        loss=loss,
        logits=logits,
        token_losses=token_losses,
        attention=attention,
        layernorm=ln_stats,
        dropout_keep=(kept[0] / kept[1] if kept[1] else 1.0) if capture.dropout else None,
        stream=stream,
        resid=resids,
        z=zs,
        cache=None if starts else (cfg, emb_cache, blocks, lnf_c, unembed_c, loss_c),
    )


# Sequences per slice of a measuring pass: 768 probe sentences of 14 tokens through a 3-block
# Fabric took 0.37 s cold and 0.14 s warm in one pass, 0.11 s and 0.085 s in slices of ~200.
ROWS_PER_PASS = 192


def forward_by_rows(
    params: Params,
    cfg: ModelConfig,
    tokens: np.ndarray,
    targets: np.ndarray | None = None,
    *,
    capture: Capture | None = None,
    ablate: Iterable[tuple[int, int]] = (),
    rows: int = ROWS_PER_PASS,
) -> ForwardResult:
    """`forward` without Dropout, for measuring: the sequences go through in slices of about
    `rows` and the results are joined, with no cache (nothing to run backward on).

    Each sequence of a causal Fabric without Dropout is computed alone, so the slices give
    what one pass gives, to float32 rounding (bit for bit wherever BLAS treats a slice's
    rows as it treats the whole batch's; slices are kept even, never a few stray rows).
    A slice's arrays stay in the CPU's cache and its memory is reused by the next, which
    one pass over hundreds of sentences cannot do. (The final ablation's passes go sorted
    by length instead, each slice cut after its own last target: nn/by_length.py.)"""
    capture = capture or Capture()
    B = tokens.shape[0]
    if B <= rows or capture.layernorm:  # LayerNorm's statistics are over the whole batch
        whole = forward(params, cfg, tokens, targets, capture=capture, ablate=ablate)
        whole.cache = None
        return whole
    ablate = tuple(ablate)
    n = -(-B // rows)
    size = -(-B // n)
    parts = []
    for s in range(0, B, size):
        part = forward(params, cfg, tokens[s:s + size],
                       None if targets is None else targets[s:s + size],
                       capture=capture, ablate=ablate)
        part.cache = None  # freed now, so the next slice reuses its memory
        parts.append(part)

    def joined(name: str) -> list[np.ndarray] | None:
        if getattr(parts[0], name) is None:
            return None
        return [np.concatenate(layer) for layer in zip(*(getattr(p, name) for p in parts))]

    loss, token_losses = float("nan"), None
    if targets is not None:
        token_losses = np.concatenate([p.token_losses for p in parts])
        n_valid = int(np.count_nonzero(targets >= 0))  # as cross_entropy_forward counts
        loss = float(token_losses.sum(dtype=np.float64)) / max(n_valid, 1)
    return ForwardResult(
        loss=loss, logits=np.concatenate([p.logits for p in parts]), token_losses=token_losses,
        attention=joined("attention"), stream=joined("stream"),
        dropout_keep=1.0 if capture.dropout else None)


def _norm(x: np.ndarray) -> float:
    flat = x.reshape(-1)
    return float(np.sqrt(np.dot(flat, flat)))


def backward(result: ForwardResult, grad_flow: bool = False,
             dloss: float = 1.0) -> tuple[Params, list[dict] | None]:
    """The Gradient's way down, top to bottom; each line is a place where it arrives.
    `dloss` scales it all: a half batch's share of the whole batch's mean loss.

    Returns gradients of the loss for every parameter (same names), and with `grad_flow`
    one row per layer (0 = bottom): norms of what arrived at the block's output, what passed
    the identity skip (the same; 0 with residual=False), what came through attention and MLP,
    and what left below.
    """
    if result.cache is None:
        raise ValueError("backward needs the cache of a whole forward pass (not a measuring one)")
    cfg, emb_c, blocks, lnf_c, unembed_c, loss_c = result.cache
    if loss_c is None:
        raise ValueError("backward needs a forward pass that was given targets")
    g: Params = {}
    flow: list[dict] | None = [] if grad_flow else None

    dlogits = cross_entropy_backward(dloss, loss_c)  # the Loss's verdict, per logit
    dfinal, g["unembed.W_U"], g["unembed.b_U"] = unembed_backward(dlogits, unembed_c)
    dresid = _norm_backward(dfinal, lnf_c, "ln_final", g)
    for layer in reversed(range(cfg.n_layers)):
        dresid, block_rows = _block_backward(dresid, blocks[layer], f"blocks.{layer}.", g, flow,
                                             cfg.residual)
        if flow is not None:
            flow.insert(0, {"layer": layer, **block_rows})
    g["embed.W_E"], g["pos_embed.W_pos"] = embedding_backward(dresid, emb_c)
    return g, flow


def _norm_backward(dout: np.ndarray, cache: Any, name: str, g: Params) -> np.ndarray:
    """LayerNorm in reverse; without LayerNorm (cache None) the gradient passes unchanged."""
    if cache is None:
        return dout
    dx, g[name + ".w"], g[name + ".b"] = layernorm_backward(dout, cache)
    return dx


def _block_backward(
    dresid_post: np.ndarray, block: tuple, p: str, g: Params, flow: list | None,
    residual: bool = True,
) -> tuple[np.ndarray, dict]:
    """One block in reverse: MLP branch, then attention branch. With the residual the skip
    carries dresid on past each branch; without it, only what came through the branch goes on."""
    ln1_c, attn_c, drop1_c, ln2_c, mlp_c, drop2_c = block
    dmlp_out = dropout_backward(dresid_post, drop2_c)
    dln2_out, g[p + "mlp.W_in"], g[p + "mlp.b_in"], g[p + "mlp.W_out"], g[p + "mlp.b_out"] = (
        mlp_backward(dmlp_out, mlp_c)
    )
    dx_ln2 = _norm_backward(dln2_out, ln2_c, p + "ln2", g)
    # the skip path plus what came through the MLP; without the residual, the MLP alone
    dresid_mid = dresid_post + dx_ln2 if residual else dx_ln2
    dattn_out = dropout_backward(dresid_mid, drop1_c)
    dln1_out, attn_grads = attention_backward(dattn_out, attn_c)
    for name, grad in attn_grads.items():
        g[p + "attn." + name] = grad
    dx_ln1 = _norm_backward(dln1_out, ln1_c, p + "ln1", g)
    dresid_pre = dresid_mid + dx_ln1 if residual else dx_ln1
    rows = {}
    if flow is not None:
        arriving = _norm(dresid_post)
        # what the identity skip carried past the whole block is dresid_post itself; what
        # came through attention and MLP is the rest. No skip path: it all came through.
        through = dresid_pre - dresid_post if residual else dresid_pre
        rows = {
            "arriving": arriving,
            "skip": arriving if residual else 0.0,
            "block": _norm(through),
            "leaving": _norm(dresid_pre),
        }
    return dresid_pre, rows
