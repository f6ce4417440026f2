"""The tiny scenario trains inside the test suite and grows a pronoun head, proven by ablation."""

import json


def test_tiny_run_grows_a_pronoun_specialist_that_ablation_proves(tiny_run_master):
    events = [json.loads(line) for line in (tiny_run_master / "chronicle.jsonl").open()]
    end = events[-1]
    assert end["type"] == "run_end" and end["status"] == "finished"
    pronoun = [sp for sp in end["specialists"] if sp["role"] == "pronoun"]
    assert pronoun, "no pronoun specialist was named"
    best = max(pronoun, key=lambda sp: sp["heldout_acc"])
    assert best["heldout_acc"] >= 0.9
    assert best["heldout_acc"] > best["baseline_acc"]
    # named only because silencing it (alone or with its role's other heads) hurt
    ablation = best["group_ablation"] or best["ablation"]
    assert (ablation["loss_after"] - ablation["loss_before"] >= 0.05
            or ablation["acc_before"] - ablation["acc_after"] >= 0.05)
    for name in ("config.json", "model.safetensors", "optimizer.safetensors",
                 "trainer_state.json", "vocab.json"):
        assert (tiny_run_master / "checkpoint" / name).is_file()
    for name in ("config.json", "model.safetensors", "vocab.json"):  # where other tools look
        assert (tiny_run_master / name).is_file()
