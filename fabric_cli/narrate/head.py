"""The attention head's voice: by default the pronoun specialist, or any head by its indices.

It tells the seeds' arc as this run measured it: random beginnings, finding its focus (only
if a snap or a threshold happened), what it became (a specialist proven by ablation, or a head
that stayed diffuse), the inference dance on the story sentences, and its own perspective.
Phrase banks live in head_lines.py and head_lines_becoming.py, each claiming bank naming
the fact it needs.
"""

from __future__ import annotations

from fabric_cli.errors import FabricError
from fabric_cli.narrate import head_unproven as unproven
from fabric_cli.narrate.common import (
    ROLE_WORDS,
    flow_row,
    moment_values,
    pronoun_pairs,
    row_focus,
    stepper,
    token,
)
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.figures import ablation_moves
from fabric_cli.narrate.format import and_list, as_float, count, finite, head_name, pct, sig, step
from fabric_cli.narrate.head_lines import *
from fabric_cli.narrate.head_lines_becoming import *
from fabric_cli.narrate.head_lines_becoming import MOMENT_LINES  # noqa: F401 (the registry)
from fabric_cli.narrate.head_sharing import sharing
from fabric_cli.narrate.head_weights import first_correction, late_correction
from fabric_cli.narrate.story import Chapter, Story, Voice
from fabric_cli.typeset import quoted

