"""`fabric heads` as a learner reads it at 80, 100 and 120 columns: one legend for every
frame of a timeline, and table cells that break between facts, never inside one."""

from __future__ import annotations

import re

import pytest
from cli_helpers import runner

from fabric_cli.cli import app


def heads_output(args: list[str], width: int) -> str:
    result = runner.invoke(app, ["heads", *args], env={"COLUMNS": str(width), "NO_COLOR": "1"})
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result.output


def legends(out: str) -> list[str]:
    """Each frame's legend line: the shade scale and the marks."""
    return [line.strip("│ ") for line in out.splitlines() if re.search(r"0…1|<\.05", line)]


@pytest.mark.parametrize("width", (80, 100, 120))
@pytest.mark.parametrize("head", ("0.0", "0.1"))
def test_every_frame_of_a_timeline_has_the_same_legend(tiny_run_master, width: int,
                                                       head: str) -> None:
    out = heads_output(["--run", str(tiny_run_master), "--timeline", head], width)
    shown = legends(out)
    assert len(shown) >= 4 and "×" in out  # several frames, and a pronoun that missed
    assert len(set(shown)) == 1, shown
    assert "× " in shown[0]  # the legend keys the miss mark, in every frame


def specialist(layer: int, head: int, role: str, score: float, acc: tuple[float, float],
               heldout: float | None = None) -> dict:
    return {"layer": layer, "head": head, "role": role, "score": score, "specialist": True,
            "heldout_acc": heldout, "ablation": {"loss_before": 0.72, "loss_after": 0.78,
                                                 "acc_before": acc[0], "acc_after": acc[1]}}


PRONOUNS_HEADS = [  # what the pronouns run's first layer became: four specialists
    specialist(0, 0, "pronoun", 0.91, (1.0, 1.0), heldout=1.0),
    specialist(0, 1, "noun", 0.42, (0.81, 0.81)),
    specialist(0, 2, "verb", 0.93, (1.0, 1.0)),
    specialist(0, 3, "verb", 0.92, (1.0, 1.0)),
    *({"layer": 1, "head": h, "role": "diffuse", "score": 0.3} for h in range(4)),
]


def cell_lines(out: str) -> list[str]:
    """Every line of every head's cell in the grid (the layer column left out)."""
    return [cell.strip() for row in out.splitlines() if row.startswith("│")
            for cell in row.strip("│").split("│")[1:]]


@pytest.mark.parametrize("width", (80, 90, 100, 110, 120))
def test_head_cells_break_between_facts_and_word_roles_alike(width: int) -> None:
    from test_views import assert_fits, render

    from fabric_cli.views.headmap import head_role_map

    out = render(head_role_map(PRONOUNS_HEADS, 2, 4, max_width=width), width)
    assert_fits(out, width)
    lines = [line for line in cell_lines(out) if line]
    for line in lines:  # a fact and its numbers on one line: never "acc" alone
        words = line.split()
        if "acc" in words or "loss" in words:
            assert "→" in line, f"{line!r} in\n{out}"
        if "→" in line:
            assert "acc" in words or "loss" in words, f"{line!r} in\n{out}"
    assert "pronoun tracker" in out or "◆ pronoun ★" in out
