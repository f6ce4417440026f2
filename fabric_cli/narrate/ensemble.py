"""All the voices taking turns: openings, then every moment in the order it happened, each told
by its own component, then the fade. Reuses the narrators' own paragraphs and moment lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from fabric_cli.errors import FabricError
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import head_name
from fabric_cli.narrate.story import Chapter, Story, Voice

TITLES = ["The Fabric: A Chorus of the Loom", "The Fabric, Told by Everyone Inside It"]
EPIGRAPH = [
    "We are the Fabric: every thread of it, speaking in turn.",
    "Many voices, one weave. Each of us tells the part it saw.",
]
OPENING = ("tokenizer", "loss", "head", "gradient")
CLOSING = ("adam", "layernorm", "residual", "softmax", "ffn", "dropout", "engineers", "loss")
WINDOWS = ("Early Steps", "The Middle Passage", "Late Steps")

# (component, moment) -> one line in that component's voice, or None when it has no line.
MomentTeller = Callable[[dict, int], str | None]


def tell(run: RunFacts, stories: Mapping[str, Story], moment_line: MomentTeller,
         voice: Voice) -> Story:
    chapters = []
    opening = Chapter("Random Beginnings", [])
    for name in OPENING:
        story = stories.get(name)
        if story and story.chapters and story.chapters[0].paragraphs:
            opening.paragraphs.append(story.chapters[0].paragraphs[0])
            opening.voices.append(name)
    chapters.append(opening)

    total = max(1, int(run.training.get("steps") or (run.last_step or {}).get("step") or 1))
    current: Chapter | None = None
    current_window = -1
    for moment in run.moments:
        line = moment_line(moment, run.seed)
        if line is None:
            continue
        window = min(len(WINDOWS) - 1, int(moment.get("step", 0)) * len(WINDOWS) // total)
        if current is None or window != current_window:
            current = Chapter(WINDOWS[window], [])
            current_window = window
            chapters.append(current)
        current.paragraphs.append(line)
        current.voices.append(_voice(moment))

    closing = Chapter("The Storm" if run.status == "diverged" else "The Fade", [])
    for name in CLOSING:
        story = stories.get(name)
        if story and story.chapters and story.chapters[-1].paragraphs:
            closing.paragraphs.append(story.chapters[-1].paragraphs[-1])
            closing.voices.append(name)
    head = stories.get("head")
    if head and head.chapters:
        last = head.chapters[-1]
        closing.paragraphs += last.paragraphs[-2:]
        closing.voices += ["head"] * len(last.paragraphs[-2:])
    chapters.append(closing)
    return Story(voice.pick("title", TITLES), "ensemble", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))


def safe_stories(run: RunFacts, tellers: Mapping[str, Callable[[RunFacts], Story]],
                 names: Sequence[str]) -> dict[str, Story]:
    """Each narrator's own story; a head with nothing to tell (no probes yet) is left out."""
    stories = {}
    for name in names:
        try:
            stories[name] = tellers[name](run)
        except FabricError:
            continue
    return stories


def _voice(moment: dict) -> str:
    """Who speaks a moment: a head by its own name (L0H2), since several heads speak."""
    component = str(moment.get("component"))
    if component == "head" and moment.get("layer") is not None and moment.get("head") is not None:
        return head_name(moment["layer"], moment["head"])
    return component
