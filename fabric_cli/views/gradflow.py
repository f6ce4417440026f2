"""The Gradient's descent, drawn: how much of it reaches each layer, and by which road.

One band per layer, the top layer first (the Gradient arrives from the loss above). Each band
has bars on one log scale shared by every layer: what passes through the residual skip (the
identity path, drawn ━), what passes through the block (attention + MLP, drawn █), and their
sum (░), which is what flows on to the layer below: the next band's skip. The glyphs differ,
so the roads are told apart without colour. Numbers are printed beside the bars; the layer
whose block receives least is marked. Zeros, NaN and infinities are named, never drawn.

`scale=(lo_exp, hi_exp)` pins the axis (decades) so that a picture redrawn every step keeps
the same value at the same length; `GradientScale` keeps such an axis, widening only when a
value falls outside it. `compact=True` drops the sum rows and the axis ruler (the decades are
named in the first line); `max_layers` keeps the top, the bottom and the weakest layers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

from fabric_cli.views.palette import (
    AXIS,
    EIGHTHS,
    FRAME_COLUMNS,
    MUTED,
    component_color,
    framed_lines,
)

_LABEL = 9  # "L12 block" / "    skip " column
_NUMBER = 9  # " 1.23e-04"
_NATURAL_BAR = 40  # bar length when the width allows
_MIN_BAR = 6

SKIP_COLOR = component_color("residual")
BLOCK_COLOR = component_color("gradient")
EMBED_COLOR = component_color("tokenizer")
SUM_COLOR = "#9e9e9e"
# road -> (full cell, half cell or None for eighths); each road has its own glyph
GLYPHS = {"skip": ("━", "╸"), "block": ("█", None), "sum": ("░", None), "embed": ("▓", None)}


def format_norm(value: float) -> str:
    """A gradient norm in at most 8 characters: 0.803, 12.4, 3.1e-05, 0, nan, inf."""
    if value is None or math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.1e}"


def decade_span(values: Iterable[float]) -> tuple[int, int] | None:
    """Whole decades around the positive finite values, half a decade of headroom below the
    smallest (so its bar stays visible); None when there is none."""
    positive = [v for v in values if math.isfinite(v) and v > 0]
    if not positive:
        return None
    lo = math.floor(math.log10(min(positive)) - 0.5)
    hi = math.ceil(math.log10(max(positive)))
    return (lo, hi if hi > lo else lo + 1)


class GradientScale:
    """An axis that holds still across frames: it widens to take in a new value, never
    narrows, so the same norm keeps the same bar from one step to the next."""

    def __init__(self) -> None:
        self.span: tuple[int, int] | None = None

    def update(self, rows: Sequence[Mapping[str, object]], embed: float | None = None
               ) -> tuple[int, int] | None:
        span = decade_span(_values(rows, embed))
        if span is not None:
            if self.span is None:
                self.span = span
            else:
                self.span = (min(self.span[0], span[0]), max(self.span[1], span[1]))
        return self.span


def gradient_flow(
    rows: Sequence[Mapping[str, float]],
    *,
    embed: float | None = None,
    max_width: int | None = None,
    title: str = "Gradient flow",
    scale: tuple[int, int] | None = None,
    compact: bool = False,
    max_layers: int | None = None,
) -> RenderableType:
    """Bars per layer (skip, block, and what flows on), top layer first, one log scale.

    rows: {"layer", "arriving", "skip", "block", "leaving"} per layer, any order; a row with
    "layer": "embed" (or the `embed` argument) adds the norm that reaches the embeddings.
    """
    return GradientFlow(rows, embed=embed, max_width=max_width, title=title, scale=scale,
                        compact=compact, max_layers=max_layers)


class GradientFlow:
    def __init__(
        self,
        rows: Sequence[Mapping[str, float]],
        *,
        embed: float | None,
        max_width: int | None,
        title: str,
        scale: tuple[int, int] | None = None,
        compact: bool = False,
        max_layers: int | None = None,
    ) -> None:
        layers = []
        for row in rows:
            if row.get("layer") == "embed":
                embed = _number(row.get("leaving", row.get("arriving")))
            else:
                layers.append(row)
        self.rows = sorted(layers, key=lambda r: -int(r["layer"]))  # top layer first
        self.embed = None if embed is None else _number(embed)
        self.max_width = max_width
        self.title = title
        self.compact = compact
        span = decade_span(_values(self.rows, self.embed))
        if scale is not None:  # a pinned axis, widened only if a value would not fit at all
            span = scale if span is None else (min(scale[0], span[0]), max(scale[1], span[1]))
        self.lo_exp, self.hi_exp = span if span is not None else (-3, 0)
        blocks = [(_number(r.get("block")), int(r["layer"])) for r in self.rows]
        finite = [(v, layer) for v, layer in blocks if math.isfinite(v)]
        self.least_layer = min(finite)[1] if len(finite) > 1 else None
        self.hidden = 0
        if max_layers is not None and len(self.rows) > max(2, max_layers):
            self._elide(max(2, max_layers))

    def _elide(self, keep: int) -> None:
        """Keep the top and bottom layers and the weakest block; the rest are counted."""
        chosen = {int(self.rows[0]["layer"]), int(self.rows[-1]["layer"])}
        if self.least_layer is not None:
            chosen.add(self.least_layer)
        for row in self.rows:
            if len(chosen) >= keep:
                break
            chosen.add(int(row["layer"]))
        self.hidden = len(self.rows) - len(chosen)
        self.rows = [r for r in self.rows if int(r["layer"]) in chosen]

    def bar_cells(self, value: float, bar: int) -> float:
        """How many cells (fractional) a value fills on the shared log scale."""
        if not math.isfinite(value) or value <= 0:
            return 0.0 if not (math.isinf(value) and value > 0) else float(bar)
        frac = (math.log10(value) - self.lo_exp) / (self.hi_exp - self.lo_exp)
        return max(1 / 8, min(1.0, frac) * bar)  # anything measured shows at least a sliver

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self._width(options)
        framed = width >= 36
        inner = width - (FRAME_COLUMNS if framed else 0)
        natural = max(line.cell_len for line in self.render_lines(inner))
        natural = min(inner, natural) + (FRAME_COLUMNS if framed else 0)
        return Measurement(natural, natural)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self._width(options)
        framed = width >= 36
        inner = width - (FRAME_COLUMNS if framed else 0)
        yield framed_lines(self.title, self.render_lines(inner), inner, framed)

    def _width(self, options: ConsoleOptions) -> int:
        return options.max_width if self.max_width is None else min(options.max_width, self.max_width)

    def _bar(self, inner: int) -> int:
        reserve = 8 if self.compact else 13  # " ◀ least" or " on to embed"
        return max(_MIN_BAR, min(_NATURAL_BAR, inner - _LABEL - _NUMBER - 2 - reserve))

    def render_lines(self, inner: int) -> list[Text]:
        bar = self._bar(inner)
        if not self.rows and self.embed is None:
            return [Text("no gradient measured yet", style=MUTED)]
        first = "from the loss ↓"
        if self.compact:
            scale = f"  (log scale 1e{self.lo_exp}…1e{self.hi_exp})"
            first += scale if len(first + scale) <= inner else f" · log 1e{self.lo_exp}…1e{self.hi_exp}"
        lines = [Text(first, style=MUTED)]
        previous_layer = None
        for row in self.rows:
            layer = int(row["layer"])
            if previous_layer is not None and previous_layer - layer > 1:
                gap = previous_layer - layer - 1
                lines.append(Text(f"  ⋮ {gap} layer{'s' if gap != 1 else ''} not shown",
                                  style=MUTED))
            previous_layer = layer
            lines.append(self._bar_line(f"L{layer} skip", _number(row.get("skip")), bar, "skip"))
            block = self._bar_line("   block", _number(row.get("block")), bar, "block")
            if layer == self.least_layer:
                mark = " ◀ least" if block.cell_len + 8 <= inner else " ◀"
                block.append(mark, style=Style(color=BLOCK_COLOR, bold=True))
            lines.append(block)
            if not self.compact and row.get("leaving") is not None:
                below = f"L{layer - 1}" if layer > 0 else "embed"
                down = self._bar_line("   ↓ sum", _number(row.get("leaving")), bar, "sum")
                down.append(f" on to {below}", style=MUTED)
                lines.append(down)
        if self.embed is not None:
            lines.append(self._bar_line("embed", self.embed, bar, "embed"))
        if not self.compact:
            lines.extend(self._axis(bar))
        lines.extend(self._legend(inner))
        return lines

    def _legend(self, inner: int) -> list[Text]:
        if self.compact:  # one line: the roads, and that the two add up to what goes on down
            for words, embed in ((" block flow on down", True), (" block flow on down", False),
                                 (" block flow down", False)):
                line = Text()
                line.append(GLYPHS["skip"][0], style=SKIP_COLOR)
                line.append(" skip + ", style=MUTED)
                line.append(GLYPHS["block"][0], style=BLOCK_COLOR)
                line.append(words, style=MUTED)
                if embed and self.embed is not None:
                    line.append("  " + GLYPHS["embed"][0], style=EMBED_COLOR)
                    line.append(" embed", style=MUTED)
                if line.cell_len <= inner:
                    break
            return [line]
        roads = [("skip", SKIP_COLOR, "residual skip", "skip"),
                 ("block", BLOCK_COLOR, "attention + MLP block", "block")]
        if not self.compact:
            roads.append(("sum", SUM_COLOR, "skip + block", "sum"))
        if self.embed is not None:
            roads.append(("embed", EMBED_COLOR, "embeddings", "embed"))
        wide = Text()
        short = Text()
        for road, color, long_name, short_name in roads:
            for text, name in ((wide, long_name), (short, short_name)):
                if text:
                    text.append("  ")
                text.append(GLYPHS[road][0], style=color)
                text.append(" " + name, style=MUTED)
        legend = wide if wide.cell_len <= inner else short
        rule = "skip + block (added as vectors) is what flows on to the layer below"
        if inner < len(rule):
            rule = "skip + block flows on to the layer below"
        return [legend, Text(rule, style=MUTED)]

    def _bar_line(self, label: str, value: float, bar: int, road: str) -> Text:
        color = {"skip": SKIP_COLOR, "block": BLOCK_COLOR, "sum": SUM_COLOR,
                 "embed": EMBED_COLOR}[road]
        line = Text(label.ljust(_LABEL)[:_LABEL], style="bold" if label[:1] != " " else "")
        cells = self.bar_cells(value, bar)
        full = int(cells)
        glyph, half = GLYPHS[road]
        rest = cells - full
        if full >= bar:
            part = ""
        elif half is not None:  # this road's glyph has only a half cell
            part = half if rest >= 0.25 else ""
        else:
            part = EIGHTHS[round(rest * 8)].strip() if glyph == "█" else (
                glyph if rest >= 0.5 else "")
        drawn = (glyph * full + part) if cells > 0 else ""
        if cells > 0 and not drawn:
            drawn = half or glyph  # a measured value always shows at least a sliver
        line.append("▕", style=AXIS)
        if math.isfinite(value) and value > 0 or math.isinf(value):
            line.append(drawn, style=color)
            line.append(" " * (bar - len(drawn)))
        else:
            note = "× no gradient" if value == 0 else "× not a number"
            note = note if bar >= len(note) else "×"
            line.append(note[:bar].ljust(bar), style="bold red")
        line.append(" " + format_norm(value).rjust(_NUMBER - 1), style="bold" if value > 0 else "")
        return line

    def _axis(self, bar: int) -> list[Text]:
        """Decade ticks under the bars: 1e-03 ... 1e+00."""
        ruler = ["─"] * bar
        labels = [" "] * (bar + 6)
        span = self.hi_exp - self.lo_exp
        step = max(1, math.ceil(span * 6 / max(bar, 1)))  # keep labels about six columns apart
        for exp in range(self.lo_exp, self.hi_exp + 1, step):
            pos = min(bar - 1, round((exp - self.lo_exp) / span * bar))
            ruler[pos] = "┴"
            label = f"1e{exp}"
            start = max(0, min(pos - len(label) // 2, bar + 6 - len(label)))
            if all(c == " " for c in labels[max(0, start - 1) : start + len(label)]):
                labels[start : start + len(label)] = list(label)
        return [
            Text(" " * _LABEL + " " + "".join(ruler), style=AXIS),
            Text(" " * (_LABEL + 1) + "".join(labels).rstrip() + "  (log scale)", style=MUTED),
        ]


def _values(rows: Sequence[Mapping[str, object]], embed: float | None) -> list[float]:
    values = [_number(r.get(k)) for r in rows if r.get("layer") != "embed"
              for k in ("skip", "block", "leaving")]
    values += [_number(r.get("leaving", r.get("arriving"))) for r in rows
               if r.get("layer") == "embed"]
    if embed is not None:
        values.append(_number(embed))
    return values


def _number(value: object) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, str):  # the chronicle writes non-finite numbers as strings
        try:
            return float(value)
        except ValueError:
            return float("nan")
    return float(value)  # type: ignore[arg-type]
