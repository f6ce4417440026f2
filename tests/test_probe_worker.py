"""Probes measured in their own process (training/probe_worker.py) tell exactly what probes in
the loop tell: the same chronicle, event for event and number for number, the same
checkpoints, and the same again when the worker dies halfway."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fabric_cli.analysis.runs import load_checkpoint
from fabric_cli.chronicle import read_events
from fabric_cli.scenario import load_scenario
from fabric_cli.training.trainer import Trainer

pytestmark = pytest.mark.skipif((os.cpu_count() or 1) < 2,
                                reason="the probe process needs a second core")

CLOCKS = ("elapsed", "seconds", "time_split", "started_at", "blas_threads")


def run(tmp_path: Path, name: str, *, worker: bool, subscribers=(), steps: int = 120,
        cls=Trainer):
    trainer = cls(load_scenario("tiny"), tmp_path / name, steps=steps, probe_worker=worker,
                  subscribers=subscribers)
    trainer.prepare()
    return trainer, trainer.run()


def told(run_dir: Path) -> list[dict]:
    """The chronicle without its clocks (wall time is the one thing allowed to differ)."""
    return [{k: v for k, v in e.items() if k not in CLOCKS}
            for e in read_events(run_dir / "chronicle.jsonl")]


def same_checkpoints(a: Path, b: Path) -> None:
    x, y = load_checkpoint(a, with_optimizer=True), load_checkpoint(b, with_optimizer=True)
    assert x.step == y.step
    for name in x.params:
        assert np.array_equal(x.params[name], y.params[name]), name
    for name in x.optimizer_arrays:
        assert np.array_equal(x.optimizer_arrays[name], y.optimizer_arrays[name]), name
    assert x.rng_states == y.rng_states


def test_probes_beside_the_loop_tell_the_same_story_as_probes_in_it(tmp_path):
    _, beside = run(tmp_path, "beside", worker=True)
    _, inside = run(tmp_path, "inside", worker=False)
    # the worker did measure probes (and the final ablation's share), the loop did not wait
    # for all of them
    assert beside.summary["time_split"]["probes_beside"] > 0
    assert inside.summary["time_split"]["probes_beside"] == 0
    a, b = told(tmp_path / "beside"), told(tmp_path / "inside")
    assert [e["type"] for e in a] == [e["type"] for e in b]
    assert a == b
    assert [e["step"] for e in a if e["type"] == "probe"] == [0, 25, 50, 75, 100, 120]
    same_checkpoints(tmp_path / "beside", tmp_path / "inside")


class StopsOnAProbeStep(Trainer):
    """Ctrl-C right after step 25 is trained: the loop then sends that step's probe to the
    worker and stops with it in flight."""

    def _train_step(self):
        event = super()._train_step()
        if self.step == 25 and self.resumed_from is None:
            self.request_stop()
        return event


def test_a_stop_with_a_probe_in_flight_waits_for_it_and_resumes_exactly(tmp_path):
    seen = []

    def at_probe(event):  # a probe is told before its own checkpoint is written
        if event["type"] == "probe":
            checkpoint = tmp_path / "cut" / "config.json"
            seen.append(load_checkpoint(tmp_path / "cut").step if checkpoint.exists() else None)

    _, cut = run(tmp_path, "cut", worker=True, subscribers=[at_probe], cls=StopsOnAProbeStep)
    assert (cut.status, cut.steps) == ("interrupted", 25)
    events = read_events(tmp_path / "cut" / "chronicle.jsonl")
    assert [e["type"] for e in events[-3:]] == ["probe", "interrupted", "run_end"]
    assert events[-3]["step"] == 25 and load_checkpoint(tmp_path / "cut").step == 25
    assert seen == [None, 0]
    resumed = Trainer(load_scenario("tiny"), tmp_path / "cut", steps=120)
    resumed.prepare(resume=True)
    assert resumed.run().status == "finished"
    run(tmp_path, "whole", worker=False)
    same_checkpoints(tmp_path / "cut", tmp_path / "whole")
    cut_probes = [e for e in told(tmp_path / "cut") if e["type"] == "probe"]
    assert cut_probes == [e for e in told(tmp_path / "whole") if e["type"] == "probe"]


def test_a_worker_that_dies_halfway_changes_nothing(tmp_path):
    holder: dict = {}

    def kill_the_worker(event):
        worker = holder["trainer"].worker
        if event["type"] == "probe" and event["step"] == 50 and worker.proc is not None:
            worker.proc.kill()

    class Held(Trainer):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            holder["trainer"] = self

    _, dead = run(tmp_path, "dead", worker=True, subscribers=[kill_the_worker], cls=Held)
    run(tmp_path, "inside", worker=False)
    assert dead.status == "finished"
    assert holder["trainer"].worker.proc is None  # it was noticed, and closed
    assert told(tmp_path / "dead") == told(tmp_path / "inside")
    same_checkpoints(tmp_path / "dead", tmp_path / "inside")


def test_a_scenario_file_changed_under_the_run_is_probed_in_the_loop(tmp_path):
    """The worker reads the scenario from its file; if the file no longer holds what the run
    trains on, the worker refuses and the loop probes itself: the same story again."""
    path = tmp_path / "mine.toml"
    path.write_text(load_scenario("tiny").text, encoding="utf-8")
    scenario = load_scenario(str(path))
    path.write_text(scenario.text.replace("n_sentences = 32", "n_sentences = 33"),
                    encoding="utf-8")
    trainer = Trainer(scenario, tmp_path / "changed", steps=60)
    trainer.prepare()
    changed = trainer.run()
    assert changed.summary["time_split"]["probes_beside"] == 0
    path.write_text(scenario.text, encoding="utf-8")
    same = Trainer(load_scenario(str(path)), tmp_path / "same", steps=60, probe_worker=False)
    same.prepare()
    same.run()
    assert told(tmp_path / "changed")[1:] == told(tmp_path / "same")[1:]  # run_start: paths


def test_a_lessons_twin_is_probed_beside_its_loop_too(tmp_path):
    """`fabric why` trains scenarios that live in a lesson file (both sides share its path);
    the worker finds the side whose language the run trains and tells the same story."""
    from fabric_cli.lessons import load_lesson

    twin = load_lesson("adam").without_scenario
    runs = {}
    for name, worker in (("beside", True), ("inside", False)):
        trainer = Trainer(twin, tmp_path / name, steps=12, probe_worker=worker)
        trainer.prepare()
        runs[name] = trainer.run()
    assert runs["beside"].summary["time_split"]["probes_beside"] > 0
    assert told(tmp_path / "beside") == told(tmp_path / "inside")


@pytest.mark.skipif(__import__("fabric_cli.nn.blas", fromlist=["x"]).blas_threads() is None,
                    reason="the BLAS's thread count cannot be set")
def test_a_run_with_its_probes_beside_it_keeps_one_thread_and_times_none(tmp_path,
                                                                         monkeypatch):
    """The second core is the probe process's: a Fabric big enough to tune (here the tiny
    one, with the line lowered to 0) trains on one thread without rehearsals when the worker
    runs, and rehearses both counts when it does not."""
    from fabric_cli.nn import blas

    monkeypatch.setattr(blas, "TUNE_ABOVE_FLOPS", 0.0)
    before = blas.blas_threads()
    beside_trainer, _ = run(tmp_path, "beside", worker=True, steps=20)
    inside_trainer, _ = run(tmp_path, "inside", worker=False, steps=20)
    assert blas.blas_threads() == before  # each run gave the count back
    beside = read_events(tmp_path / "beside" / "chronicle.jsonl")[-1]["blas_threads"]
    inside = read_events(tmp_path / "inside" / "chronicle.jsonl")[-1]["blas_threads"]
    assert beside == {"threads": 1, "ms": {}}
    assert set(inside["ms"]) <= {"1", "2"} and "1" in inside["ms"]
    assert beside_trainer.times.probes_beside > 0 and inside_trainer.times.probes_beside == 0


def test_a_stalled_worker_is_given_up_and_the_story_is_the_same(tmp_path, monkeypatch):
    """A worker that stops answering (here: stopped with SIGSTOP, as a swapped-out or hung
    process would be) no longer holds the run forever: past the patience the loop closes it
    and measures the step itself, and the chronicle is the one probes in the loop write."""
    import signal

    from fabric_cli.training import probe_flow

    monkeypatch.setattr(probe_flow, "PATIENCE", 1.0)
    monkeypatch.setattr(probe_flow, "SLOWEST_TIMES", 0.0)
    holder: dict = {}

    def stall_the_worker(event):
        worker = holder["trainer"].worker
        if event["type"] == "probe" and event["step"] == 50 and worker.proc is not None:
            holder["pid"] = worker.proc.pid
            os.kill(worker.proc.pid, signal.SIGSTOP)

    class Held(Trainer):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            holder["trainer"] = self

    _, stalled = run(tmp_path, "stalled", worker=True, subscribers=[stall_the_worker],
                     cls=Held)
    run(tmp_path, "inside", worker=False)
    assert "pid" in holder and stalled.status == "finished"
    assert holder["trainer"].worker.proc is None  # given up, and closed
    assert told(tmp_path / "stalled") == told(tmp_path / "inside")
    same_checkpoints(tmp_path / "stalled", tmp_path / "inside")
