"""Two runs side by side: every figure read from their chronicles, never from live models.

`run_summary(events)` condenses one chronicle into plain numbers (the loss against its floor,
the gradient arriving at each layer, when each role's specialist emerged, clipping, the
divergence, held-out pronoun accuracy, the backups, the residual stream's scale);
`compare_runs(a, b)` puts two of them on the same axes and says what cannot be compared.
Views draw the result and the compare voices (narrate/compare.py) speak from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fabric_cli.analysis.rundir import step_text
from fabric_cli.chronicle import SPIKE_WINDOW, number, read_events
from fabric_cli.errors import FabricError

SCHEMA_VERSION = 1
CURVE_POINTS = 120  # loss and ratio curves are downsampled to this many points (bin medians)
DEFAULT_PRONOUN_BAR = 0.5  # MomentThresholds' pronoun bar when the chronicle names none
# A backup holds the pronoun paths nearly as well as the best tracker: a pronoun score of at
# least this share of the best head's (a bar of its own, since Dropout lowers every score).
NEAR_BEST = 0.8


def load_run(directory: Path) -> list[dict]:
    """The events of the run in `directory` (a FabricError naming what is missing)."""
    directory = Path(directory)
    if not directory.exists():
        raise FabricError(f"no run at {directory}: no such directory "
                          "(train one with `fabric train --run-dir DIR`)")
    chronicle = directory / "chronicle.jsonl"
    if not chronicle.is_file():
        raise FabricError(f"{directory} holds no chronicle.jsonl: not a fabric run directory")
    events = list(read_events(chronicle))
    if not any(e.get("type") == "run_start" for e in events):
        raise FabricError(f"{chronicle}: no run_start event; the run never began")
    return events


def switches(model: dict, training: dict) -> dict:
    """The architecture and training switches a run was trained with (defaults when absent,
    as in chronicles written before the switches existed)."""
    norm = model.get("normalization_type", "LN")
    return {
        "residual": bool(model.get("residual", True)),
        "layernorm": "pre" if norm == "LN" else "none",
        "optimizer": str(training.get("optimizer", "adamw")),
        "grad_clip": _num(training.get("grad_clip")),
        "dropout": _num(training.get("dropout")) or 0.0,
        "attn_dropout": _num(training.get("attn_dropout")) or 0.0,
        "lr": _num(training.get("lr")),
        "n_layers": int(model.get("n_layers", 0)),
        "n_heads": int(model.get("n_heads", 0)),
        "d_model": int(model.get("d_model", 0)),
    }


def run_summary(events: Sequence[dict], name: str = "") -> dict:
    starts = [e for e in events if e.get("type") == "run_start"]
    if not starts:
        raise FabricError(f"{name or 'run'}: the chronicle has no run_start event")
    start = starts[0]
    steps = [e for e in events if e.get("type") == "step"]
    probes = [e for e in events if e.get("type") == "probe"]
    moments = [e for e in events if e.get("type") == "moment"]
    ends = [e for e in events if e.get("type") == "run_end"]
    end = ends[-1] if ends else None
    model, training = start.get("model") or {}, start.get("training") or {}
    floor = _num((start.get("floor") or {}).get("train"))
    last_probe = probes[-1] if probes else None
    status = end.get("status") if end else (
        "diverged" if any(m.get("kind") == "diverged" for m in moments) else "incomplete")
    val = _num(last_probe.get("val_loss")) if last_probe else None
    return {
        "name": name or str(start.get("scenario", "")),
        "scenario": start.get("scenario"),
        "status": status,
        "steps": steps[-1]["step"] if steps else 0,
        "planned_steps": int(training.get("steps", 0) or 0),
        "seconds": _num(end.get("seconds")) if end else None,
        "switches": switches(model, training),
        "floor": floor,
        "final_val_loss": val,
        "val_over_floor": val / floor if val is not None and floor else None,
        "last_probe_step": last_probe["step"] if last_probe else None,
        "loss_curve": _loss_curve(steps),
        "val_curve": [[p["step"], _num(p.get("val_loss"))] for p in probes],
        "gradient": _gradient(steps),
        "clipping": _clipping(steps, training),
        "spikes": _spikes(moments, steps[-1]["step"] if steps else 0),
        "divergence": _divergence(moments, end),
        "roles": _roles(moments, end),
        "pronoun": _pronoun(last_probe, moments),
        "stream": _stream(steps, probes),
    }


def compare_runs(a: dict, b: dict) -> dict:
    """Two run summaries on the same axes, plus what cannot be compared between them."""
    notes = []
    sa, sb = a["switches"], b["switches"]
    fa, fb = a.get("floor"), b.get("floor")
    if fa and fb and abs(fa - fb) > 1e-6 * max(fa, fb):
        notes.append(f"different languages (entropy floors {fa:.4g} and {fb:.4g} nats): "
                     "losses are compared as ratios to each run's own floor")
    if sa["n_layers"] != sb["n_layers"]:
        notes.append(f"{sa['n_layers']} layers against {sb['n_layers']}: per-layer rows align "
                     "from the bottom; layers above the shallower run's top have no partner")
    if min(sa["n_layers"], sb["n_layers"]) < 2:
        notes.append("a one-layer run has no bottom/top gradient ratio")
    if a["steps"] != b["steps"]:
        def tore(run: dict) -> str:  # a diverged run's count says which step tore it
            step = (run["divergence"] or {}).get("step")
            return f" (step {step_text(step)} tore)" if step is not None else ""

        notes.append(f"{step_text(a['steps'])} steps trained{tore(a)} against "
                     f"{step_text(b['steps'])}{tore(b)}: every 'when' is on each run's own "
                     "step axis")
    for run in (a, b):
        if run["status"] == "diverged":
            d = run["divergence"] or {}
            notes.append(f"{run['name']} diverged at step {step_text(d.get('step'))}: its "
                         "final figures are those of its last probe "
                         f"(step {step_text(d.get('last_good_step'))})")
        elif run["status"] not in ("finished",):
            notes.append(f"{run['name']} did not finish ({run['status']}): its figures stop "
                         f"at step {step_text(run['steps'])}")
    differ = [k for k in sa if sa[k] != sb[k]]
    mixed = len({_component_of(k, differ) for k in differ}) > 1
    if mixed:
        notes.append("the runs differ in more than one setting (" + ", ".join(differ) +
                     "): a difference between them is not the work of one alone")
    n = max(sa["n_layers"], sb["n_layers"])
    layers = []
    for layer in range(n):
        row = {"layer": layer}
        for key, run in (("a", a), ("b", b)):
            per = run["gradient"]["per_layer"]
            row[key] = per[layer] if layer < len(per) else None
        layers.append(row)
    return {
        "schema_version": SCHEMA_VERSION,
        "a": a, "b": b,
        "differences": {k: [sa[k], sb[k]] for k in sa if sa[k] != sb[k]},
        "mixed_settings": differ if mixed else [],  # more than one component's settings
        "layers": layers,
        "notes": notes,
    }


def compare_dirs(dir_a: Path, dir_b: Path) -> dict:
    a = run_summary(load_run(dir_a), name=str(dir_a))
    b = run_summary(load_run(dir_b), name=str(dir_b))
    cmp = compare_runs(a, b)
    if Path(dir_a).resolve() == Path(dir_b).resolve():  # a slip of the hand, most likely
        cmp["notes"].insert(0, f"A and B are the same run, {dir_a}: every row is equal by "
                               "construction; name two runs to see a difference")
    return cmp


# Settings that belong to one component: taking Dropout away zeroes both of its rates, and an
# optimizer comes with its own fair learning rate.
_SETTING_GROUPS = {"dropout": "dropout", "attn_dropout": "dropout", "n_layers": "shape",
                   "n_heads": "shape", "d_model": "shape"}


def _component_of(setting: str, differ: list[str]) -> str:
    if setting == "lr" and "optimizer" in differ:
        return "optimizer"
    return _SETTING_GROUPS.get(setting, setting)


# -- the pieces ----------------------------------------------------------------------------
def _num(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = number(value)
    except (TypeError, ValueError):
        return None
    return x


def _downsample(xs: Sequence[float], ys: Sequence[float], points: int = CURVE_POINTS
                ) -> list[list[float]]:
    """[[x, y], ...] with at most `points` pairs: the median of each bin (NaN kept out)."""
    if len(xs) <= points:
        return [[float(x), float(y)] for x, y in zip(xs, ys)]
    out = []
    for chunk_x, chunk_y in zip(np.array_split(np.asarray(xs, float), points),
                                np.array_split(np.asarray(ys, float), points)):
        finite = chunk_y[np.isfinite(chunk_y)]
        out.append([float(chunk_x[-1]), float(np.median(finite)) if finite.size else math.nan])
    return out


def _loss_curve(steps: list[dict]) -> list[list[float]]:
    xs = [e["step"] for e in steps]
    ys = [_num(e.get("loss")) for e in steps]
    return _downsample(xs, [math.nan if y is None else y for y in ys])


def _gradient(steps: list[dict]) -> dict:
    """The gradient arriving at each layer: per step, the bottom/top ratio; over the run, the
    median arriving norm per layer and the median of its per-step share of what arrived at
    the top (the bottom layer's is the run's bottom/top median, one number told one way)."""
    rows = [(e["step"], [_num(r.get("arriving")) for r in e.get("grad_flow") or []])
            for e in steps]
    rows = [(s, a) for s, a in rows if a and all(x is not None and math.isfinite(x) for x in a)]
    if not rows:
        return {"ratio_median": None, "ratio_last": None, "ratio_curve": [], "per_layer": []}
    arriving = np.array([a for _, a in rows], dtype=np.float64)  # (steps, layers), bottom first
    top = arriving[:, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(top > 0, arriving[:, 0] / top, np.nan)
    deep = arriving.shape[1] >= 2
    per_layer = []
    for layer in range(arriving.shape[1]):
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(top > 0, arriving[:, layer] / top, np.nan)
        per_layer.append({"arriving": float(np.median(arriving[:, layer])),
                          "share_of_top": _nanmedian(share)})
    tail = ratio[-max(1, len(ratio) // 10):]
    return {
        "ratio_median": _nanmedian(ratio) if deep else None,
        "ratio_last": _nanmedian(tail) if deep else None,  # last tenth of the run
        "ratio_curve": _downsample([s for s, _ in rows], ratio.tolist()) if deep else [],
        "per_layer": per_layer,
    }


def _nanmedian(values: np.ndarray) -> float | None:
    """The median of the defined values (a ratio is undefined where nothing reached the
    top), or None when there are none."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _clipping(steps: list[dict], training: dict) -> dict:
    clip = _num(training.get("grad_clip"))
    clipped = [e for e in steps if e.get("clipped")]
    norms = [_num(e.get("grad_norm")) for e in clipped]
    norms = [x for x in norms if x is not None and math.isfinite(x)]
    return {
        "enabled": bool(clip and clip > 0),
        "clip": clip if clip and clip > 0 else None,
        "count": len(clipped),
        "max_norm": max(norms) if norms else None,
        "median_factor": float(np.median(norms)) / clip if norms and clip else None,
        "max_grad_norm": _max([_num(e.get("grad_norm")) for e in steps]),
    }


