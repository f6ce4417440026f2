"""The entropy floor: the lowest loss any model could reach on this language.

floor = E[sum_t H(w_t | w_<t)] / E[n]  (nats per target token, token-weighted like the loss),
for sequences <bos> w1..wn whose every word, the final "." included, is a target.

Exact, by walking the prefix tree of the generator level by level. A prefix's next-token
distribution depends only on the posterior over components (pair, shape, antecedent) given
the prefix, so prefixes with the same posterior are merged into one state; after the nouns
are read most choices (which verb, which attribute) leave the posterior unchanged and the
tree collapses. Because "." only ends a sentence, the sentences form a prefix-free set and the
floor's numerator equals the Shannon entropy of a whole sentence.

Shape letters: K components, V vocabulary, N sentences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fabric_cli.language.generator import (
    ATTR,
    CLASS,
    NOUN,
    NUMBERED,
    OPOSS,
    OSUBJ,
    POSS,
    REFL,
    SUBJ,
    VERB,
    WORD,
    CompiledGrammar,
)


@dataclass(frozen=True)
class Floor:
    nats_per_token: float  # the floor itself
    sentence_entropy: float  # H(sentence) in nats = E[sum_t H(w_t | w_<t)]
    mean_length: float  # E[n], targets per sentence
    states: int  # merged prefix states visited (how much work the calculation was)


def entropy_floor(compiled: CompiledGrammar, split: str) -> Floor:
    shape, x, prob, length = compiled.components(split)
    mean_length = float(np.dot(prob, length))
    cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def distribution(c: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        s = int(shape[c])
        if compiled.kind[s, j] in (OSUBJ, OPOSS):  # depends on both candidates' agreement
            key = (s, j, -1, int(compiled.outside_row(x[c])))
        else:
            key = (s, j, int(x[c, compiled.ref[s, j]]))
        if key not in cache:
            cache[key] = compiled.slot_distribution(s, j, x[c])
        return cache[key]

    # A state: (mass = P(prefix class), component ids, posterior over them).
    states = [(1.0, np.arange(len(prob)), prob / prob.sum())]
    entropy = 0.0
    visited = 0
    for j in range(compiled.n_slots):
        merged: dict[tuple, list] = {}
        for mass, comps, post in states:
            visited += 1
            joint: dict[int, list[tuple[int, float]]] = {}  # word -> [(component, post * q)]
            for c, pc in zip(comps.tolist(), post.tolist(), strict=True):
                words, q = distribution(c, j)
                for w, qw in zip(words.tolist(), q.tolist(), strict=True):
                    joint.setdefault(w, []).append((c, pc * qw))
            p_next = np.array([sum(v for _, v in entries) for entries in joint.values()])
            entropy -= mass * float(np.dot(p_next, np.log(p_next)))
            for (word, entries), pw in zip(joint.items(), p_next.tolist(), strict=True):
                alive = [(c, v) for c, v in entries if length[c] > j + 1]
                if not alive:
                    continue  # the sentence ended with this word
                child = np.array([c for c, _ in alive])
                child_post = np.array([v for _, v in alive]) / pw
                key = (word, child.tobytes(), np.round(child_post, 12).tobytes())
                if key in merged:
                    merged[key][0] += mass * pw
                else:
                    merged[key] = [mass * pw, child, child_post]
        states = [(m, c, p) for m, c, p in merged.values()]
        if not states:
            break
    return Floor(entropy / mean_length, entropy, mean_length, visited)


class ExactModel:
    """Exact probabilities of the generator for given token sequences (vectorised over K)."""

    def __init__(self, compiled: CompiledGrammar, split: str, vocab_size: int) -> None:
        self.g = compiled
        self.shape, self.x, self.prob, self.length = compiled.components(split)
        self.vocab_size = vocab_size
        g = compiled

        def membership(table: np.ndarray, count: np.ndarray) -> np.ndarray:
            # (rows, V): probability of each word under a uniform draw from that row's list
            m = np.zeros((len(table), vocab_size))
            for r in range(len(table)):
                m[r, table[r, : count[r]]] = 1.0 / count[r]
            return m

        self.class_p = membership(g.class_table, g.class_count)
        self.verb_p = membership(g.verb_table, g.verb_count)
        self.attr_p = membership(g.attr_table, g.attr_count)
        self.numbered_p = membership(g.numbered_table, g.numbered_count)
        self.osubj_p = membership(g.osubj_table, g.osubj_count)
        self.oposs_p = membership(g.oposs_table, g.oposs_count)
        self.outside = g.outside_row(self.x)  # (K,)

    def slot_probs(self, j: int) -> np.ndarray:
        """(K, V): every component's distribution over the word at slot j (0 past its end)."""
        g, s = self.g, self.shape
        kind = g.kind[s, j]
        noun = self.x[np.arange(len(s)), g.ref[s, j]]
        out = np.zeros((len(s), self.vocab_size))
        rows = np.arange(len(s))
        inside = j < self.length
        for code, word in (
            (WORD, g.word_param[s, j]),
            (NOUN, g.noun_word[noun]),
            (SUBJ, g.subj_word[g.noun_agreement[noun]]),
            (POSS, g.poss_word[g.noun_agreement[noun]]),
            (REFL, g.refl_word[g.noun_agreement[noun]]),
        ):
            sel = (kind == code) & inside
            out[rows[sel], word[sel]] = 1.0
        number_row = g.class_param[s, j] * 2 + g.agreement_number[g.noun_agreement[noun]]
        for code, table, row in (  # each kind's membership table, and its row per component
            (CLASS, self.class_p, g.class_param[s, j]),
            (VERB, self.verb_p, noun),
            (ATTR, self.attr_p, noun),
            (NUMBERED, self.numbered_p, number_row),
            (OSUBJ, self.osubj_p, self.outside),
            (OPOSS, self.oposs_p, self.outside),
        ):
            sel = (kind == code) & inside
            if sel.any():
                out[sel] = table[row[sel]]
        return out

    def posterior(self, prefix: list[int]) -> np.ndarray:
        """(K,): P(component | the first words of a sentence), <bos> not included."""
        weight = self.prob.copy()
        for j, word in enumerate(prefix):
            weight = weight * self.slot_probs(j)[:, word]
        total = weight.sum()
        if total == 0:
            raise ValueError("this prefix cannot be produced by the generator")
        return weight / total

    def next_word_probs(self, prefix: list[int]) -> np.ndarray:
        """(V,): the exact distribution of the next word after `prefix`."""
        return self.posterior(prefix) @ self.slot_probs(len(prefix))

    def sentence_log_probs(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(N,): log P(sentence) of whole sentences (rows of ids, PAD after their length)."""
        n = len(ids)
        log_weight = np.tile(np.log(self.prob), (n, 1))  # (N, K)
        for j in range(ids.shape[1]):
            q = self.slot_probs(j)[:, ids[:, j]].T  # (N, K)
            active = (j < lengths)[:, None]
            with np.errstate(divide="ignore"):
                log_weight = log_weight + np.where(active, np.log(q), 0.0)
            # a component still running after the sentence ended cannot have produced it
            log_weight = np.where(
                (j == lengths)[:, None] & (self.length > j)[None, :], -np.inf, log_weight
            )
        top = log_weight.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(log_weight - top).sum(axis=1, keepdims=True)))[:, 0]
