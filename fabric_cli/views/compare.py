"""Two runs side by side on the same axes (what `fabric compare` and `fabric why` draw).

Takes the plain dict of analysis.compare.compare_runs: a table of measures (A | B), the loss
over each run's entropy floor as two sparklines on one shared log scale, and the gradient
arriving at each layer (top first, as the Gradient meets them) as two bars per layer on one
shared log scale. Missing values are named ("never", "off", "—"), never drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.console import RenderableType
from rich.text import Text

from fabric_cli.narrate.format import step as step_text
from fabric_cli.narrate.format import whole_pct
from fabric_cli.views.palette import (
    AXIS,
    EIGHTHS,
    FRAME_COLUMNS,
    MUTED,
    SPARK,
    component_color,
    framed_lines,
    literal,
)

A_COLOR = component_color("head")
B_COLOR = component_color("gradient")
_LABEL = 24
_MIN_COLUMN = 14


def fraction(x: float | None) -> str:
    """A share as a person says it: 1, 0.82, 1/300, 1/5.2e11; '—' when unknown."""
    if x is None or not math.isfinite(x):
        return "—"
    if x <= 0:
        return "0"
    if x >= 0.1:
        return f"{x:.2g}"
    inverse = 1.0 / x
    if inverse < 1e4:
        return f"1/{inverse:.2g}" if inverse < 100 else f"1/{inverse:.0f}"
    mantissa, exponent = f"{inverse:.1e}".split("e")
    return f"1/{mantissa}e{int(exponent)}"


def times_floor(x: float | None) -> str:
    """A loss over its floor: 1.012×, 3.26×, 2.9e+13× (never wider than 9 characters)."""
    if x is None:
        return "—"
    if not math.isfinite(x):
        return "non-finite"
    return f"{x:.3f}×" if x < 100 else f"{x:.2g}×"


def _pct(x: float | None) -> str:
    return "—" if x is None else whole_pct(x)


def _when(step: int | None) -> str:
    return "never" if step is None else f"step {step_text(step)}"


def switch_line(s: dict) -> str:
    """The settings a reader needs to tell the two runs apart, in a few words."""
    layers = f"{s['n_layers']} layer{'s' if s['n_layers'] != 1 else ''}"
    parts = [f"{layers} × {s['n_heads']} heads, d {s['d_model']}",
             "residual" if s["residual"] else "NO residual",
             "LN" if s["layernorm"] == "pre" else "NO LN",
             s["optimizer"] + (f" lr {s['lr']:g}" if s.get("lr") else ""),  # not "momentum 1"
             f"clip {s['grad_clip']:g}" if s.get("grad_clip") else "NO clip",
             f"dropout {s['dropout']:g}/{s['attn_dropout']:g}"]
    return " · ".join(parts)


def measure_rows(cmp: dict) -> list[tuple[str, str, str]]:
    """(label, A, B) for every measure the table shows, formatted."""
    rows = []
    runs = (cmp["a"], cmp["b"])

    def row(label, fn):
        rows.append((label, *(fn(r) for r in runs)))

    row("ended", lambda r: f"tore at step {step_text(r['divergence']['step'])}"
        if r["divergence"] else f"{r['status']} at step {step_text(r['steps'])}")
    row("validation / floor", lambda r: times_floor(r["val_over_floor"]))
    row("held-out pronoun acc.", lambda r: _pct(r["pronoun"]["heldout_acc"]))
    row("nearest-noun baseline", lambda r: _pct(r["pronoun"]["baseline_acc"]))
    row("pronoun bar crossed", lambda r: _when((r["roles"].get("pronoun") or {})
                                               .get("threshold_step")))
    row("pronoun specialists", lambda r: ", ".join(
        f"L{s['layer']}H{s['head']}" for s in (r["roles"].get("pronoun") or {})
        .get("specialists", [])) or _none(r))
    row("heads over pronoun bar", lambda r: str(r["pronoun"]["heads_over_bar"]))
    others = sorted({role for run in runs for role in run["roles"] if role != "pronoun"})
    for role in others:
        row(f"{role} specialists", lambda r, role=role: _specialists(r["roles"].get(role), r))
    share = runs[0]["pronoun"].get("near_share")
    if share is not None:
        row(f"heads ≥ {share:.0%} of the best", lambda r: str(len(r["pronoun"].get("near_best")
                                                                  or [])))
    row("focus under own mask", lambda r: "—" if not r["pronoun"]["focus"] else
        f"{_pct(r['pronoun']['focus']['clean'])} → {_pct(r['pronoun']['focus']['dropped'])}")
    tests = [r["pronoun"].get("mask_test") for r in runs]
    if all(tests):
        row(f"focus under a {tests[0]['rate']:.0%} mask", lambda r: (
            f"{_pct(r['pronoun']['mask_test']['clean'])} → "
            f"{_pct(r['pronoun']['mask_test']['masked'])}"))
    row("gradient bottom/top", lambda r: fraction(r["gradient"]["ratio_median"]))
    row("clipped steps", lambda r: (f"{step_text(r['clipping']['count'])} (to {r['clipping']['clip']:g})"
                                    if r["clipping"]["enabled"] else "clipping off"))
    row("largest gradient norm", lambda r: "—" if r["clipping"]["max_grad_norm"] is None
        else f"{r['clipping']['max_grad_norm']:.3g}")
    row("gradient spikes", lambda r: str(r["spikes"]["count"]) if r["spikes"].get("watched", True)
        else f"— (needs {r['spikes']['window']} steps first)")
    row("diverged", lambda r: "no" if not r["divergence"] else
        f"step {step_text(r['divergence']['step'])} "
        f"(kept {step_text(r['divergence']['last_good_step'])})")
    row("stream scale top/bottom", lambda r: _growth(r["stream"]))
    row("stream scale per layer", lambda r: _per_layer(r["stream"].get("scale") or []))
    return rows


def _per_layer(scale: list) -> str:
    """Every point of the stream when it fits a column, else the bottom and the top."""
    values = [f"{x:.2g}" for x in scale if x is not None]
    text = " ".join(values)
    if len(text) > _MIN_COLUMN - 1 and len(values) > 2:
        return f"{values[0]} … {values[-1]}"
    return text or "—"


def _none(run: dict) -> str:
    """No specialist: "none" once the final ablation looked; a run that stopped or tore
    before it was never tested."""
    return "none" if run["status"] == "finished" else "untested"


def _specialists(entry: dict | None, run: dict) -> str:
    """Who the ablation named for a role, and when the first of them crossed its bar."""
    if not entry or not entry.get("specialists"):
        bar = (entry or {}).get("threshold_step")
        none = _none(run)
        return none if bar is None else f"{none} (bar crossed at {step_text(bar)})"
    heads = ", ".join(f"L{s['layer']}H{s['head']}" for s in entry["specialists"])
    when = entry.get("emerged_step")
    return heads + (f" @{step_text(when)}" if when is not None else "")


def _growth(stream: dict) -> str:
    scale = [x for x in stream.get("scale") or [] if x is not None]
    if len(scale) < 2 or not scale[0]:
        return "—"
    return f"×{scale[-1] / scale[0]:.3g}"


def comparison_view(cmp: dict, *, max_width: int | None = None,
                    title: str = "Two runs side by side") -> RenderableType:
    width = max(40, min(max_width or 100, 110))
    framed = width >= 60
    inner = width - (FRAME_COLUMNS if framed else 0)
    col = max(_MIN_COLUMN, (inner - _LABEL) // 2)
    lines: list[Text] = []
    for key, color in (("a", A_COLOR), ("b", B_COLOR)):
        run = cmp[key]
        line = Text(f"{key.upper()} ", style=f"bold {color}")
        line.append(literal(run["name"]), style="bold")
        lines.append(line)
        words = switch_line(run["switches"])
        while words:  # wrapped at a separator, never cut
            cut = len(words) if len(words) <= inner - 2 else words.rfind(" · ", 0, inner - 2)
            cut = cut if cut > 0 else inner - 2
            lines.append(Text("  " + words[:cut], style=MUTED))
            words = words[cut:].removeprefix(" · ")
    lines.append(Text(""))
    header = Text(" " * _LABEL)
    header.append("A".ljust(col), style=f"bold {A_COLOR}")
    header.append("B", style=f"bold {B_COLOR}")
    lines.append(header)
    for label, a, b in measure_rows(cmp):
        # a long value (a list of heads) goes on under itself at its commas, never cut
        parts_a, parts_b = _wrapped(a, col - 1), _wrapped(b, col - 1)
        for i in range(max(len(parts_a), len(parts_b))):
            line = Text((label if i == 0 else "").ljust(_LABEL), style=MUTED)
            line.append((parts_a[i] if i < len(parts_a) else "").ljust(col))
            line.append(parts_b[i] if i < len(parts_b) else "")
            lines.append(line)
    lines.append(Text(""))
    lines += loss_lines(cmp, inner)
    lines += ratio_lines(cmp, inner)
    lines.append(Text(""))
    lines += layer_lines(cmp, inner)
    return framed_lines(title, lines, inner, framed)


def _wrapped(value: str, width: int) -> list[str]:
    """`value` in lines of at most `width`, broken after ", " where it can be, else cut."""
    lines: list[str] = []
    while len(value) > width:
        cut = value.rfind(", ", 0, width - 1)
        cut = cut + 1 if cut > 0 else width
        lines.append(value[:cut])
        value = value[cut:].lstrip()
    return [*lines, value]


def notes_text(cmp: dict) -> Text | None:
    """What cannot be compared, as wrapped lines under the picture."""
    notes = cmp.get("notes") or []
    if not notes:
        return None
    return Text("\n".join("note: " + literal(n) for n in notes), style=MUTED)


def loss_lines(cmp: dict, inner: int) -> list[Text]:
    """Loss over each run's floor, both on one log scale (▁ lowest of either run)."""
    width = max(10, inner - _LABEL)
    curves = []
    for key in ("a", "b"):
        run = cmp[key]
        floor = run["floor"] or 1.0
        ys = [y / floor for _, y in run["loss_curve"] if y is not None]
        curves.append(_bin(ys, width))
    finite = [v for c in curves for v in c if math.isfinite(v) and v > 0]
    out = [Text("training loss / entropy floor, shared log scale", style=f"bold {AXIS}")]
    if not finite:
        return out + [Text("  no steps recorded", style=MUTED)]
    lo, hi = math.log(min(finite)), math.log(max(finite))
    for key, color, curve in (("a", A_COLOR, curves[0]), ("b", B_COLOR, curves[1])):
        ys = [v for v in curve if math.isfinite(v)]
        last = times_floor(ys[-1]) if ys else "—"
        line = Text(f"{key.upper()}  ends {last}".ljust(_LABEL), style=color)
        line.append(_spark(curve, lo, hi), style=color)
        out.append(line)
    return out


