"""`fabric export RUN --to transformer-lens DIR`: a run's current checkpoint as a directory
TransformerLens loads strictly.

    DIR/config.json        TransformerBridgeConfig(**json.load(...)) and nothing else
    DIR/model.safetensors  the weights under TransformerLens' names (HookedTransformer's
                           state-dict layout, float32); metadata: step, vocab, tokenizer rules
    DIR/vocab.json         the Tokenizer's tokens and rules
    DIR/.fabric-export     marks DIR as fabric's, so exporting again may replace these files

In TransformerLens 4 (docs: README "Open a run in TransformerLens"):

    cfg = TransformerBridgeConfig(**json.load(open("DIR/config.json")))
    model = TransformerBridge.boot_native(cfg)
    model.load_state_dict(convert_tl_checkpoint(load_file("DIR/model.safetensors"), cfg))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fabric_cli.analysis import formats, rundir
from fabric_cli.analysis.runs import atomic_write_bytes, load_checkpoint
from fabric_cli.errors import FabricError

TARGETS = ("transformer-lens",)
EXPORT_MARKER = ".fabric-export"
EXPORT_FILES = ("config.json", "model.safetensors", "vocab.json")


@dataclass
class Exported:
    out_dir: Path
    step: int
    files: list[str]


def _json_bytes(obj: object) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FabricError(f"{out_dir} is a file; give a new or empty directory to export to")
    if not out_dir.is_dir():
        return
    if not (out_dir / EXPORT_MARKER).is_file():
        if not rundir.is_empty(out_dir):
            raise FabricError(f"{out_dir} is not empty and is not a fabric export; give a new "
                              "or empty directory to export to")
        return
    for name in EXPORT_FILES:  # in fabric's own directory, only what fabric put there
        path = out_dir / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise FabricError(f"{path} is not a file fabric wrote, so the export would replace "
                              "it; move it away or give a new directory to export to")


def export_transformer_lens(run_dir: str | Path, out_dir: str | Path) -> Exported:
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    ckpt = load_checkpoint(run_dir)
    if not getattr(ckpt.cfg, "residual", True):
        raise FabricError(f"{run_dir} was trained without a residual stream; TransformerLens "
                          "has no such model, so it cannot be exported")
    vocab = ckpt.extra.get("vocab")
    if not (isinstance(vocab, list) and len(vocab) == ckpt.cfg.d_vocab
            and all(isinstance(t, str) for t in vocab)):
        raise FabricError(f"{run_dir}: the checkpoint records no vocabulary of "
                          f"{ckpt.cfg.d_vocab} tokens; re-run `fabric train`")
    try:
        same = out_dir.resolve() == run_dir.resolve()
    except (OSError, RuntimeError):  # a link that leads back to itself
        raise FabricError(f"{out_dir}: a link that never reaches a directory; give a new or "
                          "empty directory to export to") from None
    if same:
        raise FabricError("export to a directory of its own, not into the run directory")
    _check_out_dir(out_dir)
    name = f"fabric-{ckpt.extra.get('scenario', 'run')}"
    meta = {"format": "pt", "fabric_step": str(ckpt.step), "fabric_run": str(run_dir),
            "vocab": json.dumps(vocab),
            "tokenizer": json.dumps(formats.tokenizer_rules(), sort_keys=True)}
    files = {  # the marker first: an export cut short (a kill, a full disk) is still fabric's
        EXPORT_MARKER: _json_bytes({"fabric_export": 1, "to": "transformer-lens",
                                    "step": ckpt.step}),  # to replace when exported again
        "config.json": _json_bytes(formats.transformer_lens_config(ckpt.cfg, name)),
        "model.safetensors": formats.safetensors_bytes(ckpt.params, meta),
        "vocab.json": _json_bytes(formats.vocab_json(vocab)),
    }
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for file_name, data in files.items():
            atomic_write_bytes(out_dir / file_name, data)
    except OSError as exc:
        raise FabricError(f"cannot write {out_dir}: {exc.strerror or exc}") from None
    return Exported(out_dir, ckpt.step, list(EXPORT_FILES))
