"""A measuring pass over sentences of many lengths: sorted by length into slices, and each
slice computed only up to its own last target.

`forward_by_rows` pads every slice to the batch's longest sentence. The final ablation's 768
held-out sentences are padded to 14 columns, most of them end at 10 to 12, and 29% of the
positions computed were padding, in every one of its dozen passes. Here the sequences are
ordered by where their last target lies (a stable sort, so the order is fixed by the
targets alone) and cut into even slices, and a slice's columns after its own last target
are not computed: a causal Fabric without Dropout computes each sequence alone, and no
later column changes an earlier one.

    result = forward_by_length(params, cfg, tokens, targets, ablate=heads)

What it gives: the loss, and per sequence its token losses and logits, in the batch's own
order. The logits after a slice's last target are not computed and read 0; the token
losses there are 0, as for any ignored target. `keep_resid`: each slice's stream entering
each block and its heads' outputs there (`forward`'s Capture.resid and Capture.z), for a
later call on the same tokens and targets to start `from_layer` with `resid_in` (and
`z_in`), those at that block, slice by slice. The slices depend only on the targets and
`rows`, so the later call's slices are the same.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Capture, ForwardResult, Params, forward

# Sequences per slice. The default Fabric's final ablation at seed 1 (20 silenced sets of the
# 768 sentences, one thread, best of 3): slices of 128 (6 slices, 9 to 13 columns wide) took
# 1.06 s, of 96 1.06 s, of 192 1.12 s; in the same process, the batch's 14 columns in unsorted
# slices of 192 (forward_by_rows) took 1.42-1.48 s against 1.09-1.13 s here.
ROWS_BY_LENGTH = 128


def length_slices(targets: np.ndarray, rows: int = ROWS_BY_LENGTH) -> list[tuple[np.ndarray, int]]:
    """(the sequences of each slice, in the batch's numbering; the slice's width): sequences
    ordered by their last target's column (stably), cut into even slices of about `rows`,
    each as wide as its widest sequence's last target (at least 1 column)."""
    B, T = targets.shape
    has = targets >= 0
    # the column after each sequence's last target (1 for a sequence with none)
    last = np.where(has.any(axis=1), T - np.argmax(has[:, ::-1], axis=1), 1)
    order = np.argsort(last, kind="stable")
    n = max(1, -(-B // rows))
    size = max(1, -(-B // n))
    return [(order[s:s + size], int(last[order[s:s + size]].max()))
            for s in range(0, B, size)]


def forward_by_length(
    params: Params,
    cfg: ModelConfig,
    tokens: np.ndarray,
    targets: np.ndarray,
    *,
    ablate: Iterable[tuple[int, int]] = (),
    rows: int = ROWS_BY_LENGTH,
    keep_resid: bool = False,
    from_layer: int = 0,
    resid_in: list[np.ndarray] | None = None,
    z_in: list[np.ndarray] | None = None,
) -> ForwardResult:
    """The Fabric without Dropout on `tokens` (B,T) against `targets`, measured slice by
    slice (`length_slices`); see the module's docstring for what the result holds."""
    B, T = tokens.shape
    ablate = tuple(ablate)
    logits = np.zeros((B, T, cfg.d_vocab), dtype=params["unembed.W_U"].dtype)
    token_losses = np.zeros((B, T), dtype=logits.dtype)
    streams, heads = [], []
    for i, (which, width) in enumerate(length_slices(targets, rows)):
        part = forward(params, cfg, tokens[which, :width], targets[which, :width],
                       capture=Capture(resid=keep_resid, z=keep_resid), ablate=ablate,
                       from_layer=from_layer,
                       resid_in=None if resid_in is None else resid_in[i],
                       z_in=None if z_in is None else z_in[i])
        logits[which, :width] = part.logits
        token_losses[which, :width] = part.token_losses
        if keep_resid:
            streams.append(part.resid)
            heads.append(part.z)
        del part  # its cache is freed now, so the next slice reuses its memory
    n_valid = int(np.count_nonzero(targets >= 0))  # as cross_entropy_forward counts
    return ForwardResult(
        loss=float(token_losses.sum(dtype=np.float64)) / max(n_valid, 1), logits=logits,
        token_losses=token_losses, resid=streams if keep_resid else None,
        z=heads if keep_resid else None)
