"""The pictures: what a user would see in them, at pinned widths and without colour."""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pytest
from rich.cells import cell_len
from rich.console import Console

from fabric_cli.errors import FabricError
from fabric_cli.views.curves import loss_curve, sparkline
from fabric_cli.views.dashboard import TrainingDashboard, format_eta, plain_progress_line
from fabric_cli.views.gradflow import gradient_flow
from fabric_cli.views.headmap import head_role_map
from fabric_cli.views.heatmap import attention_heatmap, heads_grid, mini_heatmap


def words(sentence: str) -> list[str]:
    return sentence.split()


STORY = words("<bos> the king wore his crown after the scientists published their findings .")
LONG = words(
    "<bos> the old queen who ruled the northern kingdom with patience gave her heavy crown "
    "to the young scientists because they completed their long and careful experiment on the "
    "hill ."
)
WIDTHS = (40, 80, 120)


def render(renderable: object, width: int, *, color: str | None = None, height: int = 200) -> str:
    console = Console(
        file=io.StringIO(),
        width=width,
        height=height,
        color_system=color,
        force_terminal=color is not None,
        legacy_windows=False,
    )
    console.print(renderable)
    return console.file.getvalue()


def lines_of(text: str) -> list[str]:
    return text.rstrip("\n").split("\n")


def assert_fits(text: str, width: int) -> None:
    for line in lines_of(text):
        assert cell_len(line) <= width, f"line wider than {width}: {line!r}"


def causal_pattern(n: int, seed: int = 0) -> np.ndarray:
    """A random row-stochastic, lower-triangular attention pattern (T, T)."""
    rng = np.random.default_rng(seed)
    weights = np.tril(rng.random((n, n)) ** 3)
    return weights / weights.sum(axis=1, keepdims=True)


def one_hot_rows(n: int, peak: tuple[int, int], weight: float = 0.9) -> np.ndarray:
    """Every row puts a tiny weight everywhere it may look; one cell gets `weight`."""
    pattern = np.tril(np.full((n, n), 0.01))
    pattern[peak] = weight
    return pattern


# -- heatmap ----------------------------------------------------------------------------------


def grid_cells(line: str, token: str) -> tuple[str, int]:
    """The part of a heatmap row after its label ("token index "), and where it starts."""
    match = re.search(rf" {re.escape(token)} +\d+ ", line)
    assert match, line
    return line[match.end():], match.end()


def test_brightest_glyph_sits_at_the_largest_weight() -> None:
    peak = (7, 3)
    out = render(attention_heatmap(STORY, one_hot_rows(len(STORY), peak)), 120)
    solid = [ln for ln in lines_of(out) if "██" in ln and "≥" not in ln]
    assert len(solid) == 1  # no other cell reaches the top shade
    row = solid[0]
    cells, _ = grid_cells(row, STORY[peak[0]])
    assert cells.index("██") // 2 == peak[1]
    # The right margin names the strongest key and its weight.
    assert f"→ {STORY[peak[1]]}" in row and "0.90" in row


def test_causal_upper_triangle_is_blank_even_if_the_pattern_is_not() -> None:
    n = 5
    pattern = np.full((n, n), 0.5)  # a non-causal pattern: the view must not show the future
    out = render(attention_heatmap(STORY[:n], pattern, show_strongest=False), 80)
    for q, token in enumerate(STORY[:n]):
        row = next(ln for ln in lines_of(out) if re.search(rf"\s{re.escape(token)} +{q} ", ln))
        cells, _ = grid_cells(row, token)
        assert cells[: 2 * (q + 1)].count("▓") == 2 * (q + 1)
        assert set(cells[2 * (q + 1) : 2 * n]) <= {" "}


