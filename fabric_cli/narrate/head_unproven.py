"""A head with a role's pattern but no proof: its score cleared the role's bar at the last
probe, so the ablation silenced it, and the run did not name it specialist (seed 2's L2H2: a
verb score of 0.875; zeroed alone, the loss after each verb went from 1.21 to 1.22). `fabric
heads` shows such a head under its role, without ★; its story must not call it diffuse.

    alone_row(run, layer, head, role)   the ablation row that silenced this head by itself
    unproven_row(run, fate)             that row for a head the run did not name, else None
    tell_unproven(voice, fate, row)     the paragraph: its score, then what silencing it did
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank
from fabric_cli.narrate.common import ROLE_WORDS
from fabric_cli.narrate.facts import HeadFate, RunFacts
from fabric_cli.narrate.figures import ablation_moves
from fabric_cli.narrate.format import sig
from fabric_cli.narrate.story import Voice

TITLE = "A Pattern, Unproven"
UNPROVEN = Bank("harmless", [
    ("My pattern said {role}: a score of {score} at the last probe, {words}. But they silenced "
     "me alone and almost nothing happened: the loss after my role {loss_move} nats, and "
     "accuracy {acc_move}. *The shape of a calling, and no proof the Fabric needed it.*"),
    ("At the last probe I scored {score} for {role}, {words}. Zeroed alone, I was barely "
     "missed: the loss {loss_move} nats, accuracy {acc_move}. The probes could not name me."),
    ("{score} for {role} at the last probe: I looked the part. Silenced, I cost almost "
     "nothing (the loss after my role {loss_move} nats, accuracy {acc_move})."),
    ("I had the habit of a {role} head ({score}, {words}), yet my silence was barely felt: "
     "the loss after my role {loss_move} nats, accuracy {acc_move}. *A pattern is not a "
     "proof.*"),
])
UNPROVEN_PLAIN = [  # the ablation moved something, and still the run's end did not name it
    ("At the last probe my {role} score was {score}, {words}; silenced alone, the loss after "
     "my role {loss_move} nats and accuracy {acc_move}, and the run's end did not name me."),
    ("A {role} score of {score} at the last probe. Zeroed by myself: the loss {loss_move} "
     "nats, accuracy {acc_move}. The verdict at the end left me unnamed."),
    ("My attention had the {role} shape ({score}). Silenced, the loss after my role "
     "{loss_move} nats and accuracy {acc_move}; no specialist's name for me at the end."),
    ("{score} for {role}, {words}; without me the loss {loss_move} nats and accuracy "
     "{acc_move}. The run ended without naming me."),
]
TITLES = ["{who}: A Pattern Without Proof", "{who}: The Look of a Calling",
          "{who}: Shaped, Not Named", "{who}: A Habit, Unproven"]
PERSPECTIVE = [
    ("{n} heads; {n_spec} proven by ablation, and I, for all my {role} pattern, was not among "
     "them. *A pattern is not a proof.*"),
    "One of {n} heads, with the {role} pattern and without the proof; named by the end: {n_spec}.",
    "Of {n} heads, {n_spec} named at the end. I looked like a {role} head; the ablation did not agree.",
    "Proven by the end: {n_spec} of {n} heads. Not me, though my attention had the {role} shape.",
]


def alone_row(run: RunFacts, layer: int, head: int, role: str | None = None) -> dict | None:
    rows = [r for r in (run.ablation or {}).get("rows") or [] if isinstance(r, dict)
            and [list(h) for h in r.get("heads") or []] == [[layer, head]]]
    rows.sort(key=lambda r: r.get("role") != role)  # its own best role's row first
    return rows[0] if rows else None


def unproven_row(run: RunFacts, fate: HeadFate) -> dict | None:
    if fate.role is not None or run.status != "finished":
        return None
    return alone_row(run, fate.layer, fate.head, fate.best_role)


def tell_unproven(run: RunFacts, voice: Voice, fate: HeadFate, row: dict) -> str:
    role = str(row.get("role"))
    score = run.score(run.head_row(run.last_probe, fate.layer, fate.head), role)
    nums = {k: row.get(k) for k in ("loss_before", "loss_after", "acc_before", "acc_after")}
    harmless = voice.claim("harmless", **nums)
    return voice.say("unproven", UNPROVEN if harmless else UNPROVEN_PLAIN,
                     claim=harmless if harmless else None, role=role,
                     words=ROLE_WORDS.get(role, role), score=sig(score),
                     **ablation_moves(voice, "unproven", row))
