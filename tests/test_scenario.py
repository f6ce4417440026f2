"""Scenario loading: the bundled ones load, and every broken file gets one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabric_cli import scenario as scenario_module
from fabric_cli.errors import FabricError
from fabric_cli.scenario import bundled_scenarios, load_scenario, scenarios_dir

BAD = Path(__file__).parent / "bad_scenarios"

# file -> (the key the message must name, a fragment of what was expected)
BAD_CASES = {
    "unknown_top_key": ("colour", "unknown key"),
    "unknown_training_key": ("training.learning_rate", "unknown key"),
    "missing_description": ("description", "missing"),
    "missing_model": ("model", "missing"),
    "n_heads_not_dividing": ("model.n_heads", "dividing model.d_model (32), got 5"),
    "negative_steps": ("training.steps", "positive integer, got -5"),
    "float_steps": ("training.steps", "positive integer, got 300.0"),
    "string_batch_size": ("training.batch_size", "positive integer, got '32'"),
    "zero_lr": ("training.lr", "(0, 1]"),
    "dropout_one": ("training.dropout", "[0, 1)"),
    "beta2_too_big": ("training.beta2", "[0, 1), got 1.5"),
    "warmup_too_long": ("training.warmup_steps", "fewer than training.steps (300)"),
    "probe_every_too_large": ("training.probe_every", "at most training.steps"),
    "n_ctx_too_short": ("model.n_ctx", "at least 12"),
    "zero_threshold": ("probes.specialist_threshold", "(0, 1]"),
    "heldout_fraction_too_big": ("heldout_fraction", "(0, 0.5]"),
    "undefined_class": ("grammar.templates[0].pattern", "undefined class 'MEETS'"),
    "unknown_reference": ("grammar.templates[0].pattern", "unknown reference {c}"),
    "pronoun_before_antecedent": ("grammar.templates[0].pattern", "before its possible antecedent"),
    "missing_second_noun": ("grammar.templates[0].pattern", "both candidate nouns"),
    "no_final_period": ("grammar.templates[0].pattern", "must end with '.'"),
    "literal_without_pos": ("grammar.templates[0].pattern", "'with' has no part of speech"),
    "unbalanced_bracket": ("grammar.templates[0].pattern", "'[' without a matching ']'"),
    "optional_noun": ("grammar.templates[0].pattern", "cannot be optional"),
    "single_agreement": ("grammar.nouns", "two different agreements"),
    "unknown_agreement": ("grammar.nouns.cat.agreement", "got 'nueter'"),
    "shared_pronoun": ("grammar.pronouns.neuter", "could not tell the two antecedents apart"),
    "empty_verbs": ("grammar.nouns.king.verbs", "non-empty list"),
    "bad_pos": ("grammar.classes.MEET.pos", "got 'VRB'"),
    "two_words_in_one": ("grammar.nouns.professor.attributes[0]", "one token"),
    "word_two_pos": ("grammar.classes.MEET", "'met' is VERB here but NOUN"),
    "story_unknown_word": ("probes.story_sentences[0]", "'homework' is not in the grammar"),
    "syntax_missing_value": ("line 17, column 8", "TOML syntax error"),
    "syntax_duplicate_key": ("line 20, column 10", "TOML syntax error"),
    "templates_not_array": ("grammar.templates", "array of tables"),
    "not_utf8": ("not UTF-8", "offset"),
    "residual_not_bool": ("model.residual", "true or false, got 'off'"),
    "unknown_layernorm": ("model.layernorm", 'one of "pre", "none", got \'post\''),
    "unknown_optimizer": ("training.optimizer", '"adamw", "sgd", "momentum", got \'adam\''),
}


def test_every_bad_file_has_a_case():
    assert {p.stem for p in BAD.glob("*.toml")} == set(BAD_CASES)


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_scenario_gives_one_line_naming_file_key_and_expectation(name):
    key, fragment = BAD_CASES[name]
    path = BAD / f"{name}.toml"
    with pytest.raises(FabricError) as caught:
        load_scenario(str(path))
    message = caught.value.message
    assert message.startswith(f"{path}: "), message
    assert f": {key}" in message, message
    assert fragment in message, message
    assert "\n" not in message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("name", ["pronouns", "tiny"])
def test_bundled_scenarios_load_with_their_settings(name):
    s = load_scenario(name)
    assert s.name == name
    assert s.path.name == f"{name}.toml"
    assert s.model.d_model % s.model.n_heads == 0
    assert s.model.n_ctx >= s.grammar.max_length() + 1
    assert 0 < s.heldout_fraction <= 0.5
    assert s.training.warmup_steps < s.training.steps
    assert any("professor" in text and "her lecture" in text
               for text in s.probes.story_sentences)


def test_default_scenario_is_sized_for_a_quick_run():
    s = load_scenario("pronouns")
    assert s.model.n_layers <= 3 and s.model.d_model == 64  # deep enough for a cast
    assert s.training.steps <= 1500 and s.training.batch_size == 32
    assert s.grammar.max_length() <= 16


def test_bundled_list_has_descriptions():
    infos = {i.name: i for i in bundled_scenarios()}
    assert {"pronouns", "tiny"} <= set(infos)
    assert all(i.description and "\n" not in i.description for i in infos.values())
    assert not any(i.description.startswith("(broken") for i in infos.values())


def test_unknown_name_lists_the_bundled_names():
    with pytest.raises(FabricError) as caught:
        load_scenario("nonesuch")
    assert "nonesuch" in caught.value.message
    assert "pronouns" in caught.value.message and "tiny" in caught.value.message


def test_missing_path_and_directory_are_one_line_errors(tmp_path):
    for target, fragment in ((tmp_path / "gone.toml", "no such file"), (tmp_path, "directory")):
        arg = str(target) + ("/" if target == tmp_path else "")
        with pytest.raises(FabricError) as caught:
            load_scenario(arg)
        assert fragment in caught.value.message and "\n" not in caught.value.message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_refused_not_read_forever():
    """`--scenario /dev/zero` has no size to check first: fabric reads no more than a
    scenario may hold, instead of filling the memory."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "fabric_cli", "corpus", "--scenario",
                             "/dev/zero"], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 2
    assert "fabric: error: /dev/zero: too large for a scenario (more than" in result.stderr


