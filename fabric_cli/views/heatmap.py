"""Attention as a picture: who each token looks at.

Rows are queries (the token attending, "from"), columns are keys (the token attended "to").
The causal upper triangle is blank: a token cannot see its future. Each cell is a shade glyph
(readable without colour) in a colour from the perceptual ramp. The right margin names each
row's strongest key and its weight; expected cells (pronoun -> antecedent) carry a ◆.

When the sentence is too wide for the terminal, cells shrink to one character, then the
leading tokens are elided (the first token, often an attention sink, is kept), and a note
says exactly which positions are not shown.

`mini_heatmap` and `heads_grid` (the one-character-per-cell maps for every head) live in
views/minimap.py and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

from fabric_cli.errors import FabricError
from fabric_cli.views.minimap import heads_grid, mini_heatmap
from fabric_cli.views.palette import (
    ACCENT,
    BORDER,
    FRAME_COLUMNS,
    MUTED,
    SHADE_EDGES,
    SHADES_1,
    SHADES_2,
    frame,
    literal,
    ramp_style,
    shade_level,
)

__all__ = ["AttentionHeatmap", "attention_heatmap", "heads_grid", "mini_heatmap"]

MARK_GLYPH = "◆"
GAP_GLYPH = "┊"
_MAX_HEADER = 7  # tallest vertical column label, in lines
_ANNOT_TOKEN = 8  # widest token named in the right margin


@dataclass(frozen=True)
class _Layout:
    cell: int  # characters per cell: 2 or 1
    label: int  # row label width
    annotate: bool  # right margin "→ token 0.82"
    shown: tuple[int, ...]  # key positions drawn, ascending
    framed: bool

    @property
    def gaps(self) -> int:
        return sum(1 for a, b in zip(self.shown, self.shown[1:], strict=False) if b - a > 1)

    def inner_width(self) -> int:
        annot = 3 + _ANNOT_TOKEN + 1 + 4 + 2 if self.annotate else 0
        return self.label + 1 + len(self.shown) * self.cell + self.gaps + annot

    def width(self) -> int:
        return self.inner_width() + (FRAME_COLUMNS if self.framed else 0)


def attention_heatmap(
    tokens: Sequence[str],
    pattern: np.ndarray,
    *,
    title: str = "",
    mark: Iterable[tuple[int, int]] = (),
    max_width: int | None = None,
    show_strongest: bool = True,
) -> RenderableType:
    """A token × token attention map (rows = query "from", columns = key "to").

    pattern: (T_q, T_k) weights in [0, 1]; tokens: the T_k key tokens (the queries are the
    last T_q of them). mark: (row, column) cells to flag as expected, e.g. pronoun ->
    antecedent. Fits max_width (or the console width), stating what it elided.
    """
    return AttentionHeatmap(
        tokens, pattern, title=title, mark=mark, max_width=max_width, show_strongest=show_strongest
    )


class AttentionHeatmap:
    """The renderable behind attention_heatmap; lays itself out for the width it is given."""

    def __init__(
        self,
        tokens: Sequence[str],
        pattern: np.ndarray,
        *,
        title: str = "",
        mark: Iterable[tuple[int, int]] = (),
        max_width: int | None = None,
        show_strongest: bool = True,
    ) -> None:
        weights = np.asarray(pattern, dtype=np.float64)
        if weights.ndim != 2:
            raise FabricError(f"attention pattern must be 2-D (queries × keys), got {weights.ndim}-D")
        n_q, n_k = weights.shape
        if len(tokens) != n_k:
            raise FabricError(
                f"attention pattern has {n_k} key columns but {len(tokens)} tokens were given"
            )
        if n_q > n_k:
            raise FabricError(f"attention pattern has more queries ({n_q}) than keys ({n_k})")
        self.tokens = [literal(t) for t in tokens]
        self.weights = weights
        self.offset = n_k - n_q  # query row r sits at key position offset + r
        self.title = literal(title)
        self.max_width = max_width
        self.show_strongest = show_strongest
        self.marks = {(int(r), int(c)) for r, c in mark if 0 <= r < n_q and 0 <= c < n_k}
        visible = np.where(self._causal_mask(), np.nan_to_num(weights, nan=-1.0), -np.inf)
        self.strongest = visible.argmax(axis=1) if n_q and n_k else np.zeros(0, dtype=int)

    def _causal_mask(self) -> np.ndarray:
        n_q, n_k = self.weights.shape
        rows = np.arange(n_q)[:, None] + self.offset
        return np.arange(n_k)[None, :] <= rows

    # -- layout -----------------------------------------------------------------------------

    def layout(self, width: int) -> _Layout:
        n_k = len(self.tokens)
        longest = max((cell_len(t) for t in self.tokens), default=1)
        everything = tuple(range(n_k))
        candidates = [
            (2, min(longest, 10), self.show_strongest),
            (2, min(longest, 8), self.show_strongest),
            (2, min(longest, 8), False),
            (1, min(longest, 8), False),
            (1, min(longest, 5), False),
        ]
        for framed in (True, False):
            for cell, label, annotate in candidates:
                fit = _Layout(cell, max(label, 1), annotate, everything, framed)
                if fit.width() <= width:
                    return fit
        # Too narrow for every column: keep the first token and the window that matters most.
        framed = width >= 30
        label = max(1, min(longest, 5))
        room = width - (FRAME_COLUMNS if framed else 0) - label - 1
        return _Layout(1, label, False, self._window(room), framed)

    def _window(self, room: int) -> tuple[int, ...]:
        n_k = len(self.tokens)
        if room >= n_k:
            return tuple(range(n_k))
        length = max(1, room - 2)  # one column for position 0, one for the gap glyph
        start = n_k - length
        mark_cols = [c for _, c in self.marks if c > 0]
        if mark_cols:  # keep the expected cells in view: the story is about them
            start = min(start, min(mark_cols))
        start = max(1, start)
        window = tuple(range(start, min(n_k, start + length)))
        return ((0,) + window) if room >= 3 else window[-max(1, room):]

    # -- drawing ----------------------------------------------------------------------------

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self.layout(self._width(options)).width()
        return Measurement(width, width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render(self._width(options))

    def _width(self, options: ConsoleOptions) -> int:
        width = options.max_width
        return width if self.max_width is None else min(width, self.max_width)

    def render(self, width: int) -> RenderableType:
        fit = self.layout(width)
        inner = fit.inner_width()
        lines = self._header(fit) + self._rows(fit)
        lines.append(self._legend(inner))
        for line in lines:
            line.no_wrap = True
            line.truncate(inner, overflow="ellipsis")
        note = self._elision_note(fit)
        if note:  # prose: it may wrap, it must not be cut
            lines.insert(-1, Text(note, style=MUTED))
        body = Group(*lines)
        if not fit.framed:
            if self.title:
                title = Text(self.title, style="bold", no_wrap=True)
                title.truncate(width, overflow="ellipsis")
                return Group(title, body)
            return body
        return frame(body, self.title)

    def _header(self, fit: _Layout) -> list[Text]:
        """Column labels written vertically, bottom-aligned so each word ends at the grid."""
        labels = [_vertical(self.tokens[c]) for c in fit.shown]
        height = min(_MAX_HEADER, max((len(chars) for chars in labels), default=0))
        lines = []
        for i in range(height):
            line = Text(" " * (fit.label + 1))
            previous = None
            for c, chars in zip(fit.shown, labels, strict=True):
                if previous is not None and c - previous > 1:
                    line.append(" ")
                previous = c
                chars = chars if len(chars) <= height else chars[: height - 1] + ["…"]
                k = i - (height - len(chars))
                ch = chars[k] if k >= 0 else " "
                line.append(ch.ljust(fit.cell), style="bold" if self._is_marked_col(c) else MUTED)
            lines.append(line)
        return lines

    def _is_marked_col(self, col: int) -> bool:
        return any(c == col for _, c in self.marks)

    def _rows(self, fit: _Layout) -> list[Text]:
        shown_rows = [p - self.offset for p in fit.shown if p >= self.offset]
        lines: list[Text] = []
        previous = None
        for r in shown_rows:
            if previous is not None and r - previous > 1:
                lines.append(Text("…".rjust(fit.label), style=MUTED))
            previous = r
            lines.append(self._row(fit, r))
        return lines

    def _row(self, fit: _Layout, r: int) -> Text:
        q = r + self.offset
        line = _fit_label(self.tokens[q], fit.label)
        line.append(" ")
        strongest = int(self.strongest[r])
        previous = None
        for c in fit.shown:
            if previous is not None and c - previous > 1:
                line.append(GAP_GLYPH, style=BORDER)
            previous = c
            if c > q:
                line.append(" " * fit.cell)
                continue
            w = float(self.weights[r, c])
            glyph = _glyph(w, fit.cell)
            style = ramp_style(w, bold=self.show_strongest and c == strongest)
            if (r, c) in self.marks:
                line.append(glyph[:-1], style=style)
                line.append(MARK_GLYPH, style=Style(color=ACCENT, bold=True))
            else:
                line.append(glyph, style=style)
        if fit.annotate:
            line.append_text(self._annotation(r, strongest))
        return line

    def _annotation(self, r: int, strongest: int) -> Text:
        w = float(self.weights[r, strongest])
        if not np.isfinite(w):
            return Text("  → ?", style=MUTED)
        token = _fit_label(self.tokens[strongest], _ANNOT_TOKEN, right=False)
        out = Text(" → ", style=MUTED) + token + Text(f" {w:.2f}", style=ramp_style(w))
        expected = [c for rr, c in self.marks if rr == r]
        if expected:
            hit = strongest in expected
            out.append(" ✓" if hit else " ✗", style="bold green" if hit else "bold red")
        return out

    def _elision_note(self, fit: _Layout) -> str:
        n_k = len(self.tokens)
        missing = sorted(set(range(n_k)) - set(fit.shown))
        if not missing:
            return ""
        spans = []
        start = prev = missing[0]
        for p in missing[1:] + [None]:
            if p is not None and p == prev + 1:
                prev = p
                continue
            spans.append(f"{start}" if start == prev else f"{start}–{prev}")
            if p is not None:
                start = prev = p
        return f"{len(missing)} of {n_k} positions not shown ({', '.join(spans)})"

    def _legend(self, width: int) -> Text:
        full = Text()
        bounds = ["<.05", "<.2", "<.4", "<.6", "≥.6"]
        assert len(bounds) == len(SHADE_EDGES) + 1
        for level, bound in enumerate(bounds):
            mid = (0.0, 0.12, 0.3, 0.5, 0.85)[level]
            full.append(SHADES_1[level], style=ramp_style(mid, bold=True))
            full.append(bound + " ", style=MUTED)
        if self.marks:
            full.append(" " + MARK_GLYPH, style=Style(color=ACCENT, bold=True))
            full.append(" expected", style=MUTED)
        if full.cell_len <= width:
            return full
        short = Text()
        for level in range(len(SHADES_1)):
            short.append(SHADES_1[level], style=ramp_style(level / 4, bold=True))
        short.append(" 0…1", style=MUTED)
        return short


def _glyph(w: float, cell: int) -> str:
    if not np.isfinite(w):
        return "??"[:cell]
    level = shade_level(w)
    return SHADES_2[level] if cell == 2 else SHADES_1[level]


def _vertical(token: str) -> list[str]:
    # One terminal column per character; wide characters (CJK, emoji) would break the grid.
    return [ch if cell_len(ch) == 1 else "?" for ch in token] or [" "]


def _fit_label(token: str, width: int, *, right: bool = True) -> Text:
    text = Text(token, no_wrap=True)
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    pad = " " * (width - text.cell_len)
    return Text(pad) + text if right else text + Text(pad)
