"""Ablation: silence a head (zero its output) and measure what its role loses.

A head is called a specialist only when silencing it, alone or together with the other heads
that share its role, measurably hurts the role's own loss or accuracy:

    pronoun  loss and accuracy on the word right after each pronoun. Accuracy is
             behavioural: of all the nouns it knows, the Fabric puts the most probability
             on the words its antecedent owns (the scientists' data, not the nurse's
             chart), which the pronoun's form alone cannot tell it.
    verb     loss and accuracy on each frame verb's object: of all the verbs, the most
             probability goes to the objects of the verb two to four words back.
    noun     loss and accuracy on each number-agreeing word: the most probability goes to the
             forms of its subject's number, not the nearest noun's.
    others   loss and top-1 accuracy over every token of the probe set.

Ownership is learned from the corpus itself: the words that follow pronouns referring to a
noun are that noun's own words; the objects that follow a verb are that verb's; the words
agreeing with a noun are its number's (nouns of one number share one row).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from fabric_cli.analysis.probes import ProbeBatch
from fabric_cli.nn.by_length import forward_by_length

# What "measurably hurts" means: the role loss rises by this many nats, or accuracy falls by
# this much. Both are far above the noise of a fixed probe set evaluated without dropout.
HURT_LOSS_NATS = 0.05
HURT_ACCURACY = 0.05


def owned_words(sentences: Iterable, role: str = "pronoun") -> dict[str, set[str]]:
    """pronoun: noun -> the words that followed a pronoun whose antecedent was that noun;
    verb: verb -> its objects; noun: noun -> the words agreeing with it."""
    owned: dict[str, set[str]] = {}
    for sent in sentences:
        if role == "pronoun":
            for i, ante in enumerate(sent.antecedent):
                if ante is not None and ante >= 0 and i + 1 < len(sent.words):
                    owned.setdefault(sent.words[ante], set()).add(sent.words[i + 1])
            continue
        cues = getattr(sent, "object_verb" if role == "verb" else "subject_noun", ())
        for i, k in enumerate(cues):
            if k >= 0:
                owned.setdefault(sent.words[k], set()).add(sent.words[i])
    return owned


@dataclass(frozen=True)
class PronounTargets:
    """Which words each noun owns (N, V), and for each pronoun of a probe batch the row of
    its antecedent (P,). The Fabric resolved a pronoun when, of all the nouns it knows, the
    antecedent's own words get the most probability right after the pronoun."""

    owned: np.ndarray  # (N, V) bool
    antecedent_row: np.ndarray  # (P,) int


def pronoun_targets(
    sentences: Sequence, pb: ProbeBatch, owned: dict[str, set[str]], token_id, d_vocab: int,
    role: str = "pronoun",
) -> PronounTargets:
    """The ownership rows, one per distinct set of owned words (nouns of one number share
    the noun role's row), and each of the role's sites' row."""
    sets = sorted({frozenset(words) for words in owned.values()}, key=sorted)
    matrix = np.zeros((len(sets), d_vocab), dtype=bool)
    for row, words in enumerate(sets):
        for word in words:
            matrix[row, token_id(word)] = True
    row_of = {who: sets.index(frozenset(words)) for who, words in owned.items()}
    b, _, k = pb.sites[role]
    rows = [row_of.get(sentences[int(bb)].words[int(kk) - 1], -1)
            for bb, kk in zip(b, k, strict=True)]
    return PronounTargets(matrix, np.asarray(rows, dtype=np.int64))


RoleTargets = PronounTargets  # the same structure serves every role with sites


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def role_measure(result, pb: ProbeBatch, role: str, pt) -> dict:
    """The role's loss and accuracy from one forward pass. `pt`: the role's targets, or a
    dict of them by role."""
    if isinstance(pt, dict):
        pt = pt.get(role)
    if role in pb.sites and pb.n_sites(role) and pt is not None:
        b, q, _ = pb.sites[role]
        losses = result.token_losses[b, q]
        probs = softmax_rows(result.logits[b, q].astype(np.float64))
        mass = probs @ pt.owned.T  # (P, N): probability on each noun's own words
        chosen = mass.argmax(axis=-1)
        return {"loss": float(losses.mean()),
                "acc": float((chosen == pt.antecedent_row).mean())}
    mask = pb.targets >= 0
    predicted = result.logits.argmax(axis=-1)
    return {
        "loss": float(result.token_losses[mask].mean()),
        "acc": float((predicted == pb.targets)[mask].mean()),
    }


