"""`fabric report`: the whole run as one offline HTML page you can replay (report/)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fabric_cli.commands._common import cli_errors, literal, warn
from fabric_cli.errors import FabricError


@cli_errors
def report(
    run: Annotated[Path | None, typer.Argument(
        help="Run directory (default: the newest runs/*/ here).", metavar="RUN",
        show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write the page (default: report-<run>.html here).",
    )] = None,
    theme: Annotated[str, typer.Option(
        "--theme", help="The page's first palette: light or dark (a button switches).",
    )] = "light",
) -> None:
    """Write one self-contained HTML page of a run: the story, the loss against the floor,
    the role map with ablations, and a timeline slider over the probes.

    \b
    Examples:
      fabric report
      fabric report runs/pronouns -o pronouns.html
      fabric report runs/seed3 --theme dark
    """
    from fabric_cli.analysis.roles import head_roles
    from fabric_cli.commands._export import (
        check_destination,
        check_theme,
        palette_pair,
        write_file,
    )
    from fabric_cli.commands._runs import note_if_training, read_chronicle
    from fabric_cli.commands.heads import _thresholds
    from fabric_cli.commands.narrate import find_chronicle
    from fabric_cli.report import build_report

    check_theme(theme)
    if output is not None and output.suffix.lower() not in (".html", ".htm"):
        raise FabricError(f"-o {literal(output.name)!r}: the page's name must end in .html")
    chronicle = find_chronicle(run, "fabric report {}")
    if output is None:
        # the run's own name, also for `fabric report .` (not "report-.html")
        where = chronicle.parent.resolve()
        name = where.name or "run"
        if name in ("with", "without") and where.parent.name.startswith("why-"):
            name = f"{where.parent.name}-{name}"  # each lesson's pair its own pages
        output = Path(f"report-{name}.html")
    check_destination(output, "-o")  # before the work: never over a file fabric did not write
    events = read_chronicle(chronicle)
    for message in getattr(events, "warnings", []):
        warn(message)
    events = list(events)
    note_if_training(chronicle, events, "the page shows it so far")
    page = build_report(events, roles=head_roles(events, _thresholds(events)),
                        colours=palette_pair(), theme=theme)
    write_file(output, page, "-o")
