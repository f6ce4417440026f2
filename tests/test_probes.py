"""Head scores against hand-built attention patterns whose answers are known by construction."""

from dataclasses import dataclass

import numpy as np

from fabric_cli.analysis.probes import (
    build_probe_batch,
    head_table,
    layer_role_scores,
    nearest_noun_baseline,
    pronoun_argmax_accuracy,
    role_argmax_accuracy,
    site_baselines,
    uniform_shares,
)


@dataclass
class S:
    words: list
    pos: list
    antecedent: list


# "the king lost the crown because he slept ." : he (word 6) -> king (word 1)
KING = S(
    ["the", "king", "lost", "the", "crown", "because", "he", "slept", "."],
    ["DET", "NOUN", "VERB", "DET", "NOUN", "CONJ", "PRON", "VERB", "PUNCT"],
    [-1, -1, -1, -1, -1, -1, 1, -1, -1],
)
# "the queen saw the kings and she smiled ." : she (word 6) -> queen (word 1)
QUEEN = S(
    ["the", "queen", "saw", "the", "kings", "and", "she", "smiled", "."],
    ["DET", "NOUN", "VERB", "DET", "NOUN", "CONJ", "PRON", "VERB", "PUNCT"],
    [-1, -1, -1, -1, -1, -1, 1, -1, -1],
)
T = 12


def encode(sentences):
    tokens = np.zeros((len(sentences), T), dtype=np.int64)
    targets = -np.ones((len(sentences), T), dtype=np.int64)
    for b, s in enumerate(sentences):
        ids = [1] + [3 + i for i in range(len(s.words))]
        tokens[b, : len(ids)] = ids
        targets[b, : len(ids) - 1] = ids[1:]
    return tokens, targets


def causal_uniform(B, NH, T):
    mask = np.tril(np.ones((T, T)))
    return np.broadcast_to(mask / mask.sum(-1, keepdims=True), (B, NH, T, T)).copy()


def test_a_head_that_looks_at_the_antecedent_scores_one_and_is_always_right():
    pb = build_probe_batch([KING, QUEEN], encode)
    pattern = causal_uniform(2, 2, pb.tokens.shape[1])
    # head 0: from the pronoun (position 7) all mass on the antecedent (position 2)
    pattern[:, 0, 7, :] = 0.0
    pattern[:, 0, 7, 2] = 1.0
    scores = layer_role_scores(pattern, pb)
    assert scores["pronoun"][0] == 1.0
    assert abs(scores["pronoun"][1] - 1 / 8) < 1e-12  # uniform over 8 visible keys
    acc = pronoun_argmax_accuracy(pattern, pb)
    assert acc[0] == 1.0


def test_nearest_noun_baseline_is_wrong_when_a_distractor_stands_between():
    pb = build_probe_batch([KING, QUEEN], encode)
    # The nearest noun before each pronoun is the object (crown, kings), never the antecedent.
    assert nearest_noun_baseline(pb) == 0.0
    assert list(pb.nearest_k) == [5, 5]


def test_previous_self_and_first_heads_score_one_on_their_own_cells():
    pb = build_probe_batch([KING], encode)
    NH, T = 3, pb.tokens.shape[1]
    pattern = np.zeros((1, NH, T, T))
    q = np.arange(T)
    pattern[0, 0, q, np.maximum(q - 1, 0)] = 1.0  # previous token
    pattern[0, 1, q, q] = 1.0  # self
    pattern[0, 2, :, 0] = 1.0  # first token
    s = layer_role_scores(pattern, pb)
    assert np.allclose(s["prev"], [1, 0, 0])
    assert np.allclose(s["self"], [0, 1, 0])
    assert np.allclose(s["first"], [0, 0, 1])


@dataclass
class R:
    words: list
    pos: list
    antecedent: list
    object_verb: list
    subject_noun: list


# "the boy cooked the red soup with the king ." : soup (word 5) is cooked's (word 2)
COOKED = R(
    ["the", "boy", "cooked", "the", "red", "soup", "with", "the", "king", "."],
    ["DET", "NOUN", "VERB", "DET", "ADJ", "NOUN", "PREP", "DET", "NOUN", "PUNCT"],
    [-1] * 10,
    [-1, -1, -1, -1, -1, 2, -1, -1, -1, -1],
    [-1] * 10,
)
# "the dog the old kings met waits ." : waits (word 6) agrees with dog (word 1), not kings
WAITS = R(
    ["the", "dog", "the", "old", "kings", "met", "waits", "."],
    ["DET", "NOUN", "DET", "ADJ", "NOUN", "VERB", "VERB", "PUNCT"],
    [-1] * 8,
    [-1] * 8,
    [-1, -1, -1, -1, -1, -1, 1, -1],
)