SPEAKER = "the Head"


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
    titles = unproven.TITLES if unproven.unproven_row(run, fate) else TITLES[kind]
    title = voice.say("title", titles, who=who)
    epigraph = voice.say("epigraph", EPIGRAPH, head=head, layer=layer,
                         n_heads=run.model.get("n_heads", "?"),
                         n_layers=run.model.get("n_layers", "?"),
                         layers_word="layer" if run.model.get("n_layers") == 1 else "layers",
                         d_head=run.model.get("d_head", "?"))
    chapters = [c for c in (
        _beginnings(run, voice, layer, head),
        _focus(run, voice, layer, head),
        _becoming(run, voice, layer, head),
        _inference(run, voice, layer, head),
        _perspective(run, voice, layer, head),
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
        pattern = run.pattern(snap, layer, head)
        focus = row_focus(pattern, pairs[0][0]) if pairs else None
        if focus is None:
            continue
        p, a = pairs[0]
        hit = voice.claim("right", target=focus[0], antecedent=a)
        miss = voice.claim("wrong", target=focus[0], antecedent=a)
        paras.append(voice.say("begin-snap", BEGIN_LEANING if hit else BEGIN_ASTRAY,
                               claim=hit if hit else miss, sentence=quoted(snap["sentence"]),
                               pronoun=token(snap, p), top=token(snap, focus[0]),
                               weight=sig(focus[1]), antecedent=token(snap, a),
                               on_antecedent=sig(pattern[p][a])))
        break
    first = run.first_step
    flow = flow_row(first, layer)
    ratio = ((first or {}).get("update_ratio") or {}).get(f"blocks.{layer}")
    weights = first_correction(run, voice, layer, head)  # head_weights.py
    if flow is not None and ratio is not None:
        bank = FIRST_TOUCH_BEFORE_WEIGHTS if weights else FIRST_TOUCH  # one "first correction"
        paras.append(voice.say("first-touch", bank, arriving=sig(flow["arriving"]),
                               at=step(first["step"]), ratio=sig(ratio), layer=layer,
                               **stepper(run)))
    paras += weights
    return Chapter("Random Beginnings", paras)


def _probe_at_or_before(run: RunFacts, at: int) -> dict | None:
    found = [p for p in run.probes if int(p.get("step", 0)) <= at]
    return found[-1] if found else None


def _focus(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter:
    paras = []
    mine = run.moments_of("role_threshold", layer, head)
    others = [m for m in run.moments_of("role_threshold")
              if (m.get("layer"), m.get("head")) != (layer, head)][:4]
    if others:
        items = [NEIGHBOUR_ITEM.format(**moment_values(m), at=step(m["step"])) for m in others]
        first_mine = mine[0]["step"] if mine else None
        earlier = first_mine is not None and all(m["step"] < first_mine for m in others)
        bank = (NEIGHBOURS_ONLY if first_mine is None else
                NEIGHBOURS_FIRST if earlier else NEIGHBOURS_ANY)
        paras.append(voice.say("neighbours", bank,
                               list="; ".join(items)))
    snap = run.first_moment("first_snap", layer, head)
    any_snap = run.first_moment("first_snap")
    before_snap = len(paras)  # where the snap is told; crossings before it move ahead of it
    if snap is not None:
        v, d = moment_values(snap), snap.get("data") or {}
        clear = voice.claim("clear_margin", weight=d.get("weight"),
                            runner_up=d.get("runner_up_weight"))
        narrow = voice.claim("narrow_margin", weight=d.get("weight"),
                             runner_up=d.get("runner_up_weight"))
        if clear or narrow:
            paras.append(voice.say(
                "snap", SNAP_CLEAR if clear else SNAP_NARROW, claim=clear if clear else narrow,
                at=v["step"], sentence=quoted(str(d.get("sentence", ""))),
                pronoun=v.get("pronoun", "?"), antecedent=v.get("antecedent", "?"),
                weight=v.get("weight", "?"), runner_up=v.get("runner_up", "?"),
                runner_weight=v.get("runner_up_weight", "?")))
    elif any_snap is not None:
        paras.append(voice.say("snap-other", SNAP_OTHER, **moment_values(any_snap),
                               at=step(any_snap["step"])))
    else:
        row = run.head_row(run.last_probe, layer, head)
        paras.append(voice.say("no-snap", NO_SNAP, score=sig(run.score(row, "pronoun")),
                               at=step((run.last_probe or {}).get("step", "?"))))
    for m in mine[:2]:
        v = moment_values(m)
        at = before_snap if snap is not None and m["step"] < snap["step"] else len(paras)
        if snap is not None and m["step"] < snap["step"]:
            before_snap += 1
        if (m.get("data") or {}).get("previous_step") is None:
            paras.insert(at, voice.say(f"threshold:{m['step']}", THRESHOLD_FIRST, at=v["step"],
                                       role=v.get("role", "?"), score=v.get("score", "?"),
                                       threshold=v.get("threshold", "?")))
            continue
        d = m.get("data") or {}
        grew = voice.claim("grew", before=d.get("previous_score"), after=d.get("score"))
        if run.specialist_of(layer, head, d.get("role")) is None:  # not "what I am for"
            grew = None  # a role the run did not name it for: the crossing, plainly
        paras.insert(at, voice.say(f"threshold:{m['step']}",
                                   THRESHOLD if grew else THRESHOLD_PLAIN,
                                   claim=grew if grew else None, at=v["step"],
                                   role=v.get("role", "?"), score=v.get("score", "?"),
                                   threshold=v.get("threshold", "?"),
                                   prev_at=v.get("previous_step", "?"),
                                   previous=v.get("previous_score", "?")))
    paras += _echo(run, voice, layer, head)
    paras += _alignment(run, voice, layer, head)
    paras += _hard_passages(run, voice, layer, head)
    title = "Finding My Focus" if snap is not None or mine else "Searching"
    return Chapter(title, paras)


def _echo(run: RunFacts, voice: Voice, layer: int, head: int) -> list[str]:
    """Previous-token score early against pronoun score: an echo first, a binder later?"""
    first, last = run.first_probe, run.last_probe
    a, b = run.head_row(first, layer, head), run.head_row(last, layer, head)
    if a is None or b is None or first is last:
        return []
    early = voice.claim("clear_margin", weight=run.score(a, "prev"),
                        runner_up=run.score(a, "pronoun"))
    if not early:
        return []
    text = voice.say("echo", ECHO, claim=early, at=step(first["step"]),
                     prev=sig(run.score(a, "prev")), pron=sig(run.score(a, "pronoun")))
    late = voice.claim("exceeds", a=run.score(b, "pronoun"), b=run.score(b, "prev"))
    if late:
        text += " " + voice.say("not-echo", NOT_ECHO, claim=late, at=step(last["step"]),
                                prev=sig(run.score(b, "prev")), pron=sig(run.score(b, "pronoun")))
    return [text]


def _alignment(run: RunFacts, voice: Voice, layer: int, head: int) -> list[str]:
    """The pronoun's query against its antecedent's key and the others, first and last time
    the probes measured this head (analysis/measures.py)."""
    mine = [p for p in run.probes if (p.get("qk_alignment") or {}).get("layer") == layer
            and (p.get("qk_alignment") or {}).get("head") == head]
    if len(mine) < 2:
        return []
    a, b = mine[0]["qk_alignment"], mine[-1]["qk_alignment"]
    text = voice.say("align", ALIGN, at0=step(mine[0]["step"]), at=step(mine[-1]["step"]),
                     ante0=sig(a.get("antecedent")), others0=sig(a.get("others")),
                     ante=sig(b.get("antecedent")), others=sig(b.get("others")))
    opened = voice.claim("opened", before=a.get("gap"), after=b.get("gap"))
    if opened:
        text += " " + voice.pick("align-apart", ALIGN_APART, claim=opened)
    return [text]


def _hard_passages(run: RunFacts, voice: Voice, layer: int, head: int) -> list[str]:
    paras = []
    for m in run.moments_of("loss_plateau")[:1]:
        d = m.get("data") or {}
        probe = _probe_at_or_before(run, int(d.get("end_step", m["step"])))
        row = run.head_row(probe, layer, head)
        if row is None or not finite(row.get("pronoun_acc")):
            continue
        acc = row.get("pronoun_acc")
        learned, lost = voice.claim("learned", acc=acc), voice.claim("not_learned", acc=acc)
        paras.append(voice.say("plateau", PLATEAU_WORKING if learned else PLATEAU_LOST,
                               claim=learned if learned else lost, **moment_values(m),
                               acc=pct(acc), probe_at=step(probe["step"])))
    bursts = run.moments_of("clipping_burst")
    n = len(run.clipped_steps)
    clipped = voice.claim("clipped", n=n)
    if clipped and bursts:
        worst = max(as_float((m.get("data") or {}).get("max_norm")) for m in bursts)
        gale = voice.claim("gale", peak=worst, line=run.training.get("grad_clip"))
        paras.append(voice.say("clipped", CLIPPED_GALE if gale else CLIPPED,
                               claim=gale if gale else clipped, n=step(n),
                               clip=sig(run.training.get("grad_clip")), max_norm=sig(worst)))
    return paras


def _ablation(voice: Voice, spec: dict) -> list[str]:
    abl = spec.get("ablation") or {}
    if not abl:
        return []
    nums = {k: abl.get(k) for k in ("loss_before", "loss_after", "acc_before", "acc_after")}
    hurt, harmless = voice.claim("hurt", **nums), voice.claim("harmless", **nums)
    if hurt:
        return [voice.say("ablation", ABLATION, claim=hurt, **ablation_moves(voice, "alone", abl))]
    if not harmless:
        return []
    text = voice.say("ablation", ABLATION_BACKUP, claim=harmless,
                     **ablation_moves(voice, "alone", abl))
    group = spec.get("group_ablation") or {}
    gnums = {k: group.get(k) for k in ("loss_before", "loss_after", "acc_before", "acc_after")}
    team = voice.claim("hurt", **gnums)
    if team:
        text += " " + voice.say("team", TEAM_HURT, claim=team,
                                **ablation_moves(voice, "team", group, prefix="group_"))
    return [text]


def _becoming(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter | None:
    if run.status == "diverged":
        return None
    fate = run.fate(layer, head)
    paras = []
    if fate.specialist is not None:
        spec = fate.specialist
        role = str(spec.get("role"))
        text = voice.say("specialist", SPECIALIST, role=role, words=ROLE_WORDS.get(role, role),
                         score=sig(spec.get("score")))
        if spec.get("heldout_acc") is not None and spec.get("baseline_acc") is not None:
            text += " " + voice.say("heldout", HELDOUT if role == "pronoun" else HELDOUT_ROLE,
                                    heldout=pct(spec.get("heldout_acc")),
                                    baseline=pct(spec.get("baseline_acc")))
        also = [r for r in run.specialists if (r.get("layer"), r.get("head")) == (layer, head)
                and r.get("role") != role]  # `fabric heads` shows one role; the rest here
        if also:
            text += " " + voice.say("also", ALSO, roles=and_list([str(r.get("role")) for r in also]),
                                    scores=and_list([sig(r.get("score")) for r in also]))
        paras.append(text)
        paras += _ablation(voice, spec)
        twins = [(int(x[0]), int(x[1])) for x in spec.get("redundant_with") or []]
        if twins:
            paras.append(sharing(run, voice, spec, twins))
        title = "Specialisation"
    else:
        if not finite(fate.best_score):
            return None
        row = unproven.unproven_row(run, fate)  # a role's pattern the ablation did not prove
        paras.append(unproven.tell_unproven(run, voice, fate, row) if row else voice.say(
            "diffuse", DIFFUSE, words=ROLE_WORDS.get(fate.best_role, ""), role=fate.best_role,
            score=sig(fate.best_score)))
        title = unproven.TITLE if row else "Staying Diffuse"
    for m in run.moments_of("dropout_knock", layer, head)[:1]:
        paras.append(voice.say("knock", KNOCK, **moment_values(m)))
    for m in run.moments_of("dropout_recovered", layer, head)[:1]:
        paras.append(voice.say("recovered", RECOVERED, **moment_values(m)))
    focus = (run.last_probe or {}).get("focus_under_dropout")
    # "the trackers I lead" and their grip: only for a proven pronoun head
    if focus and (focus.get("layer"), focus.get("head")) == (layer, head) \
            and run.specialist_of(layer, head, "pronoun") is not None:
        for name in ("held", "bent", "shaken"):
            grip = voice.claim(name, clean=focus.get("clean"), dropped=focus.get("dropped"))
            if grip:
                paras.append(voice.say("under-dropout", UNDER_DROPOUT[name], claim=grip,
                                       rate=pct(focus.get("rate")),
                                       dropped=pct(focus.get("dropped")),
                                       clean=pct(focus.get("clean"))))
                break
    return Chapter(title, paras)


def _storm(run: RunFacts, voice: Voice) -> Chapter:
    m = run.first_moment("diverged")
    v = moment_values(m)
    broke = voice.claim("diverged", loss=(m.get("data") or {}).get("loss"),
                          grad_norm=(m.get("data") or {}).get("grad_norm"))
    return Chapter("The Storm", [voice.say("storm", STORM, claim=broke, at=v["step"],
                                           loss=v.get("loss", "?"),
                                           grad=v.get("grad_norm", "?"),
                                           last_good=v.get("last_good_step", "?"),
                                           lr=v.get("lr", "?"))])


def _inference(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter | None:
    if run.status == "diverged":
        return _storm(run, voice)
    paras = []
    last = run.last_step
    peak = as_float(run.training.get("lr"))
    if last is not None and run.end is not None and as_float(last.get("lr")) < peak:
        ratio = (last.get("update_ratio") or {}).get(f"blocks.{layer}")
        vals = [p.get("val_loss") for p in run.probes[-2:]]
        still = moved = None
        if len(vals) == 2:
            still = voice.claim("steady", before=vals[0], after=vals[-1])
            moved = (voice.claim("shrank", before=vals[0], after=vals[-1])
                     or voice.claim("grew", before=vals[0], after=vals[-1]))
        # "still on the move" only where the last two probes differ; nothing compared (one
        # probe, a missing figure): the variants that claim neither rest nor motion
        bank = FADE if still else FADE_FALLING if moved else FADE_FALLING[1:]
        paras.append(voice.say("fade", bank, claim=(still or moved) or None,
                               peak=sig(run.training.get("lr")),
                               lr=sig(last.get("lr")), at=step(last["step"]), ratio=sig(ratio),
                               val=sig(run.end.get("final_val_loss")), **stepper(run)))
    paras += late_correction(run, voice, layer, head)  # head_weights.py
    told_sentence = False
    for i, snap in enumerate(run.snapshots(run.last_probe)):
        pattern = run.pattern(snap, layer, head)
        parts = []
        for j, (p, a) in enumerate(pronoun_pairs(snap)[:3]):
            focus = row_focus(pattern, p)
            if focus is None:
                continue
            hit = voice.claim("right", target=focus[0], antecedent=a)
            miss = voice.claim("wrong", target=focus[0], antecedent=a)
            verdict = voice.pick(f"verdict:{i}:{p}", RIGHT if hit else WRONG,
                                 claim=hit if hit else miss)
            parts.append(voice.say(f"pair:{i}:{p}", PAIR_MORE if j else PAIR_FIRST,
                                   pronoun=token(snap, p), target=token(snap, focus[0]),
                                   weight=sig(focus[1])) + " " + verdict)
        if not parts:
            continue
        bank = INFERENCE_MORE if told_sentence else INFERENCE
        paras.append(voice.say(f"infer:{i}", bank, sentence=quoted(snap["sentence"]),
                               pairs=" ".join(parts)))
        told_sentence = True
    return Chapter("The Inference Dance", paras) if paras else None


def _perspective(run: RunFacts, voice: Voice, layer: int, head: int) -> Chapter | None:
    if run.status != "finished":  # torn, stopped or still going: no ablation named anyone yet
        return None
    n = int(run.model.get("n_layers", 0)) * int(run.model.get("n_heads", 0))
    specs = run.specialists
    fate = run.fate(layer, head)
    if fate.role is not None:
        role = str(fate.role)
        same = [s for s in specs if s.get("role") == role]
        bank = PERSPECTIVE_ONLY if len(same) == 1 else PERSPECTIVE_SPECIALIST
        text = voice.say("perspective", bank, n=count(n),
                         n_spec_mine=count(len(same)), role=role,
                         heads_word="head" if len(same) == 1 else "heads",
                         words=ROLE_WORDS.get(role, role))
    else:
        # a head proven for two roles is one head: count heads, not (head, role) entries
        named = {(s.get("layer"), s.get("head")) for s in specs}
        row = unproven.unproven_row(run, fate) if specs else None
        text = voice.say("perspective", unproven.PERSPECTIVE if row else
                         PERSPECTIVE_DIFFUSE if specs else PERSPECTIVE_NONE,
                         n=count(n), n_spec=count(len(named)), role=(row or {}).get("role"))
    return Chapter("The Head's Perspective", [text])
