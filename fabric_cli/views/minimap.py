"""Every head at once: one character per attention weight, one small map per head.

A mini map is the heatmap in one character per cell: rows are queries, columns keys, the
causal upper triangle blank, each weight a shade glyph ("·░▒▓█") in the ramp's colour.
`heads_grid` lays them out layer by layer (L0 on top, as in the head table), labelled "L0H2",
each row labelled "token index" and each map headed by the units digit of its columns'
indices (0123456789012…), so a cell can be found without colour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

from fabric_cli.errors import FabricError
from fabric_cli.views.palette import ACCENT, MUTED, SHADES_1, literal, ramp_style, shade_level

_ROW_LABEL = 6  # widest token shown beside a grid row when room is short
_WHOLE_LABEL = 12  # … and when there is room for whole words
_GAP = 2  # columns between two mini maps


def mini_heatmap(
    pattern: np.ndarray, tokens: Sequence[str] | None = None, *, label_width: int = _ROW_LABEL
) -> Text:
    """One character per cell; with tokens, each row starts with its (abbreviated) token."""
    weights = _as_pattern(pattern)
    n_q, n_k = weights.shape
    if tokens is not None and len(tokens) != n_k:
        raise FabricError(f"attention pattern has {n_k} key columns but {len(tokens)} tokens")
    lines = []
    for r, row in enumerate(weights):
        q = r + n_k - n_q
        line = Text(no_wrap=True)
        if tokens is not None:
            line.append(_abbreviate(tokens[q], label_width).rjust(label_width) + " ", style=MUTED)
        line.append_text(_cells(row[: q + 1]))
        line.append(" " * (n_k - q - 1))
        lines.append(line)
    return Text("\n", no_wrap=True).join(lines)


def heads_grid(
    maps: Mapping[tuple[int, int], np.ndarray],
    tokens: Sequence[str],
    max_width: int | None = None,
    *,
    captions: Mapping[tuple[int, int], str] | None = None,
    highlight: Sequence[tuple[int, int]] = (),
) -> RenderableType:
    """Mini maps for every (layer, head), one line of maps per layer, wrapping if needed.

    captions: a short line under a map (e.g. "pron .82"); highlight: heads whose label is drawn
    in the head's colour with a ★ (e.g. specialists).
    """
    return HeadsGrid(maps, tokens, max_width, captions=captions or {}, highlight=highlight)


class HeadsGrid:
    def __init__(
        self,
        maps: Mapping[tuple[int, int], np.ndarray],
        tokens: Sequence[str],
        max_width: int | None,
        *,
        captions: Mapping[tuple[int, int], str],
        highlight: Sequence[tuple[int, int]],
    ) -> None:
        self.maps = {(int(k[0]), int(k[1])): _as_pattern(v) for k, v in maps.items()}
        self.tokens = [literal(t) for t in tokens]
        for key, weights in self.maps.items():
            if weights.shape[1] != len(self.tokens):
                raise FabricError(
                    f"attention map L{key[0]}H{key[1]} has {weights.shape[1]} key columns "
                    f"but {len(self.tokens)} tokens were given"
                )
        self.max_width = max_width
        self.captions = {k: literal(v) for k, v in captions.items()}
        self.highlight = {(int(a), int(b)) for a, b in highlight}

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        limit = self._width(options)
        width = min(limit, max((line.cell_len for line in self.render_lines(limit)), default=0))
        return Measurement(width, width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Group(*self.render_lines(self._width(options)))

    def _width(self, options: ConsoleOptions) -> int:
        return options.max_width if self.max_width is None else min(options.max_width, self.max_width)

    def render_lines(self, width: int) -> list[Text]:
        if not self.maps:
            return [Text("no attention maps yet", style=MUTED)]
        n_k = len(self.tokens)
        self._digits = len(str(max(n_k - 1, 0)))
        # a row label is "token index"
        longest = max((len(t) for t in self.tokens), default=1)
        heads_per_layer = max(sum(1 for lay, _ in self.maps if lay == layer)
                              for layer in {lay for lay, _ in self.maps})
        whole = min(_WHOLE_LABEL, longest) + 1 + self._digits
        # whole words when a layer's maps still fit on one line beside them, else abbreviated
        if whole + 1 + heads_per_layer * (max(n_k, 6) + _GAP) <= width:
            label_w = whole
        else:
            label_w = min(_ROW_LABEL, longest) + 1 + self._digits
        caption_w = max((len(c) for c in self.captions.values()), default=0)
        # Crop to the last `keep` tokens if even one map does not fit beside the row labels.
        keep = max(1, min(n_k, width - label_w - 1))
        label_len = max(len(self._label(key)) for key in self.maps)  # "L0H2", "L1H2 ★"
        cell_w = max(keep, label_len, min(caption_w, 12))
        per_line = max(1, (width - label_w - 1 + _GAP) // (cell_w + _GAP))
        lines: list[Text] = []
        layers = sorted({layer for layer, _ in self.maps})
        for layer in layers:
            heads = sorted(h for (lay, h) in self.maps if lay == layer)
            for start in range(0, len(heads), per_line):
                lines.extend(self._band(layer, heads[start : start + per_line], keep, cell_w, label_w))
        for line in lines:
            line.no_wrap = True
            line.truncate(width, overflow="ellipsis")
        if keep < n_k:  # prose: it may wrap, it must not be cut
            lines.append(Text(f"first {n_k - keep} of {n_k} tokens not shown", style=MUTED))
        return lines

    def _label(self, key: tuple[int, int]) -> str:
        return f"L{key[0]}H{key[1]}" + (" ★" if key in self.highlight else "")

    def _band(
        self, layer: int, heads: list[int], keep: int, cell_w: int, label_w: int
    ) -> list[Text]:
        """One line of mini maps: a label line, the map rows, and captions if any."""
        n_k = len(self.tokens)
        first = n_k - keep
        gap = " " * _GAP
        title = Text(" " * (label_w + 1), no_wrap=True)
        for i, h in enumerate(heads):
            star = (layer, h) in self.highlight
            style = Style(color=ACCENT, bold=True) if star else Style(bold=True)
            title.append((gap if i else "") + self._label((layer, h)).ljust(cell_w), style)
        out = [title]
        # the key columns' numbers, read downwards: tens over units past 9 ("1" over "0" is
        # 10), hundreds over tens past 99
        places = len(str(max(n_k - 1, 0)))
        rows = ["".join(str(k // 10 ** p % 10) if k >= 10 ** p or p == 0 else " "
                        for k in range(first, n_k)) for p in reversed(range(places))]
        for digits in rows:
            index = Text(" " * (label_w + 1), no_wrap=True)
            for i, _ in enumerate(heads):
                index.append((gap if i else "") + digits.ljust(cell_w), style=MUTED)
            out.append(index)
        blocks = [self.maps[(layer, h)] for h in heads]
        n_q = blocks[0].shape[0]
        for r in range(n_q):
            q = r + n_k - n_q
            if q < first:
                continue
            word_w = label_w - 1 - self._digits
            label = _abbreviate(self.tokens[q], word_w).rjust(word_w) + " " + \
                str(q).rjust(self._digits)
            line = Text(label + " ", style=MUTED)
            for i, weights in enumerate(blocks):
                if i:
                    line.append(gap)
                cells = _cells(weights[r, first : q + 1]) if r < weights.shape[0] else Text()
                line.append_text(cells)
                line.append(" " * (cell_w - cells.cell_len))
            out.append(line)
        if any((layer, h) in self.captions for h in heads):
            caption = Text(" " * (label_w + 1))
            for i, h in enumerate(heads):
                text = self.captions.get((layer, h), "")[:cell_w]
                caption.append((gap if i else "") + text.ljust(cell_w), style=MUTED)
            out.append(caption)
        out.append(Text(""))
        return out


def _cells(row: np.ndarray) -> Text:
    text = Text(no_wrap=True)
    for w in row:
        w = float(w)
        glyph = SHADES_1[shade_level(w)] if np.isfinite(w) else "?"
        text.append(glyph, style=ramp_style(w))
    return text


def _as_pattern(pattern: np.ndarray) -> np.ndarray:
    weights = np.asarray(pattern, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] > weights.shape[1]:
        raise FabricError(f"attention pattern must be queries × keys, got shape {weights.shape}")
    return weights


def _abbreviate(token: str, width: int) -> str:
    token = "".join(ch if cell_len(ch) == 1 else "?" for ch in literal(token))
    return token if len(token) <= width else token[: max(1, width - 1)] + "…"
