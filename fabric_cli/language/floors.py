"""The entropy floors of the bundled languages, walked out once and kept (floors.json).

The exact floor (language/floor.py) of the default language takes about two seconds, and
every `fabric train` of a bundled scenario needs it before its first event. It depends only
on the grammar, the held-out pairs and the vocabulary, so it is kept here under a digest of
those three; any other language is computed as before. tests/test_floor.py walks out every
bundled scenario's floor again and compares it with this table, field for field, so a table
out of date fails the tests; `python scripts/write_floors.py` rewrites it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from fabric_cli.language.floor import Floor

TABLE = Path(__file__).with_name("floors.json")


def language_key(grammar, pairs, vocab) -> str:
    """A digest of what the floor depends on (every part's repr is deterministic)."""
    text = repr((grammar, pairs, list(vocab)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    try:
        data = json.loads(TABLE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no table: every floor is computed
    return data if isinstance(data, dict) else {}


def known_floors(key: str) -> dict[str, Floor] | None:
    """{split: Floor} for a bundled language, None for any other."""
    entry = _table().get(key)
    if not isinstance(entry, dict):
        return None
    try:
        return {split: Floor(float(f["nats_per_token"]), float(f["sentence_entropy"]),
                             float(f["mean_length"]), int(f["states"]))
                for split, f in entry.items()}
    except (KeyError, TypeError, ValueError):
        return None


def table_entry(floors: dict[str, Floor]) -> dict:
    return {split: {"nats_per_token": f.nats_per_token, "sentence_entropy": f.sentence_entropy,
                    "mean_length": f.mean_length, "states": f.states}
            for split, f in floors.items()}
