"""Rewrite fabric_cli/language/floors.json: the exact entropy floor of every bundled language.

    python scripts/write_floors.py

Run it after changing a bundled scenario's grammar or the floor's code (tests/test_floor.py
says when the table no longer matches).
"""

from __future__ import annotations

import json

from fabric_cli.language.corpus import Corpus
from fabric_cli.language.floors import TABLE, table_entry
from fabric_cli.lessons import every_bundled_scenario


def main() -> None:
    table = {}
    for name, scenario in every_bundled_scenario():
        corpus = Corpus(scenario)
        key = corpus.language_key()
        if key not in table:
            table[key] = table_entry(corpus.computed_floor_details())
            print(f"{name}: {table[key]['train']['nats_per_token']:.6f} nats/token (train)")
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(table)} languages to {TABLE}")


if __name__ == "__main__":
    main()
