"""LayerNorm's voice: the weaver who trues the tension before every block reads the stream.

Numbers: the `layernorm` stats of step events (in_mean, in_std, out_std) at the first and last
good step, for the first block's ln1 and the final LN.
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank, trend
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "LayerNorm"

TITLES = ["LayerNorm: Truing the Tension", "LayerNorm: Every Thread to the Same Pull",
    'LayerNorm: The Even Hand',
    'LayerNorm: Tension, Trued',
]
EPIGRAPH = [
    "I am LayerNorm. Whatever arrives, too slack or too taut, leaves me at an even tension.",
    "I am LayerNorm, the weaver's hand that evens every row before the next pass.",
    'I am LayerNorm. Before every block reads the stream, I even it.',
    'I am LayerNorm: mean to zero, spread to one, then a gain and a shift of my own.',
]
FIRST = [
    ("At step {at}, before {name} let its block read the stream, I measured it: a spread of "
    "{in_std} around a mean of {in_mean}. I pulled it to a spread of {out_std}. *Even "
    "tension, then weave.*"),
    ("Step {at}, at {name}: the stream came to me with a standard deviation of {in_std} and a "
    "mean of {in_mean}; it left with {out_std}."),
    'At {name}, step {at}, the stream arrived with a mean of {in_mean} and a spread of {in_std}; I sent it on with a spread of {out_std}.',
    'Step {at}: {name} received a spread of {in_std} (mean {in_mean}) and passed on {out_std}. *Even tension, then weave.*',
]
LATE = [
    ("By step {at} the same place, {name}, brought me a stream with a spread of {in_std} "
     "(it was {in_std0}). I still sent it on at {out_std}. {italic}"),
    ("At step {at} {name} fed me a spread of {in_std}, against {in_std0} at the start, and I "
     "answered with {out_std}, as I always do. {italic}"),
    ("Step {at}, {name}: {in_std} in (at first {in_std0}), {out_std} out. {italic}"),
    ("Late in the run, step {at}, {name} carried a spread of {in_std}; at step one it was "
     "{in_std0}. Out of me: {out_std}. {italic}"),
]
SPREAD_TREND = {
    "grew": Bank("grew", [
        "*The blocks have been writing into the stream; someone must keep the tension true.*",
        "*Louder voices, same even cloth.*", "*The stream swelled; I evened it.*",
        "*Wider than it began, and evened all the same.*"]),
    "shrank": Bank("shrank", ["*Quieter than it began. I lift it to the same pull.*",
                              "*A narrower stream, lifted to the same tension.*",
    '*It arrived quieter; I lifted it.*',
    '*Less spread than at first, evened all the same.*',
]),
    "steady": Bank("steady", ["*Much as it began.*", "*The same tension in, the same out.*",
    '*The stream kept its scale.*',
    '*No change worth naming in what reached me.*',
]),
}
FINAL = [
    ("The last of us, {name}, stands before the unembedding. At step {at} it took a spread "
    "of {in_std} and gave {out_std}, so the words are chosen from an even weave."),
    ("At the very top, {name} at step {at}: {in_std} in, {out_std} out. What the Fabric says "
    "next is read from my work."),
    '{name}, the last of us, at step {at}: a spread of {in_std} in, {out_std} out, just before the words are chosen.',
    'Before the unembedding, {name} at step {at} took {in_std} and gave {out_std}.',
]
COUNT = [  # only when the stats list is exactly ln1, ln2 per block plus ln_final
    ("There are {n} of us in this Fabric, a pair in each block and one at the top, and the "
    "chronicle measured every one of us on every step."),
    ("We are {n} in all: before attention and before the MLP in every block, and once more at "
    "the top."),
    '{n} of us in all: two in each block, one at the top, each measured every step.',
    'We are {n}: before attention, before the MLP, block after block, and once at the very top.',
]
COUNT_ANY = ["There are {n} of us in this Fabric, each measured on every step.",
    'We are {n} in this Fabric, each measured at every step.',
    '{n} of us, measured every step.',
    'There are {n} LayerNorms in this Fabric; the chronicle measured each, every step.',
]
STORM = [  # the diverged moment's own numbers: the loss and the gradient it measured
    ("At step {at} the Fabric tore: a loss of {loss}, a gradient of {grad}. No normalising "
     "trues a weave that has come apart."),
    "At step {at} the loss read {loss} and the gradient {grad}; there was no tension left to true.",
    "Step {at}: loss {loss}, gradient {grad}. I cannot even that.",
    "By step {at} (loss {loss}, gradient {grad}) my work meant nothing.",
]

MOMENT_LINES: dict[str, list[str]] = {}


def _ln(step_event: dict | None, name: str) -> dict | None:
    for row in (step_event or {}).get("layernorm") or []:
        if row.get("name") == name:
            return row
    return None


def _names(step_event: dict | None) -> list[str]:
    return [str(r.get("name")) for r in (step_event or {}).get("layernorm") or []]


EPIGRAPH_ABSENT = [
    "I am LayerNorm, and this Fabric was woven without me.",
    "I am LayerNorm. In this run no one evened the stream.",
    "I am LayerNorm: the story of a Fabric whose rows were never trued.",
    "I am LayerNorm, absent from this loom.",
]
ABSENT = [
    ("In this run I was not there: no LayerNorm before attention, none before the MLP, none "
     "at the top. Whatever scale the blocks wrote into the stream, the next block read as it "
     "was."),
    ("The Engineers wove this Fabric without me. Nothing trued the stream's tension between "
     "blocks; each read whatever spread the one below had left."),
    ("No LayerNorm anywhere in this Fabric: the stream reached every block and the "
     "unembedding at whatever scale it had."),
    "I was switched off for this run. No row was evened; every block took the stream as it came.",
]


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    first, last = run.first_step, run.last_step
    if "normalization_type" in run.model and run.model.get("normalization_type") is None:
        return Story(voice.pick("title", TITLES), "layernorm",
                     [Chapter("Not Woven In", [voice.say("absent", ABSENT)])],
                     voice.pick("epigraph", EPIGRAPH_ABSENT))
    names = _names(first)
    chapters = []
    if names:
        inner, outer = names[0], names[-1]
        a = _ln(first, inner)
        paras = [voice.say("first", FIRST, at=step(first["step"]), name=inner,
                           in_std=sig(a["in_std"]), in_mean=sig(a["in_mean"]),
                           out_std=sig(a["out_std"]))]
        paired = len(names) == 2 * int(run.model.get("n_layers", -1)) + 1
        paras.append(voice.say("count", COUNT if paired else COUNT_ANY, n=str(len(names))))
        chapters.append(Chapter("Even Tension", paras))
        b = _ln(last, inner)
        if last is not first and b is not None:
            moved = trend(a["in_std"], b["in_std"])
            italic = voice.pick("late-i", SPREAD_TREND[moved.name], claim=moved) if moved else ""
            chapters.append(Chapter("As the Stream Changed", [voice.say(
                "late", LATE, at=step(last["step"]), name=inner, in_std=sig(b["in_std"]),
                in_std0=sig(a["in_std"]), out_std=sig(b["out_std"]),
                italic=italic).rstrip()]))
        c = _ln(last, outer)
        if c is not None and outer != inner:
            chapters.append(Chapter("Before the Words", [voice.say(
                "final", FINAL, name=outer, at=step(last["step"]), in_std=sig(c["in_std"]),
                out_std=sig(c["out_std"]))]))
    diverged = run.first_moment("diverged")
    if diverged is not None:
        chapters.append(Chapter("Torn", [voice.say(
            "storm", STORM, at=step(diverged["step"]),
            loss=sig((diverged.get("data") or {}).get("loss")),
            grad=sig((diverged.get("data") or {}).get("grad_norm")))]))
    return Story(voice.pick("title", TITLES), "layernorm", chapters,
                 voice.pick("epigraph", EPIGRAPH))
