"""The Residual connection's voice: the straight thread that carries the Gradient past blocks.

Numbers: grad_flow rows (`skip` = what the identity path carried, `block` = what the attention
and MLP branches added, `leaving`) at the first and last good step; vanishing moments.
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank
from fabric_cli.narrate.common import flow_row, moment_values, top_layer
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import head_name, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "the Residual"

TITLES = ["The Residual: The Straight Thread", "The Residual: What Passes Through Unchanged",
    'The Residual: The Thread Beneath',
    'The Residual: Add, Never Replace',
]
EPIGRAPH = [
    "I am the Residual Connection, the warp thread running the length of the loom.",
    "I am the Residual: I add, I never forget, I carry everything home.",
    'I am the Residual: the stream every block writes into and none can erase.',
    'I am the Residual Connection. I carry the sum, and I carry the Gradient home.',
]
INTRO = [
    ("Every block of the Fabric writes onto me and none may erase me. There are {n_layers} of "
    "them, each adding what it learned to a stream {d_model} wide, and I carry the sum upward "
    "unchanged. *Stay anchored. Add, don't replace.*"),
    ("I am the stream the {n_layers} blocks write into: {d_model} channels wide, added to, "
    "never overwritten. What a block forgets, I still hold."),
    '{n_layers} blocks write into me, {d_model} channels wide; none replaces what I hold. *Stay anchored.*',
    'I am {d_model} channels wide and run through all {n_layers} blocks. Each adds; I keep.',
]
EARLY = [
    ("At step {at} the Gradient came down to Layer {layer} at {skip}, and I carried every bit "
    "of that straight past the block; the attention and MLP branches added {block} on top, and "
    "{leaving} left the layer below. {italic}"),
    ("Step {at}: of the correction leaving Layer {layer} (norm {leaving}), my identity path "
    "brought {skip} through untouched while the block's branches contributed {block}. "
    "{italic}"),
    "At step {at}, Layer {layer}: {skip} came straight along me, {block} through the block's branches, {leaving} left below. {italic}",
    'Step {at}, at Layer {layer}, the Gradient split: {skip} along my thread, {block} through the branches; {leaving} went on down. {italic}',
]
LATE = [
    ("By step {at}, at Layer {layer} I carried {skip}, the branches {block}. "
    "{italic}"),
    ("At the last step, {at}, Layer {layer} saw {skip} along my thread and {block} through "
    "the block. {italic}"),
    'At step {at}, Layer {layer}: {skip} along me, {block} through the branches. {italic}',
    'Step {at}: my thread carried {skip} at Layer {layer}; the branches, {block}. {italic}',
]
BRANCH_LESS = Bank("branch_less", [
    "*My share was the bigger one: the blocks were still finding their voice.*",
    "*The straight thread carried more than the weave around it.*",
    "*More came along me than through the blocks.*",
    "*I carried the most of it; the branches added less.*",
])
BRANCH_MORE = Bank("branch_more", [
    "*The blocks added more than I carried: they had become worth listening to.*",
    "*Now the weave speaks above the thread beneath it.*",
    "*The branches outweighed me here.*",
    "*More came through the blocks than along me.*",
])
BOTTOM = [
    ("All the way down, at Layer 0, I delivered {arriving}, and {leaving} left Layer 0 for the "
    "embeddings, at step {at}."),
    ("At the bottom, at step {at}: {arriving} arrived on my thread, {leaving} left Layer 0 for "
    "the embeddings."),
    'At step {at}, Layer 0 received {arriving} on my thread and passed {leaving} to the embeddings.',
    'Down at Layer 0, step {at}: {arriving} in, {leaving} out to the embedding table.',
]
VANISH = [
    ("At step {step} the Gradient was failing, {bottom} at the bottom against {top} at the top. "
     "Whatever reached the bottom reached it along me. *Hold this.*"),
    ("Step {step}: {bottom} of the Gradient reached the bottom, {top} the top. I held the thread "
     "it clung to."),
    'At step {step} only {bottom} reached the bottom, against {top} at the top; what got there came along me.',
    'Step {step}: the bottom heard {bottom}, the top {top}. *Hold this,* I said, and carried it.',
]
STEADY = Bank("reached", [
    ("The chronicle marks no step where the Gradient vanished on its way down; at the last step "
     "the bottom layer heard {bottom} where the top heard {top}."),
    "No vanishing: at the end {bottom} reached the bottom along me, {top} the top.",
    "The bottom layer always heard the Gradient; at step {at}, {bottom} against {top} on top.",
    "I carried the Gradient whole enough: {bottom} at the bottom, {top} at the top, step {at}.",
])
ABSENT = [
    ("In this run I was not there. The Engineers took me out: each of the {n_layers} blocks "
     "replaced the stream instead of adding to it, and the Gradient had to pass through every "
     "block to go down. At step {at}, of {top} arriving at the top, {bottom} reached the "
     "bottom."),
    ("This Fabric was woven without me: no block could add to a stream that remembered; each "
     "overwrote it. At step {at} the Gradient reached the top layer at {top} and the bottom at "
     "{bottom}."),
    ("I was switched off for this run. Without my straight thread, what arrived at Layer 0 at "
     "step {at} was {bottom}, against {top} at Layer {top_layer}."),
    ("No Residual here: {n_layers} blocks, each replacing what came before. At step {at}, "
     "{top} at the top and {bottom} at the bottom."),
]
ABSENT_RATIO = Bank("faded", [
    "*Without me, the correction that reached Layer 0 was {ratio} of what reached the top.*",
    "*{ratio} of it survived the descent. That is what I am for.*",
    "*Only {ratio} of the top's share reached the bottom. I would have carried it.*",
    "*A ratio of {ratio}, bottom to top. With me, it would not fade so.*",
])

BLEND = [
    ("At step {at}, at the pronouns, {who} wrote a signal of norm {head_norm} into me, where I "
     "already carried {resid_norm} at Layer {layer}: its own thread, blended with the raw "
     "sequence."),
    ("{who}'s output at the pronouns measured {head_norm} at step {at}; the stream it joined "
     "at Layer {layer} measured {resid_norm}."),
    ("Step {at}: {who} added {head_norm} to a stream of {resid_norm} at Layer {layer}, at every "
     "pronoun. I blended it in."),
    ("I hummed beneath {who}: at step {at} it wrote {head_norm} at each pronoun into my "
     "{resid_norm}, at Layer {layer}."),
]
BLEND_SMALL = Bank("small_share", [
    "*A small voice in a wide stream, added to it, never replacing it.*",
    "*Smaller than what I carried: a small voice, added, never replacing.*",
    "*A small voice beside me; I keep the roots while it stretches.*",
    "*Stay anchored, I told it: a small voice on a long thread.*",
])
BLEND_FAIR = Bank("fair_share", [
    "*Less than what I carried, but no whisper: a real share of the stream.*",
    "*A voice of real weight in me, if not yet the loudest.*",
    "*Not the main thread here, and far from a faint one.*",
    "*Below the stream it joined, and heard by every layer above.*",
])
BLEND_LARGE = Bank("exceeds", [
    "*Louder than the stream it joined: it had become the main thread here.*",
    "*It outweighed what I carried at that place.*",
    '*Its voice outweighed the stream it joined.*',
    '*Here the head spoke louder than the stream it joined.*',
])
VANISH_ABSENT = [
    ("By step {step} the detector had marked it: {bottom} at the bottom against {top} at "
     "the top, under its line of {threshold}."),
    "At step {step} the fading was marked: bottom {bottom}, top {top}.",
    "Step {step}: the bottom heard {bottom}, the top {top}.",
    "At step {step} the bottom layer heard {bottom} of the Gradient; the top heard {top}.",
]
EPIGRAPH_ABSENT = [
    "I am the Residual Connection, and in this Fabric I was cut.",
    "I am the Residual. This is what the Gradient met without me.",
    "I am the straight thread the Engineers took away for this run.",
    "I am the Residual: absent here, and the absence was measured.",
]
TITLES_ABSENT = ["The Residual: The Thread That Was Not There",
                 "The Residual: What My Absence Cost",
    'The Residual: Taken Away',
    'The Residual: A Fabric Without Me',
]

MOMENT_LINES: dict[str, list[str]] = {}


def _flow_paragraph(voice: Voice, slot: str, bank: list[str], at: int, row: dict) -> str:
    more = voice.claim("branch_more", skip=row["skip"], block=row["block"])
    less = voice.claim("branch_less", skip=row["skip"], block=row["block"])
    italic = voice.pick(slot + ":i", BRANCH_MORE if more else BRANCH_LESS,
                        claim=more if more else less) if (more or less) else ""
    return voice.say(slot, bank, at=step(at), layer=row["layer"], skip=sig(row["skip"]),
                     block=sig(row["block"]), leaving=sig(row["leaving"]),
                     italic=italic).rstrip()  # no italic (a gradient of 0): no trailing space


def _blend(run: RunFacts, voice: Voice) -> str | None:
    """The pronoun head's own output against the stream it writes into (analysis/measures.py),
    at the last probe that measured it."""
    measured = [p for p in run.probes if p.get("head_share")]
    if not measured:
        return None
    probe = measured[-1]
    share = probe["head_share"]
    text = voice.say("blend", BLEND, at=step(probe["step"]),
                     who=head_name(share["layer"], share["head"]), layer=share["layer"],
                     head_norm=sig(share.get("head_norm")), resid_norm=sig(share.get("resid_norm")))
    norms = {"a": share.get("head_norm"), "b": share.get("resid_norm")}
    for fact, bank in (("small_share", BLEND_SMALL), ("fair_share", BLEND_FAIR),
                       ("exceeds", BLEND_LARGE)):
        claim = voice.claim(fact, **norms)
        if claim:
            text += " " + voice.pick("blend-i", bank, claim=claim)
            break
    return text


def _absent(run: RunFacts, voice: Voice, top: int) -> Story:
    paras = []
    at = run.last_step
    t_row, b_row = flow_row(at, top), flow_row(at, 0)
    if t_row and b_row:
        paras.append(voice.say("absent", ABSENT, n_layers=run.model.get("n_layers", "?"),
                               at=step(at["step"]), top=sig(t_row["arriving"]),
                               bottom=sig(b_row["arriving"]), top_layer=top))
    for m in run.moments_of("vanishing_gradient")[:1]:
        d = m.get("data") or {}
        text = voice.say("vanish", VANISH_ABSENT, **moment_values(m))
        faded = voice.claim("faded", bottom=d.get("bottom"), top=d.get("top"))
        if faded:  # the ratio the detector measured, bottom over top, at that step
            text += " " + voice.say("absent-ratio", ABSENT_RATIO, claim=faded,
                                    ratio=sig(d.get("ratio")))
        paras.append(text)
    return Story(voice.pick("title", TITLES_ABSENT), "residual",
                 [Chapter("Not Woven In", paras)] if paras else [],
                 voice.pick("epigraph", EPIGRAPH_ABSENT))


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    first, last, top = run.first_step, run.last_step, top_layer(run)
    if run.model.get("residual") is False:
        return _absent(run, voice, top)
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
    t_row = flow_row(bottom_step, top)
    if not vanishing and row is not None and t_row is not None:
        reached = voice.claim("reached", bottom=row["arriving"], top=t_row["arriving"])
        if reached:
            paras.append(voice.say("steady", STEADY, claim=reached, bottom=sig(row["arriving"]),
                                   top=sig(t_row["arriving"]), at=step(bottom_step["step"])))
    chapters.append(Chapter("Down to the Embeddings", paras))
    blend = _blend(run, voice)
    if blend:
        chapters.insert(2, Chapter("Blending", [blend]))
    return Story(voice.pick("title", TITLES), "residual", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
