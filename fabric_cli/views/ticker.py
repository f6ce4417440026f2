"""The Moments panel: the latest moments, each under its speaker's name and colour.

    moments_panel(moments, width, lines=None)   moments: (step, component, text) tuples

Wide enough, a three-column grid (step, speaker, text); narrower than 50 columns, each
moment is one flowing paragraph with the speaker inline. With `lines`, only the newest
moments that fit in that many lines are shown, in a panel of exactly that height; when not
even the newest fits, its words are cut after the last whole word that fits, and an ellipsis
(…) says so: the panel's edge never cuts a sentence off silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.table import Table
from rich.text import Text

from fabric_cli.narrate.format import step as step_text
from fabric_cli.views.palette import BORDER, COMPONENT_NAMES, MUTED, component_color, component_name

Moment = tuple[int | None, str, str]

def moments_panel(moments: Sequence[Moment], width: int, lines: int | None = None
                  ) -> RenderableType:
    """The latest moments in a frame; with `lines`, only the newest that fit that many."""
    moments = list(moments)
    if not moments:
        return _panel(Text("no moments yet", style=MUTED), lines)
    body = _paragraphs if width < 50 else _grid  # narrow: the speaker inline, flowing
    if lines is None:
        return _panel(body(moments), None)
    console = Console(width=width, file=_Null(), color_system=None)

    def fits(shown: Sequence[Moment]) -> bool:
        panel = _panel(body(shown), None)
        return len(console.render_lines(panel, console.options.update_width(width))) <= lines

    for start in range(len(moments)):  # drop the oldest until the newest fit
        if fits(moments[start:]):
            return _panel(body(moments[start:]), lines)
    step, component, text = moments[-1]
    words = text.split()
    low, high = 1, len(words) - 1  # the most words that fit, found by halving
    while low < high:
        middle = (low + high + 1) // 2
        if fits([(step, component, _cut(words, middle))]):
            low = middle
        else:
            high = middle - 1
    return _panel(body([(step, component, _cut(words, low))]), lines)


def _cut(words: Sequence[str], n: int) -> str:
    """The first n words and an ellipsis, without a dangling comma or colon before it."""
    return " ".join(words[:n]).rstrip(",;:—-") + "…"


def _paragraphs(moments: Sequence[Moment]) -> Group:
    out = []
    for step, component, text in moments:
        line = Text("" if step is None else f"{step_text(step)} ", style=MUTED)
        if not text.startswith("L"):  # a head's line already starts with its name (L0H2)
            line.append(component_name(component) + " ",
                        style=Style(color=component_color(component), bold=True))
        line.append(text)
        out.append(line)
    return Group(*out)


def _grid(moments: Sequence[Moment]) -> Table:
    name_w = max(len(component_name(c)) for _, c, _ in moments)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", no_wrap=True, style=MUTED)
    grid.add_column(no_wrap=True, width=min(name_w, 12))
    grid.add_column(overflow="fold")
    for step, component, text in moments:
        name = Text(component_name(component),
                    style=Style(color=component_color(component), bold=True))
        if component not in COMPONENT_NAMES:
            name.stylize(MUTED)
        grid.add_row("" if step is None else step_text(step), name, Text(text))
    return grid


def _panel(body: RenderableType, lines: int | None) -> Panel:
    return Panel(body, title=Text("Moments", style="bold"), title_align="left",
                 box=box.ROUNDED, border_style=BORDER, padding=(0, 1), height=lines)


class _Null:
    """A file that swallows what a measuring console writes."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None
