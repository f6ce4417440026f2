"""The Head's two newer beats: its own weight changes (first and late) follow the numbers
recorded in the `step` events; the q/k map is drawn honestly from the recorded points."""

from __future__ import annotations

import copy

import pytest
from synthetic_runs import PRONOUN_HEAD, build_run

from fabric_cli.narrate import NARRATORS
from fabric_cli.narrate.facts import collect
from fabric_cli.narrate.head_lines import (
    EVEN_CORRECTION,
    FIRST_CORRECTION,
    FIRST_STILL,
    LATE_CORRECTION,
)


def _story(events):
    return NARRATORS["head"].story(collect(events), layer=PRONOUN_HEAD[0], head=PRONOUN_HEAD[1])


def _recorded(events):
    return [e for e in events if e["type"] == "step" and "weight_change" in e]


def _row(event):
    return next(r for r in event["weight_change"]
                if (r["layer"], r["head"]) == PRONOUN_HEAD)


def _templates(story, bank) -> list[str]:
    return [t.text for t in story.told if t.template in list(bank)]


@pytest.mark.parametrize("factor, word", [(2.0, "grew"), (0.5, "shrank"), (1.05, "steady"),
                                          (0.95, "steady"), (1.2, "grew"), (0.85, "shrank")])
def test_the_late_corrections_size_word_follows_the_two_means(factor, word):
    events = copy.deepcopy(build_run(0))
    first, last = _recorded(events)[0], _recorded(events)[-1]
    _row(last)["mean_abs"] = _row(first)["mean_abs"] * factor
    story = _story(events)
    for name, bank in LATE_CORRECTION.items():
        told = _templates(story, bank)
        assert len(told) == (1 if name == word else 0), (name, told)
    told = _templates(story, LATE_CORRECTION[word])[0]
    assert f"{last['step']:,}" in told and f"step {first['step']:,}" in told


def test_the_first_correction_names_the_largest_rise_and_fall_with_their_places():
    events = build_run(1)
    row = _row(_recorded(events)[0])
    story = _story(events)
    (text,) = _templates(story, FIRST_CORRECTION)
    rise, fall = row["rise"], row["fall"]
    assert f"{rise['matrix']}, row {rise['index'][0]}, column {rise['index'][1]}" in text
    assert f"{fall['matrix']}, row {fall['index'][0]}, column {fall['index'][1]}" in text
    assert "+0.0001" in text and "-0.0001" in text  # as the synthetic step stored them


def test_as_far_up_as_down_only_when_the_two_extremes_are_of_a_size():
    events = copy.deepcopy(build_run(2))
    assert _templates(_story(events), EVEN_CORRECTION)  # Adam-like: ±lr everywhere
    _row(_recorded(events)[0])["fall"]["change"] *= 0.5
    story = _story(events)
    assert _templates(story, FIRST_CORRECTION) and not _templates(story, EVEN_CORRECTION)


def test_a_first_step_that_moved_nothing_says_so():
    events = copy.deepcopy(build_run(3))
    row = _row(_recorded(events)[0])
    row["mean_abs"], row["rise"]["change"], row["fall"]["change"] = 0.0, 0.0, 0.0
    story = _story(events)
    assert _templates(story, FIRST_STILL) and not _templates(story, FIRST_CORRECTION)


def test_chronicles_without_the_new_fields_tell_neither_beat():
    events = build_run(4, new_measures=False)
    story = _story(events)
    banks = [FIRST_CORRECTION, FIRST_STILL, EVEN_CORRECTION, *LATE_CORRECTION.values()]
    assert all(not _templates(story, bank) for bank in banks)
    assert "Random Beginnings" in [c.title for c in story.chapters]


def test_five_seeds_tell_the_first_correction_in_more_than_one_way():
    texts = set()
    for seed in range(5):
        story = _story(build_run(seed))
        texts |= {t.template for t in story.told if t.template in list(FIRST_CORRECTION)}
    assert len(texts) >= 2
