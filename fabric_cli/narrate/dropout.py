"""Dropout's voice: the tester who silences units at random so no single thread carries all.

Numbers: the rates (block outputs and attention weights), the fraction of units actually
kept at the first and last step, focus_under_dropout (pronoun resolution accuracy without and
with a training-like mask) at the first and last probe, dropout_knock / dropout_recovered
moments, and the pronoun trackers' group ablation (how many backups the cuts wove).
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank
from fabric_cli.narrate.common import moment_values
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.figures import moved
from fabric_cli.narrate.format import and_list, as_float, head_name, pct, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "Dropout"

TITLES = ["Dropout: What If This Thread Snaps?", "Dropout: The Tester in the Dark",
    'Dropout: The Hand in the Dark',
    'Dropout: No Single Thread',
]
EPIGRAPH = [
    "I am Dropout. I cut threads at random, so the Fabric learns not to hang on any one.",
    "I am Dropout, the hand that snuffs candles to see who can still find the door.",
    'I am Dropout. I silence at random, so that nothing rests on one thread.',
    'I am Dropout: every step a new darkness, never the same twice.',
]
MASK = [
    ("My rate in this run was {rate}. At step {at} I let {keep} of the units through and "
    "silenced the rest, scaling the survivors up so the sum stayed honest. *Lean on that, "
    "and I will take it away.*"),
    ("I was set to silence {rate} of the units. On step {at} the dice kept {keep}; the kept "
    "ones were scaled to carry the missing weight."),
    'A rate of {rate}: at step {at} I kept {keep} of the units and scaled them up to carry the rest. *Lean on that, and I will take it away.*',
    'Step {at}, rate {rate}: {keep} of the units survived my dice, scaled to carry the missing.',
]
LATER_MASK = [
    ("On step {at} the dice kept {keep}. Every step a different pattern of darkness; never the "
    "same thread twice."),
    "By step {at} I was still at it: {keep} kept. *I do not tire, I do not repeat.*",
    'At step {at}, {keep} kept. A different darkness every step.',
    'Step {at}: {keep} of the units lit, the rest dark. *Again, and again.*',
]
INSIDE_ONLY = [
    ("In this run I left the blocks' outputs alone and worked inside the heads instead: on "
    "every step {attn} of each head's attention weights were cut at random, the rest scaled "
    "up. *No road to an antecedent may be the only road.*"),
    "I worked inside the heads in this run: {attn} of every head's attention weights cut each step, the rest scaled up.",
    'My cuts fell on attention itself: {attn} of the weights, every step, in every head.',
    "Not the blocks' outputs but the heads' attention: {attn} of it, cut at random, every step.",
]
INSIDE_TOO = [
    ("I reached inside the heads as well: {attn} of every head's attention weights were cut "
    "on each step. A head that was the only road to an antecedent would have lost it again "
    "and again."),
    'And inside every head I cut {attn} of the attention weights, each step anew.',
    'Inside the heads too: {attn} of every attention weight, dark on each step.',
    'I reached into the heads as well, cutting {attn} of their attention weights.',
]
# {moved}: figures.moved, "went from A to B" or "stayed at A"; the figure is the accuracy of
# the Fabric's next word after each pronoun (the ablation's measure), not pronoun resolution
BACKUPS = [
    ("Under my cuts the Fabric wove backups. By the end {count} heads, {list}, could each find a "
     "pronoun's antecedent on held-out sentences; silence {every} and the accuracy of the word "
     "after each pronoun {moved}. *Cut a thread and the cloth still holds.*"),
    ("My cuts left their mark: {count} heads ({list}) learned the same pronoun paths. Zero "
     "them together and the accuracy of the word after each pronoun {moved}. *I taught them "
     "not to trust a single thread.*"),
    ("By the end {count} heads, {list}, had learned the same pronoun paths; silence {every} "
     "and the accuracy of the word after each pronoun {moved}. *Backups, woven under my "
     "cuts.*"),
    ("In the end {count} heads ({list}) came to carry the pronouns; zeroed together, the "
     "accuracy of the word after each pronoun {moved}."),
]
BACKUPS_UNNAMED = [  # that figure silenced heads the run did not name ({them}: it/them)
    "That silence took {extra} too, though the ablation did not name {them}.",
    "{extra}, never named, went dark in that count as well.",
    "The same cut took {extra} too, unnamed.",
    "In that count {extra} fell silent beside them, not one of the named.",
]
FOCUS = [
    # {clean}, {dropped}: the Fabric's own next word favouring the right noun's words (the
    # probe's resolution), not a head's attention (the Loss's and the heads' figure)
    ("At step {at} I tested the pronoun trackers, led by {who}: the Fabric's next word "
     "favoured the right noun for {clean} of pronouns with every thread lit and {dropped} "
     "under my mask. {italic}"),
    ("Step {at}, a test in the dark, {who} the best tracker: the Fabric's own guesses resolved "
     "{clean} of pronouns clean, {dropped} under my mask. {italic}"),
    ("Step {at}: with {who} leading, the Fabric's guesses resolved {clean} of pronouns clean "
     "and {dropped} under my mask. {italic}"),
    ("At step {at} I tested the trackers, {who} first among them: the Fabric's guesses "
     "resolved {clean} of pronouns clean, {dropped} in my dark. {italic}"),
]
GRIP = {
    "held": Bank("held", ["*The grip held.*", "*It held under my dark.*",
                          "*It held, every thread I cut.*", "*My cuts found spare paths: it held.*"]),
    "bent": Bank("bent", ["*It bent under my dark, and kept some of its grip.*",
                          "*Bent, not broken.*", "*It bent.*", "*I bent it, not broke it.*"]),
    "shaken": Bank("shaken", ["*It lost more than half its grip. I shook it badly.*",
                              "*I shook it badly.*", "*Shaken: half its grip gone.*",
                              "*In my dark it shook.*"]),
}
KNOCK = [
    ("At step {step} I knocked {who} hard: {clean} clean, {dropped} under a mask of "
    "{rate_pct}. *What if this thread snaps?*"),
    "Step {step}: {who} stumbled in my dark, its focus falling from {clean} to {dropped}.",
    'At step {step}, under {rate_pct}, {who} dropped from {clean} to {dropped}.',
    'Step {step}: my mask of {rate_pct} took {who} from {clean} to {dropped}.',
]
RECOVERED = [
    ("By step {step} {who} had mended the knock of step {knock_step}: {dropped} under my mask "
    "against {clean} clean."),
    ("At step {step} {who} held at {dropped} under the same mask ({clean} clean). *It no "
    "longer needs any one thread.*"),
    'Step {step}: {who} at {dropped} under my mask, {clean} without; the knock of step {knock_step} was behind it.',
    'By step {step} my mask cost {who} little: {dropped} against {clean}.',
]
REST = [
    ("When training ends I step aside: inference runs with every unit lit. The last test I "
    "ran, at step {at}, with {who} leading, found {clean} of pronouns resolved clean and "
    "{dropped} masked."),
    ("At inference I am gone. My last measurement, at step {at}: {clean} of pronouns resolved "
    "with all units, {dropped} with my mask, {who} leading the trackers."),
    'Inference runs with every unit lit; I am gone. My last test, step {at}, {who} leading: {clean} of pronouns resolved clean, {dropped} masked.',
    'At inference no one cuts. The last time I did, step {at}: {clean} clean, {dropped} masked, with {who} leading.',
]
ABSENT = [
    ("In this run my rate was {rate}: I was not invited. No unit was silenced while it "
     "trained; whatever the Fabric learned, it learned with every thread lit."),
    'My rate in this run was {rate}: no unit was silenced while the Fabric learned.',
    'A rate of {rate}. I was not there; every thread stayed lit through training.',
    'With a rate of {rate} I cut nothing while it trained.',
]
# The probes' fixed mask test (probe["mask_test"]), told of a Fabric that never trained under
# a mask: what cutting does to it anyway.
UNCUT_TEST = [
    ("The probes cut it anyway, once, as a test: at step {at}, with {rate} of every thread "
     "cut, it resolved {masked} of the pronouns, against {clean} with all of them lit."),
    ("At step {at} the probes cut {rate} of its threads, as I would have: {masked} of the "
     "pronouns still resolved, {clean} with none cut."),
    ("Cut for a test at step {at}, {rate} of every thread, it resolved {masked} of the "
     "pronouns; {clean} uncut."),
    ("The last probe, step {at}, cut {rate} of its threads: {clean} of the pronouns resolved "
     "lit, {masked} cut."),
]
UNCUT_GRIP = {
    "held": Bank("held", ["*Never cut in training, and it held all the same.*",
                          "*It held, though no one had taught it to.*",
                          "*Cut, it still found its way: it held.*",
                          "*Untaught, it held.*"]),
    "bent": Bank("bent", ["*It bent: no one had taught it to work with threads missing.*",
                          "*It bent, a Fabric that had never been cut.*",
                          "*Untaught for the dark, it bent.*",
                          "*It bent, and kept some of its grip.*"]),
    "shaken": Bank("shaken", ["*It shook badly: every answer hung on threads I would have cut.*",
                              "*Shaken: half its grip gone at the first cut.*",
                              "*It shook; nothing in it had learned to stand without a thread.*",
                              "*In the dark it had never met, it shook.*"]),
}
STORM = [
    "Then the Fabric tore at step {at}, and there was nothing left for me to test.",
    'At step {at} the Fabric tore; my mask had nothing left to test.',
    'The storm at step {at} ended my tests.',
    'After step {at} there was no Fabric to cut.',
]

MOMENT_LINES = {
    "dropout_knock": [
        "step {step}, {who} fell from {clean} to {dropped} in my dark.",
        "I knocked {who} at step {step}: {clean} clean, {dropped} masked.",
    'step {step}: under my mask {who} drops to {dropped} ({clean} clean).',
    'at step {step} {who} reads {clean} clean, {dropped} masked.',
    ],
    "dropout_recovered": [
        "step {step}, {who} holds at {dropped} under my mask ({clean} clean).",
    'step {step}: {who} at {dropped} masked, {clean} clean.',
    'by step {step} {who} keeps {dropped} under my mask, against {clean}.',
    'at step {step} {who} reads {dropped} masked and {clean} clean.',
    ],
}


def _focus_para(voice: Voice, slot: str, probe: dict) -> str | None:
    focus = probe.get("focus_under_dropout")
    if not focus:
        return None
    italic = ""
    for name in ("held", "bent", "shaken"):
        grip = voice.claim(name, clean=focus.get("clean"), dropped=focus.get("dropped"))
        if grip:
            italic = voice.pick(slot + ":i", GRIP[name], claim=grip)
            break
    return voice.say(slot, FOCUS, at=step(probe["step"]),
                     who=head_name(focus.get("layer"), focus.get("head")),
                     clean=pct(focus.get("clean")), dropped=pct(focus.get("dropped")),
                     italic=italic).rstrip()


COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def _backups(run: RunFacts, voice: Voice) -> str | None:
    """The pronoun trackers that back each other up, and what silencing them all cost."""
    trackers = [s for s in run.specialists if s.get("role") == "pronoun"]
    group = next((s.get("group_ablation") for s in trackers if s.get("group_ablation")), None)
    if len(trackers) < 2 or not group:
        return None
    heads = [head_name(s["layer"], s["head"]) for s in trackers]
    names = and_list(heads)
    count = COUNT_WORDS.get(len(trackers), str(len(trackers)))
    every = "both" if len(trackers) == 2 else f"all {count}"
    resolved = moved(voice, "backups:acc", pct(group.get("acc_before")),
                     pct(group.get("acc_after")))
    text = voice.say("backups", BACKUPS, count=count, every=every, list=names, moved=resolved)
    extra = run.unnamed_in_team("pronoun", group)
    if extra:
        text += " " + voice.say("backups:unnamed", BACKUPS_UNNAMED, them="it" if len(extra) == 1
                                else "them", extra=and_list([head_name(*h) for h in extra]))
    return text


def _uncut_test(run: RunFacts, voice: Voice) -> str | None:
    """The last probe's fixed mask test of a Fabric trained without Dropout."""
    probe = next((p for p in reversed(run.probes) if p.get("mask_test")), None)
    if probe is None or run.status == "diverged":
        return None
    test = probe["mask_test"]
    italic = ""
    for name in ("held", "bent", "shaken"):
        grip = voice.claim(name, clean=test.get("clean"), dropped=test.get("masked"))
        if grip:
            italic = " " + voice.pick("uncut:i", UNCUT_GRIP[name], claim=grip)
            break
    return voice.say("uncut", UNCUT_TEST, at=step(probe["step"]), rate=pct(test.get("rate")),
                     clean=pct(test.get("clean")), masked=pct(test.get("masked"))) + italic


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    rate = run.training.get("dropout", 0)
    attn = run.training.get("attn_dropout", 0)
    title, epigraph = voice.pick("title", TITLES), voice.pick("epigraph", EPIGRAPH)
    if not as_float(rate) > 0 and not as_float(attn) > 0:
        paras = [voice.say("absent", ABSENT, rate=pct(rate)), _uncut_test(run, voice)]
        return Story(title, "dropout", [Chapter("Not Invited", [p for p in paras if p])],
                     epigraph)
    first, last = run.first_step, run.last_step
    paras = []
    if as_float(rate) > 0:
        if first is not None:
            paras.append(voice.say("mask", MASK, rate=pct(rate), at=step(first["step"]),
                                   keep=pct(first.get("dropout_keep"))))
        if last is not None and last is not first:
            paras.append(voice.say("later", LATER_MASK, at=step(last["step"]),
                                   keep=pct(last.get("dropout_keep"))))
        if as_float(attn) > 0:
            paras.append(voice.say("inside", INSIDE_TOO, attn=pct(attn)))
    else:
        paras.append(voice.say("inside", INSIDE_ONLY, attn=pct(attn)))
    if run.status != "diverged":
        paras.append(_backups(run, voice))
    chapters = [Chapter("The Mask", [p for p in paras if p])]
    paras = []
    tested = [p for p in run.probes if p.get("focus_under_dropout")]
    # The first test worth telling is the first one with a grip to lose.
    gripping = [p for p in tested if as_float(p["focus_under_dropout"].get("clean")) >= 0.5]
    if gripping:
        paras.append(_focus_para(voice, "focus-first", gripping[0]))
    for m in run.moments_of("dropout_knock")[:1]:
        paras.append(voice.say("knock", KNOCK, **moment_values(m)))
    for m in run.moments_of("dropout_recovered")[:1]:
        paras.append(voice.say("recovered", RECOVERED, **moment_values(m)))
    chapters.append(Chapter("Testing the Specialist", [p for p in paras if p]))
    diverged = run.first_moment("diverged")
    if diverged is not None:
        chapters.append(Chapter("Nothing Left to Test",
                                [voice.say("storm", STORM, at=step(diverged["step"]))]))
    elif len(tested) > 1:
        focus = tested[-1]["focus_under_dropout"]
        chapters.append(Chapter("Stepping Aside", [voice.say(
            "rest", REST, at=step(tested[-1]["step"]),
            who=head_name(focus.get("layer"), focus.get("head")), clean=pct(focus.get("clean")),
            dropped=pct(focus.get("dropped")))]))
    return Story(title, "dropout", [c for c in chapters if c.paragraphs], epigraph)
