"""Open a fabric run in TransformerLens (optional: `pip install "fabric-cli[lens]"`).

    from fabric_cli.lens import load_transformer_lens
    model = load_transformer_lens("runs/tiny")            # a run, or a `fabric export` dir
    logits, cache = model.run_with_cache(tokens)          # tokens: <bos> first, fabric's ids

TransformerLens 4 builds the model with `TransformerBridge.boot_native` from the config under
TransformerLens' own names and loads the weights strictly through `convert_tl_checkpoint`
(fabric's weights use HookedTransformer's names and shapes). This module is the only one
that imports torch or transformer_lens, and only when called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fabric_cli.errors import FabricError


def transformer_lens_settings(path: str | Path) -> dict[str, Any]:
    """The TransformerLens config of a run directory or an export directory."""
    path = Path(path)
    try:
        data = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FabricError(f"{path / 'config.json'}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise FabricError(f"{path / 'config.json'}: not a JSON object")
    if data.get("residual", True) is False:
        raise FabricError(f"{path} was trained without a residual stream; TransformerLens has "
                          "no such model")
    settings = data.get("transformer_lens", data)  # a run keeps it in its own section
    if "d_vocab_out" not in settings:
        raise FabricError(f"{path / 'config.json'}: no TransformerLens settings (written by an "
                          "older fabric); run `fabric export RUN --to transformer-lens DIR`")
    return settings


def load_transformer_lens(path: str | Path, device: str = "cpu"):
    """A TransformerBridge holding the run's weights, loaded strictly."""
    try:
        from safetensors.torch import load_file
        from transformer_lens import TransformerBridge, TransformerBridgeConfig
        from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint
    except ImportError as exc:
        raise FabricError(f"TransformerLens 4 is not installed ({exc.name or exc}); "
                          'pip install "fabric-cli[lens]"') from None
    path = Path(path)
    cfg = TransformerBridgeConfig(**transformer_lens_settings(path))
    model = TransformerBridge.boot_native(cfg, device=device)
    weights = load_file(str(path / "model.safetensors"), device=device)
    model.load_state_dict(convert_tl_checkpoint(weights, cfg), strict=True)
    return model.eval()
