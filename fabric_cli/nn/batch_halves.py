"""The batch in two halves, one per core: a training step's forward and backward passes run
on the first half of the sequences in this thread and on the second half in a helper thread,
each on one BLAS thread, and the two halves' gradients are added.

    result = forward_step(params, cfg, tokens, targets, dropout=.., attn_dropout=.., rng=..)
    grads, flow = backward_step(result, grad_flow=True)

Whole or in halves, a training step leaves out the padding columns after the batch's last
target (`to_last_target`; `forward_step` says why nothing else changes).

Why: NumPy's elementwise loops run on one core, and OpenBLAS's second thread gains little on
the products of a small Fabric (768 x 64 by 64 x 256: too small to divide well). Two halves
of the batch keep both cores busy with all of it, products, softmax, LayerNorm, GELU and
Dropout alike, for the price of two hand-offs a step (NumPy lets go of the GIL inside its
loops and products). Whole `fabric bench` processes, paired, on the 2-core AMD EPYC: 2 layers
d_model 64, two threads against one 0.83 in halves (two BLAS threads on the whole batch,
1.01); 12 layers 0.83 (1.01); 6 layers d_model 256, halves 0.90 of two BLAS threads. The
GIL caps it: each half makes as many NumPy calls as the whole batch did, and the threads
wait on each other at every one. So where it can (Linux), the upper half runs in a child
process instead (nn/half_process.py), sharing the weights, its rows and its gradients
through shared memory; the helper thread is what a step falls back to, with the same
numbers.

What stays the same: every sequence of a causal Fabric is computed alone, so each half's
forward is the whole batch's rows; Dropout's masks are drawn for the whole batch from the
run's generator in the order one whole pass draws them (`draw_masks`) and each half takes
its rows, so the masks and the generator's state after a step are exactly the one-pass
ones; the loss is the whole batch's mean (each half's backward is scaled by its share of the
valid targets). What changes: a weight's gradient is the sum of two halves' products
instead of one product over all rows, so its last bits differ from a one-pass step's (to
float32 rounding; tests/test_speed.py). A run therefore never switches mid-way: halves are
used exactly when the run trains on two threads (nn/blas.py: the tuner's choice, kept in the
checkpoint), and a step with halves is bit-identical to itself on every resume.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np

from fabric_cli.nn.blas import blas_threads, set_blas_threads
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.half_process import OtherHalf, UpperElsewhere, other_half
from fabric_cli.nn.halves import side_by_side
from fabric_cli.nn.masks import keep_mask
from fabric_cli.nn.model import Capture, ForwardResult, Params, backward, forward

FLOW_KEYS = ("arriving", "skip", "block", "leaving")


class HalvesCache(NamedTuple):
    lower: ForwardResult  # the first `middle` sequences, with their own cache
    upper: ForwardResult
    lower_share: float  # its valid targets / the whole batch's: scales its backward
    upper_share: float


def step_in_halves(tokens: np.ndarray, capture: Capture | None) -> bool:
    """True when a step on `tokens` is split: two BLAS threads are in use (the machine has a
    core to spare, nn/blas.py) and there are at least two sequences. Captures a step never
    takes (patterns, streams, the heads' z) keep the whole pass."""
    return tokens.shape[0] >= 2 and (blas_threads() or 1) >= 2 and not whole_only(capture)


def whole_only(capture: Capture | None) -> bool:
    """A capture only a whole pass records (halves keep no patterns, streams or z)."""
    capture = capture or Capture()
    return capture.attention or capture.stream or capture.resid or capture.z


def _mask_order(cfg: ModelConfig, seq_len: int, dropout: float, attn_dropout: float):
    """(one sequence's shape, rate, whether a unit mask) of every mask one whole forward pass
    draws, in its order: per block, attention dropout's (NH,T,T), then Dropout's (T,C) on
    attention's output and on the MLP's."""
    for _ in range(cfg.n_layers):
        if attn_dropout > 0:
            yield (cfg.n_heads, seq_len, seq_len), attn_dropout, False
        if dropout > 0:
            yield (seq_len, cfg.d_model), dropout, True  # attention's output
            yield (seq_len, cfg.d_model), dropout, True  # the MLP's


def draw_masks(cfg: ModelConfig, batch: int, seq_len: int, dropout: float,
               attn_dropout: float, rng: np.random.Generator) -> tuple[list, list]:
    """Every mask one whole forward pass would draw from `rng`, in its order (`_mask_order`).
    Returns (all masks in that order, the unit masks alone, for the fraction kept)."""
    masks, units = [], []
    for row, rate, unit in _mask_order(cfg, seq_len, dropout, attn_dropout):
        masks.append(keep_mask(rng, (batch, *row), rate))
        if unit:
            units.append(masks[-1])
    return masks, units


class MaskPlan(NamedTuple):
    """Where in the generator's stream each half's rows of each mask lie (`plan_masks`)."""

    shapes: list[tuple[tuple[int, ...], tuple[int, ...]]]  # (lower rows, upper rows) per mask
    rates: list[float]  # the rate each mask drops at
    starts: list[tuple[dict, dict]]  # the PCG64 state where each half's rows begin
    units: list[bool]  # True for Dropout's unit masks (the fraction kept counts them)


def _moved_on(state: dict, count: int, scratch: np.random.PCG64) -> dict:
    """A PCG64 `state` after `count` float32 draws. Each draw takes one 32-bit half of a
    64-bit output, the low half first; a high half not yet taken waits in the state
    (has_uint32, uinteger), as NumPy's Generator.random(dtype=float32) keeps it."""
    if count and state["has_uint32"]:
        state, count = {**state, "has_uint32": 0}, count - 1
    if not count:
        return state
    words = (count + 1) // 2  # 64-bit outputs taken, the last maybe only its low half
    scratch.state = {**state, "has_uint32": 0}
    scratch.advance(words - 1)
    high = int(scratch.random_raw()) >> 32
    # odd: the last output's high half waits; even: it was taken, and stays as NumPy leaves it
    return {**scratch.state, "has_uint32": count % 2, "uinteger": high}


def plan_masks(cfg: ModelConfig, batch: int, seq_len: int, middle: int, dropout: float,
               attn_dropout: float, rng: np.random.Generator) -> MaskPlan | None:
    """`draw_masks` in two halves that can be drawn at once: for every mask, where the rows
    of sequences 0..middle and middle..batch begin in the stream of `rng`, which is moved on
    past them all, as one whole draw leaves it. None when `rng` is not a PCG64 (the halves
    then take their rows of `draw_masks`)."""
    if type(rng.bit_generator) is not np.random.PCG64:
        return None
    plan = MaskPlan([], [], [], [])
    scratch = np.random.PCG64(0)  # its state is always set before use: no entropy gathered
    state = rng.bit_generator.state
    for row, rate, unit in _mask_order(cfg, seq_len, dropout, attn_dropout):
        per_row = math.prod(row)
        upper = _moved_on(state, middle * per_row, scratch)
        plan.shapes.append(((middle, *row), (batch - middle, *row)))
        plan.rates.append(rate)
        plan.starts.append((state, upper))
        plan.units.append(unit)
        state = _moved_on(upper, (batch - middle) * per_row, scratch)
    rng.bit_generator.state = state
    return plan


def draw_half(plan: MaskPlan, half: int) -> list[np.ndarray]:
    """Half `half`'s rows (0 lower, 1 upper) of every mask of `plan`, from its own generator."""
    bits = np.random.PCG64(0)  # its state is set for every mask
    rng = np.random.Generator(bits)
    masks = []
    for shapes, rate, starts in zip(plan.shapes, plan.rates, plan.starts, strict=True):
        bits.state = starts[half]
        masks.append(keep_mask(rng, shapes[half], rate))
    return masks


@contextmanager
def _one_blas_thread():
    """Each half on one BLAS thread (two halves on two threads each would ask for four)."""
    before = blas_threads()
    set_blas_threads(1)
    try:
        yield
    finally:
        if before is not None:
            set_blas_threads(before)


def to_last_target(targets: np.ndarray) -> int:
    """How many columns of a batch hold a target in any sentence, counted to the last one
    (at least 1): the loss ignores targets of -1, the padding."""
    valid = np.flatnonzero((targets >= 0).any(axis=0))
    return int(valid[-1]) + 1 if valid.size else 1


def cut_masks(masks: list[np.ndarray], units: list[bool], width: int) -> list[np.ndarray]:
    """Masks drawn for the whole width, cut to the first `width` columns: (B,T,C) unit masks
    by time, attention's (B,NH,T,T) by query and key."""
    return [m[:, :width] if unit else m[:, :, :width, :width]
            for m, unit in zip(masks, units, strict=True)]


def forward_step(params: Params, cfg: ModelConfig, tokens: np.ndarray,
                 targets: np.ndarray | None,
                 *, dropout: float = 0.0, attn_dropout: float = 0.0,
                 rng: np.random.Generator | None = None,
                 capture: Capture | None = None) -> ForwardResult:
    """A training step's forward pass (model.forward's result), in halves when `step_in_halves`.

    The columns after the batch's last target are not computed (`to_last_target`): the
    Fabric is causal, so they change nothing the loss sees, and the default scenario pads
    every batch to 16 columns where its longest sentence mostly ends at 13. Their Dropout
    masks are still drawn: the generator moves on as for the whole width, and the columns
    computed get the masks the whole width would give them, so a run sees the same masks
    whether or not its padding is computed (the result then has the cut width)."""
    masking = dropout > 0 or attn_dropout > 0
    order = [unit for *_, unit in _mask_order(cfg, 1, dropout, attn_dropout)]
    width = tokens.shape[1] if targets is None else to_last_target(targets)
    if capture is not None and whole_only(capture):
        width = tokens.shape[1]  # what is captured keeps its shape
    if (not step_in_halves(tokens, capture) or targets is None
            or (masking and rng is None)):
        drawn = None
        if masking and rng is not None and width < tokens.shape[1]:
            drawn = cut_masks(draw_masks(cfg, *tokens.shape, dropout, attn_dropout, rng)[0],
                              order, width)
        cut_targets = None if targets is None else targets[:, :width]
        return forward(params, cfg, tokens[:, :width], cut_targets, dropout=dropout,
                       attn_dropout=attn_dropout, rng=None if drawn else rng,
                       capture=capture, drawn=drawn)
    capture = capture or Capture()
    B, T = tokens.shape
    middle = B // 2
    halves = Capture(layernorm=capture.layernorm)
    kept = [0, 0, 0, 0]  # units kept and seen, by each half
    tokens, targets = tokens[:, :width], targets[:, :width]
    upper_rows = slice(middle, B)
    # the upper half goes to its own process first (nn/half_process.py), which finds where
    # its masks begin from the generator's state as `plan_masks` does here
    other, pcg = None, rng is not None and type(rng.bit_generator) is np.random.PCG64
    if pcg or not masking:
        other = other_half(cfg, params, B - middle, T)
    if other is not None and not other.forward(
            params, tokens[upper_rows], targets[upper_rows],
            rng.bit_generator.state if masking else None, (B, T, middle),
            dropout=dropout, attn_dropout=attn_dropout, layernorm=halves.layernorm):
        other = None
    plan = (plan_masks(cfg, B, T, middle, dropout, attn_dropout, rng) if rng is not None
            else MaskPlan([], [], [], []))
    whole = None if plan is not None else draw_masks(cfg, B, T, dropout, attn_dropout, rng)

    def half(which: int, rows: slice) -> ForwardResult:
        # each half draws its own rows, both at once, or takes them from the whole draw
        rows_drawn = draw_half(plan, which) if plan is not None else [m[rows] for m in whole[0]]
        masks = cut_masks(rows_drawn, order, width)
        units = [m for m, unit in zip(masks, order, strict=True) if unit]
        kept[2 * which] = sum(int(np.count_nonzero(m)) for m in units)
        kept[2 * which + 1] = sum(m.size for m in units)
        return forward(params, cfg, tokens[rows], targets[rows], dropout=dropout,
                       attn_dropout=attn_dropout, capture=halves, drawn=masks)

    with _one_blas_thread():
        if other is not None:
            with other.closed_on_failure():
                lower = half(0, slice(0, middle))  # while the child computes the upper half
            upper = _upper_answer(other, B - middle, width, kept,
                                  lambda: half(1, upper_rows))
        else:
            lower, upper = side_by_side(lambda: half(0, slice(0, middle)),
                                        lambda: half(1, upper_rows))
    valid = [int(np.count_nonzero(targets[:middle] >= 0)),
             int(np.count_nonzero(targets[middle:] >= 0))]
    total = max(sum(valid), 1)  # as cross_entropy_forward divides
    loss = (float(lower.token_losses.sum(dtype=np.float64))
            + float(upper.token_losses.sum(dtype=np.float64))) / total
    keep = None
    if capture.dropout:
        seen = kept[1] + kept[3]
        keep = (kept[0] + kept[2]) / seen if seen else 1.0
    return ForwardResult(
        loss=loss, logits=np.concatenate([lower.logits, upper.logits]),
        token_losses=np.concatenate([lower.token_losses, upper.token_losses]),
        layernorm=_joined_stats(lower.layernorm, upper.layernorm, middle / B),
        dropout_keep=keep,
        cache=HalvesCache(lower, upper, valid[0] / total, valid[1] / total))


def _upper_answer(other: OtherHalf, rows: int, width: int, kept: list[int],
                  recompute) -> ForwardResult:
    """The upper half's forward as the child answered it (its backward to follow there), or,
    if the child failed, computed here by `recompute`."""
    answer = other.forward_answer(rows, width)
    if answer is None:
        return recompute()
    kept[2], kept[3] = answer["kept"]
    token_losses = answer["token_losses"]
    return ForwardResult(
        loss=float("nan"), logits=answer["logits"], token_losses=token_losses,
        layernorm=answer["layernorm"],
        cache=UpperElsewhere(other, other.exchange, recompute))


def _joined_stats(lower: list | None, upper: list | None, lower_part: float) -> list | None:
    """LayerNorm's statistics are means over tokens: the halves' means, weighted by rows."""
    if lower is None or upper is None:
        return None
    return [{"name": a["name"], **{k: a[k] * lower_part + b[k] * (1.0 - lower_part)
                                   for k in a if k != "name"}}
            for a, b in zip(lower, upper, strict=True)]


def backward_step(result: ForwardResult,
                  grad_flow: bool = False) -> tuple[Params, list[dict] | None]:
    """model.backward for a `forward_step` result: the halves' gradients added (lower +
    upper), and the gradient-flow norms joined (the root of the halves' squares)."""
    cache: Any = result.cache
    if not isinstance(cache, HalvesCache):
        return backward(result, grad_flow=grad_flow)
    elsewhere = cache.upper.cache
    with _one_blas_thread():
        if isinstance(elsewhere, UpperElsewhere):
            other = elsewhere.process
            sent = other.backward(elsewhere.exchange, cache.upper_share, grad_flow)
            with other.closed_on_failure():
                grads, flow = backward(cache.lower, grad_flow, cache.lower_share)
            answer = other.backward_answer() if sent else None
            if answer is None:  # the child failed: the same half, computed here
                answer = backward(elsewhere.recompute(), grad_flow, cache.upper_share)
            upper, upper_flow = answer
        else:
            (grads, flow), (upper, upper_flow) = side_by_side(
                lambda: backward(cache.lower, grad_flow, cache.lower_share),
                lambda: backward(cache.upper, grad_flow, cache.upper_share))
    for name, grad in upper.items():
        grads[name] += grad
    if flow is not None and upper_flow is not None:
        for row, other in zip(flow, upper_flow, strict=True):
            for key in FLOW_KEYS:
                row[key] = math.hypot(row[key], other[key])
    return grads, flow
