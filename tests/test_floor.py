"""The entropy floor and the generator's exact probabilities, checked three independent ways:
by hand on the tiny grammar, against sampled frequencies, and against a Monte-Carlo estimate."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pytest

from fabric_cli.language.corpus import Corpus
from fabric_cli.scenario import load_scenario


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(load_scenario("pronouns"))


def test_tiny_floor_by_hand():
    tiny = Corpus(load_scenario("tiny"))
    # 3 feminine x 3 masculine nouns: 9 pairs, two held out. A sentence reveals the ordered
    # pair (log 14 in training, log 4 held out), MEET (2 words), the template (and/with, 2),
    # the antecedent (2 choices, told by the pronoun) and, in the "with" template only, the
    # attribute (2 per noun); each noun has one verb. 9 targets per sentence.
    by_hand_train = (math.log(14) + 3.5 * math.log(2)) / 9
    by_hand_heldout = (math.log(4) + 3.5 * math.log(2)) / 9
    walked = tiny.computed_floor_details()  # the floor walked out now, and as kept
    for floors in ({s: f.nats_per_token for s, f in walked.items()}, tiny.floor):
        assert floors["train"] == pytest.approx(by_hand_train, rel=1e-12)
        assert floors["heldout"] == pytest.approx(by_hand_heldout, rel=1e-12)


def test_the_kept_floors_are_the_floors_walked_out_now_for_every_bundled_language():
    """language/floors.json spares `fabric train` the walk; it must hold what the walk gives
    today, to the last bits of rounding, for every bundled scenario and lesson (else:
    scripts/write_floors.py)."""
    from fabric_cli.language.floors import _table, known_floors
    from fabric_cli.lessons import every_bundled_scenario

    walked: dict[str, dict] = {}
    for name, scenario in every_bundled_scenario():
        corpus = Corpus(scenario)
        key = corpus.language_key()
        assert known_floors(key) is not None, f"{name}: no kept floor; run write_floors.py"
        if key not in walked:
            walked[key] = corpus.computed_floor_details()
        kept = known_floors(key)
        assert set(kept) == set(walked[key]), name
        for split, floor in walked[key].items():  # numpy's sums round a last bit differently
            assert kept[split].states == floor.states, (name, split)  # on other CPUs' SIMD
            for field in ("nats_per_token", "sentence_entropy", "mean_length"):
                assert getattr(kept[split], field) == pytest.approx(getattr(floor, field),
                                                                    rel=1e-12), (name, split)
    assert set(_table()) == set(walked), "floors.json keeps a language no scenario speaks"


def test_a_language_of_ones_own_is_walked_out(tmp_path):
    text = load_scenario("tiny").text.replace('seed = 0', 'seed = 5', 1)
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    mine = Corpus(load_scenario(str(path)))
    from fabric_cli.language.floors import known_floors

    assert known_floors(mine.language_key()) is None  # other held-out pairs: not kept
    assert mine.floor == {s: f.nats_per_token for s, f in mine.computed_floor_details().items()}


def test_first_words_have_the_template_weights(corpus):
    exact = corpus.exact_model("train")
    ids = corpus.tokenizer.ids
    first = exact.next_word_probs([])
    # templates weigh 3, 3, 2, 2, 1, 1, 2, 2, 2 (18); all but one of weight 1 start with "the"
    assert first[ids["the"]] == pytest.approx(17 / 18)
    after_the = exact.next_word_probs([ids["the"]])
    # [ADJ] follows the first "the" in those of weight 3, 3, 2 (a person sees a thing), 2 and
    # 2 (the relative clauses): 12 of 17, present half the time, one of 5 adjectives
    assert after_the[ids["old"]] == pytest.approx(12 / 17 * 0.5 / 5)
    assert first.sum() == pytest.approx(1.0) and after_the.sum() == pytest.approx(1.0)


def test_sampled_next_word_frequencies_match_exact_probabilities(corpus):
    """Chi-square over every prefix of up to 4 words seen at least 150 times."""
    exact = corpus.exact_model("train")
    drawn = corpus.compiled.sample(np.random.default_rng(2024), 6000, "train")
    counts: dict[tuple, Counter] = defaultdict(Counter)
    for row, length in zip(drawn.ids.tolist(), drawn.length.tolist(), strict=True):
        for t in range(min(5, length)):
            counts[tuple(row[:t])][row[t]] += 1
    chi2 = 0.0
    dof = 0
    tested = 0
    for prefix, counter in counts.items():
        n = sum(counter.values())
        if n < 150:
            continue
        p = exact.next_word_probs(list(prefix))
        support = np.flatnonzero(p > 0)
        assert set(counter) <= set(support.tolist()), prefix  # nothing impossible was drawn
        observed = np.array([counter.get(int(w), 0) for w in support])
        expected = n * p[support]
        chi2 += float(((observed - expected) ** 2 / expected).sum())
        dof += len(support) - 1
        tested += 1
    assert tested >= 10 and dof > 50
    assert chi2 < dof + 4 * math.sqrt(2 * dof), (chi2, dof)


def test_after_a_pronoun_the_exact_distribution_is_the_antecedents_verbs(corpus):
    exact = corpus.exact_model("train")
    ids = corpus.tokenizer.ids
    prefix = [ids[w] for w in ["the", "professor", "met", "the", "king", "because", "she"]]
    p = exact.next_word_probs(prefix)
    professor = next(n for n in corpus.grammar.nouns if n.word == "professor")
    for verb in professor.verbs:
        assert p[ids[verb]] == pytest.approx(1 / len(professor.verbs))


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_floor_matches_a_monte_carlo_estimate(corpus, split):
    exact = corpus.exact_model(split)
    rng = np.random.default_rng(7)
    neg_log_p, lengths = [], []
    for _ in range(4):
        drawn = corpus.compiled.sample(rng, 500, split)
        neg_log_p.append(-exact.sentence_log_probs(drawn.ids, drawn.length))
        lengths.append(drawn.length)
    x, n = np.concatenate(neg_log_p), np.concatenate(lengths).astype(float)
    assert np.isfinite(x).all()
    estimate = x.sum() / n.sum()
    stderr = np.std(x - estimate * n) / (math.sqrt(len(x)) * n.mean())
    floor = corpus.floor[split]
    assert abs(estimate - floor) < 4 * stderr, (estimate, floor, stderr)
    details = corpus.floor_details()[split]
    assert details.sentence_entropy == pytest.approx(floor * details.mean_length)


def test_floor_is_below_what_ignoring_the_pronoun_would_cost(corpus):
    floor = corpus.floor
    assert 0.3 < floor["train"] < 3.0 and 0.3 < floor["heldout"] < 3.0
    # fewer held-out pairs means fewer choices, so a lower floor
    assert floor["heldout"] < floor["train"]
