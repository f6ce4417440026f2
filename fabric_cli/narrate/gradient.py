"""The Gradient's voice: born in the loss, running backward through the layers, storms and calm.

Numbers: the global gradient norm (before clipping), grad_flow rows at the first and last good
step, the embeddings' share, vanishing/spike moments, the clipped-step count.
"""

from __future__ import annotations

from fabric_cli.narrate.common import flow_row, moment_values, top_layer
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, count, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "the Gradient"
COLOUR = "bright_red"

TITLES = ["The Gradient: A Tide Running Backward", "The Gradient: Downhill, Against the Current"]
EPIGRAPH = [
    "I am the Gradient, the tide that runs backward from every mistake.",
    "I am the Gradient: born where the Fabric is wrong, dead by the time it is mended.",
]
BIRTH = [
    ("At step {at} the Fabric guessed its next words and the Loss judged them at {loss}. "
    "From that judgment I rose, a tide of {norm} in total, and began to run backward. "
    "*Find where the weave went wrong.*"),
    ("I was born at step {at} out of a loss of {loss}: {norm} of pure correction, summed over "
    "every weight, looking for somewhere to go."),
]
DESCENT = [
    ("I reached the top of the stack, Layer {top}, with a norm of {top_in}, and left the "
    "bottom of Layer 0 at {bottom_out}. What was left of me, {embed}, soaked into the "
    "embeddings, where the words themselves are kept."),
    ("Down I went: {top_in} arriving at Layer {top}, {bottom_out} leaving Layer 0, and {embed} "
    "washing into the embedding table at the very end of my run."),
]
DESCENT_LATE = [
    ("By step {at} the same voyage was {word}: I arrived at Layer {top} at {top_in} and left "
    "Layer 0 at {bottom_out}. {italic}"),
    ("At step {at}, the last step I ran, my arrival at Layer {top} measured {top_in} and my exit "
    "from Layer 0 {bottom_out}, {word} than at the start. {italic}"),
]
QUIETER = ["*Less to mend. Or less that I can reach.*", "*The sea is calmer here.*"]
LOUDER = ["*More to say than at the start: the Fabric has learned where to listen.*",
          "*The weave is tighter, and every tug travels further.*"]
VANISHING = [
    ("At step {step} I nearly died on the way down: at the bottom I was {bottom}, against {top} "
    "at the top, a ratio of {ratio}, under the warning line of {threshold}. *Only the Residual "
    "kept a thread of me alive.*"),
    ("Step {step} was a long fall into silence. The bottom layer felt {bottom} of me while the "
    "top felt {top}; {ratio} of my strength survived the descent, below {threshold}."),
]
NO_VANISHING = [
    ("I never faded below the warning line on my way down; the chronicle records no vanishing "
    "step. The Residual carried me whole."),
]
SPIKE = [
    ("At step {step} I surged to {grad_norm}, {factor} times the median of {median}. *A squall "
    "out of a clear sky.*"),
    "Step {step}: a spike. {grad_norm} where {median} was usual, a factor of {factor}.",
]
CLIPPED = [
    ("On {n} steps I arrived above the clip of {clip}, and the Engineers cut me down to size "
    "before Adam saw me. The wildest I ran was {max} at step {max_at}."),
    ("{n} times I came in too hot for the clip of {clip} and was trimmed. My highest swell was "
    "{max}, at step {max_at}."),
]
UNCLIPPED = [
    ("I never ran past the Engineers' clip of {clip}: my highest swell was {max}, at step "
    "{max_at}, and no step was trimmed."),
    "Not once was I clipped. The line stood at {clip}; I peaked at {max} on step {max_at}.",
]
FADE = [
    ("By step {at} I was {last}, where at step {first_at} I had been {first}. *Smaller tides "
    "for a finer weave.*"),
    ("At the end, step {at}, my whole strength was {last}; at the start it had been {first}. "
    "{italic}"),
]
FADE_UP = ["*I grew, not shrank: the Fabric was still learning hard.*"]
FADE_DOWN = ["*Ripples now, not waves.*", "*I whisper where I used to roar.*"]
STORM = [
    ("Then I broke the Fabric. At step {step} I measured {grad_norm} and the loss became "
    "{loss}; step {last_good_step} was the last whole weave. *No shore after this.*"),
    ("Step {step}: I became {grad_norm}. The Loss turned {loss}; after step {last_good_step} "
    "nothing I carried meant anything."),
]

MOMENT_LINES = {
    "vanishing_gradient": [
        "step {step}, only {ratio} of me reached the bottom ({bottom} vs {top}).",
        "I fade on the way down at step {step}: {bottom} at the bottom, {top} on top.",
    ],
    "gradient_spike": [
        "a squall at step {step}, {grad_norm}, {factor} times the median {median}.",
        "step {step}, I surged to {grad_norm} (median {median}).",
    ],
}


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
        b_last = flow_row(last, 0)
        if t_first and t_last and b_last:
            quieter = as_float(t_last["arriving"]) < as_float(t_first["arriving"])
            paras.append(voice.say("descent-late", DESCENT_LATE, at=step(last["step"]),
                                   top=top, top_in=sig(t_last["arriving"]),
                                   bottom_out=sig(b_last["leaving"]),
                                   word="quieter" if quieter else "louder",
                                   italic=voice.pick("q", QUIETER if quieter else LOUDER)))
    vanishing = run.moments_of("vanishing_gradient")
    for m in vanishing[:2]:
        paras.append(voice.say(f"vanish:{m['step']}", VANISHING, **moment_values(m)))
    if not vanishing and run.steps:
        paras.append(voice.say("no-vanish", NO_VANISHING))
    chapters.append(Chapter("The Long Way Down", paras))

    paras = []
    for m in run.moments_of("gradient_spike")[:3]:
        paras.append(voice.say(f"spike:{m['step']}", SPIKE, **moment_values(m)))
    peak = run.max_grad_step()
    if peak is not None:
        bank = CLIPPED if run.clipped_steps else UNCLIPPED
        paras.append(voice.say("clip", bank, n=count(len(run.clipped_steps)),
                               clip=sig(run.training.get("grad_clip")),
                               max=sig(peak["grad_norm"]), max_at=step(peak["step"])))
    chapters.append(Chapter("Squalls", paras))

    diverged = run.first_moment("diverged")
    if diverged is not None:
        chapters.append(Chapter("The Storm That Broke the Fabric",
                                [voice.say("storm", STORM, **moment_values(diverged))]))
    elif first is not None and last is not None and last is not first:
        down = as_float(last.get("grad_norm")) < as_float(first.get("grad_norm"))
        chapters.append(Chapter("The Fade", [voice.say(
            "fade", FADE, at=step(last["step"]), last=sig(last.get("grad_norm")),
            first_at=step(first["step"]), first=sig(first.get("grad_norm")),
            italic=voice.pick("fade-i", FADE_DOWN if down else FADE_UP))]))
    return Story(voice.pick("title", TITLES), "gradient", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
