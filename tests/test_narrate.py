"""The narrators tell only what the chronicle measured, the same way every time."""

from __future__ import annotations

import copy
import io
import math
import re

import pytest
from rich.console import Console
from synthetic_runs import build_run, resumed_run, write_chronicle
from typer.testing import CliRunner

from fabric_cli.narrate import NARRATORS, plain_log, tell, ticker_line

RUNS = {
    "healthy0": {"seed": 0},
    "healthy1": {"seed": 1},
    "no_specialist": {"seed": 2, "specialist": False},
    "no_clipping": {"seed": 3, "clipping": False},
    "diverged": {"seed": 4, "diverge_at": 120},
    "no_dropout": {"seed": 5, "dropout": 0.0},
}
EVENTS = {name: build_run(**kw) for name, kw in RUNS.items()}
COMPONENTS = list(NARRATORS)
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?%?|\d+(?:,\d{3})*(?:\.\d+)?%?")


def _walk(value, out: list[float]) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        out.append(float(value))
    elif isinstance(value, dict):
        for v in value.values():
            _walk(v, out)
    elif isinstance(value, list):
        for v in value:
            _walk(v, out)


def _r3(x: float) -> float:
    return float(f"{x:.3g}")


def allowed_numbers(events: list[dict]) -> tuple[set[float], set[float]]:
    """Every number in the chronicle (3 significant digits, exact integers, percentages), plus
    the few the narrators count or derive, computed here independently from the events."""
    raw: list[float] = []
    _walk(events, raw)
    start = events[0]
    steps = [e for e in events if e["type"] == "step"]
    end = next((e for e in events if e["type"] == "run_end"), None)
    derived = [len(start["vocab"]), math.log(len(start["vocab"])),
               sum(1 for s in steps if s["clipped"]),
               start["model"]["n_layers"] * start["model"]["n_heads"],
               2 * start["model"]["n_layers"] + 1]
    for probe in (e for e in events if e["type"] == "probe"):
        derived += [len(s["tokens"]) for s in probe["snapshots"]]
    if end is not None and isinstance(end["final_val_loss"], float):
        derived.append(abs(end["final_val_loss"] - end["floor"]["train"]))
    values = [v for v in raw + derived if math.isfinite(v)]
    plain = {_r3(v) for v in values} | {v for v in values if v == int(v)}
    percent = {_r3(v * 100) for v in values}
    return plain, percent


SCIENTIFIC = re.compile(r"(-?\d+(?:\.\d+)?) × 10\^(-?\d+)")  # how format.sig writes tiny figures


def unmeasured(text: str, events: list[dict]) -> list[str]:
    plain, percent = allowed_numbers(events)
    bad = [m[0] for m in SCIENTIFIC.finditer(text)
           if _r3(float(m[1]) * 10 ** int(m[2])) not in plain]
    text = SCIENTIFIC.sub(" ", text)
    for token in NUMBER.findall(text):
        if token.endswith("%"):
            ok = _r3(float(token[:-1])) in percent
        else:
            x = float(token.replace(",", ""))
            ok = x in plain or _r3(x) in plain
        if not ok:
            bad.append(token)
    return bad


@pytest.mark.parametrize("run", list(RUNS))
@pytest.mark.parametrize("component", COMPONENTS)
def test_every_number_told_was_measured_in_that_run(run: str, component: str) -> None:
    events = EVENTS[run]
    text = tell(events, component).text()
    assert unmeasured(text, events) == []


