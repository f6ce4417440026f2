"""The default language's cues for a cast of heads, and the new grammar parts checked exactly:
verb frames (an object chosen by its verb), numbered words (agreeing with their subject),
things as antecedents, pronouns that point outside the sentence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fabric_cli.language.corpus import Corpus
from fabric_cli.scenario import load_scenario

SMALL = """
description = "small"
seed = 3
heldout_fraction = 0.3
[model]
n_layers = 1
n_heads = 1
d_model = 8
d_mlp = 8
n_ctx = 12
[training]
steps = 2
batch_size = 4
lr = 1e-3
warmup_steps = 0
min_lr_ratio = 0.1
beta1 = 0.9
beta2 = 0.99
weight_decay = 0.0
grad_clip = 1.0
dropout = 0.0
probe_every = 1
[probes]
n_sentences = 8
specialist_threshold = 0.4
story_sentences = ["the queen read the book ."]
[grammar.pronouns]
feminine = { subject = "she", possessive = "her" }
masculine = { subject = "he", possessive = "his" }
plural = { subject = "they", possessive = "their", number = "plural" }
[grammar.nouns]
queen = { agreement = "feminine", verbs = ["ruled"], attributes = ["crown"] }
pilot = { agreement = "masculine", verbs = ["flew"], attributes = ["plane"] }
kings = { agreement = "plural", verbs = ["ruled"], attributes = ["swords"] }
[grammar.frames]
TAKE = { read = ["book", "poem"], cooked = ["soup"] }
[grammar.numbered]
WAIT = { pos = "VERB", singular = ["waits"], plural = ["wait", "sleep"] }
[grammar.words]
"the" = "DET"
"and" = "CONJ"
"." = "PUNCT"
[[grammar.templates]]
pattern = "the {a} TAKE the TAKE.obj and {o.subj} {a.WAIT} the {b} ."
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Corpus:
    path = tmp_path_factory.mktemp("small") / "small.toml"
    path.write_text(SMALL, encoding="utf-8")
    return Corpus(load_scenario(str(path)))


def test_small_floor_by_hand(small):
    # The ordered pair: log of their number (told by {a} and then by {o.subj}, the one
    # agreement neither noun has, which leaves {b} certain). The verb: log 2. Its object:
    # log 2 after "read", nothing after "cooked". WAIT: log 2 after a plural subject, nothing
    # after a singular one. 11 targets per sentence.
    for split in ("train", "heldout"):
        pairs = small.pairs[split]
        ordered = [(i, j) for i, j in pairs] + [(j, i) for i, j in pairs]
        plural_first = sum(small.grammar.nouns[i].word == "kings" for i, _ in ordered)
        by_hand = (math.log(len(ordered)) + math.log(2) + 0.5 * math.log(2)
                   + plural_first / len(ordered) * math.log(2)) / 11
        assert small.floor[split] == pytest.approx(by_hand, rel=1e-12), split


def test_small_sentences_carry_their_cues(small):
    for s in small.sample(np.random.default_rng(0), 200, "train"):
        read = s.words[2]
        assert s.object_verb[4] == 2 and s.words[4] in {"read": ("book", "poem"),
                                                        "cooked": ("soup",)}[read]
        subject = s.words[1]
        assert s.subject_noun[7] == 1
        assert (s.words[7] == "waits") == (subject != "kings")
        outside = s.words[6]
        pair = set(s.nouns)
        assert s.antecedent[6] == -1  # the pronoun points outside the sentence
        owner = {"she": "queen", "he": "pilot", "they": "kings"}[outside]
        assert owner not in pair


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_small_floor_matches_a_monte_carlo_estimate(small, split):
    exact = small.exact_model(split)
    drawn = small.compiled.sample(np.random.default_rng(5), 3000, split)
    x = -exact.sentence_log_probs(drawn.ids, drawn.length)
    n = drawn.length.astype(float)
    estimate = x.sum() / n.sum()
    stderr = np.std(x - estimate * n) / (math.sqrt(len(x)) * n.mean())
    assert abs(estimate - small.floor[split]) < 4 * stderr + 1e-12


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(load_scenario("pronouns"))


