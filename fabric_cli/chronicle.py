"""The chronicle: what happened during a run, one JSON event per line (docs/chronicle.md).

The trainer writes it, narrators and views read it; nothing else is shared between them, so a
finished run can be told again offline, and the live story is the same code fed the same
events. Stdlib only: numpy values are recognised by their `tolist()`, never imported.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from fabric_cli.errors import FabricError

SCHEMA_VERSION = 1
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
ROLES = ("pronoun", "verb", "noun", "prev", "self", "first")
# gradient_spike compares a step's norm with the median of this many steps before it: a run
# that ends by this step was never watched for spikes (its count of 0 means nothing)
SPIKE_WINDOW = 50

# Fields every event of a type must carry (besides "v", "type", "step"). Extra fields are
# allowed: readers ignore what they do not know.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "run_start": ("scenario", "scenario_path", "description", "seed", "model", "training",
                  "n_params", "vocab", "floor", "story_sentences", "resumed_from",
                  "started_at"),
    "step": ("loss", "lr", "grad_norm", "grad_norm_clipped", "clipped", "grad_flow",
             "grad_embed", "update_ratio", "dropout_rate", "dropout_keep", "layernorm",
             "tokens", "elapsed"),
    "probe": ("train_loss", "val_loss", "floor", "heads", "baseline_acc",
              "focus_under_dropout", "snapshots"),
    "moment": ("kind", "component", "layer", "head", "data"),
    "ablation": ("rows",),
    "interrupted": ("reason", "checkpoint_step"),
    "run_end": ("status", "steps", "seconds", "final_train_loss", "final_val_loss", "floor",
                "specialists", "time_split"),
}

# Fields that hold a number whenever present (True: or null), checked as the chronicle is read.
NUMBER_FIELDS: dict[str, tuple[tuple[str, bool], ...]] = {
    "step": (("loss", False), ("lr", False), ("grad_norm", False),
             ("grad_norm_clipped", False), ("elapsed", False), ("grad_embed", True),
             ("dropout_rate", True), ("dropout_keep", True)),
    "probe": (("train_loss", True), ("val_loss", False)),
    "run_end": (("seconds", False), ("final_train_loss", True), ("final_val_loss", True)),
}

# Who tells each kind of moment, and the numbers its `data` must carry.
MOMENT_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "first_snap": ("head", ("sentence", "pronoun", "pronoun_index", "antecedent",
                            "antecedent_index", "weight", "runner_up", "runner_up_weight")),
    "role_threshold": ("head", ("role", "score", "threshold", "previous_score",
                                "previous_step")),
    "loss_plateau": ("loss", ("start_step", "end_step", "mean_loss", "spread")),
    "loss_drop": ("loss", ("start_step", "end_step", "from_loss", "to_loss",
                           "best_pronoun_score")),
    "vanishing_gradient": ("gradient", ("bottom", "top", "ratio", "threshold")),
    "gradient_spike": ("gradient", ("grad_norm", "median", "factor")),
    "clipping_burst": ("engineers", ("start_step", "end_step", "count", "max_norm", "clip")),
    "near_floor": ("loss", ("val_loss", "floor", "ratio")),
    "dropout_knock": ("dropout", ("clean", "dropped", "rate")),
    "dropout_recovered": ("dropout", ("clean", "dropped", "rate", "knock_step")),
    "diverged": ("engineers", ("loss", "last_good_step", "lr", "grad_norm")),
    "specialist": ("head", ("role", "score", "heldout_acc", "baseline_acc", "ablation",
                            "redundant_with", "group_ablation")),
}
COMPONENTS = ("head", "gradient", "adam", "dropout", "layernorm", "residual", "ffn", "softmax",
              "tokenizer", "loss", "engineers")
HEAD_KINDS = ("first_snap", "role_threshold", "specialist", "dropout_knock", "dropout_recovered")
RUN_STATUSES = ("finished", "interrupted", "diverged")


# -- numbers -------------------------------------------------------------------------------
def round_number(x: float) -> float:
    """A float as the chronicle stores it: 6 significant digits (non-finite kept as is)."""
    x = float(x)
    return float(f"{x:.6g}") if math.isfinite(x) else x


AGAIN = "train its run again from the start, with --force"


class DamagedChronicle(FabricError):
    """A chronicle fabric cannot read as its own: `damage` says what is wrong, the message
    adds what to do (the CLI names the very command that trains that run again)."""

    def __init__(self, damage: str) -> None:
        super().__init__(f"{damage} ({AGAIN})")
        self.damage = damage


class NotANumber(DamagedChronicle, TypeError):
    """A chronicle holds something else where a number belongs: one line for the user (a
    FabricError), and still the TypeError it always was for code that catches that."""


def number(value: Any) -> float:
    """A number read from the chronicle as a float: "nan"/"inf"/"-inf" back to floats."""
    if isinstance(value, str) and value in NON_FINITE:
        return NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NotANumber(f"the chronicle holds {str(value)[:40]!r} where a number belongs; "
                         "it is damaged")
    return float(value)


def is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or (
        isinstance(value, str) and value in NON_FINITE)


def plain(value: Any) -> Any:
    """`value` as plain JSON: numpy scalars and arrays to lists and numbers, floats rounded to
    6 significant digits, NaN and infinities as the strings "nan", "inf", "-inf"."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy array or scalar (bool_, int64, float32, ...)
        return plain(value.tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to the chronicle: {value!r}")


# -- writing -------------------------------------------------------------------------------
class ChronicleWriter:
    """Appends events to `path`, one line each, flushed at once so a crash loses at most the
    line being written. A torn last line left by an earlier crash is cut off on opening."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.repaired_torn_line = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.repaired_torn_line = _cut_torn_tail(self.path)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        except OSError as exc:
            raise FabricError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def emit(self, event: dict) -> dict:
        """Write one event (it must have "type" and an integer "step"); returns it exactly as
        a reader will see it, so live subscribers and later readers get the same numbers."""
        if not isinstance(event.get("type"), str) or not isinstance(event.get("step"), int):
            raise TypeError(f"an event needs a 'type' and an integer 'step': {event!r:.200}")
        record = plain({"v": SCHEMA_VERSION, **event})
        line = json.dumps(record, separators=(",", ":"), allow_nan=False)
        try:
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as exc:
            raise FabricError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        except ValueError:  # write to a closed file
            raise ValueError(f"{self.path}: the chronicle is closed") from None
        return record

    def sync(self) -> None:
        """Make everything written so far durable (called at checkpoints)."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise FabricError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cut_torn_tail(path: Path) -> bool:
    """Truncate `path` after its last newline if it does not end with one (a torn write)."""
    if not path.exists():
        return False
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return False
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return False
        pos = size
        while pos > 0:  # scan backwards for the last complete line
            start = max(0, pos - 65536)
            f.seek(start)
            chunk = f.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                f.truncate(start + nl + 1)
                return True
            pos = start
        f.truncate(0)
        return True


# -- reading -------------------------------------------------------------------------------
class ChronicleEvents(list):
    """The events of a chronicle, in order, with `warnings` (e.g. a skipped torn last line)."""

    def __init__(self, events: Iterable[dict] = (), warnings: Iterable[str] = ()) -> None:
        super().__init__(events)
        self.warnings: list[str] = list(warnings)


def read_events(path: str | os.PathLike) -> ChronicleEvents:
    """Every event of the chronicle at `path`. A torn last line is skipped and reported in
    `.warnings`; any other broken line, or another schema version, is a FabricError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FabricError(f"no chronicle at {path}; run `fabric train` first") from None
    except IsADirectoryError:
        raise FabricError(f"{path} is a directory, not a chronicle") from None
    except OSError as exc:
        raise FabricError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines = data.split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    events = ChronicleEvents()
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        where = f"{path} line {i + 1}"
        try:
            event = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            event = None
        if not isinstance(event, dict):
            if i == last:
                events.warnings.append(
                    f"{where} is incomplete (the run stopped mid-write); skipped it")
                continue
            raise DamagedChronicle(f"{where} is not a JSON event; the chronicle is damaged")
        if "v" not in event:
            raise FabricError(f"{where} has no schema version \"v\"; is this a fabric "
                              "chronicle?")
        if event["v"] != SCHEMA_VERSION:
            raise FabricError(f"{where} is schema version {event['v']!r}, this fabric reads "
                              f"version {SCHEMA_VERSION}; train the run again with this fabric")
        if not isinstance(event.get("type"), str) or not isinstance(event.get("step"), int) \
                or isinstance(event.get("step"), bool) or event["step"] < 0:
            raise DamagedChronicle(f"{where} has no event type or step; the chronicle is "
                                   "damaged")
        for name, may_be_none in NUMBER_FIELDS.get(event["type"], ()):
            value = event.get(name)
            if name in event and not is_number(value) and not (may_be_none and value is None):
                raise DamagedChronicle(f"{where}: {name} is {str(value)[:40]!r}, not a number; "
                                       "the chronicle is damaged")
        events.append(event)
    return events


def truncate_after(path: str | os.PathLike, step: int, count: int | None = None) -> int:
    """Keep only the events with `step` ≤ step, atomically (used on resume, so the resumed
    run's chronicle continues exactly where its checkpoint was taken). With `count` (the
    number of events written when the checkpoint was taken), only the first `count` events
    are kept: events told after a checkpoint at that same step (an ending cut short) go too.
    `run_end` events are dropped whatever their step: a resumed run has not ended. Returns
    the number of events kept."""
    path = Path(path)
    events = read_events(path)
    if count is not None:
        events = events[:count]
    kept = [e for e in events if e["step"] <= step and e["type"] != "run_end"]
    text = "".join(json.dumps(e, separators=(",", ":"), allow_nan=False) + "\n" for e in kept)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".chronicle-", suffix=".tmp", dir=path.parent)
        try:  # mkstemp makes it 0600: keep the chronicle readable by whom it was before
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise FabricError(f"cannot rewrite {path}: {exc.strerror or exc}") from None
    return len(kept)


# -- checking ------------------------------------------------------------------------------
def validate_event(event: dict) -> list[str]:
    """What is wrong with `event` against docs/chronicle.md (empty when it is well formed)."""
    if not isinstance(event, dict):
        return ["an event must be a JSON object"]
    problems = []
    if event.get("v") != SCHEMA_VERSION:
        problems.append(f"v must be {SCHEMA_VERSION}, got {event.get('v')!r}")
    kind = event.get("type")
    step = event.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        problems.append(f"step must be an integer ≥ 0, got {step!r}")
    if kind not in REQUIRED_FIELDS:
        return problems + [f"unknown event type {kind!r}"]
    missing = [f for f in REQUIRED_FIELDS[kind] if f not in event]
    if missing:
        return problems + [f"{kind} lacks {', '.join(missing)}"]
    check = _CHECKS.get(kind)
    if check is not None:
        problems += check(event)
    return problems


def _numbers(event: dict, names: Iterable[str], where: str = "") -> list[str]:
    return [f"{where}{n} must be a number, got {event.get(n)!r}"
            for n in names if not is_number(event.get(n))]


def _check_step(e: dict) -> list[str]:
    problems = _numbers(e, ("loss", "lr", "grad_norm", "grad_norm_clipped", "elapsed"))
    if not isinstance(e["clipped"], bool):
        problems.append("clipped must be true or false")
    for row in e["grad_flow"] or []:
        missing = {"layer", "arriving", "skip", "block", "leaving"} - set(row)
        if missing:
            problems.append(f"grad_flow row lacks {', '.join(sorted(missing))}")
    return problems


def _check_probe(e: dict) -> list[str]:
    problems = _numbers(e, ("train_loss", "val_loss"))
    for row in e["heads"]:
        missing = {"layer", "head", "scores", "pronoun_acc", "pronoun_acc_heldout"} - set(row)
        if missing:
            problems.append(f"heads row lacks {', '.join(sorted(missing))}")
        elif set(ROLES) - set(row["scores"]):
            problems.append(f"head {row['layer']}.{row['head']} scores lack "
                            f"{', '.join(r for r in ROLES if r not in row['scores'])}")
    for shot in e["snapshots"]:
        missing = {"sentence", "tokens", "pronouns", "patterns"} - set(shot)
        if missing:
            problems.append(f"snapshot lacks {', '.join(sorted(missing))}")
    focus = e["focus_under_dropout"]
    if focus is not None and {"layer", "head", "clean", "dropped", "rate"} - set(focus):
        problems.append("focus_under_dropout needs layer, head, clean, dropped, rate")
    return problems


def _check_moment(e: dict) -> list[str]:
    kind = e["kind"]
    if kind not in MOMENT_KINDS:
        return [f"unknown moment kind {kind!r}"]
    component, fields = MOMENT_KINDS[kind]
    problems = []
    if e["component"] != component:
        problems.append(f"{kind} is told by {component}, not {e['component']!r}")
    if not isinstance(e["data"], dict):
        return problems + [f"{kind} data must be an object"]
    missing = [f for f in fields if f not in e["data"]]
    if missing:
        problems.append(f"{kind} data lacks {', '.join(missing)}")
    if kind in HEAD_KINDS and not (isinstance(e["layer"], int) and isinstance(e["head"], int)):
        problems.append(f"{kind} must name its layer and head")
    return problems


def _check_run_end(e: dict) -> list[str]:
    if e["status"] not in RUN_STATUSES:
        return [f"status must be one of {', '.join(RUN_STATUSES)}, got {e['status']!r}"]
    return []


_CHECKS = {"step": _check_step, "probe": _check_probe, "moment": _check_moment,
           "run_end": _check_run_end}


# -- a run, told by its events ----------------------------------------------------------------
class Chronicle:
    """Convenience views over a run's events (as read by `read_events`)."""

    def __init__(self, events: Iterable[dict], warnings: Iterable[str] = ()) -> None:
        self.events: list[dict] = list(events)
        self.warnings: list[str] = list(warnings) or list(getattr(events, "warnings", []))
        by_type: dict[str, list[dict]] = {}
        for event in self.events:
            by_type.setdefault(event["type"], []).append(event)
        self._by_type = by_type

    @classmethod
    def load(cls, path: str | os.PathLike) -> Chronicle:
        events = read_events(path)
        return cls(events, events.warnings)

    def of_type(self, kind: str) -> list[dict]:
        return self._by_type.get(kind, [])

    @property
    def run_start(self) -> dict | None:
        """The first run_start (a resumed run adds one more, with `resumed_from` set)."""
        starts = self.of_type("run_start")
        return starts[0] if starts else None

    @property
    def resumes(self) -> list[dict]:
        return [e for e in self.of_type("run_start") if e.get("resumed_from") is not None]

    @property
    def steps(self) -> list[dict]:
        return self.of_type("step")

    @property
    def probes(self) -> list[dict]:
        return self.of_type("probe")

    @property
    def moments(self) -> list[dict]:
        return self.of_type("moment")

    def moments_of(self, component: str) -> list[dict]:
        return [m for m in self.moments if m["component"] == component]

    def moments_kind(self, kind: str) -> list[dict]:
        return [m for m in self.moments if m["kind"] == kind]

    @property
    def last_probe(self) -> dict | None:
        probes = self.probes
        return probes[-1] if probes else None

    @property
    def ablation(self) -> dict | None:
        rows = self.of_type("ablation")
        return rows[-1] if rows else None

    @property
    def run_end(self) -> dict | None:
        ends = self.of_type("run_end")
        return ends[-1] if ends else None

    @property
    def last_step(self) -> int:
        return max((e["step"] for e in self.events), default=0)

    @property
    def status(self) -> str:
        """finished | interrupted | diverged from run_end; without one, "interrupted" if the
        last event says so, else "incomplete" (still training, or killed without a word)."""
        if self.run_end is not None:
            return self.run_end["status"]
        if self.events and self.events[-1]["type"] == "interrupted":
            return "interrupted"
        if self.moments_kind("diverged"):
            return "diverged"
        return "incomplete"