def test_expected_cell_is_marked_and_the_hit_is_checked() -> None:
    pronoun, antecedent = 4, 2  # "his" -> "king"
    pattern = one_hot_rows(len(STORY), (pronoun, antecedent), 0.8)
    out = render(attention_heatmap(STORY, pattern, mark=[(pronoun, antecedent)]), 120)
    row = next(ln for ln in lines_of(out) if " his " in ln)
    cells, _ = grid_cells(row, "his")
    assert cells.index("◆") // 2 == antecedent
    assert "→ king" in row and "✓" in row
    miss = one_hot_rows(len(STORY), (pronoun, 1), 0.8)  # looks at "the" instead
    row = next(
        ln for ln in lines_of(render(attention_heatmap(STORY, miss, mark=[(4, 2)]), 120))
        if " his " in ln
    )
    assert "→ the" in row and "✗" in row


@pytest.mark.parametrize("width", WIDTHS)
def test_long_sentence_fits_and_says_what_it_elided(width: int) -> None:
    n = len(LONG)
    assert n >= 30
    out = render(attention_heatmap(LONG, causal_pattern(n), title="L1H2 " * 20), width)
    assert_fits(out, width)
    if width == 120:
        assert "not shown" not in out  # 30 tokens in two-character cells fit in 120 columns
    narrow = render(attention_heatmap(LONG, causal_pattern(n)), 32)
    assert_fits(narrow, 32)
    shown = re.search(rf"(\d+) of {n} positions not shown", " ".join(narrow.split()))
    assert shown
    grid_rows = [ln for ln in lines_of(narrow)
                 if re.match(r"│[ ▶]\s*\S+ +\d+ [·░▒▓█◆]", ln) and "<." not in ln]
    assert len(grid_rows) == n - int(shown.group(1))  # one row per shown position


def test_narrow_view_keeps_the_expected_cell_in_sight() -> None:
    n = len(LONG)
    pronoun = LONG.index("they")
    antecedent = LONG.index("scientists")
    out = render(attention_heatmap(LONG, causal_pattern(n), mark=[(pronoun, antecedent)]), 40)
    assert "◆" in out
    assert_fits(out, 40)


def test_tokens_are_shown_literally() -> None:
    tokens = ["<bos>", "[bold]", "[/]", "\x1b[31mred", "tab\there"]
    out = render(attention_heatmap(tokens, causal_pattern(5)), 100, color="truecolor")
    assert "[bold]" in out and "[/]" in out
    assert "\x1b[31m" not in out  # the control sequence in the token never reaches the screen
    assert "[31mred" in out
    plain = render(attention_heatmap(tokens, causal_pattern(5)), 100)
    assert "\x1b" not in plain


def test_colour_is_added_on_a_terminal_and_absent_in_a_pipe() -> None:
    pattern = causal_pattern(len(STORY))
    assert "\x1b[" in render(attention_heatmap(STORY, pattern), 100, color="truecolor")
    assert "\x1b" not in render(attention_heatmap(STORY, pattern), 100)


def test_bad_shapes_are_one_clear_error() -> None:
    with pytest.raises(FabricError, match="4 key columns but 3 tokens"):
        attention_heatmap(["a", "b", "c"], np.zeros((4, 4)))
    with pytest.raises(FabricError, match="2-D"):
        attention_heatmap(["a"], np.zeros((1, 1, 1)))


def test_mini_heatmap_is_one_character_per_cell() -> None:
    pattern = one_hot_rows(4, (3, 1), 0.9)
    lines = mini_heatmap(pattern).plain.split("\n")
    assert lines == ["·   ", "··  ", "··· ", "·█··"]


@pytest.mark.parametrize("width", WIDTHS)
def test_heads_grid_labels_every_head_and_fits(width: int) -> None:
    maps = {(layer, head): causal_pattern(len(STORY), layer * 4 + head) for layer in range(2)
            for head in range(4)}
    out = render(heads_grid(maps, STORY, captions={(1, 2): "pron .82"}, highlight=[(1, 2)]),
                 width)
    assert_fits(out, width)
    for layer in range(2):
        for head in range(4):
            assert f"L{layer}H{head}" in out
    assert "★" in out and "pron .82" in out
    assert out.index("L0H0") < out.index("L1H0")  # layer 0 first, as in "L0H2"


