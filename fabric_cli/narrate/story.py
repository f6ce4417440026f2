"""What a narrator hands back (Story, Chapter) and how it chooses words (Voice).

A Voice picks one template from a phrase bank deterministically from the run's seed, the
component and the slot, so the same run always tells the same story and another seed tells
it in other words. A bank that makes a claim (claims.Bank) is spoken only with a Claim that
holds; every phrase a voice speaks is kept in `told`, with the claim it stood on, so the
claims test can check each one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from fabric_cli.narrate.claims import Claim, judge, needed


@dataclass
class Chapter:
    title: str
    paragraphs: list[str]
    # Who speaks each paragraph (a component name); empty means the story's own narrator.
    voices: list[str] = field(default_factory=list)

    def voice_of(self, index: int, default: str) -> str:
        return self.voices[index] if index < len(self.voices) else default


@dataclass(frozen=True)
class Told:
    """One phrase as spoken: the template, the text, the fact it needed and its claim."""

    template: str
    text: str
    needs: str | None
    claim: Claim | None


@dataclass
class Story:
    title: str
    component: str
    chapters: list[Chapter]
    epigraph: str = ""  # one italic line under the title
    told: list[Told] = field(default_factory=list)  # every phrase spoken, in order
    labels: dict[str, str] = field(default_factory=dict)  # voice -> name shown before its lines

    def text(self) -> str:
        """The whole story as markdown-ish text, for tests and scripts (`fabric narrate --export
        story.md` writes its own, with each speaker's display name and user text made literal)."""
        lines = [f"# {self.title}", ""]
        if self.epigraph:
            lines += [f"*{self.epigraph}*", ""]
        for chapter in self.chapters:
            lines += [f"## {chapter.title}", ""]
            for i, paragraph in enumerate(chapter.paragraphs):
                speaker = chapter.voice_of(i, self.component)
                label = self.labels.get(speaker, speaker)
                prefix = f"**{label}:** " if speaker != self.component else ""
                lines += [prefix + paragraph, ""]
        return "\n".join(lines).rstrip() + "\n"


class ClaimError(AssertionError):
    """A voice tried to say a phrase whose fact does not hold: a bug in the voice."""


class Voice:
    """Chooses phrasings for one component of one run, and keeps what it said."""

    def __init__(self, seed: int, component: str) -> None:
        self.seed = seed
        self.component = component
        self.told: list[Told] = []

    def claim(self, name: str, **values: object) -> Claim:
        """Judge a fact on measured numbers (see claims.FACTS)."""
        return judge(name, **values)

    def pick(self, slot: str, bank: Sequence[str], claim: Claim | None = None) -> str:
        template = self._choose(slot, bank, claim)
        self.told.append(Told(template, template, needed(bank), claim))
        return template

    def say(self, slot: str, bank: Sequence[str], claim: Claim | None = None,
            **values: object) -> str:
        """One template from `bank`, filled with already-formatted measured values."""
        template = self._choose(slot, bank, claim)
        text = template.format(**values)
        self.told.append(Told(template, text, needed(bank), claim))
        return text

    def _choose(self, slot: str, bank: Sequence[str], claim: Claim | None) -> str:
        need = needed(bank)
        if need is not None and (claim is None or claim.name != need or not claim.holds):
            raise ClaimError(f"{self.component}/{slot}: needs {need!r}, has {claim!r}")
        rng = random.Random(f"{self.seed}:{self.component}:{slot}")
        first = rng.randrange(len(bank))
        used = {t.template for t in self.told}
        # never the same sentence twice: the next variant this voice has not spoken yet
        for i in range(len(bank)):
            if bank[(first + i) % len(bank)] not in used:
                return bank[(first + i) % len(bank)]
        return bank[first]
