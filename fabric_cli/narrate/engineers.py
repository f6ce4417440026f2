"""The Engineers' voice: clipping and the learning-rate schedule, the hands on the rigging.

Numbers: grad_clip, the count of clipped steps, clipping_burst moments, the largest gradient
norm, warmup steps, peak and final learning rate, min_lr_ratio, the run's seconds, divergence.
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank
from fabric_cli.narrate.common import burst_values, moment_values, stepper
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, count, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "the Engineers"

TITLES = ["The Engineers: Hands on the Rigging", "The Engineers: Clip, Warm, Anneal",
    'The Engineers: The Hands Outside the Loom',
    'The Engineers: Schedule and Clip',
]
EPIGRAPH = [
    "We are the Engineers. We do not learn; we set the sails and cut the lines.",
    "We are the Engineers: the clip that reins the Gradient, the schedule that calms the sea.",
    'We are the Engineers. We set the schedule and hold the clip; the learning is not ours.',
    'We are the Engineers: warmup, cosine, clip. We watch, and cut when we must.',
]
SCHEDULE = [
    ("We warmed the Fabric up for {warmup} steps, the learning rate climbing from {lr1} at step "
    "{at1} toward its peak of {peak}, then let it ease down a cosine toward {ratio} of that "
    "peak. *Gently at first, gently at the end: that was the plan.*"),
    ("The plan: {warmup} steps of warmup (the rate was {lr1} at step {at1}), a peak of {peak}, "
    "then a slow cosine descent to a floor of {ratio} times the peak."),
    'For {warmup} steps we raised the rate gently (it was {lr1} at step {at1}) toward {peak}, then let it fall along a cosine toward {ratio} of the peak.',
    'Warmup first: {warmup} steps, starting at {lr1} on step {at1}. Then the peak, {peak}, and a cosine glide to {ratio} of it.',
]
LAST_LR = [
    "At step {at}, the last step of the run, the rate stood at {lr}.",
    "By step {at}, where the chronicle's last sound step stands, the rate read {lr}.",
    'At step {at} the rate read {lr}.',
    'The last step, {at}, ran at a rate of {lr}.',
]
CLIP = Bank("clipped", [
    ("We set the clip at a gradient norm of {clip}. On {n} steps the Gradient came in above it "
    "and we cut it back; the highest reading was {max} at step {max_at}."),
    ("Our line was {clip}. {n} steps crossed it, and every one was scaled back to the line "
    "before {adam} could act. The highest norm we ever saw: {max}, at step {max_at}."),
    ("The clip stood at {clip}; {n} steps crossed it and were cut back. The highest read "
     "{max}, at step {max_at}."),
    ("{n} times we reined the Gradient in to {clip}. At its worst, step {max_at}, it read "
     "{max}."),
])
# the peak at least GALE times the line (claims.py): the words of a real blow
CLIP_GALE = Bank("gale", [
    ("We set the clip at a gradient norm of {clip}. On {n} steps the Gradient came in above it "
    "and we cut it back; the wildest reading was {max} at step {max_at}. *We held the line.*"),
    ("Our line was {clip}. {n} steps crossed it, and every one was scaled back to the line "
    "before {adam} could act. The highest norm we ever saw: {max}, at step {max_at}."),
    ("The clip stood at {clip}; {n} steps crossed it and were cut back. The wildest gale read "
     "{max}, at step {max_at}."),
    ("{n} times we reined the Gradient in to {clip}. At its worst, step {max_at}, it read "
     "{max}."),
])
BURST = Bank("clipped", [
    ("The worst stretch ran from step {start_step} to step {end_step}: {count} clipped steps, "
    "the Gradient peaking at {max_norm} against our clip of {clip}."),
    "Steps {start_step} to {end_step} kept us busy: {count} clips, a peak of {max_norm}.",
    "From step {start_step} to {end_step}: {count} clipped steps, the worst at {max_norm}.",
    "From step {start_step} to {end_step} we cut {count} times, up to {max_norm}.",
])
BURST_GALE = Bank("gale", [
    ("The worst stretch ran from step {start_step} to step {end_step}: {count} clipped steps, "
    "the Gradient peaking at {max_norm} against our clip of {clip}."),
    "Steps {start_step} to {end_step} were a gale: {count} clips, a peak of {max_norm}.",
    "From step {start_step} to {end_step}: {count} clipped steps, the worst at {max_norm}.",
    "A gale from step {start_step} to {end_step}: {count} cuts, up to {max_norm}.",
])
NO_CLIP = Bank("never_clipped", [
    ("We set the clip at {clip} and never had to use it: the Gradient's highest reading was "
    "{max}, at step {max_at}, and not one step was trimmed. *We kept our hands off the "
    "rigging.*"),
    ("Not once did we rein the Gradient in. The clip stood at {clip}; the largest norm was "
    "{max} (step {max_at})."),
    "The clip of {clip} was never reached; the Gradient peaked at {max}, step {max_at}.",
    "Our line at {clip} stayed untouched. Highest norm: {max}, at step {max_at}.",
])
FORBIDDEN = [
    ("In this run we were not allowed to clip: grad_clip was 0, and whatever the Gradient "
     "measured went straight to the optimiser. Its highest reading was {max}, at step "
     "{max_at}."),
    ("Our hands were tied for this run: no clip. The Gradient ran as it pleased, up to {max} "
     "at step {max_at}."),
    ("No clipping, by order of the scenario. We could only watch: the Gradient reached {max} "
     "at step {max_at}."),
    ("The scenario forbade the clip. We watched the Gradient climb to {max}, at step {max_at}, "
     "and touched nothing."),
]
FORBIDDEN_SPIKES = [  # {spikes}: "one spike", "3 spikes"
    ("We counted {spikes} we could not cut, the worst at step {at}: {grad_norm}, {factor} "
     "times the median of the steps before. A clip would have cut it."),
    ("Unclipped, the Gradient made {spikes}; at step {at} it read {grad_norm}, {factor} times "
     "its recent median of {median}."),
    ("Through went {spikes}, untouched; at step {at} the Gradient read {grad_norm} against a "
     "median of {median}."),
    ("Nothing cut {spikes}; at step {at} the Gradient was {factor} times its median, "
     "{grad_norm}."),
]
END = [
    "The run took {seconds} seconds for {steps} steps. {italic}",
    "{steps} steps, {seconds} seconds on the clock. {italic}",
    '{steps} steps took {seconds} seconds. {italic}',
    'In {seconds} seconds the Fabric took {steps} steps. {italic}',
]
END_FINISHED = ["*The sails are furled.*", "*We tie off the last line.*",
    '*Done. The lines are coiled.*',
    '*The voyage is logged.*',
]
END_INTERRUPTED = ["*Stopped by a hand at the keyboard; the checkpoint holds what was woven.*",
    '*Stopped by hand; the checkpoint keeps what was woven.*',
    '*A hand at the keyboard stopped us. Nothing is lost.*',
    '*Interrupted, and saved.*',
]
INTERRUPTED = ["Someone stopped us ({reason}); we saved the Fabric as it stood at step {at}.",
    'We were stopped ({reason}) and saved the Fabric at step {at}.',
    'A stop ({reason}): the checkpoint holds step {at}.',
    'At step {at} we were told to stop ({reason}); we saved everything.',
]
# A stop that was resumed: where it stopped ({at}, the checkpoint's step) and where the run
# took up again ({resumed}); as printed, the same step or not.
RESUMED = Bank("figures_equal", [
    ("Someone stopped us ({reason}) at step {at}; we saved the Fabric there, and the resumed "
     "run went on from step {resumed}."),
    ("At step {at} we were stopped ({reason}) and saved everything; resumed, the run took up "
     "the lines again at step {resumed}."),
    ("A stop ({reason}) at step {at}: the checkpoint kept the Fabric, and the resumed run "
     "carried on from step {resumed}."),
    ("We were told to stop ({reason}) at step {at}, saved the Fabric, and later sailed on from "
     "step {resumed}."),
])
RESUMED_ELSEWHERE = Bank("figures_differ", [
    ("Someone stopped us ({reason}) at step {at}; the run was resumed from the checkpoint of "
     "step {resumed}."),
    ("We were stopped ({reason}) at step {at}, and the run went on again from step "
     "{resumed}'s checkpoint."),
    "A stop ({reason}) at step {at}; resumed, the run took up the lines again at step {resumed}.",
    ("At step {at} we were told to stop ({reason}); the run was later resumed from step "
     "{resumed}."),
])
STORM_UNCLIPPED = [
    ("At step {step} we lost the ship: the loss became {loss} and the Gradient {grad_norm}, with "
     "the learning rate at {lr}, and we had not been allowed to clip. We stopped at once and "
     "kept the checkpoint of step {last_good_step}, the last sound one."),
    ("Step {step}: divergence, with no clip to catch it. Loss {loss}, gradient {grad_norm}, "
     "learning rate {lr}. The checkpoint of step {last_good_step} is kept."),
    ("Unclipped, the Gradient broke the Fabric at step {step}: loss {loss}, norm {grad_norm}, "
     "learning rate {lr}. We caught it within the step and kept step {last_good_step}."),
    ("At step {step} the loss read {loss}. Nothing had held the Gradient back ({grad_norm}); we "
     "stopped and kept the last good checkpoint, step {last_good_step}."),
]
STORM = [
    ("At step {step} we lost the ship: the loss became {loss} and the Gradient {grad_norm}, with "
    "the learning rate at {lr}. The checkpoint from step {last_good_step} is the last sound "
    "one, and we kept it. Our clip could not hold a sea like that; a smaller learning rate "
    "might."),
    ("Step {step}: divergence. Loss {loss}, gradient {grad_norm}, learning rate {lr}. We stop "
    "here, keeping the checkpoint of step {last_good_step}, the last good weave. *Lower the "
    "rate and sail again.*"),
    "At step {step} the loss turned {loss}, the Gradient {grad_norm}, at a rate of {lr}. We stopped and kept step {last_good_step}'s checkpoint. *A lower rate next time.*",
    'Divergence, step {step}: loss {loss}, gradient {grad_norm}, rate {lr}. Even our clip could not save the step; the checkpoint of step {last_good_step} waits.',
]

MOMENT_LINES = {
    "clipping_burst": [
        "we clipped {count} steps between steps {start_step} and {end_step}; peak {max_norm}.",
        "we cut the Gradient back {count} times (steps {start_step} to {end_step}).",
    'steps {start_step} to {end_step}: {count} clips, peak {max_norm}.',
    '{count} clipped steps from step {start_step} to {end_step}, the highest {max_norm}.',
    ],
    "diverged": [
        "step {step}, the loss is {loss}. We stop the run.",
        "divergence at step {step}; the last good checkpoint is step {last_good_step}.",
    'step {step}: loss {loss}; we stop and keep step {last_good_step}.',
    'at step {step} the run ends in divergence (loss {loss}); step {last_good_step} is kept.',
    ],
}


def _reason(stop: dict) -> str:
    """The chronicle's reason for a stop as a person says it: "ctrl-c" -> "Ctrl-C"."""
    reason = str(stop.get("reason") or "a stop")
    return {"ctrl-c": "Ctrl-C", "sigterm": "a termination signal"}.get(reason, reason)


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    tr, first, last = run.training, run.first_step, run.last_step
    chapters = []
    paras = []
    if first is not None:
        paras.append(voice.say("schedule", SCHEDULE, warmup=count(tr.get("warmup_steps", 0)),
                               lr1=sig(first.get("lr")), at1=step(first["step"]),
                               peak=sig(tr.get("lr")), ratio=sig(tr.get("min_lr_ratio"))))
    if last is not None and last is not first:
        paras.append(voice.say("last-lr", LAST_LR, at=step(last["step"]), lr=sig(last.get("lr"))))
    chapters.append(Chapter("The Schedule", paras))
    paras = []
    peak = run.max_grad_step()
    clip = sig(tr.get("grad_clip"))
    clipped = voice.claim("clipped", n=len(run.clipped_steps))
    if peak is not None and not as_float(tr.get("grad_clip")) > 0:
        text = voice.say("forbidden", FORBIDDEN, max=sig(peak["grad_norm"]),
                         max_at=step(peak["step"]))
        spikes = run.moments_of("gradient_spike")
        if spikes:
            worst = max(spikes, key=lambda m: as_float((m.get("data") or {}).get("factor")))
            v = moment_values(worst)
            many = f"{count(len(spikes))} spikes" if len(spikes) > 1 else "one spike"
            text += " " + voice.say("forbidden-spikes", FORBIDDEN_SPIKES, spikes=many,
                                    at=v["step"], grad_norm=v.get("grad_norm", "?"),
                                    factor=v.get("factor", "?"), median=v.get("median", "?"))
        paras.append(text)
    elif peak is not None and clipped:
        gale = voice.claim("gale", peak=peak["grad_norm"], line=tr.get("grad_clip"))
        paras.append(voice.say("clip", CLIP_GALE if gale else CLIP,
                               claim=gale if gale else clipped, clip=clip,
                               n=count(len(run.clipped_steps)),
                               max=sig(peak["grad_norm"]), max_at=step(peak["step"]),
                               **stepper(run)))
        for m in run.moments_of("clipping_burst")[:2]:
            blew = voice.claim("gale", peak=(m.get("data") or {}).get("max_norm"),
                               line=tr.get("grad_clip"))
            paras.append(voice.say(f"burst:{m['step']}", BURST_GALE if blew else BURST,
                                   claim=blew if blew else clipped, **burst_values(run, m)))
    elif peak is not None:
        never = voice.claim("never_clipped", n=len(run.clipped_steps))
        paras.append(voice.say("no-clip", NO_CLIP, claim=never, clip=clip,
                               max=sig(peak["grad_norm"]),
                               max_at=step(peak["step"])))
    chapters.append(Chapter("The Clip", paras))
    paras = [" ".join(_resumed(run, voice))] if run.resumed else []
    diverged = run.first_moment("diverged")
    if diverged is not None:
        bank = STORM if as_float(tr.get("grad_clip")) > 0 else STORM_UNCLIPPED
        paras.append(voice.say("storm", bank, **moment_values(diverged)))
    if run.interrupted is not None:
        paras.append(voice.say("interrupted", INTERRUPTED,
                               reason=_reason(run.interrupted),
                               at=step(run.interrupted.get("checkpoint_step", 0))))
    if run.end is not None and diverged is None:
        italic = END_INTERRUPTED if run.status == "interrupted" else END_FINISHED
        paras.append(voice.say("end", END, seconds=sig(run.end.get("seconds")),
                               steps=step(run.end.get("steps", 0)),
                               italic=voice.pick("end-i", italic)))
    chapters.append(Chapter("Diverged" if diverged else "Furling the Sails", paras))
    return Story(voice.pick("title", TITLES), "engineers", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))


def _resumed(run: RunFacts, voice: Voice) -> list[str]:
    """One sentence per stop the run was resumed from: the step it stopped at, the step it
    went on from (a stop that was never resumed is INTERRUPTED's to tell)."""
    said = []
    for stop, start in run.resumed:
        at = step(stop.get("checkpoint_step", stop.get("step", 0)))
        resumed = step(start.get("resumed_from"))
        same = voice.claim("figures_equal", before=at, after=resumed)
        bank = RESUMED if same else RESUMED_ELSEWHERE
        claim = same if same else voice.claim("figures_differ", before=at, after=resumed)
        said.append(voice.say(f"resumed:{start.get('step')}", bank, claim=claim,
                              reason=_reason(stop), at=at,
                              resumed=resumed))
    return said
