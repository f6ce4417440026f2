"""The Loss, the Fabric's judgment: how wrong, how far from the floor no model can pass.

Numbers: the loss at the first step against ln(vocabulary size) (what a uniform guess costs),
plateau/drop/near_floor moments, the final train/validation loss, the entropy floor, and the
gap between them (final validation loss minus the floor of the training distribution).
"""

from __future__ import annotations

import math

from fabric_cli.narrate.claims import Bank
from fabric_cli.narrate.common import moment_values
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, pct, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "the Loss"

TITLES = ["The Fabric's Judgment", "The Loss: How Wrong, and How Far from the Floor",
    'The Loss: One Number for Every Word',
    "The Fabric's Judgment, Step by Step",
]
EPIGRAPH = [
    "I am the Loss, the Fabric's judgment: one number for every word it should have known.",
    "I am the Fabric's judgment. I do not teach; I only say how far.",
    'I am the Loss. For every word the Fabric should have known, I say how surprised it was.',
    "I am the Fabric's judgment, counted in nats, measured against a floor no model can pass.",
]
FIRST = [
    ("At step {at} I judged the Fabric's first guesses at {loss} nats per token. A guess spread "
    "evenly over all {v} tokens would cost {uniform}. {italic}"),
    ("My first verdict, step {at}: {loss} nats. Pure ignorance over {v} tokens is {uniform}. "
    "{italic}"),
    'Step {at}: {loss} nats per token, my first judgment. An even guess over {v} tokens costs {uniform}. {italic}',
    'At step {at} the Fabric cost {loss} nats a token; guessing evenly among {v} tokens would cost {uniform}. {italic}',
]
NEAR_UNIFORM = Bank("near_uniform", [
    "*It knew nothing, and it was honest about it.*",
    "*A blank loom, exactly as blank as it should be.*",
    "*It knew nothing, and guessed like it.*",
    "*Ignorance, evenly spread: the right place to begin.*",
])
FAR_UNIFORM = Bank("far_from_uniform", ["*Worse than knowing nothing: confident, and wrong.*",
                                        "*Far from an even guess already.*",
    '*Already far from an even guess, before learning anything.*',
    '*Not even honestly ignorant.*',
])
PLATEAU_LOST = Bank("not_learned", [
    ("From step {start_step} to step {end_step} I held still at about {mean_loss}, wavering "
     "by no more than {spread}. *Becalmed.* At step {probe_at} the best head found the right "
     "noun for only {acc} of pronouns: the pronouns were not yet learned."),
    ("Then a long flat sea: steps {start_step} to {end_step}, mean {mean_loss}, spread "
     "{spread}, and the best pronoun head right on {acc} at step {probe_at}. *Becalmed.*"),
    ("Steps {start_step} to {end_step}: flat at {mean_loss}. The pronouns were not yet "
     "learned ({acc} resolved at step {probe_at}). *Becalmed.*"),
    ("I lay flat near {mean_loss} from step {start_step} to {end_step}; at step {probe_at} "
     "only {acc} of pronouns were resolved. *Becalmed, waiting for a head to wake.*"),
])
PLATEAU_WORKING = Bank("learned", [
    ("From step {start_step} to step {end_step} I lay nearly flat at about {mean_loss}, "
     "while the best pronoun head's attention already found the antecedent for {acc} of "
     "pronouns at step {probe_at}. *Not a stall: the last slow mile.*"),
    ("Steps {start_step} to {end_step}: slow, around {mean_loss}; "
     "by step {probe_at} the best head's attention found {acc} of the antecedents."),
    ("A slow stretch, steps {start_step} to {end_step}, at {mean_loss}. The heads were already "
     "at work (the best one's attention on the right noun for {acc} of pronouns at step "
     "{probe_at}); the rest was small words."),
    ("I flattened from step {start_step} to {end_step} near {mean_loss}, "
     "the best head's attention finding {acc} of the antecedents by step {probe_at}."),
])
DROP = [
    ("Between step {start_step} and step {end_step} I fell from {from_loss} to {to_loss}. "
    "*Something inside has understood something.*"),
    ("Steps {start_step} to {end_step}: down from {from_loss} to {to_loss}, a tide going out "
    "fast."),
    'From step {start_step} to {end_step} I went from {from_loss} to {to_loss}. *A knot somewhere pulled tight.*',
    'By step {end_step} I had fallen from {from_loss} to {to_loss}, starting at step {start_step}.',
]
NEAR = [
    ("At step {step} the loss on fresh sentences, {val_loss}, was within reach of the floor, {floor}: a "
    "ratio of {ratio}."),
    "Step {step}: {val_loss} on fresh sentences against a floor of {floor}, ratio {ratio}.",
    'By step {step} fresh sentences cost {val_loss}, {ratio} times the floor of {floor}.',
    'Step {step}: fresh sentences at {val_loss}, the floor at {floor}, a ratio of {ratio}.',
]
FINAL = [  # the train figure averages the batches since the probe before the last
    ("I end at {val} on fresh sentences, and {train} averaged over the training batches of "
    "steps {since} to {upto}. The language itself cannot be predicted better than {floor} "
    "nats per token, so the Fabric stands {gap} nats above the floor. {italic}"),
    ("Final judgment: {val} on fresh sentences; {train} on average over the training batches "
    "of steps {since} to {upto}. The floor, the entropy of the language itself, is {floor}; "
    "the gap left is {gap}. {italic}"),
    ("My last verdict: {val} on fresh sentences, against a floor of {floor}: {gap} nats above "
    "it. The training batches of steps {since} to {upto} averaged {train}. {italic}"),
    ("At the end: {val} fresh, and {train} on average in training, steps {since} to {upto}. "
    "The floor, the language's own entropy, is {floor}; {gap} nats remain. {italic}"),
]
BELOW = [  # a finite validation sample can land under the floor, which is an expectation
    ("I end at {val} on fresh sentences, {gap} below the floor of {floor}, and {train} "
    "averaged over the training batches of steps {since} to {upto}. The floor is an average "
    "over the whole language; this small validation sample happened to be kinder. *No model "
    "beats the floor for long.*"),
    ("I end at {val} on fresh sentences, {gap} under the floor of {floor}, with the training "
    "batches of steps {since} to {upto} at {train} on average: a small sample can be kinder "
    "than the language's average. *No model beats the floor for long.*"),
    ("Final: {val} (fresh), {gap} below the floor of {floor}; {train} averaged over steps "
    "{since} to {upto} in training. The floor is an average; this sample was lucky."),
    ("{val} on fresh sentences, {gap} beneath the floor of {floor}, with {train} on average "
    "in training, steps {since} to {upto}: the validation sample was an easy one."),
]
CLOSE = Bank("close_to_floor", [
    "*Close. What remains is mostly the language's own uncertainty.*",
    "*Almost all the error left is the kind no model can remove.*",
    "*Close to the bottom of the sea.*",
    "*Nearly all that is left is the language's own doubt.*",
])
FAR = Bank("far_from_floor", [
    "*Still a distance to go; the Fabric has not learned all it could.*",
    "*A gap worth another run.*", "*Still a distance to go.*",
    "*The floor is further down than I reached.*",
])
STORM = Bank("diverged", [
    ("At step {step} my verdict was {loss}, no judgment at all; the last good checkpoint is "
     "step {last_good_step}. *There is no floor beneath a storm like this.*"),
    "At step {step} my verdict was {loss}; the last good checkpoint is step {last_good_step}.",
    "Step {step}: {loss}. There is no judgment in that. Step {last_good_step} was kept.",
    "My verdict at step {step} was {loss}; the checkpoint of step {last_good_step} was kept.",
])
STOPPED = [  # a run stopped by hand (run_end "interrupted"): its figures are not final, and
    # they are its last probe's ({probe}), which may lie steps before the stop ({at})
    ("Stopped at step {at}, before its end: at the last probe, step {probe}, {train} on "
     "training batches and {val} on fresh sentences, against a floor of {floor}. Resume it "
     "for my verdict."),
    ("The run was stopped at step {at}. My word at its last probe, step {probe}: {train} "
     "(train), {val} (fresh sentences); the floor is {floor}. Not yet a judgment."),
    ("A hand stopped the run at step {at}; at the last probe, step {probe}, I stood at {train} "
     "in training and {val} on fresh sentences, the floor at {floor}. The verdict waits for "
     "the rest."),
    ("Interrupted at step {at}. The last probe, step {probe}: {train} on training batches, "
     "{val} fresh, the floor {floor}. I have not judged yet."),
]
UNFINISHED = [("The chronicle stops at step {at} without a final verdict; the last loss I "
              "gave was {loss}."),
    'The chronicle ends at step {at} with no verdict; my last loss was {loss}.',
    'No final judgment yet: the chronicle stops at step {at}, the loss at {loss}.',
    'At step {at} the record stops. I last said {loss}.',
]

