"""Attention as arcs, for SVG and HTML exports: bertviz's head view, as a standalone <svg>.

The sentence is written twice, queries on the left and keys on the right; a line joins each
token to every earlier token it attends to, as opaque as the weight (weights under 0.03 are
not drawn). A pronoun's lines are thicker and in the accent colour, and its expected
antecedent is bold on the right, so the resolution reads at a glance. Plain strings only:
tokens are escaped, nothing is fetched.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

import numpy as np

from fabric_cli.views.palette import literal

THEMES = {  # (page, text, muted lines, accent) on paper and in the dark
    "light": ("#ffffff", "#1d1d24", "#77778a", "#0a7ea8"),
    "dark": ("#0c0c0c", "#e4e4ec", "#9a9aae", "#5fd7ff"),
}
_ROW = 18  # pixels between two tokens
_SPAN = 140  # pixels between the two columns
_MIN_WEIGHT = 0.03
KEY = ("a line: attention, as opaque as its weight · coloured: a pronoun, its lines thick · "
       "bold on the right: its antecedent")


def attention_arcs_svg(tokens: Sequence[str], pattern: np.ndarray, *,
                       mark: Iterable[tuple[int, int]] = (), title: str = "",
                       theme: str = "light") -> str:
    """An <svg> of one head's attention on one sentence; mark: (pronoun, antecedent) rows."""
    page, ink, muted, accent = THEMES.get(theme, THEMES["light"])
    weights = np.asarray(pattern, dtype=np.float64)
    names = [literal(t) for t in tokens]
    n = len(names)
    marks = {int(q): int(k) for q, k in mark}
    col = 8 * min(16, max((len(t) for t in names), default=1)) + 16
    top = 30 if title else 10
    key = KEY if marks else KEY.split(" · ")[0]  # the key names only the marks drawn
    width = max(2 * col + _SPAN, 8 * len(title) + 16, 7 * len(key) + 16)  # room for both
    height = top + n * _ROW + 10 + 20
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, monospace" '
           f'font-size="13">'), f'<rect width="{width}" height="{height}" fill="{page}"/>']
    if title:
        out.append(f'<text x="8" y="18" fill="{ink}" font-weight="bold">{_esc(title)}</text>')
    for q in range(weights.shape[0]):
        for k in range(min(q + 1, weights.shape[1])):
            w = float(weights[q, k])
            if not np.isfinite(w) or w < _MIN_WEIGHT:
                continue
            pronoun = q in marks
            out.append(f'<line x1="{col + 4}" y1="{top + q * _ROW + 5}" x2="{col + _SPAN - 4}" '
                       f'y2="{top + k * _ROW + 5}" stroke="{accent if pronoun else muted}" '
                       f'stroke-width="{2.5 if pronoun else 1.4}" '
                       f'stroke-opacity="{min(1.0, w):.3f}"/>')
    antecedents = set(marks.values())
    for i, token in enumerate(names):
        y = top + i * _ROW + 9
        left = accent if i in marks else ink
        right = accent if i in antecedents else ink
        out.append(f'<text x="{col}" y="{y}" text-anchor="end" fill="{left}"'
                   f'{_bold(i in marks)}>{_esc(token[:16])}</text>')
        out.append(f'<text x="{col + _SPAN}" y="{y}" fill="{right}"'
                   f'{_bold(i in antecedents)}>{_esc(token[:16])}</text>')
    out.append(f'<text x="8" y="{height - 8}" fill="{muted}" font-size="11">'
               f'{_esc(key)}</text>')
    out.append("</svg>")
    return "".join(out)


def _bold(yes: bool) -> str:
    return ' font-weight="bold"' if yes else ""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)
