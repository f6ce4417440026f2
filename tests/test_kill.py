"""kill -9 at every step of publishing a checkpoint, and at events along a short run: the run
directory always holds a whole checkpoint (or none yet), and `--resume` ends exactly where
the uninterrupted run ends: the same weights, optimizer state and story."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fabric_cli.analysis.runs import CRASH_AT, load_checkpoint
from fabric_cli.chronicle import read_events
from fabric_cli.scenario import load_scenario, scenarios_dir
from fabric_cli.training.trainer import Trainer

STEPS = 10
# checkpoints at steps 0, 4, 8, 10 and the ending; 5 files each
CASES = [
    "event:1",                # right after run_start: before the first checkpoint
    "checkpoint-file:1",      # the first checkpoint half written
    "checkpoint-file:8",      # the second one half written
    "checkpoint-renamed:2",   # staged and renamed, not yet switched to
    "checkpoint-switched:2",  # switched to, the previous one not yet removed
    "checkpoint-switched:1",  # step 0 published, its top-level links not made yet
    "checkpoint-linked:1",    # step 0 whole: the resume starts at 0 (no second probe@0)
    "checkpoint-swept:3",     # switched, previous removed
]
AMONG_EVENTS = (0.35, 0.9)  # and at events along the run (fixed "random" points)


def quick_scenario(tmp_path: Path) -> Path:
    text = (scenarios_dir() / "tiny.toml").read_text(encoding="utf-8")
    for key, value in {"probe_every": 4, "warmup_steps": 2, "n_sentences": 8,
                       "dropout": 0.1}.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
        assert n == 1
    path = tmp_path / "quick.toml"
    path.write_text(text, encoding="utf-8")
    return path


def train_in_process(scenario_path: Path, run_dir: Path, *, resume: bool = False):
    scenario = load_scenario(str(scenario_path))
    trainer = Trainer(scenario, run_dir, steps=None if resume else STEPS)
    trainer.prepare(resume=resume)
    return trainer, trainer.run()


def comparable(events) -> list[dict]:
    """The story without what differs between any two runs: start lines, wall-clock times."""
    timing = {"elapsed", "seconds", "time_split", "started_at", "blas_threads"}
    return [{k: v for k, v in e.items() if k not in timing} for e in events
            if e["type"] not in ("run_start",)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    base = tmp_path_factory.mktemp("kill")
    scenario = quick_scenario(base)
    train_in_process(scenario, base / "whole")
    return scenario, base


def test_kill_9_anywhere_then_resume_ends_as_the_uninterrupted_run(uninterrupted):
    scenario, base = uninterrupted
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT}
    n_events = len(read_events(base / "whole" / "chronicle.jsonl"))
    cases = CASES + [f"event:{int(n_events * f)}" for f in AMONG_EVENTS]
    killed = {}
    for case in cases:  # all at once: two cores, and the import dominates each child
        run_dir = base / re.sub(r"\W", "-", case)
        killed[case] = (run_dir, subprocess.Popen(
            [sys.executable, "-m", "fabric_cli", "train", "-s", str(scenario), "--steps",
             str(STEPS), "--run-dir", str(run_dir), "--quiet"],
            env={**env, CRASH_AT: case}, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    whole = load_checkpoint(base / "whole", with_optimizer=True)
    whole_story = comparable(read_events(base / "whole" / "chronicle.jsonl"))
    for case, (run_dir, proc) in killed.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, (case, err.decode())
        # what a reader sees after the kill: a whole checkpoint, or plainly none yet
        names = sorted(p.name for p in run_dir.iterdir())
        if "checkpoint" in names:
            load_checkpoint(run_dir, with_optimizer=True)
        trainer, result = train_in_process(scenario, run_dir, resume=True)
        assert result.status == "finished", case
        assert trainer.started_over == ("checkpoint" not in names), case
        after = sorted(p.name for p in run_dir.iterdir())
        assert not [n for n in after if ".tmp-" in n], (case, after)  # orphans swept
        assert len([n for n in after if n.startswith("step-")]) == 1, (case, after)
        resumed = load_checkpoint(run_dir, with_optimizer=True)
        assert resumed.step == whole.step == STEPS
        for name in whole.params:
            assert np.array_equal(whole.params[name], resumed.params[name]), (case, name)
        for name in whole.optimizer_arrays:
            assert np.array_equal(whole.optimizer_arrays[name],
                                  resumed.optimizer_arrays[name]), (case, name)
        story = comparable(read_events(run_dir / "chronicle.jsonl"))
        assert story == whole_story, case