def test_a_users_copy_loads_from_a_path(tmp_path):
    copy = tmp_path / "mine.toml"
    text = (scenarios_dir() / "tiny.toml").read_text()
    copy.write_text(text.replace("steps = 300", "steps = 70"))
    s = load_scenario(str(copy))
    assert s.name == "mine" and s.training.steps == 70


def test_scenarios_dir_prefers_the_installed_package_data(tmp_path, monkeypatch):
    # A wheel install: fabric_cli/scenarios/ exists inside the package.
    tiny_text = (scenarios_dir() / "tiny.toml").read_text()  # wherever this install keeps it
    package = tmp_path / "fabric_cli"
    (package / "scenarios").mkdir(parents=True)
    (package / "scenarios" / "tiny.toml").write_text(tiny_text)
    monkeypatch.setattr(scenario_module.importlib.resources, "files", lambda _: package)
    assert scenarios_dir() == package / "scenarios"
    assert [i.name for i in bundled_scenarios()] == ["tiny"]


def test_scenarios_dir_falls_back_to_the_checkout(tmp_path, monkeypatch):
    # An editable install: no scenarios/ inside the package, so the repository's, beside the
    # package directory, is used. Simulate a checkout wherever this test runs from.
    checkout = tmp_path / "checkout"
    (checkout / "fabric_cli").mkdir(parents=True)
    (checkout / "scenarios").mkdir()
    (checkout / "scenarios" / "pronouns.toml").write_text("# a checkout's copy\n")
    monkeypatch.setattr(scenario_module.importlib.resources, "files", lambda _: tmp_path / "pkg")
    monkeypatch.setattr(scenario_module, "__file__", str(checkout / "fabric_cli" / "scenario.py"))
    found = scenarios_dir()
    assert found == checkout / "scenarios"
    assert (found / "pronouns.toml").is_file()


def test_a_scenario_on_a_base_is_one_toml_text_that_loads_to_the_merged_tables():
    # a run keeps this text as its copy and resumes from it: the base's file and the
    # scenario's one after the other would declare [training] twice
    import tomllib

    from fabric_cli.scenario import load_data

    based = [p for p in scenarios_dir().glob("*.toml")
             if "base" in tomllib.loads(p.read_text(encoding="utf-8"))]
    assert len(based) >= 5
    for path in based:
        merged, text = load_data(path, path.name)
        assert tomllib.loads(text) == merged, path.name
        assert "base" not in tomllib.loads(text)


def test_toml_text_round_trips_what_a_scenario_can_hold():
    import math
    import tomllib

    from fabric_cli import toml_text

    data = {"description": 'quotes " and \\ back, tab\t, line\n, bell\x07, del\x7f, é, 😀',
            "seed": 3, "ratio": 1e-05, "big": 1e300, "flag": True, "nothing": False,
            "odd key": [1, 2.5, "x"], "model": {"d": 64, "table": {"a.b": {"c": [True]}}},
            "grammar": {"templates": [{"text": "The {a}", "w": 1.0}, {"text": "b", "w": 2}],
                        "empty": []},
            "edge": {"inf": math.inf, "minus": -math.inf}}
    back = tomllib.loads(toml_text.dumps(data, header="a note\nover two lines"))
    assert back == data
    assert math.isnan(tomllib.loads(toml_text.dumps({"x": math.nan}))["x"])
