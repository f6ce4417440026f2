"""What a learner notices in the pictures, at the widths where they used to fall short:
the floor gap at the end of the loss chart, the heatmap at 80×24, one head followed, the
gradient's roads told apart without colour, readable attention labels."""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pytest
from test_views import STORY, assert_fits, grid_cells, lines_of, one_hot_rows, render

from fabric_cli.commands.live import HeadFollower, LivePicture
from fabric_cli.views.curves import loss_curve
from fabric_cli.views.dashboard import TrainingDashboard
from fabric_cli.views.gradflow import GradientScale, gradient_flow
from fabric_cli.views.heatmap import attention_heatmap, heads_grid

FLOOR = 1.182
SENTENCE = ["<bos>", "the", "professor", "finished", "her", "lecture", "."]


def converging_run(steps: int = 1200, seed: int = 0) -> tuple[list[int], list[float]]:
    """A loss that falls from 4.7 to within a few hundredths of the floor, with batch noise."""
    rng = np.random.default_rng(seed)
    xs = list(range(1, steps + 1))
    losses = [FLOOR + 0.04 + 3.5 * math.exp(-s / 60) + rng.normal(0, 0.03) for s in xs]
    return xs, losses


def plot_lines(out: str) -> list[str]:
    rows = lines_of(out)[1:]
    return rows[: next(i for i, row in enumerate(rows) if "└" in row)]


# -- the loss chart ---------------------------------------------------------------------------


@pytest.mark.parametrize("width", (40, 80, 120, 200))
def test_the_gap_to_the_floor_is_readable_at_the_last_step(width: int) -> None:
    steps, losses = converging_run()
    val = [(s, FLOOR + 0.014 + 3.4 * math.exp(-s / 60)) for s in range(0, 1201, 50)]
    out = render(loss_curve(steps, losses, floor=FLOOR, val=val, width=width, height=8,
                            gap=True), width)
    assert_fits(out, width)
    rows = plot_lines(out)
    assert len(rows) == 8
    # the last validation point (+0.014) and the end of the train line (about +0.04) sit on
    # different rows: the distance to the floor still reads at the end
    last_val_row = max(i for i, row in enumerate(rows) if row.rstrip(" │").endswith("●"))
    braille = [i for i, row in enumerate(rows) if re.search("[\u2801-\u28ff]", row[-8:])]
    assert braille and min(braille) < last_val_row
    # every labelled row names nats above the floor, and they fall from top to bottom
    labels = [float(m.group(1)) for row in rows if (m := re.search(r"\+(\d[\d.e-]*) ┤", row))]
    assert len(labels) >= 2 and labels == sorted(labels, reverse=True)
    assert labels[0] == pytest.approx(max(losses[:5]) - FLOOR, rel=0.3)
    assert labels[-1] < 0.05
    if width >= 80:  # narrower, the "+" of every label is what says "above the floor"
        assert "above the entropy floor" in out or "above floor" in out


def test_linear_axis_labels_the_floor_row_with_the_floor() -> None:
    steps, losses = converging_run()
    out = render(loss_curve(steps, losses, floor=FLOOR, width=80, height=10), 80)
    row = next(r for r in plot_lines(out) if "floor 1.182" in r)
    assert "1.18 ┤" in row  # not a neighbouring value such as 1.13


# -- gradient flow ----------------------------------------------------------------------------

ROWS = [{"layer": 0, "arriving": 0.0119, "skip": 0.0119, "block": 0.113, "leaving": 0.114},
        {"layer": 1, "arriving": 0.0122, "skip": 0.0122, "block": 0.0029, "leaving": 0.0119}]


def bar_of(out: str, label: str) -> str:
    line = next(ln for ln in lines_of(out) if label in ln)
    return line.split("▕", 1)[1].split("  ")[0].strip()


