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
