"""All the voices as one story, in the seeds' arc: random beginnings (the Tokenizer's cut, the
Loss's first verdict, the Gradient's arrival, then the Head's turn), finding focus (the moments,
one line each, moments of one kind across heads told once together, a voice answering the one
before it), specialisation, the inference dance, and each voice's last word. A chapter exists
only when its moments happened; no sentence is told twice."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence

from fabric_cli.errors import FabricError
from fabric_cli.narrate import engineers as E
from fabric_cli.narrate import ensemble_lines as L
from fabric_cli.narrate import ffn as F
from fabric_cli.narrate import gradient as G
from fabric_cli.narrate import head_lines as H
from fabric_cli.narrate import residual as R
from fabric_cli.narrate.common import burst_values, moment_values
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.figures import ablation_moves
from fabric_cli.narrate.format import and_list, as_float, head_name, pct, step
from fabric_cli.narrate.story import Chapter, Story, Voice

CLOSING = ("adam", "layernorm", "residual", "softmax", "dropout", "engineers", "loss")
GROUPED = ("role_threshold", "first_snap", "specialist")  # across heads: one line per kind

# (component, moment) -> one line in that component's voice, or None when it has no line.
MomentTeller = Callable[[dict, int], str | None]


def _who(m: dict) -> str:
    return head_name(m["layer"], m["head"])


def _voice(moment: dict) -> str:
    """Who speaks a moment: a head by its own name (L0H2), since several heads speak."""
    if moment.get("component") == "head" and moment.get("layer") is not None:
        return _who(moment)
    return str(moment.get("component"))


def _probe_before(run: RunFacts, at: int) -> dict | None:
    found = [p for p in run.probes if int(p.get("step", 0)) <= at]
    return found[-1] if found else None


class _Teller:
    def __init__(self, run: RunFacts, voice: Voice, fallback: MomentTeller) -> None:
        self.run, self.voice, self.fallback = run, voice, fallback
        self.previous: str | None = None  # the kind told just before (for answers)

    def group(self, kind: str, moments: list[dict]) -> str | None:
        first, rest = moments[0], moments[1:]
        v = moment_values(first)
        slot = f"{kind}:{first.get('step')}:{first.get('layer')}.{first.get('head')}"
        if kind == "role_threshold":
            items = [L.THRESHOLD_ITEM.format(**moment_values(m)) for m in rest]
            if not items:
                return self.voice.say(slot, L.THRESHOLD_ONE, **v)
            return self.voice.say(slot, L.THRESHOLD_GROUP, **v, rest=and_list(items),
                                  others=and_list([_who(m) for m in rest]))
        if kind == "first_snap":
            items = [L.SNAP_ITEM.format(**moment_values(m)) for m in rest]
            bank = L.SNAP_GROUP if items else L.SNAP_ONE
            return self.voice.say(slot, bank, **v, rest=and_list(items) if items else "")
        return self._specialists(slot, moments)

    def _specialists(self, slot: str, moments: list[dict]) -> str | None:
        first = moments[0]
        d = first.get("data") or {}
        role = str(d.get("role"))
        group = d.get("group_ablation") or {}
        if len(moments) > 1 and group:
            nums = {k: group.get(k) for k in ("loss_before", "loss_after", "acc_before",
                                               "acc_after")}
            hurt = self.voice.claim("hurt", **nums)
            spares = all((m.get("data") or {}).get("alone_hurts") is False for m in moments)
            bank = L.SPECIALIST_TEAM if spares else L.SPECIALIST_TEAM_KEY
            if hurt:
                text = self.voice.say(slot, bank, claim=hurt, step=step(first["step"]),
                                      role=role, heads=and_list([_who(m) for m in moments]),
                                      **ablation_moves(self.voice, slot, group))
                extra = self.run.unnamed_in_team(role, group)
                if extra:  # the figure silenced them too: say so, not only the named
                    text += " " + self.voice.say(
                        f"{slot}:unnamed", L.TEAM_UNNAMED, them="it" if len(extra) == 1
                        else "them", extra=and_list([head_name(*h) for h in extra]))
                return text
        abl = d.get("ablation") or {}
        nums = {k: abl.get(k) for k in ("loss_before", "loss_after", "acc_before", "acc_after")}
        hurt = self.voice.claim("hurt", **nums)
        if len(moments) == 1 and hurt:
            moves = ablation_moves(self.voice, slot, abl)
            return self.voice.say(slot, L.SPECIALIST_ALONE, claim=hurt, step=step(first["step"]),
                                  role=role, loss_move=moves["loss_move"])
        return self.fallback(first, self.run.seed)

    def one(self, m: dict) -> str | None:
        kind, v, d = str(m.get("kind")), moment_values(m), m.get("data") or {}
        slot = f"{kind}:{m.get('step')}"
        say = self.voice.say
        if kind == "clipping_burst":
            clipped = self.voice.claim("clipped", n=d.get("count"))
            if not clipped:
                return None
            gale = self.voice.claim("gale", peak=d.get("max_norm"),
                                    line=self.run.training.get("grad_clip"))
            bank = L.CLIP_AFTER_SPIKE if self.previous == "gradient_spike" else (
                L.CLIP_GALE if gale else L.CLIP_BURST)
            return say(slot, bank, claim=gale if gale and bank is L.CLIP_GALE else clipped,
                       **burst_values(self.run, m))
        if kind == "gradient_spike":
            grew = self.voice.claim("grew", before=d.get("median"), after=d.get("grad_norm"))
            return say(slot, L.SPIKE, claim=grew, **v) if grew else None
        if kind == "vanishing_gradient":
            faded = self.voice.claim("faded", bottom=d.get("bottom"), top=d.get("top"))
            return say(slot, L.VANISH, claim=faded, **v) if faded else None
        if kind == "loss_plateau":
            return self._plateau(slot, m, v)
        if kind == "loss_drop":
            return say(slot, L.DROP, **v)
        if kind == "near_floor":
            return say(slot, L.NEAR_FLOOR, **v)
        if kind == "dropout_knock":
            return say(slot, L.KNOCK, **v)
        if kind == "dropout_recovered":
            return say(slot, L.RECOVERED_AFTER_KNOCK, **v)
        if kind == "diverged":
            return say(slot, L.DIVERGED, **v)
        return self.fallback(m, self.run.seed)

    def _plateau(self, slot: str, m: dict, v: dict) -> str | None:
        end = int((m.get("data") or {}).get("end_step", m.get("step", 0)))
        probe = _probe_before(self.run, end)
        accs = [as_float(r.get("pronoun_acc")) for r in (probe or {}).get("heads") or []]
        accs = [a for a in accs if math.isfinite(a)]
        if not accs:
            return None
        acc = max(accs)
        learned = self.voice.claim("learned", acc=acc)
        lost = self.voice.claim("not_learned", acc=acc)
        return self.voice.say(slot, L.PLATEAU_WORKING if learned else L.PLATEAU_LOST,
                              claim=learned if learned else lost, **v, acc=pct(acc))


def _sequence(run: RunFacts) -> list[tuple[str, list[dict]]]:
    """Moments in order; those of a grouped kind (per role, for thresholds and specialists)
    gathered at the first one's place."""
    out: list[tuple[str, list[dict]]] = []
    seen: dict[tuple, list[dict]] = {}
    for m in run.moments:
        kind = str(m.get("kind"))
        if kind in GROUPED and m.get("layer") is not None:
            key = (kind, (m.get("data") or {}).get("role"))
            if key in seen:
                seen[key].append(m)
                continue
            seen[key] = [m]
            out.append((kind, seen[key]))
        else:
            out.append((kind, [m]))
    return out


