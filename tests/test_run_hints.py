"""Every command that reads a run says, when there is none or the directory is not one, what
to type, and what it says works when typed: the option or argument the command really takes,
and the command that makes the missing run."""

from __future__ import annotations

import re
import shlex

import pytest
from cli_helpers import invoke, one_line_error

# command -> its arguments before the run, and how it names a run ("{}": the directory)
READERS = {
    "report": ([], ["{}"]),
    "heads": ([], ["--run", "{}"]),
    "narrate": (["-c", "loss"], ["--run", "{}"]),
    "infer": (["She left the room."], ["--run", "{}"]),
}


def _quoted(line: str) -> list[str]:
    return re.findall(r"`([^`]+)`", line)


def _run_typed(command: str, **kw):
    """Run a `fabric …` line exactly as a user would type it."""
    words = shlex.split(command)
    assert words[0] == "fabric", command
    return invoke(words[1], words[2:], **kw)


@pytest.mark.parametrize("command", list(READERS))
def test_no_runs_here_names_the_way_this_command_takes_a_run(command, tmp_path, monkeypatch,
                                                             tiny_run_master):
    monkeypatch.chdir(tmp_path)
    before, _ = READERS[command]
    line = one_line_error(invoke(command, before))
    assert "no runs under runs/" in line and "`fabric train`" in line
    named = [q for q in _quoted(line) if q.startswith(f"fabric {command} ")]
    assert len(named) == 1, line
    typed = named[0].replace("DIR", shlex.quote(str(tiny_run_master)))
    result = _run_typed(typed)
    assert result.exit_code == 0, (typed, result.output)


@pytest.mark.parametrize("command", [*READERS, "export", "compare"])
def test_a_directory_that_is_no_run_is_called_so(command, tmp_path, monkeypatch,
                                                 tiny_run_master):
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "photos"
    elsewhere.mkdir()
    (elsewhere / "cat.jpg").write_bytes(b"\xff\xd8")
    if command == "export":
        args = [str(elsewhere), "--to", "transformer-lens", "out"]
    elif command == "compare":
        args = [str(elsewhere), str(tiny_run_master)]
    else:
        before, how = READERS[command]
        args = before + [a.format(elsewhere) for a in how]
    line = one_line_error(invoke(command, args))
    assert f"{elsewhere} is not a fabric run directory" in line
    assert "missing" not in line and "re-run" not in line
    assert "fabric train" in line
    assert not (tmp_path / "out").exists()


def test_the_example_run_in_the_hint_is_one_that_exists(tmp_path, monkeypatch,
                                                        tiny_run_master):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_run_master, tmp_path / "runs" / "tiny", symlinks=True)
    (tmp_path / "photos").mkdir()
    line = one_line_error(invoke("heads", ["--run", "photos"]))
    assert _quoted(line)[-1] == "fabric heads --run runs/tiny"
    assert _run_typed(_quoted(line)[-1]).exit_code == 0
    line = one_line_error(invoke("report", ["photos"]))
    assert _quoted(line)[-1] == "fabric report runs/tiny"


@pytest.mark.parametrize("missing, made_by", [
    ("runs/storm", "fabric train --scenario storm"),
    ("runs/pronouns", "fabric train --scenario pronouns"),
    ("./runs/tiny/", "fabric train --scenario tiny"),
    ("runs/why-residual/without", "fabric why residual"),
    ("runs/mine", "fabric train --run-dir runs/mine"),
    ("elsewhere/storm", "fabric train --run-dir elsewhere/storm"),
])
def test_a_missing_run_names_the_command_that_makes_it(missing, made_by, tmp_path,
                                                       monkeypatch, tiny_run_master):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(invoke("compare", [str(tiny_run_master), missing]))
    assert "no such run directory" in line and f"`{made_by}` creates it" in line
    line = one_line_error(invoke("heads", ["--run", missing]))
    assert f"`{made_by}` creates it" in line


def test_a_missing_run_given_by_its_full_path_is_still_a_scenarios(tmp_path, monkeypatch,
                                                                    tiny_run_master):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(invoke("export", [str(tmp_path / "runs" / "storm"), "--to",
                                            "transformer-lens", "out"]))
    assert "`fabric train --scenario storm` creates it" in line


