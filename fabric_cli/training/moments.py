"""Moments: the turns of the story, found in the numbers alone.

The MomentDetector is fed the trainer's `step` and `probe` events as they happen and answers
with `moment` events (docs/chronicle.md): a head's first snap onto an antecedent, a role score
crossing its threshold, loss plateaus and the drops after them, vanishing gradients, spikes,
bursts of clipping, the approach to the entropy floor, dropout knocking a specialist off its
target and the head recovering. Every threshold lives in `MomentThresholds`.

Deterministic and resumable: the detector reads every number rounded exactly as the chronicle
stores it, so `replay(read_events(...))` after a resume rebuilds the state live feeding had.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fabric_cli.chronicle import MOMENT_KINDS, ROLES, SPIKE_WINDOW, number, round_number

_DEFAULT_ROLE_THRESHOLDS = {"pronoun": 0.5, "verb": 0.5, "noun": 0.5,
                            "prev": 0.6, "self": 0.6, "first": 0.6}


@dataclass(frozen=True)
class MomentThresholds:
    # first_snap: a head's attention from every story pronoun peaks on its antecedent, with
    # at least this weight (a third of the mass, when two nouns compete for it).
    snap_min_weight: float = 0.3
    # role_threshold / specialists: fixed score a head must reach per role (fraction of its
    # attention on the expected cells) ...
    role_thresholds: dict[str, float] = field(
        default_factory=lambda: dict(_DEFAULT_ROLE_THRESHOLDS))
    # ... except verb and noun, measured against spreading attention evenly: the bar is this
    # far from the even share towards 1 (share 0.3 -> 0.51), when the probe gives the shares.
    # Several heads often share the noun role at three times the even share each; the bar
    # only picks which heads ablation tests, and ablation names them.
    relative_lift: float = 0.3
    relative_roles: tuple[str, ...] = ("verb", "noun")
    # loss_plateau / loss_drop, on an exponential moving average of the train loss.
    loss_ema: float = 0.05  # weight of the newest step (a memory of about 20 steps)
    plateau_min_steps: int = 100  # a plateau lasts at least this many steps ...
    plateau_tolerance: float = 0.05  # ... with the smoothed loss within 5% (max-min over min)
    # ... and well above the train entropy floor: flattening out near it is arrival, not a
    # stall (once a probe has told the detector the floor).
    plateau_floor_ratio: float = 1.1
    drop_fraction: float = 0.06  # a drop: 6% below the plateau's mean ...
    drop_within_steps: int = 300  # ... within this many steps of its end
    # vanishing_gradient: bottom layer's arriving gradient below this share of the top's,
    # for this many steps in a row; the episode ends when the ratio is back above `recover`.
    vanishing_ratio: float = 0.1
    vanishing_steps: int = 20
    vanishing_recover: float = 0.2
    # gradient_spike: a global norm this many times the median of the previous steps.
    spike_factor: float = 4.0
    spike_window: int = SPIKE_WINDOW
    # clipping_burst: at least this many clipped steps within `clip_window` steps; the burst
    # ends after `clip_window` steps without clipping.
    clip_burst_count: int = 5
    clip_window: int = 50
    # near_floor: held-out loss within this ratio of the held-out entropy floor.
    near_floor_ratio: float = 1.05
    # dropout_knock: the specialist's score with a dropout mask this far below its clean
    # score (absolute), once its clean score is at least knock_min_clean; recovered when the
    # gap is back under half of it.
    knock_delta: float = 0.1
    knock_min_clean: float = 0.3

    @classmethod
    def from_scenario(cls, scenario: Any) -> MomentThresholds:
        """Defaults, with the scenario's probes.specialist_threshold as the pronoun bar (a
        number) or as per-role bars (a table)."""
        probes = getattr(scenario, "probes", None)
        given = getattr(probes, "specialist_threshold", None)
        roles = dict(_DEFAULT_ROLE_THRESHOLDS)
        if isinstance(given, dict):
            roles.update({k: float(v) for k, v in given.items() if k in roles})
        elif isinstance(given, int | float) and not isinstance(given, bool):
            roles["pronoun"] = float(given)
        return cls(role_thresholds=roles)

    def role_threshold(self, role: str, shares: dict[str, float] | None = None) -> float:
        """The score a head needs to count as a `role` head."""
        if shares and role in self.relative_roles and role in shares:
            share = float(shares[role])
            return share + self.relative_lift * (1.0 - share)
        return float(self.role_thresholds.get(role, math.inf))


def make_moment(kind: str, step: int, component: str, data: dict,
                layer: int | None = None, head: int | None = None) -> dict:
    """A `moment` event, as docs/chronicle.md describes it."""
    if kind not in MOMENT_KINDS:
        raise ValueError(f"unknown moment kind {kind!r}")
    return {"type": "moment", "step": int(step), "kind": kind, "component": component,
            "layer": None if layer is None else int(layer),
            "head": None if head is None else int(head), "data": data}


def _num(value: Any) -> float:
    """A number as the chronicle would give it back (rounded; "nan" strings understood)."""
    return round_number(number(value)) if isinstance(value, str) else round_number(value)


def _non_finite_text(x: float) -> str | float:
    if math.isnan(x):
        return "nan"
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


class FlatStretch:
    """The longest recent stretch of the smoothed loss whose range (max - min) stays within a
    tolerance of its min: a sliding window whose min and max are kept by monotonic queues."""

    def __init__(self) -> None:
        self.values: deque[tuple[int, float]] = deque()  # (step, smoothed loss)
        self.lows: deque[tuple[int, float]] = deque()  # increasing: lows[0] is the min
        self.highs: deque[tuple[int, float]] = deque()  # decreasing: highs[0] is the max

    def low(self) -> float:
        return self.lows[0][1]

    def high(self) -> float:
        return self.highs[0][1]

    def steps(self) -> int:
        return self.values[-1][0] - self.values[0][0] if self.values else 0

    def push(self, step: int, s: float, tolerance: float) -> None:
        """Add `s`, then forget the oldest values until the band holds again."""
        self.values.append((step, s))
        while self.lows and self.lows[-1][1] >= s:
            self.lows.pop()
        self.lows.append((step, s))
        while self.highs and self.highs[-1][1] <= s:
            self.highs.pop()
        self.highs.append((step, s))
        while self.high() - self.low() > tolerance * self.low():
            first, _ = self.values.popleft()
            if self.lows[0][0] == first:
                self.lows.popleft()
            if self.highs[0][0] == first:
                self.highs.popleft()

    def clear(self) -> None:
        self.values.clear()
        self.lows.clear()
        self.highs.clear()

    def as_dict(self) -> dict:
        return {"values": list(self.values), "lows": list(self.lows),
                "highs": list(self.highs)}


class MomentDetector:
    def __init__(self, thresholds: MomentThresholds, n_layers: int, n_heads: int) -> None:
        self.thresholds = thresholds
        self.n_layers = int(n_layers)
        self.n_heads = int(n_heads)
        # loss: smoothed value, the flat window, the plateau under way, the one awaiting a drop
        self.loss_smooth: float | None = None
        self.flat = FlatStretch()
        self.plateau: dict | None = None  # start, end, low, high, total, count
        self.after_plateau: dict | None = None  # end_step, mean
        self.floor_train: float | None = None  # from the probes
        # gradient
        self.grad_norms: deque[float] = deque(maxlen=thresholds.spike_window)
        self.in_spike = False
        self.low_steps = 0
        self.vanishing = False
        # clipping: recent clipped steps (step, grad_norm) and the burst being watched
        self.recent_clips: deque[tuple[int, float]] = deque()
        self.burst: dict | None = None
        # probes
        self.previous_scores: dict[str, dict[str, float]] = {}  # "L.H" -> role -> score
        self.previous_probe_step: int | None = None
        self.crossed: set[tuple[int, int, str]] = set()
        self.snapped: set[tuple[int, int]] = set()
        self.best_pronoun_score: float | None = None
        self.near_floor_seen = False
        self.knocks: dict[tuple[int, int], int] = {}  # head -> step of the knock
        self.recovered: set[tuple[int, int]] = set()
        self.diverged = False
        self.last_step = 0

    # -- feeding -----------------------------------------------------------------------------
    def on_step(self, event: dict) -> list[dict]:
        step = int(event["step"])
        self.last_step = step
        loss = _num(event["loss"])
        grad_norm = _num(event["grad_norm"])
        moments: list[dict] = []
        if math.isfinite(loss):
            moments += self._loss(step, loss)
        if math.isfinite(grad_norm):
            moments += self._spike(step, grad_norm)
            moments += self._clipping(step, bool(event.get("clipped")), grad_norm,
                                      _num(event.get("grad_norm_clipped", grad_norm)))
        moments += self._vanishing(step, event.get("grad_flow") or [])
        return moments

    def on_probe(self, event: dict) -> list[dict]:
        step = int(event["step"])
        scores = {f"{h['layer']}.{h['head']}": {r: _num(v) for r, v in h["scores"].items()}
                  for h in event.get("heads", [])}
        pronoun = [s["pronoun"] for s in scores.values()
                   if "pronoun" in s and math.isfinite(s["pronoun"])]
        self.best_pronoun_score = max(pronoun) if pronoun else None
        floor = _num((event.get("floor") or {}).get("train", math.nan))
        if math.isfinite(floor) and floor > 0:
            self.floor_train = floor
        moments = self._roles(step, scores, event.get("role_shares"))
        moments += self._snaps(step, event.get("snapshots") or [], scores)
        moments += self._floor(step, event)
        moments += self._dropout(step, event.get("focus_under_dropout"))
        self.previous_scores = scores
        self.previous_probe_step = step
        return moments

    def on_divergence(self, step: int, loss: float | None, lr: float, grad_norm: float | None,
                      last_good_step: int) -> dict:
        """The Fabric tore: the `diverged` moment (told by the engineers)."""
        self.diverged = True
        loss_f = math.nan if loss is None else float(number(loss) if isinstance(loss, str)
                                                      else loss)
        norm_f = math.nan if grad_norm is None else float(
            number(grad_norm) if isinstance(grad_norm, str) else grad_norm)
        return make_moment("diverged", step, "engineers", {
            "loss": _non_finite_text(loss_f), "last_good_step": int(last_good_step),
            "lr": round_number(lr), "grad_norm": _non_finite_text(round_number(norm_f))})

    def finish(self, step: int | None = None) -> list[dict]:
        """Close the episodes still open when training really ends (a plateau that lasted to
        the end, a burst of clipping still going). Not on Ctrl-C: a resumed run continues
        them."""
        step = self.last_step if step is None else int(step)
        moments = []
        if self.plateau is not None:
            moments.append(self._plateau_moment(step))
        if self.burst is not None:
            moments.append(self._burst_moment(step))
        return moments

    def replay(self, events: list[dict]) -> None:
        """Feed a chronicle's events back silently (on resume), rebuilding the state."""
        for event in events:
            kind = event.get("type")
            if kind == "step":
                self.on_step(event)
            elif kind == "probe":
                self.on_probe(event)
            elif kind == "moment" and event.get("kind") == "diverged":
                self.diverged = True

    def state(self) -> dict:
        """Everything the detector remembers, as plain values (for comparing and tests)."""
        out = {}
        for name, value in vars(self).items():
            if name == "thresholds":
                continue
            if isinstance(value, set):
                value = sorted(value)
            elif isinstance(value, deque):
                value = list(value)
            elif isinstance(value, FlatStretch):
                value = value.as_dict()
            elif isinstance(value, dict):
                value = {str(k): v for k, v in value.items()}
            out[name] = value
        return out

    # -- the loss ----------------------------------------------------------------------------
    def _loss(self, step: int, loss: float) -> list[dict]:
        """A plateau begins when the smoothed loss of the last `plateau_min_steps` steps fits in
        the tolerance band (max - min ≤ tolerance × min), well above the floor; it lasts while
        the smoothed loss stays within half that band of its mean, and is told when it ends.
        Told ranges never overlap: a plateau's steps start no earlier than the end of the drop
        told before it, and a drop is watched for only until the next plateau begins."""
        t = self.thresholds
        s = loss if self.loss_smooth is None else self.loss_smooth + t.loss_ema * (
            loss - self.loss_smooth)
        self.loss_smooth = s
        moments = []
        ep = self.plateau
        if ep is None:
            self.flat.push(step, s, t.plateau_tolerance)
            if self.flat.steps() >= t.plateau_min_steps:
                self._maybe_begin_plateau(step)
        elif abs(s - ep["total"] / ep["count"]) <= t.plateau_tolerance / 2 * (
                ep["total"] / ep["count"]):
            ep.update(end=step, low=min(ep["low"], s), high=max(ep["high"], s),
                      total=ep["total"] + s, count=ep["count"] + 1)
        else:  # the loss has left the plateau
            self.after_plateau = {"end_step": ep["end"], "mean": ep["total"] / ep["count"]}
            moments.append(self._plateau_moment(step))
            self.flat.push(step, s, t.plateau_tolerance)
        watch = self.after_plateau
        if watch is not None:
            if step - watch["end_step"] > t.drop_within_steps:
                self.after_plateau = None
            elif s <= watch["mean"] * (1.0 - t.drop_fraction):
                moments.append(make_moment("loss_drop", step, "loss", {
                    "start_step": watch["end_step"], "end_step": step,
                    "from_loss": round_number(watch["mean"]), "to_loss": round_number(s),
                    "best_pronoun_score": self.best_pronoun_score}))
                self.after_plateau = None
                # the fall is told up to here, so a slow stretch after it starts here too
                self.flat.clear()
                self.flat.push(step, s, t.plateau_tolerance)
        return moments

    def _maybe_begin_plateau(self, step: int) -> None:
        values = [v for _, v in self.flat.values]
        mean = math.fsum(values) / len(values)
        floor = self.floor_train
        if floor is not None and mean <= self.thresholds.plateau_floor_ratio * floor:
            return  # settling near the floor: the near_floor moment tells that
        self.plateau = {"start": self.flat.values[0][0], "end": step, "low": min(values),
                        "high": max(values), "total": math.fsum(values), "count": len(values)}
        self.flat.clear()
        self.after_plateau = None  # a new slow stretch: the fall that led here is not told

    def _plateau_moment(self, step: int) -> dict:
        ep = self.plateau
        self.plateau = None
        mean = ep["total"] / ep["count"]
        floor = self.floor_train
        return make_moment("loss_plateau", step, "loss", {
            "start_step": ep["start"], "end_step": ep["end"], "mean_loss": round_number(mean),
            "spread": round_number(ep["high"] - ep["low"]),
            "low": round_number(ep["low"]), "high": round_number(ep["high"]),
            "above_floor": None if floor is None else round_number(mean - floor)})

    # -- gradients and clipping --------------------------------------------------------------
    def _spike(self, step: int, grad_norm: float) -> list[dict]:
        t = self.thresholds
        moments = []
        spiking = False
        if len(self.grad_norms) == t.spike_window:
            median = statistics.median(self.grad_norms)
            spiking = median > 0 and grad_norm >= t.spike_factor * median
            if spiking and not self.in_spike:  # one moment per spike, however many steps
                moments.append(make_moment("gradient_spike", step, "gradient", {
                    "grad_norm": grad_norm, "median": round_number(median),
                    "factor": round_number(grad_norm / median),
                    "threshold": t.spike_factor, "window": t.spike_window}))
        self.in_spike = spiking
        self.grad_norms.append(grad_norm)
        return moments

    def _clipping(self, step: int, clipped: bool, grad_norm: float, after: float) -> list[dict]:
        t = self.thresholds
        if clipped:
            self.recent_clips.append((step, grad_norm))
        while self.recent_clips and step - self.recent_clips[0][0] >= t.clip_window:
            self.recent_clips.popleft()
        burst = self.burst
        if burst is None and len(self.recent_clips) >= t.clip_burst_count:
            self.burst = {"start": self.recent_clips[0][0], "end": step,
                          "count": len(self.recent_clips),
                          "max_norm": max(n for _, n in self.recent_clips), "clip": after}
        elif burst is not None and clipped:
            burst.update(end=step, count=burst["count"] + 1,
                         max_norm=max(burst["max_norm"], grad_norm), clip=after)
        elif burst is not None and step - burst["end"] >= t.clip_window:
            return [self._burst_moment(step)]
        return []

    def _burst_moment(self, step: int) -> dict:
        b = self.burst
        self.burst = None
        return make_moment("clipping_burst", step, "engineers", {
            "start_step": b["start"], "end_step": b["end"], "count": b["count"],
            "max_norm": b["max_norm"], "clip": b["clip"]})

    def _vanishing(self, step: int, grad_flow: list[dict]) -> list[dict]:
        if len(grad_flow) < 2:
            return []
        t = self.thresholds
        bottom, top = _num(grad_flow[0]["arriving"]), _num(grad_flow[-1]["arriving"])
        if not (math.isfinite(bottom) and math.isfinite(top)) or top <= 0:
            return []
        ratio = bottom / top
        if self.vanishing:
            if ratio >= t.vanishing_recover:
                self.vanishing = False
                self.low_steps = 0
            return []
        self.low_steps = self.low_steps + 1 if ratio < t.vanishing_ratio else 0
        if self.low_steps < t.vanishing_steps:
            return []
        self.vanishing = True
        return [make_moment("vanishing_gradient", step, "gradient", {
            "bottom": bottom, "top": top, "ratio": round_number(ratio),
            "threshold": t.vanishing_ratio, "start_step": step - self.low_steps + 1,
            "bottom_layer": int(grad_flow[0].get("layer", 0)),
            "top_layer": int(grad_flow[-1].get("layer", len(grad_flow) - 1))})]

    # -- heads -------------------------------------------------------------------------------
    def _heads(self) -> list[tuple[int, int]]:
        return [(layer, head) for layer in range(self.n_layers) for head in range(self.n_heads)]

    def _roles(self, step: int, scores: dict[str, dict[str, float]],
               shares: dict | None) -> list[dict]:
        shares = {k: _num(v) for k, v in shares.items()} if shares else None
        moments = []
        for layer, head in self._heads():
            mine = scores.get(f"{layer}.{head}")
            if mine is None:
                continue
            before = self.previous_scores.get(f"{layer}.{head}", {})
            for role in ROLES:
                score = mine.get(role, math.nan)
                bar = self.thresholds.role_threshold(role, shares)
                if (layer, head, role) in self.crossed or not score >= bar:
                    continue
                self.crossed.add((layer, head, role))
                moments.append(make_moment("role_threshold", step, "head", {
                    "role": role, "score": score, "threshold": round_number(bar),
                    "previous_score": before.get(role),
                    "previous_step": self.previous_probe_step if before else None},
                    layer=layer, head=head))
        return moments

    def _snaps(self, step: int, snapshots: list[dict],
               scores: dict[str, dict[str, float]]) -> list[dict]:
        """A head snaps when, in every story sentence, the attention from each pronoun peaks
        on its antecedent with at least `snap_min_weight`. Told once per head: the weakest of
        its pronouns, so the number is the one that had to clear the bar."""
        cases = [(shot, int(p), int(a)) for shot in snapshots
                 for p, a in shot.get("pronouns", [])]
        if not cases:
            return []
        moments = []
        for layer, head in self._heads():
            if (layer, head) in self.snapped:
                continue
            key = f"{layer}.{head}"
            weakest = None
            for shot, p, a in cases:
                pattern = shot["patterns"].get(key)
                if pattern is None or p >= len(pattern):
                    weakest = None
                    break
                row = [_num(x) for x in pattern[p][: p + 1]]  # causal: keys 0..p
                peak = max(range(len(row)), key=row.__getitem__)
                if peak != a or row[a] < self.thresholds.snap_min_weight:
                    weakest = None
                    break
                if weakest is None or row[a] < weakest[3][weakest[2]]:
                    weakest = (shot, p, a, row)
            if weakest is None:
                continue
            shot, p, a, row = weakest
            runner = max((k for k in range(len(row)) if k != a), key=row.__getitem__,
                         default=None)
            tokens = shot["tokens"]
            self.snapped.add((layer, head))
            moments.append(make_moment("first_snap", step, "head", {
                "sentence": shot["sentence"], "pronoun": tokens[p], "pronoun_index": p,
                "antecedent": tokens[a], "antecedent_index": a, "weight": row[a],
                "runner_up": None if runner is None else tokens[runner],
                "runner_up_index": runner,
                "runner_up_weight": None if runner is None else row[runner],
                "pronouns": len(cases),
                "pronoun_score": scores.get(key, {}).get("pronoun")},
                layer=layer, head=head))
        return moments

    # -- the floor and dropout ---------------------------------------------------------------
    def _floor(self, step: int, event: dict) -> list[dict]:
        if self.near_floor_seen or "val_loss" not in event:
            return []
        val = _num(event["val_loss"])
        floor = _num((event.get("floor") or {}).get("train", math.nan))
        if not (math.isfinite(val) and math.isfinite(floor) and floor > 0):
            return []
        if val > self.thresholds.near_floor_ratio * floor:
            return []
        self.near_floor_seen = True
        return [make_moment("near_floor", step, "loss", {
            "val_loss": val, "floor": floor, "ratio": round_number(val / floor),
            "threshold": self.thresholds.near_floor_ratio})]

    def _dropout(self, step: int, focus: dict | None) -> list[dict]:
        if not focus:
            return []
        t = self.thresholds
        who = (int(focus["layer"]), int(focus["head"]))
        clean, dropped, rate = _num(focus["clean"]), _num(focus["dropped"]), _num(focus["rate"])
        if not (math.isfinite(clean) and math.isfinite(dropped)):
            return []
        data = {"clean": clean, "dropped": dropped, "rate": rate}
        if who in self.knocks:
            if who in self.recovered or clean - dropped >= t.knock_delta / 2:
                return []
            self.recovered.add(who)
            return [make_moment("dropout_recovered", step, "dropout",
                                {**data, "knock_step": self.knocks[who]}, *who)]
        if clean < t.knock_min_clean or dropped >= clean - t.knock_delta:
            return []
        self.knocks[who] = step
        return [make_moment("dropout_knock", step, "dropout", data, *who)]
