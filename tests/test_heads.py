"""`fabric heads`: roles from the last probe against the moments' bars, specialists with their
ablation, the timeline replayed from the probe snapshots, and clean errors."""

from __future__ import annotations

import json
import os
import re
import time

import numpy as np
import pytest
from cli_helpers import invoke as cli_invoke
from cli_helpers import one_line_error

from fabric_cli.analysis.roles import ROLES, head_roles, head_timeline, sample_frames
from fabric_cli.analysis.runs import latest_run_dir
from fabric_cli.chronicle import read_events
from fabric_cli.errors import FabricError
from fabric_cli.training.moments import MomentThresholds


def invoke(args, **kw):
    return cli_invoke("heads", args, **kw)


@pytest.fixture(scope="module")
def events(tiny_run_master):
    return list(read_events(tiny_run_master / "chronicle.jsonl"))


def test_roles_follow_the_bars_and_the_specialists(events):
    bar = MomentThresholds(role_thresholds={**MomentThresholds().role_thresholds,
                                            "pronoun": 0.4}).role_threshold
    rows = head_roles(events, bar)
    probe = [e for e in events if e["type"] == "probe"][-1]
    end = [e for e in events if e["type"] == "run_end"][-1]
    proven = {(s["layer"], s["head"]) for s in end["specialists"]}
    assert len(rows) == len(probe["heads"])
    for row, h in zip(rows, probe["heads"], strict=True):
        if (row["layer"], row["head"]) in proven:
            assert row["specialist"] and row["role"] == "pronoun" and row["ablation"]
            continue
        shares = probe.get("role_shares")
        cleared = [r for r in ROLES if h["scores"][r] >= bar(r, shares)]
        if not cleared:
            assert row["role"] == "diffuse"
        else:  # the role cleared by the widest margin
            best = max(cleared, key=lambda r: h["scores"][r] - bar(r, shares))
            assert row["role"] == best
    # an unreachable bar leaves every unproven head diffuse
    rows = head_roles(events, lambda role, shares: 2.0)
    assert all(r["role"] == "diffuse" for r in rows if not r["specialist"])


def test_cli_map_shows_roles_specialist_and_ablation(tiny_run_master, events):
    result = invoke(["--run", str(tiny_run_master)])
    assert result.exit_code == 0, result.output
    assert "pronoun tracker" in result.output and "★" in result.output
    assert "zeroed" in result.output and "L0" in result.output
    doc = json.loads(invoke(["--run", str(tiny_run_master), "--json"]).stdout)
    assert doc["schema_version"] == 1 and doc["n_heads"] == 2
    assert any(h["specialist"] and h["role"] == "pronoun" for h in doc["heads"])


def test_timeline_replays_every_probe_snapshot(events, tiny_run_master):
    frames = head_timeline(events, 0, 1, 0)
    probes = [e for e in events if e["type"] == "probe" and e.get("snapshots")]
    assert [f["step"] for f in frames] == [p["step"] for p in probes]
    assert np.allclose(frames[-1]["pattern"], probes[-1]["snapshots"][0]["patterns"]["0.1"])
    assert frames[-1]["score"] == probes[-1]["heads"][1]["scores"]["pronoun"]
    result = invoke(["--run", str(tiny_run_master), "--timeline", "0.1"])
    assert result.exit_code == 0, result.output
    shown = sample_frames(len(frames))
    assert shown[0] == 0 and shown[-1] == len(frames) - 1 and len(shown) <= 6
    assert f"step {frames[-1]['step']:,}" in result.output and "step 0 " in result.output
    assert result.output.count("probe ") == len(shown)


def test_a_timeline_leads_with_the_score_of_the_heads_own_role(events):
    """A head the map shows in another role than pronoun tracker (a verb head, a
    previous-token head) shows that role's score in each frame, not only the pronoun's."""
    import io

    from rich.console import Console

    from fabric_cli.commands.heads import _frame

    frames = head_timeline(events, 0, 1, 0)
    assert set(frames[-1]["scores"]) >= {"pronoun", "verb", "prev"}

    def facts(role):
        console = Console(file=io.StringIO(), width=200, no_color=True)
        console.print(_frame(frames[-1], (0, 1), len(frames) - 1, len(frames), 200, role))
        return console.file.getvalue().splitlines()[0]

    verb, prev = frames[-1]["scores"]["verb"], frames[-1]["scores"]["prev"]
    assert f"· verb score {verb:.2f} · pronoun score" in facts("verb")
    assert f"· previous token score {prev:.2f} · pronoun score" in facts("prev")
    assert "verb score" not in facts("pronoun") and "verb score" not in facts("diffuse")


