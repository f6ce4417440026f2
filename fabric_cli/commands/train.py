"""`fabric train`: weave the Fabric on a scenario and watch a pronoun head grow."""

from __future__ import annotations

import json
import re
import shlex
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from fabric_cli.commands._common import (
    cli_errors,
    literal,
    stderr_console,
    stdout_console,
    told_interruption,
)
from fabric_cli.errors import FabricError
from fabric_cli.narrate.format import and_list
from fabric_cli.narrate.format import step as step_text


def _summary_json(result) -> dict:
    s = result.summary
    return {
        "run_dir": str(result.run_dir),
        "status": result.status,
        "steps": result.steps,
        "seconds": round(result.seconds, 3),
        "final_train_loss": s.get("final_train_loss"),
        "final_val_loss": s.get("final_val_loss"),
        "entropy_floor": s.get("floor"),
        "specialists": [
            {
                "layer": sp["layer"], "head": sp["head"], "role": sp["role"],
                "score": sp.get("score"), "heldout_acc": sp.get("heldout_acc"),
                "baseline_acc": sp.get("baseline_acc"), "ablation": sp.get("ablation"),
                "redundant_with": sp.get("redundant_with"),
                "alone_hurts": sp.get("alone_hurts"), "backup_effect": sp.get("backup_effect"),
                "best": sp.get("best"),
            }
            for sp in s.get("specialists", [])
        ],
        "time_split": s.get("time_split"),
    }


@cli_errors
def train(
    scenario: Annotated[str | None, typer.Option(
        "--scenario", "-s",
        help="A bundled scenario name (see `fabric scenarios`) or a .toml path "
        "(default: pronouns; with --resume, the run's own).",
    )] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps (default: the scenario's).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: the scenario's).")] = None,
    run_dir_text: Annotated[str | None, typer.Option(
        "--run-dir", help="Where the run is kept: a new or empty directory, or a fabric run "
        "(default: runs/<scenario>).",
    )] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing run.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final summary as JSON.")] = False,
) -> None:
    """Train the Fabric on a scenario and watch a pronoun head grow.

    \b
    Examples:
      fabric train
      fabric train --seed 3 --run-dir runs/seed3
      fabric train --scenario tiny --steps 200 --json
      fabric train --resume                       # continue runs/pronouns after Ctrl-C
      fabric train --resume --run-dir runs/seed3  # continue another run
    """
    if resume and force:
        raise FabricError("--resume and --force contradict each other; choose one")
    if scenario is not None and not scenario.strip():  # `--scenario "$UNSET"`: not the default
        raise FabricError("--scenario is empty; give a name (see `fabric scenarios`) or the "
                          "path of a .toml file")
    if run_dir_text is not None and not run_dir_text.strip():
        raise FabricError("--run-dir is empty; give a directory, e.g. --run-dir runs/mine")
    if run_dir_text is not None and literal(run_dir_text) != run_dir_text:
        # a newline or a tab in the name: no command printed for it could be typed back
        raise FabricError(f"--run-dir {literal(repr(run_dir_text))} holds a control character "
                          "(a newline, a tab…); name the run with printable characters")
    run_dir = Path(run_dir_text) if run_dir_text is not None else None
    # Imported here, not at the top: every command's module is loaded at startup, and the
    # trainer, corpus and dashboard would slow `fabric infer` and `fabric --help`.
    from fabric_cli.commands.live import LivePicture, PlainTicker
    from fabric_cli.scenario import load_scenario
    from fabric_cli.training.trainer import Trainer

    found = _scenario_of_run(run_dir) if scenario is None and resume and run_dir else None
    if found is not None and not isinstance(found, str):
        sc = found
    else:
        sc = load_scenario(found or scenario or "pronouns")
    directory = run_dir if run_dir is not None else Path("runs") / sc.name
    if resume:
        _check_kept_settings(directory, steps=steps, seed=seed)
    out = stdout_console()
    interactive = out.is_terminal and not quiet and not as_json
    if interactive:
        view = LivePicture(out)
    elif quiet or as_json:
        view = None
    else:
        view = PlainTicker(out)
    trainer = Trainer(sc, directory, steps=steps, seed=seed,
                      subscribers=[view.on_event] if view else [])
    trainer.prepare(resume=resume, force=force)
    if trainer.started_over:
        stderr_console().print(
            f"fabric: note: {literal(str(directory))} stopped before its first checkpoint; "
            "training it again from the beginning", markup=False, highlight=False)

    def on_sigint(signum, frame):
        if trainer._stop:  # a second Ctrl-C while stopping: give up at once
            raise KeyboardInterrupt
        trainer.request_stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    # `kill PID`, `timeout`, a logout: stop and save as a Ctrl-C does, not die without a word
    previous_term = signal.signal(signal.SIGTERM, on_sigint)
    try:
        if view is not None:
            view.start(trainer)
        try:
            result = trainer.run()
        except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, between checkpoints
            result = None
        finally:
            if view is not None:
                view.stop()
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    if result is None:
        _stopped_at_once(trainer.run_dir)

    if as_json:
        sys.stdout.write(json.dumps(_summary_json(result), indent=2) + "\n")
    else:
        _print_ending(result)

    err = stderr_console()
    where = literal(str(result.run_dir))
    if result.status == "interrupted":
        # --resume reads the scenario back from the run itself, so the directory is enough
        again = f"fabric train --resume --run-dir {shlex.quote(str(result.run_dir))}"
        # the sentence wraps between words in a terminal; the command stands on a line of its
        # own, whole, to be copied
        err.print(f"Interrupted at step {step_text(result.steps)}; the checkpoint is saved in "
                  f"{where}. Resume with:", markup=False, soft_wrap=not err.is_terminal)
        err.print(f"  {literal(again)}", markup=False)
        told_interruption(now=True)
        raise typer.Exit(130)
    if result.status == "diverged":
        good = result.summary.get("checkpoint_step")
        torn = result.summary.get("non_finite", "loss")
        # a clip of 0 is off: lowering it changes nothing, turning it on does
        clip = ("lower training.lr or training.grad_clip" if sc.training.grad_clip > 0 else
                "lower training.lr or turn clipping on (training.grad_clip = 1.0)")
        raise FabricError(
            f"the {torn} became non-finite at step {step_text(result.steps + 1)}; the last good "
            f"checkpoint (step {step_text(good)}) is kept in {where}. To train again, "
            + _retrain_hint(sc, clip),
            exit_code=1,
        )


