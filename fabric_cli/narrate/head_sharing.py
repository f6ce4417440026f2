"""A head proven with others of its role: backups that carry the same stitch, or a division of
the pronouns between them, told from each head's per-pronoun accuracy (its phrase banks are in
head_lines_becoming.py)."""

from __future__ import annotations

from fabric_cli.narrate.common import heads_list
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import and_list, as_float, pct
from fabric_cli.narrate.head_lines_becoming import COVERED, DIVIDED, REDUNDANT
from fabric_cli.narrate.story import Voice

MASTERED = 0.8  # a head "carries" a pronoun form when its argmax finds the antecedent this often


def _forms(by_pronoun: dict | None) -> list[str]:
    return [w for w, acc in sorted((by_pronoun or {}).items()) if as_float(acc) >= MASTERED]


def _quoted(words: list[str]) -> str:
    marks = [f'"{w}"' for w in words]
    return and_list(marks)


def sharing(run: RunFacts, voice: Voice, spec: dict, twins: list[tuple[int, int]]) -> str:
    """Redundancy or division of labour, told from the per-pronoun accuracies."""
    verb = "carries" if len(twins) == 1 else "carry"
    mine = _forms(spec.get("by_pronoun"))
    theirs: list[str] = []
    for layer, head in twins:
        other = run.specialist_of(layer, head, spec.get("role")) or {}
        theirs += [w for w in _forms(other.get("by_pronoun")) if w not in theirs]
    # a division needs each side to master a pronoun the other does not
    divided = mine and theirs and not set(theirs) <= set(mine)
    if not divided or spec.get("team_heldout_acc") is None:
        return voice.say("redundant", REDUNDANT, list=heads_list(twins), verb=verb,
                         it_they="it" if len(twins) == 1 else "they",
                         hold="holds" if len(twins) == 1 else "hold")
    only_theirs = [w for w in theirs if w not in mine]
    if set(mine) <= set(theirs):
        return voice.say("covered", COVERED, list=heads_list(twins), verb=verb,
                         theirs=_quoted(only_theirs), team=pct(spec.get("team_heldout_acc")),
                         is_are="is" if len(only_theirs) == 1 else "are")
    return voice.say("divided", DIVIDED, mine=_quoted(mine), theirs=_quoted(only_theirs),
                     list=heads_list(twins), verb=verb, team=pct(spec.get("team_heldout_acc")))
