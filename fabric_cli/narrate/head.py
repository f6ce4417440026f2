"""The attention head's voice: by default the pronoun specialist, or any head by its indices.

It tells what it truly became: a specialist of its role (proven by ablation), or a head that
stayed diffuse. The snap chapter exists only when the chronicle holds a first_snap for it.
"""

from __future__ import annotations

from fabric_cli.errors import FabricError
from fabric_cli.narrate.common import (
    ROLE_WORDS,
    flow_row,
    heads_list,
    moment_values,
    pronoun_pairs,
    row_focus,
    token,
)
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, finite, head_name, pct, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "the Head"
COLOUR = "magenta"

TITLES = {
    "pronoun": ["{who}: The Binder of Pronouns", "{who}: A Thread Between Her and Its Noun"],
    "other": ["{who}: What I Became", "{who}: A Head Among Heads"],
    "diffuse": ["{who}: Still Searching the Weave", "{who}: The Head Without a Calling"],
}
EPIGRAPH = [
    ("I am Head {head} of Layer {layer}, one small shuttle on a loom of {n_heads} heads "
    "across {n_layers} {layers_word}."),
    "I am Head {head} of Layer {layer}: {d_head} dimensions of asking, answering and carrying.",
]

BEGIN = [
    ("At step {at} the probes first looked at me, and there was nothing to see. Of my attention "
    "from each pronoun, only {score} landed on the noun it meant, and my guesses found the "
    "right antecedent {acc} of the time, while simply picking the nearest noun managed "
    "{base}. I was a loose thread lying across the cloth."),
    ("When the probes first read me, at step {at}, I was noise pretending to be a pattern: "
    "{score} of my gaze from pronouns reached their antecedents, and my argmax was right "
    "{acc} of the time against {base} for the lazy nearest-noun guess."),
]
BEGIN_LEANING = [  # when the untrained head already leaned, faintly, the right way
    ("In *{sentence}* my heaviest weight from \"{pronoun}\" already fell on \"{antecedent}\", "
    "but only {weight} of it: a lean, not a choice. *Chance, dressed as a preference.*"),
    ("From \"{pronoun}\" in *{sentence}* I happened to favour \"{antecedent}\", with just "
    "{weight}. *A coin that landed right, nothing more.*"),
]
BEGIN_SNAPSHOT = [
    ("In *{sentence}* I looked from \"{pronoun}\" and my heaviest weight, {weight}, fell on "
    "\"{top}\"; \"{antecedent}\" received {on_antecedent}. *Somewhere in this row is a "
    "meaning. I cannot find it yet.*"),
    ("Given *{sentence}*, my query for \"{pronoun}\" drifted to \"{top}\" with weight {weight}, "
    "and \"{antecedent}\", the word it truly meant, got only {on_antecedent}. *Every thread "
    "pulls a little, none pulls hard.*"),
]
FIRST_TOUCH = [
    ("Then the Gradient came down the residual stream and reached my layer with a norm of "
    "{arriving} at step {at}, and Adam turned it into a step that moved my block by {ratio} "
    "of its own size. *Wrong. Move.* I moved."),
    ("The first correction reached Layer {layer} at step {at} carrying a norm of {arriving}; "
    "Adam's step shifted my block's weights by {ratio} of their length. It was a nudge, not a "
    "lesson, but the tide had begun to turn me."),
]
NEIGHBOURS = [  # used only when every neighbour crossed before this head did (or it never did)
    "Around me other heads found their callings first. {list}. *They know what they are for.*",
    ("My neighbours woke before I did. {list}. I watched their threads pull taut while mine "
    "still sagged."),
]
NEIGHBOURS_ANY = [
    ("Other heads were finding their callings too. {list}. *Each of us pulls a different "
    "thread.*"),
    "I was not the only one waking. {list}.",
]
NEIGHBOUR_ITEM = "{who} crossed the {role} threshold of {threshold} at step {at}, scoring {score}"
SNAP = [
    ("Step {at}. In *{sentence}* my query for \"{pronoun}\" met the key of \"{antecedent}\" and "
    "held: weight {weight} on it, with \"{runner_up}\" a distant second at {runner_weight}. "
    "*There. That is what she means.* A thread pulled tight across the sentence."),
    ("It happened at step {at}. Reading *{sentence}*, I looked from \"{pronoun}\" and found "
    "\"{antecedent}\" waiting, weight {weight}; the runner-up, \"{runner_up}\", held only "
    "{runner_weight}. *Not an echo of the last word: a knot tied to the right one.*"),
]
SNAP_OTHER = [
    ("The snap, when it came at step {at}, was not mine: {who} looked from \"{pronoun}\" to "
    "\"{antecedent}\" with weight {weight}. I felt the weave tighten somewhere else."),
]
NO_SNAP = [
    ("No moment came when my gaze locked onto an antecedent; the chronicle holds none. By the last "
    "probe my pronoun score was {score}. *Searching is not finding.*"),
    ("I waited for the moment the others talk about, the sudden pull from a pronoun to its noun. "
    "It never came to this run. At the last probe, {score} of my pronoun attention reached the "
    "right noun."),
]
THRESHOLD = [
    ("At step {at} my {role} score climbed to {score}, past the line of {threshold}; at step "
    "{prev_at} it had been {previous}. *So this is what I am for.*"),
    ("The probes marked it at step {at}: {role} score {score}, over the threshold of "
    "{threshold}, up from {previous} at step {prev_at}."),
]
PLATEAU = [
    ("From step {start_step} to step {end_step} the loss lay flat around {mean_loss}, moving no "
    "more than {spread}. I was turning in that calm without knowing where to point."),
    ("The Fabric stalled between steps {start_step} and {end_step}: a mean loss of {mean_loss}, "
    "a spread of {spread}. *Becalmed.* The heads had not yet found what the words needed."),
]
CLIPPED = [
    ("The Gradient ran wild in bursts, and the Engineers cut it back to {clip} on {n} steps in "
    "all; the highest storm I felt measured {max_norm}."),
    ("Storms came: on {n} steps the gradient overran the clip of {clip}, once reaching "
    "{max_norm}, and the Engineers reined it in before it reached me."),
]
KNOCK = [
    ("At step {step} Dropout struck at a rate of {rate_pct}: my clean score of {clean} fell to "
    "{dropped} under its mask. *If this thread breaks, find another.*"),
    ("Dropout tested me at step {step}, silencing {rate_pct} of the units; my focus sank from "
    "{clean} to {dropped}."),
]
RECOVERED = [
    ("By step {step} I held under the same mask: {dropped} with dropout against {clean} without, "
    "the knock of step {knock_step} woven over."),
    "At step {step} I had grown spare paths: {clean} clean, {dropped} under the mask.",
]
SPECIALIST = [
    ("By the end I knew my name: a {role} head, {words}, with a score of {score}. On held-out "
    "sentences I found the antecedent {heldout} of the time; the nearest-noun guess found it "
    "{baseline}."),
    ("What I became, the probes can prove: a {role} specialist, {words}. Score {score}; "
    "held-out accuracy {heldout}, where the nearest noun alone would give {baseline}."),
]
ABLATION = [
    ("They silenced me to be sure. With my output zeroed the loss on the words after my role "
    "rose from {before} to {after}, and accuracy fell from {acc_before} to {acc_after}. "
    "*Without me, that part of the cloth unravels.*"),
    ("The ablation is my proof: zero my output and the loss on the tokens I serve climbs from "
    "{before} to {after}; accuracy drops from {acc_before} to {acc_after}."),
]
ABLATION_BACKUP = [
    ("They silenced me to be sure, and almost nothing happened: the loss on the words after my "
    "role went from {before} to {after}, accuracy from {acc_before} to {acc_after}. Then they "
    "silenced me together with the others of my role, and it fell from {group_before} to "
    "{group_after}. *Alone I am not needed; together we are the thread.*"),
    ("Zero me alone and the Fabric barely notices ({before} to {after} in loss, {acc_before} "
    "to {acc_after} in accuracy). Zero every head of my role at once and pronouns come apart: "
    "{group_before} of them resolved before, {group_after} after."),
]
REDUNDANT = [
    "I am not alone in it: {list} {verb} the same thread, so silencing me alone hurts less.",
    ("A backup runs beside me: {list} {verb} the very same stitch, and the Fabric leans on "
    "whichever of us the Dropout spares."),
]
DIVIDED = [
    ("We split the loom between us. My threads are {mine}; {list} {verb} {theirs}. Alone I "
    "find the antecedent for only part of the pronouns, but pool our gazes and we find it "
    "{team} of the time on held-out sentences. *Not one weaver: a pair.*"),
    ("I do not carry every pronoun. {mine_cap} are mine; {theirs} belong to {list}. Together "
    "our attention lands on the right noun {team} of the time on held-out sentences."),
]
MASTERED = 0.8  # a head "carries" a pronoun form when its argmax finds the antecedent this often
DIFFUSE = [
    ("I never became a specialist. At the last probe my strongest habit was {words} "
    "({role} score {score}), not enough for the probes to name me. *I stayed a loose weave, "
    "useful a little everywhere, essential nowhere that they could prove.*"),
    ("No role claimed me. My best score at the last probe was {score}, for {role}, {words} now "
    "and then. The Fabric leaned on other heads; I stayed diffuse, searching."),
]
UNDER_DROPOUT = [
    ("At the last probe, under a dropout mask of {rate}, my focus held at {dropped} against "
    "{clean} clean."),
]
FADE = [
    ("Then the schedule let the tide go out. The learning rate, {peak} at its height, was {lr} "
    "at step {at}; Adam's last steps moved my block by only {ratio} of its size. The loss on "
    "fresh sentences settled at {val}. *Stillness. The knots hold.*"),
    ("Training faded: a learning rate of {lr} by step {at}, down from {peak}, and steps of "
    "{ratio} of my weights' size. The Fabric's judgment came to rest at {val} on fresh "
    "sentences."),
]
INFERENCE = [
    ("Now sentences pass through me untouched by any gradient. In *{sentence}* I look from "
    "\"{pronoun}\" and find \"{target}\" with weight {weight}. {verdict}"),
    ("Inference: *{sentence}* flows in. From \"{pronoun}\" my gaze lands on \"{target}\", "
    "weight {weight}. {verdict}"),
]
INFERENCE_MORE = [
    "In *{sentence}*, from \"{pronoun}\" I reach \"{target}\", weight {weight}. {verdict}",
    ("Another sentence, *{sentence}*: \"{pronoun}\" draws me to \"{target}\" at {weight}. "
    "{verdict}"),
    "And from \"{pronoun}\" in that same weave, \"{target}\", {weight}. {verdict}",
]
RIGHT = ["*That is the one.*", "*Tied true.*"]
WRONG = ["*Not the noun it means; I still miss here.*", "*Wrong thread. I know it.*"]
STORM = [
    ("Then the storm broke the Fabric. At step {at} the loss became {loss} and the gradient "
    "{grad}; the last sound step was {last_good}, with a learning rate of {lr}. Whatever I "
    "was becoming was torn away, and no sentence will pass through me now."),
    ("At step {at} everything tore: loss {loss}, gradient {grad}, the learning rate {lr}. "
    "Step {last_good} was the last whole weave. *There is no inference after a storm like "
    "this.*"),
]

