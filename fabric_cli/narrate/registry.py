"""The cast: one Narrator per component, the ensemble, and the lines told live during training."""

from __future__ import annotations

import re

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

from fabric_cli.errors import FabricError
from fabric_cli.narrate import (
    adam,
    dropout,
    engineers,
    ensemble,
    ffn,
    gradient,
    head,
    layernorm,
    loss,
    residual,
    softmax,
    tokenizer,
)
from fabric_cli.narrate.common import moment_values
from fabric_cli.narrate.facts import RunFacts, collect
from fabric_cli.narrate.figures import ablation_moves
from fabric_cli.narrate.format import head_name, step
from fabric_cli.narrate.story import Story, Voice


@dataclass(frozen=True)
class Narrator:
    component: str  # the registry key, as in a moment's "component"
    speaker: str  # how it is named in the prose: "the Gradient"
    moment_lines: Mapping[str, Sequence[str]]  # moment kind -> one-line templates
    _tell: Callable[..., Story]

    def tell(self, events: list[dict], *, layer: int | None = None,
             head: int | None = None) -> Story:
        return self.story(collect(events), layer=layer, head=head)

    def story(self, run: RunFacts, *, layer: int | None = None,
              head: int | None = None) -> Story:
        voice = Voice(run.seed, self.component)
        try:
            story = self._tell(run, voice, layer=layer, head=head)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            # A chronicle that passed the reader but lacks a field this voice stands on.
            raise FabricError(
                f"the chronicle lacks what the {self.component} narrator needs "
                f"({type(exc).__name__}: {exc}); train the run again with `fabric train`"
            ) from None
        story.told = [*story.told, *voice.told]
        return story


def _from_module(name: str, module: ModuleType) -> Narrator:
    return Narrator(name, module.SPEAKER, module.MOMENT_LINES, module.tell)


COMPONENTS = {
    "head": head, "gradient": gradient, "adam": adam, "dropout": dropout,
    "layernorm": layernorm, "residual": residual, "ffn": ffn, "softmax": softmax,
    "tokenizer": tokenizer, "loss": loss, "engineers": engineers,
}
NARRATORS: dict[str, Narrator] = {n: _from_module(n, m) for n, m in COMPONENTS.items()}


def _tell_ensemble(run: RunFacts, voice: Voice, **_: object) -> Story:
    tellers = {n: (lambda r, n=n: NARRATORS[n].story(r)) for n in COMPONENTS}
    stories = ensemble.safe_stories(run, tellers, list(COMPONENTS))
    story = ensemble.tell(run, stories, _ensemble_line, voice)
    voices = {v for c in story.chapters for v in c.voices}
    story.labels = {v: _speaker_label({"component": v}) if v in NARRATORS else v
                    for v in voices}
    return story


NARRATORS["ensemble"] = Narrator("ensemble", "the Fabric", {}, _tell_ensemble)


def tell(events: list[dict], component: str | None = None, *, layer: int | None = None,
         head: int | None = None) -> Story:
    """The story of a run as told by `component` (None: the ensemble, all voices in turn)."""
    name = component or "ensemble"
    if name not in NARRATORS:
        raise FabricError(f"unknown component {name!r}; choose one of: {', '.join(NARRATORS)}")
    if (layer is not None or head is not None) and name not in ("head", "ensemble"):
        raise FabricError("--layer/--head choose a head, so they go with --component head")
    if name == "ensemble" and (layer is not None or head is not None):
        name = "head"
    return NARRATORS[name].tell(events, layer=layer, head=head)


def _speaker_label(moment: dict) -> str:
    component = str(moment.get("component"))
    if component == "head" and moment.get("layer") is not None and moment.get("head") is not None:
        return head_name(moment["layer"], moment["head"])
    narrator = NARRATORS.get(component)
    speaker = narrator.speaker if narrator else component
    name = speaker.removeprefix("the ")
    return name[:1].upper() + name[1:]


def _moment_text(moment: dict, seed: int) -> str | None:
    narrator = NARRATORS.get(str(moment.get("component")))
    kind = str(moment.get("kind"))
    data = moment.get("data") or {}
    if kind == "specialist" and data.get("alone_hurts") is False:
        kind = "specialist_backup"  # proven only together with its role's other heads
    bank = (narrator.moment_lines if narrator else {}).get(kind)
    if not bank:
        return None
    voice = Voice(seed, str(moment.get("component")))
    slot = f"tick:{kind}:{moment.get('step')}"
    values = moment_values(moment)
    for key, prefix in (("ablation", ""), ("group_ablation", "group_")):
        if isinstance(data.get(key), dict):  # said by the printed figures: went / stayed
            values.update(ablation_moves(voice, f"{slot}:{key}", data[key], prefix=prefix))
    try:
        text = voice.say(slot, bank, **values)
    except (KeyError, IndexError, ValueError):
        return None  # a moment missing a field gets the plain line instead of a guess
    return text[:1].upper() + text[1:]


def _ensemble_line(moment: dict, seed: int) -> str | None:
    return _moment_text(moment, seed)


def ticker_line(moment_event: dict, seed: int) -> str:
    """One short first-person line for a moment, in its component's voice (live in training)."""
    label = _speaker_label(moment_event)
    text = _moment_text(moment_event, seed)
    if text is None:
        kind = str(moment_event.get("kind", "moment")).replace("_", " ")
        return f"{label}: {kind} at step {step(moment_event.get('step', 0))}."
    return f"{label}: {_without_own_step(text, moment_event.get('step'))}"


def _without_own_step(text: str, at: object) -> str:
    """Every place a ticker line is shown puts the moment's step before it (the live panel,
    the plain log, the report), so a phrase opening with that same step ("Step 1,400, proven
    a noun head") drops it: "1,400 L0H1: Proven a noun head", not "1,400 L0H1: Step 1,400"."""
    if at is None:
        return text
    n = re.escape(step(at))
    # inside the line: "crossed 0.421 at step 900: 0.452", "Verb, step 300: 0.47", "a verb
    # head by step 1,400, score" lose the step they repeat
    text = re.sub(rf",? (?:at|by) step {n}(?=[,:;.) ]|$)|, step {n}(?=:)", "", text)
    # "Step N, proven", "step N: I am", "At step N my score": not "Step N settled it"
    opening = re.match(rf"(?:[Ss]tep {n}[,:] +|(?:At|By) step {n},? +)(?=\S)", text)
    if opening is None:
        return text
    rest = text[opening.end():]
    return rest[:1].upper() + rest[1:]
