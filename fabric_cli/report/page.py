"""The report page's static parts, as HTML strings: the run's facts, the loss charts (SVG),
the role map with its ablations, and the story told by every voice. The timeline's picture
is drawn by report.js from the page's data; its skeleton is here.

Every string that comes from a run (tokens, sentences, the story) is escaped; nothing here
fetches anything, and the CSS and script are inlined by report.build_report.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fabric_cli.narrate.format import whole_pct

CHART_W, CHART_H = 520, 240
PAD_L, PAD_R, PAD_T, PAD_B = 52, 78, 12, 30
MAX_DECADES = 6  # labels on the log axis; more and they would overlap
SMOOTHING = 0.05  # the gap chart draws the train loss as an EMA (~20 steps), as the terminal


# control characters are dropped (tab and line breaks become spaces), as the terminal's
# views.palette.literal drops them: in a page they would show as empty boxes
_CONTROL = {c: None for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({0x09: " ", 0x0A: " ", 0x0D: " "})


def esc(text: object) -> str:
    return html.escape(str(text).translate(_CONTROL), quote=True)


def prose(paragraph: str) -> str:
    """A narrator's paragraph: escaped, its *inner lines* in italics."""
    parts = esc(paragraph).split("*")
    return "".join(f"<em>{p}</em>" if i % 2 else p for i, p in enumerate(parts))


def facts(run: Mapping[str, Any], specialists: Sequence[Mapping[str, Any]]) -> str:
    items = [("status", run["status"]), ("steps", f"{run['steps']:,}"),
             ("parameters", f"{run['n_params']:,}" if run.get("n_params") else "—"),
             ("layers × heads", f"{run['n_layers']} × {run['n_heads']}")]
    if run.get("floor") is not None:
        items.append(("entropy floor", f"{run['floor']:.3f} nats"))
    if run.get("final_val") is not None and run.get("floor"):
        # a run that diverged or stopped ends with its last probe's losses: say when
        probe = run.get("final_probe_step")
        label = "validation loss" if run["status"] == "finished" or probe is None or \
            probe == run["steps"] else f"validation loss at step {probe:,}"
        items.append((label, (f"{run['final_val']:.3f} "
                      f"({run['final_val'] / run['floor']:.3f}× the floor)")))
    roles: dict[str, list[str]] = {}  # a head proven in two roles is named once, both roles
    for s in specialists:
        held = roles.setdefault(f"L{s['layer']}H{s['head']}", [])
        if s["role"] not in held:
            held.append(s["role"])
    names = ", ".join(f"{head} ({', '.join(held)})" for head, held in roles.items())
    untested = "untested: the run stopped before the ablation that proves a head"
    items.append(("specialists", names or ("none proven" if run["status"] == "finished"
                                           else untested)))
    return "<div class=\"facts\">" + "".join(
        f"<span class=\"muted\">{esc(k)}</span> <b>{esc(v)}</b>" for k, v in items) + "</div>"


# -- the loss charts ------------------------------------------------------------------------


def _ema(values: Sequence[float]) -> list[float]:
    out, state = [], None
    for v in values:
        state = v if state is None else state + SMOOTHING * (v - state)
        out.append(state)
    return out


def _polyline(points: Sequence[tuple[float, float]], cls: str) -> str:
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline class="{cls}" points="{coords}"/>'


def _tick(value: float) -> str:
    """A linear axis's label, short enough for the left margin (six characters at most):
    a run that diverged reaches losses of 1e11, which .2f would write in fifteen."""
    if abs(value) < 100:
        return f"{value:.2f}"
    if abs(value) < 10_000:
        return f"{value:.0f}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _frame(ticks_y: Sequence[tuple[float, str]], s0: float, s1: float, sx) -> list[str]:
    parts = [(f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" '
             f'y2="{CHART_H - PAD_B}"/>'),
             (f'<line class="axis" x1="{PAD_L}" y1="{CHART_H - PAD_B}" '
             f'x2="{CHART_W - PAD_R}" y2="{CHART_H - PAD_B}"/>')]
    for y, label in ticks_y:
        if not label:  # a grid line alone
            parts.append(f'<line class="grid" x1="{PAD_L}" x2="{CHART_W - PAD_R}" '
                         f'y1="{y:.1f}" y2="{y:.1f}"/>')
            continue
        parts.append(f'<line class="grid" x1="{PAD_L}" x2="{CHART_W - PAD_R}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{PAD_L - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{esc(label)}</text>')
    for i in range(5):
        s = s0 + (s1 - s0) * i / 4
        parts.append(f'<text class="tick" x="{sx(s):.1f}" y="{CHART_H - PAD_B + 16}" '
                     f'text-anchor="middle">{round(s):,}</text>')
    return parts


