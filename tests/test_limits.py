"""Absurd sizes, deep nesting, out-of-range numbers and an early Ctrl-C: each is one line, exit
2 (130 for Ctrl-C), decided before anything is allocated."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import invoke, one_line_error

from fabric_cli import limits
from fabric_cli.errors import FabricError
from fabric_cli.scenario import load_scenario, scenarios_dir


def variant(tmp_path, **values) -> str:
    text = (scenarios_dir() / "tiny.toml").read_text(encoding="utf-8")
    for key, value in values.items():
        text, n = re.subn(rf"^{key} = [^\s#]+", f"{key} = {value}", text, flags=re.MULTILINE)
        assert n == 1, key
    path = tmp_path / "big.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("key, value, says", [
    ("d_model", 100000, "model.d_model: expected at most 8,192, got 100,000"),
    ("n_layers", 1000, "model.n_layers: expected at most 64, got 1,000"),
    ("n_ctx", 10000000, "model.n_ctx: expected at most 4,096"),
    ("n_ctx", "1e7", "model.n_ctx: expected a positive integer"),
    ("batch_size", 100000000, "training.batch_size: expected at most 65,536"),
    ("steps", 10**14, "training.steps: expected at most 1,000,000"),
])
def test_absurd_sizes_are_refused_up_front(tmp_path, key, value, says):
    line = one_line_error(invoke("train", ["-s", variant(tmp_path, **{key: value}), "-q",
                                           "--run-dir", str(tmp_path / "run")]))
    assert says in line
    assert not (tmp_path / "run").exists()


def test_a_size_within_bounds_but_beyond_this_machine_names_the_memory(tmp_path):
    # 4,000 positions with a batch of 32: attention scores alone are tens of GiB
    with pytest.raises(FabricError) as caught:
        load_scenario(variant(tmp_path, n_ctx=4000))
    message = caught.value.message
    assert re.search(r"would need about [\d,.]+ GiB of memory", message)
    assert re.search(r"this machine has [\d,.]+ GiB available", message)
    # the estimate itself, against an independent count for a small case
    weights, activations = limits.training_bytes(n_layers=1, d_model=4, d_mlp=8, n_heads=2,
                                                 n_ctx=3, d_vocab=5, batch_size=2)
    params = 5 * 4 + 3 * 4 + (4 * 16 + 2 * 4 * 8 + 12 * 4 + 8) + 4 * 5 + 5
    assert weights == 5 * params * 4
    assert activations == 2 * 2 * 3 * (16 * 4 + 4 * 2 * 3 + 4 * 8 + 4 * 5) * 4
    limits.check_memory("x.toml", available=weights + activations, n_layers=1, d_model=4,
                        d_mlp=8, n_heads=2, n_ctx=3, d_vocab=5, batch_size=2)
    # a tiny Fabric refused on a machine out of memory for the moment: the machine is named
    # as the cause, in sizes a reader can tell apart, never "0.0 GiB against 0.0 GiB"
    with pytest.raises(FabricError) as caught:
        limits.check_memory("x.toml", available=weights + activations - 1, n_layers=1,
                            d_model=4, d_mlp=8, n_heads=2, n_ctx=3, d_vocab=5, batch_size=2)
    message = caught.value.message
    assert "free right now" in message and "close other programs and try again" in message
    assert "0.0 GiB" not in message


def test_sizes_are_written_in_the_unit_that_tells_them_apart():
    assert [limits.memory_text(n) for n in (300 * 1024, 12 * 2**20, 3 * 2**29, 40 * 2**30)] \
        == ["300 KiB", "12 MiB", "1.5 GiB", "40 GiB"]


def test_probes_beyond_this_machine_are_refused_before_training(tmp_path, monkeypatch):
    """10,000 probe sentences of twelve layers took over 24 GiB and the system killed the
    run: the probes' passes count in the estimate, as the batch's activations do."""
    monkeypatch.setattr(limits, "available_memory", lambda: 512 * 2**20)
    load_scenario(variant(tmp_path, n_sentences=32))  # the tiny default fits in 0.5 GiB
    with pytest.raises(FabricError) as caught:
        load_scenario(variant(tmp_path, n_sentences=10000))
    assert "the probes' passes" in caught.value.message
    assert caught.value.message.endswith("training.batch_size or probes.n_sentences smaller")


def test_the_bundled_scenarios_fit(tmp_path):
    for path in sorted(scenarios_dir().glob("*.toml")):
        load_scenario(str(path))


def test_a_scenario_nested_5000_deep_is_one_line(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    line = one_line_error(invoke("train", ["-s", str(path), "-q"]))
    assert "nested too deeply" in line


@pytest.mark.parametrize("args, says", [
    (["--seed", "-1"], "--seed must be a whole number from 0"),
    (["--seed", str(2**64)], "--seed must be a whole number from 0"),
    (["--steps", "0"], "--steps must be from 1 to 1,000,000"),
    (["--steps", str(10**11)], "--steps must be from 1 to 1,000,000"),
])
def test_out_of_range_seed_and_steps_are_one_line(tmp_path, args, says):
    line = one_line_error(invoke("train", ["-s", "tiny", "-q", "--run-dir",
                                           str(tmp_path / "run"), *args]))
    assert says in line
    assert not (tmp_path / "run").exists()


def test_ctrl_c_at_any_moment_of_the_start_is_one_line(tmp_path):
    """SIGINT at several moments of the first second (during the imports, then while the
    scenario loads): whenever it lands once fabric's first line has run, one line or
    nothing, never a traceback. (A signal that lands while the interpreter itself is still
    starting, before `python -m` has found fabric, is Python's to report.)"""
    env = {k: v for k, v in os.environ.items() if k != "FABRIC_DEBUG"}
    for delay in (0.0, 0.05, 0.15, 0.3, 0.6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "fabric_cli", "train", "-s", "tiny", "--steps", "3", "-q",
             "--run-dir", str(tmp_path / f"r{delay}")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if "Traceback" in err:  # only if it landed in Python's own start, before fabric's
            assert err.startswith(("Could not import runpy module", "Fatal Python error")), (
                delay, err)  # the interpreter's own start-up messages
            continue
        lines = [line for line in err.splitlines() if line.strip()]
        if proc.returncode == 0:
            continue  # it had finished (3 steps) before the signal
        if proc.returncode == -signal.SIGINT and not lines:
            continue  # before Python's handlers are up, or after they are gone: silent
        if proc.returncode == -signal.SIGINT:
            # Python itself re-raised the signal after fabric had handled it: CPython marks a
            # KeyboardInterrupt raised inside exec() of source text (dataclasses builds each
            # __init__ so, while rich is imported) as unhandled even once it is caught, and at
            # exit dies by SIGINT rather than with the exit code. A shell reports 130 either
            # way; what the user sees must still be fabric's one line.
            assert lines == ["fabric: error: interrupted"], err
            continue
        assert proc.returncode == 130, (delay, proc.returncode, err)
        # before the first step: the early handler's line; once training runs: the trainer's
        # own "Interrupted at step N; ... Resume with:" and the command on a line of its own
        # (a quiet machine gets there fast)
        if lines[:1] == ["fabric: error: interrupted"]:
            assert len(lines) == 1, err
        else:
            assert len(lines) == 2 and lines[0].startswith("Interrupted at step"), err
            assert lines[1].strip().startswith("fabric train --resume"), err


def test_ctrl_c_while_typer_reads_the_command_line_is_still_one_line(monkeypatch, capfd):
    """typer turns a KeyboardInterrupt raised while it parses the command line (before any
    command runs) into a silent exit 130; fabric still says its one line."""
    import typer.core

    from fabric_cli import cli
    from fabric_cli.commands import _common

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(typer.core.TyperGroup, "resolve_command", interrupted)
    monkeypatch.setitem(_common._told, "interruption", False)
    monkeypatch.setattr(sys, "argv", ["fabric", "scenarios"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 130
    assert capfd.readouterr().err == "fabric: error: interrupted\n"