def _paragraph_of(story: Story | None, bank: Sequence[str]) -> str | None:
    """The paragraph of `story` in which a phrase of `bank` was told (None if none was)."""
    if story is None:
        return None
    texts = [t.text for t in story.told if t.template in bank]
    for chapter in story.chapters:
        for paragraph in chapter.paragraphs:
            if any(text and text in paragraph for text in texts):
                return paragraph
    return None


def _strongest_block(run: RunFacts, ffn: Story | None) -> str | None:
    """The FFN's logit-lens paragraph for the block where its own gain was largest."""
    lens = (run.last_probe or {}).get("logit_lens") or {}
    rows = [r for r in lens.get("layers") or [] if math.isfinite(as_float(r.get("mlp_gain")))]
    if not rows:
        return None
    layer = max(rows, key=lambda r: as_float(r["mlp_gain"]))["layer"]
    found = [p for p in _first_paragraphs(ffn, "My Own Share", 16)
             if re.search(rf"\bblock {layer}\b", p)]
    return found[0] if found else None


def _first_paragraphs(story: Story | None, title: str | None = None, n: int = 1) -> list[str]:
    if story is None:
        return []
    for chapter in story.chapters:
        if title is None or chapter.title == title:
            return chapter.paragraphs[:n]
    return []


class _Page:
    """Chapters being written, with no sentence told twice."""

    def __init__(self) -> None:
        self.chapters: list[Chapter] = []
        self.seen: set[str] = set()

    def chapter(self, title: str) -> Chapter:
        self.chapters.append(Chapter(title, []))
        return self.chapters[-1]

    def add(self, chapter: Chapter, paragraph: str | None, voice: str) -> None:
        if not paragraph or paragraph in self.seen:
            return
        self.seen.add(paragraph)
        chapter.paragraphs.append(paragraph)
        chapter.voices.append(voice)


