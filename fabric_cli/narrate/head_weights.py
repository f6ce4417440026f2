"""The Head's own weights, one step at a time: its first correction and a late one, from the
`weight_change` the trainer records on the first update and on the updates that land on a
probe (analysis/weights.py, docs/chronicle.md). Chronicles without it tell neither beat.

The late correction's size word (grown, shrunk, much the same) is the trend of the mean
absolute change, late against first (claims.trend: ±10%).
"""

from __future__ import annotations

from fabric_cli.narrate.claims import trend
from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import as_float, finite, sig, step
from fabric_cli.narrate.head_lines import (
    EVEN_CORRECTION,
    FIRST_CORRECTION,
    FIRST_STILL,
    LATE_CORRECTION,
)
from fabric_cli.narrate.story import Voice


def _mine(event: dict, layer: int, head: int) -> dict | None:
    for row in event.get("weight_change") or []:
        if not isinstance(row, dict) or (row.get("layer"), row.get("head")) != (layer, head):
            continue
        numbers = (row.get("mean_abs"), (row.get("rise") or {}).get("change"),
                   (row.get("fall") or {}).get("change"))
        return row if all(finite(x) for x in numbers) else None
    return None


def measured(run: RunFacts, layer: int, head: int) -> list[tuple[dict, dict]]:
    """(step event, this head's row) for every step that recorded weight changes."""
    found = [(s, _mine(s, layer, head)) for s in run.steps]
    return [(s, row) for s, row in found if row is not None]


def _where(change: dict) -> str:
    index = change.get("index") or []
    if len(index) != 2:
        return str(change.get("matrix", "?"))
    return f"{change.get('matrix', '?')}, row {index[0]}, column {index[1]}"


def _signed(x: object) -> str:
    text = sig(x)
    return "+" + text if as_float(x) > 0 else text


def _values(event: dict, row: dict) -> dict:
    rise, fall = row["rise"], row["fall"]
    return {"at": step(event["step"]), "rise": _signed(rise["change"]), "rise_at": _where(rise),
            "fall": _signed(fall["change"]), "fall_at": _where(fall),
            "mean": sig(row["mean_abs"])}


def first_correction(run: RunFacts, voice: Voice, layer: int, head: int) -> list[str]:
    found = measured(run, layer, head)
    if not found:
        return []
    event, row = found[0]
    values = _values(event, row)
    still = voice.claim("nothing", value=row["mean_abs"])
    if still:
        return [voice.say("first-correction", FIRST_STILL, claim=still, **values)]
    both = voice.claim("both_ways", rise=row["rise"]["change"], fall=row["fall"]["change"])
    if not both:
        return []
    text = voice.say("first-correction", FIRST_CORRECTION, claim=both, **values)
    even = voice.claim("even", rise=row["rise"]["change"], fall=row["fall"]["change"])
    if even:
        text += " " + voice.pick("even-correction", EVEN_CORRECTION, claim=even)
    return [text]


def late_correction(run: RunFacts, voice: Voice, layer: int, head: int) -> list[str]:
    found = measured(run, layer, head)
    if len(found) < 2:
        return []
    (first, first_row), (event, row) = found[0], found[-1]
    if not voice.claim("both_ways", rise=row["rise"]["change"], fall=row["fall"]["change"]):
        return []
    size = trend(first_row["mean_abs"], row["mean_abs"])
    if not size:
        return []
    return [voice.say("late-correction", LATE_CORRECTION[size.name], claim=size,
                      **_values(event, row), first_mean=sig(first_row["mean_abs"]),
                      first_at=step(first["step"]))]
