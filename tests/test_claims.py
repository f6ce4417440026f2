"""Every qualitative word a voice speaks stands on a comparison of that run's numbers.

For each story (every voice, the ensemble) over every synthetic chronicle and a real run:
- every phrase it told that needs a fact carries a claim of that fact, and the claim holds
  when re-judged here, independently, from its own numbers and the thresholds in claims.py;
- the numbers a claim compared are numbers of that chronicle;
- no phrase uses a claiming word (claims.LEXICON) its fact does not license;
- every paragraph is made of told phrases (nothing reaches the page around the ledger).
"""

from __future__ import annotations

import json
import math
import re

import pytest
from synthetic_runs import CHRONICLES

from fabric_cli.narrate import NARRATORS
from fabric_cli.narrate import claims as C
from fabric_cli.narrate.facts import collect
from fabric_cli.typeset import as_typed

COMPONENTS = list(NARRATORS)


def _f(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _fin(*xs) -> bool:
    return all(math.isfinite(_f(x)) for x in xs)


# An independent statement of each fact, written from the thresholds' meaning.
def _grew(b, a):
    return _fin(a, b) and _f(a) - _f(b) > C.CHANGE * _f(b)


def _shrank(b, a):
    return _fin(a, b) and _f(b) - _f(a) > C.CHANGE * _f(b)


INDEPENDENT = {
    "grew": lambda v: _grew(v["before"], v["after"]),
    "sharper": lambda v: _grew(v["before"], v["after"]),
    "shrank": lambda v: _shrank(v["before"], v["after"]),
    "steady": lambda v: _fin(v["before"], v["after"])
    and abs(_f(v["after"]) - _f(v["before"])) <= 0.1 * abs(_f(v["before"])),
    "all_shrank": lambda v: all(_shrank(b, a) for b, a in v["pairs"]),
    "all_grew": lambda v: all(_grew(b, a) for b, a in v["pairs"]),
    "mixed": lambda v: not all(_shrank(b, a) for b, a in v["pairs"])
    and not all(_grew(b, a) for b, a in v["pairs"]),
    "near_uniform": lambda v: abs(_f(v["loss"]) - _f(v["uniform"])) < C.NEAR_UNIFORM_NATS,
    "far_from_uniform": lambda v: abs(_f(v["loss"]) - _f(v["uniform"])) >= C.NEAR_UNIFORM_NATS,
    "close_to_floor": lambda v: _f(v["val"]) < _f(v["floor"]) * (1 + C.CLOSE_GAP),
    "far_from_floor": lambda v: _f(v["val"]) >= _f(v["floor"]) * (1 + C.CLOSE_GAP),
    "held": lambda v: _f(v["dropped"]) >= C.HELD_FRACTION * _f(v["clean"]) > 0,
    "bent": lambda v: C.SHAKEN_FRACTION * _f(v["clean"]) <= _f(v["dropped"])
    < C.HELD_FRACTION * _f(v["clean"]),
    "shaken": lambda v: _f(v["dropped"]) < C.SHAKEN_FRACTION * _f(v["clean"]),
    "hurt": lambda v: _f(v["loss_after"]) - _f(v["loss_before"]) >= C.HURT_LOSS
    or _f(v["acc_before"]) - _f(v["acc_after"]) >= C.HURT_ACC,
    "harmless": lambda v: _f(v["loss_after"]) - _f(v["loss_before"]) < C.HURT_LOSS
    and _f(v["acc_before"]) - _f(v["acc_after"]) < C.HURT_ACC,
    "learned": lambda v: _f(v["acc"]) >= C.LEARNED_ACC,
    "not_learned": lambda v: _f(v["acc"]) < C.LEARNED_ACC,
    "certain": lambda v: _f(v["weight"]) >= C.CERTAIN,
    "murmur": lambda v: _f(v["weight"]) <= C.MURMUR,
    "right": lambda v: v["target"] == v["antecedent"],
    "wrong": lambda v: v["target"] != v["antecedent"],
    "branch_more": lambda v: _f(v["block"]) > _f(v["skip"]),
    "branch_less": lambda v: 0 < _f(v["skip"]) and _f(v["block"]) <= _f(v["skip"]),
    "faded": lambda v: _f(v["bottom"]) < C.FADED_RATIO * _f(v["top"]),
    "reached": lambda v: _f(v["bottom"]) >= C.FADED_RATIO * _f(v["top"]),
    "clear_margin": lambda v: _f(v["weight"]) >= C.MARGIN * _f(v["runner_up"]),
    "share_fell": lambda v: _f(v["before"]) - _f(v["after"]) >= C.SHARE_DROP,
    "share_kept": lambda v: _f(v["before"]) - _f(v["after"]) < C.SHARE_DROP,
    "narrow_margin": lambda v: _f(v["weight"]) < C.MARGIN * _f(v["runner_up"]),
    "opened": lambda v: _f(v["after"]) > 0
    and _f(v["after"]) - _f(v["before"]) > C.CHANGE * abs(_f(v["before"])),
    "nothing": lambda v: _f(v["value"]) == 0,
    "figures_equal": lambda v: isinstance(v["before"], str) and v["before"] == v["after"],
    "figures_differ": lambda v: isinstance(v["before"], str) and v["before"] != v["after"],
    "exceeds": lambda v: _f(v["a"]) > _f(v["b"]),
    "both_ways": lambda v: _f(v["fall"]) < 0 < _f(v["rise"]),
    "even": lambda v: _f(v["fall"]) < 0 < _f(v["rise"])
    and abs(_f(v["rise"]) + _f(v["fall"])) <= C.CHANGE * _f(v["rise"]),
    "not_exceeds": lambda v: _f(v["a"]) <= _f(v["b"]),
    "gained_more": lambda v: _f(v["a"]) > max(_f(v["b"]), 0.0),
    "gained_alone": lambda v: _f(v["a"]) > 0.0 >= _f(v["b"]),
    "gained_less": lambda v: _f(v["b"]) >= _f(v["a"]) and _f(v["b"]) > 0,
    "neither_gained": lambda v: max(_f(v["a"]), _f(v["b"])) <= 0,
    "small_share": lambda v: _f(v["a"]) < 0.25 * _f(v["b"]),
    "fair_share": lambda v: 0.25 * _f(v["b"]) <= _f(v["a"]) <= _f(v["b"]),
    "clipped": lambda v: _f(v["n"]) > 0,
    "gale": lambda v: _f(v["line"]) > 0 and _f(v["peak"]) >= 5 * _f(v["line"]),
    "never_clipped": lambda v: _f(v["n"]) == 0,
    "diverged": lambda v: not _fin(v["loss"]) or not _fin(v.get("grad_norm", 0.0)),
}


def _numbers(value, out: set) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        out.add(float(value))
    elif isinstance(value, str):
        out.add(value)
    elif isinstance(value, dict):
        for v in value.values():
            _numbers(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _numbers(v, out)


def _lexicon_hits(text: str) -> list[str]:
    low = text.lower()
    return [w for w in C.LEXICON if re.search(rf"(?<![\w'-]){re.escape(w)}(?![\w'-])", low)]


def _stripped(told, entry, events) -> str:
    """The words `entry` itself chose: nested phrases, sentences and quoted tokens removed."""
    text = entry.text
    for other in sorted(told, key=lambda t: -len(t.text)):
        if other is not entry and other.text and len(other.text) < len(text):
            text = text.replace(other.text, " ")
    sentences = {e.get("sentence") for e in events if e.get("type") == "moment"}
    for probe in (e for e in events if e.get("type") == "probe"):
        sentences |= {s.get("sentence") for s in probe.get("snapshots") or []}
    for s in [*events[0].get("story_sentences", []), *filter(None, sentences)]:
        text = text.replace(as_typed(s), " ").replace(s, " ")
    return re.sub(r'"[^"]*"', " ", text)


def check_story(story, events) -> list[str]:
    problems = []
    measured: set = set()
    _numbers(events, measured)
    for entry in story.told:
        if entry.needs is not None:
            claim = entry.claim
            if claim is None or claim.name != entry.needs:
                problems.append(f"no {entry.needs} claim behind: {entry.text}")
                continue
            if not INDEPENDENT[claim.name](claim.values):
                problems.append(f"{claim.name} fails on {claim.values}: {entry.text}")
            found: set = set()
            _numbers(claim.values, found)
            foreign = {x for x in found if x not in measured and not isinstance(x, str)}
            if foreign and claim.name not in ("near_uniform", "far_from_uniform"):
                problems.append(f"{claim.name} compared unmeasured {foreign}: {entry.text}")
        for word in _lexicon_hits(_stripped(story.told, entry, events)):
            if entry.needs not in C.LEXICON[word]:
                problems.append(f"{word!r} said without {C.LEXICON[word]}: {entry.template}")
    texts = sorted({t.text for t in story.told if t.text}, key=len, reverse=True)
    for chapter in story.chapters:
        for paragraph in chapter.paragraphs:
            rest = paragraph
            for text in texts:
                rest = rest.replace(text, "")
            if rest.strip(" .*"):
                problems.append(f"untold text {rest.strip()!r} in: {paragraph}")
    return problems


@pytest.mark.parametrize("run", list(CHRONICLES))
@pytest.mark.parametrize("component", COMPONENTS)
def test_every_claim_in_every_voice_holds_on_synthetic_runs(run, component):
    events = CHRONICLES[run]()
    story = NARRATORS[component].story(collect(events))
    assert check_story(story, events) == []


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_claim_holds_on_a_real_run(tiny_run_master, component):
    lines = (tiny_run_master / "chronicle.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    story = NARRATORS[component].story(collect(events))
    assert check_story(story, events) == []


INFER_CASES = [
    ("The king met the professor and she", []),
    ("The queen saw the pilot with his", [(0, 1)]),
    ("The professor finished her lecture.", []),
    ("The king met the pilot and she", [(0, 0)]),
]


@pytest.mark.parametrize("sentence, ablate", INFER_CASES)
def test_every_claim_in_infers_account_holds(tiny_run_master, sentence, ablate):
    from fabric_cli.analysis.inference import infer_sentence, inference_json, load_run
    from fabric_cli.narrate.inference import inference_account

    run = load_run(tiny_run_master)
    base = infer_sentence(run, sentence)
    ablated = infer_sentence(run, sentence, ablate=ablate) if ablate else None
    doc = inference_json(run, base, ablated=ablated)
    paragraphs, told = inference_account(doc)
    problems = []
    for entry in told:
        if entry.needs is not None:
            claim = entry.claim
            if claim is None or claim.name != entry.needs or not INDEPENDENT[claim.name](
                    claim.values):
                problems.append(f"{entry.needs}: {claim}: {entry.text}")
        text = entry.text
        for other in told:
            if other is not entry and other.text in text and len(other.text) < len(text):
                text = text.replace(other.text, " ")
        text = re.sub(r'"[^"]*"', " ", text.replace(sentence, " "))
        for word in _lexicon_hits(text):
            if entry.needs not in C.LEXICON[word]:
                problems.append(f"{word!r} without {C.LEXICON[word]}: {entry.template}")
    assert paragraphs and problems == []


SHORT_STEPS = 30  # enough for a first probe, some steps, the last probe and the ablation


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory):
    """Every bundled scenario, really trained for a few steps (the claims hold in each)."""
    from fabric_cli.scenario import bundled_scenarios, load_scenario
    from fabric_cli.training.trainer import Trainer

    runs = {}
    for info in bundled_scenarios():
        run_dir = tmp_path_factory.mktemp("short") / info.name
        trainer = Trainer(load_scenario(info.name), run_dir, steps=SHORT_STEPS)
        trainer.prepare()
        trainer.run()
        lines = (run_dir / "chronicle.jsonl").read_text().splitlines()
        runs[info.name] = [json.loads(line) for line in lines]
    return runs


def test_every_claim_holds_on_a_short_run_of_every_bundled_scenario(short_runs):
    problems = {}
    for name, events in short_runs.items():
        for component in COMPONENTS:
            found = check_story(NARRATORS[component].story(collect(events)), events)
            if found:
                problems[f"{name}/{component}"] = found
    assert len(short_runs) >= 2 and problems == {}


def test_the_live_lines_of_training_make_no_claim_they_cannot_check():
    """Moment lines (told live, one per moment, without the run's other numbers) use no word
    of the claims lexicon: whatever they say, the moment itself measured."""
    for name, narrator in NARRATORS.items():
        for kind, bank in narrator.moment_lines.items():
            for template in bank:
                assert _lexicon_hits(template) == [], (name, kind, template)


def test_every_phrase_in_a_bank_says_only_what_its_fact_licenses():
    """Read off the banks themselves, not a run: a phrase's claiming words must be licensed by
    the fact its bank needs, even a phrase no run of ours has yet reached (the storm on one
    machine reached "Louder than the stream it joined" under 'exceeds', on another never)."""
    import importlib
    import pkgutil

    from fabric_cli import narrate

    problems, banks = [], 0
    for info in pkgutil.iter_modules(narrate.__path__):
        module = importlib.import_module(f"fabric_cli.narrate.{info.name}")
        for var, value in vars(module).items():
            found = value.values() if isinstance(value, dict) else [value]
            for bank in (b for b in found if isinstance(b, C.Bank) and b.needs):
                banks += 1
                for phrase in bank:
                    for word in _lexicon_hits(re.sub(r"\{[^}]*\}", " ", phrase)):
                        if bank.needs not in C.LEXICON[word]:
                            problems.append(f"{info.name}.{var}: {word!r} under "
                                            f"{bank.needs!r}: {phrase}")
    assert banks > 20 and problems == []