def test_heads_grid_numbers_columns_past_nine_with_their_tens_above() -> None:
    """Twelve key columns read 0 … 9, 10, 11 downwards (tens over units), where one line
    of units, "012345678901", named the last two 0 and 1."""
    tokens = [f"w{i}" for i in range(12)]
    out = lines_of(render(heads_grid({(0, 0): causal_pattern(12)}, tokens), 80))
    units = next(i for i, line in enumerate(out) if "012345678901" in line)
    column = out[units].index("012345678901")
    assert out[units - 1][column:column + 12] == " " * 10 + "11", "\n".join(out)


def test_heads_grid_numbers_columns_past_ninety_nine_with_their_hundreds_above() -> None:
    tokens = [f"w{i}" for i in range(105)]
    out = lines_of(render(heads_grid({(0, 0): causal_pattern(105)}, tokens), 200))
    units = next(i for i, line in enumerate(out) if "01234567890123" in line)
    column = out[units].rindex("01234")  # columns 100 … 104
    assert [out[units - k][column:column + 5] for k in (2, 1, 0)] == \
        ["11111", "00000", "01234"], "\n".join(out[:units + 1])


def test_heads_grid_crops_long_sentences_and_says_so() -> None:
    maps = {(0, 0): causal_pattern(len(LONG))}
    out = render(heads_grid(maps, LONG), 20)
    assert_fits(out, 20)
    assert f"of {len(LONG)} tokens not shown" in " ".join(out.split())


# -- gradient flow ----------------------------------------------------------------------------

BAR_GLYPHS = "█▉▊▋▌▍▎▏━╸▓"


def bar_length(line: str) -> int:
    bar = line.split("▕", 1)[1] if "▕" in line else ""
    return sum(1 for ch in bar if ch in BAR_GLYPHS)


def parse_bars(out: str) -> dict[tuple[str, str], int]:
    bars, layer = {}, None
    for line in lines_of(out):
        match = re.search(r"(L\d+|embed)\s+(skip)?\s*▕", line)
        if match:
            layer = match.group(1)
            bars[(layer, "skip" if match.group(2) else "embed")] = bar_length(line)
        elif "block ▕" in line and layer is not None:
            bars[(layer, "block")] = bar_length(line)
    return bars


def test_longest_bar_belongs_to_the_biggest_norm_and_least_is_marked() -> None:
    rows = [
        {"layer": 0, "arriving": 0.2, "skip": 0.2, "block": 0.004, "leaving": 0.21},
        {"layer": 1, "arriving": 0.2, "skip": 0.2, "block": 0.9, "leaving": 1.0},
        {"layer": 2, "arriving": 0.2, "skip": 0.2, "block": 0.05, "leaving": 0.22},
    ]
    out = render(gradient_flow(rows), 80)
    bars = parse_bars(out)
    assert max(bars, key=bars.get) == ("L1", "block")
    assert min(bars, key=bars.get) == ("L0", "block")
    least = next(ln for ln in lines_of(out) if "least" in ln)
    assert "0.004" in least
    assert out.index("L2 skip") < out.index("L1 skip") < out.index("L0 skip")  # top layer first
    # One shared log scale: equal norms draw equal bars, a 10× larger norm a longer one.
    assert bars[("L0", "skip")] == bars[("L1", "skip")] == bars[("L2", "skip")]
    assert bars[("L2", "block")] < bars[("L0", "skip")] < bars[("L1", "block")]


def test_gradient_flow_names_zero_and_nan_instead_of_drawing_them() -> None:
    rows = [{"layer": 0, "arriving": 0.0, "skip": 0.0, "block": float("nan"), "leaving": 0.0},
            {"layer": 1, "arriving": 1.0, "skip": 1.0, "block": "inf", "leaving": 1.0}]
    out = render(gradient_flow(rows, embed=1e-7), 80)
    assert "no gradient" in out and "not a number" in out and "inf" in out
    assert "1.0e-07" in out
    assert "no gradient measured yet" in render(gradient_flow([]), 80)