def _max(values) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return max(finite) if finite else None


def _spikes(moments: list[dict], last_step: int) -> dict:
    spikes = [m for m in moments if m.get("kind") == "gradient_spike"]
    factors = [_num((m.get("data") or {}).get("factor")) for m in spikes]
    return {"count": len(spikes), "first_step": spikes[0]["step"] if spikes else None,
            "max_factor": _max(factors), "watched": last_step > SPIKE_WINDOW,
            "window": SPIKE_WINDOW}


def _divergence(moments: list[dict], end: dict | None) -> dict | None:
    for m in moments:
        if m.get("kind") == "diverged":
            data = m.get("data") or {}
            return {"step": m["step"], "last_good_step": data.get("last_good_step"),
                    "loss": data.get("loss"), "grad_norm": data.get("grad_norm"),
                    "non_finite": (end or {}).get("non_finite")}
    return None


def _roles(moments: list[dict], end: dict | None) -> dict:
    """Per role: the first step any head crossed the role's bar, and the specialists the final
    ablation named, with the step each of them crossed."""
    crossed: dict[tuple, int] = {}
    first: dict[str, int] = {}
    for m in moments:
        if m.get("kind") == "role_threshold":
            role = (m.get("data") or {}).get("role")
            key = (role, m.get("layer"), m.get("head"))
            crossed.setdefault(key, m["step"])
            first.setdefault(role, m["step"])
    specialists = (end or {}).get("specialists") or [
        {"layer": m.get("layer"), "head": m.get("head"), **(m.get("data") or {})}
        for m in moments if m.get("kind") == "specialist"]
    roles: dict[str, dict] = {}
    for role, step in first.items():
        roles[role] = {"threshold_step": step, "specialists": [], "emerged_step": None}
    for sp in specialists:
        role = sp.get("role")
        entry = roles.setdefault(role, {"threshold_step": None, "specialists": [],
                                        "emerged_step": None})
        step = crossed.get((role, sp.get("layer"), sp.get("head")))
        entry["specialists"].append({"layer": sp.get("layer"), "head": sp.get("head"),
                                     "crossed_step": step})
        if step is not None and (entry["emerged_step"] is None or step < entry["emerged_step"]):
            entry["emerged_step"] = step
    return roles


