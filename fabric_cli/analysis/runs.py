"""Checkpoints: published as one unit, read back without ever unpickling.

A checkpoint is a step directory (analysis/rundir.py shows the whole run directory):

    step-000300/config.json            ModelConfig.to_dict() + {"fabric": {...},
                                       "transformer_lens": {TransformerLens' own config}}
    step-000300/model.safetensors      weights under TransformerLens names (float32); metadata:
                                       step, format, vocab and tokenizer rules
    step-000300/optimizer.safetensors  the optimizer's state ("m.<param>", "v.<param>")
    step-000300/trainer_state.json     step, optimizer_t, rng_states, extra
    step-000300/vocab.json             the Tokenizer's tokens and its rules

It is staged in a hidden directory, renamed to its step name, and published by switching the
`checkpoint` link with one atomic rename; only then is the previous step directory removed.
A kill at any point leaves the previous checkpoint or the new one whole, never a mix; what a
killed writer left half-done is swept by the next writer (rundir.sweep_orphans). Both
safetensors files carry the step in their metadata, so a set of files from different steps is
still refused rather than silently mixed. The safetensors bytes are written here, with sorted
keys, so two identical runs give identical files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as safetensors_load

from fabric_cli.analysis import rundir
from fabric_cli.analysis.formats import (
    CHECKPOINT_FORMAT,
    config_json,
    safetensors_bytes,
    safetensors_metadata,
    tokenizer_rules,
    vocab_json,
)
from fabric_cli.analysis.rundir import CHECKPOINT, LINKED, describe_os_error
from fabric_cli.errors import FabricError
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Params, param_shapes

CONFIG = "config.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
TRAINER_STATE = "trainer_state.json"
VOCAB = "vocab.json"
FORMAT = CHECKPOINT_FORMAT
RETRAIN = "re-run `fabric train`"
_BIT_GENERATORS = {"PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"}
CRASH_AT = "FABRIC_CRASH_AT"  # tests: "point" or "point:n" kills fabric -9 at that point


@dataclass
class Checkpoint:
    cfg: ModelConfig
    params: Params
    step: int
    rng_states: dict[str, dict]
    extra: dict = field(default_factory=dict)
    optimizer_arrays: dict[str, np.ndarray] | None = None
    optimizer_t: int = 0


# -- a kill at a named point, for the kill tests ------------------------------------------------

_crash_counts: dict[str, int] = {}


def crash_point(name: str) -> None:
    """With FABRIC_CRASH_AT=name[:n] set, the n-th time (default 1st) this point is reached
    the process kills itself with SIGKILL, as `kill -9` or the OOM killer would."""
    wanted = os.environ.get(CRASH_AT)
    if not wanted:
        return
    point, _, count = wanted.partition(":")
    if point != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


# -- writing -----------------------------------------------------------------------------


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _stage(path: Path, data: bytes) -> Path:
    """Write data to a temp file beside path and fsync it; the caller os.replace()s it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        _write_file(tmp, data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse directory fsync; the rename is still atomic
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one."""
    path = Path(path)
    os.replace(_stage(path, data), path)
    _fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode())


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, allow_nan=False, sort_keys=True) + "\n").encode()


def save_checkpoint(
    run_dir: str | os.PathLike,
    cfg: ModelConfig,
    params: Params,
    optimizer: Any | None,
    *,
    step: int,
    rng_states: dict[str, dict],
    extra: dict | None = None,
) -> None:
    """Publish a checkpoint as one unit (see the module's docstring). A write that fails
    (a full disk, a read-only mount) is one FabricError; the previous checkpoint is kept."""
    run_dir = Path(run_dir)
    extra = extra or {}
    vocab = extra.get("vocab")
    meta = {"step": str(step), "format": str(FORMAT)}
    if isinstance(vocab, list):
        meta["vocab"] = json.dumps(vocab)
        meta["tokenizer"] = json.dumps(tokenizer_rules(), sort_keys=True)
    files = {
        CONFIG: _json_bytes(config_json(cfg, f"fabric-{extra.get('scenario', 'run')}")),
        MODEL: safetensors_bytes(params, meta),
        TRAINER_STATE: _json_bytes({"step": step,
                                    "optimizer_t": optimizer.t if optimizer else 0,
                                    "rng_states": rng_states, "extra": extra}),
    }
    if optimizer is not None:
        files[OPTIMIZER] = safetensors_bytes(optimizer.state_arrays(), meta)
    if isinstance(vocab, list):
        files[VOCAB] = _json_bytes(vocab_json(vocab))
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        _publish(run_dir, step, files)
    except OSError as exc:  # the previous checkpoint is still whole (the caller says so)
        raise FabricError(f"cannot save the checkpoint of step {rundir.step_text(step)} in "
                          f"{run_dir}: {describe_os_error(exc)}") from None


def _publish(run_dir: Path, step: int, files: dict[str, bytes]) -> None:
    pid = os.getpid()
    name = f"step-{step:06d}"
    n = 0
    while (run_dir / name).exists() or (run_dir / name).is_symlink():
        n += 1  # the same step saved again (an ending after the last probe): a fresh name
        name = f"step-{step:06d}.{n}"
    staging = run_dir / f".{name}.tmp-{pid}"
    staging.mkdir()
    try:
        for file_name, data in sorted(files.items()):
            _write_file(staging / file_name, data)
            crash_point("checkpoint-file")
        _fsync_dir(staging)
    except OSError:  # a full disk: give back what the half-written files took
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.rename(staging, run_dir / name)
    crash_point("checkpoint-renamed")
    previous = rundir.current_step_dir(run_dir)
    pointer = run_dir / f".{CHECKPOINT}.tmp-{pid}"
    pointer.unlink(missing_ok=True)
    os.symlink(name, pointer)
    os.replace(pointer, run_dir / CHECKPOINT)  # the one switch: now the new step is current
    _fsync_dir(run_dir)
    crash_point("checkpoint-switched")
    for link_name in LINKED:
        link = run_dir / link_name
        if not link.is_symlink() and not link.exists():  # never over a file not ours
            tmp = run_dir / f".{link_name}.tmp-{pid}"
            tmp.unlink(missing_ok=True)
            os.symlink(f"{CHECKPOINT}/{link_name}", tmp)
            os.replace(tmp, link)  # only ever fabric's own name in a marked directory
    crash_point("checkpoint-linked")
    if previous is not None and previous != name:
        rundir._remove_step_dir(run_dir / previous)
    crash_point("checkpoint-swept")


# -- reading -----------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FabricError(f"{path}: missing; {RETRAIN}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise FabricError(f"{path}: cannot be read ({exc.strerror}); check its permissions")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FabricError(f"{path}: truncated or not valid JSON; {RETRAIN}") from None
    except RecursionError:
        raise FabricError(f"{path}: nested too deeply to be fabric's; {RETRAIN}") from None


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    data = _read_bytes(path)
    try:
        arrays = safetensors_load(data)
        metadata = safetensors_metadata(data)
    except Exception:  # noqa: BLE001 - the library's errors vary; all mean a broken file
        raise FabricError(f"{path}: truncated or not a safetensors file; {RETRAIN}") from None
    return arrays, metadata


def _check_arrays(
    path: Path, arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]
) -> None:
    missing = [n for n in shapes if n not in arrays]
    unexpected = [n for n in arrays if n not in shapes]
    for problem, names in (("missing", missing), ("unexpected", unexpected)):
        if names:
            more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
            raise FabricError(
                f"{path}: {problem} tensor {names[0]}{more}; it does not match config.json, "
                f"{RETRAIN}"
            )
    for name, shape in shapes.items():
        a = arrays[name]
        if tuple(a.shape) != tuple(shape):
            raise FabricError(
                f"{path}: {name} has shape {list(a.shape)} but config.json implies "
                f"{list(shape)}; {RETRAIN}"
            )
        if a.dtype != np.float32:
            raise FabricError(f"{path}: {name} is {a.dtype}; fabric writes and reads float32 "
                              f"weights only; {RETRAIN}")
        if not np.isfinite(a).all():
            raise FabricError(f"{path}: {name} contains NaN or infinite values; {RETRAIN}")


def _check_step(path: Path, metadata: dict[str, str], step: int) -> None:
    if metadata.get("step") != str(step):
        raise FabricError(
            f"{path}: written at step {rundir.step_text(metadata.get('step', '?'))} but "
            f"{TRAINER_STATE} says step {rundir.step_text(step)} (a save was cut short); {RETRAIN}"
        )


def _load_config(path: Path) -> ModelConfig:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise FabricError(f"{path}: expected a JSON object of model settings; {RETRAIN}")
    data = dict(data)
    data.pop("fabric", None)
    data.pop("transformer_lens", None)  # derived from the fields above (transformer_lens_config)
    return ModelConfig.from_dict(data, source=str(path))


def _load_trainer_state(path: Path) -> dict:
    state = _read_json(path)
    if not isinstance(state, dict):
        raise FabricError(f"{path}: expected a JSON object; {RETRAIN}")
    for key, kind in (("step", int), ("optimizer_t", int), ("rng_states", dict), ("extra", dict)):
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise FabricError(f"{path}: '{key}' is missing or not a {kind.__name__}; {RETRAIN}")
    if state["step"] < 0 or state["optimizer_t"] < 0:
        raise FabricError(f"{path}: step counts must not be negative; {RETRAIN}")
    extra = state["extra"]
    for key, kinds in (("seed", (int,)), ("total_steps", (int,)), ("events", (int,)),
                       ("elapsed", (int, float)), ("scenario", (str,))):
        if key in extra and (not isinstance(extra[key], kinds) or isinstance(extra[key], bool)
                             or (key != "scenario" and extra[key] < 0)):
            raise FabricError(f"{path}: extra.{key} is {extra[key]!r}, not a "
                              f"{'non-negative number' if key != 'scenario' else 'name'}; "
                              f"{RETRAIN}")
    return state


def checkpoint_dir(run_dir: Path) -> Path:
    """Where the current checkpoint's files are: the step directory `checkpoint` points to,
    or the run directory itself for a run written before checkpoints were step directories."""
    step_dir = rundir.current_step_dir(run_dir)
    if step_dir is not None:
        return run_dir / step_dir
    pointer = run_dir / CHECKPOINT
    if pointer.is_dir() and not pointer.is_symlink() and (pointer / TRAINER_STATE).is_file():
        return pointer  # a copy that turned the link into the directory (zip, copytree)
    if (run_dir / TRAINER_STATE).is_file() and not (run_dir / TRAINER_STATE).is_symlink():
        return run_dir  # the first layout: four files at the top
    if (run_dir / CHECKPOINT).is_symlink():
        raise FabricError(f"{run_dir / CHECKPOINT}: does not point to a step directory; "
                          f"{RETRAIN}")
    hint = (f"it stopped before its first checkpoint: `fabric train --resume --run-dir "
            f"{run_dir}` starts it again" if rundir.has_marker(run_dir) else RETRAIN)
    writer = rundir.writer_pid(run_dir)
    if writer is not None:  # not stopped: starting, its first checkpoint still to come
        hint = f"it is training now (process {writer}); try again in a moment"
    raise FabricError(f"{run_dir}: no checkpoint saved yet; {hint}")


def load_checkpoint(run_dir: str | os.PathLike, *, with_optimizer: bool = False) -> Checkpoint:
    """Read a run directory back; every problem is a FabricError naming the file. A reader
    beside a live run may see the checkpoint switched while it reads: it reads again."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FabricError(f"{run_dir}: no such run directory; run `fabric train` first")
    for attempt in range(3):
        base = checkpoint_dir(run_dir)
        try:
            return _load_from(base, with_optimizer)
        except FabricError:
            if attempt == 2 or checkpoint_dir(run_dir) == base:
                raise  # not a switch under our feet: the files really are broken
    raise AssertionError("unreachable")


def _load_from(base: Path, with_optimizer: bool) -> Checkpoint:
    cfg = _load_config(base / CONFIG)
    state = _load_trainer_state(base / TRAINER_STATE)
    shapes = param_shapes(cfg)
    model_path = base / MODEL
    arrays, metadata = _read_safetensors(model_path)
    _check_arrays(model_path, arrays, shapes)
    _check_step(model_path, metadata, state["step"])
    params = {n: arrays[n] for n in shapes}
    checkpoint = Checkpoint(cfg, params, state["step"], state["rng_states"], state["extra"],
                            None, state["optimizer_t"])
    if with_optimizer:
        opt_path = base / OPTIMIZER
        opt_arrays, opt_meta = _read_safetensors(opt_path)
        # AdamW keeps m and v, momentum m, SGD nothing: the optimizer checks it has its own
        kinds = {key.split(".", 1)[0] for key in opt_arrays} & {"m", "v"}
        opt_shapes = {f"{kind}.{n}": s for kind in sorted(kinds) for n, s in shapes.items()}
        _check_arrays(opt_path, opt_arrays, opt_shapes)
        _check_step(opt_path, opt_meta, state["step"])
        checkpoint.optimizer_arrays = {n: opt_arrays[n] for n in opt_shapes}
    return checkpoint


# -- random generators, for exact resume -------------------------------------------------


def rng_state(gen: np.random.Generator) -> dict:
    """The generator's full state as plain JSON-able values."""
    return gen.bit_generator.state


def rng_from_state(state: dict) -> np.random.Generator:
    """A generator that continues exactly where the saved one stopped."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise FabricError(f"{TRAINER_STATE}: unknown random generator state; {RETRAIN}")
    bit_generator = getattr(np.random, name)()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError):
        raise FabricError(f"{TRAINER_STATE}: damaged random generator state; {RETRAIN}") from None
    return np.random.Generator(bit_generator)



def latest_run_dir(root: str | os.PathLike = Path("runs")) -> Path:
    """The newest run under `root`: the directory whose chronicle.jsonl or model.safetensors
    was written last."""
    root = Path(root)
    newest: tuple[float, Path] | None = None
    for pattern in ("*/chronicle.jsonl", f"*/{MODEL}"):
        for path in root.glob(pattern):
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, path.parent)
    if newest is None:
        raise FabricError(f"no runs under {root}/; train one with `fabric train` "
                          "(or point to one with --run DIR)")
    return newest[1]
