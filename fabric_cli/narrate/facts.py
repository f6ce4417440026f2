"""The run as the narrators see it: chronicle events sorted into what happened when.

Only plain event dicts come in (docs/chronicle.md); nothing here measures the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fabric_cli.errors import FabricError
from fabric_cli.narrate.format import as_float

ROLES = ("pronoun", "verb", "noun", "prev", "self", "first")


@dataclass
class HeadFate:
    """What one head became, by the chronicle's own verdict."""

    layer: int
    head: int
    role: str | None  # the role it was named specialist of, or None (stayed diffuse)
    specialist: dict | None  # the run_end specialist row (or specialist moment data)
    best_role: str  # its highest-scoring role at the last probe
    best_score: float


@dataclass
class RunFacts:
    start: dict
    steps: list[dict] = field(default_factory=list)
    probes: list[dict] = field(default_factory=list)
    moments: list[dict] = field(default_factory=list)
    ablation: dict | None = None
    interrupted: dict | None = None  # the last interruption, when no resume followed it
    # each interruption that was resumed: (its `interrupted` event, the resuming run_start)
    resumed: list[tuple[dict, dict]] = field(default_factory=list)
    end: dict | None = None

    # --- who and what -------------------------------------------------------------------
    @property
    def seed(self) -> int:
        seed = self.start.get("seed", 0)
        return seed if isinstance(seed, int) else 0

    @property
    def model(self) -> dict:
        return self.start.get("model") or {}

    @property
    def training(self) -> dict:
        return self.start.get("training") or {}

    @property
    def vocab(self) -> list[str]:
        return list(self.start.get("vocab") or [])

    @property
    def status(self) -> str:
        """finished, interrupted, diverged, or unfinished (the chronicle simply stops)."""
        if any(m.get("kind") == "diverged" for m in self.moments):
            return "diverged"
        if self.end is not None:
            return str(self.end.get("status", "finished"))
        return "interrupted" if self.interrupted is not None else "unfinished"

    # --- steps ----------------------------------------------------------------------------
    @property
    def good_steps(self) -> list[dict]:
        """Steps whose loss and gradient were real numbers (a diverged run ends in nan/inf
        steps, and its last loss may still be finite while its gradient already is not)."""
        return [s for s in self.steps if math.isfinite(as_float(s.get("loss")))
                and math.isfinite(as_float(s.get("grad_norm", 0.0)))]

    @property
    def first_step(self) -> dict | None:
        good = self.good_steps
        return good[0] if good else None

    @property
    def last_step(self) -> dict | None:
        good = self.good_steps
        return good[-1] if good else None

    @property
    def clipped_steps(self) -> list[dict]:
        return [s for s in self.steps if s.get("clipped") is True]

    def max_grad_step(self) -> dict | None:
        good = [s for s in self.steps if math.isfinite(as_float(s.get("grad_norm")))]
        return max(good, key=lambda s: as_float(s["grad_norm"])) if good else None

    # --- probes and heads -----------------------------------------------------------------
    @property
    def first_probe(self) -> dict | None:
        return self.probes[0] if self.probes else None

    @property
    def last_probe(self) -> dict | None:
        return self.probes[-1] if self.probes else None

    def train_window(self, probe: dict | None) -> tuple[int, int] | None:
        """The steps whose batch losses a probe's train_loss averages: those since the probe
        before it (a 50-step run's last probe averages steps 1 to 50, its first loss too)."""
        at = int((probe or {}).get("step", 0))
        before = [int(p.get("step", 0)) for p in self.probes if int(p.get("step", 0)) < at]
        return (max(before) + 1, at) if probe is not None and before else None

    def unnamed_in_team(self, role: str, group: dict | None) -> list[tuple[int, int]]:
        """Heads the role's team ablation silenced (the row whose figures are `group`'s) that
        the run did not name for the role: seed 2's L2H2, silenced with six verb heads."""
        keys = ("loss_before", "loss_after", "acc_before", "acc_after")
        rows = [r for r in (self.ablation or {}).get("rows") or [] if isinstance(r, dict)
                and r.get("role") == role and len(r.get("heads") or []) > 1
                and all(r.get(k) == (group or {}).get(k) for k in keys)]
        named = {(s.get("layer"), s.get("head")) for s in self.specialists
                 if s.get("role") == role}
        heads = [(int(h[0]), int(h[1])) for h in (rows[0].get("heads") if rows else [])]
        return [h for h in heads if h not in named]

    @staticmethod
    def head_row(probe: dict | None, layer: int, head: int) -> dict | None:
        if probe is None:
            return None
        for row in probe.get("heads") or []:
            if row.get("layer") == layer and row.get("head") == head:
                return row
        return None

    @staticmethod
    def score(row: dict | None, role: str) -> float:
        if row is None:
            return math.nan
        return as_float((row.get("scores") or {}).get(role))

    def best_head_for(self, role: str, probe: dict | None = None) -> dict | None:
        """The probe row of the head with the highest score for `role` at `probe` (default last)."""
        probe = probe if probe is not None else self.last_probe
        rows = [r for r in (probe or {}).get("heads") or [] if math.isfinite(self.score(r, role))]
        return max(rows, key=lambda r: self.score(r, role)) if rows else None

    @property
    def specialists(self) -> list[dict]:
        """Specialists named at the end (run_end), else by specialist moments."""
        if self.end is not None and self.end.get("specialists") is not None:
            return list(self.end["specialists"])
        rows = []
        for m in self.moments_of("specialist"):
            rows.append({"layer": m.get("layer"), "head": m.get("head"), **(m.get("data") or {})})
        return rows

    def specialist_of(self, layer: int, head: int, role: str | None = None) -> dict | None:
        """The head's specialist row for `role`; without one, the role `fabric heads` shows a
        head proven in two: its role's best head, else the one its score clears the bar by
        the most (seed 1's L0H0, verb and noun, is the noun head of the table and story)."""
        rows = [r for r in self.specialists if r.get("layer") == layer and r.get("head") == head
                and role in (None, r.get("role"))]
        bars = {(m.get("data") or {}).get("role"): as_float((m.get("data") or {}).get("threshold"))
                for m in self.moments_of("role_threshold")}

        def rank(row: dict) -> tuple[bool, float]:
            margin = as_float(row.get("score")) - bars.get(row.get("role"), 0.0)
            return row.get("best") is True, margin if math.isfinite(margin) else -math.inf
        return max(rows, key=rank) if rows else None

    def pronoun_head(self) -> tuple[int, int] | None:
        """The head a pronoun story is about: the pronoun specialist, else the best one."""
        named = [s for s in self.specialists if s.get("role") == "pronoun"]
        best = [s for s in named if s.get("best") is True]  # the prober's own choice, if given
        if best:
            return int(best[0]["layer"]), int(best[0]["head"])
        if named:
            best = max(named, key=lambda s: as_float(s.get("score")))
            return int(best["layer"]), int(best["head"])
        row = self.best_head_for("pronoun")
        if row is not None:
            return int(row["layer"]), int(row["head"])
        return None

    def fate(self, layer: int, head: int) -> HeadFate:
        spec = self.specialist_of(layer, head)
        row = self.head_row(self.last_probe, layer, head)
        # every role the probe scored, not only the ones known here (new roles speak too)
        roles = list(dict.fromkeys([*ROLES, *((row or {}).get("scores") or {})]))
        scored = [(self.score(row, r), r) for r in roles if math.isfinite(self.score(row, r))]
        best_score, best_role = max(scored) if scored else (math.nan, "pronoun")
        return HeadFate(layer, head, spec.get("role") if spec else None, spec, best_role,
                        best_score)

    # --- moments ----------------------------------------------------------------------------
    def moments_of(self, kind: str, layer: int | None = None, head: int | None = None) -> list:
        found = [m for m in self.moments if m.get("kind") == kind]
        if layer is not None:
            found = [m for m in found if m.get("layer") == layer and m.get("head") == head]
        return found

    def first_moment(self, kind: str, layer: int | None = None, head: int | None = None):
        found = self.moments_of(kind, layer, head)
        return found[0] if found else None

    # --- story sentences ------------------------------------------------------------------
    @staticmethod
    def snapshots(probe: dict | None) -> list[dict]:
        return list((probe or {}).get("snapshots") or [])

    @staticmethod
    def pattern(snapshot: dict, layer: int, head: int) -> list[list[float]] | None:
        return (snapshot.get("patterns") or {}).get(f"{layer}.{head}")


def collect(events: list[dict]) -> RunFacts:
    """Sort events by type. A chronicle without run_start cannot be narrated."""
    start = next((e for e in events if e.get("type") == "run_start"), None)
    if start is None:
        raise FabricError(
            "this chronicle has no run_start event, so there is no run to narrate; "
            "train one with `fabric train`"
        )
    facts = RunFacts(start=start)
    for event in events:
        kind = event.get("type")
        if kind == "step":
            facts.steps.append(event)
        elif kind == "probe":
            facts.probes.append(event)
        elif kind == "moment":
            facts.moments.append(event)
        elif kind == "ablation":
            facts.ablation = event
        elif kind == "interrupted":
            facts.interrupted = event
        elif kind == "run_start" and event.get("resumed_from") is not None:
            if facts.interrupted is not None:
                facts.resumed.append((facts.interrupted, event))
            facts.interrupted = None  # a resumed run is no longer stopped
        elif kind == "run_end":
            facts.end = event
    facts.moments.sort(key=lambda m: m.get("step", 0))
    return facts
