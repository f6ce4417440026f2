"""The head's own weight changes (analysis/weights.py), against params before and after a
step read back by hand, and the steps on which the chronicle records them."""

from __future__ import annotations

import json

import numpy as np

from fabric_cli.analysis import runs
from fabric_cli.analysis.weights import MATRICES, head_changes
from fabric_cli.scenario import load_scenario
from fabric_cli.training.trainer import Trainer


def _by_hand(before: dict, after: dict, layer: int, head: int) -> dict:
    """The head's four slices flattened one after another: largest rise, fall, mean |Δ|."""
    parts = []
    for m in MATRICES:
        name = f"blocks.{layer}.attn.{m}"
        d = after[name][head].astype(np.float64) - before[name][head].astype(np.float64)
        parts += [(float(x), m, list(np.unravel_index(i, d.shape))) for i, x in
                  enumerate(d.ravel())]
    values = np.array([p[0] for p in parts])
    return {"rise": parts[int(values.argmax())], "fall": parts[int(values.argmin())],
            "mean_abs": float(np.abs(values).mean())}


def test_a_hand_made_change_is_found_where_it_was_made():
    rng = np.random.default_rng(0)
    shapes = {"W_Q": (2, 6, 3), "W_K": (2, 6, 3), "W_V": (2, 6, 3), "W_O": (2, 3, 6)}
    before = {f"blocks.0.attn.{m}": rng.normal(size=s).astype(np.float32)
              for m, s in shapes.items()}
    after = {k: v.copy() for k, v in before.items()}
    after["blocks.0.attn.W_K"][1, 4, 2] += 0.5  # head 1: one push up, one down
    after["blocks.0.attn.W_O"][1, 0, 5] -= 0.25
    rows = head_changes(before, after, 1)
    assert [(r["layer"], r["head"]) for r in rows] == [(0, 0), (0, 1)]
    still, moved = rows
    assert still["mean_abs"] == 0 and still["rise"]["change"] == 0
    assert moved["rise"]["matrix"] == "W_K" and moved["rise"]["index"] == [4, 2]
    assert moved["fall"]["matrix"] == "W_O" and moved["fall"]["index"] == [0, 5]
    assert np.isclose(moved["rise"]["change"], 0.5, atol=1e-6)
    assert np.isclose(moved["fall"]["change"], -0.25, atol=1e-6)
    assert np.isclose(moved["mean_abs"], 0.75 / (3 * 18 + 18), atol=1e-7)


def test_the_first_steps_recorded_change_is_the_params_before_and_after_it(tmp_path):
    trainer = Trainer(load_scenario("tiny"), tmp_path / "one", steps=1)
    trainer.prepare()
    before = {k: v.copy() for k, v in trainer.params.items()}
    trainer.run()
    after = runs.load_checkpoint(tmp_path / "one").params
    lines = (tmp_path / "one" / "chronicle.jsonl").read_text().splitlines()
    step = next(e for e in map(json.loads, lines) if e["type"] == "step")
    cfg = trainer.cfg
    assert len(step["weight_change"]) == cfg.n_layers * cfg.n_heads
    for row in step["weight_change"]:
        want = _by_hand(before, after, row["layer"], row["head"])
        for side in ("rise", "fall"):
            value = want[side][0]
            assert np.isclose(row[side]["change"], value, rtol=1e-5, atol=0)
            # the element named moved by the amount recorded (ties may name another)
            name = f"blocks.{row['layer']}.attn.{row[side]['matrix']}"
            got = after[name][row["head"]][tuple(row[side]["index"])].astype(np.float64) - \
                before[name][row["head"]][tuple(row[side]["index"])]
            assert np.isclose(got, row[side]["change"], rtol=1e-5)
        assert np.isclose(row["mean_abs"], want["mean_abs"], rtol=1e-5)
        assert row["rise"]["change"] > 0 > row["fall"]["change"]  # Adam moves every weight


def test_weight_changes_are_recorded_on_the_first_step_and_on_every_probe_step(tiny_run_master):
    lines = (tiny_run_master / "chronicle.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    probes = {e["step"] for e in events if e["type"] == "probe"} - {0}
    recorded = {e["step"] for e in events if e["type"] == "step" and "weight_change" in e}
    assert recorded == probes | {1}