@pytest.mark.parametrize("component", [*COMPONENTS, None])
def test_a_real_training_run_is_told_with_measured_numbers_only(tiny_run_master, component):
    """Not a synthetic chronicle: the tiny scenario really trained in this test session."""
    import json

    lines = (tiny_run_master / "chronicle.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    story = tell(events, component)
    text = story.text()
    assert unmeasured(text, events) == []
    assert sum(len(ch.paragraphs) for ch in story.chapters) >= 3
    assert unmeasured("\n".join(plain_log(events)), events) == []


@pytest.mark.parametrize("run", list(RUNS))
def test_plain_log_and_ticker_lines_carry_only_measured_numbers(run: str) -> None:
    events = EVENTS[run]
    lines = plain_log(events)
    moments = [e for e in events if e["type"] == "moment"]
    assert len(lines) >= len(moments) + 1
    assert unmeasured("\n".join(lines), events) == []
    for moment in moments:
        line = ticker_line(moment, events[0]["seed"])
        # every place shows a ticker line after its moment's step (the live panel, the plain
        # ticker, the report), so the line does not open with that step again
        shown = f"step {moment['step']:,}: {line}"
        steps = [moment["step"], *(v for k, v in moment["data"].items() if k.endswith("step"))]
        assert any(f"{s:,}" in shown for s in steps), shown
        opening = line.split(": ", 1)[1]
        own = f"tep {moment['step']:,}"
        assert not opening.startswith((f"S{own}", f"At s{own}")), line
        assert unmeasured(line, events) == []


def test_plain_log_shows_a_story_sentence_as_typed() -> None:
    events = copy.deepcopy(EVENTS["healthy0"])
    snap = next(e for e in events if e["type"] == "moment" and e["kind"] == "first_snap")
    snap["data"]["sentence"] = ("the scientists published their findings after they "
                                "completed the experiment .")
    line = next(line for line in plain_log(events) if "first_snap" in line)
    assert ("sentence \u201cThe scientists published their findings after they completed "
            "the experiment.\u201d") in line
    assert "experiment ." not in line


def test_plain_log_tells_interruptions_where_they_happened() -> None:
    lines = plain_log(resumed_run(EVENTS["healthy0"], 120, 200))
    steps = [int(line.split()[1].replace(",", "")) for line in lines if line.startswith("step")]
    assert steps == sorted(steps), "\n".join(lines)
    told = [line.split()[1:3] for line in lines]
    assert told.index(["120", "interrupted"]) + 1 == told.index(["120", "resumed"])
    assert told.index(["200", "interrupted"]) + 1 == told.index(["200", "resumed"])
    assert lines[-1].split()[2] == "run_end"


def test_plain_log_says_a_diverged_runs_losses_are_its_last_probes() -> None:
    """A run that broke at step 120 ends with the losses of its last probe, before the
    storm: the log says when they were measured, never that they were the run's final loss."""
    events = EVENTS["diverged"]
    last_probe = max(e["step"] for e in events if e["type"] == "probe")
    end = plain_log(events)[-1]
    assert last_probe < 120 and "final loss" not in end, end
    assert f"loss at the last probe (step {last_probe})" in end, end
    assert "final loss" in plain_log(EVENTS["healthy0"])[-1]


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_voice_tells_at_least_three_paragraphs_of_numbers(component: str) -> None:
    story = tell(EVENTS["healthy0"], component)
    numbered = [p for c in story.chapters for p in c.paragraphs if NUMBER.search(p)]
    assert len(numbered) >= 3, story.text()


def test_the_same_run_is_told_byte_for_byte_the_same() -> None:
    for component in COMPONENTS:
        once = tell(EVENTS["healthy0"], component).text()
        again = tell(copy.deepcopy(EVENTS["healthy0"]), component).text()
        assert once == again


def test_another_seed_reads_differently() -> None:
    def words(run: str, component: str) -> str:
        return NUMBER.sub("#", tell(EVENTS[run], component).text())

    differ = [c for c in COMPONENTS if words("healthy0", c) != words("healthy1", c)]
    assert "ensemble" in differ and "head" in differ
    assert len(differ) >= len(COMPONENTS) - 2


def test_the_snap_is_told_with_its_step_weight_and_antecedent() -> None:
    events = EVENTS["healthy0"]
    snap = next(e for e in events if e.get("kind") == "first_snap")
    story = tell(events, "head")
    text = story.text()
    assert "Finding My Focus" in [c.title for c in story.chapters]
    assert f"Step {snap['step']:,}" in text or f"step {snap['step']:,}" in text
    assert f"{snap['data']['weight']:.3g}" in text and '"professor"' in text
    assert story.title.startswith(f"L{snap['layer']}H{snap['head']}")


def test_a_head_that_never_specialised_says_it_stayed_diffuse() -> None:
    story = tell(EVENTS["no_specialist"], "head")
    titles = [c.title for c in story.chapters]
    assert "Finding My Focus" not in titles and "Specialisation" not in titles
    assert "Staying Diffuse" in titles and "Searching" in titles
    assert "pulled tight" not in story.text() and "snapped" not in story.text()


def test_any_head_tells_what_it_truly_became() -> None:
    # never named specialist, though its verb score (0.75) cleared the bar: not "diffuse"
    verb = tell(EVENTS["healthy0"], "head", layer=0, head=1).text()
    assert "Specialisation" not in verb and "diffuse" not in verb.lower()
    assert "0.75" in verb and "named" in verb


def test_clipping_is_told_only_when_it_happened() -> None:
    healthy, calm = EVENTS["healthy0"], EVENTS["no_clipping"]
    n = sum(1 for e in healthy if e["type"] == "step" and e["clipped"])
    told = tell(healthy, "engineers").text()
    assert n > 0 and re.search(rf"\b{n:,} (steps|times)\b", told), told
    calm_story = tell(calm, "engineers")
    calm_text = calm_story.text()
    assert not any(e["type"] == "step" and e["clipped"] for e in calm)
    assert "worst stretch" not in calm_text.lower() and "cut it back" not in calm_text
    assert "gale" not in calm_text and "reined" not in calm_text
    assert any(t.needs == "never_clipped" for t in calm_story.told)


def test_a_diverged_run_is_a_storm_with_no_inference() -> None:
    events = EVENTS["diverged"]
    head = tell(events, "head")
    titles = [c.title for c in head.chapters]
    assert "The Storm" in titles and not any("Inference" in t for t in titles)
    assert "not-a-number" in tell(events, "engineers").text()
    ensemble = tell(events, None)
    assert ensemble.chapters[-1].title == "The Storm"
    assert "Inference" not in ensemble.text()


def test_without_dropout_dropout_says_it_was_not_there() -> None:
    text = tell(EVENTS["no_dropout"], "dropout").text()
    assert "0%" in text and "Not Invited" in text and "dice kept" not in text


def test_the_ensemble_is_one_story_in_the_seeds_arc() -> None:
    events = EVENTS["healthy0"]
    story = tell(events, None)
    titles = [c.title for c in story.chapters]
    assert titles[0] == "Random Beginnings" and "The Inference Dance" in titles
    assert titles.index("Finding Focus") < titles.index("Specialisation")
    voices = [v for c in story.chapters for v in c.voices]
    assert {"tokenizer", "loss", "gradient", "engineers", "L1H2"} <= set(voices)
    # the Gradient's arrival, then the Head's turn
    opening = story.chapters[0].voices
    assert opening.index("gradient") < len(opening) - 1 and opening[-1] == "L1H2"
    # one line per moment, in order; moments of one kind across heads told once together
    moments = [e for e in events if e["type"] == "moment"]
    focus = story.chapters[titles.index("Finding Focus")]
    thresholds = [m for m in moments if m["kind"] == "role_threshold"]
    by_role = {m["data"]["role"] for m in thresholds}
    assert len(focus.paragraphs) <= len(moments) - len(thresholds) + len(by_role)
    for role in by_role:  # each role's crossing is one line, however many heads crossed
        assert sum(bool(re.search(rf"\b{role} (score|line)", p)) for p in focus.paragraphs) == 1


def test_the_ensemble_never_tells_the_same_sentence_twice() -> None:
    for name, events in EVENTS.items():
        story = tell(events, None)
        sentences = [s for c in story.chapters for p in c.paragraphs
                     for s in re.split(r"(?<=[.!?*])\s+", NUMBER.sub("#", p)) if len(s) > 25]
        repeated = {s for s in sentences if sentences.count(s) > 1}
        assert not repeated, (name, repeated)


def test_five_seeds_tell_the_ensemble_and_the_head_in_different_words() -> None:
    for component in (None, "head", "gradient", "loss"):
        texts = {NUMBER.sub("#", tell(build_run(seed), component).text()) for seed in range(5)}
        assert len(texts) == 5, component


def test_the_story_renders_with_italics_not_asterisks() -> None:
    from fabric_cli.commands.narrate import draw_story

    story = tell(EVENTS["healthy0"], "head")
    out = io.StringIO()
    draw_story(Console(file=out, width=80, color_system=None), story)
    text = out.getvalue()
    assert story.title in text and "Finding My Focus" in text and "*" not in text


def _cli(args: list[str], cwd) -> object:
    import os

    from fabric_cli.cli import app
    here = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, ["narrate", *args])
    finally:
        os.chdir(here)


