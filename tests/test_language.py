"""The generator and the corpus: sentences obey the grammar, batches line up, splits stay apart."""

from __future__ import annotations

import numpy as np
import pytest

from fabric_cli.language.corpus import Corpus
from fabric_cli.language.tokenizer import BOS, PAD
from fabric_cli.scenario import load_scenario


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(load_scenario("pronouns"))


@pytest.fixture(scope="module")
def train_sentences(corpus):
    return corpus.sample(np.random.default_rng(11), 3000, "train")


def test_every_pronoun_agrees_with_its_antecedent(corpus, train_sentences):
    forms = {f: agreement for agreement, fs in corpus.grammar.pronouns.items() for f in fs}
    agreement_of_noun = {n.word: n.agreement for n in corpus.grammar.nouns}
    n_pronouns = 0
    for s in train_sentences:
        for i in s.pronoun_positions():
            j = s.antecedent[i]
            n_pronouns += 1
            assert j < i and s.words[j] in s.nouns
            assert forms[s.words[i]] == agreement_of_noun[s.words[j]], s.text
    assert n_pronouns > 2000  # most sentences carry a pronoun


def test_two_candidate_nouns_of_different_agreement_in_both_orders(corpus, train_sentences):
    agreement_of_noun = {n.word: n.agreement for n in corpus.grammar.nouns}
    orders = set()
    for s in train_sentences:
        a, b = s.nouns
        assert agreement_of_noun[a] != agreement_of_noun[b]
        assert [s.words[k] for k in s.noun_positions] == [a, b]
        orders.add((a, b))
    assert ("professor", "king") in orders and ("king", "professor") in orders


def test_what_follows_a_pronoun_belongs_to_its_antecedent(corpus, train_sentences):
    nouns = {n.word: n for n in corpus.grammar.nouns}
    subjects = {s for s, _ in corpus.grammar.pronouns.values()}
    checked = 0
    for s in train_sentences:
        for i in s.pronoun_positions():
            owner = nouns[s.words[s.antecedent[i]]]
            following = s.words[i + 1]
            expected = owner.verbs if s.words[i] in subjects else owner.attributes
            assert following in expected, s.text
            checked += 1
    assert checked > 2000


def test_heldout_pairs_never_meet_in_training(corpus, train_sentences):
    heldout = {frozenset(p) for p in corpus.heldout_pairs()}
    # 73 pairs of persons of different agreement, 55 of a person and a thing
    assert len(heldout) == round(0.15 * (73 + 55))
    seen_train = {frozenset(s.nouns) for s in train_sentences}
    assert not seen_train & heldout
    assert len(seen_train) == 73 + 55 - len(heldout)  # every training pair shows up
    held = corpus.sample(np.random.default_rng(12), 500, "heldout")
    assert {frozenset(s.nouns) for s in held} == heldout
    every_noun = {n.word for n in corpus.grammar.nouns}
    assert {w for p in seen_train for w in p} == every_noun  # no noun is only held out


def test_parts_of_speech_match_the_lexicon(corpus, train_sentences):
    lexicon = corpus.grammar.lexicon()
    for s in train_sentences[:500]:
        assert s.pos == [lexicon[w] for w in s.words]
        assert s.words[-1] == "." and "." not in s.words[:-1]


def test_sentences_are_short_and_the_vocabulary_small(corpus, train_sentences):
    lengths = [len(s) for s in train_sentences]
    assert max(lengths) <= 16 and min(lengths) >= 6
    assert max(lengths) + 1 <= corpus.n_ctx
    assert 60 <= len(corpus.tokenizer) <= 200


def test_batch_alignment(corpus, train_sentences):
    sentences = train_sentences[:8]
    tokens, targets = corpus.batch(sentences)
    longest = max(len(s.words) for s in sentences)
    # <bos> and the longest sentence's words; no column of padding alone
    assert tokens.shape == targets.shape == (8, min(longest + 1, corpus.n_ctx))
    assert (targets[:, -1] == -1).all() and (tokens[:, -1] != PAD).any()
    for b, s in enumerate(sentences):
        n = len(s.words)
        ids = corpus.tokenizer.encode_words(s.words)
        assert tokens[b, 0] == BOS
        assert tokens[b, 1 : n + 1].tolist() == ids
        assert (tokens[b, n + 1 :] == PAD).all()
        assert targets[b, :n].tolist() == ids  # the word after each input token
        assert (targets[b, n:] == -1).all()


def test_train_batch_is_a_pure_function_of_the_rng(corpus):
    t1, y1 = corpus.train_batch(np.random.default_rng(3), 32)
    t2, y2 = corpus.train_batch(np.random.default_rng(3), 32)
    t3, _ = corpus.train_batch(np.random.default_rng(4), 32)
    assert (t1 == t2).all() and (y1 == y2).all() and not (t1 == t3).all()
    assert t1.shape == (32, corpus.n_ctx) and (t1[:, 0] == BOS).all()
    # targets are the inputs shifted left, -1 where the input was the last word or padding
    shifted = np.where(t1[:, 1:] == PAD, -1, t1[:, 1:])
    assert (y1[:, :-1] == shifted).all()


def test_train_batch_draws_from_the_training_pairs_only(corpus):
    heldout_ids = {
        frozenset(corpus.tokenizer.ids[w] for w in pair) for pair in corpus.heldout_pairs()
    }
    noun_ids = {corpus.tokenizer.ids[n.word] for n in corpus.grammar.nouns}
    tokens, _ = corpus.train_batch(np.random.default_rng(9), 2000)
    for row in tokens:
        pair = frozenset(int(t) for t in row if int(t) in noun_ids)
        assert len(pair) == 2 and pair not in heldout_ids


def test_probe_sets_are_fixed_by_the_scenario(corpus):
    again = Corpus(load_scenario("pronouns"))
    for split in ("train", "heldout"):
        first, second = corpus.probe_set(split), again.probe_set(split)
        assert len(first) == corpus.scenario.probes.n_sentences
        assert [s.words for s in first] == [s.words for s in second]
    assert corpus.probe_set("train")[0].words != corpus.probe_set("heldout")[0].words


def test_model_config_matches_scenario_and_vocabulary(corpus):
    cfg = corpus.model_config()
    m = corpus.scenario.model
    assert cfg.d_vocab == len(corpus.tokenizer)
    assert cfg.d_head * cfg.n_heads == cfg.d_model == m.d_model
    assert (cfg.n_layers, cfg.d_mlp, cfg.n_ctx) == (m.n_layers, m.d_mlp, m.n_ctx)


def test_nearest_noun_baseline_is_wrong_when_the_antecedent_is_first(corpus, train_sentences):
    right = total = 0
    for s in train_sentences:
        for i in s.pronoun_positions():
            total += 1
            right += s.nearest_noun_before(i) == s.antecedent[i]
    assert 0.3 < right / total < 0.9  # position alone cannot resolve the pronoun


def test_story_sentences_are_annotated_from_the_lexicon(corpus):
    professor, scientists, cat, she_left = corpus.story_set()
    assert professor.pos == ["DET", "NOUN", "VERB", "DET", "NOUN", "CONJ", "PRON", "VERB",
                             "PRON", "NOUN", "PUNCT"]
    assert scientists.antecedent[3] == 1  # their -> scientists
    assert "UNK" not in she_left.pos and "UNK" not in cat.pos
    # how each pronoun resolves is told in test_cast_language.py
