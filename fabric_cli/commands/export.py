"""`fabric export`: a run's checkpoint as a directory another tool opens (TransformerLens)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from fabric_cli.commands._common import cli_errors, literal, stdout_console
from fabric_cli.errors import FabricError
from fabric_cli.narrate.format import step as step_text


@cli_errors
def export(
    run: Annotated[Path, typer.Argument(
        help="The run directory, e.g. runs/tiny.", metavar="RUN", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="The tool: transformer-lens.")],
    out_dir: Annotated[Path, typer.Argument(
        help="A new or empty directory to write.", metavar="OUT_DIR", show_default=False)],
) -> None:
    """Write a run's current checkpoint for another tool to load.

    \b
    Examples:
      fabric export runs/tiny --to transformer-lens exported/tiny
    """
    from fabric_cli.analysis.export import TARGETS, export_transformer_lens
    from fabric_cli.commands._runs import run_to_read

    if to not in TARGETS:
        raise FabricError(f"--to {to!r}: fabric exports to {', '.join(TARGETS)}")
    run_to_read(run, f"fabric export {{}} --to {to} {shlex.quote(str(out_dir))}")
    done = export_transformer_lens(run, out_dir)
    stdout_console().print(
        literal(f"Exported step {step_text(done.step)} of {run} to {done.out_dir} "
                f"({', '.join(done.files)}); load it in TransformerLens as the README shows."),
        markup=False, highlight=False, soft_wrap=True)
