"""Where `--export` and `report -o` write: never over a file fabric did not write, a file
fabric wrote may be written again, and a destination it cannot use is refused in one line
before any work is shown."""

from __future__ import annotations

import pytest

from cli_helpers import invoke, one_line_error

SENTENCE = "The professor finished her lecture."


def commands(run, target) -> list[tuple[str, list[str]]]:
    return [
        ("narrate", ["--run", str(run), "--export", str(target)]),
        ("narrate", ["--run", str(run), "--plain", "--export", str(target)]),
        ("infer", [SENTENCE, "--run", str(run), "--export", str(target)]),
        ("heads", ["--run", str(run), "--export", str(target)]),
    ]


def usable(command: str, suffix: str) -> bool:
    return suffix != ".md" or command == "narrate"


@pytest.mark.parametrize("suffix", (".md", ".txt", ".svg", ".html"))
def test_an_export_never_replaces_a_file_fabric_did_not_write(tiny_run_master, tmp_path,
                                                             suffix) -> None:
    theirs = tmp_path / f"notes{suffix}"
    for command, args in commands(tiny_run_master, theirs):
        if not usable(command, suffix):
            continue
        theirs.write_text("precious\n", encoding="utf-8")
        line = one_line_error(invoke(command, args))  # and nothing of the story before it
        assert f"{theirs} exists and was not written by fabric" in line, command
        assert "name another file with --export, or delete it" in line
        assert theirs.read_text(encoding="utf-8") == "precious\n"
        assert [p.name for p in tmp_path.iterdir()] == [theirs.name]  # no temp file left
        theirs.unlink()
        for _ in range(2):  # what fabric wrote, fabric may write again
            result = invoke(command, args)
            assert result.exit_code == 0, (command, result.output)
            assert f"wrote {theirs}" in result.stderr


def test_report_o_never_replaces_a_file_fabric_did_not_write(tiny_run_master, tmp_path):
    theirs = tmp_path / "page.html"
    theirs.write_text("<p>my page</p>", encoding="utf-8")
    line = one_line_error(invoke("report", [str(tiny_run_master), "-o", str(theirs)]))
    assert f"{theirs} exists and was not written by fabric; name another file with -o" in line
    assert theirs.read_text(encoding="utf-8") == "<p>my page</p>"
    # a picture fabric exported there may become a report, and the report be written again
    invoke("narrate", ["--run", str(tiny_run_master), "--plain", "--export", str(theirs)])
    theirs.unlink()
    assert invoke("narrate", ["--run", str(tiny_run_master), "--plain", "--export",
                              str(theirs)]).exit_code == 0
    for _ in range(2):
        assert invoke("report", [str(tiny_run_master), "-o", str(theirs)]).exit_code == 0
    assert "fabric report" in theirs.read_text(encoding="utf-8")


def test_a_link_or_a_directory_is_never_written_over(tiny_run_master, tmp_path) -> None:
    theirs = tmp_path / "theirs.txt"
    theirs.write_text("precious\n", encoding="utf-8")
    link = tmp_path / "link.txt"
    link.symlink_to(theirs)
    args = ["--run", str(tiny_run_master), "--plain", "--export"]
    assert "was not written by fabric" in one_line_error(invoke("narrate", [*args, str(link)]))
    assert link.is_symlink() and theirs.read_text(encoding="utf-8") == "precious\n"
    folder = tmp_path / "folder.md"
    folder.mkdir()
    assert f"{folder} is a directory" in one_line_error(invoke("narrate", [*args, str(folder)]))


def test_a_missing_directory_is_refused_before_the_story_is_told(tiny_run_master, tmp_path):
    for command, args in commands(tiny_run_master, tmp_path / "nodir" / "story.svg"):
        line = one_line_error(invoke(command, args))  # the story is not printed first
        assert f"there is no directory {tmp_path / 'nodir'}" in line, command
    assert not (tmp_path / "nodir").exists()


def test_a_file_where_the_folder_should_be_is_named_as_a_file(tiny_run_master, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for command, args in commands(tiny_run_master, notes / "story.svg"):
        line = one_line_error(invoke(command, args))  # not "create it first": it exists
        assert f"{notes} is a file, not a directory; name another file" in line, line
    assert notes.read_text() == "mine"


def test_a_file_beside_the_export_is_never_taken_for_its_temp_file(tiny_run_master, tmp_path):
    import os

    target = tmp_path / "log.txt"
    stray = tmp_path / f".log.txt.tmp-{os.getpid()}"  # the name the temp file would take
    stray.write_text("precious\n", encoding="utf-8")
    result = invoke("narrate", ["--run", str(tiny_run_master), "--plain", "--export",
                                str(target)])
    assert result.exit_code == 0 and "run_end" in target.read_text(encoding="utf-8")
    assert stray.read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [stray.name, target.name]


def test_a_temp_file_left_by_a_killed_export_is_swept_on_the_next(tiny_run_master, tmp_path):
    """kill -9 in the middle of writing an export left `.log.txt.tmp-PID` behind for good;
    the next export to that name removes it (its process is gone), and nothing else."""
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    target = tmp_path / "log.txt"
    left = tmp_path / f".log.txt.tmp-{gone.pid}"
    left.write_text("half an export", encoding="utf-8")
    other = tmp_path / f".other.txt.tmp-{gone.pid}"  # another export's: not this one's to sweep
    other.write_text("x", encoding="utf-8")
    result = invoke("narrate", ["--run", str(tiny_run_master), "--plain", "--export",
                                str(target)])
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, target.name]
