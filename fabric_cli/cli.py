"""The `fabric` command: registers the commands, nothing else. Each lives in commands/."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric_cli import __version__
from fabric_cli.commands import (
    bench,
    check,
    corpus,
    export,
    heads,
    infer,
    narrate,
    scenarios,
    train,
)
from fabric_cli.commands._common import PlainUsage
from fabric_cli.commands.report import report as report_command

app = typer.Typer(
    name="fabric",
    help=(
        "Watch a small transformer learn to track pronouns, and hear it tell you how.\n\n"
        "Start with `fabric train` (about a minute), then `fabric infer \"The professor "
        "finished her lecture.\"` and `fabric narrate`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# short_help is what `fabric --help` lists: what the command does and one example.
app.command("train", short_help="Train the Fabric and watch a pronoun head grow.  e.g. fabric train --seed 3")(train.train)
app.command("infer", cls=PlainUsage, short_help="Send a sentence through the trained Fabric.  e.g. fabric infer \"The professor finished her lecture.\"")(infer.infer)
app.command("heads", short_help="What every head became, proven by ablation.  e.g. fabric heads --timeline 0.2")(heads.heads)
app.command("narrate", short_help="A component tells the run's story.  e.g. fabric narrate --component gradient")(narrate.narrate)
app.command("report", short_help="The whole run as one offline HTML page.  e.g. fabric report -o run.html")(report_command)
app.command("scenarios", short_help="List the bundled scenarios.  e.g. fabric scenarios")(scenarios.scenarios)
app.command("corpus", short_help="Show sentences the Fabric will read.  e.g. fabric corpus -n 10")(corpus.corpus)
app.command("check", short_help="Prove the Gradient honest: finite-difference checks.  e.g. fabric check --json")(check.check)
app.command("export", short_help="Write a run for another tool (TransformerLens).  e.g. fabric export runs/tiny --to transformer-lens out")(export.export)
app.command("bench", short_help="Time a training step on this machine.  e.g. fabric bench --d-model 256")(bench.bench)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fabric {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Watch a small transformer learn to track pronouns, and hear it tell you how."""


def main() -> None:
    """Run the app; any mistake on the command line is one line on stderr, exit 2."""
    import os
    import sys

    # typer vendors click (typer._click); its exceptions are the ones raised here.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    from fabric_cli.commands._common import stderr_console
    from fabric_cli.views.palette import literal

    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `fabric` alone: the help is the greeting
        typer.echo(exc.format_message())
        code = 0
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "fabric"
        message = literal(exc.format_message()).rstrip(".")
        stderr_console().print(f"fabric: error: {message}; see `{where} --help`",
                               markup=False, highlight=False)
        code = 2
    except (KeyboardInterrupt, typer.Abort):  # Ctrl-C before a command's own handler
        os.write(2, b"fabric: error: interrupted\n")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