def test_skip_and_block_are_told_apart_without_colour_and_embed_is_in_the_legend() -> None:
    out = render(gradient_flow(ROWS, embed=0.114), 80)
    skip, block = bar_of(out, "L1 skip"), bar_of(out, "   block")
    assert set(skip) <= set("━╸") and set(block) <= set("█▉▊▋▌▍▎▏")
    assert "━ residual skip" in out and "█ attention + MLP block" in out and "▓ embeddings" in out
    assert "skip + block (added as vectors) is what flows on to the layer below" in out
    assert "0.0119 on to L0" in out  # L1's sum is what arrives at L0 as its skip


def test_the_axis_holds_still_across_frames() -> None:
    scale = GradientScale()
    first = [dict(r, block=0.5) for r in ROWS]  # a large early gradient widens the axis
    scale.update(first, 0.6)
    scale.update(ROWS, 0.114)
    lengths = []
    for rows in (first, ROWS):
        out = render(gradient_flow(rows, embed=0.114, scale=scale.span), 80)
        lengths.append(len(bar_of(out, "L1 skip")))
    assert lengths[0] == lengths[1]  # the same 0.0122 draws the same bar in both frames
    unpinned = [len(bar_of(render(gradient_flow(rows, embed=0.114), 80), "L1 skip"))
                for rows in (first, ROWS)]
    assert unpinned[0] != unpinned[1]  # which is what a rescaling axis would have done


def test_many_layers_in_compact_keep_top_bottom_and_weakest() -> None:
    rows = [{"layer": i, "skip": 0.1, "block": 0.1 if i != 7 else 1e-4, "leaving": 0.1}
            for i in range(12)]
    out = render(gradient_flow(rows, compact=True, max_layers=3), 44)
    assert "L11 skip" in out and "L0 skip" in out and "L7 skip" in out
    assert "layers not shown" in out and "◀ least" in out
    assert len(lines_of(out)) <= 14


# -- attention --------------------------------------------------------------------------------


@pytest.mark.parametrize("width", (40, 80, 120, 200))
def test_labels_are_horizontal_whole_words_with_an_index_row(width: int) -> None:
    pattern = one_hot_rows(len(SENTENCE), (4, 2), 0.8)
    out = render(attention_heatmap(SENTENCE, pattern, mark=[(4, 2)], title="L0H0"), width)
    assert_fits(out, width)
    assert "professor 2" in out  # the whole word, beside its index
    index_row = next(ln for ln in lines_of(out) if re.search(r"0 1 2 3 4 5 6|0123456", ln))
    assert index_row
    # the pronoun's row is flagged, and what it chose is said with its verdict
    row = next(ln for ln in lines_of(out) if " her 4 " in ln)
    assert "▶" in row and "◆" in row
    assert "→ professor" in out and "✓" in out


def test_index_header_keeps_two_digit_positions_apart() -> None:
    tokens = [f"w{i}" for i in range(14)]
    out = render(attention_heatmap(tokens, one_hot_rows(14, (13, 1))), 80)
    assert "9101112" not in out.replace(" ", "") or "1 1 1" in out  # tens over units
    assert re.search(r"1 1 1 1", out)


@pytest.mark.parametrize("width", (80, 120))
def test_every_head_map_is_labelled(width: int) -> None:
    maps = {(0, h): one_hot_rows(len(STORY), (4, 2)) for h in range(4)}
    out = render(heads_grid(maps, STORY, width), width)
    assert "king 2" in out or "king" in out
    # the column index row names the positions, so a cell can be found without colour
    assert re.search(r"0123456789", out.replace(" ", ""))


# -- the dashboard ----------------------------------------------------------------------------


def board_after_a_run(n_layers: int = 2) -> TrainingDashboard:
    board = TrainingDashboard(title="fabric train · pronouns", total=1200, floor=FLOOR)
    steps, losses = converging_run()
    for s, loss in zip(steps, losses, strict=True):
        board.update_progress(s, eta=0.0, tokens_per_s=40000.0)
        board.add_loss(s, loss)
        if s % 50 == 0:
            board.add_val(s, FLOOR + 0.014 + 3.4 * math.exp(-s / 60))
    rows = [dict(ROWS[i % 2], layer=i) for i in range(n_layers)]
    board.set_grad_flow(rows, embed=0.114)
    board.set_head(0, 0, SENTENCE, one_hot_rows(len(SENTENCE), (4, 2), 0.8), score=0.88,
                   mark=[(4, 2)])
    for i in range(6):
        board.add_moment("loss", f"moment {i}: I lie flat at 1.29 from step 292 to 563.")
    return board


