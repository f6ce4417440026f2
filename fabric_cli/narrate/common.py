"""What several narrators share: moment values ready for templates, attention rows, role words."""

from __future__ import annotations

import math

from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import and_list, as_float, count, head_name, pct, sig, step

_STEP_KEYS = {"start_step", "end_step", "previous_step", "last_good_step", "knock_step"}

ROLE_WORDS = {
    "pronoun": "binding each pronoun to the noun it means",
    "verb": "reaching for the verb",
    "noun": "gathering on the nouns",
    "prev": "leaning on the word just before",
    "previous": "leaning on the word just before",
    "self": "looking at my own position",
    "first": "resting on the first token, <bos>",
}


def burst_values(run: RunFacts, moment: dict) -> dict[str, str]:
    """A clipping_burst's values with `{clip}` the run's clipping line (grad_clip), not the
    norm the last clipped step measured after its cut (0.999999 where the line is 1)."""
    values = moment_values(moment)
    line = as_float(run.training.get("grad_clip"))
    if line > 0:
        values["clip"] = sig(line)
    return values


def moment_values(moment: dict) -> dict[str, str]:
    """Every field of a moment formatted for a template: `{x}` (3 sig. digits or text),
    `{x_pct}` (as a percentage), steps and counts with separators, `{who}` = L1H2."""
    values: dict[str, str] = {"step": step(moment.get("step", 0))}
    layer, head = moment.get("layer"), moment.get("head")
    if layer is not None and head is not None:
        values.update(who=head_name(layer, head), layer=str(layer), head=str(head))
    for key, value in (moment.get("data") or {}).items():
        if key in _STEP_KEYS:
            values[key] = step(value)
        elif key == "count":
            values[key] = count(value)
        elif isinstance(value, str) and not _numberish(value):
            values[key] = value
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            values[key] = sig(value)
            values[f"{key}_pct"] = pct(value)
        elif isinstance(value, dict):
            for inner, x in value.items():
                if isinstance(x, (int, float, str)) and not isinstance(x, bool):
                    values[f"{key}_{inner}"] = sig(x)
                    values[f"{key}_{inner}_pct"] = pct(x)
        elif value is None:
            values[key] = "nothing measured"
    return values


def _numberish(text: str) -> bool:
    return text in {"nan", "inf", "-inf"}


def row_focus(pattern: list[list[float]] | None, query: int) -> tuple[int, float] | None:
    """Where one query row of an attention pattern puts most weight: (key index, weight)."""
    if pattern is None or not 0 <= query < len(pattern):
        return None
    row = [as_float(x) for x in pattern[query][: query + 1]]
    if not row:
        return None
    best = max(range(len(row)), key=lambda j: row[j])
    return best, row[best]


# A row is worth calling sharp only if it had a choice: rows 0 and 1 see at most <bos> and
# themselves (under the causal mask row 0 must put 1 on <bos>), so they are left out.
FIRST_CHOOSING_ROW = 2


def sharpest(pattern: list[list[float]] | None) -> float:
    """The largest weight any row with a real choice puts on a word (never on <bos>, the
    resting place of heads with nothing to do, and never in rows 0 and 1)."""
    if not pattern:
        return math.nan
    weights = [as_float(x) for q, row in enumerate(pattern) if q >= FIRST_CHOOSING_ROW
               for x in row[1:q + 1]]
    weights = [w for w in weights if math.isfinite(w)]
    return max(weights) if weights else math.nan


def pronoun_pairs(snapshot: dict) -> list[tuple[int, int]]:
    pairs = []
    for pair in snapshot.get("pronouns") or []:
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            pairs.append((int(pair[0]), int(pair[1])))
    return pairs


def token(snapshot: dict, index: int) -> str:
    tokens = snapshot.get("tokens") or []
    return str(tokens[index]) if 0 <= index < len(tokens) else "?"


def flow_row(step_event: dict | None, layer: int) -> dict | None:
    for row in (step_event or {}).get("grad_flow") or []:
        if row.get("layer") == layer:
            return row
    return None


def stepper(run: RunFacts) -> dict[str, str]:
    """Who turns a gradient into a step, for phrases that name it: {adam} mid-sentence and
    {Adam} at a sentence's start. Adam only where the run trained with AdamW; a run on SGD or
    momentum (no-adam, storm) had no Adam in it."""
    if run.training.get("optimizer", "adamw") == "adamw":
        return {"adam": "Adam", "Adam": "Adam"}
    return {"adam": "the optimiser", "Adam": "The optimiser"}


def top_layer(run: RunFacts) -> int:
    return max(0, int(run.model.get("n_layers", 1)) - 1)


def heads_list(pairs: list[tuple[int, int]]) -> str:
    return and_list([head_name(layer, head) for layer, head in pairs])
