"""The bytes fabric writes for other tools to read: safetensors with sorted keys, the model's
settings under TransformerLens' own names, and the Tokenizer's vocabulary and rules.

Nothing here needs TransformerLens or torch; `fabric_cli/lens.py` (optional) is the loader
on the other side.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from fabric_cli.nn.config import ModelConfig

CHECKPOINT_FORMAT = 2
_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64", np.dtype(np.float16): "F16",
           np.dtype(np.int64): "I64", np.dtype(np.int32): "I32"}


def safetensors_bytes(arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The safetensors file of `arrays`, byte for byte the same for the same input: tensors in
    sorted order, header keys sorted (the library's own writer orders the metadata at random,
    so two identical runs gave files with different hashes)."""
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the format asks
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` of a safetensors file's bytes ({} if none)."""
    (header_len,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + header_len]).get("__metadata__") or {}


def tokenizer_rules() -> dict[str, Any]:
    """How text becomes ids, so a tokenizer can be rebuilt wherever the weights go."""
    from fabric_cli.language.tokenizer import _TOKEN, SPECIALS

    return {"level": "word", "case": "casefold", "pattern": _TOKEN.pattern,
            "pattern_flags": "IGNORECASE", "specials": list(SPECIALS), "prepend": SPECIALS[1],
            "pad": SPECIALS[0], "unknown": SPECIALS[2],
            "ids": "the specials 0, 1, 2, then every other token in sorted order"}


def vocab_json(vocab: list[str]) -> dict[str, Any]:
    """vocab.json: the Tokenizer's own format (format, version, tokens) and its rules."""
    from fabric_cli.language.tokenizer import Tokenizer

    return {**Tokenizer(vocab).to_dict(), "rules": tokenizer_rules()}


def transformer_lens_config(cfg: ModelConfig, name: str = "fabric") -> dict[str, Any]:
    """The model's settings under TransformerLens' own names, one to one: what
    `TransformerBridgeConfig(**it)` (TransformerLens 4) takes. fabric's conventions are
    spelled out even where they are TransformerLens' defaults (eps, causal attention, learned
    positions, scores scaled by 1/sqrt(d_head), untied unembedding of d_vocab outputs)."""
    return {
        "model_name": name, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
        "d_model": cfg.d_model, "d_head": cfg.d_head, "d_mlp": cfg.d_mlp, "n_ctx": cfg.n_ctx,
        "d_vocab": cfg.d_vocab, "d_vocab_out": cfg.d_vocab, "act_fn": cfg.act_fn,
        "normalization_type": getattr(cfg, "normalization_type", "LN"), "eps": 1e-5,
        "attention_dir": "causal", "attn_only": False, "positional_embedding_type": "standard",
        "use_attn_scale": True, "initializer_range": cfg.init_range, "final_rms": False,
        "gated_mlp": False, "parallel_attn_mlp": False, "default_prepend_bos": True,
    }


def config_json(cfg: ModelConfig, name: str = "fabric") -> dict[str, Any]:
    """A checkpoint's config.json: fabric's ModelConfig fields, and the same model under
    TransformerLens' names in its own section (which fabric's loader ignores)."""
    return {**cfg.to_dict(), "fabric": {"format": CHECKPOINT_FORMAT},
            "transformer_lens": transformer_lens_config(cfg, name)}
