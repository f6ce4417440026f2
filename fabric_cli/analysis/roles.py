"""What each head became, read from the chronicle: a role per head, and its timeline.

    head_roles(events, threshold)        one row per head from the last probe: the role whose
                                         bar it clears by the most (else "diffuse"), its score,
                                         held-out accuracy for pronoun trackers, and, for the
                                         specialists run_end names, what ablation did
    head_timeline(events, layer, head, sentence)
                                         that head's attention on one story sentence at every
                                         probe, from random beginnings to the end

`threshold(role, shares)` is the bar a score must reach (MomentThresholds.role_threshold: the
same bars the moments use), passed in so this floor stays below training/.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from fabric_cli.errors import FabricError

ROLES = ("pronoun", "verb", "noun", "prev", "self", "first")
Threshold = Callable[[str, dict | None], float]


def _number(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _of_type(events: Sequence[dict], kind: str) -> list[dict]:
    return [e for e in events if isinstance(e, dict) and e.get("type") == kind]


def model_shape(events: Sequence[dict]) -> tuple[int, int]:
    """(n_layers, n_heads) from run_start's model."""
    starts = _of_type(events, "run_start")
    model = starts[0].get("model") if starts else None
    try:
        return int(model["n_layers"]), int(model["n_heads"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        raise FabricError("the chronicle has no run_start with the model's shape; "
                          "re-run `fabric train`") from None


def head_roles(events: Sequence[dict], threshold: Threshold) -> list[dict]:
    """Rows for views.headmap.head_role_map, plus every score and the bar of each role."""
    probes = _of_type(events, "probe")
    if not probes:
        raise FabricError("the chronicle has no probe yet; let `fabric train` run to its first "
                          "probe")
    probe = probes[-1]
    shares = probe.get("role_shares") if isinstance(probe.get("role_shares"), dict) else None
    ends = _of_type(events, "run_end")
    bars = {role: threshold(role, shares) for role in ROLES}
    # A head proven in two roles is shown in the one it is its role's best head for, else the
    # one whose bar its score clears by the most: distinct roles stay in distinct heads.
    specialists: dict[tuple, dict] = {}
    for sp in (ends[-1].get("specialists") or []) if ends else []:
        if not isinstance(sp, dict):
            continue
        key = (sp.get("layer"), sp.get("head"))
        if key not in specialists or _rank(sp, bars) > _rank(specialists[key], bars):
            specialists[key] = sp
    rows = []
    for h in probe.get("heads") or []:
        scores = {r: _number((h.get("scores") or {}).get(r)) for r in ROLES}
        cleared = [(s - bars[r], r) for r, s in scores.items() if s is not None and s >= bars[r]]
        role = max(cleared)[1] if cleared else "diffuse"
        sp = specialists.get((h.get("layer"), h.get("head")))
        if sp is not None:
            role = str(sp.get("role") or role)
        row = {
            "layer": int(h["layer"]),
            "head": int(h["head"]),
            "role": role,
            "score": scores.get(role) if role in scores else max(
                (s for s in scores.values() if s is not None), default=None),
            "scores": scores,
            "bars": bars,
            "heldout_acc": _number(h.get("pronoun_acc_heldout")) if role == "pronoun" else None,
            "specialist": sp is not None,
            "ablation": sp.get("ablation") if sp is not None else None,
            # a head proven only together with its role's other heads: what zeroing them all did
            "team_ablation": sp.get("group_ablation")
            if sp is not None and sp.get("alone_hurts") is False else None,
            "redundant_with": sp.get("redundant_with") if sp is not None else None,
        }
        rows.append(row)
    return rows


def _rank(sp: dict, bars: dict) -> tuple[bool, float]:
    score = _number(sp.get("score"))
    bar = bars.get(sp.get("role"), math.inf)
    return (sp.get("best") is True, (score - bar) if score is not None else -math.inf)


def head_timeline(events: Sequence[dict], layer: int, head: int,
                  sentence: int = 0) -> list[dict]:
    """One frame per probe: {"step", "sentence", "tokens", "pronouns", "pattern" (T×T),
    "score" (the head's pronoun score then), "acc"}."""
    n_layers, n_heads = model_shape(events)
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise FabricError(f"there is no head {layer}.{head}: this run has layers "
                          f"0..{n_layers - 1} and heads 0..{n_heads - 1}")
    probes = [p for p in _of_type(events, "probe") if p.get("snapshots")]
    if not probes:
        raise FabricError("the chronicle has no probe snapshots to replay; train a run first")
    count = len(probes[-1]["snapshots"])
    if not 0 <= sentence < count:
        raise FabricError(f"--sentence {sentence}: this run has {count} story sentence"
                          f"{'s' if count != 1 else ''} (0..{count - 1})")
    key = f"{layer}.{head}"
    frames = []
    for p in probes:
        snaps = p["snapshots"]
        if sentence >= len(snaps) or key not in (snaps[sentence].get("patterns") or {}):
            continue
        snap = snaps[sentence]
        row = next((h for h in p.get("heads") or []
                    if h.get("layer") == layer and h.get("head") == head), {})
        frames.append({
            "step": int(p.get("step", 0)),
            "sentence": snap.get("sentence", ""),
            "tokens": list(snap.get("tokens") or []),
            "pronouns": [list(x) for x in snap.get("pronouns") or []],
            "pattern": snap["patterns"][key],
            "score": _number((row.get("scores") or {}).get("pronoun")),
            "acc": _number(row.get("pronoun_acc")),
            "scores": {str(role): _number(value)
                       for role, value in (row.get("scores") or {}).items()},
        })
    return frames


def sample_frames(n: int, most: int = 6) -> list[int]:
    """Indices of at most `most` frames, evenly spread, always the first and the last."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})
