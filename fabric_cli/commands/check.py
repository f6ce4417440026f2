"""`fabric check`: prove the Gradient honest with finite differences, in a few seconds."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from fabric_cli.commands._common import cli_errors, stdout_console
from fabric_cli.nn.gradcheck import DEFAULT_COMBINATION, TOLERANCE, run_gradcheck


def _summaries(rows: list[dict]) -> list[dict]:
    """One row per switch combination checked by random direction: its worst tensor."""
    by_combination: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("method") == "random direction":
            by_combination.setdefault(r["combination"], []).append(r)
    summaries = []
    for combination, group in by_combination.items():
        worst = max(group, key=lambda r: r["max_rel_error"])
        summaries.append({
            "check": combination, "kind": "every tensor, by direction", "elements": len(group),
            "max_rel_error": worst["max_rel_error"], "passed": all(r["passed"] for r in group),
        })
    return summaries


@cli_errors
def check(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the checks as a JSON list instead of a table.")
    ] = False,
) -> None:
    """Check every analytic gradient against central differences (float64, small model).

    Every parameter tensor of a 2-layer Fabric in every combination of the switches
    (residual on/off, LayerNorm on/off, dropout masks on/off): element by element for the
    default Fabric, along a random direction for the others. Then every layer's input
    gradient, and the AdamW, SGD and momentum steps against their formulas. Exits 1 if any
    check fails.
    """
    rows = run_gradcheck()
    failed = [r for r in rows if not r["passed"]]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        table = Table(
            title="The Gradient, checked by finite differences (parameters element by element in "
                  f"the default Fabric: {DEFAULT_COMBINATION.label}; below them, each other "
                  "combination of the switches along one random direction per tensor)",
            title_justify="left",
        )
        table.add_column("check")
        table.add_column("kind")
        table.add_column("elements", justify="right")
        table.add_column("max rel. error", justify="right")
        table.add_column("result")
        shown = [r for r in rows if r.get("method") != "random direction"]
        for r in shown + _summaries(rows):
            table.add_row(
                r["check"], r["kind"], str(r["elements"]), f"{r['max_rel_error']:.1e}",
                "pass" if r["passed"] else "FAIL", style=None if r["passed"] else "bold red",
            )
        console = stdout_console()
        console.print(table, markup=False)
        worst = max(rows, key=lambda r: r["max_rel_error"])
        where = f" ({worst['combination']})" if worst.get("combination") else ""
        console.print(
            f"{len(rows) - len(failed)} of {len(rows)} checks pass (tolerance {TOLERANCE:.0e}); "
            f"the worst is {worst['check']}{where} at {worst['max_rel_error']:.1e}.",
            markup=False,
        )
    if failed:
        raise typer.Exit(1)