MOMENT_LINES = {
    "first_snap": [
        "\"{pronoun}\" pulled tight to \"{antecedent}\" at step {step}, weight {weight}.",
        "step {step}, my gaze from \"{pronoun}\" found \"{antecedent}\" ({weight}).",
    ],
    "role_threshold": [
        "my {role} score crossed {threshold} at step {step}: {score}.",
        "step {step}, {role} score {score}, over the line at {threshold}.",
    ],
    "specialist": [
        ("step {step}: I am a {role} head, score {score}; silence me and the loss goes "
        "from {ablation_loss_before} to {ablation_loss_after}."),
    ],
    "specialist_backup": [
        ("step {step}: I am a {role} head, score {score}, one of a team: silence me alone and "
        "little changes; silence us all and accuracy falls from "
        "{group_ablation_acc_before_pct} to {group_ablation_acc_after_pct}."),
    ],
}


def _target(run: RunFacts, layer: int | None, head: int | None) -> tuple[int, int]:
    n_layers, n_heads = run.model.get("n_layers"), run.model.get("n_heads")
    if (layer is None) != (head is None):
        raise FabricError("give both --layer and --head (e.g. --layer 1 --head 2), or neither")
    if layer is not None and head is not None:
        if isinstance(n_layers, int) and isinstance(n_heads, int) and not (
            0 <= layer < n_layers and 0 <= head < n_heads
        ):
            raise FabricError(
                f"this run has no head L{layer}H{head}: layers are 0..{n_layers - 1}, "
                f"heads 0..{n_heads - 1}"
            )
        return layer, head
    found = run.pronoun_head()
    if found is None:
        raise FabricError("this chronicle has no probes yet, so no head can tell its story; "
                          "let `fabric train` run past its first probe")
    return found


