"""Words a new reader of seeds 1 and 2 found at odds with the numbers or with each other:
each test builds the situation from a synthetic chronicle and reads what the voice says."""

from __future__ import annotations

from synthetic_runs import VERB_HEAD, build_run

from fabric_cli.narrate import tell


def _paragraphs(events: list[dict], **target) -> list[str]:
    return tell(events, "head", **target).text().split("\n\n")


def test_a_verb_head_crossing_its_line_is_never_called_a_binder():
    # seed 2's L0H0 and L2H2: "By step 300 my verb score read 0.47 ... *A binder.*", a word the
    # story keeps for heads that bind a pronoun to its noun
    told = []
    for seed in range(12):  # each seed picks another variant of the crossing
        told += [p for p in _paragraphs(build_run(seed), layer=VERB_HEAD[0], head=VERB_HEAD[1])
                 if "verb score" in p and "over" in p]
    assert told
    assert not [p for p in told if "binder" in p], told


def test_a_second_pronoun_is_never_said_to_go_the_same_way_whatever_its_verdict():
    # seed 2's L1H0: 'I look from "she" and find "professor" with 0.501. Bound where it
    # belongs. "her" too: "king", 0.793. A dropped stitch.' -- "too" after a hit, for a miss
    told = []
    for seed in range(12):
        for layer, head in ((1, 2), (0, 0), (1, 0)):
            told += [p for p in _paragraphs(build_run(seed), layer=layer, head=head)
                     if "their" in p and "they" in p]
    assert told
    assert not [p for p in told if '" too:' in p], told
