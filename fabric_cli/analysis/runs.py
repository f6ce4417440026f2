"""The run directory: checkpoints written atomically, read back without ever unpickling.

    runs/<name>/config.json            ModelConfig.to_dict() + {"fabric": {"format": 1}}
    runs/<name>/model.safetensors      weights under TransformerLens names (float32)
    runs/<name>/optimizer.safetensors  AdamW's "m.<param>" and "v.<param>"
    runs/<name>/trainer_state.json     step, optimizer_t, rng_states, extra
Both safetensors files carry the step in their metadata; a set of files from different steps
(a save cut short) is refused rather than silently mixed.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as safetensors_load
from safetensors.numpy import save as safetensors_save

from fabric_cli.errors import FabricError
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.model import Params, param_shapes
from fabric_cli.nn.optim import AdamW

CONFIG = "config.json"
MODEL = "model.safetensors"
OPTIMIZER = "optimizer.safetensors"
TRAINER_STATE = "trainer_state.json"
FORMAT = 1
RETRAIN = "re-run `fabric train`"
_BIT_GENERATORS = {"PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937"}


@dataclass
class Checkpoint:
    cfg: ModelConfig
    params: Params
    step: int
    rng_states: dict[str, dict]
    extra: dict = field(default_factory=dict)
    optimizer_arrays: dict[str, np.ndarray] | None = None
    optimizer_t: int = 0


# -- writing -----------------------------------------------------------------------------


def _stage(path: Path, data: bytes) -> Path:
    """Write data to a temp file beside path and fsync it; the caller os.replace()s it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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


def save_checkpoint(
    run_dir: str | os.PathLike,
    cfg: ModelConfig,
    params: Params,
    optimizer: AdamW | None,
    *,
    step: int,
    rng_states: dict[str, dict],
    extra: dict | None = None,
) -> None:
    """Write the four files: all staged first, then renamed in place, trainer_state last."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = {"step": str(step), "format": str(FORMAT)}
    files = [
        (CONFIG, (json.dumps({**cfg.to_dict(), "fabric": {"format": FORMAT}}, indent=1) + "\n")
         .encode()),
        (MODEL, safetensors_save({n: np.ascontiguousarray(p) for n, p in params.items()}, meta)),
    ]
    if optimizer is not None:
        arrays = {n: np.ascontiguousarray(a) for n, a in optimizer.state_arrays().items()}
        files.append((OPTIMIZER, safetensors_save(arrays, meta)))
    state = {"step": step, "optimizer_t": optimizer.t if optimizer else 0,
             "rng_states": rng_states, "extra": extra or {}}
    files.append((TRAINER_STATE, (json.dumps(state, indent=1, allow_nan=False) + "\n").encode()))
    staged = []
    try:
        for name, data in files:
            staged.append((_stage(run_dir / name, data), run_dir / name))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, final in staged:
        os.replace(tmp, final)
    if optimizer is None:
        (run_dir / OPTIMIZER).unlink(missing_ok=True)  # a stale one would not match this step
    _fsync_dir(run_dir)


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


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    data = _read_bytes(path)
    try:
        arrays = safetensors_load(data)
        (header_len,) = struct.unpack("<Q", data[:8])
        metadata = json.loads(data[8:8 + header_len]).get("__metadata__") or {}
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
        if not np.issubdtype(a.dtype, np.floating):
            raise FabricError(f"{path}: {name} is {a.dtype}, not floating point; {RETRAIN}")
        if not np.isfinite(a).all():
            raise FabricError(f"{path}: {name} contains NaN or infinite values; {RETRAIN}")


def _check_step(path: Path, metadata: dict[str, str], step: int) -> None:
    if metadata.get("step") != str(step):
        raise FabricError(
            f"{path}: written at step {metadata.get('step', '?')} but {TRAINER_STATE} says "
            f"step {step} (a save was cut short); {RETRAIN}"
        )


def _load_config(path: Path) -> ModelConfig:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise FabricError(f"{path}: expected a JSON object of model settings; {RETRAIN}")
    data = dict(data)
    data.pop("fabric", None)
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
    return state


def load_checkpoint(run_dir: str | os.PathLike, *, with_optimizer: bool = False) -> Checkpoint:
    """Read a run directory back; every problem is a FabricError naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FabricError(f"{run_dir}: no such run directory; run `fabric train` first")
    cfg = _load_config(run_dir / CONFIG)
    state = _load_trainer_state(run_dir / TRAINER_STATE)
    shapes = param_shapes(cfg)
    model_path = run_dir / MODEL
    arrays, metadata = _read_safetensors(model_path)
    _check_arrays(model_path, arrays, shapes)
    _check_step(model_path, metadata, state["step"])
    params = {n: arrays[n].astype(np.float32, copy=False) for n in shapes}
    checkpoint = Checkpoint(cfg, params, state["step"], state["rng_states"], state["extra"],
                            None, state["optimizer_t"])
    if with_optimizer:
        opt_path = run_dir / OPTIMIZER
        opt_arrays, opt_meta = _read_safetensors(opt_path)
        # AdamW keeps m and v, momentum m, SGD nothing: the optimizer checks it has its own
        kinds = {key.split(".", 1)[0] for key in opt_arrays} & {"m", "v"}
        opt_shapes = {f"{kind}.{n}": s for kind in sorted(kinds) for n, s in shapes.items()}
        _check_arrays(opt_path, opt_arrays, opt_shapes)
        _check_step(opt_path, opt_meta, state["step"])
        checkpoint.optimizer_arrays = {n: opt_arrays[n].astype(np.float32, copy=False)
                                       for n in opt_shapes}
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



RUN_FILES = (CONFIG, MODEL, OPTIMIZER, TRAINER_STATE, "chronicle.jsonl", "vocab.json")


def clear_run(run_dir: str | os.PathLike) -> None:
    """Remove the files a run writes (and only those) so `--force` starts from nothing."""
    directory = Path(run_dir)
    for name in RUN_FILES:
        (directory / name).unlink(missing_ok=True)


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
