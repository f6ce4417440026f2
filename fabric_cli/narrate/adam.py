"""Adam's voice: the helmsman who turns the Gradient into steps, and shrinks them as it nears.

Numbers: beta1/beta2/weight decay/lr from the training config, update/weight ratios per group
at the first and last good step, the lr at those steps, clipped-step count.
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank, trend_all
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, count, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "Adam"

TITLES = ["Adam: The Helmsman's Log", "Adam: How Far, Each Time", "Adam: Two Memories",
          "Adam: The Steady Hand"]
EPIGRAPH = [
    "I am Adam. The Gradient tells me where; I decide how far.",
    "I am Adam, keeper of two memories: where the tide has been pushing, and how hard.",
    'I am Adam: a memory of where the Gradient pushed, and of how hard.',
    'I am Adam. I cannot choose the direction; I choose the stride.',
]
HELM = [
    ("I keep a running memory of the Gradient's direction, forgetting it at a rate set by a "
    "beta of {beta1}, and of its size, with a beta of {beta2}. I was given a peak learning "
    "rate of {lr} and a weight decay of {wd}. *Momentum for the calm, caution for the "
    "steep.*"),
    ("My two memories: the direction of the tide, averaged with a beta of {beta1}; its "
    "strength, with {beta2}. A learning rate of {lr} at most, and {wd} of decay to keep the "
    "weights from swelling."),
    'I remember the Gradient twice over: its direction, forgotten at a beta of {beta1}, and its strength, at {beta2}. My ceiling was a learning rate of {lr}; my weight decay, {wd}.',
    'Two running averages are all I am: {beta1} for the direction, {beta2} for the size. A peak rate of {lr}, a decay of {wd}. *Momentum for the calm, caution for the steep.*',
]
FIRST = [
    ("At step {at}, with the learning rate at only {lr}, my first steps were already bold "
    "ones: the unembedding moved by {unembed} of its length, the embeddings by {embed}."),
    ("My first step, step {at}, learning rate {lr}: the unembedding shifted {unembed} of its "
    "size, the embedding table {embed}. Bias correction makes a newborn optimiser brave."),
    "Step {at}, my first: the rate was {lr}, yet the unembedding moved {unembed} of its length and the embeddings {embed}. A new optimiser's memory is short, and its steps are bold.",
    "I began at step {at} with a rate of {lr}: {unembed} of the unembedding's size, {embed} of the embeddings'.",
]
BLOCKS_EARLY = [
    "Inside the stack the early steps were {blocks}.",
    "The blocks felt my early hand too: {blocks}.",
    "In the blocks my first strides measured {blocks}.",
    "The stack beneath took steps of {blocks}.",
]
LATE = [
    ("By step {at} the learning rate was {lr}; the unembedding moved by {unembed} of its "
    "length, the embeddings by {embed}, where at the start they moved {unembed0} and {embed0}."),
    ("At step {at}, near the end, with a rate of {lr}: {unembed} of the unembedding's size and "
    "{embed} of the embeddings' per step, against {unembed0} and {embed0} at first."),
    ("Late, at step {at} (rate {lr}), my steps measured {unembed} on the unembedding and {embed} "
    "on the embeddings; my first ones had measured {unembed0} and {embed0}."),
    ("Step {at}, a rate of {lr}. The unembedding now moved {unembed} per step, the embeddings "
    "{embed}; at the beginning, {unembed0} and {embed0}."),
]
# The inner line says how the steps moved: every group it names, compared early vs late.
SMALLER = Bank("all_shrank", [
    "*Small steps now. We are nearly there.*", "*Trim the sails; the harbour is close.*",
    "*Every stride shorter than the last; the weights are finding their places.*",
    "*Smaller steps, surer steps.*",
])
LARGER = Bank("all_grew", [
    "*Larger steps at the end: the run ended before I could settle.*",
    "*My steps grew; there was still ground to cover.*",
    "*Longer strides at the end than at the start. No harbour yet.*",
    "*I grew bolder, not calmer.*",
])
MIXED = Bank("mixed", [  # not all shrank and not all grew: perhaps none shrank, or none grew
    "*Not all my steps changed alike: the parts of the Fabric kept their own paces.*",
    "*My strides did not all change the same way; the weave was settling unevenly.*",
    "*A mixed sea: no one trend across the Fabric.*",
    "*Each part of the Fabric kept its own pace.*",
])
TREND = {"all_shrank": SMALLER, "all_grew": LARGER, "mixed": MIXED}
BLOCKS_LATE = [
    "In the blocks the late steps were {blocks}, against {early} at the start.",
    "Inside the stack: {blocks} late, {early} early.",
    "The blocks moved {blocks} at the end; at the start, {early}.",
    "For the blocks, {blocks} now, where it was {early}.",
]
CLIPS = Bank("clipped", [
    ("On {n} steps the Engineers trimmed the Gradient before it reached me, so on those steps "
    "my memory of its size was fed a tamer number."),
    ("{n} clipped steps came to me already cut down to size; I steered by what the Engineers "
    "let through."),
    "{n} steps reached me trimmed by the Engineers; my memory of the Gradient's size is tamer for it.",
    "The Engineers trimmed {n} steps before I saw them.",
])
NO_CLIPS = Bank("never_clipped", [
    ("The Engineers never had to trim the Gradient before it reached me; every step I took was "
    "on its own raw word."),
    "No step reached me cut down; I steered by the Gradient's own word every time.",
    'The Gradient reached me whole on every step; the Engineers never cut it.',
    "Not one step came to me cut: every correction I steered by was the Gradient's own.",
])
EPIGRAPH_ABSENT = [
    "I am Adam, and this is the story of a voyage I was not on.",
    "I am Adam. In this run another hand held the helm.",
    "I am Adam: what follows is what the Fabric did without my two memories.",
    "I am Adam, left ashore for this run.",
]
ABSENT = [
    ("In this run I was not at the helm. The scenario chose {optimizer}: every step was the "
     "Gradient times a learning rate of {lr}, with no memory of its size to temper it."),
    ("This Fabric sailed without me: the optimiser was {optimizer}, at a learning rate of {lr}. "
     "No running memory of the Gradient's strength, no step sized to fit each weight."),
    ("I was switched off for this run; {optimizer} steered instead, at {lr}. What I would have "
     "smoothed, it took raw."),
    "Not my voyage: {optimizer} took the helm at a learning rate of {lr}.",
]
STORM = [
    ("At step {at} the Gradient came to me as {grad}; no memory can average that away. Step "
    "{last_good} was the last step I took on solid ground, with a learning rate of {lr}."),
    'At step {at} the Gradient arrived as {grad}, and my memories filled with it. Step {last_good} was my last sound step, at a rate of {lr}.',
    'Step {at}: {grad}. Nothing I remember can steady that. The last good step was {last_good}, the rate {lr}.',
    'The Gradient came as {grad} at step {at}. I had steered well until step {last_good}, at {lr}; no further.',
]

MOMENT_LINES: dict[str, list[str]] = {}


def _blocks(ratios: dict, n_layers: int) -> str:
    """Each block's step size as written; one figure for all when every block reads the same
    ("0.000735 for each of the 3 blocks", not the same number three times)."""
    written = [(i, sig(ratios[f"blocks.{i}"])) for i in range(n_layers) if f"blocks.{i}" in ratios]
    if len(written) >= 2 and len(written) == n_layers and len({w for _, w in written}) == 1:
        return f"{written[0][1]} for each of the {n_layers} blocks"
    return ", ".join(f"{w} for block {i}" for i, w in written)


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    tr, first, last = run.training, run.first_step, run.last_step
    if tr.get("optimizer", "adamw") != "adamw":
        name = {"sgd": "plain SGD", "momentum": "SGD with momentum"}.get(
            str(tr.get("optimizer")), str(tr.get("optimizer")))
        return Story(voice.pick("title", TITLES), "adam", [Chapter("Not at the Helm", [
            voice.say("absent", ABSENT, optimizer=name, lr=sig(tr.get("lr")))])],
            voice.pick("epigraph", EPIGRAPH_ABSENT))
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
        groups = ["unembed", "embed", *(f"blocks.{i}" for i in range(n_layers))]
        pairs = [(early[g], late[g]) for g in groups if g in early and g in late]
        moved = trend_all(pairs)
        text = voice.say("late", LATE, at=step(last["step"]), lr=sig(last.get("lr")),
                         unembed=sig(late["unembed"]), embed=sig(late.get("embed")),
                         unembed0=sig(early["unembed"]), embed0=sig(early.get("embed")))
        if _blocks(late, n_layers):
            text += " " + voice.say("blocks-late", BLOCKS_LATE, blocks=_blocks(late, n_layers),
                                    early=_blocks(early, n_layers))
        if moved:
            text += " " + voice.pick("late-i", TREND[moved.name], claim=moved)
        paras.append(text)
    clipped = voice.claim("clipped", n=len(run.clipped_steps))
    never = voice.claim("never_clipped", n=len(run.clipped_steps))
    if run.steps and as_float(tr.get("grad_clip")) > 0:
        paras.append(voice.say("clips", CLIPS if clipped else NO_CLIPS,
                               claim=clipped if clipped else never,
                               n=count(len(run.clipped_steps))))
    chapters.append(Chapter("The Long Haul", paras))

    diverged = run.first_moment("diverged")
    if diverged is not None:
        d = diverged.get("data") or {}
        chapters.append(Chapter("Lost at Sea", [voice.say(
            "storm", STORM, at=step(diverged["step"]), grad=sig(d.get("grad_norm")),
            last_good=step(d.get("last_good_step")), lr=sig(d.get("lr")))]))
    return Story(voice.pick("title", TITLES), "adam", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
