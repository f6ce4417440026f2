"""What a narrator hands back (Story, Chapter) and how it chooses words (Voice).

A Voice picks one template from a phrase bank deterministically from the run's seed, the
component and the slot, so the same run always tells the same story and another seed tells
it in other words.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Chapter:
    title: str
    paragraphs: list[str]
    # Who speaks each paragraph (a component name); empty means the story's own narrator.
    voices: list[str] = field(default_factory=list)

    def voice_of(self, index: int, default: str) -> str:
        return self.voices[index] if index < len(self.voices) else default


@dataclass
class Story:
    title: str
    component: str
    chapters: list[Chapter]
    epigraph: str = ""  # one italic line under the title

    def text(self) -> str:
        """The whole story as markdown-ish text (what `--export story.md` writes)."""
        lines = [f"# {self.title}", ""]
        if self.epigraph:
            lines += [f"*{self.epigraph}*", ""]
        for chapter in self.chapters:
            lines += [f"## {chapter.title}", ""]
            for paragraph in chapter.paragraphs:
                lines += [paragraph, ""]
        return "\n".join(lines).rstrip() + "\n"


class Voice:
    """Chooses phrasings for one component of one run."""

    def __init__(self, seed: int, component: str) -> None:
        self.seed = seed
        self.component = component

    def pick(self, slot: str, bank: Sequence[str]) -> str:
        rng = random.Random(f"{self.seed}:{self.component}:{slot}")
        return bank[rng.randrange(len(bank))]

    def say(self, slot: str, bank: Sequence[str], **values: object) -> str:
        """One template from `bank`, filled with already-formatted measured values."""
        return self.pick(slot, bank).format(**values)