MOMENT_LINES = {
    "loss_plateau": [
        "I lie flat at {mean_loss} from step {start_step} to {end_step}.",
        "flat: steps {start_step} to {end_step}, I hover around {mean_loss}.",
    'steps {start_step} to {end_step}: around {mean_loss}, level.',
    'level at {mean_loss} from step {start_step} to step {end_step}.',
    ],
    "loss_drop": [
        "I fall from {from_loss} to {to_loss} by step {end_step}.",
        "the tide goes out: {from_loss} down to {to_loss}, steps {start_step} to {end_step}.",
    'steps {start_step} to {end_step}: {from_loss} to {to_loss}.',
    'down from {from_loss} to {to_loss}, by step {end_step}.',
    ],
    "near_floor": [
        "I read {val_loss} on fresh sentences at step {step}, the floor is {floor}.",
        "step {step}, within reach of the floor: {val_loss} against {floor}.",
    'step {step}: {val_loss} on fresh sentences, the floor {floor}.',
    'at step {step}, {val_loss} against a floor of {floor}.',
    ],
}


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    first = run.first_step
    chapters = []
    if first is not None:
        v = len(run.vocab) or int(run.model.get("d_vocab", 0))
        uniform = math.log(v) if v > 0 else math.nan
        near = voice.claim("near_uniform", loss=first["loss"], uniform=uniform)
        far = voice.claim("far_from_uniform", loss=first["loss"], uniform=uniform)
        italic = (voice.pick("first-i", NEAR_UNIFORM if near else FAR_UNIFORM,
                             claim=near if near else far) if near or far else "")
        chapters.append(Chapter("The First Verdict", [voice.say(
            "first", FIRST, at=step(first["step"]), loss=sig(first["loss"]), v=str(v),
            uniform=sig(uniform), italic=italic).rstrip()]))
    calms = [(m["step"], p) for m in run.moments_of("loss_plateau")[:2]
             if (p := _plateau(run, voice, m))]
    falls = [(m["step"], voice.say(f"drop:{m['step']}", DROP, **moment_values(m)))
             for m in run.moments_of("loss_drop")[:2]]
    paras = [p for _, p in sorted(calms + falls, key=lambda told: told[0])]  # as they happened
    chapters.append(Chapter("Calms and Falls", paras))
    paras = [voice.say("near", NEAR, **moment_values(m)) for m in run.moments_of("near_floor")[:1]]
    diverged = run.first_moment("diverged")
    end = run.end
    if diverged is not None:
        broke = voice.claim("diverged", loss=(diverged.get("data") or {}).get("loss"),
                          grad_norm=(diverged.get("data") or {}).get("grad_norm"))
        chapters.append(Chapter("The Storm", [voice.say("storm", STORM, claim=broke,
                                                        **moment_values(diverged))]))
    elif end is not None and end.get("status") == "interrupted" and finite_all(end):
        floor = (end.get("floor") or {}).get("train")
        probe = (run.last_probe or {}).get("step", end.get("step", "?"))
        paras.append(voice.say("stopped", STOPPED, at=step(end.get("step", "?")),
                               probe=step(probe),
                               train=sig(end["final_train_loss"]),
                               val=sig(end["final_val_loss"]), floor=sig(floor)))
        chapters.append(Chapter("Stopped", paras))
    elif end is not None and finite_all(end):
        floor = as_float((end.get("floor") or {}).get("train"))
        gap = as_float(end["final_val_loss"]) - floor
        close = voice.claim("close_to_floor", val=end["final_val_loss"], floor=floor)
        far = voice.claim("far_from_floor", val=end["final_val_loss"], floor=floor)
        since, upto = run.train_window(run.last_probe) or (end.get("step"), end.get("step"))
        paras.append(voice.say("final", FINAL if gap >= 0 else BELOW,
                               train=sig(end["final_train_loss"]), since=step(since),
                               upto=step(upto),
                               val=sig(end["final_val_loss"]), floor=sig(floor),
                               gap=sig(abs(gap)),
                               italic=voice.pick("final-i", CLOSE if close else FAR,
                                                 claim=close if close else far)))
        chapters.append(Chapter("The Floor", paras))
    elif run.last_step is not None:
        paras.append(voice.say("unfinished", UNFINISHED, at=step(run.last_step["step"]),
                               loss=sig(run.last_step["loss"])))
        chapters.append(Chapter("No Verdict", paras))
    return Story(voice.pick("title", TITLES), "loss", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))


def _plateau(run: RunFacts, voice: Voice, m: dict) -> str | None:
    """A flat stretch, told as a stall only if the heads had not yet learned the pronouns."""
    d = m.get("data") or {}
    end = int(d.get("end_step", m.get("step", 0)))
    probes = [p for p in run.probes if int(p.get("step", 0)) <= end]
    if not probes:
        return None
    probe = probes[-1]
    accs = [as_float(r.get("pronoun_acc")) for r in probe.get("heads") or []]
    accs = [a for a in accs if math.isfinite(a)]
    if not accs:
        return None
    acc = max(accs)
    learned, lost = voice.claim("learned", acc=acc), voice.claim("not_learned", acc=acc)
    return voice.say(f"plateau:{m['step']}", PLATEAU_WORKING if learned else PLATEAU_LOST,
                     claim=learned if learned else lost, **moment_values(m), acc=pct(acc),
                     probe_at=step(probe["step"]))


def finite_all(end: dict) -> bool:
    values = [end.get("final_train_loss"), end.get("final_val_loss"),
              (end.get("floor") or {}).get("train")]
    return all(math.isfinite(as_float(x)) for x in values)
