"""The generator: the grammar compiled to arrays, sampled many sentences at a time.

A sentence is drawn by these latent choices, in this order:
  1. a shape: a template, weighted, with each optional [ ] part present or not, and for each
     frame class it uses, the frame's verb (uniform): the verb is part of the shape, so its
     object slot is a plain uniform draw from that verb's objects,
  2. an ordered noun pair (a, b), uniform over the split's pairs of the kinds the template
     names (two nouns of different agreement, and of different number when the template
     says contrast = "number"; held-out pairs never co-occur in training),
  3. the antecedent of {p}: a or b, 50/50 ({q} is the other; only when the shape uses them),
  4. independently per slot, a word: uniform over the class, the noun's verbs or attributes,
     the numbered class's forms of the noun's number, or (for {o.*}) the pronouns of the
     agreements neither candidate has.
Given (pair, shape, antecedent) -- a "component" -- the slots are independent; the sampler
below and the exact calculations in floor.py both read the same tables. Shapes without a pair
in a split (a kind signature with no held-out pair) are dropped there and the rest
renormalised.

Shape letters: N sentences, L slots (the longest template), S shapes, K components.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from fabric_cli.language.grammar import Grammar
from fabric_cli.language.tokenizer import PAD

WORD, CLASS, NOUN, SUBJ, POSS, VERB, ATTR, NUMBERED, OSUBJ, OPOSS, REFL = range(11)
KIND_CODES = {
    "word": WORD,
    "class": CLASS,
    "noun": NOUN,
    "subj": SUBJ,
    "poss": POSS,
    "verb": VERB,
    "attr": ATTR,
    "numbered": NUMBERED,
    "refl": REFL,
}
REF_A, REF_B, REF_P, REF_Q = 0, 1, 2, 3
REF_CODES = {"a": REF_A, "b": REF_B, "p": REF_P, "q": REF_Q, "o": REF_A, "": REF_A}
SPLITS = ("train", "heldout")


def noun_pairs(grammar: Grammar) -> list[tuple[int, int]]:
    """Unordered pairs (i < j) of nouns of different agreement whose kinds some template
    takes (in either order), by noun index."""
    nouns = grammar.nouns
    signatures = {t.kinds for t in grammar.templates}
    return [
        (i, j)
        for i, j in itertools.combinations(range(len(nouns)), 2)
        if nouns[i].agreement != nouns[j].agreement
        and ((nouns[i].kind, nouns[j].kind) in signatures
             or (nouns[j].kind, nouns[i].kind) in signatures)
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
    object_verb: np.ndarray  # (N, L) for a frame's object, the slot of its verb; -1 elsewhere
    subject_noun: np.ndarray  # (N, L) for a numbered word, the slot of its noun; -1 elsewhere


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
        self.noun_kind = [n.kind for n in nouns]
        self.noun_agreement = np.array([agreements.index(n.agreement) for n in nouns])
        self.subj_word = np.array([word_id[grammar.pronouns[a][0]] for a in agreements])
        self.poss_word = np.array([word_id[grammar.pronouns[a][1]] for a in agreements])
        self.refl_word = np.array([word_id[grammar.reflexives[a]] if a in grammar.reflexives
                                   else PAD for a in agreements])
        # {x.RUN}: row class * 2 + number (0 singular, 1 plural) of the numbered table
        self.agreement_number = np.array(
            [int(grammar.number_of(a) == "plural") for a in agreements])
        numbered = list(grammar.numbered.values())
        self.numbered_table, self.numbered_count = _ragged(
            [[word_id[w] for w in cls.forms[n]] for cls in numbered
             for n in ("singular", "plural")] or [[PAD]])
        # {o.subj} / {o.poss}: row agreement(a) * A + agreement(b), the other agreements' forms
        A = len(agreements)
        others = [[k for k in range(A) if k not in (i, j)] for i in range(A) for j in range(A)]
        self.osubj_table, self.osubj_count = _ragged(
            [[int(self.subj_word[k]) for k in row] or [PAD] for row in others])
        self.oposs_table, self.oposs_count = _ragged(
            [[int(self.poss_word[k]) for k in row] or [PAD] for row in others])
        self.n_agreements = A
        self.verb_table, self.verb_count = _ragged([[word_id[w] for w in n.verbs] for n in nouns])
        self.attr_table, self.attr_count = _ragged(
            [[word_id[w] for w in n.attributes] for n in nouns]
        )
        class_names = list(grammar.classes)
        class_lists = [[word_id[w] for w in grammar.classes[c].words] for c in class_names]
        # each frame verb's objects are one more class, drawn once the shape fixed the verb
        self.object_class: dict[tuple[str, int], int] = {}
        for frame in grammar.frames.values():
            for v, objects in enumerate(frame.objects):
                self.object_class[(frame.name, v)] = len(class_lists)
                class_lists.append([word_id[w] for w in objects])
        self.class_table, self.class_count = _ragged(class_lists or [[PAD]])
        lexicon = grammar.lexicon()
        self.pos_tags = sorted(set(lexicon.values()))
        self._compile_shapes(grammar, word_id, class_names, lexicon)

    def _compile_shapes(self, grammar: Grammar, word_id: dict, class_names: list, lexicon: dict):
        rows = []
        q = grammar.optional_probability
        total_weight = sum(t.weight for t in grammar.templates)
        for t in grammar.templates:
            frames = list(dict.fromkeys(s.name for s in t.slots if s.kind == "frame"))
            choices = [range(len(grammar.frames[f].verbs)) for f in frames]
            for mask in itertools.product((True, False), repeat=t.n_groups):
                for verbs in itertools.product(*choices):
                    slots = [s for s in t.slots if s.group < 0 or mask[s.group]]
                    prob = t.weight / total_weight
                    for present in mask:
                        prob *= q if present else 1 - q
                    for f in frames:
                        prob /= len(grammar.frames[f].verbs)
                    rows.append((slots, prob, dict(zip(frames, verbs, strict=True)),
                                 (*t.kinds, t.contrast_number)))
        S, L = len(rows), max(len(slots) for slots, *_ in rows)
        self.kind = np.full((S, L), WORD)
        self.word_param = np.full((S, L), PAD)
        self.class_param = np.zeros((S, L), dtype=np.int64)
        self.ref = np.zeros((S, L), dtype=np.int64)
        self.pos = np.full((S, L), -1)
        self.governor = np.full((S, L), -1)  # an object's verb slot
        self.length = np.array([len(slots) for slots, *_ in rows])
        self.template_prob = np.array([p for _, p, *_ in rows])
        self.noun_slot = np.zeros((S, 2), dtype=np.int64)
        self.uses_p = np.zeros(S, dtype=bool)
        pos_index = {tag: i for i, tag in enumerate(self.pos_tags)}
        numbered = list(grammar.numbered)
        for s, (slots, _, verbs, _kinds) in enumerate(rows):
            verb_slot = {}
            for j, slot in enumerate(slots):
                kind = slot.kind
                self.ref[s, j] = REF_CODES[slot.ref]
                if kind in ("subj", "poss") and slot.ref == "o":
                    self.kind[s, j] = OSUBJ if kind == "subj" else OPOSS
                elif kind in ("frame", "object"):
                    self.kind[s, j] = WORD if kind == "frame" else CLASS
                else:
                    self.kind[s, j] = KIND_CODES[kind]
                if kind == "word":
                    self.word_param[s, j] = word_id[slot.name]
                    tag = lexicon[slot.name]
                elif kind == "class":
                    self.class_param[s, j] = class_names.index(slot.name)
                    tag = grammar.classes[slot.name].pos
                elif kind == "frame":
                    verb = grammar.frames[slot.name].verbs[verbs[slot.name]]
                    self.word_param[s, j] = word_id[verb]
                    verb_slot[slot.name] = j
                    tag = "VERB"
                elif kind == "object":
                    self.class_param[s, j] = self.object_class[(slot.name, verbs[slot.name])]
                    self.governor[s, j] = verb_slot[slot.name]
                    tag = "NOUN"
                elif kind == "numbered":
                    self.class_param[s, j] = numbered.index(slot.name)
                    tag = grammar.numbered[slot.name].pos
                else:
                    tag = {
                        "noun": "NOUN",
                        "subj": "PRON",
                        "poss": "PRON",
                        "refl": "PRON",
                        "verb": "VERB",
                        "attr": "NOUN",
                    }[kind]
                self.pos[s, j] = pos_index[tag]
                self.uses_p[s] |= slot.ref in ("p", "q")
            for r, ref in enumerate(("a", "b")):
                self.noun_slot[s, r] = next(
                    j for j, sl in enumerate(slots) if sl.kind == "noun" and sl.ref == ref
                )
        self.n_slots = L
        # the ordered pairs each shape may draw, per split, and the shapes' probabilities there
        self.shape_pairs: dict[str, np.ndarray] = {}
        self.pair_count: dict[str, np.ndarray] = {}
        self.shape_prob_of: dict[str, np.ndarray] = {}
        for split in SPLITS:
            lists = []
            for *_, (ka, kb, contrast) in rows:
                pairs = self.pairs[split]
                number = self.agreement_number[self.noun_agreement]
                keep = [k for k, (i, j) in enumerate(pairs.tolist())
                        if self.noun_kind[i] == ka and self.noun_kind[j] == kb
                        and (not contrast or number[i] != number[j])]
                lists.append(keep)
            width = max(1, max(len(k) for k in lists))
            table = np.zeros((S, width), dtype=np.int64)
            for s, keep in enumerate(lists):
                table[s, : len(keep)] = keep
            count = np.array([len(k) for k in lists], dtype=np.int64)
            prob = np.where(count > 0, self.template_prob, 0.0)
            self.shape_pairs[split] = table
            self.pair_count[split] = count
            self.shape_prob_of[split] = prob / prob.sum() if prob.sum() > 0 else prob

    @property
    def shape_prob(self) -> np.ndarray:
        """The shapes' probabilities in training."""
        return self.shape_prob_of["train"]

    # -- sampling -------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator, n: int, split: str) -> SampleArrays:
        """n independent sentences of the split, all latent choices drawn from `rng`."""
        # Drawn in the order the first version drew them (pair, shape, antecedent, slots), so
        # a language whose templates all take every pair samples exactly as it did; a shape
        # restricted to some pairs (by kind or number) redraws among its own with one more
        # uniform, drawn last.
        pairs = self.pairs[split]
        k_any = rng.integers(len(pairs), size=n)
        shape_prob = self.shape_prob_of[split]
        shape = rng.choice(len(shape_prob), size=n, p=shape_prob)
        to_b = rng.integers(2, size=n).astype(bool) & self.uses_p[shape]
        u = rng.random((n, self.n_slots))  # one uniform per slot, used by whichever kind it is
        count = self.pair_count[split][shape]
        restricted = count < len(pairs)
        if restricted.any():
            v = rng.random(n)
            k_own = np.minimum((v * count).astype(np.int64), count - 1)
            k_any = np.where(restricted, self.shape_pairs[split][shape, k_own], k_any)
        pair = pairs[k_any]
        a, b = pair[:, 0], pair[:, 1]

        kind, ref = self.kind[shape], self.ref[shape]  # (N, L)
        p_noun, q_noun = np.where(to_b, b, a), np.where(to_b, a, b)
        x = np.select([ref == REF_A, ref == REF_B, ref == REF_P],
                      [a[:, None], b[:, None], p_noun[:, None]], q_noun[:, None])
        cls = self.class_param[shape]

        def pick(table: np.ndarray, count: np.ndarray, row: np.ndarray) -> np.ndarray:
            k = np.minimum((u * count[row]).astype(np.int64), count[row] - 1)
            return table[row, k]

        agreement = self.noun_agreement[x]
        # every branch of np.select below is evaluated: rows outside a kind's slots are 0
        number_row = np.where(kind == NUMBERED, cls * 2 + self.agreement_number[agreement], 0)
        outside_row = np.broadcast_to(
            (self.noun_agreement[a] * self.n_agreements + self.noun_agreement[b])[:, None],
            kind.shape)
        ids = np.select(
            [
                kind == WORD,
                kind == CLASS,
                kind == NOUN,
                kind == SUBJ,
                kind == POSS,
                kind == VERB,
                kind == ATTR,
                kind == NUMBERED,
                kind == OSUBJ,
                kind == OPOSS,
                kind == REFL,
            ],
            [
                self.word_param[shape],
                pick(self.class_table, self.class_count, cls),
                self.noun_word[x],
                self.subj_word[agreement],
                self.poss_word[agreement],
                pick(self.verb_table, self.verb_count, x),
                pick(self.attr_table, self.attr_count, x),
                pick(self.numbered_table, self.numbered_count, number_row),
                pick(self.osubj_table, self.osubj_count, outside_row),
                pick(self.oposs_table, self.oposs_count, outside_row),
                self.refl_word[agreement],
            ],
        )
        length = self.length[shape]
        inside = np.arange(self.n_slots)[None, :] < length[:, None]
        ids = np.where(inside, ids, PAD)
        noun_slots = self.noun_slot[shape]  # (N, 2)
        refers_to_b = ((ref == REF_B) | ((ref == REF_P) & to_b[:, None])
                       | ((ref == REF_Q) & ~to_b[:, None]))
        antecedent_slot = np.where(refers_to_b, noun_slots[:, 1:2], noun_slots[:, 0:1])
        is_pronoun = ((kind == SUBJ) | (kind == POSS)) & inside
        antecedent = np.where(is_pronoun, antecedent_slot, -1)
        subject_noun = np.where(((kind == NUMBERED) | (kind == REFL)) & inside,
                                antecedent_slot, -1)
        object_verb = np.where(inside, self.governor[shape], -1)
        return SampleArrays(ids, self.pos[shape], antecedent, length, a, b, noun_slots,
                            object_verb, subject_noun)

    # -- exact probabilities --------------------------------------------------------------

    def components(self, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every (pair, shape, antecedent) with its probability.

        Returns (shape (K,), x (K, 4) noun index for refs a, b, p, q, prob (K,), length (K,)).
        """
        shapes, xs, probs = [], [], []
        shape_prob = self.shape_prob_of[split]
        for s in range(len(shape_prob)):
            count = int(self.pair_count[split][s])
            if count == 0:
                continue
            pairs = self.pairs[split][self.shape_pairs[split][s, :count]]
            antecedents = (0, 1) if self.uses_p[s] else (0,)
            for to_b in antecedents:
                p_noun = pairs[:, 1] if to_b else pairs[:, 0]
                q_noun = pairs[:, 0] if to_b else pairs[:, 1]
                shapes.append(np.full(count, s))
                xs.append(np.stack([pairs[:, 0], pairs[:, 1], p_noun, q_noun], axis=1))
                probs.append(np.full(count, shape_prob[s] / count / len(antecedents)))
        shape = np.concatenate(shapes)
        return shape, np.concatenate(xs), np.concatenate(probs), self.length[shape]

    def outside_row(self, x: np.ndarray) -> np.ndarray:
        """Row of the {o.*} tables for nouns x (..., 4): agreement(a) * A + agreement(b)."""
        return (self.noun_agreement[x[..., 0]] * self.n_agreements
                + self.noun_agreement[x[..., 1]])

    def slot_distribution(self, s: int, j: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The words slot j of shape s can be, with their probabilities, given nouns x
        (a, b, p, q)."""
        kind = self.kind[s, j]
        noun = x[self.ref[s, j]]
        if kind == WORD:
            return np.array([self.word_param[s, j]]), np.ones(1)
        if kind == NOUN:
            return np.array([self.noun_word[noun]]), np.ones(1)
        if kind in (SUBJ, POSS, REFL):
            table = {SUBJ: self.subj_word, POSS: self.poss_word, REFL: self.refl_word}[kind]
            return np.array([table[self.noun_agreement[noun]]]), np.ones(1)
        if kind == CLASS:
            c = self.class_param[s, j]
            words = self.class_table[c, : self.class_count[c]]
        elif kind == VERB:
            words = self.verb_table[noun, : self.verb_count[noun]]
        elif kind == NUMBERED:
            row = self.class_param[s, j] * 2 + self.agreement_number[self.noun_agreement[noun]]
            words = self.numbered_table[row, : self.numbered_count[row]]
        elif kind in (OSUBJ, OPOSS):
            row = int(self.outside_row(x))
            table, count = ((self.osubj_table, self.osubj_count) if kind == OSUBJ
                            else (self.oposs_table, self.oposs_count))
            words = table[row, : count[row]]
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
