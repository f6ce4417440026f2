"""`fabric train` as a user runs it: plain lines in a pipe, NO_COLOR, --quiet, --json, where runs
are kept and when they are refused, Ctrl-C and --resume, and a Fabric that tears."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fabric_cli.chronicle import read_events
from fabric_cli.cli import app
from fabric_cli.language.corpus import Corpus
from fabric_cli.scenario import load_scenario, scenarios_dir
from fabric_cli.training.trainer import Trainer

runner = CliRunner()
PLAIN = {"COLUMNS": "100", "NO_COLOR": "1"}
COLOR_CODE = re.compile(r"\x1b\[([0-9;]*)m")


def invoke(*args: str):
    return runner.invoke(app, ["train", *args], env=PLAIN)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("fabric: error: "), stderr
    assert "Traceback" not in stderr and "internal error" not in stderr
    return lines[0]


def run_fabric(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`fabric ...` in a child process, its output through pipes as in `fabric train | less`."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "COLUMNS", "FABRIC_DEBUG")}
    return subprocess.run([sys.executable, "-m", "fabric_cli", *args], cwd=cwd, check=False,
                          env={**base, "TERM": "xterm-256color", **env},
                          capture_output=True, text=True, timeout=120)


def colors_in(text: str) -> set[str]:
    """The SGR parameters that set a colour (foreground, background, bright, 256, truecolor)."""
    found = set()
    for params in COLOR_CODE.findall(text):
        for p in filter(None, params.split(";")):
            n = int(p)
            if 30 <= n <= 38 or 40 <= n <= 48 or 90 <= n <= 97 or 100 <= n <= 107:
                found.add(p)
    return found


# -- 4. output in a pipe, NO_COLOR, --quiet, --json -----------------------------------------------
def test_through_a_pipe_progress_and_moments_are_plain_lines(tmp_path):
    proc = run_fabric(["train", "-s", "tiny", "--steps", "100", "--run-dir", "run"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("fabric train: tiny starting, 100 steps")
    progress = [line for line in lines if re.match(r"^step +\d+/100 ", line)]
    assert [int(re.match(r"^step +(\d+)", line)[1]) for line in progress] == list(
        range(10, 101, 10))
    # every moment of the chronicle is one plain line, at its step
    events = read_events(tmp_path / "run" / "chronicle.jsonl")
    moments = [e["step"] for e in events if e["type"] == "moment"]
    told = [int(m[1]) for line in lines if (m := re.match(r"^  step (\d+): \S", line))]
    assert told == moments and moments
    ending = [line for line in lines if line.startswith("Trained 100 steps")]
    assert len(ending) == 1 and "entropy floor" in ending[0]  # one line, not wrapped at 80


def test_no_color_keeps_the_live_picture_colourless(tmp_path):
    args = ["train", "-s", "tiny", "--steps", "20", "--run-dir", "run", "--force"]
    coloured = run_fabric(args, tmp_path, FORCE_COLOR="1")
    assert coloured.returncode == 0, coloured.stderr
    assert colors_in(coloured.stdout), "a forced terminal should show colours at all"
    plain = run_fabric(args, tmp_path, FORCE_COLOR="1", NO_COLOR="1")
    assert plain.returncode == 0, plain.stderr
    assert "\x1b[" in plain.stdout  # still the animated picture ...
    assert colors_in(plain.stdout + plain.stderr) == set()  # ... without a single colour


def test_quiet_prints_only_the_summary(tmp_path):
    result = invoke("-s", "tiny", "--steps", "30", "--run-dir", str(tmp_path / "q"), "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Trained 30 steps")
    assert all(line.startswith(("Trained", "Pronoun specialist", "No head")) for line in lines)
    assert len(lines) <= 3
    assert result.stderr == ""


def test_json_summary_matches_the_chronicle(tmp_path):
    run_dir = tmp_path / "j"
    result = invoke("-s", "tiny", "--run-dir", str(run_dir), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    end = read_events(run_dir / "chronicle.jsonl")[-1]
    assert summary["run_dir"] == str(run_dir)
    assert summary["steps"] == end["steps"] == load_scenario("tiny").training.steps
    assert summary["seconds"] > 0
    assert summary["final_train_loss"] == pytest.approx(end["final_train_loss"], rel=1e-5)
    assert summary["final_val_loss"] == pytest.approx(end["final_val_loss"], rel=1e-5)
    floor = Corpus(load_scenario("tiny")).floor
    assert summary["entropy_floor"] == pytest.approx(floor)
    assert summary["specialists"], "the tiny run names its specialists"
    assert len(summary["specialists"]) == len(end["specialists"])
    for mine, stored in zip(summary["specialists"], end["specialists"], strict=True):
        assert {"layer", "head", "role", "score", "heldout_acc", "ablation"} <= set(mine)
        assert (mine["layer"], mine["head"], mine["role"]) == (
            stored["layer"], stored["head"], stored["role"])
        assert mine["score"] == pytest.approx(stored["score"], rel=1e-5)
        assert mine["ablation"] == pytest.approx(stored["ablation"], rel=1e-5)
    assert any(sp["role"] == "pronoun" for sp in summary["specialists"])


# -- 5. run management ----------------------------------------------------------------------------
def test_runs_live_under_runs_scenario_and_are_not_overwritten_by_accident(tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = invoke("-s", "tiny", "--steps", "5", "--quiet")
    assert first.exit_code == 0, first.output
    chronicle = tmp_path / "runs" / "tiny" / "chronicle.jsonl"
    assert chronicle.exists()
    before = chronicle.read_bytes()

    again = invoke("-s", "tiny", "--steps", "5", "--quiet")
    assert again.exit_code == 2
    line = one_error_line(again.stderr)
    assert "runs/tiny" in line and "finished" in line and "--force" in line
    assert chronicle.read_bytes() == before  # nothing was touched

    finished = invoke("-s", "tiny", "--resume")
    assert finished.exit_code == 2
    assert "finished" in one_error_line(finished.stderr)

    forced = invoke("-s", "tiny", "--steps", "6", "--quiet", "--force")
    assert forced.exit_code == 0, forced.output
    assert read_events(chronicle)[-1]["steps"] == 6


@pytest.mark.parametrize(("args", "words"), [
    (["--resume"], "nothing to resume"),
    (["--resume", "--force"], "--resume and --force"),
    (["--steps", "0"], "--steps"),
    (["--steps", "-3"], "--steps"),
    (["-s", "no-such-scenario"], "no-such-scenario"),
    (["-s", "missing.toml"], "missing.toml"),
    (["--scenario", ""], "--scenario is empty"),
    (["-s", "  "], "--scenario is empty"),
])
def test_bad_requests_get_one_line_and_leave_no_run(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    result = invoke(*(["-s", "tiny"] if "-s" not in args else []), *args)
    assert result.exit_code == 2
    assert words in one_error_line(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_a_run_dir_that_is_a_file_is_refused_in_one_line(tmp_path):
    (tmp_path / "taken").write_text("not a run")
    for where in ("taken", "taken/sub"):
        result = invoke("-s", "tiny", "--steps", "3", "--run-dir", str(tmp_path / where))
        assert result.exit_code == 2
        assert "--run-dir" in one_error_line(result.stderr)


# -- 2. Ctrl-C and --resume -----------------------------------------------------------------------
@pytest.mark.parametrize("on_a_base", [False, True])
def test_ctrl_c_saves_exits_130_and_the_printed_command_resumes(tmp_path, monkeypatch,
                                                                 on_a_base):
    """A real SIGINT, sent by the process to itself at step 15 (no timing involved). A
    scenario built on a base (as storm and no-adam are) resumes from the run's own copy."""
    run_dir = tmp_path / "cut"
    scenario = "tiny"
    if on_a_base:
        scenario = str(tmp_path / "tiny-on-a-base.toml")
        Path(scenario).write_text('description = "tiny, a little lighter"\nbase = "tiny"\n\n'
                                  "[training]\nweight_decay = 0.02\n", encoding="utf-8")
    train_step = Trainer._train_step

    def train_step_then_ctrl_c(self):
        event = train_step(self)
        if self.step == 15 and self.resumed_from is None:
            os.kill(os.getpid(), signal.SIGINT)
        return event

    monkeypatch.setattr(Trainer, "_train_step", train_step_then_ctrl_c)
    cut = invoke("-s", scenario, "--steps", "40", "--run-dir", str(run_dir))
    assert cut.exit_code == 130, cut.output
    lines = [line for line in cut.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and "Interrupted at step 15" in lines[0]
    assert lines[0].endswith("Resume with:")
    command = shlex.split(lines[1])  # the command alone on its line, to be copied
    assert command[:2] == ["fabric", "train"] and "--resume" in command
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored

    resumed = runner.invoke(app, command[1:], env=PLAIN)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming at step 15" in resumed.stdout
    events = read_events(run_dir / "chronicle.jsonl")
    assert [e["step"] for e in events if e["type"] == "step"] == list(range(1, 41))
    assert [e["type"] for e in events].count("interrupted") == 1
    assert events[-1]["type"] == "run_end" and events[-1]["status"] == "finished"


def test_a_second_ctrl_c_puts_the_resume_command_on_a_line_of_its_own(tmp_path, monkeypatch):
    """Two Ctrl-C's stopped train with 'fabric: error: interrupted at once; ... resume with:
    fabric train --resume ...' on one line, which a terminal broke mid-word ('resume w/ith');
    the command now stands alone under the sentence, as after one Ctrl-C, and works."""
    run_dir = tmp_path / "cut"
    train_step = Trainer._train_step

    def train_step_then_two_ctrl_c(self):
        event = train_step(self)
        if self.step == 15 and self.resumed_from is None:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return event

    monkeypatch.setattr(Trainer, "_train_step", train_step_then_two_ctrl_c)
    cut = invoke("-s", "tiny", "--steps", "40", "--run-dir", str(run_dir))
    assert cut.exit_code == 130, cut.output
    lines = [line for line in cut.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("Interrupted at once") and lines[0].endswith(":"), lines
    assert "fabric: error" not in cut.stderr
    command = shlex.split(lines[1])
    assert command[:3] == ["fabric", "train", "--resume"], lines
    monkeypatch.setattr(Trainer, "_train_step", train_step)
    resumed = runner.invoke(app, command[1:] + ["-q"], env=PLAIN)
    assert resumed.exit_code == 0, resumed.output
    assert read_events(run_dir / "chronicle.jsonl")[-1]["status"] == "finished"


def test_a_plain_kill_saves_and_says_how_to_resume_as_ctrl_c_does(tmp_path, monkeypatch):
    """`kill PID` or `timeout` (SIGTERM), sent at step 15: the run is saved there and the
    resume command is printed, instead of the process vanishing without a word."""
    run_dir = tmp_path / "termed"
    train_step = Trainer._train_step

    def train_step_then_term(self):
        event = train_step(self)
        if self.step == 15:
            os.kill(os.getpid(), signal.SIGTERM)
        return event

    def unhandled(signum, frame):  # what the default would do is end this test process too
        raise RuntimeError("SIGTERM reached the default handler")

    monkeypatch.setattr(Trainer, "_train_step", train_step_then_term)
    before = signal.signal(signal.SIGTERM, unhandled)
    try:
        cut = invoke("-s", "tiny", "--steps", "40", "--run-dir", str(run_dir))
        assert signal.getsignal(signal.SIGTERM) is unhandled  # the handler is given back
    finally:
        signal.signal(signal.SIGTERM, before)
    assert cut.exit_code == 130, cut.output
    assert "Interrupted at step 15" in cut.stderr and "fabric train --resume" in cut.stderr
    assert "resuming at step 15" in runner.invoke(
        app, ["train", "--resume", "--run-dir", str(run_dir)], env=PLAIN).stdout


def cut_at_step_15(monkeypatch, run_dir) -> None:
    """`fabric train -s tiny --steps 40` into run_dir, Ctrl-C right after step 15 (exit 130);
    the Trainer is its own again after."""
    train_step = Trainer._train_step

    def train_step_then_ctrl_c(self):
        event = train_step(self)
        if self.step == 15:
            os.kill(os.getpid(), signal.SIGINT)
        return event

    with monkeypatch.context() as patched:
        patched.setattr(Trainer, "_train_step", train_step_then_ctrl_c)
        assert invoke("-s", "tiny", "--steps", "40", "--run-dir", str(run_dir)).exit_code == 130


def test_an_unfinished_run_trained_again_says_each_way_on_in_full(tmp_path, monkeypatch):
    run_dir = tmp_path / "cut"
    cut_at_step_15(monkeypatch, run_dir)
    again = invoke("-s", "tiny", "--steps", "40", "--run-dir", str(run_dir))
    assert one_error_line(again.stderr).endswith(
        "holds an unfinished run; use --resume to continue it, --force to start over, or "
        "another --run-dir for a new one")


def test_a_run_stopped_right_after_its_marker_resumes_its_own_scenario(tmp_path):
    """Killed after the marker, before the scenario's copy and the chronicle: --resume
    starts the marker's scenario again, not the default one."""
    from fabric_cli.analysis import rundir

    run_dir = tmp_path / "early"
    run_dir.mkdir()
    rundir.write_marker(run_dir, "tiny", 20, 0)
    resumed = invoke("--resume", "--run-dir", str(run_dir), "-q")
    assert resumed.exit_code == 0, resumed.output
    start = read_events(run_dir / "chronicle.jsonl")[0]
    assert (start["scenario"], start["training"]["steps"]) == ("tiny", 20)


def test_a_damaged_scenario_copy_says_how_to_resume_anyway(tmp_path, monkeypatch):
    run_dir = tmp_path / "cut"
    cut_at_step_15(monkeypatch, run_dir)
    (run_dir / "scenario.toml").write_text("garbage = [\n", encoding="utf-8")
    refused = invoke("--resume", "--run-dir", str(run_dir))
    assert one_error_line(refused.stderr).endswith(
        "to resume, give the scenario the run was trained on with --scenario")
    resumed = invoke("--resume", "--run-dir", str(run_dir), "--scenario", "tiny", "-q")
    assert resumed.exit_code == 0, resumed.output


def test_resume_refuses_other_steps_or_seed_instead_of_ignoring_them(tmp_path, monkeypatch):
    run_dir = tmp_path / "cut"
    cut_at_step_15(monkeypatch, run_dir)
    before = (run_dir / "chronicle.jsonl").read_bytes()
    for option, value in (("--steps", "80"), ("--seed", "7")):
        refused = invoke("--resume", "--run-dir", str(run_dir), option, value)
        assert refused.exit_code == 2
        line = one_error_line(refused.stderr)
        assert f"{option} {value}: a resumed run keeps the {option[2:]} it was started with" \
            in line, line
    assert (run_dir / "chronicle.jsonl").read_bytes() == before  # not resumed meanwhile
    same = invoke("--resume", "--run-dir", str(run_dir), "--steps", "40", "-q")
    assert same.exit_code == 0, same.output


# -- 3. a Fabric that tears -----------------------------------------------------------------------
def test_divergence_exits_1_with_one_hint_and_no_numpy_noise(tmp_path):
    text = (scenarios_dir() / "tiny.toml").read_text(encoding="utf-8")
    for key, value in {"lr": 1.0, "beta1": 0.999, "beta2": 0.0, "grad_clip": 1e9,
                       "warmup_steps": 0}.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
    (tmp_path / "absurd.toml").write_text(text, encoding="utf-8")
    proc = run_fabric(["train", "-s", "absurd.toml", "--steps", "200", "--run-dir", "torn"],
                      tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr)  # no RuntimeWarning from numpy around it
    assert "became non-finite at step" in line and "--force" in line and "training.lr" in line
    events = read_events(tmp_path / "torn" / "chronicle.jsonl")
    assert events[-1]["status"] == "diverged"
    assert f"at step {events[-1]['steps'] + 1};" in line
    assert "training.grad_clip in" in line  # its clip was on (1e9): lowering it would help


def test_a_storm_without_a_clip_is_told_to_turn_clipping_on_not_to_lower_it(tmp_path):
    # the storm scenario clips at 0, i.e. never: "lower grad_clip" would be no advice at all
    proc = run_fabric(["train", "-s", "storm", "--run-dir", "torn"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr)
    assert "turn clipping on (training.grad_clip = 1.0)" in line


def test_a_torn_bundled_scenario_says_how_to_copy_it_and_each_command_works(tmp_path):
    """The storm's hint said to change 'the scenario' and run with --force: the bundled file
    sits inside the installed package, and --force alone tears the same storm again. It now
    names the copy to make and the command that trains it; typed as shown, they do."""
    proc = run_fabric(["train", "-s", "storm"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr)
    typed = re.findall(r"`([^`]+)`", line)
    assert len(typed) == 2 and typed[0].startswith("cp ") and "in the copy" in line, line
    assert typed[1] == "fabric train --scenario my-storm.toml"
    subprocess.run(shlex.split(typed[0]), cwd=tmp_path, check=True)
    copy = tmp_path / "my-storm.toml"
    copy.write_text(re.sub(r"^grad_clip = .*$", "grad_clip = 1.0", copy.read_text(),
                           flags=re.MULTILINE), encoding="utf-8")
    again = run_fabric(shlex.split(typed[1])[1:] + ["--steps", "60", "-q"], tmp_path)
    assert again.returncode == 0, again.stderr


def test_resuming_a_finished_run_says_how_to_train_again_and_that_works(tmp_path, monkeypatch,
                                                                        tiny_run_master):
    """`--resume` of a finished run gives the two lines that train again: over it (--force)
    or beside it; each, typed as shown, trains."""
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_run_master, tmp_path / "runs" / "tiny", symlinks=True)
    result = invoke("--resume", "-s", "tiny")
    line = one_error_line(result.stderr)
    assert "runs/tiny holds a finished run; nothing to resume" in line
    again = re.findall(r"`([^`]+)`", line)
    assert again == ["fabric train --force --scenario tiny",
                     "fabric train --scenario tiny --run-dir runs/tiny-2"]
    for typed in again:
        words = shlex.split(typed)[2:] + ["--quiet"]
        assert invoke(*words).exit_code == 0, typed
    assert read_events(tmp_path / "runs" / "tiny-2" / "chronicle.jsonl")[-1]["status"] == \
        "finished"


def test_the_resume_example_says_which_run_it_continues():
    text = runner.invoke(app, ["train", "--help"], env=PLAIN).output
    examples = [line.strip() for line in text.splitlines() if "--resume" in line
                and line.strip().startswith("fabric train")]
    assert any("runs/pronouns" in line for line in examples), examples
    assert any("--run-dir" in line for line in examples), examples


def test_a_stopped_run_that_lost_its_chronicle_is_told_the_command_that_retrains_it(
        tmp_path, monkeypatch):
    run_dir = tmp_path / "cut"
    cut_at_step_15(monkeypatch, run_dir)
    (run_dir / "chronicle.jsonl").unlink()
    line = one_error_line(invoke("--resume", "--run-dir", str(run_dir)).stderr)
    # the run's own scenario and steps, not the default scenario's
    assert "story of this run is lost" in line and "--scenario tiny" in line, line
    assert "--steps 40" in line and "--force" in line, line


def test_an_error_in_a_terminal_wraps_between_words_not_inside_them(tmp_path):
    """A long error line was handed to the terminal whole, which broke it mid-word at the
    edge ('the last good checkpoi' / 'nt (step 0)'); in a terminal it now wraps between
    words, and a pipe still gets one line."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a").write_text("x", encoding="utf-8")
    tty = run_fabric(["train", "--run-dir", "foreign"], tmp_path, TTY_COMPATIBLE="1",
                     COLUMNS="80", NO_COLOR="1")
    assert tty.returncode == 2, tty.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", tty.stderr)  # bold, even without colour
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    assert len(lines) > 1 and all(len(line) <= 80 for line in lines), lines
    piped = run_fabric(["train", "--run-dir", "foreign"], tmp_path)
    [line] = [line for line in piped.stderr.splitlines() if line.strip()]
    assert " ".join(lines).split() == line.split()  # the same words, none cut in two


def test_the_closing_lines_count_every_proven_head_of_a_role(tmp_path, capsys):
    """The default run proved three verb heads; its closing lines named only the best, where
    `fabric heads`, the report and compare name all three."""
    from types import SimpleNamespace

    from fabric_cli.commands.train import _print_ending

    def proven(head, role, acc):
        return {"layer": 0, "head": head, "role": role, "heldout_acc": acc,
                "baseline_acc": 0.292, "best": head == 2}

    summary = {"floor": {"train": 1.2}, "final_val_loss": 1.25,
               "specialists": [proven(0, "pronoun", 1.0), proven(2, "verb", 1.0),
                               proven(0, "verb", 0.99), proven(3, "verb", 0.98)]}
    _print_ending(SimpleNamespace(status="finished", summary=summary, steps=1400,
                                  seconds=20.0, run_dir=tmp_path))
    out = " ".join(capsys.readouterr().out.split())
    assert "Verb specialist: L0H2, held-out accuracy 1.000" in out
    assert "L0H0 and L0H3 are proven verb heads too." in out
