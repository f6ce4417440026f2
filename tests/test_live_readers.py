"""Reading a run that `fabric train` is still writing: narrate, heads and report say so on
stderr (the story stops where the run has got to, not where it will end); a run whose
trainer is gone, or a directory never locked, gets no note."""

from __future__ import annotations

import json
import os

import pytest
from cli_helpers import invoke

from fabric_cli.analysis import rundir


def _cut_at(run_dir, step: int) -> None:
    """The chronicle as a run still training shows it: events up to `step`, no ending."""
    path = run_dir / "chronicle.jsonl"
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["type"] == "run_end" or event.get("step", 0) > step or \
                event["type"] in ("ablation",):
            break
        kept.append(line)
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")


READERS = [
    ("narrate", ["-c", "loss", "--run", "{}"], "this tells it so far"),
    ("heads", ["--run", "{}"], "this shows it so far"),
    ("report", ["{}", "-o", "{}/../page.html"], "the page shows it so far"),
]


@pytest.mark.parametrize("command, args, words", READERS)
def test_a_run_still_training_is_told_so(command, args, words, tiny_run):
    _cut_at(tiny_run, 120)
    lock = rundir.RunLock(tiny_run)  # as `fabric train` holds it while it trains
    try:
        result = invoke(command, [a.format(tiny_run) for a in args])
    finally:
        lock.release()
    assert result.exit_code == 0, result.output
    note = f"fabric: note: {tiny_run} is still training (step 120 of 300, process " \
           f"{os.getpid()}); {words}"
    assert note in " ".join(result.stderr.split()), result.stderr

    after = invoke(command, [a.format(tiny_run) for a in args])
    assert after.exit_code == 0 and "still training" not in after.stderr


def test_a_lock_left_by_a_finished_trainer_is_no_live_run(tiny_run):
    (tiny_run / rundir.LOCK).write_text(f"{os.getpid()}\n")  # our id, but no lock held
    assert rundir.writer_pid(tiny_run) is None
    (tiny_run / rundir.LOCK).write_text("999999999\n")  # a process long gone
    assert rundir.writer_pid(tiny_run) is None
    (tiny_run / rundir.LOCK).unlink()
    assert rundir.writer_pid(tiny_run) is None
    assert not (tiny_run / rundir.LOCK).exists()  # a reader never makes the lock file


def test_infer_before_the_first_checkpoint_of_a_live_run_does_not_say_resume(tmp_path):
    """In the first moments of `fabric train` there is no checkpoint yet: not 'it stopped,
    resume it' (a resume would be refused: the run is being written)."""
    from cli_helpers import one_line_error

    run = tmp_path / "starting"
    run.mkdir()
    rundir.write_marker(run, "tiny", 300, 0)
    lock = rundir.RunLock(run)
    try:
        line = one_line_error(invoke("infer", ["She left.", "--run", str(run)]))
    finally:
        lock.release()
    assert f"it is training now (process {os.getpid()}); try again in a moment" in line
    assert "--resume" not in line


@pytest.mark.parametrize("command", ["heads", "narrate", "report"])
def test_a_run_starting_over_is_not_called_lost(command, tmp_path):
    """`fabric train --force` has just cleared the run and not yet written its first event:
    not 'its story is lost; train it again with --force'."""
    from cli_helpers import one_line_error

    run = tmp_path / "starting"
    run.mkdir()
    rundir.write_marker(run, "tiny", 300, 0)
    lock = rundir.RunLock(run)
    try:
        args = [str(run)] if command == "report" else ["--run", str(run)]
        line = one_line_error(invoke(command, args))
    finally:
        lock.release()
    assert f"is training now (process {os.getpid()}) and has told nothing yet" in line, line
    assert "lost" not in line and "--force" not in line
