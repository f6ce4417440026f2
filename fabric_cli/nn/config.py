"""The shape of the Fabric, in TransformerLens' field names so other tools can load it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from fabric_cli.errors import FabricError

# TransformerLens' convention: "LN" is LayerNorm with gain and bias, None is no normalisation
# (and no ln parameters at all).
NORMALIZATION_TYPES = ("LN", None)


@dataclass(frozen=True)
class ModelConfig:
    n_layers: int  # blocks stacked on the residual stream
    n_heads: int  # attention heads per block
    d_model: int  # width of the residual stream (C)
    d_head: int  # width of one head (HS); n_heads * d_head == d_model here
    d_mlp: int  # hidden width of the feed-forward network
    n_ctx: int  # longest sequence, <bos> included
    d_vocab: int  # tokens the Tokenizer knows (V)
    act_fn: str = "gelu_new"  # GELU, tanh form (GPT-2)
    normalization_type: str | None = "LN"  # "LN": pre-LayerNorm; None: no LayerNorm anywhere
    init_range: float = 0.02  # std of the normal initialisation
    residual: bool = True  # False: each block's output replaces the stream, no skip path

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "d_model", "d_head", "d_mlp", "n_ctx", "d_vocab"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FabricError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.act_fn != "gelu_new":
            raise FabricError(f"model config: act_fn must be 'gelu_new', got {self.act_fn!r}")
        if self.normalization_type not in NORMALIZATION_TYPES:
            raise FabricError(
                "model config: normalization_type must be 'LN' or null (no LayerNorm), "
                f"got {self.normalization_type!r}"
            )
        if not isinstance(self.residual, bool):
            raise FabricError(f"model config: residual must be true or false, got {self.residual!r}")
        if not self.init_range > 0:
            raise FabricError(f"model config: init_range must be > 0, got {self.init_range!r}")

    @property
    def layernorm(self) -> bool:
        """Whether the Fabric has LayerNorms (ln1, ln2 per block and ln_final)."""
        return self.normalization_type == "LN"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "model config") -> ModelConfig:
        if not isinstance(data, dict):
            raise FabricError(f"{source}: expected a JSON object of model settings")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FabricError(f"{source}: unknown model setting(s) {', '.join(unknown)}")
        required = {"n_layers", "n_heads", "d_model", "d_head", "d_mlp", "n_ctx", "d_vocab"}
        missing = sorted(required - set(data))
        if missing:
            raise FabricError(f"{source}: missing model setting(s) {', '.join(missing)}")
        try:
            return cls(**data)
        except FabricError as exc:
            raise FabricError(f"{source}: {exc.message.removeprefix('model config: ')}") from None
