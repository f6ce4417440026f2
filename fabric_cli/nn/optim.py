"""Adam (with decoupled weight decay), the Engineers' clipping, and their learning-rate schedule.

AdamW keeps, for every parameter, a running mean of its gradient (m, momentum) and of the
gradient squared (v, RMSprop); both start at zero, so early steps divide by 1 - beta^t
(bias correction). Weight decay shrinks matrices directly (decoupled, Loshchilov & Hutter),
never LayerNorm gains, biases, or (unless asked) the embeddings.
"""

from __future__ import annotations

import math

import numpy as np

Params = dict[str, np.ndarray]

# The matrices weight decay applies to, by their last name component.
DECAYED = {"W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_U"}
EMBEDDINGS = {"W_E", "W_pos"}


def param_group(name: str) -> str:
    """'blocks.1.attn.W_Q' -> 'blocks.1'; 'embed.W_E' -> 'embed'; 'unembed.b_U' -> 'unembed'."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "blocks" else parts[0]


def is_decayed(name: str, decay_embeddings: bool = False) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return leaf in DECAYED or (decay_embeddings and leaf in EMBEDDINGS)


class AdamW:
    def __init__(
        self,
        params: Params,
        *,
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decay_embeddings: bool = False,
    ) -> None:
        self.lr = lr  # the base rate; each step is given its own (the schedule's)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.weight_decay = weight_decay
        self.decay = {n: is_decayed(n, decay_embeddings) for n in params}
        self.m = {n: np.zeros_like(p) for n, p in params.items()}
        self.v = {n: np.zeros_like(p) for n, p in params.items()}
        self.t = 0

    def step(
        self, params: Params, grads: Params, lr: float, measure: bool = False
    ) -> dict[str, float] | None:
        """Update params in place. With `measure`: ‖update‖/‖weights‖ per group."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step_size = lr / (1.0 - b1**self.t)  # bias correction of m folded into the step
        v_correction = 1.0 / math.sqrt(1.0 - b2**self.t)  # and of v, as sqrt(v_hat)
        sums: dict[str, list[float]] = {}
        for name, p in params.items():
            g, m, v = grads[name], self.m[name], self.v[name]
            m *= b1  # momentum: running mean of the gradient
            m += (1.0 - b1) * g
            v *= b2  # RMSprop: running mean of the squared gradient
            v += (1.0 - b2) * (g * g)
            denom = np.sqrt(v)
            denom *= v_correction
            denom += self.eps
            update = m / denom
            update *= step_size
            if self.decay[name] and self.weight_decay:
                update += (lr * self.weight_decay) * p  # decoupled: not through m and v
            if measure:
                acc = sums.setdefault(param_group(name), [0.0, 0.0])
                acc[0] += float(np.vdot(update, update))
                acc[1] += float(np.vdot(p, p))
            p -= update
        if not measure:
            return None
        return {group: math.sqrt(u) / math.sqrt(w) if w > 0 else math.inf
                for group, (u, w) in sums.items()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """m.<param>, v.<param> for every parameter (what optimizer.safetensors holds)."""
        arrays = {f"m.{n}": a for n, a in self.m.items()}
        arrays.update({f"v.{n}": a for n, a in self.v.items()})
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray], t: int) -> None:
        for name in self.m:
            for kind, store in (("m", self.m), ("v", self.v)):
                key = f"{kind}.{name}"
                if key not in arrays or arrays[key].shape != store[name].shape:
                    raise ValueError(f"optimizer state {key} missing or of the wrong shape")
                store[name] = np.array(arrays[key], dtype=store[name].dtype)
        self.t = int(t)


def global_grad_norm(grads: Params) -> float:
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_grad_norm(grads: Params, max_norm: float | None) -> tuple[float, float, bool]:
    """Scale all gradients in place so their global norm is at most max_norm.

    Returns (norm before, norm after, whether it clipped). max_norm None or <= 0: never clips.
    """
    before = global_grad_norm(grads)
    if max_norm is None or max_norm <= 0 or not before > max_norm:
        return before, before, False
    scale = max_norm / (before + 1e-6)
    for g in grads.values():
        g *= scale
    return before, before * scale, True


def lr_at(
    step: int, *, base_lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> float:
    """Learning rate for 0-based `step`: linear warmup to base_lr over warmup_steps, then
    cosine decay to min_lr_ratio * base_lr at total_steps (and flat after)."""
    min_lr = base_lr * min_lr_ratio
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    progress = min(max((step - warmup_steps) / span, 0.0), 1.0)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
