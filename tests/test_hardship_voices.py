"""The voices speak of hardship only when the chronicle shows it (issue 11, item 5): the
Gradient tells its fading layer by layer, the Residual its own absence, the Engineers the
clipping they were not allowed to do and the divergence; the default run stays calm."""

from __future__ import annotations

import json
import re

from synthetic_runs import adrift_run, build_run, storm_run

from fabric_cli.narrate import tell
from fabric_cli.narrate.format import sig, step


def test_adrift_the_gradient_tells_its_fading_layer_by_layer_with_the_numbers():
    events = adrift_run(0)
    moment = next(e for e in events if e.get("kind") == "vanishing_gradient")
    at = next(e for e in events if e["type"] == "step" and e["step"] == moment["step"])
    text = tell(events, "gradient").text()
    rows = sorted(at["grad_flow"], key=lambda r: -r["layer"])
    told = [f"Layer {r['layer']} {sig(r['arriving'])}" for r in rows]
    line = next(line for line in text.splitlines() if told[0] in line)
    assert all(t in line for t in told)  # every layer, top to bottom, in one telling
    assert [line.index(t) for t in told] == sorted(line.index(t) for t in told)
    assert sig(moment["data"]["ratio"]) in text
    assert re.search(r"no Residual|No straight thread|Residual away|replaced the stream", text)


def test_adrift_the_residual_tells_its_own_absence():
    events = adrift_run(0)
    story = tell(events, "residual")
    text = story.text()
    assert [c.title for c in story.chapters] == ["Not Woven In"]
    last = [e for e in events if e["type"] == "step"][-1]
    bottom = next(r for r in last["grad_flow"] if r["layer"] == 0)
    assert sig(bottom["arriving"]) in text and step(last["step"]) in text
    assert "carry the sum upward" not in text and "identity path" not in text


def test_storm_the_engineers_tell_the_clipping_they_could_not_do_and_the_divergence():
    events = storm_run(0)
    text = tell(events, "engineers").text()
    spikes = [e for e in events if e.get("kind") == "gradient_spike"]
    diverged = next(e for e in events if e.get("kind") == "diverged")
    assert re.search(r"not allowed|hands were tied|forbade|No clipping", text)
    assert f"{len(spikes)} " in text and step(diverged["step"]) in text
    assert step(diverged["data"]["last_good_step"]) in text
    assert "Our clip could not hold" not in text and "we cut it back" not in text
    gradient = tell(events, "gradient").text()
    assert "trimmed" not in gradient and "reined me in" not in gradient


def test_with_the_residual_and_the_clip_in_place_no_absence_is_told():
    text = "\n".join(tell(build_run(0, clipping=False), c).text()
                     for c in ("residual", "engineers", "gradient", "adam", "layernorm"))
    assert "Not Woven In" not in text and "not allowed" not in text
    assert "hands were tied" not in text and "Not at the Helm" not in text


def test_the_default_run_is_calm_and_says_so_truthfully(tiny_run_master):
    lines = (tiny_run_master / "chronicle.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert not any(e.get("kind") == "vanishing_gradient" for e in events)
    text = "\n".join(tell(events, c).text() for c in ("gradient", "residual", None))
    for word in ("ghost", "Adrift", "faded", "fall into silence", "Not Woven In"):
        assert word not in text
    assert re.search(r"always heard|I was heard|No vanishing|never faded|whole enough",
                     text)


def test_adam_and_layernorm_tell_their_absence_when_the_config_took_them_away():
    events = build_run(0)
    events[0]["training"]["optimizer"] = "sgd"
    events[0]["model"]["normalization_type"] = None
    adam = tell(events, "adam")
    assert [c.title for c in adam.chapters] == ["Not at the Helm"]
    assert "plain SGD" in adam.text() and "beta" not in adam.text()
    layernorm = tell(events, "layernorm")
    assert [c.title for c in layernorm.chapters] == ["Not Woven In"]
    assert "blocks.0.ln1" not in layernorm.text()


def test_a_gradient_that_reaches_nothing_is_not_called_a_calm():
    events = storm_run(0)
    last = [e for e in events if e["type"] == "step" and isinstance(e["grad_norm"], float)][-1]
    for row in last["grad_flow"]:
        row.update(arriving=0.0, skip=0.0, block=0.0, leaving=0.0)
    gradient = tell(events, "gradient").text()
    assert "quieter" not in gradient and "Ripples" not in gradient
    assert "Nothing of me" in gradient or "nothing of me" in gradient
    residual = tell(events, "residual")
    late = [p for c in residual.chapters for p in c.paragraphs if step(last["step"]) in p]
    assert late and not any(re.search(r"\*[^*]*(more|most)[^*]*\*", p) for p in late), late


def test_dropout_absent_tells_the_probes_mask_test_with_its_numbers(tmp_path):
    """A Fabric trained without Dropout is still cut once per probe (mask_test): the Dropout
    voice tells that test, with the last probe's numbers and the word its ratio licenses."""
    from fabric_cli.narrate.format import pct
    from fabric_cli.scenario import load_scenario
    from fabric_cli.training.trainer import Trainer

    text = load_scenario("tiny").text.replace("attn_dropout = 0.1", "attn_dropout = 0.0")
    (tmp_path / "uncut.toml").write_text(text, encoding="utf-8")
    trainer = Trainer(load_scenario(str(tmp_path / "uncut.toml")), tmp_path / "run", steps=50)
    trainer.prepare()
    trainer.run()
    events = [json.loads(line) for line in
              (tmp_path / "run" / "chronicle.jsonl").read_text().splitlines()]
    test = [e for e in events if e["type"] == "probe"][-1]["mask_test"]
    told = tell(events, "dropout").text()
    assert pct(test["masked"]) in told and pct(test["clean"]) in told and "50" in told
    assert "no test" not in told.lower()
    ratio = test["masked"] / test["clean"] if test["clean"] else 0.0
    word = "held" if ratio >= 0.9 else "bent" if ratio >= 0.5 else "sh"
    assert re.search(rf"\b{word}", told), (ratio, told)


def test_only_a_run_that_trained_with_adamw_has_adam_in_its_other_voices():
    # the storm and no-adam train with momentum or SGD: a head saying "Adam made of it a step",
    # or the Engineers clipping "before Adam could act", would name a component not in the run
    for seed in range(6):  # each seed picks other variants of the phrases
        for optimizer in ("momentum", "adamw"):
            events = build_run(seed, spikes=(40, 70), optimizer=optimizer)
            text = "\n".join(tell(events, c).text() for c in
                             ("head", "gradient", "engineers", "residual", "loss"))
            if optimizer == "adamw":
                assert "Adam" in text  # what the other runs must not say, said where it is true
            else:
                assert "Adam" not in text and "optimiser" in text