@pytest.mark.parametrize("width", WIDTHS)
def test_gradient_flow_fits(width: int) -> None:
    rows = [{"layer": i, "arriving": 0.5, "skip": 0.5, "block": 10.0 ** -i, "leaving": 0.6}
            for i in range(6)]
    out = render(gradient_flow(rows, embed=0.3), width)
    assert_fits(out, width)
    assert "L5 skip" in out and "0.5" in out


# -- curves -----------------------------------------------------------------------------------


def plot_rows(out: str) -> list[str]:
    """The curve's plot lines (between the frame's top and the step axis), frame stripped."""
    inner = [ln[2:] for ln in lines_of(out)[1:]]
    end = next(i for i, ln in enumerate(inner) if "└" in ln)
    return inner[:end]


def test_floor_line_is_drawn_on_the_row_of_the_floor() -> None:
    steps = list(range(101))
    losses = [3.0 - 2.0 * s / 100 for s in steps]  # 3.0 down to 1.0, so lo = 1, hi = 3
    floor, height = 2.2, 10
    out = render(loss_curve(steps, losses, floor=floor, width=70, height=height), 80)
    rows = plot_rows(out)
    assert len(rows) == height
    expected = round((3.0 - floor) / (3.0 - 1.0) * (4 * height - 1)) // 4
    labelled = [i for i, row in enumerate(rows) if "floor 2.200" in row]
    dashed = [i for i, row in enumerate(rows) if "╌" in row]
    assert labelled == [expected] and dashed == [expected]
    # The highest loss is drawn on the top row, the lowest on the bottom row.
    assert re.search("[\u2801-\u28ff]", rows[0]) and re.search("[\u2801-\u28ff]", rows[-1])
    assert "3.00" in rows[0] and "1.00" in rows[-1]


def test_curve_marks_validation_points_and_moments() -> None:
    steps = list(range(1, 201))
    losses = [2.0 + math.exp(-s / 30) for s in steps]
    out = render(loss_curve(steps, losses, floor=1.9, val=[(100, 2.1), (200, 2.05)],
                            marks=[(120, "first snap")], width=80), 80)
    assert out.count("●") == 3  # two points and the legend
    assert "▲120 first snap" in out and "validation" in out
    assert "step 200" in out


@pytest.mark.parametrize("width", WIDTHS)
def test_curve_fits_and_handles_missing_data(width: int) -> None:
    steps = list(range(500))
    losses = [4.0 / (1 + s / 50) if s != 250 else float("nan") for s in steps]
    out = render(loss_curve(steps, losses, floor=1.234, marks=[(100, "x" * 200)],
                            width=width), width)
    assert_fits(out, width)
    assert "floor 1.234" in out
    assert "no loss measured yet" in render(loss_curve([], [], floor=None), width)
    assert "not a number" in render(loss_curve([1, 2], [float("nan")] * 2, floor=1.0), width)


def test_sparkline_follows_the_values() -> None:
    line = sparkline(list(range(100)), 20)
    assert len(line) == 20
    assert line[0] == "▁" and line[-1] == "█"
    assert list(line) == sorted(line, key="▁▂▃▄▅▆▇█".index)
    assert sparkline([1.0, float("nan"), 3.0], 10) == "▁ █"
    assert sparkline([], 10) == ""


# -- head map ---------------------------------------------------------------------------------

HEADS = [
    {"layer": 0, "head": 0, "role": "prev", "score": 0.71, "heldout_acc": None, "ablation": None,
     "specialist": False},
    {"layer": 0, "head": 1, "role": "first", "score": 0.92, "heldout_acc": None,
     "ablation": None, "specialist": False},
    {"layer": 1, "head": 0, "role": "[bold]", "score": 0.3, "heldout_acc": None,
     "ablation": None, "specialist": False},
    {"layer": 1, "head": 1, "role": "pronoun", "score": 0.82, "heldout_acc": 0.91,
     "ablation": {"loss_before": 1.2, "loss_after": 1.85, "acc_before": 0.91, "acc_after": 0.42},
     "specialist": True},
]