@pytest.mark.parametrize("layers", (2, 12))
def test_80x24_keeps_the_heatmap_the_curve_and_the_moments(layers: int) -> None:
    out = render(board_after_a_run(layers), 80, height=24)
    assert len(lines_of(out)) <= 24
    assert_fits(out, 80)
    assert "L0H0" in out and " her 4 " in out and "→ professor" in out  # the heatmap, whole
    assert "above the floor" in out and "Gradient flow" in out and "Moments" in out
    assert "moment 5" in out  # the newest moment
    assert "..." not in out  # nothing cut off by the terminal


def test_tall_terminal_gets_the_full_picture() -> None:
    out = render(board_after_a_run(), 120, height=40)
    assert len(lines_of(out)) <= 40
    assert "↓ sum" in out and "(log scale)" in out and "pronoun score 0.88" in out


def tiny_probe(step: int, scores: dict[tuple[int, int], float]) -> dict:
    return {"type": "probe", "step": step, "val_loss": 1.3,
            "heads": [{"layer": lay, "head": h, "scores": {"pronoun": s}}
                      for (lay, h), s in scores.items()],
            "snapshots": [{"tokens": SENTENCE, "pronouns": [[4, 2]],
                           "patterns": {f"{lay}.{h}": one_hot_rows(len(SENTENCE), (4, 2)).tolist()
                                        for (lay, h) in scores}}]}


def test_one_head_is_followed_and_never_swapped_for_a_weaker_one() -> None:
    follower = HeadFollower()
    seen = [follower.choose(tiny_probe(0, {(0, 0): 0.12, (0, 3): 0.11}))]
    seen.append(follower.choose(tiny_probe(50, {(0, 0): 0.13, (0, 3): 0.2})))  # a small lead
    seen.append(follower.choose(tiny_probe(100, {(0, 0): 0.8, (0, 3): 0.5})))
    seen.append(follower.choose(tiny_probe(150, {(0, 0): 0.8, (0, 3): 0.82})))
    assert seen == [(0, 0)] * 4
    assert follower.choose(tiny_probe(200, {(0, 0): 0.3, (0, 3): 0.9})) == (0, 3)  # clearly


def test_the_live_picture_follows_one_head_through_a_real_run(tiny_run_master) -> None:
    from rich.console import Console

    picture = LivePicture(Console(width=80, height=24, color_system=None))
    shown = []
    for line in (tiny_run_master / "chronicle.jsonl").read_text().splitlines():
        event = json.loads(line)
        picture.on_event(event)
        if event["type"] == "probe" and picture.dashboard.head is not None:
            shown.append((picture.dashboard.head["layer"], picture.dashboard.head["head"]))
    assert shown
    switches = sum(1 for a, b in itertools.pairwise(shown) if a != b)
    assert switches <= 2


