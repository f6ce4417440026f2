"""The live picture during `fabric train`, fed plain numbers by the train command.

    ┌ progress: step, loss, validation loss, floor, tokens/s, ETA ─────────────────┐
    │ loss above the floor (log)         │ the followed pronoun head's attention │
    │ gradient flow (skip / block / sum) │ the last moments, each by its speaker │

The train command wraps a TrainingDashboard in rich.live.Live (about 4 refreshes a second)
and calls its update methods from the trainer's events. Parts that did not change since the
last refresh are not laid out again: each part's rendered lines are cached by (version,
width). When the full layout is taller than the terminal (80×24), the compact one keeps the
attention map whole in the right column over the newest moments, and stacks a shorter curve
over a compact gradient flow on the left; nothing is ever drawn past the terminal's height.
The gradient flow keeps one axis for the whole run (GradientScale). `plain_progress_line` is
the same information as one line of plain text for pipes and logs.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from fabric_cli.narrate.format import step as step_text
from fabric_cli.views.curves import LossCurve
from fabric_cli.views.gradflow import GradientFlow, GradientScale
from fabric_cli.views.heatmap import AttentionHeatmap
from fabric_cli.views.palette import (
    ACCENT,
    AXIS,
    MUTED,
    component_color,
    literal,
)
from fabric_cli.views.ticker import moments_panel

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
    if not math.isfinite(value):
        return str(value)
    # a storm's loss runs to 1e10 and more: "1.029e+10", not eleven digits and ".000"
    return f"{value:.3f}" if abs(value) < 1e4 else f"{value:.4g}"


def _format_gap(gap: float) -> str:
    """Loss minus floor, signed: "+1.112", "+1.029e+10"."""
    return ("+" if gap >= 0 else "") + _format_loss(gap)


def plain_progress_line(
    step: int,
    total: int,
    loss: float | None,
    val_loss: float | None,
    floor: float | None,
    tokens_per_s: float | None,
    eta: float | None,
    val_step: int | None = None,
) -> str:
    """One line for pipes and logs: no colour, no escape codes, fixed field order. The
    validation loss is the last probe's: its step is named when it is not this one's."""
    width = len(step_text(total))
    percent = 100.0 * step / total if total else 0.0
    parts = [f"step {step_text(step):>{width}}/{step_text(total)}", f"{percent:3.0f}%", f"loss {_format_loss(loss)}"]
    if val_loss is not None:
        stale = val_step is not None and val_step != step
        parts.append(f"val {_format_loss(val_loss)}" + (f" (step {step_text(val_step)})"
                                                         if stale else ""))
    if floor is not None:
        above = ""
        if loss is not None and math.isfinite(loss):
            above = f" ({_format_gap(loss - floor)})"
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
        self.grad_scale = GradientScale()  # one axis for every frame: it only ever widens
        self.head: dict[str, Any] | None = None
        self.moments: deque[tuple[int | None, str, str]] = deque(maxlen=TICKER_LINES)
        self._versions = {"curve": 0, "grad": 0, "head": 0, "ticker": 0}
        self._cache: dict[str, tuple[tuple[int, int], Lines]] = {}
        self._full_fits: dict[tuple, bool] = {}

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
        self.grad_scale.update(self.grad_rows, embed)
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
        header = self._render(console, options, "header", -1, width, lambda: self._header(width))
        rows: list[Lines] = []
        # Whether the full layout fits changes only when a part's height can: cache the answer
        # so that a short terminal does not lay out the full picture on every refresh.
        shape = (width, height, self._versions["head"], self._versions["ticker"],
                 len(self.grad_rows), self.grad_embed is None)
        rows = []
        if self._full_fits.get(shape, True):
            rows = [header, *self._full(console, options, width,
                                        height - len(header) if height else None)]
            self._full_fits = {shape: not height or sum(len(r) for r in rows) <= height}
        if not self._full_fits[shape]:
            rows = [header, *self._compact(console, options, width, height - len(header))]
        lines = [line for part in rows for line in part]
        if height:
            lines = lines[:height]  # never more than the terminal: Live would cut it untidily
        for line in lines:
            yield from line
            yield Segment.line()

    def _full(self, console: Console, options: ConsoleOptions, width: int,
              height: int | None) -> list[Lines]:
        """Tall terminals: curve and attention side by side, gradient flow beside the moments
        (stacked when narrower than _SIDE_BY_SIDE). The moments get the rows the rest leaves
        (at least the gradient panel's height): long moments at the end of a run drop the
        oldest, not the full picture's sum rows and axis."""
        if width >= _SIDE_BY_SIDE:
            left = (width - 1) * 11 // 20
            right = width - 1 - left
            top = self._pair(console, options, ("curve", left, "full"), ("head", right, "full"))
            grad = self._part(console, options, "grad", left, "full")
            room = None if height is None else max(len(grad), height - len(top))
            ticker = self._ticker_within(console, options, right, room)
            return [top, self._join(grad, ticker, left, right)]
        parts = [self._part(console, options, part, width, "full")
                 for part in ("curve", "grad", "head")]
        room = None if height is None else height - sum(len(p) for p in parts)
        return [*parts, self._ticker_within(console, options, width, room)]

    def _ticker_within(self, console: Console, options: ConsoleOptions, width: int,
                       room: int | None) -> Lines:
        """The moments as tall as they need, or the newest that fit in `room` rows."""
        ticker = self._part(console, options, "ticker", width, "full")
        if room is None or len(ticker) <= room or room < 3:
            return ticker
        return self._part(console, options, "ticker", width, f"lines{room}")

    def _compact(self, console: Console, options: ConsoleOptions, width: int,
                 height: int) -> list[Lines]:
        """Short terminals (80×24): two columns. Left, a shorter loss curve over the gradient
        flow (no axis ruler, no sum rows, at most three layers); right, the attention map, kept
        whole, over as many of the latest moments as fit. Too narrow for two columns: the
        attention map first, then the rest, cut at the terminal's height."""
        right = self._head_width(width)
        left = width - 1 - right
        if left < 30:
            return [self._part(console, options, part, width, "compact")
                    for part in ("head", "curve", "grad")]
        head = self._part(console, options, "head", right, "compact")
        grad = self._part(console, options, "grad", left, "compact")
        for curve_height in range(_CURVE_HEIGHT - 2, 2, -1):
            curve = self._part(console, options, "curve", left, f"compact{curve_height}")
            if len(curve) + len(grad) <= height:
                break
        column = curve + grad
        tall = min(max(len(column), len(head) + 3), max(height, len(head) + 3))
        ticker = self._part(console, options, "ticker", right, f"lines{tall - len(head)}")
        return [self._join(column, head + ticker, left, right)]

    def _head_width(self, width: int) -> int:
        """The attention map's natural width in a compact layout (no right margin): as much
        as it needs for two-character cells and whole words, leaving the curve 35 columns."""
        most = max(28, width - 1 - 35)
        if self.head is None:
            return min(most, max(28, width * 2 // 5))
        view = AttentionHeatmap(self.head["tokens"], self.head["pattern"], mark=self.head["mark"],
                                show_strongest=False)
        return min(most, max(28, view.layout(most).width()))

    def _part(self, console: Console, options: ConsoleOptions, part: str, width: int,
              variant: str) -> Lines:
        return self._render(console, options, f"{part}:{variant}", self._versions[part], width,
                            self._factory(part, width, variant))

    def _pair(self, console: Console, options: ConsoleOptions, left: tuple[str, int, str],
              right: tuple[str, int, str]) -> Lines:
        a = self._part(console, options, left[0], left[1], left[2])
        b = self._part(console, options, right[0], right[1], right[2])
        return self._join(a, b, left[1], right[1])

    @staticmethod
    def _join(a: Lines, b: Lines, left: int, right: int) -> Lines:
        blank_a, blank_b = [Segment(" " * left)], [Segment(" " * right)]
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

    def _factory(self, part: str, width: int, variant: str = "full"
                 ) -> Callable[[], RenderableType]:
        compact = variant != "full"
        curve_height = int(variant[7:]) if variant[7:].isdigit() else _CURVE_HEIGHT
        max_layers = 3 if compact else None
        ticker_lines = int(variant[5:]) if variant.startswith("lines") else None
        return {
            "curve": lambda: LossCurve(self.loss_steps, self.losses, floor=self.floor,
                                       val=self.val, width=width, height=curve_height,
                                       marks=(), gap=self.floor is not None,
                                       title="Loss above the floor" if compact else
                                       "Loss, the Fabric's judgment: distance to the floor"),
            "grad": lambda: GradientFlow(self.grad_rows, embed=self.grad_embed, max_width=width,
                                         title="Gradient flow, latest step",
                                         scale=self.grad_scale.span, compact=compact,
                                         max_layers=max_layers),
            "head": lambda: self._head_view(width, compact=compact),
            "ticker": lambda: self._ticker(width, ticker_lines),
        }[part]

    def _header(self, width: int) -> RenderableType:
        """Title, progress bar, loss facts, speed: on one line when they fit, else on several."""
        total = max(self.total, 1)
        frac = min(1.0, max(0.0, self.step / total))
        step = f"step {step_text(self.step)}/{step_text(self.total)}"
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
                facts.append(f" ({_format_gap(loss - self.floor)})", style=MUTED)
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

    def _head_view(self, width: int, *, compact: bool = False) -> RenderableType:
        if self.head is None:
            return Text("no attention probed yet: the first probe draws the best pronoun head",
                        style=MUTED)
        h = self.head
        name = f"L{h['layer']}H{h['head']}"
        if compact:
            score = f" · score {h['score']:.2f}" if h["score"] is not None else ""
            title = f"{name}{score}"
        else:
            score = f" · pronoun score {h['score']:.2f}" if h["score"] is not None else ""
            title = f"{name}{score} · step {step_text(h['step'])}"
        return AttentionHeatmap(h["tokens"], h["pattern"], title=title, mark=h["mark"],
                                max_width=width, show_strongest=not compact)

    def _ticker(self, width: int, lines: int | None = None) -> RenderableType:
        return moments_panel(list(self.moments), width, lines)