def test_a_verb_head_looks_from_before_the_object_back_to_its_verb():
    pb = build_probe_batch([COOKED], encode)
    assert pb.n_sites("verb") == 1 and pb.n_sites("noun") == 0
    _, q, k = pb.sites["verb"]
    assert (q[0], k[0]) == (5, 3)  # "red" (position 5) predicts "soup"; "cooked" is at 3
    T = pb.tokens.shape[1]
    pattern = np.zeros((1, 2, T, T))
    pattern[0, 0, np.arange(T), 0] = 1.0  # head 0 rests on <bos> ...
    pattern[0, 0, 5, :] = 0.0
    pattern[0, 0, 5, 3] = 1.0  # ... except from "red", all on "cooked"
    q_all = np.arange(T)
    pattern[0, 1, q_all, np.maximum(q_all - 1, 0)] = 1.0  # head 1: the previous token
    s = layer_role_scores(pattern, pb)
    assert s["verb"][0] == 1.0 and s["verb"][1] == 0.0  # "red" is not the verb
    assert role_argmax_accuracy(pattern, pb, "verb").tolist() == [1.0, 0.0]
    assert uniform_shares(pb)["verb"] == 1 / 6  # six keys visible from position 5
    assert site_baselines(pb, [COOKED])["verb"] == 0.0  # two words between


def test_a_noun_head_looks_past_the_nearest_noun_to_the_subject():
    pb = build_probe_batch([WAITS], encode)
    _, q, k = pb.sites["noun"]
    assert (q[0], k[0]) == (6, 2)  # "met" (position 6) predicts "waits"; "dog" is at 2
    T = pb.tokens.shape[1]
    pattern = causal_uniform(1, 2, T)
    pattern[0, 0, 6, :] = 0.0
    pattern[0, 0, 6, 2] = 0.75  # head 0: three quarters on "dog"
    pattern[0, 0, 6, 5] = 0.25  # and a quarter on "kings"
    pattern[0, 1, 6, :] = 0.0
    pattern[0, 1, 6, 5] = 1.0  # head 1: the nearest noun
    s = layer_role_scores(pattern, pb)
    assert np.allclose(s["noun"], [0.75, 0.0])
    assert role_argmax_accuracy(pattern, pb, "noun").tolist() == [1.0, 0.0]
    assert site_baselines(pb, [WAITS])["noun"] == 0.0  # the nearest noun is "kings"
    assert s["verb"].tolist() == [0.0, 0.0]  # no verb sites in this sentence


def test_right_padding_is_trimmed_to_the_longest_sentence():
    pb = build_probe_batch([KING, QUEEN], encode)
    assert pb.tokens.shape == (2, 10)  # <bos> + 9 words, not the 12 the encoder padded to
    assert pb.valid.all()


def test_head_table_lists_every_head_with_held_out_accuracy():
    pb = build_probe_batch([KING, QUEEN], encode)
    attention = [causal_uniform(2, 2, pb.tokens.shape[1]), causal_uniform(2, 2, pb.tokens.shape[1])]
    rows = head_table(attention, pb, attention, pb)
    assert [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(set(r["scores"]) == {"pronoun", "verb", "noun", "prev", "self", "first"}
               for r in rows)
    assert all(r["pronoun_acc_heldout"] is not None for r in rows)


def test_the_verb_roles_ablation_measure_reads_its_objects_only():
    """Loss and behavioural accuracy at the verb's sites, by an independent calculation."""
    from types import SimpleNamespace

    from fabric_cli.analysis.ablation import owned_words, pronoun_targets, role_measure

    pb = build_probe_batch([COOKED], encode)
    vocab = {w: 3 + i for i, w in enumerate(COOKED.words)}
    other = dict(COOKED.__dict__, words=[*COOKED.words[:2], "read", "the", "red", "book",
                                         *COOKED.words[6:]])
    vocab.update({"read": 20, "book": 21})
    owned = owned_words([COOKED, R(**other)], "verb")
    assert owned == {"cooked": {"soup"}, "read": {"book"}}
    pt = pronoun_targets([COOKED], pb, owned, vocab.__getitem__, 24, "verb")
    B, T = pb.tokens.shape
    logits = np.zeros((B, T, 24))
    logits[0, 5, vocab["soup"]] = 2.0  # from "red": more on cooked's object than read's
    logits[0, 5, vocab["book"]] = 1.0
    token_losses = np.full((B, T), 9.0)  # every other position: a loss the measure must skip
    token_losses[0, 5] = 0.25
    result = SimpleNamespace(logits=logits, token_losses=token_losses)
    m = role_measure(result, pb, "verb", {"verb": pt})
    assert m == {"loss": 0.25, "acc": 1.0}
    logits[0, 5, vocab["book"]] = 3.0  # now read's object wins: the verb was not heard
    assert role_measure(result, pb, "verb", {"verb": pt})["acc"] == 0.0
