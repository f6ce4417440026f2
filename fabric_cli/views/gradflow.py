"""The Gradient's descent, drawn: how much of it reaches each layer, and by which road.

One band per layer, the top layer first (the Gradient arrives from the loss above). Each band
has two bars on one log scale shared by every layer: what passes through the residual skip
(identity path) and what passes through the block (attention + MLP). The numbers are printed
beside the bars; the layer whose block receives least is marked. Zeros, NaN and infinities are
named, never drawn as a bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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


def gradient_flow(
    rows: Sequence[Mapping[str, float]],
    *,
    embed: float | None = None,
    max_width: int | None = None,
    title: str = "Gradient flow",
) -> RenderableType:
    """Two bars per layer (skip, block), top layer first, on one shared log scale.

    rows: {"layer", "arriving", "skip", "block", "leaving"} per layer, any order; a row with
    "layer": "embed" (or the `embed` argument) adds the norm that reaches the embeddings.
    """
    return GradientFlow(rows, embed=embed, max_width=max_width, title=title)


class GradientFlow:
    def __init__(
        self,
        rows: Sequence[Mapping[str, float]],
        *,
        embed: float | None,
        max_width: int | None,
        title: str,
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
        values = [_number(r.get(k)) for r in self.rows for k in ("skip", "block")]
        if self.embed is not None:
            values.append(self.embed)
        positive = [v for v in values if math.isfinite(v) and v > 0]
        # The shared scale spans whole decades around the data, so bars compare honestly.
        # Half a decade of headroom below the smallest value keeps its bar visible.
        self.lo_exp = math.floor(math.log10(min(positive)) - 0.5) if positive else -3
        self.hi_exp = math.ceil(math.log10(max(positive))) if positive else 0
        if self.hi_exp <= self.lo_exp:
            self.hi_exp = self.lo_exp + 1
        blocks = [(_number(r.get("block")), int(r["layer"])) for r in self.rows]
        finite = [(v, layer) for v, layer in blocks if math.isfinite(v)]
        self.least_layer = min(finite)[1] if len(finite) > 1 else None

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
        return max(_MIN_BAR, min(_NATURAL_BAR, inner - _LABEL - _NUMBER - 2 - 8))

    def render_lines(self, inner: int) -> list[Text]:
        bar = self._bar(inner)
        if not self.rows and self.embed is None:
            return [Text("no gradient measured yet", style=MUTED)]
        lines = [Text("from the loss ↓", style=MUTED)]
        for row in self.rows:
            layer = int(row["layer"])
            least = layer == self.least_layer
            lines.append(self._bar_line(f"L{layer} skip", _number(row.get("skip")), bar, SKIP_COLOR))
            block = self._bar_line("   block", _number(row.get("block")), bar, BLOCK_COLOR)
            if least:
                block.append(" ◀ least", style=Style(color=BLOCK_COLOR, bold=True))
            lines.append(block)
        if self.embed is not None:
            lines.append(self._bar_line("embed", self.embed, bar, component_color("tokenizer")))
        lines.extend(self._axis(bar))
        wide = inner >= _LABEL + 58
        legend = Text(" " * _LABEL)
        legend.append("█", style=SKIP_COLOR)
        legend.append(" through the residual skip  " if wide else " skip  ", style=MUTED)
        legend.append("█", style=BLOCK_COLOR)
        legend.append(" through the block (log scale)" if wide else " block", style=MUTED)
        lines.append(legend)
        return lines

    def _bar_line(self, label: str, value: float, bar: int, color: str) -> Text:
        line = Text(label.ljust(_LABEL)[:_LABEL], style="bold" if label[:1] != " " else "")
        cells = self.bar_cells(value, bar)
        full = int(cells)
        part = EIGHTHS[round((cells - full) * 8)] if full < bar else ""
        drawn = ("█" * full + part.strip()) if cells > 0 else ""
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
            Text(" " * (_LABEL + 1) + "".join(labels).rstrip(), style=MUTED),
        ]


def _number(value: object) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, str):  # the chronicle writes non-finite numbers as strings
        try:
            return float(value)
        except ValueError:
            return float("nan")
    return float(value)  # type: ignore[arg-type]
