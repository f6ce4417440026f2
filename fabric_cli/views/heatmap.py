"""Attention as a picture: who each token looks at.

Rows are queries (the token attending, "from"), columns are keys (the token attended "to").
Labels stay horizontal: each row is "token index", and the columns are headed by the same
indices (every key is also a query row, so column 2 is the token on row 2). The causal upper
triangle is blank: a token cannot see its future. Each cell is a shade glyph (readable without
colour) in a colour from the perceptual ramp. The right margin names each row's strongest key
and its weight; a pronoun's row is flagged ▶, its expected antecedent carries a ◆ (and its
column index is bold), the word it chose instead (if it missed) a ×, and when the margin does
not fit, a line under the grid says what each pronoun chose.

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
ROW_GLYPH = "▶"  # a pronoun's row
MISS_GLYPH = "×"  # the word a pronoun chose, when it is not the expected antecedent
GAP_GLYPH = "┊"
_ANNOT_TOKEN = 10  # widest token named in the right margin ("scientists")


@dataclass(frozen=True)
class _Layout:
    cell: int  # characters per cell: 2 or 1
    token: int  # widest token in a row label
    annotate: bool  # right margin "→ token 0.82"
    shown: tuple[int, ...]  # key positions drawn, ascending
    framed: bool
    index: int = 2  # digits of the row / column index

    @property
    def label(self) -> int:
        """Row label: the pronoun flag, the token, a space, its index."""
        return 1 + self.token + 1 + self.index

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
    steady_legend: bool = False,
) -> RenderableType:
    """A token × token attention map (rows = query "from", columns = key "to").

    pattern: (T_q, T_k) weights in [0, 1]; tokens: the T_k key tokens (the queries are the
    last T_q of them). mark: (row, column) cells to flag as expected, e.g. pronoun ->
    antecedent. Fits max_width (or the console width), stating what it elided.
    steady_legend: for the frames of an animation, the legend is worded as if a pronoun
    missed (× its pick) in every frame, so it reads the same from the first frame to the last.
    """
    return AttentionHeatmap(
        tokens, pattern, title=title, mark=mark, max_width=max_width,
        show_strongest=show_strongest, steady_legend=steady_legend,
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
        steady_legend: bool = False,
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
        self.steady_legend = steady_legend
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
        digits = len(str(max(n_k - 1, 0)))
        everything = tuple(range(n_k))
        # Two-character cells hold an index up to 99 above each column; past that, one.
        wide_cells = 2 if n_k <= 100 else 1
        candidates = [
            (wide_cells, min(longest, 10), self.show_strongest),
            (wide_cells, min(longest, 8), self.show_strongest),
            (wide_cells, min(longest, 10), False),
            (wide_cells, min(longest, 8), False),
            (1, min(longest, 8), False),
            (1, min(longest, 5), False),
        ]
        for framed in (True, False):
            for cell, label, annotate in candidates:
                fit = _Layout(cell, max(label, 1), annotate, everything, framed, digits)
                if fit.width() <= width:
                    return fit
        # Too narrow for every column: keep the first token and the window that matters most.
        framed = width >= 30
        label = max(1, min(longest, 5))
        room = width - (FRAME_COLUMNS if framed else 0) - (1 + label + 1 + digits) - 1
        return _Layout(1, label, False, self._window(room), framed, digits)

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
        if not fit.annotate:
            lines.extend(self._choices(inner))
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
        """Column indices, horizontal (tens over units past 9). An antecedent's column is bold
        in the accent colour."""
        digits = [str(c) for c in fit.shown]
        if max((len(d) for d in digits), default=1) == 1:
            rows = [[d.rjust(fit.cell) for d in digits]]
        else:  # tens over units, so neighbouring indices never run together
            rows = [[(d[-2] if len(d) > 1 else " ").rjust(fit.cell) for d in digits],
                    [d[-1].rjust(fit.cell) for d in digits]]
        lines = []
        for cells in rows:
            line = Text(" " * (fit.label + 1), no_wrap=True)
            previous = None
            for c, cell in zip(fit.shown, cells, strict=True):
                if previous is not None and c - previous > 1:
                    line.append(" ")
                previous = c
                marked = self._is_marked_col(c)
                line.append(cell, style=Style(color=ACCENT, bold=True) if marked else MUTED)
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
        pronoun = any(rr == r for rr, _ in self.marks)
        line = Text()  # (a style given to Text() itself would colour the whole row)
        line.append(ROW_GLYPH if pronoun else " ", style=Style(color=ACCENT, bold=True))
        label = _fit_label(self.tokens[q], fit.token)
        label.stylize(Style(color=ACCENT, bold=True) if pronoun else "")
        line.append_text(label)
        line.append(" " + str(q).rjust(fit.index) + " ",
                    style=Style(color=ACCENT, bold=True) if pronoun else MUTED)
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
            elif pronoun and c == strongest:  # the pronoun chose another word than expected
                line.append(glyph[:-1], style=style)
                line.append(MISS_GLYPH, style=Style(color="red", bold=True))
            else:
                line.append(glyph, style=style)
        if fit.annotate:
            line.append_text(self._annotation(r, strongest))
        return line

    def _annotation(self, r: int, strongest: int, *, pad: bool = True) -> Text:
        w = float(self.weights[r, strongest])
        if not np.isfinite(w):
            return Text("  → ?", style=MUTED)
        if pad:  # the margin's numbers line up
            token = _fit_label(self.tokens[strongest], _ANNOT_TOKEN, right=False)
        else:
            token = Text(self.tokens[strongest])
        out = Text(" → ", style=MUTED) + token + Text(f" {w:.2f}", style=ramp_style(w))
        expected = [c for rr, c in self.marks if rr == r]
        if expected:
            hit = strongest in expected
            out.append(" ✓" if hit else " ✗", style="bold green" if hit else "bold red")
        return out

    def _misses(self) -> bool:
        return any(int(self.strongest[r]) not in {c for rr, c in self.marks if rr == r}
                   for r in {rr for rr, _ in self.marks})

    def _choices(self, width: int) -> list[Text]:
        """Under the grid, for each pronoun row: whom it looked at most, and whether that is
        the expected antecedent ("▶ her → professor 0.82 ✓")."""
        lines = []
        for r in sorted({rr for rr, _ in self.marks}):
            strongest = int(self.strongest[r])
            line = Text()
            line.append(ROW_GLYPH + " ", style=Style(color=ACCENT, bold=True))
            line.append(self.tokens[r + self.offset], style=Style(color=ACCENT, bold=True))
            line.append_text(self._annotation(r, strongest, pad=False))
            line.truncate(width, overflow="ellipsis")
            lines.append(line)
        return lines

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
        """The shade scale and the marks, in the longest wording that fits."""
        full = Text()
        bounds = ["<.05", "<.2", "<.4", "<.6", "≥.6"]
        assert len(bounds) == len(SHADE_EDGES) + 1
        for level, bound in enumerate(bounds):
            mid = (0.0, 0.12, 0.3, 0.5, 0.85)[level]
            full.append(SHADES_1[level], style=ramp_style(mid, bold=True))
            full.append(bound + " ", style=MUTED)
        short = Text()
        for level in range(len(SHADES_1)):
            short.append(SHADES_1[level], style=ramp_style(level / 4, bold=True))
        short.append(" 0…1 ", style=MUTED)
        # (pronoun, antecedent, pick): the marks are explained before the scale is spelled
        # out, and the antecedent's mark last of all: it carries the story
        wordings = ((" pronoun", " its antecedent", " its pick"),
                    (" pronoun", " antecedent", " pick"), (None, " antecedent", " pick"),
                    (None, " antecedent", None))
        tries = [(scale, words) for words in wordings for scale in (full, short)]
        for scale, words in [*tries, (full, None), (short, None)]:
            legend = scale.copy()
            legend.rstrip()
            if words and self.marks:
                row, antecedent, pick = words
                if row:
                    legend.append("  " + ROW_GLYPH, style=Style(color=ACCENT, bold=True))
                    legend.append(row, style=MUTED)
                legend.append("  " + MARK_GLYPH, style=Style(color=ACCENT, bold=True))
                legend.append(antecedent, style=MUTED)
                if pick and (self.steady_legend or self._misses()):
                    legend.append("  " + MISS_GLYPH, style=Style(color="red", bold=True))
                    legend.append(pick, style=MUTED)
            if legend.cell_len <= width:
                return legend
        return short


def _glyph(w: float, cell: int) -> str:
    if not np.isfinite(w):
        return "??"[:cell]
    level = shade_level(w)
    return SHADES_2[level] if cell == 2 else SHADES_1[level]


def _fit_label(token: str, width: int, *, right: bool = True) -> Text:
    text = Text(token, no_wrap=True)
    if text.cell_len > width:
        text.truncate(width, overflow="ellipsis")
    pad = " " * (width - text.cell_len)
    return Text(pad) + text if right else text + Text(pad)
