"""`fabric infer --ablate` with the tracker itself silenced: the head introduces its own silence
once, then gives each pronoun's figures, whichever way each pronoun's share went."""

from __future__ import annotations

import re

import pytest

from fabric_cli.analysis.inference import infer_sentence, inference_json, load_run
from fabric_cli.narrate.claims import FACTS
from fabric_cli.narrate.format import pct
from fabric_cli.narrate.inference import inference_account

# Two pronouns whose antecedents the tiny language knows (professor: she, king: his).
SENTENCE = "The professor met the king and she saw his"
# Every way the head opens its own silence (the banks' first words; "Without me, ..." etc.)
INTRODUCTIONS = re.compile(r"Without me|Silence me|They silenced|Zeroing|went silent|"
                           r"With L\d+H\d+ silenced")
AGAIN = re.compile(r"\b(too|also|again|as well)\b")  # "as before" is before the silence
SHARES = {"fell": 0.4, "kept": 0.01, "same": 0.0}  # how much of its share each pronoun loses


@pytest.fixture(scope="module")
def silenced_doc(tiny_run_master) -> dict:
    run = load_run(tiny_run_master)
    doc = inference_json(run, infer_sentence(run, SENTENCE),
                         ablated=infer_sentence(run, SENTENCE, ablate=[run.tracker]))
    assert len(doc["resolutions"]) == 2 and len(doc["ablation"]["resolutions"]) == 2
    return doc


def _with_shares(doc: dict, first: str, second: str) -> dict:
    """The measured document, with each pronoun's share after the silence set as named (and
    its expected owner unchanged, so only the shares tell)."""
    import copy

    doc = copy.deepcopy(doc)
    for how, a, b in zip((first, second), doc["resolutions"], doc["ablation"]["resolutions"],
                         strict=True):
        noun = a["antecedent"]["token"]
        b["owner_mass"] = dict(a["owner_mass"])
        b["owner_mass"][noun] = round(max(a["owner_mass"][noun] - SHARES[how], 0.0), 6)
        b["expects_owner"] = a["expects_owner"]
        b["heard"], b["head"] = True, a["head"]
    for a, b in zip(doc["predictions"], doc["ablation"]["predictions"], strict=True):
        b["top"] = a["top"]  # no changed choice either: the paragraph is the shares alone
    return doc


@pytest.mark.parametrize("first, second", [(a, b) for a in SHARES for b in SHARES])
def test_the_tracker_introduces_its_own_silence_once_then_each_pronouns_figures(
        silenced_doc, first, second):
    doc = _with_shares(silenced_doc, first, second)
    paragraphs, told = inference_account(doc)
    paragraph = paragraphs[-1]
    assert len(INTRODUCTIONS.findall(paragraph)) == 1, paragraph
    second_pronoun = f'"{doc["resolutions"][1]["pronoun"]}"'
    assert INTRODUCTIONS.search(paragraph).start() < paragraph.index(second_pronoun)
    for a, b in zip(doc["resolutions"], doc["ablation"]["resolutions"], strict=True):
        noun = a["antecedent"]["token"]
        assert f'"{a["pronoun"]}"' in paragraph
        assert pct(b["owner_mass"][noun]) in paragraph, paragraph  # its own figure, after
    if first == "fell":  # "too", "also": as if the first pronoun had kept its share
        assert not AGAIN.search(paragraph), paragraph
    for entry in told:  # every qualitative word still stands on its numbers
        if entry.needs is not None:
            assert entry.claim is not None and entry.claim.name == entry.needs
            assert FACTS[entry.needs].test(**entry.claim.values), entry.text
