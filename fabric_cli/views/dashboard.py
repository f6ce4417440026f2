"""The live picture during `fabric train`, fed plain numbers by the train command.

    ┌ progress: step, loss, validation loss, floor, tokens/s, ETA ─────────────────┐
    │ loss curve over the floor          │ best pronoun head's attention map     │
    │ gradient flow (skip / block bars)  │ the last moments, each by its speaker │

The train command wraps a TrainingDashboard in rich.live.Live (about 4 refreshes a second)
and calls its update methods from the trainer's events. Parts that did not change since the
last refresh are not laid out again: each part's rendered lines are cached by (version,
width). Narrow terminals get the parts stacked; short ones drop the heatmap first.
`plain_progress_line` is the same information as one line of plain text for pipes and logs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from fabric_cli.views.curves import LossCurve
from fabric_cli.views.gradflow import GradientFlow
from fabric_cli.views.heatmap import AttentionHeatmap
from fabric_cli.views.palette import (
    ACCENT,
    AXIS,
    BORDER,
    COMPONENT_NAMES,
    MUTED,
    component_color,
    component_name,
    literal,
)

TICKER_LINES = 5
_SIDE_BY_SIDE = 100  # narrower than this, parts are stacked
_CURVE_HEIGHT = 8

Lines = list[list[Segment]]


def format_eta(seconds: float | None) -> str:
    """0:41, 12:03, 1:02:03; "--:--" when not known yet."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(tokens_per_s: float | None) -> str:
    if tokens_per_s is None or not math.isfinite(tokens_per_s):
        return "— tok/s"
    if tokens_per_s >= 1e6:
        return f"{tokens_per_s / 1e6:.1f}M tok/s"
    if tokens_per_s >= 1e3:
        return f"{tokens_per_s / 1e3:.1f}k tok/s"
    return f"{tokens_per_s:.0f} tok/s"


