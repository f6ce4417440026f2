"""`fabric check`: prove the Gradient honest with finite differences, in about two seconds."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from fabric_cli.commands._common import cli_errors, stdout_console
from fabric_cli.nn.gradcheck import TOLERANCE, run_gradcheck


@cli_errors
def check(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the checks as a JSON list instead of a table.")
    ] = False,
) -> None:
    """Check every analytic gradient against central differences (float64, small model).

    Every parameter tensor of a 2-layer Fabric with dropout on, every layer's input gradient,
    and Adam's step against its formula. Exits 1 if any check fails.
    """
    rows = run_gradcheck()
    failed = [r for r in rows if not r["passed"]]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
    else:
        table = Table(title="The Gradient, checked by finite differences", title_justify="left")
        table.add_column("check")
        table.add_column("kind")
        table.add_column("elements", justify="right")
        table.add_column("max rel. error", justify="right")
        table.add_column("result")
        for r in rows:
            table.add_row(
                r["check"], r["kind"], str(r["elements"]), f"{r['max_rel_error']:.1e}",
                "pass" if r["passed"] else "FAIL", style=None if r["passed"] else "bold red",
            )
        console = stdout_console()
        console.print(table)
        worst = max(rows, key=lambda r: r["max_rel_error"])
        console.print(
            f"{len(rows) - len(failed)} of {len(rows)} checks pass (tolerance {TOLERANCE:.0e}); "
            f"the worst is {worst['check']} at {worst['max_rel_error']:.1e}.",
            markup=False,
        )
    if failed:
        raise typer.Exit(1)
