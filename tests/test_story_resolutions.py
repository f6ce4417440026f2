"""The stories' sentences, resolved by a small trained Fabric as the stories tell them: her and
she -> professor, their and they -> scientists, it -> room with she and he pointing outside,
and the cat's "it" told as ambiguous (cat and dog both agree with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabric_cli.analysis.inference import infer_sentence, load_run
from fabric_cli.scenario import load_scenario
from fabric_cli.training.trainer import Trainer

STORY = Path(__file__).parent / "scenarios" / "story.toml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "story"
    trainer = Trainer(load_scenario(str(STORY)), run_dir)
    trainer.prepare()
    assert trainer.run().status == "finished"
    return load_run(run_dir)


def verdicts(run, text: str) -> list[tuple[str, str, str]]:
    inf = infer_sentence(run, text)
    return [(r.pronoun, r.verdict, inf.tokens[r.attended]) for r in inf.resolutions]


def test_the_pronoun_head_is_proven(run):
    assert run.tracker_source == "specialist"


def test_her_and_she_find_the_professor_over_the_king(run):
    assert verdicts(run, "The professor thanked the king after she finished her lecture.") == [
        ("she", "correct", "professor"), ("her", "correct", "professor")]


def test_their_and_they_find_the_scientists(run):
    told = verdicts(run, "The scientists published their findings after they completed the "
                         "experiment.")
    assert told == [("their", "correct", "scientists"), ("they", "correct", "scientists")]


def test_it_finds_the_room_while_she_and_he_point_outside(run):
    told = verdicts(run, "She left the room, though it wasn't clear why he stayed.")
    assert [(p, v) for p, v, _ in told] == [
        ("she", "no_agreeing_noun"), ("it", "correct"), ("he", "no_agreeing_noun")]
    assert told[1][2] == "room"


def test_the_cats_it_is_told_as_ambiguous(run):
    told = verdicts(run, "The cat chased the dog because it was fast.")
    assert [(p, v) for p, v, _ in told] == [("it", "ambiguous")]
