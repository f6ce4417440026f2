"""The Loss over time, drawn in the terminal: a braille line above the entropy floor.

Two scales. `gap=False` (linear): the plot maps the data range exactly (no padding): the top
row holds the largest value, the bottom row the smallest; a value v lands on pixel row
round((hi - v) / (hi - lo) * (4·height - 1)), four braille pixels to a character row, so the
floor's dashed line is on character row pixel_row // 4, and the label of a row the floor
lands on is the floor's value. `gap=True` (needs a floor): the height is the distance to the
floor, loss − floor, on a log axis, so the last few hundredths of a nat stay as readable as
the first nats; the rows are labelled "+0.014" (nats above the floor), and a value at or
below the floor sits on the bottom row. Validation points are ●, moments are ▲ on the step
axis.
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

from fabric_cli.narrate.format import step as step_text
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
SMOOTHING = 0.05  # gap mode draws the train loss as an EMA (~20-step memory, as the moments)
_Y_LABEL = 7  # "+0.014" or "12.34" plus a space
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
    gap: bool = False,
) -> RenderableType:
    """A line plot of the training loss with the floor as a labelled dashed line, or with
    gap=True the distance above the floor on a log axis.

    width is the whole picture's width (frame included); it also shrinks to the console.
    """
    return LossCurve(
        steps, losses, floor=floor, val=val, width=width, height=height, marks=marks, title=title,
        gap=gap,
    )


def format_gap(value: float) -> str:
    """Nats above the floor in at most 6 characters: +3.49, +0.35, +0.014, +4e-03, +0."""
    if value <= 0:
        return "+0"
    if value >= 1e5:  # a storm's loss: "+4e+10", not eleven digits pushing the axis out
        return f"+{value:.0e}".replace("e+0", "e+")
    if value >= 0.1:
        return f"+{value:.2f}" if value < 100 else f"+{value:.0f}"
    if value >= 0.01:
        return f"+{value:.3f}"
    return f"+{value:.0e}".replace("e-0", "e-")


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
        gap: bool = False,
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
        self.gap = gap and self.floor is not None
        if self.gap:  # on a log axis a batch's noise near the floor would swamp the line
            self.losses = _ema(self.losses, SMOOTHING)
        self._span: tuple[float, float] | None = None
        self._range = self._value_range()

    def value_range(self) -> tuple[float, float]:
        """(lo, hi): the exact span of everything drawn (losses, validation, floor)."""
        return self._range

    def height_of(self, value: float) -> float:
        """Where a loss sits on the plot's axis: itself, or log10 of its gap to the floor."""
        if not self.gap:
            return value
        return math.log10(max(value - self.floor, self._smallest_gap))

    def _value_range(self) -> tuple[float, float]:
        if self.gap:
            gaps = [v - self.floor for v in self._drawn_values() if v - self.floor > 0]
            # a thousandth of a nat is as close as the picture resolves; below, the bottom row
            self._smallest_gap = max(min(gaps), 1e-3) if gaps else 1e-3
            gaps = [max(g, self._smallest_gap) for g in gaps]
            if not gaps:
                return (math.log10(1e-3) - 0.5, math.log10(1e-3) + 0.5)
            lo, hi = math.log10(min(gaps)), math.log10(max(gaps))
            return (lo - 0.5, hi + 0.5) if hi == lo else (lo, hi)
        finite = self.losses[np.isfinite(self.losses)]
        values = [float(finite.min()), float(finite.max())] if finite.size else []
        values += [v for _, v in self.val]
        if self.floor is not None:
            values.append(self.floor)
        if not values:
            return (0.0, 1.0)
        lo, hi = min(values), max(values)
        return (lo - 0.5, hi + 0.5) if hi == lo else (lo, hi)

    def _drawn_values(self) -> list[float]:
        """The per-pixel-column means the line is drawn from, and the validation points, so
        the axis spans what is drawn, not single noisy steps averaged away."""
        keep = np.isfinite(self.losses)
        values = [v for _, v in self.val]
        if keep.any():
            values += list(self._column_means(self.steps[keep], self.losses[keep], 160)[1])
        return values

    def pixel_row(self, value: float) -> int:
        lo, hi = self.value_range()
        row = round((hi - self.height_of(value)) / (hi - lo) * (4 * self.height - 1))
        return min(max(row, 0), 4 * self.height - 1)

    def row_value(self, row: int) -> float:
        """The loss (or gap) at the centre of a character row, in the axis' own units."""
        lo, hi = self.value_range()
        y = hi - (4 * row + 1.5) / (4 * self.height - 1) * (hi - lo)
        if row == 0:
            y = hi
        elif row == self.height - 1:
            y = lo
        return 10**y if self.gap else y

    def _column_means(self, steps: np.ndarray, losses: np.ndarray, pix_w: int
                      ) -> tuple[np.ndarray, np.ndarray]:
        s0, s1 = self._step_span()
        cols = np.clip(np.round((steps - s0) / (s1 - s0) * (pix_w - 1)).astype(int), 0, pix_w - 1)
        sums = np.bincount(cols, weights=losses, minlength=pix_w)
        counts = np.bincount(cols, minlength=pix_w)
        xs = np.nonzero(counts)[0]
        return xs, sums[xs] / counts[xs]

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
        floor_label = f" floor {self.floor:.3f}" if self.floor is not None and not self.gap else ""
        plot_w = max(4, inner - _Y_LABEL - 1 - len(floor_label))
        grid, floor_row = self._canvas(plot_w)
        label_rows = {0, self.height - 1, (self.height - 1) // 2}
        lines = []
        for r in range(self.height):
            label = ""
            if r == floor_row:  # the row the floor is drawn on says the floor's value
                label = f"{self.floor:.2f}"
            elif r in label_rows:
                value = self.row_value(r)
                label = format_gap(value) if self.gap else f"{value:.2f}"
            line = Text(label.rjust(_Y_LABEL - 1) + " ", style=MUTED)
            line.append("┤" if label else "│", style=AXIS)
            line.append_text(grid[r])
            if r == floor_row:
                line.append(floor_label, style=Style(color=FLOOR_COLOR, bold=True))
            lines.append(line)
        lines.extend(self._x_axis(plot_w))
        for legend in (self._legend(wide=True), self._legend(wide=False),
                       self._legend(wide=False, note=False)):
            if legend.cell_len <= inner:
                break
        lines.append(legend)
        return lines

    def _canvas(self, plot_w: int) -> tuple[list[Text], int | None]:
        """Braille cells for the line, then the floor dashes and validation dots on top."""
        height = self.height
        dots = [[0] * plot_w for _ in range(height)]  # plain lists: cell by cell, no NumPy
        pix_w = 2 * plot_w
        keep = np.isfinite(self.losses)
        steps, losses = self.steps[keep], self.losses[keep]
        s0, s1 = self._step_span()
        # One value per pixel column (mean of the steps that fall in it), joined vertically.
        xs, means = self._column_means(steps, losses, pix_w)
        previous = None
        for x, mean in zip(xs.tolist(), means.tolist(), strict=True):
            y = self.pixel_row(mean)
            y0, y1 = (y, y) if previous is None else sorted((previous[1], y))
            if previous is not None and x - previous[0] > 1:
                y0, y1 = y, y  # a gap in the data stays a gap
            for yy in range(y0, y1 + 1):
                dots[yy // 4][x // 2] |= _DOTS[x % 2][yy % 4]
            previous = (x, y)
        floor_row = None if self.floor is None or self.gap else self.pixel_row(self.floor) // 4
        if floor_row is not None:  # the floor runs on under the curve too: one dot a cell
            y = self.pixel_row(self.floor)
            for c in range(plot_w):
                if dots[floor_row][c]:
                    dots[floor_row][c] |= _DOTS[c % 2][y % 4]
        val_cells = set()
        for s, v in self.val:
            x = round((s - s0) / (s1 - s0) * (pix_w - 1)) // 2
            val_cells.add((self.pixel_row(v) // 4, min(max(x, 0), plot_w - 1)))
        styles = {
            "val": Style(color=VAL_COLOR, bold=True),
            "line": Style(color=LINE_COLOR),
            "floor": Style(color=FLOOR_COLOR),
            "": Style(),
        }
        rows = []
        for r in range(height):
            empty = (FLOOR_GLYPH, "floor") if r == floor_row else (" ", "")
            cells = [(VAL_GLYPH, "val") if (r, c) in val_cells
                     else (chr(0x2800 + d), "line") if d else empty
                     for c, d in enumerate(dots[r])]
            text = Text(no_wrap=True)  # cells merged into runs: fewer spans, faster
            for key, run in groupby(cells, key=lambda cell: cell[1]):
                text.append("".join(ch for ch, _ in run), style=styles[key])
            rows.append(text)
        return rows, floor_row

    def _step_span(self) -> tuple[float, float]:
        if self._span is None:  # asked for on every pixel column's way: worked out once
            drawn = self.steps[np.isfinite(self.losses)]
            candidates = [s for s, _ in self.val]
            if drawn.size:
                candidates += [float(drawn.min()), float(drawn.max())]
            s0, s1 = min(candidates), max(candidates)
            self._span = (s0, s1) if s1 > s0 else (s0, s0 + 1)
        return self._span

    def _x_axis(self, plot_w: int) -> list[Text]:
        s0, s1 = self._step_span()
        axis = ["─"] * plot_w
        for s, _ in self.marks:
            if s0 <= s <= s1:
                axis[round((s - s0) / (s1 - s0) * (plot_w - 1))] = MARK_GLYPH
        ruler = Text(" " * _Y_LABEL + "└", style=AXIS)
        for ch in axis:
            ruler.append(ch, style=Style(color=VAL_COLOR, bold=True) if ch == MARK_GLYPH else AXIS)
        left = step_text(s0)
        right = f"step {step_text(self.steps[-1] if self.steps.size else s1)}"
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

    def _legend(self, *, wide: bool, note: bool = True) -> Text:
        legend = Text(" " * (_Y_LABEL + 1))
        legend.append("⠉⠒⠤", style=LINE_COLOR)
        legend.append(" train (smoothed)" if self.gap and wide else " train", style=MUTED)
        if self.val:
            legend.append("  " + VAL_GLYPH, style=Style(color=VAL_COLOR, bold=True))
            legend.append(" validation" if wide else " val", style=MUTED)
        if self.gap and note:
            legend.append("  height: nats above the entropy floor (log)" if wide
                          else "  above floor (log)", style=MUTED)
        elif self.floor is not None and not self.gap:
            legend.append("  " + FLOOR_GLYPH * 2, style=FLOOR_COLOR)
            legend.append(" entropy floor" if wide else " floor", style=MUTED)
        return legend


def _ema(values: np.ndarray, alpha: float, block: int = 1000) -> np.ndarray:
    """Exponential moving average over the finite values (non-finite ones stay as they are,
    and the average carries over them), in NumPy: within a block of steps,
    y_k = d^(k+1)·y_prev + alpha·d^k·Σ_{j≤k} d^(-j)·x_j with d = 1 - alpha; blocks of 1000
    keep d^(-j) far from overflow. The first value starts the average (y_prev = x_0)."""
    out = values.astype(np.float64, copy=True)
    keep = np.isfinite(out)
    x = out[keep]
    if x.size == 0:
        return out
    d = 1.0 - alpha
    y = np.empty_like(x)
    previous = x[0]
    for start in range(0, x.size, block):
        chunk = x[start : start + block]
        k = np.arange(chunk.size)
        sums = np.cumsum(chunk * d ** (-k))
        y[start : start + chunk.size] = d ** (k + 1) * previous + alpha * d**k * sums
        previous = y[start + chunk.size - 1]
    out[keep] = y
    return out


def _finite_mean(chunk: np.ndarray) -> float:
    good = chunk[np.isfinite(chunk)]
    return float(good.mean()) if good.size else float("nan")
