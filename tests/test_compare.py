"""`fabric compare`: two real tiny runs side by side, the voices' claims, and clean errors."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from cli_helpers import invoke, one_line_error

from fabric_cli.analysis.compare import compare_dirs, compare_runs, run_summary
from fabric_cli.narrate.compare_facts import derive
from fabric_cli.narrate.compare_voices import COMPONENTS, speak
from fabric_cli.scenario import parse_scenario, scenarios_dir
from fabric_cli.training.trainer import Trainer


def variant(base: str, name: str, **changes) -> object:
    """A bundled scenario with some settings changed ("training.lr" = 0.03, …)."""
    path = scenarios_dir() / f"{base}.toml"
    data = tomllib.loads(path.read_text())
    for dotted, value in changes.items():
        table, key = dotted.split(".")
        data[table][key] = value
    return parse_scenario(data, name, Path(f"{name}.toml"))


def train(scenario, run_dir: Path, steps: int | None = None) -> Path:
    trainer = Trainer(scenario, run_dir, steps=steps)
    trainer.prepare()
    trainer.run()
    return run_dir


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny run with clipping and its twin without (same language, same lr)."""
    root = tmp_path_factory.mktemp("compare")
    a = train(variant("tiny", "clipped"), root / "clipped", steps=150)
    b = train(variant("tiny", "unclipped", **{"training.grad_clip": 0}), root / "unclipped",
              steps=150)
    return a, b