def tell(run: RunFacts, voice: Voice, *, layer: int | None = None,
         head: int | None = None) -> Story:
    layer, head = _target(run, layer, head)
    who = head_name(layer, head)
    fate = run.fate(layer, head)
    kind = "diffuse" if fate.role is None else ("pronoun" if fate.role == "pronoun" else "other")
    title = voice.say("title", TITLES[kind], who=who)
    epigraph = voice.say("epigraph", EPIGRAPH, head=head, layer=layer,
                         n_heads=run.model.get("n_heads", "?"),
                         n_layers=run.model.get("n_layers", "?"),
                         layers_word="layer" if run.model.get("n_layers") == 1 else "layers",
                         d_head=run.model.get("d_head", "?"))
    chapters = [c for c in (
        _beginnings(run, voice, layer, head),
        _focus(run, voice, layer, head),
        _hard_passages(run, voice, layer, head),
        _becoming(run, voice, layer, head),
        _ending(run, voice, layer, head),
    ) if c is not None and c.paragraphs]
    return Story(title=title, component="head", chapters=chapters, epigraph=epigraph)


def _beginnings(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter | None:
    probe = run.first_probe
    row = run.head_row(probe, layer, head)
    if row is None:
        return None
    base = (probe.get("baseline_acc") or {}).get("train")
    paras = [voice.say("begin", BEGIN, at=step(probe["step"]), score=sig(run.score(row,
             "pronoun")), acc=pct(row.get("pronoun_acc")), base=pct(base))]
    for snap in run.snapshots(probe):
        pairs = pronoun_pairs(snap)
        focus = row_focus(run.pattern(snap, layer, head), pairs[0][0]) if pairs else None
        if focus is None:
            continue
        p, a = pairs[0]
        pattern = run.pattern(snap, layer, head)
        bank = BEGIN_LEANING if focus[0] == a else BEGIN_SNAPSHOT
        paras.append(voice.say("begin-snap", bank, sentence=snap.get("sentence", ""),
                               pronoun=token(snap, p), top=token(snap, focus[0]),
                               weight=sig(focus[1]), antecedent=token(snap, a),
                               on_antecedent=sig(pattern[p][a])))
        break
    first = run.first_step
    flow = flow_row(first, layer)
    ratio = (first or {}).get("update_ratio", {}).get(f"blocks.{layer}")
    if flow is not None and ratio is not None:
        paras.append(voice.say("first-touch", FIRST_TOUCH, arriving=sig(flow["arriving"]),
                               at=step(first["step"]), ratio=sig(ratio), layer=layer))
    return Chapter("Random Beginnings", paras)


def _focus(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter:
    paras = []
    others = [m for m in run.moments_of("role_threshold")
              if (m.get("layer"), m.get("head")) != (layer, head)]
    if others:
        items = [NEIGHBOUR_ITEM.format(**moment_values(m), at=step(m["step"]))
                 for m in others[:4]]
        mine = run.moments_of("role_threshold", layer, head)
        first_mine = mine[0]["step"] if mine else None
        earlier = first_mine is None or all(m["step"] < first_mine for m in others[:4])
        paras.append(voice.say("neighbours", NEIGHBOURS if earlier else NEIGHBOURS_ANY,
                               list="; ".join(items)))
    snap = run.first_moment("first_snap", layer, head)
    any_snap = run.first_moment("first_snap")
    if snap is not None:
        v = moment_values(snap)
        paras.append(voice.say("snap", SNAP, at=v["step"], sentence=v.get("sentence", ""),
                               pronoun=v.get("pronoun", "?"), antecedent=v.get("antecedent", "?"),
                               weight=v.get("weight", "?"), runner_up=v.get("runner_up", "?"),
                               runner_weight=v.get("runner_up_weight", "?")))
    elif any_snap is not None:
        paras.append(voice.say("snap-other", SNAP_OTHER, **moment_values(any_snap),
                               at=step(any_snap["step"])))
    else:
        row = run.head_row(run.last_probe, layer, head)
        paras.append(voice.say("no-snap", NO_SNAP, score=sig(run.score(row, "pronoun"))))
    for m in run.moments_of("role_threshold", layer, head)[:2]:
        v = moment_values(m)
        paras.append(voice.say(f"threshold:{m['step']}", THRESHOLD, at=v["step"],
                               role=v.get("role", "?"), score=v.get("score", "?"),
                               threshold=v.get("threshold", "?"),
                               prev_at=v.get("previous_step", "?"),
                               previous=v.get("previous_score", "?")))
    title = "Finding My Focus" if snap is not None else "Searching"
    return Chapter(title, paras)


def _hard_passages(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter:
    paras = []
    for m in run.moments_of("loss_plateau")[:1]:
        paras.append(voice.say("plateau", PLATEAU, **moment_values(m)))
    clipped = run.clipped_steps
    bursts = run.moments_of("clipping_burst")
    if clipped and bursts:
        worst = max(as_float(m["data"].get("max_norm")) for m in bursts)
        paras.append(voice.say("clipped", CLIPPED, n=step(len(clipped)),
                               clip=sig(run.training.get("grad_clip")), max_norm=sig(worst)))
    for m in run.moments_of("dropout_knock", layer, head)[:1]:
        paras.append(voice.say("knock", KNOCK, **moment_values(m)))
    for m in run.moments_of("dropout_recovered", layer, head)[:1]:
        paras.append(voice.say("recovered", RECOVERED, **moment_values(m)))
    return Chapter("The Hard Passages", paras)


def _forms(by_pronoun: dict | None) -> list[str]:
    return [w for w, acc in sorted((by_pronoun or {}).items()) if as_float(acc) >= MASTERED]


def _quoted(words: list[str]) -> str:
    quoted = [f'"{w}"' for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _sharing(run: RunFacts, voice: Voice, spec: dict, twins: list[tuple[int, int]]) -> str:
    """Redundancy or division of labour, told from the per-pronoun accuracies."""
    verb = "carries" if len(twins) == 1 else "carry"
    mine = _forms(spec.get("by_pronoun"))
    theirs: list[str] = []
    for layer, head in twins:
        other = run.specialist_of(layer, head) or {}
        theirs += [w for w in _forms(other.get("by_pronoun")) if w not in theirs]
    divided = mine and theirs and not set(theirs) <= set(mine)
    if not divided or spec.get("team_heldout_acc") is None:
        return voice.say("redundant", REDUNDANT, list=heads_list(twins), verb=verb)
    only_theirs = [w for w in theirs if w not in mine]
    return voice.say("divided", DIVIDED, mine=_quoted(mine), mine_cap=_quoted(mine),
                     theirs=_quoted(only_theirs), list=heads_list(twins), verb=verb,
                     team=pct(spec.get("team_heldout_acc")))


def _becoming(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter | None:
    if run.status == "diverged":
        return None
    fate = run.fate(layer, head)
    paras = []
    if fate.specialist is not None:
        spec = fate.specialist
        role = str(spec.get("role"))
        paras.append(voice.say("specialist", SPECIALIST, role=role,
                               words=ROLE_WORDS.get(role, role), score=sig(spec.get("score")),
                               heldout=pct(spec.get("heldout_acc")),
                               baseline=pct(spec.get("baseline_acc"))))
        abl = spec.get("ablation") or {}
        group = spec.get("group_ablation") or {}
        if abl and spec.get("alone_hurts") is False and group:
            paras.append(voice.say("ablation", ABLATION_BACKUP, before=sig(abl.get("loss_before")),
                                   after=sig(abl.get("loss_after")),
                                   acc_before=pct(abl.get("acc_before")),
                                   acc_after=pct(abl.get("acc_after")),
                                   group_before=pct(group.get("acc_before")),
                                   group_after=pct(group.get("acc_after"))))
        elif abl:
            paras.append(voice.say("ablation", ABLATION, before=sig(abl.get("loss_before")),
                                   after=sig(abl.get("loss_after")),
                                   acc_before=pct(abl.get("acc_before")),
                                   acc_after=pct(abl.get("acc_after"))))
        twins = [(int(x[0]), int(x[1])) for x in spec.get("redundant_with") or []]
        if twins:
            paras.append(_sharing(run, voice, spec, twins))
        title = "Specialisation"
    else:
        if not finite(fate.best_score):
            return None
        paras.append(voice.say("diffuse", DIFFUSE, words=ROLE_WORDS.get(fate.best_role, ""),
                               role=fate.best_role, score=sig(fate.best_score)))
        title = "Staying Diffuse"
    focus = (run.last_probe or {}).get("focus_under_dropout")
    if focus and (focus.get("layer"), focus.get("head")) == (layer, head):
        paras.append(voice.say("under-dropout", UNDER_DROPOUT, rate=pct(focus.get("rate")),
                               dropped=sig(focus.get("dropped")), clean=sig(focus.get("clean"))))
    return Chapter(title, paras)


def _ending(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter | None:
    if run.status == "diverged":
        m = run.first_moment("diverged")
        v = moment_values(m)
        return Chapter("The Storm", [voice.say("storm", STORM, at=v["step"],
                                               loss=v.get("loss", "?"),
                                               grad=v.get("grad_norm", "?"),
                                               last_good=v.get("last_good_step", "?"),
                                               lr=v.get("lr", "?"))])
    paras = []
    last = run.last_step
    peak = as_float(run.training.get("lr"))
    if last is not None and run.end is not None and as_float(last.get("lr")) < peak:
        ratio = (last.get("update_ratio") or {}).get(f"blocks.{layer}")
        paras.append(voice.say("fade", FADE, peak=sig(run.training.get("lr")),
                               lr=sig(last.get("lr")), at=step(last["step"]), ratio=sig(ratio),
                               val=sig(run.end.get("final_val_loss"))))
    told = len(paras)
    for i, snap in enumerate(run.snapshots(run.last_probe)):
        pattern = run.pattern(snap, layer, head)
        for p, a in pronoun_pairs(snap)[:2]:
            focus = row_focus(pattern, p)
            if focus is None:
                continue
            verdict = voice.pick(f"verdict:{i}:{p}", RIGHT if focus[0] == a else WRONG)
            bank = INFERENCE if len(paras) == told else INFERENCE_MORE
            paras.append(voice.say(f"infer:{i}:{p}", bank, sentence=snap.get("sentence"),
                                   pronoun=token(snap, p), target=token(snap, focus[0]),
                                   weight=sig(focus[1]), verdict=verdict))
    return Chapter("The Fade, and Inference", paras) if paras else None