class _Clock:
    """A clock the test moves: the events and the redraws take the time they are given."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _TimedLive:
    def __init__(self, clock: _Clock, cost: float) -> None:
        self.clock, self.cost, self.at = clock, cost, []

    def refresh(self) -> None:
        self.at.append(self.clock.now)
        self.clock.now += self.cost

    def stop(self) -> None:
        pass


@pytest.mark.parametrize("probes", [True, False])
@pytest.mark.parametrize("cost", [0.002, 0.008, 0.04])
def test_the_live_picture_keeps_to_its_share_of_the_time_and_shows_every_moment_soon(
        tiny_run_master, monkeypatch, cost, probes) -> None:
    """Steps every 20 ms; a redraw costs `cost`. Redraws that no probe or moment asked for
    take at most DRAWING_SHARE of the time and come at most 4 a second; a probe or moment is
    on screen within BURST_SECONDS and one step of its arrival. (Without the probes, the
    tiny run's steady redraws are not cut short by a probe every 0.5 s.)"""
    from rich.console import Console

    from fabric_cli.commands import live

    clock = _Clock()
    monkeypatch.setattr(live.time, "perf_counter", clock)
    picture = LivePicture(Console(width=80, height=24, color_system=None))
    picture.live = drawn = _TimedLive(clock, cost)
    urgent_at, steps_at = [], []
    for line in (tiny_run_master / "chronicle.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] in ("probe", "moment", "ablation") and not probes:
            continue
        if event["type"] in ("probe", "moment"):
            urgent_at.append(clock.now)
        elif event["type"] == "step":
            steps_at.append(clock.now)
        picture.on_event(event)
        clock.now += 0.020 if event["type"] == "step" else 0.003
    picture.stop()  # as `fabric train` does at the end: the last burst is drawn
    assert len(steps_at) > 50 and bool(urgent_at) is probes
    for t in urgent_at:
        assert any(t <= r <= t + live.BURST_SECONDS + 0.025 for r in drawn.at), t
    # a redraw no probe or moment asked for waits the refresh interval, or longer when a
    # redraw costs more than DRAWING_SHARE of that interval (the last is stop()'s)
    steady = [(prev, r) for prev, r in itertools.pairwise(drawn.at[:-1])
              if not any(prev < t <= r for t in urgent_at)]
    wait = max(live.REFRESH_SECONDS, cost / live.DRAWING_SHARE)
    assert steady or probes
    assert min((r - prev for prev, r in steady), default=wait) >= wait - 1e-9
    span = steps_at[-1] - steps_at[0]
    assert len(steady) * cost <= 0.03 * span + cost  # the picture's budget: 3% of the run
    if wait == live.REFRESH_SECONDS:  # a cheap redraw: about four a second, not fewer
        assert len(drawn.at) >= 0.8 * span / (live.REFRESH_SECONDS + 0.020)


# -- wrapping at the widths where it went wrong ----------------------------------------------


def test_corpus_keeps_every_words_tag_at_80_columns() -> None:
    from cli_helpers import runner

    from fabric_cli.cli import app

    result = runner.invoke(app, ["corpus", "-n", "30"], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0
    tags = {"DET", "NOUN", "PRON", "VERB", "ADJ", "ADV", "CONJ", "PREP", "PUNCT"}
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    blocks = "\n".join(lines).split("\n\n")
    sentences = [b for b in blocks if re.match(r"\s+\d+  ", b)]
    assert len(sentences) == 30
    for block in sentences:
        rows = block.splitlines()
        word_rows = [r for r in rows if not set(r.split()) <= tags and "→" not in r
                     and r.split()[0] not in ("object:", "agrees:")]
        tag_rows = [r for r in rows if r.split() and set(r.split()) <= tags]
        n_words = sum(len(r.split()) for r in word_rows) - 1  # the sentence number
        assert sum(len(r.split()) for r in tag_rows) == n_words, block


@pytest.mark.parametrize("command", (["narrate"], ["infer", "The professor finished her lecture."]))
def test_prose_keeps_a_readable_measure_at_200_columns(tiny_run_master, command) -> None:
    from cli_helpers import runner

    from fabric_cli.cli import app

    args = [*command, "--run", str(tiny_run_master)]
    result = runner.invoke(app, args, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    if command[0] == "infer":  # the head's account, under its "L0H0 speaks" rule
        lines = lines[next(i for i, line in enumerate(lines) if " speaks " in line) + 1:]
    prose = [line for line in lines if len(line.split()) > 8 and not set(line) & set("│┃━─╭╰")]
    assert prose and max(len(line.rstrip()) for line in prose) <= 90


def test_infer_table_keeps_each_cell_on_one_line_at_80_columns(tiny_run_master) -> None:
    from cli_helpers import runner

    from fabric_cli.cli import app

    result = runner.invoke(app, ["infer", "The professor finished her lecture.", "--run",
                                 str(tiny_run_master)], env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if "looks at" in line)
    row = lines[header + 1]
    assert row.startswith("her") and re.search(r"\S+ \d+(\.\d+)?%\s*$", row)  # "professor 99.5%"
    assert not lines[header + 2].strip()  # nothing of the row spilled onto a second line
    assert "…" not in row


def test_the_training_summary_wraps_between_words_in_a_terminal(monkeypatch) -> None:
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from fabric_cli.commands import train

    out = io.StringIO()
    monkeypatch.setattr(train, "stdout_console", lambda: Console(
        file=out, width=80, force_terminal=True, color_system=None))
    train._print_ending(SimpleNamespace(
        status="finished", steps=1200, seconds=54.7, run_dir="/tmp/runs/pronouns-entropy",
        summary={"floor": {"train": 1.182}, "final_val_loss": 1.196, "specialists": []}))
    words = set(" ".join(out.getvalue().split()).split(" "))
    assert {"nats,", "entropy", "floor"} <= words  # no word cut in two at the edge
    assert all(len(line) <= 80 for line in out.getvalue().splitlines())


def test_head_map_at_80_columns_keeps_every_fact_on_one_line() -> None:
    from fabric_cli.views.headmap import head_role_map

    proof = {"loss_before": 0.7, "loss_after": 2.26, "acc_before": 1.0, "acc_after": 0.29}
    heads = [{"layer": 0, "head": h, "role": "pronoun", "score": 0.8, "heldout_acc": 1.0,
              "specialist": True, "ablation": proof, "team_ablation": proof} for h in range(4)]
    out = render(head_role_map(heads, 1, 4), 80)
    assert_fits(out, 80)
    assert out.count("loss 0.70→2.26") == 8 and out.count("acc 100%→29%") == 8
    assert out.count("pronoun ★") == 4  # name and star together, not the star on its own line


def test_the_dashboard_keeps_one_gradient_axis_from_frame_to_frame() -> None:
    board = board_after_a_run()
    lengths = []
    for rows in ([dict(r, block=0.5) for r in ROWS], ROWS):
        board.set_grad_flow(rows, embed=0.114)
        lengths.append(len(bar_of(render(board, 120, height=40), "L1 skip")))
    assert lengths[0] == lengths[1] > 0  # the same 0.0122, the same bar


@pytest.mark.parametrize("width", (34, 80))
def test_a_missed_pronoun_shows_its_pick_beside_the_expected_antecedent(width: int) -> None:
    out = render(attention_heatmap(SENTENCE, one_hot_rows(len(SENTENCE), (4, 3), 0.6),
                                   mark=[(4, 2)]), width)
    row = next(ln for ln in lines_of(out) if " her 4 " in ln)
    cells, _ = grid_cells(row, "her")
    assert cells.index("◆") // 2 == 2 and cells.index("×") // 2 == 3  # expected, then chosen
    assert "→ finished" in out and "✗" in out
    hit = render(attention_heatmap(SENTENCE, one_hot_rows(len(SENTENCE), (4, 2), 0.6),
                                   mark=[(4, 2)]), width)
    assert "×" not in hit


def test_the_smoothed_loss_is_the_exponential_moving_average() -> None:
    from fabric_cli.views.curves import SMOOTHING, _ema

    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 1.0, 2500)
    values[[3, 1000, 1999]] = np.nan
    expected, state = values.copy(), None
    for i, v in enumerate(values):  # the definition, one step at a time
        if math.isfinite(v):
            state = v if state is None else state + SMOOTHING * (v - state)
            expected[i] = state
    got = _ema(values, SMOOTHING)
    finite = np.isfinite(values)
    assert np.allclose(got[finite], expected[finite], rtol=0, atol=1e-12)
    assert np.isnan(got[~finite]).all()


@pytest.mark.parametrize(("width", "height"), ((40, 60), (80, 24), (120, 40), (200, 50)))
def test_the_dashboard_fits_and_keeps_the_followed_heads_map(width: int, height: int) -> None:
    out = render(board_after_a_run(), width, height=height)
    assert len(lines_of(out)) <= height
    assert_fits(out, width)
    assert "L0H0" in out and " her 4 " in out and "◆" in out
