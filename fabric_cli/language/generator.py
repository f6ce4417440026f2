"""The generator: the grammar compiled to arrays, sampled many sentences at a time.

A sentence is drawn by these latent choices, in this order:
  1. an ordered noun pair (a, b), uniform over the split's pairs (two nouns of different
     agreement; held-out pairs never co-occur in training),
  2. a shape: a template, weighted, with each optional [ ] part present or not,
  3. the antecedent of {p}: a or b, 50/50 (only when the shape uses {p}),
  4. independently per slot, a word: uniform over the class, the noun's verbs or attributes.
Given (pair, shape, antecedent) -- a "component" -- the slots are independent; the sampler
below and the exact calculations in floor.py both read the same tables.

Shape letters: N sentences, L slots (the longest template), S shapes, K components.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from fabric_cli.language.grammar import Grammar
from fabric_cli.language.tokenizer import PAD

WORD, CLASS, NOUN, SUBJ, POSS, VERB, ATTR = range(7)
KIND_CODES = {
    "word": WORD,
    "class": CLASS,
    "noun": NOUN,
    "subj": SUBJ,
    "poss": POSS,
    "verb": VERB,
    "attr": ATTR,
}
REF_A, REF_B, REF_P = 0, 1, 2
REF_CODES = {"a": REF_A, "b": REF_B, "p": REF_P, "": REF_A}
SPLITS = ("train", "heldout")


def noun_pairs(grammar: Grammar) -> list[tuple[int, int]]:
    """Unordered pairs (i < j) of nouns of different agreement, by noun index."""
    nouns = grammar.nouns
    return [
        (i, j)
        for i, j in itertools.combinations(range(len(nouns)), 2)
        if nouns[i].agreement != nouns[j].agreement
    ]


def split_pairs(grammar: Grammar, heldout_fraction: float, seed: int) -> dict[str, list]:
    """Hold out a fraction of the unordered pairs, never leaving a noun without training pairs.

    Fixed by the seed, so the same scenario always holds out the same pairs.
    """
    pairs = noun_pairs(grammar)
    wanted = 0 if heldout_fraction <= 0 else max(1, round(heldout_fraction * len(pairs)))
    order = np.random.default_rng([seed, 7]).permutation(len(pairs))
    train_count = {n: 0 for n in range(len(grammar.nouns))}
    for i, j in pairs:
        train_count[i] += 1
        train_count[j] += 1
    heldout: list[tuple[int, int]] = []
    for k in order:
        if len(heldout) >= wanted:
            break
        i, j = pairs[k]
        if train_count[i] > 1 and train_count[j] > 1:
            heldout.append((i, j))
            train_count[i] -= 1
            train_count[j] -= 1
    held = set(heldout)
    train = [p for p in pairs if p not in held]
    return {"train": sorted(train), "heldout": sorted(heldout)}


@dataclass
class SampleArrays:
    ids: np.ndarray  # (N, L) word ids, PAD after the end
    pos: np.ndarray  # (N, L) index into CompiledGrammar.pos_tags, -1 after the end
    antecedent: np.ndarray  # (N, L) slot index of the pronoun's antecedent noun, -1 elsewhere
    length: np.ndarray  # (N,) tokens per sentence, "." included
    a: np.ndarray  # (N,) noun index of {a}
    b: np.ndarray  # (N,) noun index of {b}
    noun_slots: np.ndarray  # (N, 2) slot index of {a} and of {b}


class CompiledGrammar:
    def __init__(self, grammar: Grammar, word_id: dict[str, int], pairs: dict[str, list]) -> None:
        self.grammar = grammar
        self.pairs = {
            split: np.array(
                [p for i, j in pairs[split] for p in ((i, j), (j, i))], dtype=np.int64
            ).reshape(-1, 2)
            for split in SPLITS
        }
        nouns = grammar.nouns
        agreements = list(grammar.pronouns)
        self.noun_word = np.array([word_id[n.word] for n in nouns])
        self.noun_agreement = np.array([agreements.index(n.agreement) for n in nouns])
        self.subj_word = np.array([word_id[grammar.pronouns[a][0]] for a in agreements])
        self.poss_word = np.array([word_id[grammar.pronouns[a][1]] for a in agreements])
        self.verb_table, self.verb_count = _ragged([[word_id[w] for w in n.verbs] for n in nouns])
        self.attr_table, self.attr_count = _ragged(
            [[word_id[w] for w in n.attributes] for n in nouns]
        )
        class_names = list(grammar.classes)
        self.class_table, self.class_count = _ragged(
            [[word_id[w] for w in grammar.classes[c].words] for c in class_names] or [[PAD]]
        )
        lexicon = grammar.lexicon()
        self.pos_tags = sorted(set(lexicon.values()))
        self._compile_shapes(grammar, word_id, class_names, lexicon)

    def _compile_shapes(self, grammar: Grammar, word_id: dict, class_names: list, lexicon: dict):
        rows = []
        q = grammar.optional_probability
        total_weight = sum(t.weight for t in grammar.templates)
        for t in grammar.templates:
            for mask in itertools.product((True, False), repeat=t.n_groups):
                slots = [s for s in t.slots if s.group < 0 or mask[s.group]]
                prob = t.weight / total_weight
                for present in mask:
                    prob *= q if present else 1 - q
                rows.append((slots, prob))
        S, L = len(rows), max(len(slots) for slots, _ in rows)
        self.kind = np.full((S, L), WORD)
        self.word_param = np.full((S, L), PAD)
        self.class_param = np.zeros((S, L), dtype=np.int64)
        self.ref = np.zeros((S, L), dtype=np.int64)
        self.pos = np.full((S, L), -1)
        self.length = np.array([len(slots) for slots, _ in rows])
        self.shape_prob = np.array([p for _, p in rows])
        self.noun_slot = np.zeros((S, 2), dtype=np.int64)
        self.uses_p = np.zeros(S, dtype=bool)
        pos_index = {tag: i for i, tag in enumerate(self.pos_tags)}
        for s, (slots, _) in enumerate(rows):
            for j, slot in enumerate(slots):
                self.kind[s, j] = KIND_CODES[slot.kind]
                self.ref[s, j] = REF_CODES[slot.ref]
                if slot.kind == "word":
                    self.word_param[s, j] = word_id[slot.name]
                    tag = lexicon[slot.name]
                elif slot.kind == "class":
                    self.class_param[s, j] = class_names.index(slot.name)
                    tag = grammar.classes[slot.name].pos
                else:
                    tag = {
                        "noun": "NOUN",
                        "subj": "PRON",
                        "poss": "PRON",
                        "verb": "VERB",
                        "attr": "NOUN",
                    }[slot.kind]
                self.pos[s, j] = pos_index[tag]
                self.uses_p[s] |= slot.ref == "p"
            for r, ref in enumerate(("a", "b")):
                self.noun_slot[s, r] = next(
                    j for j, sl in enumerate(slots) if sl.kind == "noun" and sl.ref == ref
                )
        self.n_slots = L

    # -- sampling -------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, n: int, split: str) -> SampleArrays:
        """n independent sentences of the split, all latent choices drawn from `rng`."""
        pairs = self.pairs[split]
        pair = pairs[rng.integers(len(pairs), size=n)]
        a, b = pair[:, 0], pair[:, 1]
        shape = rng.choice(len(self.shape_prob), size=n, p=self.shape_prob)
        to_b = rng.integers(2, size=n).astype(bool) & self.uses_p[shape]
        u = rng.random((n, self.n_slots))  # one uniform per slot, used by whichever kind it is

        kind, ref = self.kind[shape], self.ref[shape]  # (N, L)
        x = np.where(ref == REF_A, a[:, None], b[:, None])
        x = np.where(ref == REF_P, np.where(to_b, b, a)[:, None], x)  # the noun each slot is about
        cls = self.class_param[shape]

        def pick(table: np.ndarray, count: np.ndarray, row: np.ndarray) -> np.ndarray:
            k = np.minimum((u * count[row]).astype(np.int64), count[row] - 1)
            return table[row, k]

        agreement = self.noun_agreement[x]
        ids = np.select(
            [
                kind == WORD,
                kind == CLASS,
                kind == NOUN,
                kind == SUBJ,
                kind == POSS,
                kind == VERB,
                kind == ATTR,
            ],
            [
                self.word_param[shape],
                pick(self.class_table, self.class_count, cls),
                self.noun_word[x],
                self.subj_word[agreement],
                self.poss_word[agreement],
                pick(self.verb_table, self.verb_count, x),
                pick(self.attr_table, self.attr_count, x),
            ],
        )
        length = self.length[shape]
        inside = np.arange(self.n_slots)[None, :] < length[:, None]
        ids = np.where(inside, ids, PAD)
        noun_slots = self.noun_slot[shape]  # (N, 2)
        refers_to_b = (ref == REF_B) | ((ref == REF_P) & to_b[:, None])
        antecedent_slot = np.where(refers_to_b, noun_slots[:, 1:2], noun_slots[:, 0:1])
        is_pronoun = ((kind == SUBJ) | (kind == POSS)) & inside
        antecedent = np.where(is_pronoun, antecedent_slot, -1)
        return SampleArrays(ids, self.pos[shape], antecedent, length, a, b, noun_slots)

    # -- exact probabilities --------------------------------------------------------------

    def components(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (pair, shape, antecedent) with its probability: a, b, p (noun ids), shape, prob.

        Returns (shape (K,), x (K, 3) noun index for refs a, b, p, prob (K,), length (K,)).
        """
        pairs = self.pairs[split]
        shapes, xs, probs = [], [], []
        for s in range(len(self.shape_prob)):
            antecedents = (0, 1) if self.uses_p[s] else (0,)
            for to_b in antecedents:
                p_noun = pairs[:, 1] if to_b else pairs[:, 0]
                shapes.append(np.full(len(pairs), s))
                xs.append(np.stack([pairs[:, 0], pairs[:, 1], p_noun], axis=1))
                probs.append(
                    np.full(len(pairs), self.shape_prob[s] / len(pairs) / len(antecedents))
                )
        shape = np.concatenate(shapes)
        return shape, np.concatenate(xs), np.concatenate(probs), self.length[shape]

    def slot_distribution(self, s: int, j: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The words slot j of shape s can be, with their probabilities, given nouns x (a, b, p)."""
        kind = self.kind[s, j]
        noun = x[self.ref[s, j]]
        if kind == WORD:
            return np.array([self.word_param[s, j]]), np.ones(1)
        if kind == NOUN:
            return np.array([self.noun_word[noun]]), np.ones(1)
        if kind in (SUBJ, POSS):
            table = self.subj_word if kind == SUBJ else self.poss_word
            return np.array([table[self.noun_agreement[noun]]]), np.ones(1)
        if kind == CLASS:
            c = self.class_param[s, j]
            words = self.class_table[c, : self.class_count[c]]
        elif kind == VERB:
            words = self.verb_table[noun, : self.verb_count[noun]]
        else:
            words = self.attr_table[noun, : self.attr_count[noun]]
        return words, np.full(len(words), 1.0 / len(words))


def _ragged(lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Lists of different lengths as a padded (rows, longest) table plus each row's count."""
    width = max(len(row) for row in lists)
    table = np.full((len(lists), width), PAD, dtype=np.int64)
    for i, row in enumerate(lists):
        table[i, : len(row)] = row
    return table, np.array([len(row) for row in lists], dtype=np.int64)