@pytest.mark.parametrize("width", WIDTHS)
def test_head_map_shows_roles_scores_and_evidence(width: int) -> None:
    out = render(head_role_map(HEADS, 2, 3), width)
    assert_fits(out, width)
    flat = " ".join(out.split())
    for words in ("previous token", "first token", "pronoun tracker", "[bold]", "score 0.82",
                  "held-out 91%", "loss 1.20→1.85", "acc 91%→42%", "★", "—"):
        assert words in flat, words
    # The specialist's evidence is on the pronoun tracker, not beside the other heads.
    if width == 120:
        row = next(ln for ln in lines_of(out) if "previous token" in ln)
        assert "pronoun" not in row


def test_head_map_never_calls_all_what_is_not_all() -> None:
    """A held-out accuracy of 99.6% reads 99.6%, where ':.0%' said 100%; a true 100% stays."""
    heads = [dict(HEADS[-1], heldout_acc=0.996,
                  ablation={"loss_before": 1.2, "loss_after": 1.85, "acc_before": 1.0,
                            "acc_after": 0.004})]
    flat = " ".join(render(head_role_map(heads, 2, 3), 120).split())
    assert "held-out 99.6%" in flat and "acc 100%→0.4%" in flat, flat


def test_a_figure_short_of_one_is_never_written_as_one() -> None:
    """A softmax weight of 0.9996 'held 1 on one word' and a gradient ratio of 0.9996 '1 of
    the strength': 3 significant digits take more where they would round to one whole."""
    from fabric_cli.narrate.format import pct, sig

    assert [sig(x) for x in (0.9996, 1.0, 1.0004, 0.996)] == ["0.9996", "1", "1.0004", "0.996"]
    assert [pct(x) for x in (0.9996, 1.0, 0.483)] == ["99.96%", "100%", "48.3%"]


def test_whole_percentages_take_the_digits_that_keep_them_true() -> None:
    from fabric_cli.narrate.format import whole_pct

    assert [whole_pct(x) for x in (0.483, 0.996, 0.9996, 1.0, 0.0, 0.004)] == \
        ["48%", "99.6%", "99.96%", "100%", "0%", "0.4%"]


# -- dashboard --------------------------------------------------------------------------------


def full_dashboard() -> TrainingDashboard:
    board = TrainingDashboard(title="fabric · pronouns", total=600, floor=1.234)
    for step in range(1, 301):
        board.update(step=step, loss=1.3 + 2.8 * math.exp(-step / 80), eta=(600 - step) * 0.1,
                     tokens_per_s=5321.0)
    board.update(val_loss=1.41)
    board.update(grad_flow=[{"layer": 0, "arriving": 0.8, "skip": 0.8, "block": 0.03,
                             "leaving": 1.0},
                            {"layer": 1, "arriving": 0.5, "skip": 0.5, "block": 0.3,
                             "leaving": 0.8}], grad_embed=1.1)
    board.set_head(1, 2, STORY, one_hot_rows(len(STORY), (4, 2)), score=0.82, mark=[(4, 2)])
    board.add_moment("head", "I snapped onto 'king' from 'his' with weight 0.90.")
    board.add_moment("gradient", "I reach L0 faintly: [bold]0.03[/bold].")
    return board


@pytest.mark.parametrize("width", WIDTHS)
def test_dashboard_renders_before_any_history(width: int) -> None:
    out = render(TrainingDashboard(total=600, floor=1.234), width)
    assert_fits(out, width)
    assert "step 0/600" in out and "no loss measured yet" in out
    assert "no gradient measured yet" in out and "no moments yet" in out


@pytest.mark.parametrize("width", WIDTHS)
def test_dashboard_renders_full_state(width: int) -> None:
    board = full_dashboard()
    out = render(board, width)
    assert_fits(out, width)
    flat = " ".join(out.split())
    for words in ("step 300/600", "50%", "val 1.410", "floor 1.234", "5.3k tok/s",
                  "ETA 0:30", "L1H2", "◀ least", "Gradient", "[bold]0.03[/bold]"):
        assert words in flat, words
    # Rendering again after a change shows the change (the cache is keyed by version).
    board.update(step=301, loss=1.25)
    assert "step 301/600" in render(board, width) and "loss 1.250" in render(board, width)