@pytest.fixture(scope="module")
def sentences(corpus):
    return corpus.sample(np.random.default_rng(21), 4000, "train")


def test_a_verb_chooses_its_object_two_to_four_words_back(corpus, sentences):
    takes = {v: objs for f in corpus.grammar.frames.values()
             for v, objs in zip(f.verbs, f.objects, strict=True)}
    distances = set()
    for s in sentences:
        for i in s.object_positions():
            verb = s.object_verb[i]
            assert s.words[i] in takes[s.words[verb]], s.text
            distances.add(i - verb)
    assert distances == {2, 3, 4}  # "the", then an optional adjective and colour


def test_an_agreeing_word_follows_its_subject_not_the_nearest_noun(corpus, sentences):
    grammar = corpus.grammar
    forms = {w: n for cls in grammar.numbered.values() for n, ws in cls.forms.items()
             for w in ws}
    reflexive = grammar.reflexives
    number = {n.word: grammar.number_of(n.agreement) for n in grammar.nouns}
    agreement = {n.word: n.agreement for n in grammar.nouns}
    sites = misled = 0
    for s in sentences:
        for i in s.agreeing_positions():
            subject = s.words[s.subject_noun[i]]
            nearest = s.words[s.nearest_noun_before(i)]
            assert nearest != subject  # another noun stands between
            if s.words[i] in forms:
                assert forms[s.words[i]] == number[subject], s.text
                misled += number[nearest] != number[subject]
            else:  # a reflexive: the subject's own, never the nearer noun's
                assert s.words[i] == reflexive[agreement[subject]], s.text
                misled += 1
            sites += 1
    assert sites > 500 and misled == sites  # the nearest noun always misleads


def test_things_are_antecedents_and_some_pronouns_point_outside(corpus, sentences):
    things = {n.word for n in corpus.grammar.nouns if n.kind == "thing"}
    forms = {f: a for a, fs in corpus.grammar.pronouns.items() for f in fs}
    agreement = {n.word: n.agreement for n in corpus.grammar.nouns}
    bound_to_thing = outside = two_bound = 0
    for s in sentences:
        bound = [i for i in s.pronoun_positions()]
        bound_to_thing += any(s.words[s.antecedent[i]] in things for i in bound)
        two_bound += len({s.antecedent[i] for i in bound}) == 2
        for i, w in enumerate(s.words):
            if w in forms and s.antecedent[i] < 0:
                outside += 1
                assert forms[w] not in {agreement[n] for n in s.nouns}, s.text
    assert bound_to_thing > 200 and outside > 50 and two_bound > 200


def test_after_a_frame_verb_the_exact_next_words_are_its_objects(corpus):
    exact = corpus.exact_model("train")
    ids = corpus.tokenizer.ids
    prefix = [ids[w] for w in ["the", "boy", "cooked", "the"]]
    p = exact.next_word_probs(prefix)
    # half the time an adjective (5), a quarter a colour (3), a quarter the object (2)
    assert p[ids["old"]] == pytest.approx(0.5 / 5)
    assert p[ids["red"]] == pytest.approx(0.25 / 3)
    assert p[ids["soup"]] == pytest.approx(0.25 / 2) and p[ids["bread"]] == p[ids["soup"]]
    assert p[ids["book"]] == 0.0


def test_story_sentences_resolve_as_the_stories_tell_them(corpus):
    professor, scientists, cat, she_left = corpus.story_set()
    w = professor.words
    assert professor.antecedent[w.index("her")] == w.index("professor")
    assert professor.antecedent[w.index("she")] == w.index("professor")
    w = scientists.words
    assert scientists.antecedent[w.index("their")] == w.index("scientists")
    # findings is plural too, but "completed" is the scientists' own word
    assert scientists.antecedent[w.index("they")] == w.index("scientists")
    assert cat.antecedent[cat.words.index("it")] == -1  # cat or dog: the grammar cannot say
    w = she_left.words
    assert she_left.antecedent[w.index("it")] == w.index("room")
    assert she_left.antecedent[w.index("she")] == -1 and she_left.antecedent[w.index("he")] == -1
    assert "UNK" not in she_left.pos
