"""Annotating free text (story sentences, what a user types) from the scenario's lexicon.

A generated sentence knows its annotation exactly; a typed one is read word by word: each
word's part of speech from the lexicon ("UNK" if the grammar never uses it), and for each
pronoun the one candidate noun before it that agrees with it. When no noun or two different
nouns agree ("the cat chased the dog because it ..."), the antecedent is -1: the grammar
alone cannot say.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fabric_cli.language.corpus import Corpus, Sentence


def annotate_words(corpus: Corpus, words: Sequence[str]) -> Sentence:
    """A Sentence for already-split, lower-case words (Tokenizer.split)."""
    from fabric_cli.language.corpus import Sentence

    grammar = corpus.grammar
    words = list(words)
    candidates = {n.word for n in grammar.nouns}
    pronoun_forms = {f for forms in grammar.pronouns.values() for f in forms}
    agreement = [grammar.agreement_of(w) for w in words]
    antecedent = []
    for i, word in enumerate(words):
        if word not in pronoun_forms:
            antecedent.append(-1)
            continue
        agreeing = {  # the latest mention of each agreeing noun
            words[k]: k for k in range(i) if words[k] in candidates and agreement[k] == agreement[i]
        }
        antecedent.append(next(iter(agreeing.values())) if len(agreeing) == 1 else -1)
    mentioned: dict[str, int] = {}
    for k, word in enumerate(words):
        if word in candidates:
            mentioned.setdefault(word, k)
    return Sentence(
        words=words,
        pos=[corpus.lexicon.get(w, "UNK") for w in words],
        antecedent=antecedent,
        nouns=tuple(mentioned),
        noun_positions=tuple(mentioned.values()),
        split="story",
        agreement=agreement,
    )
