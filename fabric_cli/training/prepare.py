"""Setting a Trainer up in its run directory: the marker, the lock, orphans swept, and the
state to train from (fresh, --force, or resumed from the checkpoint and the chronicle).

A run stopped before its first checkpoint is resumed from the start, with the steps and
seed it was started with (kept in the marker); `trainer.started_over` says so.
"""

from __future__ import annotations

from pathlib import Path

from fabric_cli.analysis import rundir, runs
from fabric_cli.chronicle import ChronicleWriter, read_events, truncate_after
from fabric_cli.errors import FabricError
from fabric_cli.training.moments import MomentDetector, MomentThresholds
from fabric_cli.training.probing import Prober

CHRONICLE = rundir.CHRONICLE


def prepare_run(trainer, *, resume: bool = False, force: bool = False,
                flag: str = "--run-dir") -> None:
    """Check the run directory, take its lock, and load or create the state to train from.

    The directory must be new, empty, or a fabric run (its marker); `force` removes only
    what fabric wrote. A run stopped before its first checkpoint resumes from the start
    (`started_over` says so)."""
    directory = trainer.run_dir
    if resume and not rundir.has_marker(directory):
        # a place fabric may not train in says so, rather than offer a command it would refuse
        rundir.check_writable_place(directory, flag)
        raise FabricError(f"nothing to resume in {directory}: no fabric run there; start "
                          f"it with `{train_command(trainer)}`")
    rundir.check_writable_place(directory, flag)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FabricError(f"cannot create the run directory {directory}: "
                          f"{exc.strerror or exc}; choose another {flag}") from None
    trainer.lock = rundir.RunLock(directory, flag)
    try:
        _prepare_locked(trainer, resume, force, flag)
    except BaseException:
        trainer.lock.release()
        raise


def _prepare_locked(trainer, resume: bool, force: bool, flag: str) -> None:
    directory = trainer.run_dir
    chronicle = directory / CHRONICLE
    try:
        rundir.check_links(directory, flag)
        if rundir.has_marker(directory):
            rundir.check_checkpoint_link(directory, flag)  # before anything is removed
            rundir.sweep_orphans(directory)
        else:
            rundir.write_marker(directory, trainer.scenario.name, trainer.total_steps,
                                trainer.seed)
    except OSError as exc:
        raise FabricError(f"cannot write in {directory}: {exc.strerror or exc}; "
                          f"choose another {flag}") from None
    has_checkpoint = rundir.current_step_dir(directory) is not None
    existing = chronicle.exists() or has_checkpoint
    trainer.detector = MomentDetector(MomentThresholds.from_scenario(trainer.scenario),
                                      trainer.cfg.n_layers, trainer.cfg.n_heads)
    trainer.started_over = False
    if resume and has_checkpoint:
        status = _run_status(chronicle)
        if status == "finished":
            beside = directory.with_name(f"{directory.name}-2")
            raise FabricError(
                f"{directory} holds a finished run; nothing to resume. To train it again from "
                f"scratch: `{train_command(trainer, force=True)}`; to keep it and train "
                f"another: `{train_command(trainer, run_dir=beside)}`")
        if not chronicle.exists():
            raise FabricError(
                f"{chronicle}: missing, so the story of this run is lost; train it again "
                f"from scratch with `{train_command(trainer, force=True)}`")
        step, count = trainer._resume_state()
        truncate_after(chronicle, step, count)
        kept = read_events(chronicle)
        trainer.events_written = len(kept)
        trainer.detector.replay(kept)
        # The probe after the resume averages the training losses since the probe before
        # the interruption, as an uninterrupted run would.
        probes = [e for e in kept if e["type"] == "probe"]
        trainer.last_probe = probes[-1] if probes else None
        since = probes[-1]["step"] if probes else -1
        trainer._recent_losses = [e["loss"] for e in kept
                               if e["type"] == "step" and e["step"] > since]
        trainer.resumed_from = step
    else:
        if existing and not force and not resume:
            status = _run_status(chronicle)
            hint = ("use --force to overwrite it, or another --run-dir for a new one"
                    if status == "finished" else
                    "use --resume to continue it, --force to start over, or another "
                    "--run-dir for a new one")
            what = "a finished run" if status == "finished" else "an unfinished run"
            raise FabricError(f"{directory} already holds {what}; {hint}")
        # --force, or --resume of a run stopped before its first checkpoint: from scratch
        trainer.started_over = resume and existing
        if resume:  # the steps and seed it was started with, not the scenario's
            marker = rundir.read_marker(directory)
            for key in ("steps", "seed"):
                value = marker.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    setattr(trainer, "total_steps" if key == "steps" else "seed", value)
        rundir.clear_run(directory)
        try:
            rundir.write_marker(directory, trainer.scenario.name, trainer.total_steps,
                                trainer.seed)
            if trainer.scenario.text:
                runs.atomic_write_bytes(directory / rundir.SCENARIO_COPY,
                                        trainer.scenario.text.encode("utf-8"))
        except OSError as exc:
                raise FabricError(f"cannot write in {directory}: {exc.strerror or exc}; "
                                  f"choose another {flag}") from None
        trainer._fresh_state()
        trainer.events_written = 0
        trainer._recent_losses = []
        trainer.last_probe = None
        trainer.resumed_from = None
    from fabric_cli.training.trainer import fit_schedule  # the loop's module imports this one

    trainer.training = fit_schedule(trainer.scenario.training, trainer.total_steps)
    trainer.prober = Prober(trainer.corpus, trainer.cfg, trainer.training.dropout,
                            trainer.seed, attn_dropout=trainer.training.attn_dropout)
    trainer.writer = ChronicleWriter(chronicle)


def train_command(trainer, *, force: bool = False, run_dir: Path | None = None) -> str:
    """The `fabric train` line that trains what `trainer` was set up to train (its scenario,
    steps and seed, as kept in the run's marker) into `run_dir` (default: its own)."""
    import shlex

    from fabric_cli.scenario import DEFAULT_SCENARIO, load_scenario, scenarios_dir

    sc, directory = trainer.scenario, run_dir or trainer.run_dir
    marker = rundir.read_marker(trainer.run_dir)
    try:  # a bundled scenario, also when read back from the run's own copy of it
        bundled = (scenarios_dir() / f"{sc.name}.toml").is_file() and \
            load_scenario(sc.name).text == sc.text
    except FabricError:
        bundled = False
    words = ["fabric", "train"] + (["--force"] if force else [])
    if not bundled:
        words += ["--scenario", str(sc.path)]
    elif sc.name != DEFAULT_SCENARIO:
        words += ["--scenario", sc.name]
    steps, seed = marker.get("steps", trainer.total_steps), marker.get("seed", trainer.seed)
    if steps != sc.training.steps:
        words += ["--steps", str(steps)]
    if seed != sc.seed:
        words += ["--seed", str(seed)]
    if not bundled or directory != Path("runs") / sc.name:
        words += ["--run-dir", str(directory)]
    return shlex.join(words)


def _run_status(chronicle: Path) -> str | None:
    """'finished', 'diverged', 'interrupted', or None for a run that never ended (a crash)."""
    if not chronicle.exists():
        return None
    status = None
    try:
        for event in read_events(chronicle):
            if event.get("type") == "run_end":
                status = event.get("status")
            elif event.get("type") == "run_start":
                status = None
    except FabricError:
        return None
    return status
