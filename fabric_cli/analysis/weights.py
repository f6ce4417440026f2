"""A head's own weight changes: what one optimizer step did to each head's slices of W_Q,
W_K, W_V and W_O ("0.001 here, -0.002 there").

Measured on a few steps only (`measured_step`): the first update, and every update that lands
on a probe step. The trainer copies the attention weights just before `optimizer.step` on
those steps (`attention_weights`) and reads the change after it (`head_changes`); nothing is
kept between steps, so training and its resume are untouched. Each head's change is the
elementwise difference after − before of its four slices (W_Q[h], W_K[h], W_V[h]: C×HS;
W_O[h]: HS×C), summarised by what the story needs: the largest rise and the largest fall
(value, matrix, index into that slice) and the mean absolute change over all its elements.
Biases are left out: they are not "the head's weights" a reader pictures.
"""

from __future__ import annotations

import numpy as np

MATRICES = ("W_Q", "W_K", "W_V", "W_O")


def measured_step(step: int, probe_every: int, total_steps: int) -> bool:
    """Is the update that ends on `step` (1-based) one whose weight changes are recorded?"""
    return step == 1 or step % max(1, probe_every) == 0 or step == total_steps


def attention_weights(params: dict, n_layers: int) -> dict[str, np.ndarray]:
    """A copy of every layer's W_Q, W_K, W_V, W_O (the update happens in place)."""
    return {f"blocks.{layer}.attn.{m}": params[f"blocks.{layer}.attn.{m}"].copy()
            for layer in range(n_layers) for m in MATRICES}


def _extreme(deltas: dict[str, np.ndarray], sign: float) -> dict:
    """The largest element of sign × change over the head's four slices (sign +1: the
    largest rise; -1: the largest fall); ties go to the first matrix, then the first index."""
    best: tuple[float, str, list[int]] | None = None
    for m, d in deltas.items():
        i = int(np.argmax(sign * d))
        value = float(d.flat[i])
        if best is None or sign * value > sign * best[0]:
            best = (value, m, [int(x) for x in np.unravel_index(i, d.shape)])
    assert best is not None
    value, matrix, index = best
    return {"matrix": matrix, "index": index, "change": value}


def head_changes(before: dict[str, np.ndarray], params: dict, n_layers: int) -> list[dict]:
    """Per head, bottom layer first: `{"layer", "head", "rise", "fall", "mean_abs"}`, where
    rise/fall are `{"matrix", "index", "change"}` for the largest positive and most negative
    element change (a step that moved nothing up still names its largest, then ≤ 0)."""
    rows = []
    for layer in range(n_layers):
        a = f"blocks.{layer}.attn."
        delta = {m: params[a + m].astype(np.float64) - before[a + m].astype(np.float64)
                 for m in MATRICES}
        for head in range(delta["W_Q"].shape[0]):
            mine = {m: d[head] for m, d in delta.items()}
            total = sum(float(np.abs(d).sum()) for d in mine.values())
            size = sum(d.size for d in mine.values())
            rows.append({"layer": layer, "head": head, "rise": _extreme(mine, 1.0),
                         "fall": _extreme(mine, -1.0), "mean_abs": total / size})
    return rows