def loss_charts(loss: Mapping[str, Sequence], val: Sequence[tuple[int, float]],
                floor: float | None) -> str:
    """Two charts: the whole curve over the floor (linear), and its distance to the floor on
    a log axis, where the last hundredths of a nat stay readable."""
    steps, losses = list(loss["steps"]), list(loss["loss"])
    if not steps:
        return "<p class=\"muted\">No loss measured yet.</p>"
    s0, s1 = min(steps + [s for s, _ in val]), max(steps + [s for s, _ in val])
    s1 = s1 if s1 > s0 else s0 + 1

    def sx(s: float) -> float:
        return PAD_L + (s - s0) / (s1 - s0) * (CHART_W - PAD_L - PAD_R)

    values = losses + [v for _, v in val] + ([floor] if floor is not None else [])
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1

    def sy(v: float) -> float:
        return PAD_T + (hi - v) / (hi - lo) * (CHART_H - PAD_T - PAD_B)

    ticks = [(sy(lo + (hi - lo) * i / 4), _tick(lo + (hi - lo) * i / 4)) for i in range(5)]
    full = _frame(ticks, s0, s1, sx)
    full.append(_polyline([(sx(s), sy(v)) for s, v in zip(steps, losses, strict=True)], "train"))
    full += [f'<circle class="val" cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="3"/>' for s, v in val]
    if floor is not None:
        y = sy(floor)
        full.append(f'<line class="floor" x1="{PAD_L}" x2="{CHART_W - PAD_R}" y1="{y:.1f}" '
                    f'y2="{y:.1f}"/><text class="floor-label" x="{CHART_W - PAD_R + 4}" '
                    f'y="{y + 4:.1f}">floor {floor:.3f}</text>')
    charts = [_figure(full, "The loss, step by step (red), validation (dots) and the entropy "
                      "floor (dashed), the lowest loss any model could reach.", (s0, s1))]
    if floor is not None:
        charts.append(_gap_chart(steps, losses, val, floor, s0, s1, sx))
    return "<div class=\"charts\">" + "".join(charts) + "</div>"


def _gap_chart(steps, losses, val, floor, s0, s1, sx) -> str:
    smooth = _ema(losses)
    gaps = [v - floor for v in smooth + [v for _, v in val] if v - floor > 0]
    if not gaps:
        return ""
    low = max(min(gaps), 1e-3)
    lo, hi = math.floor(math.log10(low)), math.ceil(math.log10(max(gaps)))
    hi = hi if hi > lo else lo + 1

    def sy(v: float) -> float:
        g = math.log10(max(v - floor, low))
        return PAD_T + (hi - g) / (hi - lo) * (CHART_H - PAD_T - PAD_B)

    ticks = []
    every = math.ceil((hi - lo + 1) / MAX_DECADES)  # a storm spans a dozen decades
    for e in range(lo, hi + 1):
        y = PAD_T + (hi - e) / (hi - lo) * (CHART_H - PAD_T - PAD_B)
        ticks.append((y, f"+{10.0 ** e:g}" if -3 <= e <= 3 else f"+1e{e}")
                     if (hi - e) % every == 0 else (y, ""))
    parts = _frame(ticks, s0, s1, sx)
    parts.append(_polyline([(sx(s), sy(v)) for s, v in zip(steps, smooth, strict=True)],
                           "train"))
    parts += [f'<circle class="val" cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="3"/>' for s, v in val]
    last_s, last_v = (val[-1] if val else (steps[-1], smooth[-1]))
    parts.append(f'<text class="floor-label" x="{sx(last_s) + 6:.1f}" y="{sy(last_v) + 4:.1f}">'
                 f'+{last_v - floor:.3f}</text>')
    return _figure(parts, "Distance to the floor, nats on a log axis: the train loss smoothed "
                   "(an EMA over about 20 steps) and validation (dots). The label is the last "
                   "validation gap.", (s0, s1))


def _figure(parts: list[str], caption: str, span: tuple[float, float] = (0.0, 1.0)) -> str:
    """A chart; `span` (first and last step) lets the timeline mark its step on it."""
    return (f'<figure><svg class="loss-chart" viewBox="0 0 {CHART_W} {CHART_H}" width="100%" '
            f'role="img" aria-label="{esc(caption)}" data-x0="{PAD_L}" data-x1="{CHART_W - PAD_R}" data-y0="{PAD_T}" '
            f'data-y1="{CHART_H - PAD_B}" data-s0="{span[0]:g}" data-s1="{span[1]:g}">'
            + "".join(parts) + f"</svg><figcaption>{esc(caption)}</figcaption></figure>")


# -- the role map ---------------------------------------------------------------------------


def also_proven(rows: Sequence[Mapping[str, Any]],
                specialists: Sequence[Mapping[str, Any]]) -> dict[tuple[int, int], list[str]]:
    """The roles a head was proven in besides the one its cell is named for (a head may be
    a specialist twice; the map names it once, as the terminal's does)."""
    shown = {(int(r["layer"]), int(r["head"])): r.get("role") for r in rows}
    also: dict[tuple[int, int], list[str]] = {}
    for sp in specialists:
        key = (int(sp["layer"]), int(sp["head"]))
        if key in shown and sp.get("role") != shown[key]:
            also.setdefault(key, []).append(str(sp.get("role")))
    return also