@pytest.mark.parametrize("command", list(READERS))
def test_a_folder_of_runs_lists_them_and_the_named_one_works(command, tmp_path, monkeypatch,
                                                              tiny_run_master):
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_run_master, tmp_path / "runs" / "tiny")
    before, how = READERS[command]
    line = one_line_error(invoke(command, before + [a.format("runs") for a in how]))
    assert "runs holds runs, not one run: runs/tiny" in line, line
    [typed] = [q for q in _quoted(line) if q.startswith(f"fabric {command} ")]
    assert _run_typed(typed).exit_code == 0, typed


def test_a_lost_story_is_told_how_to_train_the_same_scenario_again(tmp_path, monkeypatch,
                                                                    tiny_run):
    """A run of `tiny` kept outside runs/ whose chronicle is gone: the hint trains tiny again
    in that directory, not the default scenario."""
    monkeypatch.chdir(tmp_path)
    kept = tmp_path / "kept"
    tiny_run.rename(kept)
    (kept / "chronicle.jsonl").unlink()
    line = one_line_error(invoke("narrate", ["--run", "kept"]))
    typed = [q for q in _quoted(line) if q.startswith("fabric train")]
    assert typed == ["fabric train --scenario tiny --run-dir kept --force"], line
    assert _run_typed(typed[0]).exit_code == 0
    assert invoke("narrate", ["--run", "kept", "--plain"]).output.count("scenario 'tiny'") == 1


def test_a_lost_story_of_a_changed_scenario_is_trained_again_from_its_kept_copy(
        tmp_path, monkeypatch, tiny_run):
    monkeypatch.chdir(tmp_path)
    copy = tiny_run / "scenario.toml"
    copy.write_text(copy.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    (tiny_run / "chronicle.jsonl").unlink()
    line = one_line_error(invoke("heads", ["--run", str(tiny_run)]))
    assert f"`fabric train --scenario {copy} --run-dir {tiny_run} --force`" in line, line


def test_a_damaged_chronicle_says_how_to_train_that_run_again(tmp_path, monkeypatch, tiny_run):
    monkeypatch.chdir(tmp_path)
    kept = tmp_path / "kept"
    tiny_run.rename(kept)
    chronicle = kept / "chronicle.jsonl"
    lines = chronicle.read_text(encoding="utf-8").splitlines()
    chronicle.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n",
                         encoding="utf-8")
    line = one_line_error(invoke("narrate", ["--run", "kept"]))
    assert "is not a JSON event" in line
    assert "`fabric train --scenario tiny --run-dir kept --force`" in line, line


@pytest.mark.parametrize("command", ["report", "heads", "narrate"])
def test_a_file_that_is_no_chronicle_is_not_called_a_damaged_one(command, tiny_run_master):
    """`fabric heads --run runs/x/scenario.toml`: the run is fine; no `--force` to wipe it."""
    before, how = READERS[command]
    given = tiny_run_master / "scenario.toml"
    line = one_line_error(invoke(command, before + [a.format(given) for a in how]))
    assert f"{given} is a file, not a run directory" in line, line
    assert "damaged" not in line and "--force" not in line


@pytest.mark.parametrize("inside", ["checkpoint", "step"])
@pytest.mark.parametrize("command", ["report", "heads", "narrate"])
def test_a_checkpoint_inside_a_run_points_to_the_run(command, inside, tiny_run_master):
    """Not `fabric train --force --run-dir runs/x/checkpoint`, which fabric itself refuses."""
    before, how = READERS[command]
    given = tiny_run_master / "checkpoint"
    if inside == "step":
        given = tiny_run_master / given.readlink()
    line = one_line_error(invoke(command, before + [a.format(given) for a in how]))
    assert line.endswith(f"{given} is a checkpoint inside the run {tiny_run_master}; "
                         "give the run's own directory"), line


def test_a_lost_story_in_a_directory_named_after_another_scenario_names_its_own(
        tmp_path, monkeypatch, tiny_run):
    """A run of `tiny` trained into runs/pronouns (--run-dir runs/pronouns): the hint trains
    tiny there again, not the pronouns scenario its directory's name suggests."""
    monkeypatch.chdir(tmp_path)
    moved = tmp_path / "runs" / "pronouns"
    tiny_run.rename(moved)
    (moved / "chronicle.jsonl").unlink()
    line = one_line_error(invoke("narrate", ["--run", "runs/pronouns"]))
    typed = [q for q in _quoted(line) if q.startswith("fabric train")]
    assert typed == ["fabric train --scenario tiny --run-dir runs/pronouns --force"], line
