"""Annotating free text (story sentences, what a user types) from the scenario's lexicon.

A generated sentence knows its annotation exactly; a typed one is read word by word: each
word's part of speech from the lexicon ("UNK" if the grammar never uses it), and for each
pronoun the one candidate noun before it that agrees with it. When two nouns agree, the word
after the pronoun may still tell them apart, as the language does: it is one of its
antecedent's own words ("the scientists published their findings after they COMPLETED": the
scientists complete, findings do not). When no noun agrees ("she left the room": she points
outside the sentence) or the agreeing nouns cannot be told apart ("the cat chased the dog
because it WAS fast": both own "was" as little), the antecedent is -1: the grammar alone
cannot say.

Frame objects point back to the latest verb before them that takes them; a numbered word
("waits" / "wait") to the earliest candidate noun before it of its number, a reflexive
("herself") to the earliest of its agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fabric_cli.language.corpus import Corpus, Sentence


def antecedents(grammar, words: Sequence[str]) -> list[int]:
    """For each word, the index of its antecedent if it is a pronoun the grammar can
    resolve, else -1 (see the module docstring for the rule)."""
    words = list(words)
    candidates = {n.word for n in grammar.nouns}
    owns = {n.word: set(n.verbs) | set(n.attributes) for n in grammar.nouns}
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
        if len(agreeing) > 1 and i + 1 < len(words):
            agreeing = {w: k for w, k in agreeing.items() if words[i + 1] in owns[w]}
        antecedent.append(next(iter(agreeing.values())) if len(agreeing) == 1 else -1)
    return antecedent


def annotate_words(corpus: Corpus, words: Sequence[str]) -> Sentence:
    """A Sentence for already-split, lower-case words (Tokenizer.split)."""
    from fabric_cli.language.corpus import Sentence

    grammar = corpus.grammar
    words = list(words)
    candidates = {n.word for n in grammar.nouns}
    agreement = [grammar.agreement_of(w) for w in words]
    antecedent = antecedents(grammar, words)
    mentioned: dict[str, int] = {}
    for k, word in enumerate(words):
        if word in candidates:
            mentioned.setdefault(word, k)
    return Sentence(
        object_verb=_object_verbs(grammar, words),
        subject_noun=_subject_nouns(grammar, words, candidates),
        words=words,
        pos=[corpus.lexicon.get(w, "UNK") for w in words],
        antecedent=antecedent,
        nouns=tuple(mentioned),
        noun_positions=tuple(mentioned.values()),
        split="story",
        agreement=agreement,
    )


def _object_verbs(grammar, words: list[str]) -> list[int]:
    takes: dict[str, set[str]] = {}
    for frame in grammar.frames.values():
        for verb, objects in zip(frame.verbs, frame.objects, strict=True):
            takes.setdefault(verb, set()).update(objects)
    out = []
    for i, word in enumerate(words):
        verbs = [k for k in range(i) if word in takes.get(words[k], ())]
        out.append(verbs[-1] if verbs else -1)
    return out


def _subject_nouns(grammar, words: list[str], candidates: set[str]) -> list[int]:
    number_of_form = {w: n for cls in grammar.numbered.values()
                      for n, forms in cls.forms.items() for w in forms}
    number_of_noun = {n.word: grammar.number_of(n.agreement) for n in grammar.nouns}
    agreement_of_reflexive = {w: a for a, w in grammar.reflexives.items()}
    agreement_of_noun = {n.word: n.agreement for n in grammar.nouns}
    out = []
    for i, word in enumerate(words):
        number = number_of_form.get(word)
        agreement = agreement_of_reflexive.get(word)
        nouns = [k for k in range(i) if words[k] in candidates
                 and (number_of_noun[words[k]] == number if number
                      else agreement_of_noun[words[k]] == agreement)] \
            if number or agreement else []
        out.append(nouns[0] if nouns else -1)
    return out
