"""Which run a command reads, and what to type when there is none: every hint names the
option or argument the command really takes, and the command that makes the missing run.

    directory = run_to_read(run, "fabric heads --run {}")   # the newest runs/*/ when None
    note_if_training(directory, events, "this map shows it so far")
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from fabric_cli.analysis import rundir
from fabric_cli.commands._common import literal, stderr_console
from fabric_cli.errors import FabricError
from fabric_cli.narrate.format import step as step_text

RUNS = Path("runs")  # where `fabric train` keeps its runs (runs/<scenario>) and readers look


def _shown(directory: Path) -> str:
    return shlex.quote(str(directory))


def how_to_make(directory: Path) -> str:
    """The command that creates `directory`: a bundled scenario's default run directory
    (runs/<scenario>) is made by `fabric train --scenario <scenario>`, a lesson's pair
    (runs/why-<component>/with, …/without) by `fabric why <component>`, any other by
    `fabric train --run-dir DIR`."""
    from fabric_cli.lessons import LESSONS
    from fabric_cli.scenario import scenarios_dir

    parts = Path(os.path.normpath(directory)).parts
    if parts and Path(parts[0]).is_absolute():
        try:
            parts = Path(os.path.normpath(directory)).relative_to(Path.cwd()).parts
        except ValueError:
            parts = ()
    if len(parts) == 2 and parts[0] == RUNS.name and \
            (scenarios_dir() / f"{parts[1]}.toml").is_file():
        return f"fabric train --scenario {parts[1]}"
    if len(parts) == 3 and parts[0] == RUNS.name and parts[2] in ("with", "without") and \
            parts[1].startswith("why-") and parts[1][4:] in LESSONS:
        return f"fabric why {parts[1][4:]}"
    return f"fabric train --run-dir {_shown(directory)}"


def why_command(component: str, runs_dir: Path) -> str:
    """The `fabric why` that trains (or reuses) a lesson's pair kept under `runs_dir`."""
    return f"fabric why {component}" + (
        f" --runs-dir {_shown(runs_dir)}" if Path(runs_dir) != RUNS else "")


def how_to_retrain(directory: Path) -> str:
    """The command that trains `directory` again, from the start, on the scenario it was
    trained on: its bundled scenario by name when its kept copy is that scenario's file, else
    the copy itself (a run of a scenario file elsewhere, a `--steps` change kept in it)."""
    from fabric_cli.scenario import scenarios_dir

    made = how_to_make(directory)
    if not made.startswith("fabric train"):
        return made  # a lesson's pair: `fabric why` trains both again
    copy = directory / rundir.SCENARIO_COPY
    name = rundir.read_marker(directory).get("scenario")
    bundled = scenarios_dir() / f"{name}.toml" if isinstance(name, str) and name else None
    try:
        known = bundled is not None and bundled.is_file()
        kept = copy.read_bytes() if copy.is_file() else None
        same = kept is not None and known and kept == bundled.read_bytes()
    except OSError:
        known, kept, same = False, None, False
    # the marker's scenario, not the one the directory's name suggests (runs/pronouns may
    # hold a run of tiny, trained there with --run-dir)
    if same or (kept is None and known):
        if made == f"fabric train --scenario {name}":
            return f"{made} --force"
        return f"fabric train --scenario {name} --run-dir {_shown(directory)} --force"
    if kept is not None:
        return f"fabric train --scenario {_shown(copy)} --run-dir {_shown(directory)} --force"
    return f"{made} --force"


def read_chronicle(chronicle: Path):
    """The events of a run's chronicle; a damaged one names the command that trains that run
    again."""
    from fabric_cli.chronicle import DamagedChronicle, read_events

    try:
        return read_events(chronicle)
    except DamagedChronicle as exc:
        again = how_to_retrain(chronicle.parent)
        raise FabricError(f"{exc.damage}; train the run again with `{literal(again)}`",
                          exc.exit_code) from None


def newest_run(usage: str) -> Path:
    """The newest run under runs/ here; none is one line saying how to make or name one.
    `usage` is the command naming a run, with {} for the directory."""
    from fabric_cli.analysis.runs import latest_run_dir

    try:
        return latest_run_dir(RUNS)
    except FabricError:
        raise FabricError(f"no runs under {RUNS}/ here; train one with `fabric train`, or name "
                          f"one elsewhere: `{usage.format('DIR')}`") from None


def is_run(directory: Path) -> bool:
    """Whether fabric wrote `directory`: its marker, a chronicle or a checkpoint."""
    return (rundir.has_marker(directory) or (directory / rundir.CHRONICLE).is_file()
            or (directory / rundir.CHECKPOINT).exists()
            or (directory / "trainer_state.json").is_file())


def run_to_read(run: Path | None, usage: str) -> Path:
    """`run` checked to be a fabric run (a chronicle file is let through to the caller), or
    the newest run when None; `usage` as in `newest_run`."""
    if run is None:
        return newest_run(usage)
    if not run.exists():
        raise FabricError(f"{literal(str(run))}: no such run directory; "
                          f"`{literal(how_to_make(run))}` creates it")
    if run.is_dir() and not is_run(run):
        inside = sorted(d for d in run.iterdir() if d.is_dir() and is_run(d))
        if inside:  # a folder of runs, as runs/ itself: name them
            named = ", ".join(literal(_shown(d)) for d in inside[:4])
            more = f" and {len(inside) - 4} more" if len(inside) > 4 else ""
            example = usage.format(_shown(inside[0])) if "{}" in usage else _shown(inside[0])
            raise FabricError(f"{literal(str(run))} holds runs, not one run: {named}{more}; "
                              f"name one, e.g. `{literal(example)}`")
        raise FabricError(f"{literal(str(run))} is not a fabric run directory (no chronicle or "
                          f"checkpoint in it); {_which_run(usage)}")
    return run


def _which_run(usage: str) -> str:
    """A hint naming a run that exists here, else how to make one (`usage` without {}: the
    run is one of several arguments, as in `fabric compare`)."""
    from fabric_cli.analysis.runs import latest_run_dir

    try:
        newest = latest_run_dir(RUNS)
    except FabricError:
        if "{}" not in usage:
            return "train one with `fabric train`, then give its directory (runs/pronouns)"
        return f"train one with `fabric train`, then `{usage.format('runs/pronouns')}`"
    if "{}" not in usage:
        return f"give one made by `fabric train`, such as {literal(_shown(newest))}"
    return f"name one made by `fabric train`, e.g. `{literal(usage.format(_shown(newest)))}`"


# -- a run still training -------------------------------------------------------------------------


def note_if_training(directory: Path, events: list[dict], what: str) -> None:
    """One line on stderr when `fabric train` is still writing `directory`: the story, map
    or page shows the run only as far as it has got."""
    if directory.is_file():
        directory = directory.parent
    pid = rundir.writer_pid(directory)
    if pid is None:
        return
    steps = [e["step"] for e in events if e.get("type") == "step" and "step" in e]
    start = next((e for e in reversed(events) if e.get("type") == "run_start"), {})
    total = (start.get("training") or {}).get("steps")
    where = f"step {step_text(steps[-1])}" if steps else "before its first step"
    if steps and isinstance(total, int):
        where += f" of {step_text(total)}"
    stderr_console().print(
        f"fabric: note: {literal(str(directory))} is still training ({where}, process {pid}); "
        f"{what}", markup=False, highlight=False)