def ratio_lines(cmp: dict, inner: int) -> list[Text]:
    """The bottom/top arriving ratio over each run, on one shared log scale (none for a
    one-layer run)."""
    width = max(10, inner - _LABEL)
    curves = {k: _bin([y for _, y in cmp[k]["gradient"]["ratio_curve"]], width)
              for k in ("a", "b")}
    finite = [v for c in curves.values() for v in c if math.isfinite(v) and v > 0]
    if not finite:
        return []
    lo, hi = math.log(min(finite)), math.log(max(finite))
    out = [Text(""), Text("gradient bottom/top over the run, shared log scale",
                          style=f"bold {AXIS}")]
    for key, color in (("a", A_COLOR), ("b", B_COLOR)):
        median = fraction(cmp[key]["gradient"]["ratio_median"])
        label = Text(f"{key.upper()}  median {median}".ljust(_LABEL), style=color)
        if curves[key]:
            label.append(_spark(curves[key], lo, hi), style=color)
        else:
            label.append("one layer: no ratio", style=MUTED)
        out.append(label)
    return out


def _bin(values: Sequence[float], width: int) -> list[float]:
    data = np.asarray(values, dtype=np.float64)
    if data.size <= width:
        return data.tolist()
    out = []
    for chunk in np.array_split(data, width):
        finite = chunk[np.isfinite(chunk)]
        out.append(float(finite.mean()) if finite.size else math.nan)
    return out


