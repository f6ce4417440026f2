"""Probes: what each head attends to, scored against the language's known structure.

A head's score for a role is the mean fraction of its attention mass that lands on the
role's expected cells (TransformerLens head-detector style):

    pronoun  from each pronoun to its antecedent noun
    verb     from the word before a frame verb's object (the position that predicts the
             object) to that verb: "cooked the old red | soup" looks back to "cooked"
    noun     from the word before a number-agreeing word to the noun it agrees with:
             "the dog near the kings | waits" looks back to "dog", not "kings"
    prev     from every position to the token just before it (from position 2 on)
    self     from every position to itself
    first    from every position to <bos> (from position 2 on)

Positions: position 0 holds <bos>, position i+1 holds word i of the sentence. Shapes: B
sentences, T positions, NH heads; attention patterns are (B, NH, T_query, T_key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

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
    # per role with sites ("pronoun", "verb", "noun"): (sentence, query, expected key) arrays
    sites: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]

    @property
    def n_pronouns(self) -> int:
        return int(self.pron_q.size)

    def n_sites(self, role: str) -> int:
        return int(self.sites[role][1].size) if role in self.sites else 0


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
    pron_b, pron_q, pron_k, nearest_k = [], [], [], []
    found: dict[str, list[tuple[int, int, int]]] = {"verb": [], "noun": []}
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
            for role, cues in (("verb", getattr(sent, "object_verb", ())),
                               ("noun", getattr(sent, "subject_noun", ()))):
                # word i sits at position i + 1 and is predicted at position i
                if i < len(cues) and cues[i] >= 0 and i >= 1:
                    found[role].append((b, pos - 1, cues[i] + 1))
            if ante is not None and ante >= 0 and ante + 1 < T:
                pron_b.append(b)
                pron_q.append(pos)
                pron_k.append(ante + 1)
                nearest_k.append(last_noun + 1 if last_noun >= 0 else 0)
            if i in candidates:
                last_noun = i
    as_int = lambda xs: np.asarray(xs, dtype=np.int64)
    sites = {"pronoun": (as_int(pron_b), as_int(pron_q), as_int(pron_k))}
    for role, rows in found.items():
        sites[role] = tuple(as_int([r[c] for r in rows]) for c in range(3))
    return ProbeBatch(
        tokens=tokens,
        targets=targets,
        valid=valid,
        pron_b=as_int(pron_b),
        pron_q=as_int(pron_q),
        pron_k=as_int(pron_k),
        nearest_k=as_int(nearest_k),
        sites=sites,
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
    for role in ("verb", "noun"):
        scores[role] = site_mass(pattern, pb, role).mean(axis=0) if pb.n_sites(role) \
            else np.zeros(NH)
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


def site_mass(pattern: np.ndarray, pb: ProbeBatch, role: str) -> np.ndarray:
    """(sites, NH): the attention each head puts on the expected key at each of the role's
    sites."""
    b, q, k = pb.sites[role]
    return pattern[b, :, q, k]


def uniform_shares(pb: ProbeBatch) -> dict[str, float]:
    """The verb and noun scores a head would get by spreading attention evenly over the
    tokens it can see (1 / (query + 1) at each site): the bar a verb or noun head has to
    clear to mean anything."""
    shares = {}
    for role in ("verb", "noun"):
        q = pb.sites[role][1] if role in pb.sites else np.zeros(0)
        shares[role] = float((1.0 / (q + 1)).mean()) if q.size else 0.0
    return shares


def role_argmax_accuracy(pattern: np.ndarray, pb: ProbeBatch, role: str) -> np.ndarray:
    """(NH,) fraction of the role's sites whose strongest attention lands on the expected
    key (the antecedent, the verb, the governing noun)."""
    if not pb.n_sites(role):
        return np.zeros(pattern.shape[1])
    b, q, k = pb.sites[role]
    rows = pattern[b, :, q, :]  # (P, NH, T_key)
    return (rows.argmax(axis=-1) == k[:, None]).mean(axis=0)


def pronoun_argmax_accuracy(pattern: np.ndarray, pb: ProbeBatch) -> np.ndarray:
    """(NH,) fraction of pronouns whose strongest attention lands on the antecedent."""
    return role_argmax_accuracy(pattern, pb, "pronoun")


def nearest_noun_baseline(pb: ProbeBatch) -> float:
    """How often guessing 'the nearest noun before the pronoun' names the antecedent."""
    if not pb.n_pronouns:
        return 0.0
    return float((pb.nearest_k == pb.pron_k).mean())


def site_baselines(pb: ProbeBatch, sentences: Sequence) -> dict[str, float]:
    """What a head without the role gets right at the role's sites: for verb, looking at the
    previous token; for noun, looking at the nearest noun before the query."""
    out = {}
    if pb.n_sites("verb"):
        _, q, k = pb.sites["verb"]
        out["verb"] = float((k == q - 1).mean())
    if pb.n_sites("noun"):
        b, q, k = pb.sites["noun"]
        hits = []
        for bb, qq, kk in zip(b.tolist(), q.tolist(), k.tolist(), strict=True):
            pos = sentences[bb].pos
            nouns = [i + 1 for i in range(qq) if i < len(pos) and pos[i] == "NOUN"]
            hits.append(bool(nouns) and nouns[-1] == kk)
        out["noun"] = float(np.mean(hits))
    return out


def misled_noun_sites(pb: ProbeBatch, sentences: Sequence, grammar) -> ProbeBatch:
    """The same batch with only the noun sites whose nearest noun before the query would call
    for another word than the subject does (another number for "waits", another agreement for
    "herself"): where a noun head is needed, not merely used."""
    if not pb.n_sites("noun"):
        return pb
    b, q, k = pb.sites["noun"]
    reflexives = set(getattr(grammar, "reflexives", {}).values())
    keep = []
    for bb, qq, kk in zip(b.tolist(), q.tolist(), k.tolist(), strict=True):
        sent = sentences[bb]
        nouns = [i for i in range(qq) if i < len(sent.pos) and sent.pos[i] == "NOUN"]
        pair = (kk - 1, nouns[-1] if nouns else kk - 1)
        if qq < len(sent.words) and sent.words[qq] in reflexives:
            told = [sent.agreement[i] for i in pair]
        else:
            told = [grammar.number_of(sent.agreement[i]) if sent.agreement[i] else None
                    for i in pair]
        keep.append(told[0] != told[1])
    keep = np.asarray(keep, dtype=bool)
    sites = dict(pb.sites)
    sites["noun"] = (b[keep], q[keep], k[keep])
    return replace(pb, sites=sites)


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
        role_held = {
            role: role_argmax_accuracy(heldout_attention[layer], heldout_pb, role)
            for role in ("verb", "noun") if heldout_pb.n_sites(role)
        } if heldout_attention is not None and heldout_pb is not None else {}
        for head in range(pattern.shape[1]):
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "scores": {role: float(scores[role][head]) for role in ROLES},
                    "pronoun_acc": float(acc[head]),
                    "pronoun_acc_heldout": None if acc_held is None else float(acc_held[head]),
                    # the verb and noun roles' argmax accuracy on the held-out sites
                    "role_acc_heldout": {r: float(a[head]) for r, a in role_held.items()},
                }
            )
    return rows


def best_head(rows: list[dict], role: str = "pronoun") -> dict | None:
    return max(rows, key=lambda r: r["scores"][role]) if rows else None