def role_map(rows: Sequence[Mapping[str, Any]], n_layers: int, n_heads: int,
             ablation: Sequence[Mapping[str, Any]],
             specialists: Sequence[Mapping[str, Any]] = ()) -> str:
    """A layer × head table (the terminal's head map), then the ablation rows."""
    by = {(int(r["layer"]), int(r["head"])): r for r in rows}
    also = also_proven(rows, specialists)
    out = ["<table><tr><th></th>" + "".join(f"<th>H{h}</th>" for h in range(n_heads)) + "</tr>"]
    for layer in range(n_layers):
        out.append(f"<tr><th>L{layer}</th>")
        for h in range(n_heads):
            out.append(_head_cell(by.get((layer, h)), also.get((layer, h), [])))
        out.append("</tr>")
    out.append("</table><p class=\"muted\">★ specialist: zeroing it (alone, or with its team) "
               "measurably hurts · score: the mean attention mass on its role's cells.</p>")
    if ablation:
        out.append("<h3>Ablations</h3><table><tr><th>heads zeroed</th><th>role</th>"
                   "<th>loss after its tokens</th><th>accuracy</th></tr>")
        for a in ablation:
            heads = ", ".join(f"L{lay}H{h}" for lay, h in a.get("heads") or [])
            out.append(f"<tr><td>{esc(heads)}</td><td>{esc(a.get('role', ''))}</td>"
                       f"<td>{_arrow(a.get('loss_before'), a.get('loss_after'), '.3f')}</td>"
                       f"<td>{_arrow(a.get('acc_before'), a.get('acc_after'), whole_pct)}"
                       "</td></tr>")
        out.append("</table>")
    return "".join(out)


def _head_cell(r: Mapping[str, Any] | None, also: Sequence[str] = ()) -> str:
    if r is None:
        return "<td class=\"muted\">—</td>"
    role = str(r.get("role", "diffuse"))
    lines = [f"<span class=\"role\">{esc(role)}</span>" + (" ★" if r.get("specialist") else "")]
    if isinstance(r.get("score"), (int, float)):
        lines.append(f"score {r['score']:.2f}")
    if isinstance(r.get("heldout_acc"), (int, float)):
        lines.append(f"held-out {whole_pct(r['heldout_acc'])}")
    for label, key in (("zeroed", "ablation"), ("with team", "team_ablation")):
        ab = r.get(key)
        if r.get("specialist") and isinstance(ab, Mapping):
            lines.append(f"{label}: loss {_arrow(ab.get('loss_before'), ab.get('loss_after'), '.2f')}"
                         f", acc {_arrow(ab.get('acc_before'), ab.get('acc_after'), whole_pct)}")
    lines += [f"also proven <span class=\"role\">{esc(other)}</span> ★" for other in also]
    cls = " class=\"specialist\"" if r.get("specialist") else ""
    return f"<td{cls}>" + "<br>".join(lines) + "</td>"


def _arrow(before: Any, after: Any, spec: str | Callable[[float], str]) -> str:
    """before → after, each written with a format spec or a function (whole_pct)."""
    write = spec if callable(spec) else (lambda x: format(x, spec))
    try:
        return f"{write(float(before))} → {write(float(after))}"
    except (TypeError, ValueError):
        return "—"


# -- the story ------------------------------------------------------------------------------


def stories(told: Sequence[tuple[str, Any | str]], names: Mapping[str, str]) -> str:
    """The ensemble open, every voice in its own fold. `told` is (component, Story or the
    reason it could not be told)."""
    out = []
    for i, (component, story) in enumerate(told):
        opened = " open" if i == 0 else ""
        if isinstance(story, str):
            out.append(f"<details{opened}><summary>{esc(names.get(component, component))}"
                       f"</summary><p class=\"muted\">{esc(story)}</p></details>")
            continue
        body = [f"<details{opened}><summary>{esc(story.title)}</summary><div class=\"story\">"]
        if story.epigraph:
            body.append(f"<p><em>{esc(story.epigraph)}</em></p>")
        for chapter in story.chapters:
            body.append(f"<h3>{esc(chapter.title)}</h3>")
            for k, paragraph in enumerate(chapter.paragraphs):
                speaker = chapter.voice_of(k, story.component)
                label = ""
                if speaker != story.component:
                    who = "head" if speaker[:1] == "L" and speaker[1:2].isdigit() else speaker
                    label = (f"<span class=\"speaker\" style=\"color:var(--c-{esc(who)})\">"
                             f"{esc(names.get(speaker, speaker))}</span>")
                body.append(f"<p>{label}{prose(paragraph)}</p>")
        body.append("</div></details>")
        out.append("".join(body))
    return "".join(out)


TIMELINE = """
<div class="controls">
  <label>probe <input id="step" type="range" min="0" max="0" value="0"></label>
  <span id="step-label"></span>
  <label>head <select id="head"></select></label>
</div>
<p id="head-facts"></p>
<div id="legend" class="legend"></div>
<div id="timeline-body">
  <div id="sentences" class="sentences"></div>
  <h3>Gradient flow at this step</h3>
  <div id="gradflow"></div>
  <h3>Moments around this step</h3>
  <div id="moments"></div>
</div>
"""