def _spark(values: Sequence[float], lo: float, hi: float) -> str:
    chars = []
    for v in values:
        if not math.isfinite(v) or v <= 0:
            chars.append(" ")
            continue
        x = 0.5 if hi == lo else (math.log(v) - lo) / (hi - lo)
        chars.append(SPARK[min(len(SPARK) - 1, int(x * len(SPARK)))])
    return "".join(chars)


def layer_lines(cmp: dict, inner: int) -> list[Text]:
    """The median gradient arriving at each layer, top first, A above B, one log scale."""
    rows = cmp["layers"]
    values = [r[k]["arriving"] for r in rows for k in ("a", "b")
              if r[k] and r[k]["arriving"] and r[k]["arriving"] > 0]
    out = [Text("gradient arriving at each layer (median over the run), shared log scale",
                style=f"bold {AXIS}")]
    if not values:
        return out + [Text("  no gradient recorded", style=MUTED)]
    lo = math.log10(min(values)) - 0.5
    hi = math.log10(max(values))
    bar = max(6, inner - 6 - 2 - 24)
    for r in reversed(rows):
        for key, color in (("a", A_COLOR), ("b", B_COLOR)):
            cell = r[key]
            label = f"L{r['layer']:<3}" if key == "a" else "    "
            line = Text(label, style=MUTED)
            line.append(f"{key.upper()} ", style=f"bold {color}")
            if not cell:
                line.append("(no such layer)", style=MUTED)
            else:
                x = cell["arriving"]
                frac = 0.0 if not x or x <= 0 or hi == lo else (math.log10(x) - lo) / (hi - lo)
                line.append(_bar(frac, bar), style=color)
                line.append(f" {x:.2g} ({fraction(cell['share_of_top'])} of top)")
            out.append(line)
    return out


def _bar(frac: float, width: int) -> str:
    eighths = round(max(0.0, min(1.0, frac)) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[part] if part else "")
    return text.ljust(width)
