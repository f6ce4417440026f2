"""The Feed-Forward network's voice: the wide room where attention's pointers become words.

Numbers: d_model/d_mlp, the ablation rows (loss and accuracy on the token after each role's
positions, with heads intact and silenced), the loss_drop moment, probe losses first vs last.
The chronicle does not separate the MLP's gradient from attention's, so neither does this.
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank, trend
from fabric_cli.narrate.common import heads_list, moment_values
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, pct, sig, step
from fabric_cli.narrate.story import Chapter, Story, Voice

SPEAKER = "the Feed-Forward Network"

TITLES = ["The Feed-Forward Network: The Wide Room", ("The Feed-Forward Network: From Pointer "
          "to Word"),
    'The Feed-Forward Network: Where Pointers Become Words',
    'The Feed-Forward Network: The Filters',
]
EPIGRAPH = [
    "I am the Feed-Forward Network. Attention tells me where to look; I decide what it means.",
    "I am the MLP in every block: I widen the stream, bend it through GELU, and fold it back.",
    'I am the Feed-Forward Network, the wide room in every block.',
    'I am the MLP: attention points, I name.',
]
ROOM = [
    ("In each of the {n_layers} blocks I take the {d_model}-wide stream, open it into {d_mlp} "
    "hidden units, bend it through GELU and fold it back. *A wide room for a narrow thought.*"),
    ("My room is {d_mlp} units wide, opened from a stream of {d_model}, once per block, "
    "{n_layers} times in all. Attention brings me pointers; I turn them into what comes next."),
    'Once per block, {n_layers} times, I open the {d_model}-wide stream into {d_mlp} units, bend it through GELU and fold it back.',
    '{d_mlp} hidden units, fed by a stream of {d_model}, in each of {n_layers} blocks. *Attention brings the pointer; I bring the word.*',
]
EARLY = [
    ("At the first probe, step {at}, I could not yet say much: the training batches cost "
     "{train} nats per token, fresh sentences {val}."),
    ("Step {at}, the first probe: {train} nats per token on training batches, {val} on fresh "
     "sentences. My filters were unformed."),
    "At step {at} the Fabric paid {train} nats per token in training and {val} on fresh sentences.",
    "My first reading, step {at}: {train} nats in training, {val} on sentences I had not seen.",
]
DROP = [
    ("Between steps {start_step} and {end_step} the loss fell from {from_loss} to {to_loss}. "
    "{cause}"),
    "From step {start_step} to step {end_step}: {from_loss} down to {to_loss}. {cause}",
    'The loss fell from {from_loss} to {to_loss}, steps {start_step} to {end_step}. {cause}',
    'Steps {start_step} to {end_step}: from {from_loss} to {to_loss}. {cause}',
]
CAUSE_HEAD = [("At the same time the best pronoun head reached a score of {score}: the pointers "
              "had arrived, and I could finally read them."),
              ("The best pronoun head's score stood at {score} by then; I had something to "
              "work with."),
    'By then the best pronoun head scored {score}.',
    'The best pronoun head stood at {score} then.',
]
CAUSE_NONE = [("The chronicle does not tie this drop to a pronoun head; whatever I learned, I "
              "learned it from other threads."),
    'No pronoun head stands behind this drop in the chronicle.',
    'The chronicle names no pronoun head for this drop.',
    'Whatever caused this fall, the chronicle does not name a pronoun head for it.',
]
AFTER_ROLE = [
    ("The word after each {role} is where I earn my keep. With every head working it cost "
     "{before} nats and I named it right {acc_before} of the time; with {heads} silenced, "
     "{after} nats and {acc_after}."),
    ("On the word after each {role}: {before} nats and {acc_before} accuracy with {heads} "
     "working, {after} and {acc_after} with {them} zeroed."),
    ("After a {role} comes the word this test watches. Intact: {before} nats, {acc_before} right. With "
     "{heads} silent: {after} nats, {acc_after} right."),
    ("They zeroed {heads} and watched me on the word after each {role}: {before} nats and "
     "{acc_before} right before, {after} nats and {acc_after} right after."),
]
# What the silence did to me, judged on those numbers. (No "blind" here: these accuracies
# are of the next word, and the nearest-noun guess is a bar for resolving pronouns.)
AFTER_HURT = Bank("hurt", [
    "*Without the pointer I guess worse.*",
    "*The pointer matters: I stumble without it.*",
    "*I lose my footing when the pointer goes.*",
    "*Less sure without the pointer.*",
])
AFTER_HARMLESS = Bank("harmless", [
    "*I barely noticed: other threads still point the way.*",
    "*Almost nothing changed; another thread carries the pointer.*",
    "*{Their} silence barely reached me.*",
    "*Other heads still brought me what I needed.*",
])
LATE = [  # {train} averages the training batches since the probe before the last
    ("At the last probe, step {at}, fresh sentences cost {val} nats per token, where at first "
     "they cost {val0}; the training batches of steps {since} to {upto} averaged {train}. "
     "{italic}"),
    ("By step {at}: {val} on fresh sentences (it was {val0}); {train} on average in "
     "training, steps {since} to {upto}. {italic}"),
    "At step {at}, {val} nats on fresh sentences against {val0} at the first probe. {italic}",
    ("The last probe, step {at}: fresh sentences at {val}, once {val0}; the training batches "
     "since step {since} at {train} on average. {italic}"),
]
BETTER = Bank("shrank", ["*The room is furnished now.*", "*What was empty is written.*",
                         "*The filters have found their shapes.*", "*A furnished room.*"])
WORSE = Bank("grew", ["*Worse than I began. The room stayed bare.*",
                      "*Emptier than at the start.*",
    '*Worse than at first.*',
    '*The room lost what little it had.*',
])
SAME = Bank("steady", ["*Much as I began.*", "*The room is as it was.*",
    '*No better, no worse.*',
    '*Unchanged, start to end.*',
])
NO_ABLATION = [("The run never reached the ablation at its end, so nothing measured what I "
               "lose without the heads."),
    'No ablation closed this run, so nothing measured what I lose without the heads.',
    'The run ended before the ablation; what I do without the heads went unmeasured.',
    'Without the final ablation, my dependence on the heads is unmeasured.',
]

LENS = [
    ("Read the stream at the word after each pronoun, at step {at}: before block {layer} it "
     "gave the true word {before}; after attention, {after_attn}; I took it to "
     "{after_mlp}."),
    ("At step {at}, block {layer}, the word that really follows a pronoun: {before} in the "
     "stream as it arrived, {after_attn} once attention had added its part, {after_mlp} "
     "after me."),
    ("Step {at}, block {layer}: the true next word held {before} of the guess before the "
     "block, {after_attn} after attention, {after_mlp} after my filters."),
    ("In block {layer} at step {at}, after each pronoun: {before} coming in, {after_attn} with "
     "attention's work, {after_mlp} with mine."),
]
LENS_MINE = Bank("gained_more", [
    "*My share was the larger: {mlp_gain} to attention's {attn_gain}.*",
    "*I added {mlp_gain}, more than attention's {attn_gain}: attention pointed, I named the word.*",
    "*The pointer was attention's; the word was mine: {mlp_gain} of it, more than attention's {attn_gain}.*",
    "*{mlp_gain} from me, {attn_gain} from attention: my share was the larger.*",
])
LENS_ALONE = Bank("gained_alone", [  # attention added nothing: it pointed at nothing here
    "*Attention's part was {attn_gain}; mine, {mlp_gain}. The gain here was mine alone.*",
    "*I added {mlp_gain}; attention, {attn_gain}: nothing of it came from attention.*",
    "*All of the rise was mine, {mlp_gain}; attention's share was {attn_gain}.*",
    "*{mlp_gain} from me, {attn_gain} from attention: here I worked without its help.*",
])
LENS_THEIRS = Bank("gained_less", [
    "*Attention did more here ({attn_gain}); I added {mlp_gain}.*",
    "*Attention did more of it: {attn_gain} to my {mlp_gain}.*",
    "*Here attention did more, {attn_gain}; my part was {mlp_gain}.*",
    "*{attn_gain} from attention, {mlp_gain} from me: attention did more.*",
])
LENS_NEITHER = Bank("neither_gained", [
    "*Neither of us added to it here: attention took from it {attn_gain}, and I {mlp_gain}.*",
    "*Both of us took from it here: {attn_gain} by attention, {mlp_gain} by me.*",
    "*Here attention took from it {attn_gain} and I {mlp_gain}; neither helped this word.*",
    "*A block that took from it: {attn_gain} by attention, {mlp_gain} by me.*",
])
LENS_EARLY = [
    "At the first probe, step {at}, the Fabric gave the true word after a pronoun {final}.",
    "When training began (step {at}) the word after a pronoun got {final} of the guess.",
    "Step {at}: {final} of the guess on the word that truly follows a pronoun.",
    "At step {at} the true word after a pronoun was given {final}.",
]

MOMENT_LINES: dict[str, list[str]] = {}


def _widest_per_role(rows: list[dict]) -> list[dict]:
    """Per role, the row silencing the most heads (the whole team), told once."""
    best: dict[str, dict] = {}
    for row in rows:
        role = str(row.get("role"))
        if role not in best or len(row.get("heads") or []) > len(best[role].get("heads") or []):
            best[role] = row
    return list(best.values())


def _lens(run: RunFacts, voice: Voice) -> list[str]:
    """The logit lens (analysis/measures.py): what each block's attention and MLP added to the
    true word's probability at the word after each pronoun, at the first and last probe."""
    probes = [p for p in run.probes if p.get("logit_lens")]
    if not probes:
        return []
    paras = []
    first, last = probes[0], probes[-1]
    if first is not last:
        paras.append(voice.say("lens-early", LENS_EARLY, at=step(first["step"]),
                               final=sig(first["logit_lens"].get("final"))))
    for row in (last["logit_lens"].get("layers") or [])[:4]:
        values = {k: sig(row.get(k)) for k in ("before", "after_attn", "after_mlp",
                                                "attn_gain", "mlp_gain")}
        text = voice.say(f"lens:{row.get('layer')}", LENS, at=step(last["step"]),
                         layer=row.get("layer"), **values)
        gains = {"a": row.get("mlp_gain"), "b": row.get("attn_gain")}
        for fact, bank in (("gained_alone", LENS_ALONE), ("gained_more", LENS_MINE),
                           ("gained_less", LENS_THEIRS),
                           ("neither_gained", LENS_NEITHER)):
            claim = voice.claim(fact, **gains)
            if claim:
                if fact == "neither_gained":  # "took from it 0.000971", not "-0.000971"
                    values.update(attn_gain=sig(abs(as_float(row.get("attn_gain")))),
                                  mlp_gain=sig(abs(as_float(row.get("mlp_gain")))))
                text += " " + voice.say(f"lens-i:{row.get('layer')}", bank, claim=claim,
                                        **values)
                break
        paras.append(text)
    return paras


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    m = run.model
    chapters = [Chapter("The Wide Room", [voice.say(
        "room", ROOM, n_layers=m.get("n_layers", "?"), d_model=m.get("d_model", "?"),
        d_mlp=m.get("d_mlp", "?"))])]
    first = run.first_probe
    if first is not None:
        chapters[0].paragraphs.append(voice.say("early", EARLY, at=step(first["step"]),
                                                train=sig(first.get("train_loss")),
                                                val=sig(first.get("val_loss"))))
    paras = []
    for d in run.moments_of("loss_drop")[:2]:
        score = (d.get("data") or {}).get("best_pronoun_score")
        cause = (voice.say("cause", CAUSE_HEAD, score=sig(score)) if score is not None
                 else voice.pick("cause-none", CAUSE_NONE))
        paras.append(voice.say(f"drop:{d['step']}", DROP, **moment_values(d), cause=cause))
    rows = (run.ablation or {}).get("rows") or []
    for row in _widest_per_role(rows)[:2]:
        heads = [(int(h[0]), int(h[1])) for h in row.get("heads") or []]
        text = voice.say(f"role:{row.get('role')}", AFTER_ROLE, role=row.get("role"),
                         before=sig(row.get("loss_before")), after=sig(row.get("loss_after")),
                         acc_before=pct(row.get("acc_before")),
                         acc_after=pct(row.get("acc_after")), heads=heads_list(heads),
                         them="them" if len(heads) > 1 else "it")
        nums = {k: row.get(k) for k in ("loss_before", "loss_after", "acc_before", "acc_after")}
        hurt, harmless = voice.claim("hurt", **nums), voice.claim("harmless", **nums)
        if hurt:
            text += " " + voice.pick(f"hurt:{row.get('role')}", AFTER_HURT, claim=hurt)
        elif harmless:
            text += " " + voice.say(f"calm:{row.get('role')}", AFTER_HARMLESS, claim=harmless,
                                    Their="Their" if len(heads) > 1 else "Its")
        paras.append(text)
    if not rows:
        paras.append(voice.pick("no-ablation", NO_ABLATION))
    chapters.append(Chapter("Pointers into Words", paras))
    lens = _lens(run, voice)
    if lens:
        chapters.append(Chapter("My Own Share", lens))
    last = run.last_probe
    if last is not None and last is not first and first is not None:
        moved = trend(first.get("val_loss"), last.get("val_loss"))
        bank = {"shrank": BETTER, "grew": WORSE, "steady": SAME}[moved.name]
        italic = voice.pick("late-i", bank, claim=moved) if moved else ""
        chapters.append(Chapter("The Furnished Room", [voice.say(
            "late", LATE, at=step(last["step"]), train=sig(last.get("train_loss")),
            since=step((run.train_window(last) or (last["step"],))[0]), upto=step(last["step"]),
            val=sig(last.get("val_loss")), val0=sig(first.get("val_loss")),
            italic=italic).rstrip()]))
    return Story(voice.pick("title", TITLES), "ffn", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
