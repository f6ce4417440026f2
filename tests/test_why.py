"""`fabric why`: a lesson trains its pair once, reuses it, compares, and speaks; bad input is
one clean line. A tiny lesson stands in for the bundled ones (which take a minute or more)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import invoke, one_line_error

from fabric_cli import lessons
from fabric_cli.lessons import LESSONS, load_lesson
from fabric_cli.scenario import load_scenario

TINY_LESSON = """\
base = "tiny"
description = "A tiny storm: clipping on, and its twin without."

[training]
steps = 60
warmup_steps = 5
probe_every = 20

[lesson]
component = "engineers"
without = { "training.grad_clip" = 0 }
"""


@pytest.fixture
def tiny_lessons(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "clipping.toml").write_text(TINY_LESSON)
    monkeypatch.setattr(lessons, "lessons_dir", lambda: folder)
    return folder


def test_why_trains_both_keeps_them_and_reuses_them(tiny_lessons, tmp_path):
    runs = tmp_path / "runs"
    first = invoke("why", ["clipping", "--runs-dir", str(runs)])
    assert first.exit_code == 0, first.output
    for label in ("with", "without"):
        assert (runs / "why-clipping" / label / "chronicle.jsonl").is_file()
    assert "Training with the component: 60 steps" in first.output
    assert "Why clipping? With it (A) and without it (B)" in first.output
    assert "Engineers: We are the Engineers. In run B our hands were tied" in first.output
    stamp = (runs / "why-clipping" / "with" / "chronicle.jsonl").stat().st_mtime_ns
    picture = tmp_path / "why.txt"
    again = invoke("why", ["clipping", "--runs-dir", str(runs), "--json",
                           "--export", str(picture)])
    assert again.exit_code == 0, again.output
    assert "Why clipping? With it (A) and without it (B)" in picture.read_text()
    assert "Reusing the kept run" in again.output
    assert (runs / "why-clipping" / "with" / "chronicle.jsonl").stat().st_mtime_ns == stamp
    doc = json.loads(again.output[again.output.index("{"):])
    assert doc["component"] == "engineers"
    assert [(r["label"], r["reused"]) for r in doc["lesson"]["runs"]] == [
        ("with", True), ("without", True)]
    assert doc["differences"] == {"grad_clip": [1.0, 0.0]}
    clipped = doc["a"]["clipping"]["count"]
    said = " ".join(s["text"] for s in doc["said"])
    if clipped:
        assert f"we cut the Gradient back on {clipped} steps" in said
    else:
        assert "cut the Gradient back" not in said


def test_a_changed_lesson_trains_again(tiny_lessons, tmp_path):
    runs = tmp_path / "runs"
    assert invoke("why", ["clipping", "--runs-dir", str(runs)]).exit_code == 0
    (tiny_lessons / "clipping.toml").write_text(TINY_LESSON.replace("steps = 60", "steps = 40"))
    again = invoke("why", ["clipping", "--runs-dir", str(runs)])
    assert again.exit_code == 0, again.output
    assert "Reusing" not in again.output and "40 steps" in again.output


def test_why_unknown_component_is_one_clean_line():
    line = one_line_error(invoke("why", ["wizardry"]))
    assert "unknown component 'wizardry'" in line and "residual" in line


def test_a_refused_place_names_why_s_own_option(tiny_lessons, tmp_path):
    theirs = tmp_path / "runs" / "why-clipping" / "with"
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("mine")
    result = invoke("why", ["clipping", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    line = result.output.splitlines()[-1]
    assert "choose a new or empty --runs-dir" in line, line  # `fabric why` has no --run-dir
    assert (theirs / "notes.txt").read_text() == "mine"


def test_why_rejects_a_bad_export_name_before_training(tmp_path):
    line = one_line_error(invoke("why", ["clipping", "--runs-dir", str(tmp_path),
                                         "--export", "x.png"]))
    assert "must end in" in line
    assert not (tmp_path / "why-clipping").exists()


@pytest.mark.parametrize("name", LESSONS)
def test_every_bundled_lesson_differs_from_its_twin_in_its_component_only(name):
    lesson = load_lesson(name)
    w, wo = lesson.with_scenario, lesson.without_scenario
    assert w.grammar == wo.grammar and w.seed == wo.seed
    changed = {f"model.{k}" for k in vars(w.model) if getattr(w.model, k) != getattr(wo.model, k)}
    changed |= {f"training.{k}" for k in vars(w.training)
                if getattr(w.training, k) != getattr(wo.training, k)}
    assert changed == set(lesson.changes) - {"description"}
    # the run without the component is the bundled hardship scenario itself
    hardship = {"residual": "adrift", "clipping": "storm", "adam": "no-adam",
                "dropout": "no-dropout", "layernorm": "no-layernorm"}[name]
    bundled = load_scenario(hardship)
    assert (wo.model, wo.training) == (bundled.model, bundled.training)


def test_a_scenario_on_a_base_replaces_keys_one_by_one(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('base = "tiny"\ndescription = "Mine."\n[training]\nsteps = 77\n'
                    '[model]\nresidual = false\n')
    s, tiny = load_scenario(str(mine)), load_scenario("tiny")
    assert s.description == "Mine." and s.training.steps == 77 and not s.model.residual
    assert s.training.lr == tiny.training.lr and s.model.d_model == tiny.model.d_model
    assert s.grammar == tiny.grammar


def test_a_base_that_is_not_bundled_is_one_line(tmp_path):
    mine = tmp_path / "mine.toml"
    mine.write_text('base = "nowhere"\n')
    with pytest.raises(Exception) as caught:
        load_scenario(str(mine))
    assert "base: expected the name of another bundled scenario" in str(caught.value)


def _ctrl_c_at(monkeypatch, scenario_name: str, step: int, sig: str = "SIGINT") -> None:
    """A real SIGINT (or `sig`), sent once by the process to itself when that run reaches
    `step`."""
    import os
    import signal

    from fabric_cli.training.trainer import Trainer

    train_step = Trainer._train_step
    sent = []

    def train_step_then_ctrl_c(self):
        event = train_step(self)
        if self.scenario.name == scenario_name and self.step == step and not sent:
            sent.append(step)
            os.kill(os.getpid(), getattr(signal, sig))
        return event

    monkeypatch.setattr(Trainer, "_train_step", train_step_then_ctrl_c)


def test_ctrl_c_says_what_was_saved_and_what_running_again_does(tiny_lessons, tmp_path,
                                                                 monkeypatch):
    import signal

    runs = tmp_path / "runs"
    _ctrl_c_at(monkeypatch, "why-clipping-without", 25)
    cut = invoke("why", ["clipping", "--runs-dir", str(runs)])
    assert cut.exit_code == 130, cut.output
    lines = [line for line in cut.stderr.splitlines() if line.strip()]
    without, with_ = runs / "why-clipping" / "without", runs / "why-clipping" / "with"
    assert lines[-2] == (
        f"Interrupted {without} at step 25; its checkpoint of step 25 is saved there. "
        f"{with_} (finished) is kept. Running the lesson again reuses "
        f"the kept run and trains {without} from the start (an interrupted run is not "
        "resumed):")
    assert lines[-1] == f"  fabric why clipping --runs-dir {runs}"  # alone, as train's is
    assert "fabric: error: interrupted" not in cut.stderr
    assert (without / "checkpoint").resolve().name == "step-000025"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    again = invoke("why", ["clipping", "--runs-dir", str(runs)])
    assert again.exit_code == 0, again.output
    assert f"Reusing the kept run {with_} (finished)" in again.output
    assert "Training without the component: 60 steps" in again.output


def test_a_ctrl_c_as_the_first_run_finishes_starts_no_second(tiny_lessons, tmp_path,
                                                             monkeypatch):
    runs = tmp_path / "runs"
    _ctrl_c_at(monkeypatch, "why-clipping-with", 60)  # its last step: the loop is done
    cut = invoke("why", ["clipping", "--runs-dir", str(runs)])
    assert cut.exit_code == 130, cut.output
    without, with_ = runs / "why-clipping" / "without", runs / "why-clipping" / "with"
    assert not without.exists()
    line, command = cut.stderr.strip().splitlines()[-2:]
    assert command == f"  fabric why clipping --runs-dir {runs}"
    assert line.startswith(f"Interrupted between the runs. {with_} (finished) is kept.")
    assert f"trains {without} from the start" in line


def test_a_plain_kill_stops_the_lesson_as_ctrl_c_does(tiny_lessons, tmp_path, monkeypatch):
    """`kill PID` (SIGTERM): the same account of what is kept, not a silent death."""
    import signal

    def unhandled(signum, frame):  # the default would end this test process too
        raise RuntimeError("SIGTERM reached the default handler")

    runs = tmp_path / "runs"
    _ctrl_c_at(monkeypatch, "why-clipping-without", 25, sig="SIGTERM")
    before = signal.signal(signal.SIGTERM, unhandled)
    try:
        cut = invoke("why", ["clipping", "--runs-dir", str(runs)])
        assert signal.getsignal(signal.SIGTERM) is unhandled
    finally:
        signal.signal(signal.SIGTERM, before)
    assert cut.exit_code == 130, cut.output
    without = runs / "why-clipping" / "without"
    assert f"Interrupted {without} at step 25; its checkpoint of step 25 is saved there." \
        in cut.stderr


def test_a_full_disk_mid_lesson_says_to_run_why_again_not_a_resume_that_fails(
        tiny_lessons, tmp_path, monkeypatch):
    """A lesson's run keeps its lesson in its scenario copy, which `fabric train --resume`
    cannot read: the way on is `fabric why` again."""
    import errno

    from fabric_cli.analysis import runs as checkpoints

    real = checkpoints._write_file

    def full_at_checkpoints(path, data):
        if path.parent.name.startswith(".step-"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(checkpoints, "_write_file", full_at_checkpoints)
    runs = tmp_path / "runs"
    result = invoke("why", ["clipping", "--runs-dir", str(runs)])
    assert result.exit_code == 2
    line = result.output.strip().splitlines()[-1]
    assert line.endswith(f"No space left on device; run `fabric why clipping --runs-dir "
                         f"{runs}` again to train it from the start"), line
    assert "fabric train --resume" not in result.output


def test_train_resume_on_a_lesson_run_points_to_why(tiny_lessons, tmp_path):
    runs = tmp_path / "runs"
    assert invoke("why", ["clipping", "--runs-dir", str(runs)]).exit_code == 0
    line = one_line_error(invoke("train", ["--resume", "--run-dir",
                                           str(runs / "why-clipping" / "with")]))
    assert line.endswith(f"is one of `fabric why`'s runs, trained anew rather than resumed: "
                         f"run `fabric why clipping --runs-dir {runs}` again"), line
