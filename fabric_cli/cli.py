"""The `fabric` command: registers the commands, nothing else. Each lives in commands/."""

from __future__ import annotations

from typing import Annotated

import typer

from fabric_cli import __version__

# name: (module under fabric_cli.commands, function, short help: what it does and one
# example). Only the command typed is imported (`fabric infer` need not load rich's tables,
# the bench's shapes or the report's page); `fabric --help` imports them all to list them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("train", "train", "Train the Fabric and watch a pronoun head grow.  e.g. fabric train --seed 3"),
    "infer": ("infer", "infer", "Send a sentence through the trained Fabric.  e.g. fabric infer \"The professor thanked the king after she finished her lecture.\""),
    "heads": ("heads", "heads", "What every head became, proven by ablation.  e.g. fabric heads --timeline 0.2"),
    "narrate": ("narrate", "narrate", "A component tells the run's story.  e.g. fabric narrate --component gradient"),
    "report": ("report", "report", "The whole run as one offline HTML page.  e.g. fabric report -o run.html"),
    "scenarios": ("scenarios", "scenarios", "List the bundled scenarios.  e.g. fabric scenarios"),
    "corpus": ("corpus", "corpus", "Show sentences the Fabric will read.  e.g. fabric corpus -n 10"),
    "compare": ("compare", "compare", "Two runs side by side, and what differed.  e.g. fabric compare runs/a runs/b"),
    "why": ("why", "why", "Why a component exists: train with and without it.  e.g. fabric why residual"),
    "check": ("check", "check", "Prove the Gradient honest: finite-difference checks.  e.g. fabric check --json"),
    "export": ("export", "export", "Write a run for another tool (TransformerLens).  e.g. fabric export runs/tiny --to transformer-lens out"),
    "bench": ("bench", "bench", "Time a training step on this machine.  e.g. fabric bench --d-model 256"),
}


def build_app(only: str | None = None) -> typer.Typer:
    """The `fabric` app with every command, or with `only` the one about to run."""
    import importlib

    from fabric_cli.commands._common import PlainUsage

    app = typer.Typer(
        name="fabric",
        help=(
            "Watch a small transformer learn to track pronouns, and hear it tell you how.\n\n"
            "Start with `fabric train` (about a minute), then `fabric infer \"The professor "
            "thanked the king after she finished her lecture.\"` and `fabric narrate`."
        ),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for name in COMMANDS if only is None else (only,):
        module, function, short_help = COMMANDS[name]
        command = getattr(importlib.import_module(f"fabric_cli.commands.{module}"), function)
        # every usage line names its arguments as their help does: RUN_A, not {run_a}
        app.command(name, short_help=short_help, cls=PlainUsage)(command)
    app.callback()(_root)
    return app


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fabric {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Watch a small transformer learn to track pronouns, and hear it tell you how."""


def __getattr__(name: str):
    """`fabric_cli.cli.app`: the whole app, built when first asked for (the tests' runner)."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Run the app; any mistake on the command line is one line on stderr, exit 2."""
    import os
    import sys

    # typer vendors click (typer._click); its exceptions are the ones raised here.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    from fabric_cli.commands._common import stderr_console, told_interruption
    from fabric_cli.views.palette import literal

    typed = sys.argv[1] if len(sys.argv) > 1 else None
    app = build_app(typed if typed in COMMANDS else None)
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `fabric` alone: the help is the greeting
        typer.echo(exc.format_message())
        code = 0
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "fabric"
        if where == "fabric" and typed in COMMANDS:  # an option missing its value: the
            where = f"fabric {typed}"  # error comes from the parser, not the command's ctx
        message = literal(exc.format_message()).rstrip(".")
        stderr_console().print(f"fabric: error: {message}; see `{where} --help`",
                               markup=False, highlight=False)
        code = 2
    except (KeyboardInterrupt, typer.Abort):  # Ctrl-C before a command's own handler
        code = 130
    if code == 130 and not told_interruption():  # typer's own exit 130 says nothing
        os.write(2, b"fabric: error: interrupted\n")
    sys.exit(code if isinstance(code, int) else 0)