def _stopped_at_once(run_dir: Path) -> None:
    """A second Ctrl-C: what is kept, and the command that resumes, whole on a line of its own
    (as after the first), not inside an error line a terminal breaks mid-word."""
    from fabric_cli.analysis import rundir

    err = stderr_console()
    saved = rundir.current_step_dir(run_dir)
    again = f"fabric train --resume --run-dir {shlex.quote(str(run_dir))}"
    told = (f"Interrupted at once; the checkpoint of step {step_text(rundir.step_of(saved))} "
            f"is kept in {literal(str(run_dir))}. Resume with:" if saved is not None else
            "Interrupted at once, before the first checkpoint. Start it again with:")
    err.print(told, markup=False, highlight=False, soft_wrap=not err.is_terminal)
    err.print(f"  {literal(again)}", markup=False, highlight=False)
    told_interruption(now=True)
    raise typer.Exit(130)


def _retrain_hint(sc, change: str) -> str:
    """How to train a torn run again with the change made. A bundled scenario sits inside the
    installed package, out of a user's sight: they copy it, change the copy, and train that."""
    from fabric_cli.scenario import scenarios_dir

    path = Path(sc.path)
    if path.parent.resolve() != scenarios_dir().resolve():
        return f"{change} in the scenario and run with --force"
    copy = f"my-{path.stem}.toml"
    return (f"copy the bundled scenario (`cp {shlex.quote(str(path))} {copy}`), {change} in "
            f"the copy, and train it (`fabric train --scenario {copy}`)")


def _check_kept_settings(directory: Path, **asked: int | None) -> None:
    """A resumed run keeps the steps and seed it was started with (the schedule and the data
    depend on them): one that asks for others is refused, not silently given the old ones."""
    from fabric_cli.analysis import rundir

    kept = rundir.read_marker(directory)
    for name, value in asked.items():
        if value is not None and isinstance(kept.get(name), int) and kept[name] != value:
            raise FabricError(
                f"--{name} {value}: a resumed run keeps the {name} it was started with "
                f"({kept[name]:,}); drop --{name} to resume it, or train a new run with "
                "another --run-dir")