def ablate(params, cfg, pb: ProbeBatch, role: str, heads: list[tuple[int, int]],
           pt, baseline: dict | None = None) -> dict:
    """One ablation row: the role's loss and accuracy before and after silencing `heads`."""
    if baseline is None:
        baseline = role_measure(forward_by_length(params, cfg, pb.tokens, pb.targets), pb,
                                role, pt)
    after = role_measure(forward_by_length(params, cfg, pb.tokens, pb.targets, ablate=heads),
                         pb, role, pt)
    return {
        "heads": [[int(layer), int(head)] for layer, head in heads],
        "role": role,
        "loss_before": baseline["loss"],
        "loss_after": after["loss"],
        "acc_before": baseline["acc"],
        "acc_after": after["acc"],
    }


def hurts(row: dict) -> bool:
    return (
        row["loss_after"] - row["loss_before"] >= HURT_LOSS_NATS
        or row["acc_before"] - row["acc_after"] >= HURT_ACCURACY
    )


EFFECT_KEYS = ("loss_before", "loss_after", "acc_before", "acc_after")


# The clean streams kept for the silenced passes, and each block's heads' outputs: 2 x tokens
# x d_model x n_layers float32, about 16 MB for the default Fabric's 768 ablation sentences
# (14 tokens) and 64 MB at twelve layers. A Fabric whose streams would pass this measures
# every set from the bottom instead.
KEEP_STREAM_BYTES = 256 * 2**20


class _Silencings:
    """Each set of silenced heads goes through the Fabric once, whichever roles read it: a
    head that is a candidate for two roles, and the clean pass every role starts from, cost
    one forward each. Only the roles' measures are kept, not the passes.

    Silencing a head of block L changes nothing below L, nor the heads' outputs z of block
    L itself before they are zeroed, so a set's pass starts at its lowest block from the
    stream the clean pass brought there and that block's z (kept from the first set
    measured here; the clean pass is run for it if it was measured elsewhere): only the
    silencing, W_O and what follows are computed. What is skipped is the clean pass's own
    arithmetic, so the measures are the same to the bit.
    Every pass goes through the sentences sorted by length, each slice cut after its own
    last target (nn/by_length.py): the padding is not computed."""

    def __init__(self, params, cfg, pb: ProbeBatch, roles: Iterable[str], pt,
                 measured: dict | None = None, streams: dict | None = None) -> None:
        self.params, self.cfg, self.pb, self.roles, self.pt = params, cfg, pb, tuple(roles), pt
        # {frozenset of (layer, head): {role: {"loss", "acc"}}}, some perhaps measured
        # elsewhere (the probe process takes half of the final ablation's passes)
        self.measured: dict[frozenset, dict[str, dict]] = dict(measured or {})
        # the caller's holder of the clean streams, to hand them to a later _Silencings of
        # the same weights and sentences: {"resid": per slice, the stream entering each block}
        self._streams = {} if streams is None else streams

    @property
    def _clean_resid(self) -> list | None:
        return self._streams.get("resid")

    def _streams_fit(self) -> bool:
        cfg = self.cfg  # the stream entering each block and the heads' outputs there
        return 2 * self.pb.tokens.size * cfg.d_model * cfg.n_layers * 4 <= KEEP_STREAM_BYTES

    def _pass(self, key: frozenset):
        pb = self.pb
        if not key:
            result = forward_by_length(self.params, self.cfg, pb.tokens, pb.targets,
                                       keep_resid=self._streams_fit())
            self._streams.update(resid=result.resid, z=result.z)
            return result
        lowest = min(layer for layer, _ in key)
        if not self._streams_fit():
            return forward_by_length(self.params, self.cfg, pb.tokens, pb.targets,
                                     ablate=sorted(key))
        if self._clean_resid is None:
            self._keep(frozenset(), self._pass(frozenset()))
        return forward_by_length(self.params, self.cfg, pb.tokens, pb.targets,
                                 ablate=sorted(key), from_layer=lowest,
                                 resid_in=[part[lowest] for part in self._clean_resid],
                                 z_in=[part[lowest] for part in self._streams["z"]])

    def _keep(self, key: frozenset, result) -> None:
        if key not in self.measured:
            self.measured[key] = {r: role_measure(result, self.pb, r, self.pt)
                                  for r in self.roles}

    def measure(self, heads: Iterable[tuple[int, int]], role: str) -> dict:
        key = frozenset(heads)
        if key not in self.measured:
            self._keep(key, self._pass(key))
        return self.measured[key][role]

    def row(self, role: str, heads: list[tuple[int, int]]) -> dict:
        """As `ablate` gives it."""
        before, after = self.measure((), role), self.measure(heads, role)
        return {"heads": [[int(layer), int(head)] for layer, head in heads], "role": role,
                "loss_before": before["loss"], "loss_after": after["loss"],
                "acc_before": before["acc"], "acc_after": after["acc"]}


