"""What the report page shows, read from the chronicle through the existing readers.

    page_data(events, *, ticker=None) -> dict    plain JSON for the page's script

The attention snapshots are the bulk of a run, so each pattern is stored as its causal lower
triangle (the rest is zero by construction), each weight quantised to a byte (0..255, i.e.
to within 0.002) and the bytes base64-encoded: about a tenth of the chronicle's text. Every
other number is kept at 4 significant digits. Role names are passed through as the
chronicle gives them, so new roles ("verb", "noun", "previous", …) show without changes.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Sequence
from typing import Any

from fabric_cli.chronicle import number
from fabric_cli.typeset import as_typed

MAX_CURVE_POINTS = 2000  # longer runs are drawn from bin means


def _num(value: Any, digits: int = 4) -> float | None:
    try:
        x = number(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _of(events: Sequence[dict], kind: str) -> list[dict]:
    return [e for e in events if isinstance(e, dict) and e.get("type") == kind]


def encode_pattern(pattern: Sequence[Sequence[float]]) -> str:
    """A T×T causal pattern as base64 of its lower triangle, row by row, one byte a weight."""
    out = bytearray()
    for q, row in enumerate(pattern):
        for k in range(q + 1):
            w = _num(row[k]) if k < len(row) else 0.0
            out.append(max(0, min(255, round((w or 0.0) * 255))))
    return base64.b64encode(bytes(out)).decode("ascii")


def decode_pattern(text: str, n: int) -> list[list[float]]:
    """The inverse of encode_pattern (for tests and for anyone reading the page's data)."""
    raw = base64.b64decode(text)
    rows, i = [], 0
    for q in range(n):
        rows.append([raw[i + k] / 255 for k in range(q + 1)] + [0.0] * (n - q - 1))
        i += q + 1
    return rows


def loss_series(steps: Sequence[dict]) -> dict:
    """Train loss per step (bin means past MAX_CURVE_POINTS), non-finite steps left out."""
    points = [(int(e["step"]), _num(e.get("loss"))) for e in steps]
    points = [(s, v) for s, v in points if v is not None]
    if len(points) > MAX_CURVE_POINTS:
        size = math.ceil(len(points) / MAX_CURVE_POINTS)
        binned = []
        for i in range(0, len(points), size):
            chunk = points[i : i + size]
            binned.append((chunk[-1][0], _num(sum(v for _, v in chunk) / len(chunk))))
        points = binned
    return {"steps": [s for s, _ in points], "loss": [v for _, v in points]}


def _grad_at(steps_by_number: dict[int, dict], step: int) -> dict | None:
    event = steps_by_number.get(step) or steps_by_number.get(step + 1)
    if event is None:
        return None
    rows = [{"layer": int(r["layer"]), **{k: _num(r.get(k)) for k in
             ("arriving", "skip", "block", "leaving")}} for r in event.get("grad_flow") or []]
    return {"step": int(event["step"]), "rows": rows, "embed": _num(event.get("grad_embed"))}


def page_data(events: Sequence[dict], *, ticker: Callable[[dict], str] | None = None) -> dict:
    """Everything the page's script draws: the run, the loss, the probes with their
    attention snapshots and the gradient flow at each probe step, and the moments."""
    start = (_of(events, "run_start") or [{}])[0]
    ends = _of(events, "run_end")
    end = ends[-1] if ends else {}
    steps = _of(events, "step")
    by_number = {int(e["step"]): e for e in steps}
    probes = _of(events, "probe")
    model = start.get("model") or {}
    sentences: list[dict] = []
    timeline = []
    for probe in probes:
        heads = {f"{h['layer']}.{h['head']}": {
            "scores": {str(k): _num(v, 3) for k, v in (h.get("scores") or {}).items()},
            "acc": _num(h.get("pronoun_acc"), 3),
            "heldout": _num(h.get("pronoun_acc_heldout"), 3)} for h in probe.get("heads") or []}
        shots = []
        for i, snap in enumerate(probe.get("snapshots") or []):
            tokens = [str(t) for t in snap.get("tokens") or []]
            if i >= len(sentences):
                # the sentence as a person types it, not the tokenizer's words
                sentences.append({"sentence": as_typed(str(snap.get("sentence", ""))),
                                  "tokens": tokens,
                                  "pronouns": [list(map(int, p)) for p in
                                               snap.get("pronouns") or []]})
            shots.append({key: encode_pattern(pattern)
                          for key, pattern in (snap.get("patterns") or {}).items()})
        timeline.append({"step": int(probe["step"]), "val": _num(probe.get("val_loss")),
                         "heldout": _num(probe.get("heldout_loss")),
                         "train": _num(probe.get("train_loss")), "heads": heads,
                         "patterns": shots, "grad": _grad_at(by_number, int(probe["step"]))})
    moments = []
    for m in _of(events, "moment"):
        moments.append({"step": int(m["step"]), "kind": str(m.get("kind")),
                        "component": str(m.get("component")), "layer": m.get("layer"),
                        "head": m.get("head"), "text": ticker(m) if ticker else str(m.get("kind"))})
    floor = start.get("floor") or {}
    return {
        "run": {"scenario": str(start.get("scenario", "")),
                "description": str(start.get("description", "")),
                "seed": start.get("seed"), "n_params": start.get("n_params"),
                "n_layers": int(model.get("n_layers", 0)), "n_heads": int(model.get("n_heads", 0)),
                "d_model": model.get("d_model"), "status": str(end.get("status", "incomplete")),
                "steps": int(end.get("steps", steps[-1]["step"] if steps else 0)),
                "final_val": _num(end.get("final_val_loss")),
                "final_train": _num(end.get("final_train_loss")),
                # the step those losses were measured at: the last probe's
                "final_probe_step": int(probes[-1]["step"]) if probes else None,
                "floor": _num(floor.get("train")), "floor_heldout": _num(floor.get("heldout")),
                "probe_every": int((start.get("training") or {}).get("probe_every", 0) or 0),
                "planned": int((start.get("training") or {}).get("steps", 0) or 0)},
        "loss": loss_series(steps),
        "sentences": sentences,
        "timeline": timeline,
        "moments": moments,
    }
