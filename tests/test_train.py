"""The Trainer as a user relies on it: a chronicle that follows its schema, an interruption that
changes nothing, a torn Fabric that keeps its last good checkpoint, short runs that still make
sense, and moments told exactly when their threshold is crossed."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from fabric_cli.analysis.runs import load_checkpoint
from fabric_cli.chronicle import number, read_events, validate_event
from fabric_cli.language.corpus import Corpus
from fabric_cli.nn.model import forward
from fabric_cli.scenario import load_scenario, scenarios_dir
from fabric_cli.training.moments import MomentThresholds
from fabric_cli.training.trainer import Trainer


def scenario_variant(tmp_path: Path, name: str, **training: object) -> Path:
    """A copy of the bundled tiny scenario with some [training] values replaced."""
    text = (scenarios_dir() / "tiny.toml").read_text(encoding="utf-8")
    for key, value in training.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.MULTILINE)
        assert n == 1, f"tiny.toml has no single line for training.{key}"
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def train(scenario, run_dir: Path, *, steps: int | None = None, subscribers=(),
          resume: bool = False):
    trainer = Trainer(scenario, run_dir, steps=steps, subscribers=subscribers)
    trainer.prepare(resume=resume)
    return trainer, trainer.run()


def of_type(events, kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def expected_lr(step: int, t, total: int) -> float:
    """Linear warm-up then cosine decay, written out again for comparison."""
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    progress = min((step - t.warmup_steps) / max(total - t.warmup_steps, 1), 1.0)
    low = t.lr * t.min_lr_ratio
    return low + (t.lr - low) * 0.5 * (1 + math.cos(math.pi * progress))


# -- 1. the chronicle's schema ------------------------------------------------------------------
def test_tiny_chronicle_follows_the_schema_in_order(tiny_run_master):
    events = read_events(tiny_run_master / "chronicle.jsonl")
    for i, event in enumerate(events):
        assert validate_event(event) == [], (i, event["type"], validate_event(event))

    scenario = load_scenario("tiny")
    t = scenario.training
    cfg = Corpus(scenario).model_config()
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert kinds.count("run_start") == 1 and kinds.count("run_end") == 1
    assert events[-1]["status"] == "finished" and events[-1]["steps"] == t.steps

    # steps 1..N each once, in order; probes at 0, every probe_every steps, and at the end
    steps = of_type(events, "step")
    assert [e["step"] for e in steps] == list(range(1, t.steps + 1))
    probe_steps = [e["step"] for e in of_type(events, "probe")]
    assert probe_steps == sorted({0, *range(t.probe_every, t.steps + 1, t.probe_every),
                                  t.steps})
    # each probe comes right after the step it measures
    for i, kind in enumerate(kinds):
        if kind == "probe" and events[i]["step"] > 0:
            before = [e for e in events[:i] if e["type"] == "step"][-1]
            assert before["step"] == events[i]["step"]
    # the ablation comes after the last probe, then the specialists, then run_end
    ablation = kinds.index("ablation")
    assert kinds.count("ablation") == 1
    assert ablation > max(i for i, k in enumerate(kinds) if k in ("probe", "step"))
    assert all(e["type"] == "moment" and e["kind"] == "specialist"
               for e in events[ablation + 1:-1])
    assert [e["step"] for e in events] == sorted(e["step"] for e in events)

    groups = {"embed", "pos_embed", "ln_final", "unembed",
              *(f"blocks.{i}" for i in range(cfg.n_layers))}
    norms = {"ln_final", *(f"blocks.{i}.ln{j}" for i in range(cfg.n_layers) for j in (1, 2))}
    elapsed = 0.0
    for e in steps:
        assert [row["layer"] for row in e["grad_flow"]] == list(range(cfg.n_layers))
        assert set(e["update_ratio"]) == groups
        assert all(number(r) > 0 for r in e["update_ratio"].values())
        assert {row["name"] for row in e["layernorm"]} == norms
        assert e["dropout_keep"] == pytest.approx(1.0)  # tiny trains without dropout
        assert e["clipped"] == (e["grad_norm"] > t.grad_clip)
        assert e["grad_norm_clipped"] == pytest.approx(min(e["grad_norm"], t.grad_clip),
                                                       rel=1e-4)
        assert e["lr"] == pytest.approx(expected_lr(e["step"] - 1, t, t.steps), rel=1e-5)
        assert e["elapsed"] >= elapsed
        elapsed = e["elapsed"]


# -- 2. an interruption changes nothing -----------------------------------------------------------
class StoppingTrainer(Trainer):
    """Asks itself to stop right after training step `stop_after`, as Ctrl-C would: the loop,
    not the chronicle, is where the stop lands (a probe may be in flight, its steps' events
    not yet told)."""

    stop_after: int = 0

    def _train_step(self):
        event = super()._train_step()
        if self.step == self.stop_after and self.resumed_from is None:
            self.request_stop()
        return event


def test_interrupted_and_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path):
    # dropout on, so the dropout stream's state must survive the checkpoint too
    scenario = load_scenario(str(scenario_variant(tmp_path, "dropped", dropout=0.1)))
    steps, stop = 60, 37  # the stop falls between two probes (25, 50)
    _, whole = train(scenario, tmp_path / "whole", steps=steps)
    assert whole.status == "finished"

    trainer = StoppingTrainer(scenario, tmp_path / "cut", steps=steps)
    trainer.stop_after = stop
    trainer.prepare()
    first = trainer.run()
    assert (first.status, first.steps) == ("interrupted", stop)
    assert load_checkpoint(tmp_path / "cut").step == stop
    _, second = train(scenario, tmp_path / "cut", resume=True)
    assert (second.status, second.steps) == ("finished", steps)

    a = load_checkpoint(tmp_path / "whole", with_optimizer=True)
    b = load_checkpoint(tmp_path / "cut", with_optimizer=True)
    assert a.params.keys() == b.params.keys()
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name
    for name in a.optimizer_arrays:
        assert np.array_equal(a.optimizer_arrays[name], b.optimizer_arrays[name]), name

    whole_events = read_events(tmp_path / "whole" / "chronicle.jsonl")
    cut_events = read_events(tmp_path / "cut" / "chronicle.jsonl")
    assert len(of_type(cut_events, "interrupted")) == 1
    assert of_type(cut_events, "interrupted")[0]["checkpoint_step"] == stop
    resumes = [e for e in of_type(cut_events, "run_start") if e["resumed_from"] is not None]
    assert [e["resumed_from"] for e in resumes] == [stop]
    assert cut_events[-1]["type"] == "run_end" and cut_events[-1]["status"] == "finished"
    assert len(of_type(cut_events, "run_end")) == 1

    def story(events, kind, fields):
        return [{f: e[f] for f in fields} for e in of_type(events, kind)]

    step_fields = ("step", "loss", "lr", "grad_norm", "clipped", "update_ratio",
                   "dropout_keep", "grad_flow", "layernorm")
    assert story(cut_events, "step", step_fields) == story(whole_events, "step", step_fields)
    # the heads' weight changes, measured inside the step on the first and the probe steps
    changes = [(e["step"], e["weight_change"]) for e in of_type(cut_events, "step")
               if "weight_change" in e]
    assert [s for s, _ in changes] == [1, 25, 50, 60]
    assert changes == [(e["step"], e["weight_change"]) for e in of_type(whole_events, "step")
                       if "weight_change" in e]
    probe_fields = ("step", "train_loss", "val_loss", "heldout_loss", "heads",
                    "focus_under_dropout", "qk_space")
    assert story(cut_events, "probe", probe_fields) == story(whole_events, "probe",
                                                              probe_fields)
    moment_fields = ("step", "kind", "layer", "head", "data")
    assert story(cut_events, "moment", moment_fields) == story(whole_events, "moment",
                                                                moment_fields)


# -- 3. a torn Fabric ----------------------------------------------------------------------------
def absurd_scenario(tmp_path: Path):
    """Adam with no memory of the gradient's size (beta2 = 0) and a long memory of its
    direction (beta1 = 0.999) at lr 1: an update divides an old gradient by a tiny new one.
    The loader accepts every one of these values."""
    path = scenario_variant(tmp_path, "absurd", lr=1.0, beta1=0.999, beta2=0.0,
                            grad_clip=1e9, warmup_steps=0, probe_every=5)
    return load_scenario(str(path))


def test_a_diverging_run_stops_at_once_and_keeps_its_last_good_checkpoint(tmp_path):
    scenario = absurd_scenario(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, result = train(scenario, tmp_path / "torn", steps=200)
    assert [str(w.message) for w in caught if w.category is RuntimeWarning] == []
    assert result.status == "diverged"

    events = read_events(tmp_path / "torn" / "chronicle.jsonl")
    assert all(validate_event(e) == [] for e in events)
    steps = of_type(events, "step")
    assert steps and all(math.isfinite(number(e["loss"])) for e in steps)
    last = steps[-1]["step"]
    assert last < 200
    [torn] = [e for e in of_type(events, "moment") if e["kind"] == "diverged"]
    assert torn["step"] == last + 1  # the very next step tore; nothing after it was trained
    end = events[-1]
    assert end["type"] == "run_end" and end["status"] == "diverged"
    assert end["checkpoint_step"] == torn["data"]["last_good_step"]
    good = end["checkpoint_step"]
    # the last probe whose losses were all finite: a probe measuring nan (the training
    # batch's loss still finite) marks a Fabric already torn on some sentences
    sound = [e["step"] for e in of_type(events, "probe")
             if all(math.isfinite(number(e[k])) for k in ("train_loss", "val_loss"))]
    assert good == max(sound)
    assert 0 < good <= last

    ckpt = load_checkpoint(tmp_path / "torn", with_optimizer=True)
    assert ckpt.step == good
    assert all(np.isfinite(p).all() for p in ckpt.params.values())
    corpus = Corpus(scenario)
    tokens, targets = corpus.train_batch(np.random.default_rng(1), 8)
    with np.errstate(over="ignore"):  # finite, but the weights are already huge
        assert math.isfinite(forward(ckpt.params, ckpt.cfg, tokens, targets).loss)


# -- 5. short runs --------------------------------------------------------------------------------
def test_steps_shorter_than_warmup_and_probe_interval_still_train_at_full_rate(tmp_path):
    scenario = load_scenario("tiny")
    t = scenario.training
    steps = 4
    assert steps < t.warmup_steps and steps < t.probe_every  # the gap this test is about
    _, result = train(scenario, tmp_path / "short", steps=steps)
    assert result.status == "finished" and result.steps == steps
    events = read_events(tmp_path / "short" / "chronicle.jsonl")
    told = events[0]["training"]
    assert told["steps"] == steps
    assert told["warmup_steps"] < steps and 1 <= told["probe_every"] <= steps
    lrs = [e["lr"] for e in of_type(events, "step")]
    assert max(lrs) == pytest.approx(t.lr, rel=1e-5)  # the warm-up ends inside the run
    assert lrs[-1] < lrs[0]  # and the cosine decay happens
    assert [e["step"] for e in of_type(events, "probe")] == [0, steps]
    assert load_checkpoint(tmp_path / "short").step == steps


# -- 6. moments when thresholds are crossed -------------------------------------------------------
def test_pronoun_threshold_moments_come_exactly_at_the_first_crossing(tiny_run_master):
    events = read_events(tiny_run_master / "chronicle.jsonl")
    scenario = load_scenario("tiny")
    bar = MomentThresholds.from_scenario(scenario).role_threshold("pronoun")
    probes = of_type(events, "probe")
    told = {(e["layer"], e["head"]): e for e in of_type(events, "moment")
            if e["kind"] == "role_threshold" and e["data"]["role"] == "pronoun"}
    crossings = {}
    for probe in probes:
        for row in probe["heads"]:
            head = (row["layer"], row["head"])
            if head not in crossings and number(row["scores"]["pronoun"]) >= bar:
                crossings[head] = (probe["step"], row["scores"]["pronoun"])
    end = events[-1]
    [specialist] = [(s["layer"], s["head"]) for s in end["specialists"] if s["role"] == "pronoun"]
    assert specialist in crossings, "the named pronoun specialist never crossed the bar"
    assert set(told) == set(crossings)
    for head, (step, score) in crossings.items():
        moment = told[head]
        assert moment["step"] == step
        assert moment["data"]["score"] == score
        assert moment["data"]["threshold"] == pytest.approx(bar)
        # the previous probe (if any) was still under the bar
        before = [p for p in probes if p["step"] < step]
        if before:
            row = next(r for r in before[-1]["heads"] if (r["layer"], r["head"]) == head)
            assert number(row["scores"]["pronoun"]) < bar
            assert moment["data"]["previous_step"] == before[-1]["step"]


@pytest.mark.skipif(__import__("fabric_cli.nn.blas", fromlist=["x"]).blas_threads() is None,
                    reason="the BLAS's thread count cannot be set")
def test_the_thread_count_is_chosen_on_rehearsals_and_kept_by_a_resume(tmp_path, monkeypatch):
    """A count can move the last bits of a step (nn/blas.py): the steps timed to choose it
    touch nothing of the run, the run trains on that count alone, a resume keeps it, and
    the process has its own count back when the run ends."""
    from fabric_cli.nn import blas

    before = blas.blas_threads()
    monkeypatch.setattr(blas, "TUNE_ABOVE_FLOPS", 0.0)  # the tiny Fabric is tuned too
    scenario = load_scenario("tiny")
    try:
        _, whole = train(scenario, tmp_path / "tuned", steps=30)
        chosen = whole.summary["blas_threads"]["threads"]
        assert chosen in (1, 2) and set(whole.summary["blas_threads"]["ms"]) <= {"1", "2"}
        assert load_checkpoint(tmp_path / "tuned").extra["blas_threads"] == chosen
        assert blas.blas_threads() == before  # the run gives the process its count back
        monkeypatch.setattr(blas, "TUNE_ABOVE_FLOPS", float("inf"))  # no tuning at all
        blas.set_blas_threads(chosen)
        train(scenario, tmp_path / "plain", steps=30)
        a, b = load_checkpoint(tmp_path / "tuned"), load_checkpoint(tmp_path / "plain")
        assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)

        monkeypatch.setattr(blas, "TUNE_ABOVE_FLOPS", 0.0)
        cut = StoppingTrainer(scenario, tmp_path / "cut", steps=30)
        cut.stop_after = 12
        cut.prepare()
        cut.run()
        kept = load_checkpoint(tmp_path / "cut").extra["blas_threads"]
        blas.set_blas_threads(3 - kept)  # the other count, as a new process might start with

        def no_rehearsal(self, step):
            raise AssertionError("a resumed run timed its thread count again")
        monkeypatch.setattr(blas.ThreadTuner, "rehearse", no_rehearsal)
        _, resumed = train(scenario, tmp_path / "cut", resume=True)
        assert resumed.summary["blas_threads"]["threads"] == kept
        assert blas.blas_threads() == 3 - kept  # and gave back the count it found
    finally:
        blas.set_blas_threads(before)
