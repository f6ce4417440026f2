"""The pair of runs a `fabric why` lesson needs: trained once, reused when run again.

A kept run is reused only when its chronicle shows it ended (finished, or diverged: a storm
without clipping is the lesson) with exactly the model and training settings the lesson
would train now; anything else is trained again from scratch in its own directory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from fabric_cli.chronicle import plain, read_events
from fabric_cli.errors import FabricError
from fabric_cli.lessons import Lesson
from fabric_cli.training.trainer import Trainer, fit_schedule


@dataclass
class LessonRun:
    label: str  # "with" or "without"
    run_dir: Path
    trainer: Trainer
    reused: bool
    status: str | None = None  # after training (or as kept)
    seconds: float | None = None


def lesson_runs(lesson: Lesson, root: Path) -> list[LessonRun]:
    """The two runs, with and without the component, under root/why-<name>/."""
    out = []
    for label, scenario in (("with", lesson.with_scenario), ("without", lesson.without_scenario)):
        run_dir = Path(root) / f"why-{lesson.name}" / label
        trainer = Trainer(scenario, run_dir)
        kept = kept_run(trainer)
        out.append(LessonRun(label, run_dir, trainer, reused=kept is not None,
                             status=(kept or {}).get("status"),
                             seconds=(kept or {}).get("seconds")))
    return out


def kept_run(trainer: Trainer) -> dict | None:
    """The run_end of a kept run that matches what `trainer` would train, else None."""
    chronicle = trainer.run_dir / "chronicle.jsonl"
    if not chronicle.is_file():
        return None
    try:
        events = read_events(chronicle)
    except FabricError:
        return None
    starts = [e for e in events if e.get("type") == "run_start"]
    ends = [e for e in events if e.get("type") == "run_end"]
    if not starts or not ends or ends[-1].get("status") not in ("finished", "diverged"):
        return None
    training = {**asdict(fit_schedule(trainer.scenario.training, trainer.total_steps)),
                "steps": trainer.total_steps}
    same = (starts[0].get("model") == plain(trainer.cfg.to_dict())
            and starts[0].get("training") == plain(training)
            and starts[0].get("seed") == trainer.seed)
    return ends[-1] if same else None


def train_lesson(runs: list[LessonRun], on_start: Callable[[LessonRun], None] | None = None
                 ) -> None:
    """Train every run that is not reused (from scratch), one after the other."""
    for run in runs:
        if run.reused:
            continue
        if on_start is not None:
            on_start(run)
        run.trainer.prepare(force=True, flag="--runs-dir")  # `fabric why`'s own option
        result = run.trainer.run()
        run.status, run.seconds = result.status, result.seconds