def _scenario_of_run(run_dir: Path):
    """The scenario an interrupted run was trained on: the copy kept in the run directory
    (under the run's own scenario name), else the one its chronicle's first line names, else
    the one its marker names."""
    from dataclasses import replace

    from fabric_cli.analysis import rundir
    from fabric_cli.scenario import load_scenario

    copy = run_dir / rundir.SCENARIO_COPY
    name = rundir.read_marker(run_dir).get("scenario")
    if copy.is_file() and isinstance(name, str) and name:
        try:
            return replace(load_scenario(str(copy)), name=name)
        except FabricError as exc:  # the copy was edited or damaged: the way on
            lesson = re.fullmatch(r"why-([a-z]+)-(with|without)", name)
            if lesson:  # its copy keeps its [lesson] table: `fabric why` trains it anew
                keep = run_dir.parent.parent
                from fabric_cli.commands._runs import why_command

                again = why_command(lesson[1], keep)
                raise FabricError(f"{run_dir} is one of `fabric why`'s runs, trained anew "
                                  f"rather than resumed: run `{again}` again") from None
            raise FabricError(f"{exc.message}; to resume, give the scenario the run was "
                              "trained on with --scenario") from None
    chronicle = run_dir / "chronicle.jsonl"
    try:
        with chronicle.open(encoding="utf-8") as f:
            first = json.loads(f.readline())
    except (OSError, ValueError):  # stopped before either was written: the marker's name
        return name if isinstance(name, str) and name else None  # (not the default's)
    path = first.get("scenario_path") if isinstance(first, dict) else None
    if path and Path(path).is_file():
        return str(path)
    return first.get("scenario") if isinstance(first, dict) else None


def _print_ending(result) -> None:
    """A few plain lines a person reads after the picture has gone."""
    if result.status != "finished":
        return
    s = result.summary
    out = stdout_console()
    floor = (s.get("floor") or {}).get("train")
    val = s.get("final_val_loss")
    line = f"Trained {step_text(result.steps)} steps in {result.seconds:.1f} s -> {result.run_dir}."
    if val is not None and floor:
        line += f" Validation loss {val:.3f} nats, entropy floor {floor:.3f} ({val / floor:.3f}x)."
    # A terminal wraps between words (not mid-word, as the terminal itself would); a pipe or
    # a log gets each fact on one line.
    wrap = not out.is_terminal
    out.print(literal(line), markup=False, highlight=False, soft_wrap=wrap)
    specialists = s.get("specialists", [])
    shown = _shown_roles(result.run_dir)
    for role, baseline in (("pronoun", "nearest-noun"), ("verb", "previous-token"),
                           ("noun", "nearest-noun")):
        named = _named_for(role, specialists, shown)
        for sp in named:
            where = shown.get((sp["layer"], sp["head"]), role)
            also = f"; `fabric heads` shows it as a {where} head, its stronger role" \
                if where != role else ""
            # the best of a role is named; the others the ablation proved are counted in too
            others = sorted({f"L{o['layer']}H{o['head']}" for o in specialists
                             if o["role"] == role and (o["layer"], o["head"]) not in
                             {(n["layer"], n["head"]) for n in named}})
            more = (f" {and_list(others)} {'is a' if len(others) == 1 else 'are'} proven "
                    f"{role} head{'' if len(others) == 1 else 's'} too.") if others else ""
            out.print(
                f"{role.capitalize()} specialist: L{sp['layer']}H{sp['head']}, held-out "
                f"accuracy {sp['heldout_acc']:.3f} ({baseline} baseline "
                f"{sp['baseline_acc']:.3f}){also}.{more}",
                markup=False, highlight=False, soft_wrap=wrap,
            )
        if role == "pronoun" and not any(sp["role"] == "pronoun" for sp in specialists):
            out.print("No head proved itself a pronoun specialist in this run "
                      "(see `fabric heads`).", markup=False, highlight=False, soft_wrap=wrap)


def _shown_roles(run_dir: Path) -> dict[tuple[int, int], str]:
    """The role `fabric heads` shows each head in (a head proven twice is shown once)."""
    from fabric_cli.analysis.roles import head_roles
    from fabric_cli.chronicle import read_events
    from fabric_cli.commands.heads import _thresholds

    try:
        events = read_events(Path(run_dir) / "chronicle.jsonl")
        return {(r["layer"], r["head"]): r["role"] for r in head_roles(events, _thresholds(events))}
    except (FabricError, OSError):
        return {}


def _named_for(role: str, specialists: list[dict], shown: dict) -> list[dict]:
    """The summary's heads for a role: every proven pronoun head (the story's own); for the
    other roles the best proven head that the role map shows in that role, else the best."""
    proven = [sp for sp in specialists
              if sp["role"] == role and sp.get("heldout_acc") is not None
              and sp.get("baseline_acc") is not None]
    if role == "pronoun":
        return proven
    in_map = [sp for sp in proven if shown.get((sp["layer"], sp["head"])) == role]
    pick = max(in_map, key=lambda sp: (sp["heldout_acc"], sp.get("score") or 0), default=None)
    pick = pick or next((sp for sp in proven if sp.get("best")), None)
    return [pick] if pick is not None else []
