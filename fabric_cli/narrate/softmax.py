"""Softmax's voice: the lens that turns scores into attention, blurred at first, then sharp.

Numbers: the sharpest weight in any story-sentence pattern at the first and last probe, the
pronoun head's weight on the antecedent in those snapshots, the first_snap weight and its
runner-up, d_head (the scores are divided by its square root).
"""

from __future__ import annotations

import math

from fabric_cli.narrate.common import moment_values, pronoun_pairs, sharpest, token
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, head_name, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "Softmax"
COLOUR = "bright_yellow"

TITLES = ["Softmax: From Murmur to Certainty", "Softmax: The Lens That Learned to Focus"]
EPIGRAPH = [
    "I am Softmax. Give me any scores and I return a tide that sums to one.",
    "I am Softmax, the lens every head looks through.",
]
INTRO = [
    ("Every head hands me its scores, already divided by the square root of its width, "
    "{d_head}, and I turn each row into weights that sum to one. {n} heads, "
    "every word, every step. *Exponentiate, normalise, let the strongest pull.*"),
    ("I sit inside each of the {n} heads: query meets key, the score is shrunk by the square "
    "root of {d_head}, and I make a distribution of it."),
]
BLUR = [
    ("At the first probe, step {at}, no head in any story sentence gave any word more than "
    "{sharp} of its attention. I could only refine confusion."),
    ("Step {at}: the sharpest weight I produced anywhere in the story sentences was {sharp}. "
    "*A murmur, evenly spread.*"),
]
SHARP = [
    "By the last probe, step {at}, the sharpest weight was {sharp}. {italic}",
    "At step {at} my sharpest row put {sharp} on a single word. {italic}",
]
SHARPER = ["*Certainty, where there was a murmur.*", "*The lens has found its focus.*"]
BLUNTER = ["*No sharper than I began: the heads never gave me scores worth trusting.*"]
SNAP = [
    ("At step {step} I did what I was made for: in {who} the score for \"{antecedent}\" stood "
    "out, and I turned it into {weight} of the attention from \"{pronoun}\", leaving "
    "\"{runner_up}\" with {runner_up_weight}."),
    ("Step {step}, inside {who}: from \"{pronoun}\", {weight} to \"{antecedent}\", "
    "{runner_up_weight} to \"{runner_up}\". A small gap in scores; I make gaps wide."),
]
HEAD_ROW = [
    ("In {who}, from \"{pronoun}\" in *{sentence}*, I gave \"{antecedent}\" {early} at step "
    "{early_at} and {late} at step {late_at}."),
    ("Watch {who}'s row for \"{pronoun}\": {early} on \"{antecedent}\" at step {early_at}, "
    "{late} by step {late_at}."),
]
NO_SNAP = [("No head's attention locked onto an antecedent in this run; the chronicle marks no "
           "such moment, and I will not pretend one.")]

MOMENT_LINES: dict[str, list[str]] = {}


def _sharpest(probe: dict | None) -> float:
    values = [sharpest(pattern) for snap in RunFacts.snapshots(probe)
              for pattern in (snap.get("patterns") or {}).values()]
    values = [v for v in values if not math.isnan(v)]
    return max(values) if values else float("nan")


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    m = run.model
    n = int(m.get("n_layers", 0)) * int(m.get("n_heads", 0))
    chapters = [Chapter("The Lens", [voice.say("intro", INTRO, d_head=m.get("d_head", "?"),
                                               n=n)])]
    first, last = run.first_probe, run.last_probe
    if first is not None:
        chapters[0].paragraphs.append(voice.say("blur", BLUR, at=step(first["step"]),
                                                sharp=sig(_sharpest(first))))
    paras = []
    snap = run.first_moment("first_snap")
    if snap is not None:
        paras.append(voice.say("snap", SNAP, **moment_values(snap)))
    else:
        paras.append(voice.pick("no-snap", NO_SNAP))
    # The row to watch: the head that snapped, else the run's pronoun head.
    target = (int(snap["layer"]), int(snap["head"])) if snap is not None and snap.get(
        "layer") is not None else run.pronoun_head()
    if target is not None and first is not None and last is not None and last is not first:
        layer, head = target
        for s_first, s_last in zip(run.snapshots(first), run.snapshots(last)):
            pairs = pronoun_pairs(s_last)
            a, b = run.pattern(s_first, layer, head), run.pattern(s_last, layer, head)
            if not pairs or a is None or b is None:
                continue
            p, ante = pairs[0]
            paras.append(voice.say("row", HEAD_ROW, who=head_name(layer, head),
                                   pronoun=token(s_last, p), sentence=s_last.get("sentence"),
                                   antecedent=token(s_last, ante), early=sig(a[p][ante]),
                                   early_at=step(first["step"]), late=sig(b[p][ante]),
                                   late_at=step(last["step"])))
            break
    chapters.append(Chapter("The Snap", paras))
    if last is not None and last is not first and first is not None:
        sharper = as_float(_sharpest(last)) > as_float(_sharpest(first))
        chapters.append(Chapter("Focus", [voice.say(
            "sharp", SHARP, at=step(last["step"]), sharp=sig(_sharpest(last)),
            italic=voice.pick("sharp-i", SHARPER if sharper else BLUNTER))]))
    return Story(voice.pick("title", TITLES), "softmax", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
