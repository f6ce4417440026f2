"""Probes: what each head attends to, scored against the language's known structure.

A head's score for a role is the mean fraction of its attention mass that lands on the
role's expected cells (TransformerLens head-detector style):

    pronoun  from each pronoun to its antecedent noun
    verb     from every position to the verbs before it
    noun     from every position to the nouns before it
    prev     from every position to the token just before it (from position 2 on)
    self     from every position to itself
    first    from every position to <bos> (from position 2 on)

Positions: position 0 holds <bos>, position i+1 holds word i of the sentence. Shapes: B
sentences, T positions, NH heads; attention patterns are (B, NH, T_query, T_key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ROLES = ("pronoun", "verb", "noun", "prev", "self", "first")


@dataclass(frozen=True)
class ProbeBatch:
    """Annotated sentences, encoded, with the index arrays every score needs."""

    tokens: np.ndarray  # (B, T) int ids, <bos> first, <pad> after the sentence
    targets: np.ndarray  # (B, T) next-token ids, -1 where padding
    valid: np.ndarray  # (B, T) bool: a real token sits at this query position
    pron_b: np.ndarray  # (P,) sentence of each pronoun
    pron_q: np.ndarray  # (P,) position of the pronoun (the query)
    pron_k: np.ndarray  # (P,) position of its antecedent (the expected key)
    nearest_k: np.ndarray  # (P,) position of the nearest noun before the pronoun (baseline)
    verb_before: np.ndarray  # (B, T_query, T_key) bool: key is a verb strictly before query
    noun_before: np.ndarray  # (B, T_query, T_key) bool: key is a noun strictly before query

    @property
    def n_pronouns(self) -> int:
        return int(self.pron_q.size)


def build_probe_batch(sentences: Sequence, encode_batch) -> ProbeBatch:
    """`sentences` carry words, pos and antecedent (-1 or the antecedent's word index);
    `encode_batch(sentences) -> (tokens, targets)` is the corpus's own batching."""
    tokens, targets = encode_batch(sentences)
    # Right padding never changes what a causal model computes for the real tokens: trim it,
    # so probes cost what the longest sentence costs, not the whole context.
    longest = max((len(s.words) + 1 for s in sentences), default=1)
    tokens = np.asarray(tokens)[:, :longest]
    targets = np.asarray(targets)[:, :longest]
    B, T = tokens.shape
    valid = np.zeros((B, T), dtype=bool)
    is_verb = np.zeros((B, T), dtype=bool)
    is_noun = np.zeros((B, T), dtype=bool)
    pron_b, pron_q, pron_k, nearest_k = [], [], [], []
    for b, sent in enumerate(sentences):
        n = min(len(sent.words) + 1, T)  # <bos> + words, clipped to the context
        valid[b, :n] = True
        # The baseline guesses among the sentence's candidate nouns (the people and things
        # pronouns can refer to) when the sentence names them, else among all nouns.
        candidates = set(getattr(sent, "noun_positions", ()) or
                         (i for i, tag in enumerate(sent.pos) if tag == "NOUN"))
        last_noun = -1
        for i, (tag, ante) in enumerate(zip(sent.pos, sent.antecedent)):
            pos = i + 1
            if pos >= T:
                break
            if tag == "VERB":
                is_verb[b, pos] = True
            if tag == "NOUN":
                is_noun[b, pos] = True
            if ante is not None and ante >= 0 and ante + 1 < T:
                pron_b.append(b)
                pron_q.append(pos)
                pron_k.append(ante + 1)
                nearest_k.append(last_noun + 1 if last_noun >= 0 else 0)
            if i in candidates:
                last_noun = i
    strictly_before = np.tril(np.ones((T, T), dtype=bool), k=-1)  # key < query
    as_int = lambda xs: np.asarray(xs, dtype=np.int64)
    return ProbeBatch(
        tokens=tokens,
        targets=targets,
        valid=valid,
        pron_b=as_int(pron_b),
        pron_q=as_int(pron_q),
        pron_k=as_int(pron_k),
        nearest_k=as_int(nearest_k),
        verb_before=strictly_before[None] & is_verb[:, None, :],
        noun_before=strictly_before[None] & is_noun[:, None, :],
    )


def _mean_over(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over (B, T) positions where mask holds; values (B, NH, T) -> (NH,)."""
    count = mask.sum()
    if count == 0:
        return np.zeros(values.shape[1])
    return (values * mask[:, None, :]).sum(axis=(0, 2)) / count


def layer_role_scores(pattern: np.ndarray, pb: ProbeBatch) -> dict[str, np.ndarray]:
    """Scores (NH,) for every role of one layer's pattern (B, NH, T, T)."""
    B, NH, T, _ = pattern.shape
    scores: dict[str, np.ndarray] = {}
    if pb.n_pronouns:
        rows = pattern[pb.pron_b, :, pb.pron_q, :]  # (P, NH, T_key)
        scores["pronoun"] = rows[np.arange(pb.n_pronouns), :, pb.pron_k].mean(axis=0)
    else:
        scores["pronoun"] = np.zeros(NH)
    for role, expected in (("verb", pb.verb_before), ("noun", pb.noun_before)):
        mass = (pattern * expected[:, None, :, :]).sum(axis=-1)  # (B, NH, T)
        has_any = expected.any(axis=-1) & pb.valid
        scores[role] = _mean_over(mass, has_any)
    after_first = pb.valid.copy()
    after_first[:, 0] = False
    q = np.arange(1, T)
    prev = np.zeros((B, NH, T))
    prev[:, :, 1:] = pattern[:, :, q, q - 1]
    # From position 1 the previous token is <bos> itself: that cell would count for both
    # `prev` and `first`, so neither role is scored there.
    after_second = after_first.copy()
    after_second[:, 1] = False
    scores["prev"] = _mean_over(prev, after_second)
    scores["self"] = _mean_over(np.diagonal(pattern, axis1=2, axis2=3), after_first)
    scores["first"] = _mean_over(pattern[:, :, :, 0], after_second)
    return scores


def uniform_shares(pb: ProbeBatch) -> dict[str, float]:
    """The verb and noun scores a head would get by spreading attention evenly over the
    tokens it can see: the bar a verb or noun head has to clear to mean anything."""
    T = pb.tokens.shape[1]
    seen = np.arange(1, T + 1)[None, :]  # keys visible from each query, self included
    shares = {}
    for role, expected in (("verb", pb.verb_before), ("noun", pb.noun_before)):
        has_any = expected.any(axis=-1) & pb.valid
        frac = expected.sum(axis=-1) / seen
        shares[role] = float(frac[has_any].mean()) if has_any.any() else 0.0
    return shares


def pronoun_argmax_accuracy(pattern: np.ndarray, pb: ProbeBatch) -> np.ndarray:
    """(NH,) fraction of pronouns whose strongest attention lands on the antecedent."""
    if not pb.n_pronouns:
        return np.zeros(pattern.shape[1])
    rows = pattern[pb.pron_b, :, pb.pron_q, :]  # (P, NH, T_key)
    return (rows.argmax(axis=-1) == pb.pron_k[:, None]).mean(axis=0)


def nearest_noun_baseline(pb: ProbeBatch) -> float:
    """How often guessing 'the nearest noun before the pronoun' names the antecedent."""
    if not pb.n_pronouns:
        return 0.0
    return float((pb.nearest_k == pb.pron_k).mean())


def head_table(
    attention: list[np.ndarray], pb: ProbeBatch, heldout_attention: list[np.ndarray] | None,
    heldout_pb: ProbeBatch | None,
) -> list[dict]:
    """One row per head: role scores and pronoun accuracy on the train and held-out probes."""
    rows = []
    for layer, pattern in enumerate(attention):
        scores = layer_role_scores(pattern, pb)
        acc = pronoun_argmax_accuracy(pattern, pb)
        acc_held = (
            pronoun_argmax_accuracy(heldout_attention[layer], heldout_pb)
            if heldout_attention is not None and heldout_pb is not None
            else None
        )
        for head in range(pattern.shape[1]):
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "scores": {role: float(scores[role][head]) for role in ROLES},
                    "pronoun_acc": float(acc[head]),
                    "pronoun_acc_heldout": None if acc_held is None else float(acc_held[head]),
                }
            )
    return rows


def best_head(rows: list[dict], role: str = "pronoun") -> dict | None:
    return max(rows, key=lambda r: r["scores"][role]) if rows else None