def _format_loss(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if math.isfinite(value) else str(value)


def plain_progress_line(
    step: int,
    total: int,
    loss: float | None,
    val_loss: float | None,
    floor: float | None,
    tokens_per_s: float | None,
    eta: float | None,
) -> str:
    """One line for pipes and logs: no colour, no escape codes, fixed field order."""
    width = len(str(total))
    percent = 100.0 * step / total if total else 0.0
    parts = [f"step {step:>{width}}/{total}", f"{percent:3.0f}%", f"loss {_format_loss(loss)}"]
    if val_loss is not None:
        parts.append(f"val {_format_loss(val_loss)}")
    if floor is not None:
        above = f" ({loss - floor:+.3f})" if loss is not None and math.isfinite(loss) else ""
        parts.append(f"floor {floor:.3f}{above}")
    parts += [format_rate(tokens_per_s), f"eta {format_eta(eta)}"]
    return literal("  ".join(parts))


class TrainingDashboard:
    """A rich renderable holding the latest training state; cheap to render again and again."""

    def __init__(self, *, title: str = "fabric train", total: int = 0, floor: float | None = None,
                 max_width: int | None = None) -> None:
        self.title = literal(title)
        self.step = 0
        self.total = int(total)
        self.eta: float | None = None
        self.tokens_per_s: float | None = None
        self.floor = floor
        self.max_width = max_width
        self.loss_steps: list[int] = []
        self.losses: list[float] = []
        self.val: list[tuple[int, float]] = []
        self.grad_rows: list[Mapping[str, Any]] = []
        self.grad_embed: float | None = None
        self.head: dict[str, Any] | None = None
        self.moments: deque[tuple[int | None, str, str]] = deque(maxlen=TICKER_LINES)
        self._versions = {"curve": 0, "grad": 0, "head": 0, "ticker": 0}
        self._cache: dict[str, tuple[tuple[int, int], Lines]] = {}

    # -- feeding ----------------------------------------------------------------------------

    def update(self, **state: Any) -> None:
        """Any of: step, total, eta, tokens_per_s, loss, val_loss, floor, grad_flow,
        grad_embed, head=(layer, head, tokens, pattern[, score]), moment=(component, text)."""
        if "step" in state or "total" in state or "eta" in state or "tokens_per_s" in state:
            self.update_progress(state.get("step", self.step), state.get("total"),
                                 eta=state.get("eta", self.eta),
                                 tokens_per_s=state.get("tokens_per_s", self.tokens_per_s))
        if state.get("floor") is not None:
            self.set_floor(state["floor"])
        if state.get("loss") is not None:
            self.add_loss(self.step, state["loss"])
        if state.get("val_loss") is not None:
            self.add_val(self.step, state["val_loss"])
        if state.get("grad_flow") is not None:
            self.set_grad_flow(state["grad_flow"], embed=state.get("grad_embed"))
        if state.get("head") is not None:
            self.set_head(*state["head"])
        if state.get("moment") is not None:
            self.add_moment(*state["moment"])

    def update_progress(self, step: int, total: int | None = None, *, eta: float | None = None,
                        tokens_per_s: float | None = None) -> None:
        self.step = int(step)
        if total is not None:
            self.total = int(total)
        self.eta = eta
        self.tokens_per_s = tokens_per_s

    def add_loss(self, step: int, loss: float) -> None:
        self.loss_steps.append(int(step))
        self.losses.append(float(loss))
        self._versions["curve"] += 1

    def add_val(self, step: int, val_loss: float) -> None:
        self.val.append((int(step), float(val_loss)))
        self._versions["curve"] += 1

    def set_floor(self, floor: float | None) -> None:
        self.floor = floor
        self._versions["curve"] += 1

    def set_grad_flow(self, rows: Sequence[Mapping[str, Any]], embed: float | None = None) -> None:
        self.grad_rows = list(rows)
        self.grad_embed = embed
        self._versions["grad"] += 1

    def set_head(self, layer: int, head: int, tokens: Sequence[str], pattern: np.ndarray,
                 score: float | None = None, mark: Iterable[tuple[int, int]] = ()) -> None:
        """The head to watch (usually the best pronoun tracker) on the story sentence."""
        self.head = {"layer": int(layer), "head": int(head), "tokens": list(tokens),
                     "pattern": np.array(pattern, dtype=np.float64), "score": score,
                     "mark": list(mark), "step": self.step}
        self._versions["head"] += 1

    def add_moment(self, component: str, text: str, step: int | None = None) -> None:
        self.moments.append((self.step if step is None else step, component, literal(text)))
        self._versions["ticker"] += 1

    # -- drawing ----------------------------------------------------------------------------

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width if self.max_width is None else min(options.max_width,
                                                                     self.max_width)
        height = options.height or options.size.height
        options = options.update(width=width, height=None)
        rows: list[Lines] = [
            self._render(console, options, "header", -1, width, lambda: self._header(width))
        ]
        if width >= _SIDE_BY_SIDE:
            left = (width - 1) * 11 // 20
            right = width - 1 - left
            rows.append(self._pair(console, options, ("curve", left), ("head", right)))
            rows.append(self._pair(console, options, ("grad", left), ("ticker", right)))
        else:
            for part in ("curve", "grad", "head", "ticker"):
                rows.append(self._render(console, options, part, self._versions[part], width,
                                         self._factory(part, width)))
        if height and sum(len(r) for r in rows) > height and self.head is not None:
            rows = self._without_head(console, options, width, rows)
        for lines in rows:
            for line in lines:
                yield from line
                yield Segment.line()

    def _without_head(self, console: Console, options: ConsoleOptions, width: int,
                      rows: list[Lines]) -> list[Lines]:
        """Short terminal: the attention map is the first thing to give way."""
        if width >= _SIDE_BY_SIDE:
            left = (width - 1) // 2
            pair = self._pair(console, options, ("curve", left), ("grad", width - 1 - left))
            return [rows[0], pair, self._render(console, options, "ticker",
                                                self._versions["ticker"], width,
                                                self._factory("ticker", width))]
        return [r for i, r in enumerate(rows) if i != 3]

    def _pair(self, console: Console, options: ConsoleOptions, left: tuple[str, int],
              right: tuple[str, int]) -> Lines:
        a = self._render(console, options, left[0], self._versions[left[0]], left[1],
                         self._factory(left[0], left[1]))
        b = self._render(console, options, right[0], self._versions[right[0]], right[1],
                         self._factory(right[0], right[1]))
        blank_a, blank_b = [Segment(" " * left[1])], [Segment(" " * right[1])]
        return [
            (a[i] if i < len(a) else blank_a) + [Segment(" ")] + (b[i] if i < len(b) else blank_b)
            for i in range(max(len(a), len(b)))
        ]

    def _render(self, console: Console, options: ConsoleOptions, key: str, version: int,
                width: int, factory: Callable[[], RenderableType]) -> Lines:
        stamp = (version, width)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp and version >= 0:
            return cached[1]
        lines = console.render_lines(factory(), options.update_width(width), pad=True)
        self._cache[key] = (stamp, lines)
        return lines

    def _factory(self, part: str, width: int) -> Callable[[], RenderableType]:
        return {
            "curve": lambda: LossCurve(self.loss_steps, self.losses, floor=self.floor,
                                       val=self.val, width=width, height=_CURVE_HEIGHT,
                                       marks=(), title="Loss, the Fabric's judgment"),
            "grad": lambda: GradientFlow(self.grad_rows, embed=self.grad_embed, max_width=width,
                                         title="Gradient flow, latest step"),
            "head": lambda: self._head_view(width),
            "ticker": lambda: self._ticker(width),
        }[part]

    def _header(self, width: int) -> RenderableType:
        """Title, progress bar, loss facts, speed: on one line when they fit, else on several."""
        total = max(self.total, 1)
        frac = min(1.0, max(0.0, self.step / total))
        step = f"step {self.step}/{self.total}"
        bar_w = max(8, min(24, width - len(step) - 8))
        filled = round(frac * bar_w)
        progress = Text("━" * filled, style=Style(color=ACCENT))
        progress.append("─" * (bar_w - filled), style=AXIS)
        progress.append(f" {frac:4.0%}  ", style="bold")
        progress.append(step)
        loss = self.losses[-1] if self.losses else None
        facts = Text("loss ", style=MUTED)
        facts.append(_format_loss(loss), style=Style(color=component_color("loss"), bold=True))
        if self.val:
            facts.append("  val ", style=MUTED)
            facts.append(_format_loss(self.val[-1][1]), style="bold")
        if self.floor is not None:
            facts.append("  floor ", style=MUTED)
            facts.append(f"{self.floor:.3f}", style="bold")
            if loss is not None and math.isfinite(loss):
                facts.append(f" ({loss - self.floor:+.3f})", style=MUTED)
        speed = Text(format_rate(self.tokens_per_s), style=MUTED)
        speed.append("  ETA ", style=MUTED)
        speed.append(format_eta(self.eta), style="bold")
        pieces = [Text(self.title, style=Style(bold=True)), progress, facts, speed]
        lines: list[Text] = []
        for piece in pieces:  # greedy: each piece joins the current line if it still fits
            if lines and lines[-1].cell_len + 2 + piece.cell_len <= width:
                lines[-1] = Text.assemble(lines[-1], "  ", piece)
            else:
                lines.append(piece)
        return Group(*lines)

    def _head_view(self, width: int) -> RenderableType:
        if self.head is None:
            return Text("no attention probed yet: the first probe draws the best pronoun head",
                        style=MUTED)
        h = self.head
        score = f" · pronoun score {h['score']:.2f}" if h["score"] is not None else ""
        title = f"L{h['layer']}H{h['head']}{score} · step {h['step']}"
        return AttentionHeatmap(h["tokens"], h["pattern"], title=title, mark=h["mark"],
                                max_width=width)

    def _ticker(self, width: int) -> RenderableType:
        if not self.moments:
            body: RenderableType = Text("no moments yet", style=MUTED)
        else:
            body = self._ticker_grid()
        return Panel(body, title=Text("Moments", style="bold"), title_align="left",
                     box=box.ROUNDED, border_style=BORDER, padding=(0, 1))

    def _ticker_grid(self) -> Table:
        name_w = max(len(component_name(c)) for _, c, _ in self.moments)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", no_wrap=True, style=MUTED)
        grid.add_column(no_wrap=True, width=min(name_w, 12))
        grid.add_column(overflow="fold")
        for step, component, text in self.moments:
            name = Text(component_name(component),
                        style=Style(color=component_color(component), bold=True))
            if component not in COMPONENT_NAMES:
                name.stylize(MUTED)
            grid.add_row("" if step is None else str(step), name, Text(text))
        return grid
