"""The Residual connection's voice: the straight thread that carries the Gradient past blocks.

Numbers: grad_flow rows (`skip` = what the identity path carried, `block` = what the attention
and MLP branches added, `leaving`) at the first and last good step; vanishing moments.
"""

from __future__ import annotations

from fabric_cli.narrate.common import flow_row, moment_values, top_layer
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "the Residual"
COLOUR = "blue"

TITLES = ["The Residual: The Straight Thread", "The Residual: What Passes Through Unchanged"]
EPIGRAPH = [
    "I am the Residual Connection, the warp thread running the length of the loom.",
    "I am the Residual: I add, I never forget, I carry everything home.",
]
INTRO = [
    ("Every block of the Fabric writes onto me and none may erase me. There are {n_layers} of "
    "them, each adding what it learned to a stream {d_model} wide, and I carry the sum upward "
    "unchanged. *Stay anchored. Add, don't replace.*"),
    ("I am the stream the {n_layers} blocks write into: {d_model} channels wide, added to, "
    "never overwritten. What a block forgets, I still hold."),
]
EARLY = [
    ("At step {at} the Gradient came down to Layer {layer} at {skip}, and I carried every bit "
    "of that straight past the block; the attention and MLP branches added {block} on top, and "
    "{leaving} left the layer below. {italic}"),
    ("Step {at}: of the correction leaving Layer {layer} (norm {leaving}), my identity path "
    "brought {skip} through untouched while the block's branches contributed {block}. "
    "{italic}"),
]
LATE = [
    ("By step {at}, at Layer {layer} I carried {skip}, the branches {block}. "
    "{italic}"),
    ("At the last step, {at}, Layer {layer} saw {skip} along my thread and {block} through "
    "the block. {italic}"),
]
BRANCH_LESS = ["*I was the larger share: the blocks were still finding their voice.*",
               "*The straight thread carried more than the weave around it.*"]
BRANCH_MORE = ["*The blocks added more than I carried: they had become worth listening to.*",
               "*Now the weave speaks louder than the thread beneath it.*"]
BOTTOM = [
    ("All the way down, at Layer 0, I delivered {arriving} and the last block lifted it to "
    "{leaving} before it reached the embeddings, at step {at}."),
    ("At the bottom, at step {at}: {arriving} arrived on my thread, {leaving} left Layer 0 for "
    "the embeddings."),
]
VANISH = [
    ("At step {step} the Gradient was failing, {bottom} at the bottom against {top} at the top. "
    "Whatever reached the bottom reached it along me. *Hold this.*"),
]
STEADY = [
    ("The chronicle marks no step where the Gradient vanished on its way down; the bottom layer "
    "always heard it."),
]

MOMENT_LINES: dict[str, list[str]] = {}


def _flow_paragraph(voice: Voice, slot: str, bank: list[str], at: int, row: dict) -> str:
    block_more = as_float(row["block"]) > as_float(row["skip"])
    italic = voice.pick(slot + ":i", BRANCH_MORE if block_more else BRANCH_LESS)
    return voice.say(slot, bank, at=step(at), layer=row["layer"], skip=sig(row["skip"]),
                     block=sig(row["block"]), leaving=sig(row["leaving"]), italic=italic)


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    first, last, top = run.first_step, run.last_step, top_layer(run)
    chapters = [Chapter("The Warp Thread", [voice.say(
        "intro", INTRO, n_layers=run.model.get("n_layers", "?"),
        d_model=run.model.get("d_model", "?"))])]
    paras = []
    if first is not None and flow_row(first, top):
        paras.append(_flow_paragraph(voice, "early", EARLY, first["step"], flow_row(first, top)))
    if last is not None and last is not first and flow_row(last, top):
        paras.append(_flow_paragraph(voice, "late", LATE, last["step"], flow_row(last, top)))
    chapters.append(Chapter("Carrying the Gradient", paras))
    paras = []
    bottom_step = last or first
    row = flow_row(bottom_step, 0)
    if row is not None:
        paras.append(voice.say("bottom", BOTTOM, arriving=sig(row["arriving"]),
                               leaving=sig(row["leaving"]), at=step(bottom_step["step"])))
    vanishing = run.moments_of("vanishing_gradient")
    for m in vanishing[:1]:
        paras.append(voice.say("vanish", VANISH, **moment_values(m)))
    if not vanishing and run.steps:
        paras.append(voice.say("steady", STEADY))
    chapters.append(Chapter("Down to the Embeddings", paras))
    return Story(voice.pick("title", TITLES), "residual", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