def silencing_sets(candidates: dict[str, list[tuple[int, int]]]) -> list[frozenset]:
    """Every set of heads `name_specialists` silences, the clean pass (the empty set) first,
    each once."""
    sets: list[frozenset] = [frozenset()]
    for heads in candidates.values():
        wanted = [[h] for h in heads]
        if len(heads) > 1:
            wanted.append(list(heads))
            wanted += [[o for o in heads if o != h] for h in heads]
        sets += [frozenset(w) for w in wanted]
    return list(dict.fromkeys(sets))


def measure_silencings(params, cfg, pb: ProbeBatch, sets: Iterable[Iterable[tuple[int, int]]],
                       roles: Iterable[str], pt, enough=None,
                       streams: dict | None = None) -> dict[frozenset, dict[str, dict]]:
    """Each set's measures for every role, one forward pass per set. `enough`, asked after
    each set, ends the measuring when it says True. `streams`: a dict the caller keeps
    between calls on the same weights and sentences, so the clean pass's streams, once run,
    serve them all (`_Silencings`)."""
    silence = _Silencings(params, cfg, pb, roles, pt, streams=streams)
    for heads in sets:
        silence.measure(heads, silence.roles[0])
        if enough is not None and enough():
            break
    return silence.measured


def name_specialists(params, cfg, pb: ProbeBatch, candidates: dict[str, list[tuple[int, int]]],
                     pt, measured: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Ablate each candidate alone, each role's candidates together, and each candidate on
    top of the others.

    Returns (ablation rows, specialists). A candidate is a specialist when silencing it alone
    hurts, or when it is a real backup: with the role's other heads already silenced,
    silencing it too hurts further (`backup_effect`). Redundant heads pass the second test
    and fail the first; a head that merely rides along passes neither. `measured`: passes
    already measured (`measure_silencings`) for every role with candidates.
    """
    rows: list[dict] = []
    specialists: list[dict] = []
    silence = _Silencings(params, cfg, pb, [r for r, heads in candidates.items() if heads], pt,
                          measured)
    for role, heads in candidates.items():
        if not heads:
            continue
        alone = {h: silence.row(role, [h]) for h in heads}
        rows.extend(alone.values())
        group = silence.row(role, list(heads)) if len(heads) > 1 else None
        if group is not None:
            rows.append(group)
        for h in heads:
            backup = None
            if group is not None:
                rest = [o for o in heads if o != h]
                without_h = silence.row(role, rest)
                backup = {"loss_before": without_h["loss_after"],
                          "loss_after": group["loss_after"],
                          "acc_before": without_h["acc_after"], "acc_after": group["acc_after"]}
            if not (hurts(alone[h]) or (backup is not None and hurts(backup))):
                continue
            specialists.append({
                "layer": h[0],
                "head": h[1],
                "role": role,
                "ablation": {k: alone[h][k] for k in EFFECT_KEYS},
                "alone_hurts": hurts(alone[h]),
                "backup_effect": backup,
                "redundant_with": [],  # filled below, once every specialist is known
                "group_ablation": None if group is None else {k: group[k] for k in EFFECT_KEYS},
            })
    for sp in specialists:
        sp["redundant_with"] = [[o["layer"], o["head"]] for o in specialists
                                if o["role"] == sp["role"] and o is not sp]
    return rows, specialists
