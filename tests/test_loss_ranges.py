"""The Loss never tells two stretches of steps that overlap.

Issue 12's default run told "Then I fell, from 1.55 to 1.45, by step 383." beside "Steps 340
to 440: slow, near 1.45": a slow stretch that began while the fall was still being told. The
losses of two real default runs (tests/data/default_run_losses.json) are replayed through the
moment detector, as `fabric train` feeds it, and the Loss's calms and falls are told from them.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
from synthetic_runs import build_run
from test_moments import TH, feed_steps, probe_event, step_event

from fabric_cli.narrate import tell
from fabric_cli.narrate.ensemble_lines import DROP as E_DROP
from fabric_cli.narrate.ensemble_lines import PLATEAU_LOST as E_LOST
from fabric_cli.narrate.ensemble_lines import PLATEAU_WORKING as E_WORKING
from fabric_cli.narrate.loss import DROP, PLATEAU_LOST, PLATEAU_WORKING
from fabric_cli.training.moments import MomentDetector

REAL = json.loads((Path(__file__).parent / "data" / "default_run_losses.json").read_text())
LOSS_KINDS = ("loss_plateau", "loss_drop")


def _replay(losses: list[float], floor: float | None) -> list[dict]:
    detector = MomentDetector(TH, 2, 2)
    if floor is not None:
        detector.on_probe(probe_event(0, floor=floor))  # the probe at step 0 brings the floor
    moments = feed_steps(detector, [step_event(i + 1, loss=x) for i, x in enumerate(losses)])
    return moments + detector.finish()


def _overlaps(ranges: list[tuple[int, int]]) -> list[tuple]:
    """Pairs of (first, last) step ranges that share more than an end step."""
    return [(a, b) for i, a in enumerate(ranges) for b in ranges[i + 1:]
            if a[0] < b[1] and b[0] < a[1]]


STRETCH = re.compile(r"steps? (\d[\d,]*) (?:to|and) (?:step )?(\d[\d,]*)", re.IGNORECASE)
AT_STEP = re.compile(r"step (\d[\d,]*)", re.IGNORECASE)


def _span(text: str) -> tuple[int, int]:
    """The steps a told calm or fall spans, as a reader takes them: "steps 340 to 440" is
    (340, 440); a fall told only "by step 383" is (383, 383)."""
    found = STRETCH.search(text)
    steps = [int(n.replace(",", "")) for n in (found.groups() if found else
                                                AT_STEP.findall(text))]
    return min(steps), max(steps)


def _told_ranges(story, banks) -> list[tuple[int, int]]:
    return [_span(t.text) for t in story.told if any(t.template in bank for bank in banks)]


@pytest.mark.parametrize("seed", sorted(REAL["losses"]))
def test_a_real_default_runs_calms_and_falls_never_overlap(seed):
    moments = [m for m in _replay(REAL["losses"][seed], REAL["floor_train"])
               if m["kind"] in LOSS_KINDS]
    assert any(m["kind"] == "loss_plateau" for m in moments)  # there is something to tell
    assert _overlaps([(m["data"]["start_step"], m["data"]["end_step"]) for m in moments]) == []
    # told by the Loss and by the ensemble, from a chronicle that carries these moments
    events = [e for e in copy.deepcopy(build_run(int(seed)))
              if e.get("kind") not in LOSS_KINDS]
    events[1:1] = moments  # the narrators sort moments by step
    loss = tell(events, "loss")
    loss_told = _told_ranges(loss, (DROP, PLATEAU_LOST, PLATEAU_WORKING))
    calms = next(c for c in loss.chapters if c.title == "Calms and Falls").paragraphs
    spans = [_span(p) for p in calms]
    assert len(spans) == len(loss_told) and spans == sorted(spans)  # told as they happened
    chorus = tell(events, None)
    ensemble_told = _told_ranges(chorus, (E_DROP, E_LOST, E_WORKING))
    assert len(ensemble_told) == len(moments)
    assert _overlaps(loss_told) == [] and _overlaps(ensemble_told) == [], chorus.text()


def test_a_fall_into_a_new_calm_starts_the_calm_where_the_fall_is_told_to_end():
    """The shape of the real runs: flat at 1.55, a fall of 6%, then flat again at 1.45. The
    slow stretch's band (5% of its low) reaches back into the fall; it may not begin there."""
    rng = np.random.default_rng(4)
    t = np.arange(1, 701)
    loss = np.where(t < 100, 3.0 - 1.45 * t / 100, 1.55)
    loss = np.where((t >= 300) & (t < 340), 1.55 - 0.1 * (t - 300) / 40, loss)
    loss = np.where(t >= 340, 1.45, loss) + 0.005 * rng.standard_normal(t.size)
    moments = _replay([float(x) for x in loss], floor=1.0)
    ranges = {m["kind"]: [] for m in moments}
    for m in moments:
        ranges[m["kind"]].append((m["data"]["start_step"], m["data"]["end_step"]))
    (drop,) = ranges["loss_drop"]
    assert len(ranges["loss_plateau"]) == 2
    assert ranges["loss_plateau"][1][0] >= drop[1]  # the second calm starts after the fall
    assert _overlaps(sorted(r for rs in ranges.values() for r in rs)) == []
