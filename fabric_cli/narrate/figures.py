"""How a voice says that a figure moved or did not, judged on the two figures as printed.

An ablation can raise the loss while accuracy goes from 0.9996 to 1.0: both print as "100%",
and "accuracy went from 100% to 100%" reads as a mistake. So the words are chosen by comparing
the printed figures (claims: `figures_differ`, `figures_equal`), and a bank says
"accuracy {acc_move}" where `moved` fills in "went from 100% to 47.9%" or "stayed at 100%".
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank
from fabric_cli.narrate.format import pct, sig
from fabric_cli.narrate.story import Voice

MOVED = Bank("figures_differ", ["went from {before} to {after}"])
STAYED = Bank("figures_equal", [
    "stayed at {before}",
    "held at {before}",
])


def moved(voice: Voice, slot: str, before: str, after: str) -> str:
    """A predicate for two printed figures: "went from A to B", or "stayed at A" when A and B
    read the same."""
    same = voice.claim("figures_equal", before=before, after=after)
    if same:
        return voice.say(slot, STAYED, claim=same, before=before, after=after)
    return voice.say(slot, MOVED, claim=voice.claim("figures_differ", before=before, after=after),
                     before=before, after=after)


def ablation_moves(voice: Voice, slot: str, ablation: dict, prefix: str = "") -> dict[str, str]:
    """`{prefix}loss_move` and `{prefix}acc_move` for an ablation's before/after numbers."""
    return {
        f"{prefix}loss_move": moved(voice, f"{slot}:loss", sig(ablation.get("loss_before")),
                                    sig(ablation.get("loss_after"))),
        f"{prefix}acc_move": moved(voice, f"{slot}:acc", pct(ablation.get("acc_before")),
                                   pct(ablation.get("acc_after"))),
    }