def test_compare_shows_both_runs_on_the_same_rows(pair):
    a, b = pair
    result = invoke("compare", [str(a), str(b)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "clipped" in out and "unclipped" in out
    row = next(line for line in out.splitlines() if "clipped steps" in line)
    cmp = compare_dirs(a, b)
    count = cmp["a"]["clipping"]["count"]
    assert count > 0  # tiny's gradient passes 1 early on
    assert f"{count} (to 1)" in row and "clipping off" in row
    # the voice by default is the switch that differs: the Engineers, tied in run B
    assert "Engineers: We are the Engineers. In run B our hands were tied" in out
    assert f"we cut the Gradient back on {count} steps" in out


def test_every_sentence_stands_on_a_fact_that_holds(pair):
    cmp = compare_dirs(*pair)
    for component in COMPONENTS:
        facts = derive(component, cmp)
        for line in speak(component, cmp):
            if line["fact"] == "no_absence":
                continue
            assert line["fact"] in facts, (component, line)
            # every number in the sentence is one of the fact's measured values
            values = " ".join(str(v) for v in facts[line["fact"]].values())
            for figure in re.findall(r"\d[\d,.]*", line["text"]):
                assert figure.rstrip(".,") in values, (component, figure, line["text"])


def test_json_holds_both_summaries_and_what_was_said(pair):
    a, b = pair
    result = invoke("compare", [str(a), str(b), "--json", "--component", "gradient"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["component"] == "gradient"
    assert doc["a"]["switches"]["grad_clip"] == 1.0 and doc["b"]["switches"]["grad_clip"] == 0
    assert doc["differences"] == {"grad_clip": [1.0, 0.0]}
    assert doc["a"]["clipping"]["count"] > 0 and doc["b"]["clipping"]["count"] == 0
    assert all(s["text"].startswith("In run ") for s in doc["said"])


def test_export_writes_the_picture(pair, tmp_path):
    a, b = pair
    target = tmp_path / "cmp.txt"
    result = invoke("compare", [str(a), str(b), "--export", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "Two runs side by side" in text and "clipped steps" in text


@pytest.mark.parametrize("args, fragment", [
    (["{a}", "{missing}"], "no such run directory"),
    (["{a}", "{empty}"], "is not a fabric run directory"),
    (["{a}", "{a}", "--component", "wizard"], "unknown component 'wizard'"),
    (["{a}", "{a}", "--export", "x.png"], "must end in"),
])
def test_wrong_input_is_one_clean_line(pair, tmp_path, args, fragment):
    (tmp_path / "empty").mkdir()
    paths = {"a": pair[0], "missing": tmp_path / "nope", "empty": tmp_path / "empty"}
    result = invoke("compare", [a.format(**paths) for a in args])
    assert fragment in one_line_error(result)


def _summary(ratio: float, n_layers: int = 8, **switches) -> dict:
    """A run summary with a chosen bottom/top gradient ratio (the rest unremarkable)."""
    per = [{"arriving": ratio ** (1 - i / (n_layers - 1)), "share_of_top": None}
           for i in range(n_layers)]
    events = [{"type": "run_start", "step": 0, "scenario": "s",
               "model": {"n_layers": n_layers, "n_heads": 2, "d_model": 32, **switches},
               "training": {"steps": 10, "grad_clip": 1.0, "optimizer": "adamw"},
               "floor": {"train": 1.0}}]
    summary = run_summary(events, "r")
    summary["gradient"] = {"ratio_median": ratio, "ratio_last": ratio, "ratio_curve": [],
                           "per_layer": per}
    return summary


def test_the_residual_tells_its_absence_only_with_the_measured_fade():
    faded = compare_runs(_summary(0.8), _summary(0.8 / 300, residual=False))
    said = " ".join(s["text"] for s in speak("residual", faded))
    assert "Without me, the correction that reached Layer 0 was 1/375 of what arrived at " \
           "Layer 7; with me it was 0.8 of it." in said
    assert "at least 2 orders of magnitude" in said
    assert "shrank at every layer on its way down, from Layer 7 to Layer 0" in said
    # the same depth, but the twin's gradient barely faded: no word of orders or shrinking
    held = compare_runs(_summary(0.8), _summary(0.5, residual=False))
    said = " ".join(s["text"] for s in speak("residual", held))
    assert "orders of magnitude" not in said and "shrank" not in said
    assert "kept 0.5 of its strength at Layer 7 (with me: 0.8)" in said


def test_runs_of_different_shapes_align_from_the_bottom_and_say_so(pair, tmp_path):
    deep = train(variant("tiny", "deeper", **{"model.n_layers": 3}), tmp_path / "deeper",
                 steps=30)
    result = invoke("compare", [str(pair[0]), str(deep)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "1 layers against 3: per-layer rows align from the bottom" in " ".join(out.split())
    assert "150 steps trained against 30" in " ".join(out.split())
    lines = out.splitlines()
    l2 = next(i for i, line in enumerate(lines) if "L2" in line and " A " in line)
    assert "(no such layer)" in lines[l2]  # run A has no Layer 2
    assert "(no such layer)" not in lines[l2 + 1]  # run B does


def test_a_long_runs_divergence_note_writes_its_steps_as_the_views_do(tmp_path):
    from synthetic_runs import build_run, write_chronicle

    calm = write_chronicle(tmp_path / "calm", build_run(seed=1, steps=1500, probe_every=500))
    events = build_run(seed=1, steps=1500, probe_every=500, diverge_at=1234)
    torn = write_chronicle(tmp_path / "torn", events)
    notes = " ".join(compare_dirs(calm.parent, torn.parent)["notes"])
    good = next(e for e in events if e.get("kind") == "diverged")["data"]["last_good_step"]
    assert good > 1000
    assert (f"diverged at step 1,234: its final figures are those of its last probe "
            f"(step {good:,})") in notes, notes
    assert "1,500 steps trained against 1,234 (step 1,234 tore)" in notes


def test_the_bottom_layers_share_of_top_is_the_tables_bottom_top(tmp_path):
    """The table's 'gradient bottom/top' and the bottom bar's '(… of top)' are one measure,
    the median of the per-step ratios: they read the same number."""
    from synthetic_runs import build_run, write_chronicle

    chronicle = write_chronicle(tmp_path / "a", build_run(seed=2))
    [run] = [compare_dirs(chronicle.parent, chronicle.parent)["a"]]
    gradient = run["gradient"]
    assert gradient["per_layer"][0]["share_of_top"] == pytest.approx(gradient["ratio_median"])
    assert gradient["per_layer"][-1]["share_of_top"] == pytest.approx(1.0)


def test_a_run_compared_with_itself_is_said_to_be_the_same_run(pair):
    # `fabric compare s1 s1` drew two equal columns and two equal voices with no word that A
    # and B were one run
    a, _ = pair
    result = invoke("compare", [str(a), str(a) + "/"])
    assert result.exit_code == 0, result.output
    assert "same run" in " ".join(result.output.split())


def test_a_run_that_stopped_before_the_ablation_is_untested_not_without_specialists():
    """The default run against an interrupted no-dropout run said 'without me no head proved
    itself one' and 'pronoun specialists: none', though the final ablation that proves a head
    never ran there; the run that tore is told the same way."""
    from synthetic_runs import build_run

    from fabric_cli.views.compare import measure_rows

    calm = run_summary(build_run(0), "calm")
    stopped_events = build_run(0, dropout=0.0, specialist=False)
    end = next(e for e in stopped_events if e["type"] == "run_end")
    end.update(status="interrupted", specialists=[])
    cases = [("dropout", run_summary(stopped_events, "stopped"), "stopped at step"),
             ("engineers", run_summary(build_run(0, grad_clip=0.0, diverge_at=100,
                                                 specialist=False), "torn"), "tore at step")]
    for component, other, end_words in cases:
        cmp = compare_runs(calm, other)
        said = " ".join(s["text"] for s in speak(component, cmp))
        assert "proved itself one" not in said, said
        assert f"{end_words}" in said and "before the ablation that proves a head" in said, said
        rows = {label: b for label, _, b in measure_rows(cmp)}
        assert rows["pronoun specialists"] == "untested", rows


def test_a_run_stopped_by_hand_is_not_said_to_have_ended_close():
    """A run stopped at step 200 is compared at its last probe, and said so: no 'ended'."""
    from fabric_cli.narrate.compare_facts import derive

    done, stopped = _summary(0.8), _summary(0.5, residual=False)
    done.update(val_over_floor=1.03, status="finished", last_probe_step=10)
    stopped.update(val_over_floor=1.11, status="interrupted", last_probe_step=200)
    cmp = compare_runs(done, stopped)
    facts = derive("residual", cmp)
    assert "loss_unfinished" in facts and "same_loss" not in facts
    said = " ".join(s["text"] for s in speak("residual", cmp))
    assert "ended" not in said and "1.11× at step 200" in said, said
