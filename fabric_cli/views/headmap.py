"""Who each head became: a layer × head table of roles, scores and causal evidence.

Each cell names the head's role (with a glyph, so it reads without colour), its score (the
fraction of attention mass on the role's cells), held-out accuracy for pronoun trackers, and
for specialists (★) what zeroing the head did to the loss and accuracy after its tokens.
Layer 0 is the top row, as in "L0H2".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.constrain import Constrain
from rich.measure import Measurement
from rich.style import Style
from rich.table import Table
from rich.text import Text

from fabric_cli.narrate.format import whole_pct
from fabric_cli.views.palette import ACCENT, BORDER, MUTED, literal

# role key (as probes and the chronicle name it) -> (label, glyph, colour)
ROLES: dict[str, tuple[str, str, str]] = {
    "pronoun": ("pronoun tracker", "◆", ACCENT),
    "verb": ("to verb", "▲", "#d7af5f"),
    "noun": ("to noun", "■", "#afd75f"),
    "prev": ("previous token", "←", "#b48cff"),
    "self": ("self", "○", "#ff6fae"),
    "first": ("first token", "⇤", "#6fa8ff"),
    "diffuse": ("diffuse", "∴", MUTED),
}
SPECIALIST_GLYPH = "★"
# the same roles in a narrow grid cell
SHORT_LABELS = {"pronoun": "pronoun", "prev": "previous", "first": "first"}


def role_label(role: str) -> str:
    """The words for a role key ("prev" -> "previous token"); unknown keys shown as given."""
    key = _role_key(role)
    return ROLES[key][0] if key in ROLES else literal(role)


def head_role_map(
    heads: Sequence[Mapping[str, Any]],
    n_layers: int,
    n_heads: int,
    *,
    max_width: int | None = None,
    title: str = "What each head became",
) -> RenderableType:
    """A layer × head table; heads missing from `heads` are shown as "—"."""
    return HeadRoleMap(heads, n_layers, n_heads, max_width=max_width, title=title)


class HeadRoleMap:
    def __init__(
        self,
        heads: Sequence[Mapping[str, Any]],
        n_layers: int,
        n_heads: int,
        *,
        max_width: int | None,
        title: str,
    ) -> None:
        self.by_position = {(int(h["layer"]), int(h["head"])): h for h in heads}
        self.n_layers = int(n_layers)
        self.n_heads = int(n_heads)
        self.max_width = max_width
        self.title = literal(title)

    def _width(self, options: ConsoleOptions) -> int:
        return options.max_width if self.max_width is None else min(options.max_width, self.max_width)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = self._width(options)
        measured = Measurement.get(console, options.update_width(width), self.table(width))
        return measured.clamp(max_width=width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = self._width(options)
        yield Constrain(self.table(width), width)

    def table(self, width: int) -> Table:
        """A layer × head grid when it fits; otherwise one row per head (narrow terminals)."""
        grid = width >= 18 * self.n_heads + 6
        table = Table(
            title=Text(self.title, style="bold"),
            title_justify="left",
            box=box.ROUNDED,
            border_style=BORDER,
            show_lines=grid,
            header_style=Style(bold=True),
            caption=self._caption(),
            caption_justify="left",
            padding=(0, 1),
        )
        if not grid:
            table.add_column("head", style="bold", no_wrap=True)
            table.add_column("role, score, evidence", overflow="fold")
            for layer in range(self.n_layers):
                for h in range(self.n_heads):
                    cell = self._cell(self.by_position.get((layer, h)), one_line=True)
                    table.add_row(Text(f"L{layer}H{h}"), cell)
            return table
        table.add_column("", style="bold", no_wrap=True)
        for h in range(self.n_heads):
            table.add_column(f"H{h}", overflow="fold")
        # a cell's room: the table less the layer column, the rules and the padding
        room = (width - 6 - 3 * self.n_heads) // max(1, self.n_heads)
        positions = [(layer, h) for layer in range(self.n_layers) for h in range(self.n_heads)]
        # The roomiest wording whose every line fits, the same for every cell: a fact that
        # does not fit would be folded mid-fact ("acc" alone, "100%→100%" beneath).
        for short, stacked in ((False, False), (False, True), (True, True)):
            cells = {p: self._cell(self.by_position.get(p), short=short, stacked=stacked)
                     for p in positions}
            widest = max(_widest(cell) for cell in cells.values())
            if widest <= room:
                break
        for column in table.columns[1:]:  # every head as wide as the widest: an even grid
            column.min_width = min(widest, room)
        for layer in range(self.n_layers):
            table.add_row(Text(f"L{layer}"), *(cells[(layer, h)] for h in range(self.n_heads)))
        return table

    def _caption(self) -> Text:
        caption = Text(SPECIALIST_GLYPH, style=Style(color=ACCENT, bold=True))
        # one fact a line: at 80 columns " · " folded "score:" from its meaning
        caption.append(" specialist: zeroing it (alone, or with its team) hurts\n"
                       "score: attention mass on its cells", MUTED)
        return caption

    def _cell(self, head: Mapping[str, Any] | None, *, one_line: bool = False,
              short: bool = False, stacked: bool = False) -> Text:
        """short: a narrow grid cell (80 columns), so the role's name is its key ("pronoun");
        stacked: each ablation fact has a line of its own ("zeroed:", "loss …", "acc …")."""
        if head is None:
            return Text("—", style=MUTED)
        key = _role_key(str(head.get("role", "diffuse")))
        label, glyph, color = ROLES.get(key, (literal(str(head.get("role"))), "?", MUTED))
        if short:
            label = SHORT_LABELS.get(key, label)
        specialist = bool(head.get("specialist"))
        cell = Text()
        cell.append(glyph + " ", style=Style(color=color, bold=True))
        cell.append(label, style=Style(color=color, bold=specialist))
        if specialist:
            cell.append(" " + SPECIALIST_GLYPH, style=Style(color=ACCENT, bold=True))
        plain = "" if specialist else MUTED
        # One fact per line in the grid; score and held-out share a line in the narrow list.
        facts = []
        score = _finite(head.get("score"))
        if score is not None:
            facts.append(f"score {score:.2f}")
        heldout = _finite(head.get("heldout_acc"))
        if heldout is not None:
            facts.append(f"held-out {whole_pct(heldout)}")
        if facts:
            cell.append("\n" + ("  " if one_line else "\n").join(facts), style=plain)
        ablation = head.get("ablation")
        if specialist and isinstance(ablation, Mapping):
            cell.append_text(_ablation_lines(ablation, stacked=stacked))
        team = head.get("team_ablation")
        if specialist and isinstance(team, Mapping):
            cell.append_text(_ablation_lines(team, label="with team:", stacked=stacked))
        return cell


def _ablation_lines(ablation: Mapping[str, Any], label: str = "zeroed:", *,
                    stacked: bool = False) -> Text:
    """What zeroing the head did: "zeroed: loss 1.20→1.85" and "acc 91%→42%" beneath
    (stacked: the label on a line of its own, then "loss …" and "acc …")."""
    out = Text()
    before, after = _finite(ablation.get("loss_before")), _finite(ablation.get("loss_after"))
    acc_before, acc_after = _finite(ablation.get("acc_before")), _finite(ablation.get("acc_after"))
    if before is None and acc_before is None:
        return out
    out.append("\n" + label, style=MUTED)
    if before is not None and after is not None:
        out.append("\n" if stacked else " ")
        out.append(f"loss {before:.2f}→{after:.2f}", style="bold" if after > before else "")
    if acc_before is not None and acc_after is not None:
        out.append("\n" if stacked else "\n" + " " * len(label), style=MUTED)
        worse = acc_after < acc_before
        out.append(f"{'' if stacked else ' '}acc {whole_pct(acc_before)}→{whole_pct(acc_after)}",
                   style="bold" if worse else "")
    return out


def _widest(cell: Text) -> int:
    return max((line.cell_len for line in cell.split("\n")), default=0)


def _role_key(role: str) -> str:
    role = role.strip().lower()
    aliases = {"pronoun tracker": "pronoun", "previous token": "prev", "previous": "prev",
               "first token": "first", "to verb": "verb", "to noun": "noun"}
    return aliases.get(role, role)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
