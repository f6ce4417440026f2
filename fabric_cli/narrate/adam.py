"""Adam's voice: the helmsman who turns the Gradient into steps, and shrinks them as it nears.

Numbers: beta1/beta2/weight decay/lr from the training config, update/weight ratios per group
at the first and last good step, the lr at those steps, clipped-step count.
"""

from __future__ import annotations

from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, count, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "Adam"
COLOUR = "cyan"

TITLES = ["Adam: The Helmsman's Log", "Adam: Steps That Learned to Be Small"]
EPIGRAPH = [
    "I am Adam. The Gradient tells me where; I decide how far.",
    "I am Adam, keeper of two memories: where the tide has been pushing, and how hard.",
]
HELM = [
    ("I keep a running memory of the Gradient's direction, forgetting it at a rate set by a "
    "beta of {beta1}, and of its size, with a beta of {beta2}. I was given a peak learning "
    "rate of {lr} and a weight decay of {wd}. *Momentum for the calm, caution for the "
    "steep.*"),
    ("My two memories: the direction of the tide, averaged with a beta of {beta1}; its "
    "strength, with {beta2}. A learning rate of {lr} at most, and {wd} of decay to keep the "
    "weights from swelling."),
]
FIRST = [
    ("At step {at}, with the learning rate at only {lr}, my first steps were already bold "
    "ones: the unembedding moved by {unembed} of its length, the embeddings by {embed}."),
    ("My first step, step {at}, learning rate {lr}: the unembedding shifted {unembed} of its "
    "size, the embedding table {embed}. Bias correction makes a newborn optimiser brave."),
]
BLOCKS_EARLY = [
    "Inside the stack the early steps were {blocks}. *Large strides while nothing is right.*",
    "The blocks felt my early hand too: {blocks}.",
]
LATE = [
    ("By step {at} the learning rate was {lr}, and my steps had {word}: the unembedding moved by "
    "{unembed}, the embeddings by {embed}. {italic}"),
    ("At step {at}, near the end, with a rate of {lr}, I {word2} the steps to {unembed} of the "
    "unembedding's size and {embed} of the embeddings'. {italic}"),
]
SMALLER = ["*Small steps now. We are nearly there.*", "*Trim the sails; the harbour is close.*"]
LARGER = ["*Larger, not smaller: the run ended before I could settle.*"]
BLOCKS_LATE = [
    "In the blocks the late steps were {blocks}, against {early} at the start.",
]
CLIPS = [
    ("On {n} steps the Engineers trimmed the Gradient before it reached me, so on those steps "
    "my memory of its size was fed a tamer number."),
    ("{n} clipped steps came to me already cut down to size; I steered by what the Engineers "
    "let through."),
]
NO_CLIPS = [
    ("The Engineers never had to trim the Gradient before it reached me; every step I took was "
    "on its own raw word."),
]
STORM = [
    ("At step {at} the Gradient came to me as {grad}; no memory can average that away. Step "
    "{last_good} was the last step I took on solid ground, with a learning rate of {lr}."),
]

MOMENT_LINES: dict[str, list[str]] = {}


def _blocks(ratios: dict, n_layers: int) -> str:
    parts = [f"{sig(ratios[f'blocks.{i}'])} for block {i}" for i in range(n_layers)
             if f"blocks.{i}" in ratios]
    return ", ".join(parts)


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    tr, first, last = run.training, run.first_step, run.last_step
    n_layers = int(run.model.get("n_layers", 0))
    chapters = []
    paras = [voice.say("helm", HELM, beta1=sig(tr.get("beta1")), beta2=sig(tr.get("beta2")),
                       lr=sig(tr.get("lr")), wd=sig(tr.get("weight_decay")))]
    early = (first or {}).get("update_ratio") or {}
    if first is not None and "unembed" in early:
        paras.append(voice.say("first", FIRST, at=step(first["step"]), lr=sig(first.get("lr")),
                               unembed=sig(early["unembed"]), embed=sig(early.get("embed"))))
        if _blocks(early, n_layers):
            paras.append(voice.say("blocks-early", BLOCKS_EARLY, blocks=_blocks(early, n_layers)))
    chapters.append(Chapter("Taking the Helm", paras))

    paras = []
    late = (last or {}).get("update_ratio") or {}
    if last is not None and last is not first and "unembed" in late and "unembed" in early:
        smaller = as_float(late["unembed"]) < as_float(early["unembed"])
        paras.append(voice.say("late", LATE, at=step(last["step"]), lr=sig(last.get("lr")),
                               word="shrunk" if smaller else "grown",
                               word2="shrank" if smaller else "grew",
                               unembed=sig(late["unembed"]), embed=sig(late.get("embed")),
                               italic=voice.pick("late-i", SMALLER if smaller else LARGER)))
        if _blocks(late, n_layers):
            paras.append(voice.say("blocks-late", BLOCKS_LATE, blocks=_blocks(late, n_layers),
                                   early=_blocks(early, n_layers)))
    if run.steps:
        bank = CLIPS if run.clipped_steps else NO_CLIPS
        paras.append(voice.say("clips", bank, n=count(len(run.clipped_steps))))
    chapters.append(Chapter("Shrinking Steps", paras))

    diverged = run.first_moment("diverged")
    if diverged is not None:
        d = diverged.get("data") or {}
        chapters.append(Chapter("Lost at Sea", [voice.say(
            "storm", STORM, at=step(diverged["step"]), grad=sig(d.get("grad_norm")),
            last_good=step(d.get("last_good_step")), lr=sig(d.get("lr")))]))
    return Story(voice.pick("title", TITLES), "adam", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
