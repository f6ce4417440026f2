"""Softmax's voice: the lens that turns scores into attention, blurred at first, then sharp.

Numbers: the sharpest weight in any story-sentence pattern at the first and last probe, the
pronoun head's weight on the antecedent in those snapshots, the first_snap weight and its
runner-up, d_head (the scores are divided by its square root).
"""

from __future__ import annotations

import math

from fabric_cli.narrate.claims import Bank, trend
from fabric_cli.narrate.common import moment_values, pronoun_pairs, sharpest, token
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import head_name, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice
from fabric_cli.typeset import quoted

SPEAKER = "Softmax"

TITLES = ["Softmax: From Scores to Tides", "Softmax: The Lens That Learned to Focus",
    'Softmax: Scores into Attention',
    'Softmax: The Sharpening Lens',
]
EPIGRAPH = [
    "I am Softmax. Give me any scores and I return a tide that sums to one.",
    "I am Softmax, the lens every head looks through.",
    'I am Softmax: whatever the scores, I return weights that sum to one.',
    'I am Softmax. I make small gaps wide.',
]
INTRO = [
    ("Every head hands me its scores, already divided by the square root of its width, "
    "{d_head}, and I turn each row into weights that sum to one. {n} heads, "
    "every word, every step. *Exponentiate, normalise, let the strongest pull.*"),
    ("I sit inside each of the {n} heads: query meets key, the score is divided by the square "
    "root of {d_head}, and I make a distribution of it."),
    'In each of the {n} heads, every query meets every key before it; I take those scores, divided by the square root of {d_head}, and make them a distribution.',
    '{n} heads hand me rows of scores, already divided by the square root of {d_head}. I exponentiate and normalise. *Let the strongest pull.*',
]
BLUR = Bank("murmur", [
    ("At the first probe, step {at}, no head in any story sentence gave any word more than "
     "{sharp} of its attention. I could only refine confusion."),
    ("Step {at}: the sharpest weight I produced on any word of the story sentences was {sharp}. "
     "*A murmur, evenly spread.*"),
    ("At step {at} my tides were flat: nowhere in the story sentences did a word get more than "
     "{sharp}. *A murmur without signal.*"),
    ("The first probe, step {at}: at most {sharp} on any one word. *Confusion, politely "
     "normalised.*"),
])
BLUR_ANY = [
    ("At the first probe, step {at}, the largest weight any head put on a word of the story "
     "sentences was {sharp}."),
    "Step {at}: at most {sharp} of any head's attention on one word of the story sentences.",
    'Step {at}: the largest weight on any word of the story sentences was {sharp}.',
    "At the first probe, step {at}, no word of the story sentences held more than {sharp} of a head's attention.",
]
SHARP_CERTAIN = Bank("certain", [
    ("By the last probe, step {at}, a head put {sharp} of a row's attention on a single word, "
     "where at first the most was {sharp0}. *Certainty, where there was a murmur.*"),
    ("At step {at} my sharpest row gave {sharp} to one word (it had been {sharp0}). *The lens "
     "has found its focus.*"),
    ("Step {at}: {sharp} on one word in a single row, against {sharp0} at the first probe. "
     "*Probability snapping into certainty.*"),
    ("By step {at} one row held {sharp} on one word; at the start no word had more than "
     "{sharp0}. *Certainty.*"),
])
SHARP_SHARPER = Bank("sharper", [
    ("By the last probe, step {at}, the sharpest weight on a word was {sharp}, up from {sharp0}. "
     "*Sharper than before.*"),
    "At step {at} the largest weight on any word was {sharp}; at first, {sharp0}. *Sharper.*",
    'By step {at} one row put {sharp} on a word; at first the most was {sharp0}. *Sharper.*',
    'Step {at}: {sharp} at the most, up from {sharp0}. *Sharper, row by row.*',
])
SHARP_FLAT = [
    ("By the last probe, step {at}, the largest weight on a word was {sharp}, against {sharp0} "
     "at first. The heads never gave me scores worth sharpening."),
    'At step {at} the largest weight on a word was {sharp}; at first, {sharp0}.',
    'By the last probe, step {at}: at most {sharp} on a word, where it began at {sharp0}.',
    'Step {at}: {sharp} at most, against {sharp0} at the start.',
]
ROW_TREND = {
    "grew": Bank("grew", ["*That thread grew taut.*", "*The weight climbed onto the right word.*",
                          "*Taut now.*", "*I learned where to pour.*"]),
    "shrank": Bank("shrank", ["*That thread loosened.*", "*It slipped away from the noun.*",
                              "*Less on the noun than at the start.*",
                              "*The pull weakened.*"]),
    "steady": Bank("steady", ["*Much the same as at the start.*",
                              "*That row did not change much.*",
    '*About the same weight, start to end.*',
    '*That row barely changed.*',
]),
}
SNAP = {
    "clear_margin": Bank("clear_margin", [
        ("At step {step} I did what I was made for: in {who} the score for \"{antecedent}\" "
         "stood out, and I turned it into {weight} of the attention from \"{pronoun}\", "
         "leaving \"{runner_up}\" with {runner_up_weight}."),
        ("Step {step}, inside {who}: from \"{pronoun}\", {weight} to \"{antecedent}\", "
         "{runner_up_weight} to \"{runner_up}\". A small gap in scores; I make gaps wide."),
        ("At step {step}, in {who}, \"{antecedent}\" took {weight} from \"{pronoun}\" and "
         "\"{runner_up}\" only {runner_up_weight}: a distant second. *Exponentiate, and the "
         "lead becomes a chasm.*"),
        ("Step {step}: {who}'s row for \"{pronoun}\" poured {weight} onto \"{antecedent}\", "
         "a distant second \"{runner_up}\" at {runner_up_weight}."),
    ]),
    "narrow_margin": Bank("narrow_margin", [
        ("At step {step}, in {who}, \"{antecedent}\" won the row for \"{pronoun}\" with "
         "{weight}, but \"{runner_up}\" was close behind at {runner_up_weight}. *A lead, not "
         "yet a chasm.*"),
        ("Step {step}, inside {who}: {weight} to \"{antecedent}\" from \"{pronoun}\", "
         "{runner_up_weight} to \"{runner_up}\", a near second."),
        ("At step {step} {who}'s row for \"{pronoun}\" tipped toward \"{antecedent}\" "
         "({weight}) over \"{runner_up}\" ({runner_up_weight}), close behind."),
        ("Step {step}: in {who}, \"{antecedent}\" {weight}, \"{runner_up}\" "
         "{runner_up_weight}. The scores were close behind each other; so were my weights."),
    ]),
}
HEAD_ROW = [
    ("In {who}, from \"{pronoun}\" in *{sentence}*, I gave \"{antecedent}\" {early} at step "
    "{early_at} and {late} at step {late_at}."),
    ("Watch {who}'s row for \"{pronoun}\": {early} on \"{antecedent}\" at step {early_at}, "
    "{late} by step {late_at}."),
    '{who}, from "{pronoun}" in *{sentence}*: {early} on "{antecedent}" at step {early_at}, {late} at step {late_at}.',
    'In *{sentence}* {who}\'s row for "{pronoun}" gave "{antecedent}" {early} at step {early_at} and {late} at step {late_at}.',
]
NO_SNAP = [("No head's attention locked onto an antecedent in this run; the chronicle marks no "
           "such moment, and I will not pretend one."),
    'The chronicle holds no snap: no head locked a pronoun onto its noun in every story sentence.',
    'No head snapped in this run; I have no such moment to tell.',
    "I never turned a pronoun's row into a lock on its noun in every story sentence; the chronicle says so.",
]

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
        murmur = voice.claim("murmur", weight=_sharpest(first))
        chapters[0].paragraphs.append(voice.say("blur", BLUR if murmur else BLUR_ANY,
                                                claim=murmur if murmur else None,
                                                at=step(first["step"]),
                                                sharp=sig(_sharpest(first))))
    paras = []
    tracker = run.pronoun_head()
    snap = (run.first_moment("first_snap", *tracker) if tracker else None) or \
        run.first_moment("first_snap")
    if snap is not None:
        d = snap.get("data") or {}
        for name in ("clear_margin", "narrow_margin"):
            margin = voice.claim(name, weight=d.get("weight"), runner_up=d.get("runner_up_weight"))
            if margin:
                paras.append(voice.say("snap", SNAP[name], claim=margin, **moment_values(snap)))
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
            text = voice.say("row", HEAD_ROW, who=head_name(layer, head),
                             pronoun=token(s_last, p), sentence=quoted(s_last["sentence"]),
                             antecedent=token(s_last, ante), early=sig(a[p][ante]),
                             early_at=step(first["step"]), late=sig(b[p][ante]),
                             late_at=step(last["step"]))
            moved = trend(a[p][ante], b[p][ante])
            if moved:
                text += " " + voice.pick("row-i", ROW_TREND[moved.name], claim=moved)
            paras.append(text)
            break
    chapters.append(Chapter("The Snap", paras))
    if last is not None and last is not first and first is not None:
        late, early = _sharpest(last), _sharpest(first)
        certain = voice.claim("certain", weight=late)
        sharper = voice.claim("sharper", before=early, after=late)
        values = {"at": step(last["step"]), "sharp": sig(late), "sharp0": sig(early)}
        if certain:
            text = voice.say("sharp", SHARP_CERTAIN, claim=certain, **values)
        elif sharper:
            text = voice.say("sharp", SHARP_SHARPER, claim=sharper, **values)
        else:
            text = voice.say("sharp", SHARP_FLAT, **values)
        chapters.append(Chapter("Focus", [text]))
    return Story(voice.pick("title", TITLES), "softmax", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
