"""What a voice may say about its numbers: every qualitative word is a named fact.

A fact is a comparison of measured numbers with a threshold defined here. A voice asks
`voice.claim("shrank", before=a, after=b)` and gets a Claim (true or false, with the numbers it
compared); a phrase bank that uses a qualitative word names the fact it needs
(`Bank("shrank", [...])`), and `Voice.say` refuses to speak it unless that claim holds. So
"small steps now" can only follow steps that really shrank, and "a small voice" only a head
writing under a quarter of the stream it joins.

`LEXICON` lists the words that make a claim, with the facts that license each; the claims test
(tests/test_claims.py) checks every phrase a voice told against it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# --- thresholds (the only place a qualitative word's meaning is decided) -------------------
CHANGE = 0.10  # grew / shrank: moved by more than 10% of where it started
NEAR_UNIFORM_NATS = 0.5  # a first loss within 0.5 nats of ln(vocabulary) is an honest blank
CLOSE_GAP = 0.10  # close to the floor: gap under 10% of the floor
HELD_FRACTION = 0.9  # focus held under a mask: masked ≥ 90% of clean
SHAKEN_FRACTION = 0.5  # shaken: masked below half of clean
HURT_LOSS = 0.05  # silencing hurt: loss up ≥ 0.05 nats ...
HURT_ACC = 0.05  # ... or accuracy down ≥ 5 points (the ablation's own bar)
LEARNED_ACC = 0.5  # pronouns learned: the best head resolves at least half of them
CERTAIN = 0.9  # a weight this large on one word is certainty
MURMUR = 0.5  # no weight above this anywhere: a murmur
BRANCH_MORE = 1.0  # the block's branches outweigh the skip path: block/skip above 1
MARGIN = 2.0  # a distant second: the winner holds at least twice the runner-up's weight
SHARE_DROP = 0.05  # a guess's share fell: by at least 5 points of probability
SMALL_SHARE = 0.25  # a small voice: a head's output under a quarter of the stream it joins
GALE = 5.0  # a gale: the Gradient's peak at least 5 times the clipping line it was cut to
FADED_RATIO = 0.1  # the gradient faded: bottom/top arriving ratio under 0.1 (the detector's)


def _f(x: object) -> float:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)):
        return float(x)
    try:
        return float(str(x))
    except ValueError:
        return math.nan


def _finite(*xs: object) -> bool:
    return all(math.isfinite(_f(x)) for x in xs)


def _grew(before, after) -> bool:
    return _finite(before, after) and _f(after) > _f(before) * (1 + CHANGE)


def _shrank(before, after) -> bool:
    return _finite(before, after) and _f(after) < _f(before) * (1 - CHANGE)


def _hurt(loss_before, loss_after, acc_before, acc_after) -> bool:
    return _finite(loss_before, loss_after, acc_before, acc_after) and (
        _f(loss_after) - _f(loss_before) >= HURT_LOSS
        or _f(acc_before) - _f(acc_after) >= HURT_ACC)


@dataclass(frozen=True)
class Fact:
    test: Callable[..., bool]
    meaning: str  # what the comparison is, for a reader of the code and the test's messages


FACTS: dict[str, Fact] = {
    "grew": Fact(_grew, f"after > before × {1 + CHANGE}"),
    "shrank": Fact(_shrank, f"after < before × {1 - CHANGE}"),
    "steady": Fact(lambda before, after: _finite(before, after)
                   and not _grew(before, after) and not _shrank(before, after),
                   f"after within ±{CHANGE:.0%} of before"),
    "near_uniform": Fact(lambda loss, uniform: _finite(loss, uniform)
                         and abs(_f(loss) - _f(uniform)) < NEAR_UNIFORM_NATS,
                         f"|first loss − ln V| < {NEAR_UNIFORM_NATS}"),
    "far_from_uniform": Fact(lambda loss, uniform: _finite(loss, uniform)
                             and abs(_f(loss) - _f(uniform)) >= NEAR_UNIFORM_NATS,
                             f"|first loss − ln V| ≥ {NEAR_UNIFORM_NATS}"),
    "close_to_floor": Fact(lambda val, floor: _finite(val, floor)
                           and _f(val) - _f(floor) < CLOSE_GAP * _f(floor),
                           f"val − floor < {CLOSE_GAP} × floor"),
    "far_from_floor": Fact(lambda val, floor: _finite(val, floor)
                           and _f(val) - _f(floor) >= CLOSE_GAP * _f(floor),
                           f"val − floor ≥ {CLOSE_GAP} × floor"),
    "held": Fact(lambda clean, dropped: _finite(clean, dropped) and _f(clean) > 0
                 and _f(dropped) >= HELD_FRACTION * _f(clean),
                 f"masked ≥ {HELD_FRACTION} × clean"),
    "bent": Fact(lambda clean, dropped: _finite(clean, dropped) and _f(clean) > 0
                 and SHAKEN_FRACTION * _f(clean) <= _f(dropped) < HELD_FRACTION * _f(clean),
                 f"{SHAKEN_FRACTION} × clean ≤ masked < {HELD_FRACTION} × clean"),
    "shaken": Fact(lambda clean, dropped: _finite(clean, dropped)
                   and _f(dropped) < SHAKEN_FRACTION * _f(clean),
                   f"masked < {SHAKEN_FRACTION} × clean"),
    "hurt": Fact(_hurt, f"loss up ≥ {HURT_LOSS} or accuracy down ≥ {HURT_ACC}"),
    "harmless": Fact(lambda loss_before, loss_after, acc_before, acc_after:
                     _finite(loss_before, loss_after, acc_before, acc_after)
                     and not _hurt(loss_before, loss_after, acc_before, acc_after),
                     f"loss up < {HURT_LOSS} and accuracy down < {HURT_ACC}"),
    "learned": Fact(lambda acc: _finite(acc) and _f(acc) >= LEARNED_ACC,
                    f"best pronoun accuracy ≥ {LEARNED_ACC}"),
    "not_learned": Fact(lambda acc: _finite(acc) and _f(acc) < LEARNED_ACC,
                        f"best pronoun accuracy < {LEARNED_ACC}"),
    "certain": Fact(lambda weight: _finite(weight) and _f(weight) >= CERTAIN,
                    f"weight ≥ {CERTAIN}"),
    "murmur": Fact(lambda weight: _finite(weight) and _f(weight) <= MURMUR,
                   f"largest weight ≤ {MURMUR}"),
    "sharper": Fact(lambda before, after: _grew(before, after), "the same as grew"),
    "right": Fact(lambda target, antecedent: target == antecedent, "argmax is the antecedent"),
    "wrong": Fact(lambda target, antecedent: target != antecedent, "argmax is another token"),
    "branch_more": Fact(lambda skip, block: _finite(skip, block)
                        and _f(block) > BRANCH_MORE * _f(skip), "block > skip"),
    "branch_less": Fact(lambda skip, block: _finite(skip, block) and _f(skip) > 0
                        and _f(block) <= BRANCH_MORE * _f(skip), "0 < skip and block ≤ skip"),
    "faded": Fact(lambda bottom, top: _finite(bottom, top) and _f(top) > 0
                  and _f(bottom) / _f(top) < FADED_RATIO, f"bottom/top < {FADED_RATIO}"),
    "reached": Fact(lambda bottom, top: _finite(bottom, top) and _f(top) > 0
                    and _f(bottom) / _f(top) >= FADED_RATIO, f"bottom/top ≥ {FADED_RATIO}"),
    "clear_margin": Fact(lambda weight, runner_up: _finite(weight, runner_up)
                         and _f(weight) >= MARGIN * _f(runner_up),
                         f"weight ≥ {MARGIN} × the runner-up's"),
    "narrow_margin": Fact(lambda weight, runner_up: _finite(weight, runner_up)
                          and _f(weight) < MARGIN * _f(runner_up),
                          f"weight < {MARGIN} × the runner-up's"),
    "share_fell": Fact(lambda before, after: _finite(before, after)
                       and _f(before) - _f(after) >= SHARE_DROP,
                       f"before − after ≥ {SHARE_DROP}"),
    "share_kept": Fact(lambda before, after: _finite(before, after)
                       and _f(before) - _f(after) < SHARE_DROP,
                       f"before − after < {SHARE_DROP}"),
    "opened": Fact(lambda before, after: _finite(before, after) and _f(after) > 0
                   and _f(after) > _f(before) + CHANGE * abs(_f(before)),
                   "a gap that is positive and widened by more than 10%"),
    "nothing": Fact(lambda value: _finite(value) and _f(value) == 0, "exactly 0"),
    # on the figures as printed (strings): 0.9996 and 1.0 both read "100%", so they "stayed"
    "figures_equal": Fact(lambda before, after: str(before) == str(after),
                          "the two figures, as printed, are the same"),
    "figures_differ": Fact(lambda before, after: str(before) != str(after),
                           "the two figures, as printed, differ"),
    "exceeds": Fact(lambda a, b: _finite(a, b) and _f(a) > _f(b), "a > b"),
    "both_ways": Fact(lambda rise, fall: _finite(rise, fall) and _f(rise) > 0 > _f(fall),
                      "the largest rise is above 0 and the largest fall below 0"),
    "even": Fact(lambda rise, fall: _finite(rise, fall) and _f(rise) > 0 > _f(fall)
                 and abs(abs(_f(fall)) - _f(rise)) <= CHANGE * _f(rise),
                 f"the largest fall's size within ±{CHANGE:.0%} of the largest rise"),
    "not_exceeds": Fact(lambda a, b: _finite(a, b) and _f(a) <= _f(b), "a ≤ b"),
    "small_share": Fact(lambda a, b: _finite(a, b) and _f(b) > 0 and _f(a) < SMALL_SHARE * _f(b),
                        f"a < {SMALL_SHARE} × b"),
    "fair_share": Fact(lambda a, b: _finite(a, b) and _f(b) > 0
                       and SMALL_SHARE * _f(b) <= _f(a) <= _f(b), f"{SMALL_SHARE} × b ≤ a ≤ b"),
    # two contributions to one probability: "did more" needs the larger one to have added
    "gained_more": Fact(lambda a, b: _finite(a, b) and _f(a) > _f(b) and _f(a) > 0,
                        "a > b and a > 0"),
    "gained_alone": Fact(lambda a, b: _finite(a, b) and _f(a) > 0 >= _f(b),
                         "a > 0 ≥ b (the MLP added, attention did not)"),
    "gained_less": Fact(lambda a, b: _finite(a, b) and _f(b) >= _f(a) and _f(b) > 0,
                        "b ≥ a and b > 0"),
    "neither_gained": Fact(lambda a, b: _finite(a, b) and _f(a) <= 0 and _f(b) <= 0,
                           "a ≤ 0 and b ≤ 0"),
    "clipped": Fact(lambda n: _f(n) > 0, "clipped steps > 0"),
    "gale": Fact(lambda peak, line: _finite(peak, line) and _f(line) > 0
                 and _f(peak) >= GALE * _f(line), f"peak ≥ {GALE} × the clipping line"),
    "never_clipped": Fact(lambda n: _f(n) == 0, "clipped steps = 0"),
    "diverged": Fact(lambda loss, grad_norm=0.0: not _finite(loss) or not _finite(grad_norm),
                     "the loss or the gradient is not a finite number"),
    "all_shrank": Fact(lambda pairs: bool(pairs) and all(_shrank(b, a) for b, a in pairs),
                       "every (before, after) pair shrank"),
    "all_grew": Fact(lambda pairs: bool(pairs) and all(_grew(b, a) for b, a in pairs),
                     "every (before, after) pair grew"),
    "mixed": Fact(lambda pairs: bool(pairs) and all(_finite(b, a) for b, a in pairs)
                  and not all(_shrank(b, a) for b, a in pairs)
                  and not all(_grew(b, a) for b, a in pairs),
                  "the pairs did not all move the same way"),
}


def trend(before: object, after: object) -> Claim:
    """Whichever of grew / shrank / steady holds (a Claim that fails if a number is missing)."""
    for name in ("grew", "shrank", "steady"):
        claim = judge(name, before=before, after=after)
        if claim:
            return claim
    return judge("steady", before=before, after=after)


def trend_all(pairs: list[tuple[object, object]]) -> Claim:
    """all_shrank, all_grew or mixed over several (before, after) pairs."""
    for name in ("all_shrank", "all_grew", "mixed"):
        claim = judge(name, pairs=pairs)
        if claim:
            return claim
    return judge("mixed", pairs=pairs)

# Words that claim something, and the facts under which each may be said. A phrase that uses
# one of these words must name one of its facts (case-insensitive, whole words). A fact may
# license a word in the negative ("never faded" under 'reached', "neither louder nor quieter"
# under 'steady'): tests/test_claims.py reads every bank's phrases against this table.
LEXICON: dict[str, tuple[str, ...]] = {
    "grew": ("grew", "all_grew"), "grown": ("grew", "all_grew"),
    "larger": ("grew", "all_grew", "exceeds", "gained_more"), "louder": ("grew", "exceeds", "steady"),
    "wider": ("grew",), "lifted": ("shrank",),
    "swelled": ("grew",), "climbed": ("grew", "sharper"), "louder voices": ("grew",),
    "shrank": ("shrank", "all_shrank"), "shrunk": ("shrank", "all_shrank"),
    "smaller": ("shrank", "all_shrank", "not_exceeds", "small_share"), "quieter": ("shrank", "steady"), "narrower": ("shrank",),
    "nearly there": ("shrank", "all_shrank"), "small steps": ("shrank", "all_shrank"),
    "ripples": ("shrank",), "whisper where": ("shrank",),
    "knew nothing": ("near_uniform",), "blank loom": ("near_uniform",),
    "confident, and wrong": ("far_from_uniform",),
    "almost all": ("close_to_floor",), "distance to go": ("far_from_floor",),
    "grip held": ("held",), "focus held": ("held",), "it held": ("held",),
    "bent": ("bent",), "shook": ("shaken",), "shaken": ("shaken",),
    "unravels": ("hurt",),
    # no fact licenses "blind" now: its one measure set the next word's accuracy against a
    # bar for resolving pronouns; a phrase that says it fails the claims test
    "blind": (),
    "barely": ("harmless", "share_kept", "steady"), "almost nothing": ("harmless",),
    "were learned": ("learned",), "were not": ("not_learned",), "becalmed": ("not_learned",),
    "certainty": ("certain",), "certain": ("certain",), "murmur": ("murmur", "certain"),
    "sharper": ("sharper",),
    "tied true": ("right",), "that is the one": ("right",), "missed": ("wrong", "not_learned", "harmless"),
    "wrong thread": ("wrong",), "dropped stitch": ("wrong",),
    "faded": ("faded", "reached"), "ghost": ("faded",), "always heard": ("reached",),
    "storm": ("clipped", "diverged"), "gale": ("gale",), "wildest": ("gale",), "ran wild": ("gale",),
    "storms came": ("gale",), "trimmed": ("clipped", "never_clipped", "gale"),
    "reined": ("clipped", "gale"), "distant": ("clear_margin",), "knot tied": ("clear_margin",),
    "snapped taut": ("clear_margin",), "close behind": ("narrow_margin",),
    "near second": ("narrow_margin",), "not yet a knot": ("narrow_margin",),
    "frays": ("share_fell",),
    "cost little": ("share_kept",), "barely moved": ("share_kept",),
    "echo": ("exceeds", "not_exceeds", "clear_margin"),
    "follower of neighbours": ("clear_margin",), "taut cord": ("clear_margin",), "my share was the larger": ("gained_more",), "more than attention": ("gained_more",),
    "attention did more": ("gained_less",), "took from": ("neither_gained",),
    "drifting apart": ("opened",), "lined up": ("opened",), "small voice": ("small_share",),
    "gap widened": ("opened",), "snags cancel": ("exceeds",), "stretched back": ("clear_margin",),
    "no more of me": ("not_exceeds",), "nothing of me": ("nothing",),
    "much the same": ("steady",), "stayed at": ("figures_equal",), "as far up as down": ("even",),
}


@dataclass(frozen=True)
class Claim:
    name: str
    values: dict
    holds: bool

    def __bool__(self) -> bool:
        return self.holds


def judge(name: str, **values: object) -> Claim:
    """Compare the measured numbers as fact `name` says; the Claim remembers them."""
    return Claim(name, dict(values), bool(FACTS[name].test(**values)))


@dataclass(frozen=True)
class Bank:
    """Variants of one beat, sayable only when the fact named holds (None: no claim)."""

    needs: str | None
    variants: Sequence[str] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.variants)

    def __getitem__(self, i: int) -> str:
        return self.variants[i]


def needed(bank: object) -> str | None:
    return bank.needs if isinstance(bank, Bank) else None