def test_dashboard_gives_up_the_heatmap_on_a_short_terminal() -> None:
    board = full_dashboard()
    tall, short = render(board, 120, height=200), render(board, 120, height=30)
    assert "pronoun score 0.82" in tall
    assert "pronoun score 0.82" not in short and "Moments" in short
    assert len(lines_of(short)) <= 30


def test_dashboard_ticker_keeps_the_last_five_moments() -> None:
    board = TrainingDashboard(total=10)
    for i in range(8):
        board.add_moment("adam", f"moment number {i}")
    out = render(board, 120)
    assert "moment number 2" not in out
    assert all(f"moment number {i}" in out for i in range(3, 8))
    assert "Adam" in out


@pytest.mark.parametrize("width", (80, 120))
def test_steps_past_a_thousand_are_written_one_way_everywhere(width: int) -> None:
    """The narrators write "step 1,400"; the header, the moments and the maps say the same."""
    board = TrainingDashboard(title="fabric · pronouns", total=2000, floor=1.234)
    for step in range(1, 1401):
        board.update(step=step, loss=1.3 + 2.8 * math.exp(-step / 80), eta=60.0,
                     tokens_per_s=5321.0)
    board.set_head(1, 2, STORY, one_hot_rows(len(STORY), (4, 2)), score=0.82, mark=[(4, 2)])
    board.add_moment("head", "L1H2: Step 1,400, proven a noun head.", step=1400)
    out = render(board, width)
    assert_fits(out, width)
    assert "step 1,400/2,000" in out and "· step 1,400" in out and "1,400 " in out
    assert "1400" not in out and "2000" not in out
    line = plain_progress_line(1120, 1400, 1.3, 1.27, 1.226, 21000.0, 4.0)
    assert line.startswith("step 1,120/1,400 ")
    assert plain_progress_line(140, 1400, 1.6, 1.7, 1.226, 2e4, 16.0).startswith("step   140/1,400 ")


def test_the_plain_training_log_writes_steps_as_the_narrators_do() -> None:
    from synthetic_runs import build_run

    from fabric_cli.commands.live import PlainTicker

    console = Console(file=io.StringIO(), width=80, color_system=None)
    ticker = PlainTicker(console)
    for event in build_run(0, steps=2000, probe_every=500):
        ticker.on_event(event)
    out = console.file.getvalue()
    assert "2,000 steps" in out and "step 2,000/2,000" in out and "  step 2,000: " in out
    assert not re.search(r"\b\d{4}\b", out), out


def test_plain_progress_line_is_plain() -> None:
    line = plain_progress_line(42, 600, 2.3456, 2.5, 1.234, 5321.0, 3723.0)
    assert "\x1b" not in line and "\n" not in line
    assert "step  42/600" in line and "loss 2.346" in line and "val 2.500" in line
    assert "floor 1.234 (+1.112)" in line and "5.3k tok/s" in line and "eta 1:02:03" in line
    storm = plain_progress_line(30, 300, 10287000000.0, 5.1, 1.226, 12000.0, 7.0)
    assert "loss 1.029e+10" in storm and "floor 1.226 (+1.029e+10)" in storm  # not 11 digits
    early = plain_progress_line(0, 600, None, None, None, None, None)
    assert "loss —" in early and "eta --:--" in early
    assert format_eta(41.4) == "0:41"


def test_the_plain_progress_line_names_the_step_of_a_validation_loss_measured_earlier() -> None:
    # `fabric train --steps 50 | cat`: "step 50/50 ... loss 2.185  val 5.100", the 5.1 of the
    # step-0 probe shown beside step 50's loss as if measured now
    line = plain_progress_line(50, 50, 2.185, 5.1, 1.226, 1e4, 0.0, val_step=0)
    assert "val 5.100 (step 0)" in line
    fresh = plain_progress_line(100, 1400, 1.6, 1.7, 1.226, 2e4, 16.0, val_step=100)
    assert "val 1.700  " in fresh and "(step" not in fresh
