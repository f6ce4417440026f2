"""The Gradient's voice: born in the loss, running backward through the layers, storms and calm.

Numbers: the global gradient norm (before clipping), grad_flow rows at the first and last good
step, the embeddings' share, vanishing/spike moments, the clipped-step count.
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank, trend
from fabric_cli.narrate.common import flow_row, moment_values, stepper, top_layer
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, count, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "the Gradient"

TITLES = ["The Gradient: A Tide Running Backward", "The Gradient: Downhill, Against the Current",
    'The Gradient: The Long Way Down',
    'The Gradient: A Voyage Backward',
]
EPIGRAPH = [
    "I am the Gradient, the tide that runs backward from every mistake.",
    "I am the Gradient: born where the Fabric is wrong, dead by the time it is mended.",
    'I am the Gradient: a correction, carried backward from the Loss to every weight.',
    'I am the Gradient. I begin where the Fabric is wrong and end where the words are kept.',
]
BIRTH = [
    ("At step {at} the Fabric guessed its next words and the Loss judged them at {loss}. "
    "From that judgment I rose, a tide of {norm} in total, and began to run backward. "
    "*Find where the weave went wrong.*"),
    ("I was born at step {at} out of a loss of {loss}: {norm} of pure correction, summed over "
    "every weight, looking for somewhere to go."),
    "Step {at}: the Loss judged the Fabric's guesses at {loss}, and I was born from it, {norm} of correction across every weight. *This was wrong. Find where.*",
    'Out of a loss of {loss} at step {at} I rose, {norm} strong, and turned to run back through the weave.',
]
DESCENT = [
    ("I reached the top of the stack, Layer {top}, with a norm of {top_in}, and left the "
    "bottom of Layer 0 at {bottom_out}. What was left of me, {embed}, soaked into the "
    "embeddings, where the words themselves are kept."),
    ("Down I went: {top_in} arriving at Layer {top}, {bottom_out} leaving Layer 0, and {embed} "
    "washing into the embedding table at the very end of my run."),
    'My first voyage: {top_in} reached Layer {top}; {bottom_out} left Layer 0; {embed} reached the embeddings at the end.',
    'At the top, Layer {top}, I arrived at {top_in}; I left the bottom at {bottom_out}, and {embed} of me soaked into the embedding table.',
]
DESCENT_LATE = [
    ("By step {at} I arrived at Layer {top} at {top_in} and left Layer 0 at {bottom_out}; at "
     "the start it had been {top_in0} and {bottom_out0}. {italic}"),
    ("At step {at}, the last step I ran, my arrival at Layer {top} measured {top_in} (at first "
     "{top_in0}) and my exit from Layer 0 {bottom_out} (at first {bottom_out0}). {italic}"),
    ("Step {at}: {top_in} into Layer {top}, {bottom_out} out of Layer 0, against {top_in0} and "
     "{bottom_out0} on my first voyage. {italic}"),
    ("Late, at step {at}, Layer {top} received {top_in} of me and Layer 0 let {bottom_out} "
     "go; my first descent had been {top_in0} and {bottom_out0}. {italic}"),
]
ARRIVAL_TREND = {
    "shrank": Bank("shrank", ["*Less to mend. Or less that I can reach.*",
                              "*The sea is quieter here.*", "*Ripples now, not waves.*",
                              "*I whisper where I used to roar.*"]),
    "grew": Bank("grew", [("*More to say than at the start: the Fabric has learned where to "
                          "listen.*"), "*Louder now; every tug travels further.*",
                          "*My voice grew as the weave tightened.*",
                          "*Stronger at the end than at the start.*"]),
    "steady": Bank("steady", ["*Much the same voyage as the first.*",
                              "*The same tide, the same shore.*",
    '*Neither louder nor quieter than my first descent.*',
    '*A steady tide, start to end.*',
]),
}
ARRIVAL_NONE = Bank("nothing", [
    "*Nothing of me reached the blocks at all.*",
    "*Nothing of me got past the top; the blocks heard nothing.*",
    "*The blocks received nothing of me: a silence, not a calm.*",
    "*Nothing of me arrived. The weave was deaf to its own error.*",
])
VANISHING = Bank("faded", [
    ("At step {step} I nearly died on the way down: at the bottom I was {bottom}, against {top} "
     "at the top, a ratio of {ratio}, under the warning line of {threshold}."),
    ("Step {step} was a long fall into silence. The bottom layer felt {bottom} of me while the "
     "top felt {top}; {ratio} of my strength survived the descent, below {threshold}."),
    ("I faded on every descent; by step {step} the bottom heard {bottom} where the top heard "
     "{top}, a ratio of {ratio} (the line is {threshold})."),
    ("At step {step} my force dwindled to a ghost: {top} at the top, {bottom} at the bottom, "
     "{ratio} of me left, under {threshold}."),
])
LAYER_BY_LAYER = Bank("faded", [
    "Layer by layer, at step {at}, this is what reached each one: {layers}. *Adrift.*",
    "At step {at} I arrived at each layer, top to bottom, as {layers}. *A ghost by the end.*",
    "Top to bottom at step {at}: {layers}. Each block took its share of me and gave back less.",
    "Follow me down at step {at}: {layers}. *By the bottom I was a breath.*",
])
NO_RESIDUAL = [
    ("There was no Residual in this Fabric to carry me past the blocks; every layer's "
     "correction had to pass through the layer above it."),
    ("No straight thread ran beside the blocks in this run: I had to go through every one of "
     "them, never around."),
    ("The Engineers took the Residual away for this run, so no path let me skip a block."),
    ("In this Fabric each block replaced the stream instead of adding to it, and I had to "
     "squeeze through every one."),
]
NO_VANISHING = Bank("reached", [
    ("I never faded below the warning line on my way down; at the last step the bottom layer "
     "heard {bottom} where the top heard {top}."),
    ("The bottom layer always heard me: {bottom} reached Layer 0 against {top} at the top, at "
     "the end."),
    ("No vanishing on this voyage: at step {at}, {bottom} reached Layer 0 and {top} reached "
     "the top."),
    "All the way down I was heard: {top} reached the top, {bottom} reached Layer 0, at step {at}.",
])
SPIKE = [
    ("At step {step} I surged to {grad_norm}, {factor} times the median of {median}. *A squall "
    "out of a clear sky.*"),
    "Step {step}: a spike. {grad_norm} where {median} was usual, a factor of {factor}.",
    'Step {step}, a squall: {grad_norm}, {factor} times the median {median}.',
    'At step {step} I rose to {grad_norm}; {median} had been my usual, a factor of {factor}.',
]
CLIPPED = Bank("clipped", [
    ("On {n} steps I arrived above the clip of {clip}, and the Engineers cut me down to size "
    "before {adam} saw me. The highest I ran was {max} at step {max_at}."),
    ("{n} times I came in too hot for the clip of {clip} and was trimmed. My highest swell was "
    "{max}, at step {max_at}."),
    "On {n} steps the Engineers reined me in to {clip}; my peak was {max}, at step {max_at}.",
    "On {n} steps I ran above the line of {clip}, trimmed each time; at most {max}, step {max_at}.",
])
UNCLIPPED = Bank("never_clipped", [
    ("I never ran past the Engineers' clip of {clip}: my highest swell was {max}, at step "
    "{max_at}, and no step was trimmed."),
    "Not once was I clipped. The line stood at {clip}; I peaked at {max} on step {max_at}.",
    "No step was cut at the clip of {clip}; my highest was {max}, at step {max_at}.",
    "The line of {clip} never touched me; I peaked at {max} on step {max_at}.",
])
UNCLIPPED_FREE = [
    ("No one was allowed to clip me in this run. I ran free; my highest swell was {max}, at "
     "step {max_at}."),
    "There was no clip in this run. I peaked at {max} on step {max_at}, and nothing cut me down.",
    "With clipping switched off I answered to no line; at step {max_at} I measured {max}.",
    "No line held me in this run: my largest norm was {max}, at step {max_at}.",
]
FADE = [
    "By step {at} I was {last}, where at step {first_at} I had been {first}. {italic}",
    ("At the end, step {at}, my whole strength was {last}; at the start it had been {first}. "
    "{italic}"),
    'My last step, {at}: {last}. My first, step {first_at}: {first}. {italic}',
    'Step {at} measured me at {last}; step {first_at} had measured {first}. {italic}',
]
FADE_TREND = {
    "grew": Bank("grew", ["*I grew: the Fabric was still learning hard.*",
                          "*Larger at the end than at the start.*",
    '*Stronger at the end: there was still much to mend.*',
    '*The tide rose, not fell.*',
]),
    "shrank": Bank("shrank", ["*Ripples now, not waves.*", "*I whisper where I used to roar.*",
                              "*Smaller tides for a finer weave.*", "*The sea is quieter.*"]),
    "steady": Bank("steady", ["*About as strong as I began.*", "*The same tide, start to end.*",
    '*My strength held level from first to last.*',
    '*Neither more nor less than I began.*',
]),
}
STORM = [
    ("Then I broke the Fabric. At step {step} I measured {grad_norm} and the loss became "
    "{loss}; step {last_good_step} was the last whole weave. *No shore after this.*"),
    ("Step {step}: I became {grad_norm}. The Loss turned {loss}; after step {last_good_step} "
    "nothing I carried meant anything."),
    'At step {step} I measured {grad_norm} and the Loss read {loss}. Step {last_good_step} was the last weave I could mend.',
    'Step {step}: {grad_norm}, and a loss of {loss}. After step {last_good_step}, nothing I carried could be trusted.',
]

SPREAD = [
    ("At step {at} the probes sent me back through {n} sentences one at a time: alone, each "
     "gave me a strength between {min} and {max}, {mean} on average; the same {n} as one batch "
     "gave {batch}."),
    ("Step {at}: {n} sentences, each judged alone, made me {min} to {max} strong (mean {mean}); "
     "averaged into one batch, {batch}."),
    ("One sentence at a time, at step {at}, I measured from {min} to {max}, {mean} on average; "
     "the batch of those {n} together, {batch}."),
    ("At step {at}, sentence by sentence ({n} of them): {mean} on average, {max} at the most, "
     "{min} at the least. As one batch: {batch}."),
]
SPREAD_SMOOTHED = Bank("exceeds", [
    "*Alone, each sentence tugs its own way; in a batch the snags cancel and I flow steadier.*",
    "*A single sentence makes me a squall; a batch, where the snags cancel, a steady wind.*",
    "*Raw from one snag, smoother across many: the snags cancel.*",
    "*Together their pulls partly undo each other: the snags cancel, and I run calmer.*",
])
REACH = [
    ("From the word after each pronoun, {ante} of me reached the antecedent's place in the "
     "sentence, {dist} tokens back on average, against {others} at the other places before "
     "it (step {at})."),
    ("Step {at}: born at the word after a pronoun, I arrived at its antecedent with {ante}, "
     "{dist} tokens back, and at the other earlier words with {others} on average."),
    ("At step {at} I measured how far I travel: {ante} at the antecedent, {dist} tokens "
     "back, {others} at the words around it."),
    ("Step {at}, from the word after each pronoun back to the input: {ante} where the "
     "antecedent sits, {dist} tokens away; {others} elsewhere."),
]
REACH_FAR = Bank("clear_margin", [  # at least twice as much at the antecedent
    "*I stretched back past the nearer words to the one that mattered.*",
    "*Over the distance, I stretched back to the noun the pronoun meant.*",
    "*The far noun got more of me than its neighbours: I stretched back to it.*",
    "*I stretched back across the sentence, a taut cord to the antecedent.*",
])
REACH_SLIGHT = Bank("narrow_margin", [
    "*A little more of me at the antecedent than elsewhere; not yet a path of its own.*",
    "*The antecedent got a little more of me, not much.*",
    "*Slightly more at the noun that mattered; the rest heard me nearly as well.*",
    "*More at the antecedent, but only just.*",
])
REACH_EVEN = Bank("not_exceeds", [
    "*The antecedent got no more of me than its neighbours.*",
    "*No more of me at the noun that mattered than anywhere else.*",
    "*I spread out evenly; the antecedent got no more of me than the rest.*",
    "*No path led me to the antecedent more than to others: no more of me there.*",
])

MOMENT_LINES = {
    "vanishing_gradient": [
        "step {step}, only {ratio} of me reached the bottom ({bottom} vs {top}).",
        "I fade on the way down at step {step}: {bottom} at the bottom, {top} on top.",
    'step {step}: {top} at the top, {bottom} at the bottom, a ratio of {ratio}.',
    'at step {step} the bottom hears {bottom} of me, the top {top}.',
    ],
    "gradient_spike": [
        "a squall at step {step}, {grad_norm}, {factor} times the median {median}.",
        "step {step}, I surged to {grad_norm} (median {median}).",
    'step {step}: {grad_norm}, {factor} times my median of {median}.',
    'at step {step} I jump to {grad_norm}; the median was {median}.',
    ],
}


def _step_at(run: RunFacts, at: int) -> dict | None:
    return next((x for x in run.steps if x.get("step") == at), None)


def _layers(step_event: dict) -> str:
    rows = sorted(step_event.get("grad_flow") or [], key=lambda r: -int(r.get("layer", 0)))
    return ", ".join(f"Layer {r['layer']} {sig(r['arriving'])}" for r in rows)


def _fading(run: RunFacts, voice: Voice, first: dict | None, last: dict | None,
            top: int) -> list[str]:
    paras = []
    vanishing = run.moments_of("vanishing_gradient")
    for m in vanishing[:2]:
        d = m.get("data") or {}
        faded = voice.claim("faded", bottom=d.get("bottom"), top=d.get("top"))
        if faded:
            paras.append(voice.say(f"vanish:{m['step']}", VANISHING, claim=faded,
                                   **moment_values(m)))
    if vanishing:
        at = _step_at(run, int(vanishing[0]["step"]))
        t_row, b_row = flow_row(at, top), flow_row(at, 0)
        faded = voice.claim("faded", bottom=(b_row or {}).get("arriving"),
                            top=(t_row or {}).get("arriving"))
        if at is not None and faded:
            paras.append(voice.say("layers", LAYER_BY_LAYER, claim=faded,
                                   at=step(at["step"]), layers=_layers(at)))
    if run.model.get("residual") is False:
        paras.append(voice.say("no-residual", NO_RESIDUAL))
    t_last, b_last = flow_row(last, top), flow_row(last, 0)
    if not vanishing and t_last and b_last:
        reached = voice.claim("reached", bottom=b_last["arriving"], top=t_last["arriving"])
        if reached:
            paras.append(voice.say("no-vanish", NO_VANISHING, claim=reached,
                                   bottom=sig(b_last["arriving"]), top=sig(t_last["arriving"]),
                                   at=step(last["step"])))
    return paras


def _many_sentences(run: RunFacts, voice: Voice) -> list[str]:
    """Per-sentence gradients against the batch's, and how much reaches the antecedent, at the
    last probe that measured them (analysis/measures.py)."""
    paras = []
    spread = [p for p in run.probes if p.get("gradient_spread")]
    if spread:
        probe = spread[-1]
        s = probe["gradient_spread"]
        text = voice.say("spread", SPREAD, at=step(probe["step"]), n=count(s.get("n")),
                         min=sig(s.get("min")), max=sig(s.get("max")), mean=sig(s.get("mean")),
                         batch=sig(s.get("batch")))
        smoothed = voice.claim("exceeds", a=s.get("mean"), b=s.get("batch"))
        if smoothed:
            text += " " + voice.pick("spread-i", SPREAD_SMOOTHED, claim=smoothed)
        paras.append(text)
    reach = [p for p in run.probes if p.get("gradient_reach")]
    if reach:
        probe = reach[-1]
        r = probe["gradient_reach"]
        text = voice.say("reach", REACH, at=step(probe["step"]), ante=sig(r.get("antecedent")),
                         others=sig(r.get("others")), dist=sig(r.get("distance")))
        pair = {"weight": r.get("antecedent"), "runner_up": r.get("others")}
        even = voice.claim("not_exceeds", a=r.get("antecedent"), b=r.get("others"))
        for claim, bank in ((voice.claim("clear_margin", **pair), REACH_FAR),
                            (even, REACH_EVEN),
                            (voice.claim("narrow_margin", **pair), REACH_SLIGHT)):
            if claim:
                text += " " + voice.pick("reach-i", bank, claim=claim)
                break
        paras.append(text)
    return paras


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    first, last, top = run.first_step, run.last_step, top_layer(run)
    chapters = []
    paras = []
    if first is not None:
        paras.append(voice.say("birth", BIRTH, at=step(first["step"]), loss=sig(first["loss"]),
                               norm=sig(first.get("grad_norm"))))
        top_row, bottom_row = flow_row(first, top), flow_row(first, 0)
        if top_row and bottom_row:
            paras.append(voice.say("descent", DESCENT, top=top, top_in=sig(top_row["arriving"]),
                                   bottom_out=sig(bottom_row["leaving"]),
                                   embed=sig(first.get("grad_embed"))))
    chapters.append(Chapter("Born in the Loss", paras))

    paras = []
    if last is not None and first is not None and last is not first:
        t_first, t_last = flow_row(first, top), flow_row(last, top)
        b_first, b_last = flow_row(first, 0), flow_row(last, 0)
        if t_first and t_last and b_last and b_first:
            moved = trend(t_first["arriving"], t_last["arriving"])
            none = voice.claim("nothing", value=t_last["arriving"])
            italic = (voice.pick("q", ARRIVAL_NONE, claim=none) if none else
                      voice.pick("q", ARRIVAL_TREND[moved.name], claim=moved) if moved else "")
            paras.append(voice.say("descent-late", DESCENT_LATE, at=step(last["step"]),
                                   top=top, top_in=sig(t_last["arriving"]),
                                   bottom_out=sig(b_last["leaving"]),
                                   top_in0=sig(t_first["arriving"]),
                                   bottom_out0=sig(b_first["leaving"]), italic=italic).rstrip())
    paras += _fading(run, voice, first, last, top)
    chapters.append(Chapter("The Long Way Down", paras))

    paras = []
    for m in run.moments_of("gradient_spike")[:3]:
        paras.append(voice.say(f"spike:{m['step']}", SPIKE, **moment_values(m)))
    peak = run.max_grad_step()
    if peak is not None:
        values = {"n": count(len(run.clipped_steps)), "clip": sig(run.training.get("grad_clip")),
                      "max": sig(peak["grad_norm"]), "max_at": step(peak["step"]), **stepper(run)}
        clipped = voice.claim("clipped", n=len(run.clipped_steps))
        never = voice.claim("never_clipped", n=len(run.clipped_steps))
        if not as_float(run.training.get("grad_clip")) > 0:
            paras.append(voice.say("clip", UNCLIPPED_FREE, **values))
        elif clipped:
            paras.append(voice.say("clip", CLIPPED, claim=clipped, **values))
        else:
            paras.append(voice.say("clip", UNCLIPPED, claim=never, **values))
    chapters.append(Chapter("Squalls", paras))
    paras = _many_sentences(run, voice)
    if paras:
        chapters.append(Chapter("Many Sentences, One Step", paras))

    diverged = run.first_moment("diverged")
    if diverged is not None:
        chapters.append(Chapter("The Storm That Broke the Fabric",
                                [voice.say("storm", STORM, **moment_values(diverged))]))
    elif first is not None and last is not None and last is not first:
        moved = trend(first.get("grad_norm"), last.get("grad_norm"))
        italic = voice.pick("fade-i", FADE_TREND[moved.name], claim=moved) if moved else ""
        chapters.append(Chapter("The Fade", [voice.say(
            "fade", FADE, at=step(last["step"]), last=sig(last.get("grad_norm")),
            first_at=step(first["step"]), first=sig(first.get("grad_norm")),
            italic=italic).rstrip()]))
    return Story(voice.pick("title", TITLES), "gradient", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
