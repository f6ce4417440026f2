"""`fabric why COMPONENT`: the one-command lesson. Train a short scenario with and without the
component (or reuse the pair kept from last time), show them side by side, and let the
component speak of its absence. Every figure is measured in those two runs."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fabric_cli.commands._common import (
    ExportOption,
    ThemeOption,
    cli_errors,
    literal,
    quiet_control_echo,
    stderr_console,
    told_interruption,
)
from fabric_cli.commands.compare import show_comparison
from fabric_cli.commands.infer import check_export
from fabric_cli.errors import FabricError
from fabric_cli.narrate.format import step as step_text


@cli_errors
def why(
    component: Annotated[str, typer.Argument(
        help="residual, layernorm, clipping, adam or dropout.", metavar="COMPONENT",
        show_default=False)],
    runs_dir_text: Annotated[str, typer.Option(
        "--runs-dir", help="Where the pair is kept: DIR/why-COMPONENT/with and …/without.",
    )] = "runs",
    retrain: Annotated[bool, typer.Option(
        "--retrain", help="Train both runs again even if a matching pair is kept.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    export: ExportOption = None,
    theme: ThemeOption = None,
) -> None:
    """Why does the Fabric need COMPONENT? Train it with and without, then compare.

    \b
    Examples:
      fabric why residual          # 8 layers with and without the residual
      fabric why clipping --json   # a storm, with and without clipping
    """
    check_export(export)
    if not runs_dir_text.strip():  # an empty value would keep the pair right here
        raise FabricError("--runs-dir is empty; give a directory, e.g. --runs-dir runs")
    if literal(runs_dir_text) != runs_dir_text:
        raise FabricError(f"--runs-dir {literal(repr(runs_dir_text))} holds a control "
                          "character (a newline, a tab…); name it with printable characters")
    runs_dir = Path(runs_dir_text)
    from fabric_cli.commands._export import check_theme

    theme = check_theme(theme, export)
    from fabric_cli.analysis.compare import compare_dirs
    from fabric_cli.lessons import load_lesson
    from fabric_cli.training.lesson import lesson_runs

    lesson = load_lesson(component)
    runs = lesson_runs(lesson, runs_dir)
    from fabric_cli.commands._runs import why_command

    again = why_command(component, runs_dir)
    for run in runs:  # what a failure mid-run (a full disk) tells the user to type
        run.trainer.again = again
    if retrain:
        for run in runs:
            run.reused = False
    err = stderr_console()
    for run in runs:
        if run.reused:
            err.print(f"Reusing the kept run {literal(str(run.run_dir))} ({run.status}); "
                      "--retrain trains it again.", markup=False, highlight=False)
    stopped = _train_with_progress(runs, err)
    if stopped is not None:
        told, command = _interrupted(runs, stopped, again).split("\n")
        err.print(told, markup=False, highlight=False,
                  soft_wrap=not err.is_terminal)  # a terminal wraps it between words
        err.print(command, markup=False, highlight=False, soft_wrap=True)
        told_interruption(now=True)
        raise typer.Exit(130)
    cmp = compare_dirs(runs[0].run_dir, runs[1].run_dir)
    cmp["lesson"] = {"name": lesson.name, "changes": lesson.changes,
                     "runs": [{"label": r.label, "run_dir": str(r.run_dir), "reused": r.reused,
                               "status": r.status} for r in runs]}
    show_comparison(cmp, lesson.component, as_json=as_json, export=export,
                    command=f"fabric why {component}",
                    title=f"Why {component}? With it (A) and without it (B)", theme=theme)
    if as_json:
        sys.stdout.flush()


def _interrupted(runs, stopped, again: str) -> str:
    """What Ctrl-C left: the stopped run's checkpoint, and what running the lesson again does
    (it reuses a run that ended as the lesson would train it, and trains the rest from their
    start: an interrupted run is not resumed)."""
    from fabric_cli.analysis import rundir
    from fabric_cli.training.lesson import kept_run

    where = literal(str(stopped.run_dir))
    ended = {id(r): kept_run(r.trainer) for r in runs}
    kept = [r for r in runs if ended[id(r)] is not None]
    saved = rundir.current_step_dir(stopped.run_dir)
    if stopped in kept:  # the Ctrl-C came as it was finishing: the next one never started
        line = "Interrupted between the runs."
    else:
        line = f"Interrupted {where} at step {step_text(stopped.trainer.step)}; " + (
            f"its checkpoint of step {step_text(rundir.step_of(saved))} is saved there."
            if saved is not None else "no checkpoint of it was saved yet.")
    for r in kept:
        line += f" {literal(str(r.run_dir))} ({ended[id(r)].get('status')}) is kept."
    fresh = [literal(str(r.run_dir)) for r in runs if r not in kept]
    command = f"\n  {literal(again)}"  # on a line of its own, to be copied, as train's is
    if not fresh:
        return line + " Running the lesson again reuses both and compares them:" + command
    line += " Running the lesson again "
    line += "reuses the kept run and trains " if kept else "trains "
    return (line + f"{' and '.join(fresh)} from the start (an interrupted run is not "
            "resumed):" + command)


def _train_with_progress(runs, err):
    """Train the runs not reused, one after the other; the first Ctrl-C stops the one
    training at its next step and saves its checkpoint, a second stops it at once; either
    way the run stopped is returned."""
    from fabric_cli.training.lesson import train_lesson

    pending = [r for r in runs if not r.reused]
    if not pending:
        return None
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, transient=False,
                        disable=not err.is_terminal)
    # each bar names the run directory it fills: "runs/why-clipping/with"
    tasks = {r.label: progress.add_task(literal(str(r.trainer.run_dir))[-36:],
                                        total=r.trainer.total_steps, start=False)
             for r in pending}
    for run in pending:
        task = tasks[run.label]

        def on_event(event, task=task):
            if event.get("type") == "step":
                progress.update(task, completed=event["step"])

        run.trainer.subscribers.append(on_event)

    def on_start(run):
        progress.start_task(tasks[run.label])  # its clock starts when its training does
        if not err.is_terminal:
            err.print(f"Training {run.label} the component: {step_text(run.trainer.total_steps)} steps "
                      f"-> {literal(str(run.run_dir))}", markup=False, highlight=False)

    training: dict = {}

    def on_sigint(signum, frame):
        run = training.get("run")
        if run is None or training.get("stop"):  # a second Ctrl-C: stop at once
            raise KeyboardInterrupt
        training["stop"] = True  # also when it lands as a run is finishing: no next run
        run.trainer.request_stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    restore_echo = quiet_control_echo(err.file)  # no "^C" under the bars
    previous_term = signal.signal(signal.SIGTERM, on_sigint)  # `kill`, `timeout`: as Ctrl-C
    try:
        with progress:
            for run in pending:
                training["run"] = run
                try:
                    train_lesson([run], on_start=on_start)
                except KeyboardInterrupt:  # stopped mid-step: the last probe's checkpoint
                    return run
                if training.get("stop"):
                    return run
    finally:
        signal.signal(signal.SIGINT, previous)
        if restore_echo is not None:
            restore_echo()
        signal.signal(signal.SIGTERM, previous_term)
    for run in pending:
        if not err.is_terminal:
            err.print(f"  {run.label}: {run.status} in {run.seconds:.1f} s",
                      markup=False, highlight=False)
    return None