def test_timeline_titles_the_sentence_as_typed(events, tiny_run_master, tmp_path):
    sentence = head_timeline(events, 0, 1, 0)[0]["sentence"]
    typed = sentence[0].upper() + sentence[1:-2] + "."  # "the king ... ." as typed
    assert sentence.endswith(" .")
    target = tmp_path / "tl.txt"
    result = invoke(["--run", str(tiny_run_master), "--timeline", "0.1", "--export", str(target)])
    assert result.exit_code == 0, result.output
    for shown in (result.output, target.read_text()):
        assert f"on: \u201c{typed}\u201d" in shown
        assert sentence not in shown


def test_a_timeline_too_narrow_for_its_title_still_shows_the_whole_sentence(events):
    import io

    from rich.console import Console

    from fabric_cli.commands.heads import _frame

    frames = head_timeline(events, 0, 1, 0)
    sentence = frames[0]["sentence"]
    typed = sentence[0].upper() + sentence[1:-2] + "."
    console = Console(file=io.StringIO(), width=40, color_system=None)
    console.print(_frame(frames[0], (0, 1), 0, len(frames), console.width))
    flat = " ".join(console.file.getvalue().split())
    assert f"\u201c{typed}\u201d" in flat, flat


@pytest.mark.parametrize("args, words", [
    (["--timeline", "zero"], "LAYER.HEAD"),
    (["--timeline", "3.0"], "no head 3.0"),
    (["--timeline", "0.1", "--sentence", "5"], "--sentence 5"),
    (["--export", "map.pdf"], "map.pdf"),
])
def test_bad_options_are_one_line(tiny_run_master, args, words):
    assert words in one_line_error(invoke(["--run", str(tiny_run_master), *args]))


def test_missing_run_and_missing_chronicle(tiny_run, tmp_path):
    assert "nowhere" in one_line_error(invoke(["--run", str(tmp_path / "nowhere")]))
    (tiny_run / "chronicle.jsonl").unlink()
    assert "chronicle.jsonl" in one_line_error(invoke(["--run", str(tiny_run)]))


def test_export_text(tiny_run_master, tmp_path):
    target = tmp_path / "heads.txt"
    assert invoke(["--run", str(tiny_run_master), "--export", str(target)]).exit_code == 0
    assert "pronoun tracker" in target.read_text()


def test_latest_run_dir_picks_the_newest_and_names_the_fix(tmp_path):
    with pytest.raises(FabricError, match="fabric train"):
        latest_run_dir(tmp_path / "runs")
    for i, name in enumerate(("old", "new")):
        (tmp_path / "runs" / name).mkdir(parents=True)
        path = tmp_path / "runs" / name / "chronicle.jsonl"
        path.write_text("{}\n")
        stamp = time.time() - 100 + 50 * i
        os.utime(path, (stamp, stamp))
    assert latest_run_dir(tmp_path / "runs").name == "new"


def test_a_head_proven_in_two_roles_is_shown_in_the_one_it_is_best_at():
    scores = {"pronoun": 0.9, "verb": 0.95, "noun": 0.1, "prev": 0.1, "self": 0.1, "first": 0.1}
    heads = [{"layer": 0, "head": h, "scores": dict(scores)} for h in range(2)]
    effect = {"loss_before": 1.0, "loss_after": 1.5, "acc_before": 1.0, "acc_after": 0.5}

    def proven(head, role, best):
        return {"layer": 0, "head": head, "role": role, "score": scores[role], "best": best,
                "ablation": effect}

    events = [
        {"type": "run_start", "step": 0, "model": {"n_layers": 1, "n_heads": 2}},
        {"type": "probe", "step": 10, "heads": heads, "role_shares": {"verb": 0.2}},
        {"type": "run_end", "step": 10, "specialists": [
            proven(0, "pronoun", True), proven(0, "verb", False),
            proven(1, "pronoun", False), proven(1, "verb", True)]},
    ]
    rows = head_roles(events, MomentThresholds().role_threshold)
    # each head is the best of one role: two distinct roles in two distinct heads
    assert [(r["head"], r["role"]) for r in rows] == [(0, "pronoun"), (1, "verb")]
    assert all(r["specialist"] for r in rows)


