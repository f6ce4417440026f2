"""A run stopped with Ctrl-C and resumed: the Engineers tell each stop once, with the step it
stopped at and the step it went on from, and the whole story keeps that sentence; a run never
stopped says nothing of it, and a run that ended stopped is told as before."""

from __future__ import annotations

import copy
import re

import pytest
from synthetic_runs import build_run, resumed_run
from test_claims import check_story

from fabric_cli.narrate import tell
from fabric_cli.narrate.format import step

STOP_WORDS = re.compile(r"\b(stop|stopped|resumed)\b", re.IGNORECASE)


def stopped_at(events: list[dict], s: int) -> list[dict]:
    """The run cut short by Ctrl-C at step `s` and never resumed."""
    end = next(e for e in events if e["type"] == "run_end")
    kept = [copy.deepcopy(e) for e in events
            if e["type"] not in ("run_end", "ablation") and e.get("step", 0) <= s]
    return kept + [{"v": 1, "type": "interrupted", "step": s, "reason": "ctrl-c",
                    "checkpoint_step": s}, {**end, "step": s, "status": "interrupted", "steps": s}]


def _sentences_naming(story, *steps: int) -> list[str]:
    """The story's sentences that name every one of `steps` ("step 1,234")."""
    found = []
    for paragraph in (p for c in story.chapters for p in c.paragraphs):
        for s in re.split(r"(?<=[.!?])\s+", " ".join(paragraph.split())):
            if all(re.search(rf"\bstep {re.escape(step(n))}\b", s) for n in steps):
                found.append(s)
    return found


@pytest.fixture(scope="module")
def long_run() -> list[dict]:
    return build_run(seed=3, steps=1500, probe_every=250)


def test_the_engineers_tell_a_resumed_stop_in_one_sentence_with_its_steps(long_run):
    events = resumed_run(long_run, 1234)
    story = tell(events, "engineers")
    said = _sentences_naming(story, 1234)
    assert len(said) == 1, story.text()
    assert "Ctrl-C" in said[0] and re.search(r"resumed", said[0]), said[0]
    assert "step 1,234" in said[0]  # written as every step is, separator and all
    assert check_story(story, events) == []


def test_the_whole_story_tells_the_stop_and_where_the_run_went_on(long_run):
    events = resumed_run(long_run, 400, 1234)
    story = tell(events)
    text = " ".join(story.text().split())
    engineers = tell(events, "engineers")
    for at in (400, 1234):
        said = _sentences_naming(engineers, at)
        assert len(said) == 1 and said[0] in text, (at, text[-2000:])
    assert text.index("step 400") < text.index("step 1,234")  # in the order they happened
    assert check_story(story, events) == []


def test_a_run_never_stopped_says_nothing_of_stopping(long_run):
    for component in ("engineers", None):
        text = tell(long_run, component).text()
        assert not STOP_WORDS.search(text), STOP_WORDS.search(text)


def test_a_run_that_ended_stopped_is_still_told_as_stopped_and_not_resumed(long_run):
    events = stopped_at(long_run, 1234)
    text = tell(events, "engineers").text()
    assert "step 1,234" in text and "Ctrl-C" in text and "ctrl-c" not in text
    assert "resumed" not in text


def test_a_stop_resumed_then_a_last_one_not_are_told_apart(long_run):
    events = stopped_at(resumed_run(long_run, 400), 1234)
    story = tell(events, "engineers")
    first, last = _sentences_naming(story, 400), _sentences_naming(story, 1234)
    assert len(first) == 1 and "resumed" in first[0]
    assert last and all("resumed" not in s for s in last)  # the last stop still stands
    assert check_story(story, events) == []