def tell(run: RunFacts, stories: Mapping[str, Story], moment_line: MomentTeller,
         voice: Voice) -> Story:
    page = _Page()
    head = stories.get("head")
    ch = page.chapter("Random Beginnings")
    for name in ("tokenizer", "loss"):
        page.add(ch, next(iter(_first_paragraphs(stories.get(name))), None), name)
    head_begin = _first_paragraphs(head, "Random Beginnings", 3)
    tracker = _who_speaks(head)
    page.add(ch, head_begin[0] if head_begin else None, tracker)
    page.add(ch, next(iter(_first_paragraphs(stories.get("gradient"))), None), "gradient")
    # the Gradient's arrival, then the Head's turn: its first touch answers
    page.add(ch, head_begin[-1] if len(head_begin) > 1 else None, tracker)

    teller = _Teller(run, voice, moment_line)
    stormy = run.status == "diverged"
    focus = page.chapter("Finding Focus")
    special = page.chapter("Specialisation")
    for kind, moments in _sequence(run):
        line = teller.group(kind, moments) if kind in GROUPED else teller.one(moments[0])
        teller.previous = kind
        target = special if kind in ("specialist", "dropout_recovered") else focus
        if kind == "diverged":
            target = page.chapter("The Storm")
        page.add(target, line, _voice(moments[0]))
    # the head's inner voice: an echo at first? its query finding the antecedent's key
    page.add(focus, _paragraph_of(head, H.ECHO), tracker)
    page.add(focus, _paragraph_of(head, H.ALIGN), tracker)
    if not stormy:
        page.add(special, _paragraph_of(stories.get("residual"), R.BLEND), "residual")
        page.add(special, _paragraph_of(stories.get("gradient"), G.REACH), "gradient")
        dropout = stories.get("dropout")
        backups = [p for p in _first_paragraphs(dropout, "The Mask", 4) if "backups" in p
                   or "learned the same" in p]
        for p in backups[:1]:
            page.add(special, p, "dropout")
        dance = page.chapter("The Inference Dance")
        for p in _first_paragraphs(head, "The Inference Dance", 4)[1:]:
            page.add(dance, p, tracker)
        ffn = stories.get("ffn")
        page.add(dance, _strongest_block(run, ffn), "ffn")
        for p in _first_paragraphs(ffn, "Pointers into Words", 4):
            if p == _paragraph_of(ffn, F.AFTER_ROLE):
                page.add(dance, p, "ffn")
    last = page.chapter("The Storm" if stormy else "Each Voice's Last Word")
    told_storm = any(m.get("kind") == "diverged" for m in run.moments)
    for name in CLOSING:
        if name == "engineers":  # a stop the run was resumed from, before their last word
            engineers = stories.get(name)
            page.add(last, _paragraph_of(engineers, E.RESUMED)
                     or _paragraph_of(engineers, E.RESUMED_ELSEWHERE), name)
        if told_storm and name == "engineers":
            continue  # their line for the divergence was already told, in The Storm
        story = stories.get(name)
        if story and story.chapters and story.chapters[-1].paragraphs:
            page.add(last, story.chapters[-1].paragraphs[-1], name)
    for p in _first_paragraphs(head, "The Head's Perspective", 1):
        page.add(last, p, tracker)
    told = [t for s in stories.values() for t in s.told]
    merged: list[Chapter] = []
    for c in page.chapters:  # two Storm chapters (the moment and the closing) become one
        if c.paragraphs and merged and merged[-1].title == c.title:
            merged[-1].paragraphs += c.paragraphs
            merged[-1].voices += c.voices
        elif c.paragraphs:
            merged.append(c)
    return Story(voice.pick("title", L.TITLES), "ensemble", merged,
                 voice.pick("epigraph", L.EPIGRAPH), told=told)


def _who_speaks(head: Story | None) -> str:
    """The tracker's name (its story's title starts with it: "L0H0: ...")."""
    if head is None:
        return "head"
    name = head.title.split(":", 1)[0]
    return name if name.startswith("L") else "head"


def safe_stories(run: RunFacts, tellers: Mapping[str, Callable[[RunFacts], Story]],
                 names: Sequence[str]) -> dict[str, Story]:
    """Each narrator's own story; a head with nothing to tell (no probes yet) is left out."""
    stories = {}
    for name in names:
        try:
            stories[name] = tellers[name](run)
        except FabricError:
            continue
    return stories