def _pronoun(probe: dict | None, moments: list[dict]) -> dict:
    """Held-out pronoun accuracy of the best tracker, the nearest-noun baseline, how many heads
    hold the pronoun paths (over the bar, and within NEAR_BEST of the best: the backups), the
    resolution under the run's own dropout mask and under the probes' fixed mask test."""
    bars = [_num((m.get("data") or {}).get("threshold")) for m in moments
            if m.get("kind") == "role_threshold" and (m.get("data") or {}).get("role") == "pronoun"]
    bar = next((b for b in bars if b is not None), DEFAULT_PRONOUN_BAR)
    if not probe or not probe.get("heads"):
        return {"bar": bar, "best": None, "heldout_acc": None, "baseline_acc": None,
                "heads_over_bar": 0, "near_share": NEAR_BEST, "near_best": [], "focus": None,
                "mask_test": None}
    heads = probe["heads"]

    def score(h: dict) -> float:
        return _num(h["scores"].get("pronoun")) or 0.0
    best = max(heads, key=score)
    over = [h for h in heads if score(h) >= bar]
    near = [h for h in heads if score(best) > 0 and score(h) >= NEAR_BEST * score(best)]
    focus = probe.get("focus_under_dropout")
    test = probe.get("mask_test")
    return {
        "bar": bar,
        "best": {"layer": best["layer"], "head": best["head"],
                 "score": _num(best["scores"].get("pronoun"))},
        "heldout_acc": _num(best.get("pronoun_acc_heldout")),
        "baseline_acc": _num((probe.get("baseline_acc") or {}).get("heldout")),
        "heads_over_bar": len(over),
        "near_share": NEAR_BEST,
        "near_best": [{"layer": h["layer"], "head": h["head"], "score": score(h)} for h in near],
        "focus": ({"clean": _num(focus.get("clean")), "dropped": _num(focus.get("dropped"))}
                  if focus else None),
        "mask_test": ({"rate": _num(test.get("rate")), "clean": _num(test.get("clean")),
                       "masked": _num(test.get("masked"))} if test else None),
    }


def _stream(steps: list[dict], probes: list[dict]) -> dict:
    """The residual stream's scale entering each layer and at the top (each token's standard
    deviation across channels, averaged over tokens): the probe-time capture when the
    chronicle has it, else what LayerNorm saw at the last step."""
    for probe in reversed(probes):
        scale = probe.get("stream_scale")
        if scale:
            return {"source": "probe", "step": probe["step"], "scale": [_num(x) for x in scale]}
    for e in reversed(steps):
        stats = e.get("layernorm") or []
        # ln1 of block l reads the stream entering layer l; ln_final the stream at the top
        rows = [s for s in stats if str(s.get("name", "")).endswith(".ln1")]
        rows += [s for s in stats if s.get("name") == "ln_final"]
        if rows:
            return {"source": "layernorm", "step": e["step"],
                    "scale": [_num(s.get("in_std")) for s in rows]}
    return {"source": None, "step": None, "scale": []}
