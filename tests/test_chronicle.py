"""The chronicle: what the trainer writes is what narrators read, and damage is named."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fabric_cli.chronicle import (
    SCHEMA_VERSION,
    Chronicle,
    ChronicleWriter,
    number,
    plain,
    read_events,
    truncate_after,
    validate_event,
)
from fabric_cli.errors import FabricError
from fabric_cli.training.moments import make_moment

TOKENS = ["<bos>", "the", "king", "met", "the", "maids", "because", "he", "lost", "his", "crown"]


def _pattern(n: int) -> list[list[float]]:
    return [[1.0 / (q + 1) if k <= q else 0.0 for k in range(n)] for q in range(n)]


def synthetic_run(steps: int = 6) -> list[dict]:
    """A small run with one event of every type, values as the trainer would hand them over
    (numpy scalars and arrays included)."""
    rng = np.random.default_rng(0)
    scores = {r: np.float32(rng.random()) for r in ("pronoun", "verb", "noun", "prev",
                                                     "self", "first")}
    heads = [{"layer": 0, "head": h, "scores": scores, "pronoun_acc": 0.5,
              "pronoun_acc_heldout": np.float64(0.25)} for h in range(2)]
    probe = {"type": "probe", "step": 0, "train_loss": np.float32(3.2), "val_loss": 3.3,
             "floor": {"train": 1.1, "heldout": 1.2}, "heads": heads,
             "baseline_acc": {"train": 0.5, "heldout": 0.5}, "focus_under_dropout": None,
             "snapshots": [{"sentence": " ".join(TOKENS[1:]), "tokens": TOKENS,
                            "pronouns": [[7, 2]],
                            "patterns": {"0.0": np.array(_pattern(len(TOKENS)))}}]}
    events = [{"type": "run_start", "step": 0, "scenario": "pronouns",
               "scenario_path": "scenarios/pronouns.toml", "description": "d", "seed": 1,
               "model": {"n_layers": 1}, "training": {"steps": steps}, "n_params": 1234,
               "vocab": ["<pad>", "<bos>", "<unk>"], "floor": {"train": 1.1, "heldout": 1.2},
               "story_sentences": ["the king met the maids because he lost his crown ."],
               "resumed_from": None, "started_at": "2026-01-01T00:00:00+00:00"}, probe]
    for s in range(1, steps + 1):
        events.append({
            "type": "step", "step": s, "loss": np.float32(3.0 - 0.1 * s), "lr": 1e-3 * s,
            "grad_norm": np.float64(1.5), "grad_norm_clipped": 1.0, "clipped": np.bool_(True),
            "grad_flow": [{"layer": 0, "arriving": 0.5, "skip": 0.5, "block": 0.2,
                           "leaving": 0.6}],
            "grad_embed": 0.6, "update_ratio": {"embed": 1e-3, "blocks.0": 2e-3},
            "dropout_rate": 0.1, "dropout_keep": 0.9,
            "layernorm": [{"name": "blocks.0.ln1", "in_mean": 0.0, "in_std": 1.0,
                           "out_mean": 0.0, "out_std": 1.0}],
            "tokens": np.int64(320), "elapsed": 0.01 * s})
    events.append(make_moment("first_snap", steps, "head", {
        "sentence": "s", "pronoun": "he", "pronoun_index": 7, "antecedent": "king",
        "antecedent_index": 2, "weight": 0.4, "runner_up": "maids", "runner_up_weight": 0.2},
        layer=0, head=1))
    events.append(make_moment("gradient_spike", steps, "gradient",
                              {"grad_norm": 9.0, "median": 1.5, "factor": 6.0}))
    events.append({"type": "ablation", "step": steps, "rows": []})
    events.append({"type": "run_end", "step": steps, "status": "finished", "steps": steps,
                   "seconds": 1.0, "final_train_loss": 2.4, "final_val_loss": 2.5,
                   "floor": {"train": 1.1, "heldout": 1.2}, "specialists": [],
                   "time_split": {"forward": 0.1}})
    return events


def write(path, events) -> list[dict]:
    with ChronicleWriter(path) as writer:
        return [writer.emit(e) for e in events]


def test_a_written_run_reads_back_identically_and_every_event_validates(tmp_path):
    path = tmp_path / "chronicle.jsonl"
    returned = write(path, synthetic_run())
    events = read_events(path)
    assert events == returned  # live subscribers and later readers see the same numbers
    assert events.warnings == []
    for event in events:
        assert event["v"] == SCHEMA_VERSION
        assert validate_event(event) == [], event["type"]
    run = Chronicle.load(path)
    assert run.status == "finished"
    assert [e["step"] for e in run.steps] == [1, 2, 3, 4, 5, 6]
    assert run.last_probe["val_loss"] == 3.3
    assert [m["kind"] for m in run.moments_of("head")] == ["first_snap"]
    assert [m["kind"] for m in run.moments_of("gradient")] == ["gradient_spike"]
    assert run.run_start["scenario"] == "pronouns" and run.ablation["rows"] == []


def test_numbers_are_plain_json_rounded_to_six_significant_digits():
    out = plain({"a": np.float32(0.1), "b": np.arange(3, dtype=np.int64), "c": np.bool_(False),
                 "d": 1.23456789, "e": 123456789.0, "f": (np.float64(2.5e-9),), 7: "x"})
    assert out == {"a": 0.1, "b": [0, 1, 2], "c": False, "d": 1.23457, "e": 1.23457e8,
                   "f": [2.5e-9], "7": "x"}
    assert type(out["b"][0]) is int and type(out["c"]) is bool
    json.dumps(out, allow_nan=False)  # plain JSON, nothing numpy left


def test_nan_and_infinities_round_trip_as_strings(tmp_path):
    path = tmp_path / "c.jsonl"
    write(path, [{"type": "step", "step": 1, "loss": float("nan"), "lr": np.float32("inf"),
                  "grad_norm": -math.inf}])
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON for any reader
    (event,) = read_events(path)
    assert (event["loss"], event["lr"], event["grad_norm"]) == ("nan", "inf", "-inf")
    assert math.isnan(number(event["loss"]))
    assert number(event["lr"]) == math.inf and number(event["grad_norm"]) == -math.inf


def test_a_torn_last_line_is_skipped_with_a_warning_and_repaired_on_append(tmp_path):
    path = tmp_path / "c.jsonl"
    write(path, synthetic_run(2)[:3])
    with open(path, "a") as f:
        f.write('{"v":1,"type":"step","step":3,"lo')  # the crash came mid-write
    events = read_events(path)
    assert len(events) == 3
    assert len(events.warnings) == 1 and "line 4" in events.warnings[0]
    writer = ChronicleWriter(path)  # a resumed run appends after the last complete line
    assert writer.repaired_torn_line
    writer.emit({"type": "interrupted", "step": 2, "reason": "ctrl-c", "checkpoint_step": 2})
    writer.close()
    again = read_events(path)
    assert again.warnings == [] and [e["type"] for e in again][-1] == "interrupted"


def test_a_malformed_middle_line_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "c.jsonl"
    write(path, synthetic_run(3))
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2][:20] + "\n"
    path.write_text("".join(lines))
    with pytest.raises(FabricError) as err:
        read_events(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


@pytest.mark.parametrize("line, words", [
    ('{"type":"step","step":1}', "no schema version"),
    ('{"v":2,"type":"step","step":1}', "schema version 2"),
    ('[1, 2]', "not a JSON event"),
])
def test_wrong_or_missing_version_or_shape_is_an_error(tmp_path, line, words):
    path = tmp_path / "c.jsonl"
    path.write_text(line + "\n" + '{"v":1,"type":"step","step":2}\n')
    with pytest.raises(FabricError, match=words):
        read_events(path)


def test_a_missing_chronicle_says_to_train_first(tmp_path):
    with pytest.raises(FabricError, match=r"no chronicle at .*x\.jsonl; run `fabric train`"):
        read_events(tmp_path / "x.jsonl")


def test_truncate_after_keeps_the_past_atomically_and_forgets_the_end(tmp_path):
    path = tmp_path / "c.jsonl"
    write(path, synthetic_run(6))
    kept = truncate_after(path, 3)
    events = read_events(path)
    assert kept == len(events)
    assert max(e["step"] for e in events) == 3
    assert [e["step"] for e in events if e["type"] == "step"] == [1, 2, 3]
    assert not any(e["type"] == "run_end" for e in events)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl"]  # no temp file left
    assert Chronicle(events).status == "incomplete"


def test_a_resume_keeps_who_may_read_the_chronicle(tmp_path):
    path = tmp_path / "c.jsonl"
    write(path, synthetic_run(6))
    path.chmod(0o644)  # as the writer made it: others (a teammate, a web server) read it
    truncate_after(path, 3)
    assert path.stat().st_mode & 0o777 == 0o644


def test_validate_event_names_what_is_missing_or_wrong():
    ok = {"v": 1, "type": "moment", "step": 5, "kind": "gradient_spike",
          "component": "gradient", "layer": None, "head": None,
          "data": {"grad_norm": 9.0, "median": 1.5, "factor": 6.0}}
    assert validate_event(ok) == []
    assert "told by gradient" in validate_event({**ok, "component": "adam"})[0]
    assert "lacks factor" in validate_event({**ok, "data": {"grad_norm": 9, "median": 1}})[0]
    assert "unknown moment kind" in validate_event({**ok, "kind": "eureka"})[0]
    assert "step lacks" in validate_event({"v": 1, "type": "step", "step": 1, "loss": 1})[0]
    assert "unknown event type" in validate_event({"v": 1, "type": "gossip", "step": 1})[0]
    assert "v must be 1" in validate_event({**ok, "v": 2})[0]
    snap = {**ok, "kind": "first_snap", "component": "head",
            "data": dict.fromkeys(("sentence", "pronoun", "pronoun_index", "antecedent",
                                   "antecedent_index", "weight", "runner_up",
                                   "runner_up_weight"), 0)}
    assert "must name its layer and head" in validate_event(snap)[0]


def test_status_of_a_run_without_an_end(tmp_path):
    events = synthetic_run(2)[:-3]
    assert Chronicle(events).status == "incomplete"
    stopped = events + [{"type": "interrupted", "step": 2, "reason": "ctrl-c",
                         "checkpoint_step": 2}]
    assert Chronicle(stopped).status == "interrupted"
