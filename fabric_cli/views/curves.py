"""The Loss over time, drawn in the terminal: a braille line above the entropy floor.

The plot maps the data range exactly (no padding): the top row holds the largest value, the
bottom row the smallest. A value v lands on pixel row round((hi - v) / (hi - lo) * (4·height
- 1)), four braille pixels to a character row, so the floor's dashed line is on character row
pixel_row // 4. Validation points are ●, moments are ▲ on the step axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby

import numpy as np
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

from fabric_cli.views.palette import (
    AXIS,
    FRAME_COLUMNS,
    MUTED,
    SPARK,
    component_color,
    framed_lines,
    literal,
)

LINE_COLOR = component_color("loss")
VAL_COLOR = "#ffd75f"
FLOOR_COLOR = "#87d787"
FLOOR_GLYPH = "╌"
VAL_GLYPH = "●"
MARK_GLYPH = "▲"
_Y_LABEL = 6  # "12.34" plus a space
# Braille dot bits for (column, pixel row) inside one 2×4 character cell.
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))


def sparkline(values: Sequence[float], width: int) -> str:
    """Values as ▁▂▃▄▅▆▇█ in at most `width` characters (bin means); gaps for NaN/inf."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0 or width <= 0:
        return ""
    if data.size > width:
        data = np.array([_finite_mean(chunk) for chunk in np.array_split(data, width)])
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return " " * data.size
    lo, hi = float(finite.min()), float(finite.max())
    out = []
    for v in data:
        if not math.isfinite(v):
            out.append(" ")
        elif hi == lo:
            out.append(SPARK[len(SPARK) // 2])
        else:
            out.append(SPARK[min(len(SPARK) - 1, int((v - lo) / (hi - lo) * len(SPARK)))])
    return "".join(out)


def loss_curve(
    steps: Sequence[int],
    losses: Sequence[float],
    *,
    floor: float | None,
    val: Sequence[tuple[int, float]] | None = None,
    width: int = 60,
    height: int = 10,
    marks: Sequence[tuple[int, str]] = (),
    title: str = "Loss",
) -> RenderableType:
    """A line plot of the training loss with the floor as a labelled dashed line.

    width is the whole picture's width (frame included); it also shrinks to the console.
    """
    return LossCurve(
        steps, losses, floor=floor, val=val, width=width, height=height, marks=marks, title=title
    )


class LossCurve:
    def __init__(
        self,
        steps: Sequence[int],
        losses: Sequence[float],
        *,
        floor: float | None,
        val: Sequence[tuple[int, float]] | None,
        width: int,
        height: int,
        marks: Sequence[tuple[int, str]],
        title: str,
    ) -> None:
        self.steps = np.asarray(steps, dtype=np.float64)
        self.losses = np.asarray(losses, dtype=np.float64)
        n = min(self.steps.size, self.losses.size)
        self.steps, self.losses = self.steps[:n], self.losses[:n]
        self.floor = floor if floor is not None and math.isfinite(floor) else None
        self.val = [(float(s), float(v)) for s, v in (val or []) if math.isfinite(v)]
        self.width = max(10, int(width))
        self.height = max(3, int(height))
        self.marks = [(float(s), literal(label)) for s, label in marks]
        self.title = literal(title)
        self._range = self._value_range()

    def value_range(self) -> tuple[float, float]:
        """(lo, hi): the exact span of everything drawn (losses, validation, floor)."""
        return self._range

    def _value_range(self) -> tuple[float, float]:
        finite = self.losses[np.isfinite(self.losses)]
        values = [float(finite.min()), float(finite.max())] if finite.size else []
        values += [v for _, v in self.val]
        if self.floor is not None:
            values.append(self.floor)
        if not values:
            return (0.0, 1.0)
        lo, hi = min(values), max(values)
        return (lo - 0.5, hi + 0.5) if hi == lo else (lo, hi)

    def pixel_row(self, value: float) -> int:
        lo, hi = self.value_range()
        return round((hi - value) / (hi - lo) * (4 * self.height - 1))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = min(self.width, options.max_width)
        return Measurement(width, width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = min(self.width, options.max_width)
        framed = width >= 30
        inner = width - (FRAME_COLUMNS if framed else 0)
        yield framed_lines(self.title, self.render_lines(inner), inner, framed)

    def render_lines(self, inner: int) -> list[Text]:
        finite = np.isfinite(self.losses)
        if not finite.any():
            what = "no loss measured yet" if self.losses.size == 0 else "loss is not a number"
            return [Text(what, style=MUTED)]
        floor_label = f" floor {self.floor:.3f}" if self.floor is not None else ""
        plot_w = max(4, inner - _Y_LABEL - 1 - len(floor_label))
        grid, floor_row = self._canvas(plot_w)
        lo, hi = self.value_range()
        label_rows = {0: hi, self.height - 1: lo, (self.height - 1) // 2: None}
        lines = []
        for r in range(self.height):
            value = label_rows.get(r, "")
            if value is None:  # the middle label shows the value at that row's centre
                value = hi - (4 * r + 1.5) / (4 * self.height - 1) * (hi - lo)
            label = f"{value:.2f}" if value != "" else ""
            line = Text(label.rjust(_Y_LABEL - 1) + " ", style=MUTED)
            line.append("┤" if label else "│", style=AXIS)
            line.append_text(grid[r])
            if r == floor_row:
                line.append(floor_label, style=Style(color=FLOOR_COLOR, bold=True))
            lines.append(line)
        lines.extend(self._x_axis(plot_w))
        lines.append(self._legend(wide=inner >= _Y_LABEL + 46))
        return lines

    def _canvas(self, plot_w: int) -> tuple[list[Text], int | None]:
        """Braille cells for the line, then the floor dashes and validation dots on top."""
        height = self.height
        dots = np.zeros((height, plot_w), dtype=np.int32)
        pix_w = 2 * plot_w
        keep = np.isfinite(self.losses)
        steps, losses = self.steps[keep], self.losses[keep]
        s0, s1 = self._step_span()
        cols = np.clip(np.round((steps - s0) / (s1 - s0) * (pix_w - 1)).astype(int), 0, pix_w - 1)
        # One value per pixel column (mean of the steps that fall in it), joined vertically.
        sums = np.bincount(cols, weights=losses, minlength=pix_w)
        counts = np.bincount(cols, minlength=pix_w)
        previous = None
        for x in np.nonzero(counts)[0]:
            y = self.pixel_row(sums[x] / counts[x])
            y0, y1 = (y, y) if previous is None else sorted((previous[1], y))
            if previous is not None and x - previous[0] > 1:
                y0, y1 = y, y  # a gap in the data stays a gap
            for yy in range(y0, y1 + 1):
                dots[yy // 4, x // 2] |= _DOTS[x % 2][yy % 4]
            previous = (x, y)
        floor_row = None if self.floor is None else self.pixel_row(self.floor) // 4
        val_cells = {}
        for s, v in self.val:
            x = round((s - s0) / (s1 - s0) * (pix_w - 1)) // 2
            val_cells[(self.pixel_row(v) // 4, min(max(x, 0), plot_w - 1))] = True
        styles = {
            "val": Style(color=VAL_COLOR, bold=True),
            "line": Style(color=LINE_COLOR),
            "floor": Style(color=FLOOR_COLOR),
            "": Style(),
        }
        rows = []
        for r in range(height):
            cells = []  # (character, style key), merged into runs below: fewer spans, faster
            for c in range(plot_w):
                if (r, c) in val_cells:
                    cells.append((VAL_GLYPH, "val"))
                elif dots[r, c]:
                    cells.append((chr(0x2800 + int(dots[r, c])), "line"))
                elif r == floor_row:
                    cells.append((FLOOR_GLYPH, "floor"))
                else:
                    cells.append((" ", ""))
            text = Text(no_wrap=True)
            for key, run in groupby(cells, key=lambda cell: cell[1]):
                text.append("".join(ch for ch, _ in run), style=styles[key])
            rows.append(text)
        return rows, floor_row

    def _step_span(self) -> tuple[float, float]:
        candidates = list(self.steps[np.isfinite(self.losses)]) + [s for s, _ in self.val]
        s0, s1 = min(candidates), max(candidates)
        return (s0, s1) if s1 > s0 else (s0, s0 + 1)

    def _x_axis(self, plot_w: int) -> list[Text]:
        s0, s1 = self._step_span()
        axis = ["─"] * plot_w
        for s, _ in self.marks:
            if s0 <= s <= s1:
                axis[round((s - s0) / (s1 - s0) * (plot_w - 1))] = MARK_GLYPH
        ruler = Text(" " * _Y_LABEL + "└", style=AXIS)
        for ch in axis:
            ruler.append(ch, style=Style(color=VAL_COLOR, bold=True) if ch == MARK_GLYPH else AXIS)
        left, right = f"{int(s0)}", f"step {int(self.steps[-1] if self.steps.size else s1)}"
        gap = max(1, plot_w + 1 - len(left) - len(right))
        labels = Text(" " * _Y_LABEL + left + " " * gap + right, style=MUTED)
        out = [ruler, labels]
        if self.marks:
            notes = Text(" " * (_Y_LABEL + 1))
            for s, label in self.marks:
                notes.append(MARK_GLYPH, style=Style(color=VAL_COLOR, bold=True))
                notes.append(f"{int(s)} {label}  ", style=MUTED)
            out.append(notes)
        return out

    def _legend(self, *, wide: bool) -> Text:
        legend = Text(" " * (_Y_LABEL + 1))
        legend.append("⠉⠒⠤", style=LINE_COLOR)
        legend.append(" train", style=MUTED)
        if self.val:
            legend.append("  " + VAL_GLYPH, style=Style(color=VAL_COLOR, bold=True))
            legend.append(" validation" if wide else " val", style=MUTED)
        if self.floor is not None:
            legend.append("  " + FLOOR_GLYPH * 2, style=FLOOR_COLOR)
            legend.append(" entropy floor" if wide else " floor", style=MUTED)
        return legend


def _finite_mean(chunk: np.ndarray) -> float:
    good = chunk[np.isfinite(chunk)]
    return float(good.mean()) if good.size else float("nan")
