"""Mistakes on the command line itself (before any command runs) are one line, exit 2."""

import subprocess
import sys

import pytest


def fabric(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fabric_cli", *args], check=False,
                          capture_output=True,
                          text=True, timeout=60, env={"NO_COLOR": "1", "PATH": ""})


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["infer"], "Missing argument 'SENTENCE'"),
        (["compare", "runs/a"], "Missing argument 'RUN_B'"),
        (["export", "runs/a", "--to", "transformer-lens"], "Missing argument 'OUT_DIR'"),
        (["train", "--bogus"], "No such option: --bogus"),
        (["train", "--steps", "abc"], "'abc' is not a valid int"),
        (["nosuch"], "No such command 'nosuch'"),
        (["narrate", "--component"], "requires an argument"),
    ],
)
def test_a_wrong_command_line_is_one_line_naming_the_mistake(args, fragment):
    result = fabric(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fabric: error: ") and fragment in lines[0]
    assert "--help" in lines[0]  # and where to look next
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "where"), [(["train", "-s"], "fabric train"),
                                           (["report", "-o"], "fabric report"),
                                           (["narrate", "--component"], "fabric narrate")])
def test_an_option_without_its_value_points_to_its_command_s_help(args, where):
    lines = fabric(*args).stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"requires an argument; see `{where} --help`")


def test_fabric_alone_greets_with_the_help_on_stdout():
    result = fabric()
    assert result.returncode == 0
    assert "Commands" in result.stdout and "train" in result.stdout
    assert result.stderr == ""


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["scenarios"], ["corpus", "-n", "3", "--scenario", "tiny"]])
def test_output_to_a_full_disk_is_one_line_not_a_bug(args):
    """`fabric corpus > out.txt` on a full disk: say so, not 'internal error … a bug'."""
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "fabric_cli", *args], check=False,
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                                env={"NO_COLOR": "1", "PATH": ""})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == ("fabric: error: cannot write the output: No space left on device; "
                        "free some space, or send the output elsewhere")


def test_json_with_stdout_closed_is_not_a_bug(tiny_run_master):
    """`fabric heads --json >&-` (a job started with no stdout): no 'internal error'."""
    result = subprocess.run([sys.executable, "-m", "fabric_cli", "heads", "--json", "--run",
                             str(tiny_run_master)], check=False, stdout=None,
                            stderr=subprocess.PIPE, text=True, timeout=60,
                            env={"NO_COLOR": "1", "PATH": ""},
                            preexec_fn=lambda: __import__("os").close(1))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["heads", "--run", "r" * 300],
                                  ["train", "-s", "tiny", "--steps", "2", "--run-dir", "r" * 300],
                                  ["report", "-o", "r" * 300 + ".html", "r" * 300]])
def test_a_name_too_long_for_the_file_system_is_one_line_not_a_bug(args, tmp_path):
    result = subprocess.run([sys.executable, "-m", "fabric_cli", *args], check=False,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={"NO_COLOR": "1", "PATH": ""})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fabric: error: rrrr"), result.stderr
    assert lines[0].endswith("the name is too long for the file system; choose a shorter one")


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_a_terminal_that_cannot_show_every_character_still_gets_the_output(encoding):
    """An ASCII or Latin-1 terminal: "?" where "—" cannot be shown, not a crash."""
    result = subprocess.run([sys.executable, "-m", "fabric_cli", "corpus", "-n", "2",
                             "--scenario", "tiny"], check=False, capture_output=True,
                            timeout=60,
                            env={"NO_COLOR": "1", "PATH": "", "PYTHONIOENCODING": encoding})
    assert result.returncode == 0, result.stderr
    assert b"internal error" not in result.stderr
    assert result.stdout.startswith(b"tiny ? Tiny and fast")


def test_a_terminal_gone_is_not_told_to_free_disk_space(monkeypatch, capsys):
    import errno
    import io

    import typer

    from fabric_cli.commands._common import cli_errors

    @cli_errors
    def printing():
        raise OSError(errno.EIO, "Input/output error")  # what a closed terminal answers

    monkeypatch.setattr(sys, "stdout", io.StringIO())  # the wrapper silences stdout after
    with pytest.raises(typer.Exit):
        printing()
    err = " ".join(capsys.readouterr().err.split())
    assert err == ("fabric: error: cannot write the output: Input/output error; send the "
                   "output elsewhere")


def _reader_gone(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """`fabric ARGS | head -0`: the pipe's reader is gone before fabric writes a line."""
    proc = subprocess.Popen([sys.executable, "-m", "fabric_cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"NO_COLOR": "1", "PATH": ""})
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, "", err.decode())


@pytest.mark.parametrize("args", [["scenarios"], ["check"]])
def test_a_pipe_closed_early_ends_quietly_with_exit_0(args):
    """`fabric scenarios | head -3` under `set -o pipefail` must not fail (rich said exit 1)."""
    result = _reader_gone(*args)
    assert (result.returncode, result.stderr) == (0, "")


def test_train_into_a_closed_pipe_saves_and_says_how_to_resume(tmp_path):
    result = _reader_gone("train", "-s", "tiny", "--steps", "40", "--run-dir", "cut",
                          cwd=tmp_path)
    assert result.returncode == 130, result.stderr
    assert "Interrupted at step 0; the checkpoint is saved in cut. Resume with:\n" \
           "  fabric train --resume --run-dir cut" in result.stderr
    assert (tmp_path / "cut" / "checkpoint").is_symlink()



@pytest.mark.parametrize("args, fragment", [
    (["train", "--run-dir", "nl\nrun"], "--run-dir 'nl\\nrun' holds a control character"),
    (["why", "clipping", "--runs-dir", ""], "--runs-dir is empty"),
    (["why", "clipping", "--runs-dir", "a\tb"], "holds a control character"),
])
def test_a_run_directory_no_command_could_name_is_refused(args, fragment, tmp_path):
    """A run named with a newline got a resume command naming another directory; an empty
    --runs-dir kept fabric why's pair in the current directory. Both are refused first."""
    result = subprocess.run([sys.executable, "-m", "fabric_cli", *args], check=False,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={"NO_COLOR": "1", "PATH": ""})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing was made
