"""A head's query/key space as a character scatter: early beside late.

Each panel plots one probe's `qk_space` for one head (analysis/qkspace.py): the head's queries
at a handful of pronouns (q), their antecedents' keys (A) and the keys of the other words
before them (.). The axes are that probe's own plane: x along the head's mean pronoun query,
so a key further right gets a higher score from it, y along what separates antecedent keys
from the others. Both axes share one scale (a character row counts as two columns, about a
cell's shape), so angles and distances are not stretched; the origin (+) is always in view,
because a score q·k is measured from it. Under each panel: the step, the gap of
qk_alignment (antecedent − others, in q·k/√d_head), and how much of the vectors' squared
length the plane holds. Glyphs carry everything without colour.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text

from fabric_cli.narrate.format import whole_pct
from fabric_cli.views.palette import MUTED

QUERY, ANTECEDENT, OTHER, BOTH, ORIGIN = "q", "A", ".", "*", "+"
STYLES = {QUERY: Style(color="#ff6fae", bold=True), ANTECEDENT: Style(color="#5fd7af", bold=True),
          BOTH: Style(color="#ffd75f", bold=True), OTHER: Style(color="grey62"),
          ORIGIN: Style(color="grey50"), "|": Style(color="grey35"),
          "-": Style(color="grey35")}
LEGEND = (
    f"{QUERY} a pronoun's query   {ANTECEDENT} its antecedent's key   {OTHER} another word's key",
    f"{BOTH} q and A in one cell   {ORIGIN} the origin (a score q·k is measured from it)",
)
ROW_ASPECT = 2.0  # a character row is about twice as tall as a column is wide


def scale(points: Sequence[Sequence[float]], width: int, height: int) -> tuple[float, float,
                                                                                  float]:
    """(units per column, x at the left edge, y at the top edge): every point and the origin
    fit, one unit of y drawn as tall as one of x is wide."""
    xs = [p[0] for p in points] + [0.0]
    ys = [p[1] for p in points] + [0.0]
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    unit = max(span_x / max(width - 1, 1), span_y / (ROW_ASPECT * max(height - 1, 1)), 1e-12)
    left = (max(xs) + min(xs)) / 2 - unit * (width - 1) / 2
    top = (max(ys) + min(ys)) / 2 + unit * ROW_ASPECT * (height - 1) / 2
    return unit, left, top


def cell(point: Sequence[float], frame: tuple[float, float, float]) -> tuple[int, int]:
    """(row, column) of a point."""
    unit, left, top = frame
    return round((top - point[1]) / (unit * ROW_ASPECT)), round((point[0] - left) / unit)


def grid(space: dict, width: int, height: int) -> list[list[str]]:
    """The panel's characters, rows top to bottom."""
    groups = [(OTHER, space.get("others") or []), (ANTECEDENT, space.get("antecedents") or []),
              (QUERY, space.get("queries") or [])]
    frame = scale(_points(space), width, height)
    rows = [[" "] * width for _ in range(height)]
    r0, c0 = cell((0.0, 0.0), frame)
    for c in range(width):
        rows[r0][c] = "-"
    for r in range(height):
        rows[r][c0] = "|"
    rows[r0][c0] = ORIGIN
    for glyph, points in groups:  # later groups are drawn over earlier ones
        for p in points:
            r, c = cell(p, frame)
            here = rows[r][c]
            rows[r][c] = BOTH if {here, glyph} == {QUERY, ANTECEDENT} or here == BOTH else glyph
    return rows


def _fmt(x: object) -> str:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "?"
    return f"{v:.3g}"


def caption(frame: dict, unit: float | None = None) -> list[str]:
    """Under a panel: the step and qk_alignment's gap, its two terms, the plane's share."""
    align = frame.get("alignment") or {}
    lines = [f"step {frame['step']:,}"]
    if align.get("gap") is not None:
        lines[0] += f" · gap {_fmt(align['gap'])}"
        lines.append(f"antecedent {_fmt(align.get('antecedent'))}, others "
                     f"{_fmt(align.get('others'))}")
    lines.append(f"plane holds {whole_pct(float(frame.get('kept', 0.0)))} of length²")
    if unit is not None:
        lines.append(f"one column = {unit:.2g}, one row = {unit * ROW_ASPECT:.2g}")
    return lines


def _points(frame: dict) -> list:
    return [p for key in ("others", "antecedents", "queries") for p in frame.get(key) or []]


def _panel(frame: dict, width: int, height: int) -> list[Text]:
    unit = scale(_points(frame), width, height)[0]
    out = []
    for row in grid(frame, width, height):
        line = Text()
        for ch in row:
            line.append(ch, STYLES.get(ch))
        out.append(line)
    return out + [Text(c[:width], style=MUTED if i else "bold") for i, c in
                  enumerate(caption(frame, unit))]


def qk_scatter(frames: Sequence[dict], head: tuple[int, int], max_width: int = 80,
               height: int | None = None) -> RenderableType:
    """Early and late panels side by side (one above the other when narrower than 60
    columns). `frames`: the first and the last probe's qk_space for this head, each with its
    `step`."""
    title = Text(f"L{head[0]}H{head[1]}: queries at pronouns against the keys before them",
                 style="bold")
    if not frames:
        return Group(title, Text("no probe recorded this head's query/key space (a run "
                                 "trained before it was measured)", style=MUTED))
    side = max_width >= 60 and len(frames) > 1
    width = max(20, min(56, (max_width - 3) // 2 if side else max_width - 1))
    rows = height or max(9, min(15, width // 3))
    panels = [_panel(f, width, rows) for f in frames]
    body: list[RenderableType] = [title]
    if side:
        for left, right in zip(*panels, strict=True):
            line = Text()
            line.append_text(left)
            line.append(" " * (width - len(left.plain) + 3))
            line.append_text(right)
            body.append(line)
    else:
        for panel in panels:
            body += [*panel, Text("")]
    body += [*(Text(line, style=MUTED) for line in LEGEND),
             Text("each panel in its own plane and scale: x along the head's mean query at "
                  "these pronouns (right = scored higher by it), y along antecedent − other "
                  "keys", style=MUTED)]
    return Group(*body)
