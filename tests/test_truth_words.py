"""Words that must agree with the numbers beside them, found wrong in a new user's reading:
each test builds the situation from a synthetic chronicle and reads what the voice says."""

from __future__ import annotations

from synthetic_runs import build_run

from fabric_cli.narrate import tell


def _end(events: list[dict]) -> dict:
    return next(e for e in events if e["type"] == "run_end")


def test_a_head_named_for_two_roles_is_counted_once_among_the_named():
    for seed in range(4):  # each seed tells another variant; every variant gives the count
        events = build_run(seed)
        spec = dict(_end(events)["specialists"][0])
        # 3 heads hold 5 roles between them, as the default run's L0H0 and L0H2 each hold two
        _end(events)["specialists"] = [
            {**spec, "layer": 0, "head": 0, "role": "pronoun"},
            {**spec, "layer": 0, "head": 0, "role": "verb"},
            {**spec, "layer": 0, "head": 2, "role": "pronoun"},
            {**spec, "layer": 0, "head": 2, "role": "verb"},
            {**spec, "layer": 0, "head": 1, "role": "noun"}]
        story = tell(events, "head", layer=1, head=3)
        [chapter] = [c for c in story.chapters if c.title == "The Head's Perspective"]
        said = " ".join(chapter.paragraphs)
        assert "3" in said and "5" not in said, said
