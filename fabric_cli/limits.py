"""How big a run may be: fixed upper bounds, and the memory a scenario would need to train,
checked against this machine's before anything is allocated.

The bounds are far above anything fabric's story needs (the default Fabric is 2 layers of
64); they exist so that a typo (`d_model = 100000`, `steps = 1e12`) is one line up front, not
a machine swapping itself to a halt or a run that cannot end.
"""

from __future__ import annotations

import os

from fabric_cli.errors import FabricError

MAX_STEPS = 1_000_000
MAX_SEED = 2**63 - 1
# key -> largest value accepted
SHAPE_LIMITS = {
    "model.n_layers": 64,
    "model.n_heads": 64,
    "model.d_model": 8192,
    "model.d_mlp": 32768,
    "model.n_ctx": 4096,
    "training.steps": MAX_STEPS,
    "training.batch_size": 65536,
    "probes.n_sentences": 10000,
}
GIB = 2**30


def check_bounds(values: dict[str, int], source: str) -> None:
    """`values` maps "model.d_model"-style keys to the scenario's numbers."""
    for key, limit in SHAPE_LIMITS.items():
        value = values.get(key)
        if value is not None and value > limit:
            raise FabricError(f"{source}: {key}: expected at most {limit:,}, got {value:,}")


def training_bytes(*, n_layers: int, d_model: int, d_mlp: int, n_heads: int, n_ctx: int,
                   d_vocab: int, batch_size: int) -> tuple[int, int]:
    """(bytes for the weights and what the optimizer keeps per weight, bytes for one step's
    activations), float32, a deliberately generous estimate: the weights, their gradients,
    Adam's two moments and a temporary copy; and per token and layer the residual stream's
    saved copies, the attention scores and pattern, the MLP's hidden units, plus the logits."""
    C, H, L, T, V = d_model, d_mlp, n_layers, n_ctx, d_vocab
    params = V * C + T * C + L * (4 * C * C + 2 * C * H + 9 * C + 3 * C + H) + C * V + V
    weights = 5 * params * 4
    per_token = L * (16 * C + 4 * n_heads * T + 4 * H) + 4 * V
    activations = 2 * batch_size * T * per_token * 4
    return weights, activations


def available_memory() -> int | None:
    """Bytes this machine can give now (MemAvailable), or its physical memory, or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return _physical_memory()


def memory_text(n: int) -> str:
    """A size as a reader takes it in: '1.5 GiB', '12 MiB', '300 KiB'."""
    for unit, size in (("GiB", GIB), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:,.1f} {unit}" if n < 10 * size else f"{n / size:,.0f} {unit}"
    return f"{max(n, 0) / 1024:,.0f} KiB"


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(source: str, *, available: int | None = None,
                 shrink: str = "model.d_model, model.d_mlp, model.n_layers, model.n_ctx, "
                               "training.batch_size or probes.n_sentences",
                 probe_sentences: int = 0, **shape: int) -> None:
    """Refuse a scenario (or a bench shape) whose training would not fit in this machine's
    memory; `shrink` names what to make smaller, as the user gave it. The probes measure
    `probe_sentences` at once, beside the training (in a process of their own): their
    passes are counted as one more batch of that size."""
    weights, activations = training_bytes(**shape)
    probes = training_bytes(**{**shape, "batch_size": probe_sentences})[1] \
        if probe_sentences else 0
    need = weights + activations + probes
    have = available_memory() if available is None else available
    if have is None or need <= have:
        return
    physical = _physical_memory()
    # a Fabric small beside this machine is refused because something else holds the memory
    busy = physical is not None and need * 10 <= physical
    free = (f"only {memory_text(have)} free right now (of {memory_text(physical)})" if busy
            else f"{memory_text(have)} available")
    remedy = (f"close other programs and try again, or make {shrink} smaller" if busy
              else f"make {shrink} smaller")
    raise FabricError(
        f"{source}: this Fabric would need about {memory_text(need)} of memory to train "
        f"(weights and optimizer {memory_text(weights)}, one batch's activations "
        f"{memory_text(activations)}"
        + (f", the probes' passes {memory_text(probes)}" if probes else "")
        + f") but this machine has {free}; {remedy}")