def test_cli_tells_the_newest_run_and_exports_markdown(tmp_path) -> None:
    write_chronicle(tmp_path / "runs" / "demo", EVENTS["healthy0"])
    result = _cli(["--component", "gradient", "--export", "story.md"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "Born in the Loss" in result.output
    assert (tmp_path / "story.md").read_text().startswith("# The Gradient")
    plain = _cli(["--plain"], tmp_path)
    assert plain.exit_code == 0 and "first_snap" in plain.output


def test_cli_unknown_component_lists_the_valid_ones(tmp_path) -> None:
    write_chronicle(tmp_path / "runs" / "demo", EVENTS["healthy0"])
    result = _cli(["--component", "teapot"], tmp_path)
    assert result.exit_code == 2
    assert "teapot" in result.output and "gradient" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_run_without_chronicle_says_how_to_make_one(tmp_path) -> None:
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    result = _cli(["--run", "runs/empty"], tmp_path)
    assert result.exit_code == 2 and "fabric train" in result.output
    missing = _cli(["--run", "runs/nowhere"], tmp_path)
    assert missing.exit_code == 2 and "no such run directory" in missing.output
    assert "`fabric train --run-dir runs/nowhere` creates it" in missing.output
    nothing = _cli([], tmp_path / "runs")
    assert nothing.exit_code == 2 and "fabric train" in nothing.output


def test_two_trackers_that_split_the_pronouns_tell_a_division_not_a_backup():
    """Two pronoun specialists: the head says which pronoun forms are its own and which its
    partner's, and the pooled accuracy, all read from the specialists' measurements."""
    from synthetic_runs import PRONOUN_HEAD, build_run

    from fabric_cli.narrate import tell

    events = build_run(0)
    end = events[-1]
    me, partner = list(PRONOUN_HEAD), [PRONOUN_HEAD[0], (PRONOUN_HEAD[1] + 1) % 4]
    base = {"role": "pronoun", "score": 0.7, "heldout_acc": 0.56, "baseline_acc": 0.5,
            "ablation": {"loss_before": 0.4, "loss_after": 1.5, "acc_before": 1.0,
                         "acc_after": 0.6}, "team_heldout_acc": 0.983}
    end["specialists"] = [
        {**base, "layer": me[0], "head": me[1], "redundant_with": [partner],
         "by_pronoun": {"she": 1.0, "her": 0.97, "he": 0.0, "his": 0.1}},
        {**base, "layer": partner[0], "head": partner[1], "redundant_with": [me],
         "by_pronoun": {"she": 0.0, "her": 0.0, "he": 1.0, "his": 0.95}},
    ]
    text = tell(events, "head", layer=me[0], head=me[1]).text()
    assert '"her" and "she"' in text and '"he" and "his"' in text
    assert "98.3%" in text
    assert "the same thread" not in text and "same stitch" not in text
    # the same pair, both carrying every form: a backup, not a division
    for sp in end["specialists"]:
        sp["by_pronoun"] = {"she": 1.0, "her": 1.0, "he": 1.0, "his": 1.0}
    text = tell(events, "head", layer=me[0], head=me[1]).text()
    twin = f"L{partner[0]}H{partner[1]}"
    assert twin in text and "98.3%" not in text and '"he" and "his"' not in text


def test_a_head_proven_only_with_its_team_does_not_claim_the_cloth_unravels_without_it():
    from synthetic_runs import PRONOUN_HEAD

    events = copy.deepcopy(build_run(0))
    end = events[-1]
    spec = next(s for s in end["specialists"] if s["role"] == "pronoun")
    spec["ablation"] = {"loss_before": 0.696, "loss_after": 0.724, "acc_before": 1.0,
                        "acc_after": 1.0}
    spec["alone_hurts"] = False
    spec["group_ablation"] = {"loss_before": 0.696, "loss_after": 2.26, "acc_before": 1.0,
                              "acc_after": 0.286}
    text = tell(events, "head", layer=PRONOUN_HEAD[0], head=PRONOUN_HEAD[1]).text()
    assert "unravels" not in text
    assert "28.6%" in text and "0.724" in text
    moment = next(e for e in events if e["type"] == "moment" and e["kind"] == "specialist")
    moment["data"].update(alone_hurts=False, group_ablation=spec["group_ablation"])
    line = ticker_line(moment, 0)
    assert "28.6%" in line and "silence me and the loss goes" not in line
    assert unmeasured(text, events) == [] and unmeasured(line, events) == []


def test_a_head_of_a_role_the_narrators_never_heard_of_speaks_of_it_plainly():
    events = copy.deepcopy(EVENTS["healthy0"])
    end = events[-1]
    for probe in (e for e in events if e["type"] == "probe"):
        for row in probe["heads"]:
            row["scores"]["determiner"] = 0.9 if (row["layer"], row["head"]) == (0, 2) else 0.1
    end["specialists"].append({"layer": 0, "head": 2, "role": "determiner", "score": 0.9,
                               "heldout_acc": None, "baseline_acc": None,
                               "ablation": {"loss_before": 0.5, "loss_after": 0.9,
                                            "acc_before": 0.8, "acc_after": 0.4},
                               "redundant_with": []})
    story = tell(events, "head", layer=0, head=2)
    text = story.text()
    assert "determiner" in text and "Specialisation" in [c.title for c in story.chapters]
    assert "None" not in text and "nothing measured" not in text


def test_every_beat_has_at_least_four_ways_to_be_told():
    """So that five seeds read differently: every phrase bank of every voice, the live
    ticker's included, holds four variants or more."""
    import importlib

    from fabric_cli.narrate.claims import Bank

    short = []
    for name in ("adam", "dropout", "engineers", "ensemble_lines", "ffn", "gradient",
                 "head_lines", "head_lines_becoming", "head_unproven", "inference", "layernorm", "loss", "residual", "softmax",
                 "tokenizer"):
        module = importlib.import_module(f"fabric_cli.narrate.{name}")
        for var, value in vars(module).items():
            if not var.isupper() or var in ("ROLE_WORDS", "COUNT_WORDS"):
                continue
            banks = value.items() if isinstance(value, dict) else [(var, value)]
            for key, bank in banks:
                is_bank = isinstance(bank, (list, Bank)) and bank and all(
                    isinstance(x, str) for x in bank)
                if is_bank and len(bank) < 4:
                    short.append(f"{name}.{var}[{key}]: {len(bank)}")
    assert short == []


def test_help_names_every_component_the_error_offers() -> None:
    """`-c bogus` lists the choices; --help names each of them, ensemble too."""
    from cli_helpers import invoke, one_line_error

    line = one_line_error(invoke("narrate", ["-c", "bogus"]))
    choices = line.split("choose one of: ", 1)[1].split(", ")
    assert "ensemble" in choices
    help_text = " ".join(invoke("narrate", ["--help"]).output.split())
    option = help_text.split("-c, --component", 1)[1].split("--layer", 1)[0]
    assert [c for c in choices if c not in option] == []


def test_the_plain_log_wraps_between_words_under_its_text_in_a_terminal(monkeypatch) -> None:
    """At 80 columns a moment's line ran on and the terminal cut words in two ('l / oss_after');
    in a terminal each line now wraps between words, past the step column; into a pipe it
    stays one line a moment, to grep."""
    import os
    import sys

    from fabric_cli.commands import narrate as command

    lines = plain_log(EVENTS["healthy0"])
    assert max(map(len, lines)) > 80
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert command._on_screen(lines) == lines
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a: os.terminal_size((80, 24)))
    shown = command._on_screen(lines)
    assert max(map(len, shown)) <= 80
    assert " ".join(" ".join(shown).split()) == " ".join(" ".join(lines).split())  # no word cut
    continued = [line for line in shown if not line.startswith("step ") and line.strip()]
    assert continued and all(line.startswith(" " * 14) for line in continued)


@pytest.mark.parametrize("voice", [["--component", "gradient"], ["--layer", "0", "--head", "1"]])
def test_plain_with_a_voice_is_an_error_not_the_whole_log_regardless(tmp_path, voice) -> None:
    """`fabric narrate --plain -c gradient` printed every moment of every component, the
    component silently dropped."""
    write_chronicle(tmp_path / "runs" / "demo", EVENTS["healthy0"])
    result = _cli(["--plain", *voice], tmp_path)
    assert result.exit_code == 2, result.output
    assert "--plain logs every moment of the run" in result.output
    assert "run_start" not in result.output
