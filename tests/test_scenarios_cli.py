"""`fabric scenarios` and `fabric corpus` as a user runs them."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from fabric_cli.cli import app
from fabric_cli.language.corpus import Corpus
from fabric_cli.scenario import load_scenario

runner = CliRunner()
PLAIN = {"COLUMNS": "120", "NO_COLOR": "1"}


def test_scenarios_lists_bundled_names_with_descriptions():
    result = runner.invoke(app, ["scenarios"], env=PLAIN)
    assert result.exit_code == 0, result.output
    for name in ("pronouns", "tiny"):
        scenario = load_scenario(name)
        assert name in result.output
        assert scenario.description.split(":")[0] in result.output
        assert f"{scenario.training.steps:,}" in result.output  # 1,400 as every view writes it
    assert "(default)" in result.output


def test_corpus_shows_numbered_sentences_arrows_and_the_floor():
    result = runner.invoke(app, ["corpus", "-n", "3", "--seed", "4"], env=PLAIN)
    assert result.exit_code == 0, result.output
    out = result.output
    assert re.search(r"^\s+1  the ", out, re.MULTILINE) and re.search(r"^\s+3  ", out, re.MULTILINE)
    assert not re.search(r"^\s+4  ", out, re.MULTILINE)
    assert "→" in out and "PRON" in out and "NOUN" in out
    floor = Corpus(load_scenario("pronouns")).floor
    assert f"train {floor['train']:.3f}" in out and f"held-out {floor['heldout']:.3f}" in out
    assert "\x1b[" not in out


def test_corpus_same_seed_same_sentences_and_heldout_uses_heldout_pairs():
    args = ["corpus", "-s", "tiny", "-n", "4", "--split", "heldout", "--seed", "2"]
    first = runner.invoke(app, args, env=PLAIN)
    second = runner.invoke(app, args, env=PLAIN)
    assert first.exit_code == 0 and first.output == second.output
    sentences = [line for line in first.output.splitlines() if re.match(r"^\s+\d+  the ", line)]
    assert len(sentences) == 4
    heldout = Corpus(load_scenario("tiny")).heldout_pairs()
    for line in sentences:  # every sentence's two nouns form one of the held-out pairs
        words = set(line.split())
        assert any(a in words and b in words for a, b in heldout), line


def test_corpus_arrow_points_from_pronoun_to_antecedent():
    result = runner.invoke(app, ["corpus", "-s", "tiny", "-n", "5"], env=PLAIN)
    arrows = re.findall(r"(\w+)@(\d+) → (\w+)@(\d+)", result.output)
    assert len(arrows) == 5  # each tiny sentence has one pronoun
    grammar = Corpus(load_scenario("tiny")).grammar
    for pronoun, p_at, noun, n_at in arrows:  # the arrow joins words that agree, backwards
        assert grammar.agreement_of(pronoun) == grammar.agreement_of(noun)
        assert int(n_at) < int(p_at)


def test_bad_scenario_is_one_line_exit_2(tmp_path):
    for args in (["corpus", "--scenario", "nonesuch"],
                 ["corpus", "--scenario", str(tmp_path / "missing.toml")],
                 ["corpus", "--split", "test"],
                 ["corpus", "-n", "0"]):
        result = runner.invoke(app, args, env=PLAIN)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fabric: error: "), result.stderr
        assert "Traceback" not in result.output


def test_corpus_says_its_sentences_are_a_sample_and_counts_tokens_as_the_tokenizer_does():
    # `fabric corpus -n 6` opened "6 training sentences · vocabulary 167 words": as if the
    # language held six sentences, and 167 "words" that the Tokenizer calls tokens (<pad>,
    # <bos> and <unk> among them)
    out = " ".join(runner.invoke(app, ["corpus", "-n", "6"], env=PLAIN).output.split())
    assert "a sample of 6 training sentences" in out
    assert f"vocabulary {len(Corpus(load_scenario('pronouns')).tokenizer)} tokens" in out


def test_corpus_shows_what_a_reflexive_and_an_object_look_back_to():
    """A reflexive is tagged PRON but has no antecedent arrow: its line says the noun it
    agrees with (what a noun head looks back to), as an object's says its verb."""
    result = runner.invoke(app, ["corpus", "-n", "7"], env=PLAIN)
    assert result.exit_code == 0, result.output
    grammar = Corpus(load_scenario("pronouns")).grammar
    agrees = re.findall(r"(\w+)@(\d+) with (\w+)@(\d+)", result.output)
    reflexive = [(w, n) for w, _, n, _ in agrees if w in grammar.reflexives.values()]
    assert reflexive, result.output
    for word, noun in reflexive:
        assert grammar.agreement_of(noun) == {v: k for k, v in grammar.reflexives.items()}[word]
    assert re.search(r"object: \w+@\d+ of \w+@\d+", result.output), result.output
