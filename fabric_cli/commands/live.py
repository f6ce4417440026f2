"""What `fabric train` shows while it trains: subscribers to the Trainer's events.

LivePicture animates the dashboard in a terminal; PlainTicker prints plain lines (no escape
codes) when stdout is a pipe or a log. Both tell the moments with the narrators' ticker lines,
the same words `fabric narrate` uses.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable

import numpy as np
from rich.console import Console
from rich.live import Live

from fabric_cli.commands._common import literal, quiet_control_echo
from fabric_cli.narrate import ticker_line
from fabric_cli.narrate.format import step as step_text
from fabric_cli.views.dashboard import TrainingDashboard, plain_progress_line

REFRESH_SECONDS = 0.25  # the picture redraws at most 4 times a second,
DRAWING_SHARE = 0.025  # and less often when a redraw is slow: at most this share of the time
# (a redraw costs 5-8 ms at 120x40 on a loaded 2-core machine, more on wide terminals; the
# picture's budget in all, events included, is 3% of a run, measured by
# scripts/bench_train.py). The wait before the next redraw is the median of the last few
# redraws' cost over this share.
# A probe or a moment is drawn at once, unless a redraw came less than BURST_SECONDS before:
# a probe and its moments arrive together a few ms apart, and drawing each would cost a
# fifth of all the drawing for frames no one sees. The burst is drawn once, on the first
# event this long after the last redraw (steps come every ~20 ms).
BURST_SECONDS = 0.1


class _Progress:
    """Rates and ETA from the step events."""

    def __init__(self) -> None:
        self.total = 0
        self.seed = 0
        self.floor: float | None = None
        self.val_loss: float | None = None
        self.val_step: int | None = None  # the probe that measured val_loss
        self.t0 = time.perf_counter()
        self.first_step: int | None = None
        self.tokens = 0

    def on_start(self, event: dict) -> None:
        self.total = int(event["training"]["steps"])
        self.seed = int(event["seed"])
        self.floor = event["floor"].get("train")
        self.t0 = time.perf_counter()
        self.first_step = None
        self.tokens = 0

    def on_step(self, event: dict) -> tuple[float, float]:
        if self.first_step is None:
            # t0 stays at run_start: timing from the first step's own end would divide its
            # tokens by ~0 s and show an absurd rate
            self.first_step = event["step"] - 1
        self.tokens += event["tokens"]
        spent = max(time.perf_counter() - self.t0, 1e-9)
        done = event["step"] - self.first_step
        tokens_per_s = self.tokens / spent
        eta = spent / max(done, 1) * (self.total - event["step"])
        return tokens_per_s, eta


class PlainTicker:
    """A line every few steps and one per moment; nothing but plain text."""

    def __init__(self, console: Console, every: int | None = None) -> None:
        self.console = console
        self.every = every
        self.progress = _Progress()
        self.trainer = None

    def start(self, trainer) -> None:
        self.trainer = trainer

    def stop(self) -> None:
        return None

    def _print(self, text: str) -> None:
        try:
            self.console.print(literal(text), markup=False, highlight=False, soft_wrap=True)
        except BrokenPipeError:  # `fabric train | head`: no one reads on; save and stop there
            if self.trainer is not None:
                self.trainer.request_stop()

    def on_event(self, event: dict) -> None:
        kind = event["type"]
        if kind == "run_start":
            self.progress.on_start(event)
            self.every = self.every or max(1, self.progress.total // 10)
            resumed = event.get("resumed_from")
            head = f"resuming at step {step_text(resumed)}" if resumed else "starting"
            self._print(f"fabric train: {event['scenario']} {head}, "
                        f"{step_text(self.progress.total)} steps, "
                        f"{event['n_params']:,} parameters, entropy floor "
                        f"{self.progress.floor:.3f} nats")
        elif kind == "step":
            tokens_per_s, eta = self.progress.on_step(event)
            if event["step"] % self.every == 0:
                self._print(plain_progress_line(
                    event["step"], self.progress.total, event["loss"], self.progress.val_loss,
                    self.progress.floor, tokens_per_s, eta, val_step=self.progress.val_step))
        elif kind == "probe":
            self.progress.val_loss, self.progress.val_step = event["val_loss"], event["step"]
        elif kind == "moment":
            self._print(f"  step {step_text(event['step'])}: {ticker_line(event, self.progress.seed)}")


SWITCH_MARGIN = 0.1  # another head must out-score the followed one by this much to take over


class HeadFollower:
    """Which pronoun head the dashboard follows: one head for the whole run, not the one
    that happens to look hardest at one sentence at one probe.

    The first probe picks the best pronoun score; afterwards the followed head keeps its
    place unless another head's pronoun score beats it by SWITCH_MARGIN (a clearly stronger
    tracker, never a weaker one). When the run names its proven specialists (the specialist
    moments at the end), the strongest of them is followed.
    """

    def __init__(self, margin: float = SWITCH_MARGIN) -> None:
        self.margin = margin
        self.current: tuple[int, int] | None = None
        self.proven: dict[tuple[int, int], float] = {}

    def choose(self, probe: dict) -> tuple[int, int]:
        scores = {(r["layer"], r["head"]): float(r["scores"]["pronoun"]) for r in probe["heads"]}
        best = max(scores, key=lambda k: (scores[k], -k[0], -k[1]))
        if self.proven:
            pick = max(self.proven, key=lambda k: (self.proven[k], -k[0], -k[1]))
            if pick in scores:
                self.current = pick
                return pick
        if self.current is None or self.current not in scores or \
                scores[best] >= scores[self.current] + self.margin:
            self.current = best
        return self.current

    def prove(self, moment: dict) -> bool:
        """A specialist moment for the pronoun role: True when the followed head changes."""
        data = moment.get("data") or {}
        if moment.get("kind") != "specialist" or data.get("role") != "pronoun":
            return False
        key = (moment.get("layer"), moment.get("head"))
        self.proven[key] = float(data.get("score") or 0.0)
        best = max(self.proven, key=lambda k: (self.proven[k], -k[0], -k[1]))
        return best != self.current


class LivePicture:
    """The animated dashboard: progress, loss curve with the floor, gradient flow, the best
    pronoun head's attention on a story sentence, and the ticker of moments."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.dashboard = TrainingDashboard()
        self.progress = _Progress()
        self.live: Live | None = None
        self._last_refresh = 0.0
        self._urgent = False  # a probe or moment not drawn yet
        self._costs: deque[float] = deque(maxlen=5)  # the last redraws' seconds
        self.follower = HeadFollower()
        self._last_probe: dict | None = None
        self._restore_echo: Callable[[], None] | None = None

    def start(self, trainer) -> None:
        self._restore_echo = quiet_control_echo(self.console.file)
        self.live = Live(self.dashboard, console=self.console, auto_refresh=False,
                         transient=False, redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def stop(self) -> None:
        try:
            if self.live is not None:
                self.live.refresh()
                self.live.stop()
                self.live = None
        finally:
            if self._restore_echo is not None:
                self._restore_echo()
                self._restore_echo = None

    def _refresh(self, urgent: bool = False) -> None:
        now = time.perf_counter()
        self._urgent = self._urgent or urgent
        if self._urgent:
            wait = BURST_SECONDS
        else:
            cost = statistics.median(self._costs) if self._costs else 0.0
            wait = max(REFRESH_SECONDS, cost / DRAWING_SHARE)
        if self.live is not None and now - self._last_refresh >= wait:
            self._last_refresh = now
            self._urgent = False
            self.live.refresh()
            self._costs.append(time.perf_counter() - now)

    def _watch_best_head(self, probe: dict) -> None:
        """Show the followed pronoun head (HeadFollower) on the first story sentence."""
        if not probe.get("heads") or not probe.get("snapshots"):
            return
        shot = probe["snapshots"][0]
        layer, head = self.follower.choose(probe)
        key = f"{layer}.{head}"
        if key not in shot["patterns"]:
            return
        row = next(r for r in probe["heads"] if (r["layer"], r["head"]) == (layer, head))
        self.dashboard.set_head(layer, head, shot["tokens"], np.array(shot["patterns"][key]),
                                score=row["scores"]["pronoun"],
                                mark=[tuple(p) for p in shot.get("pronouns", [])])

    def on_event(self, event: dict) -> None:
        kind = event["type"]
        d = self.dashboard
        if kind == "run_start":
            self.progress.on_start(event)
            d.title = f"fabric train · {literal(event['scenario'])}"
            d.update_progress(event["step"], self.progress.total)
            d.set_floor(self.progress.floor)
        elif kind == "step":
            tokens_per_s, eta = self.progress.on_step(event)
            d.update_progress(event["step"], eta=eta, tokens_per_s=tokens_per_s)
            d.add_loss(event["step"], event["loss"])
            d.set_grad_flow(event["grad_flow"], embed=event.get("grad_embed"))
            self._refresh()
        elif kind == "probe":
            self.progress.val_loss = event["val_loss"]
            d.add_val(event["step"], event["val_loss"])
            self._last_probe = event
            self._watch_best_head(event)
            self._refresh(urgent=True)
        elif kind == "moment":
            if self.follower.prove(event) and self._last_probe is not None:
                self._watch_best_head(self._last_probe)  # the proven tracker, from now on
            line = ticker_line(event, self.progress.seed)
            # the dashboard names the speaker itself; keep a head's own name (L0H2) only
            _, _, text = line.partition(": ")
            if event["component"] != "head" and text:
                line = text
            d.add_moment(event["component"], line, step=event["step"])
            self._refresh(urgent=True)
        elif self._urgent:
            self._refresh()  # any later event draws a burst still waiting