def test_each_proven_role_names_one_best_head(events):
    end = [e for e in events if e["type"] == "run_end"][-1]
    roles = {sp["role"] for sp in end["specialists"]}
    assert "pronoun" in roles
    for role in roles:
        mine = [sp for sp in end["specialists"] if sp["role"] == role]
        (best,) = [sp for sp in mine if sp["best"]]
        if role == "pronoun":  # the most accurate on held-out pairs
            assert best["heldout_acc"] == max(sp["heldout_acc"] for sp in mine)


def test_the_maps_caption_keeps_each_fact_on_a_line_of_its_own(tiny_run_master):
    # at 80 columns the caption read "... hurts · score:" with "attention mass on its cells"
    # folded beneath, the word apart from its meaning
    from typer.testing import CliRunner

    from fabric_cli.cli import app

    result = CliRunner().invoke(app, ["heads", "--run", str(tiny_run_master)],
                                env={"COLUMNS": "80", "NO_COLOR": "1"})
    lines = [line.strip() for line in result.output.splitlines()]
    assert "score: attention mass on its cells" in lines, result.output
    assert not [line for line in lines if line.endswith("score:")], result.output


def test_fps_nan_is_one_line_not_a_bug(tiny_run_master):
    """`--fps nan` slipped past the range 0.5..30 and broke the replay in a terminal."""
    line = one_line_error(cli_invoke("heads", ["--run", str(tiny_run_master), "--timeline",
                                               "0.1", "--fps", "nan"]))
    assert line == "fabric: error: --fps: expected frames per second from 0.5 to 30, got nan"


def test_the_role_bars_break_only_between_roles(tiny_run_master):
    """At 80 columns the bars line broke inside "prev 0.60" ("prev / 0.60"); it breaks only
    between roles now, and every line fits."""
    from typer.testing import CliRunner

    from fabric_cli.cli import app

    for width in (50, 80, 120):
        result = CliRunner().invoke(app, ["heads", "--run", str(tiny_run_master)],
                                    env={"COLUMNS": str(width), "NO_COLOR": "1"})
        tail = result.output[result.output.index("a role needs"):].splitlines()
        assert all(len(line) <= width for line in tail), tail
        assert all(re.match(r"^(a role|\w+ \d\.\d\d|otherwise)", line) for line in tail), tail


@pytest.mark.parametrize("option, value", [("--sentence", "1"), ("--fps", "8")])
def test_a_timeline_option_without_timeline_is_an_error_not_silently_dropped(
        tiny_run_master, option, value):
    """`fabric heads --sentence 1` drew the role map as if the option were not there."""
    for extra in ([], ["--qk", "0.0"]):
        line = one_line_error(invoke(["--run", str(tiny_run_master), option, value, *extra]))
        assert f"{option} goes with --timeline L.H" in line, line
        assert f"fabric heads --timeline 0.0 {option} {value}" in line, line


def test_the_map_of_a_run_stopped_before_its_ablation_says_why_no_head_has_a_star(tmp_path):
    """An interrupted run's map showed the ★ legend over no ★ at all, as if no head had
    passed; the ablation that gives ★ never ran, and the map now says so."""
    from synthetic_runs import build_run, write_chronicle

    events = [e for e in build_run(0) if e["type"] != "ablation"]
    end = next(e for e in events if e["type"] == "run_end")
    end.update(status="interrupted", specialists=[])
    chronicle = write_chronicle(tmp_path / "cut", events)
    out = invoke(["--run", str(chronicle.parent)]).output
    assert "no ★ yet: the run stopped at step 300, before the ablation that proves a head" \
        in " ".join(out.split()), out
    finished = write_chronicle(tmp_path / "whole", build_run(0))
    assert "no ★ yet" not in invoke(["--run", str(finished.parent)]).output
