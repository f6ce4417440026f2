"""The optimizers (AdamW, plain SGD, SGD with momentum), the Engineers' clipping, and their
learning-rate schedule.

AdamW keeps, for every parameter, a running mean of its gradient (m, momentum) and of the
gradient squared (v, RMSprop); both start at zero, so early steps divide by 1 - beta^t
(bias correction). Weight decay shrinks matrices directly (decoupled, Loshchilov & Hutter),
never LayerNorm gains, biases, or (unless asked) the embeddings.

SGD steps against the gradient itself: p -= lr * g. Momentum (heavy ball, PyTorch's form,
no dampening) keeps a velocity buf = momentum * buf + g and steps p -= lr * buf. Both decay
the same matrices as AdamW, decoupled: p -= lr * weight_decay * p, outside g and buf.
All three share one interface: step(params, grads, lr, measure) -> ‖update‖/‖weights‖ per
group or None, t (steps taken), state_arrays() / load_state_arrays(arrays, t); build them by
name with make_optimizer(kind, params, ...).
"""

from __future__ import annotations

import math

import numpy as np

from fabric_cli.errors import FabricError
from fabric_cli.nn.halves import in_halves, in_pieces

Params = dict[str, np.ndarray]
# The step walks the flat buffers in pieces this long (1 MiB of float32 each), every pass
# over one piece before the next, so the piece stays in cache across the ~14 passes instead
# of each pass streaming all of m, v, g and p from memory. On the large preset (~3.4M
# parameters) the optimizer took 22-26 ms a step in one pass, 18 ms in these pieces;
# pieces of 16K-64K gave 19 ms. A buffer smaller than a piece is one pass, as before.
PIECE = 1 << 18

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


class _Optimizer:
    """What the three share: the parameters and the state in one flat buffer each, the decay
    choice per parameter, the step count, and the measure.

    On construction the parameters are copied into one contiguous float buffer and the
    dict's arrays are replaced by views of it (same names, shapes and values), so a step is
    a dozen whole-buffer operations instead of a dozen per tensor: at 12 layers that is 200
    tensors. The optimizer state lives in buffers of the same layout. Element by element the
    arithmetic is exactly the per-tensor formula's. Should a caller put a new array into the
    dict, the next step binds it again (copying its values in)."""

    kind = ""
    STATE = ()  # names of the per-parameter state arrays: "m" -> m.<param>

    def __init__(self, params: Params, lr: float, weight_decay: float,
                 decay_embeddings: bool) -> None:
        self.lr = lr  # the base rate; each step is given its own (the schedule's)
        self.weight_decay = weight_decay
        self.decay = {n: is_decayed(n, decay_embeddings) for n in params}
        self.names = list(params)
        self.shapes = {n: params[n].shape for n in self.names}
        sizes = [params[n].size for n in self.names]
        self.offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.intp)
        dtype = np.result_type(*(params[n] for n in self.names)) if params else np.float32
        total = int(self.offsets[-1])
        self._flat = np.empty(total, dtype=dtype)  # the parameters
        self._grad = np.empty(total, dtype=dtype)  # this step's gradients, gathered
        self._update = np.empty(total, dtype=dtype)
        self._spare = np.empty(total, dtype=dtype)
        self._decay_mask = np.zeros(total, dtype=dtype)  # 1 where weight decay applies
        for n, a, b in self._spans():
            self._decay_mask[a:b] = 1.0 if self.decay[n] else 0.0
        self._views: Params = {}
        self._bind(params)
        self._state_flat = {k: np.zeros(total, dtype=dtype) for k in self.STATE}
        self.state: dict[str, Params] = {k: self._split(f) for k, f in self._state_flat.items()}
        self.t = 0

    def _spans(self):
        for i, n in enumerate(self.names):
            yield n, int(self.offsets[i]), int(self.offsets[i + 1])

    def _split(self, flat: np.ndarray) -> Params:
        return {n: flat[a:b].reshape(self.shapes[n]) for n, a, b in self._spans()}

    def _bind(self, params: Params) -> None:
        """Copy params into the flat buffer and put views of it into the dict."""
        for n, a, b in self._spans():
            self._flat[a:b] = np.asarray(params[n]).reshape(-1)
        self._views = self._split(self._flat)
        for n in self.names:
            params[n] = self._views[n]

    def _direction(self, s: slice, g: np.ndarray, lr: float, out: np.ndarray) -> np.ndarray:
        """The step before weight decay for the span `s` of the flat buffer (g and out are
        already that span), written into `out`; the state is read and kept at `s` too."""
        raise NotImplementedError

    def _begin(self) -> None:
        """Called once per step after t is counted, before any parameter moves."""

    def step(
        self, params: Params, grads: Params, lr: float, measure: bool = False
    ) -> dict[str, float] | None:
        """Update params in place. With `measure`: ‖update‖/‖weights‖ per group."""
        if any(params[n] is not self._views[n] for n in self.names):
            self._bind(params)
        self.t += 1
        self._begin()
        g, p = self._grad, self._flat
        if self.names:
            np.concatenate([grads[n].reshape(-1) for n in self.names], out=g)

        def span(s: slice) -> None:  # one cache-sized piece through every pass at once
            update = self._direction(s, g[s], lr, self._update[s])
            if self.weight_decay:
                decay = np.multiply(p[s], self._decay_mask[s], out=self._spare[s])
                decay *= lr * self.weight_decay
                update += decay  # decoupled: not through the state
            if not measure:
                moved = p[s]
                moved -= update

        def half(h: slice) -> None:  # each core its own pieces (nn/halves.py)
            in_pieces(lambda s: span(slice(h.start + s.start, h.start + s.stop)),
                      h.stop - h.start, PIECE)

        in_halves(half, p.size)
        if not measure:
            return None
        ratios = self._ratios(self._update, p)
        p -= self._update
        return ratios

    def _ratios(self, update: np.ndarray, p: np.ndarray) -> dict[str, float]:
        starts = self.offsets[:-1]
        nonempty = starts < self.offsets[1:]
        sq = np.multiply(update, update, out=self._spare)
        u_sums = np.zeros(len(self.names))
        w_sums = np.zeros(len(self.names))
        if nonempty.any():
            u_sums[nonempty] = np.add.reduceat(sq, starts[nonempty], dtype=np.float64)
            np.multiply(p, p, out=sq)
            w_sums[nonempty] = np.add.reduceat(sq, starts[nonempty], dtype=np.float64)
        sums: dict[str, list[float]] = {}
        for i, name in enumerate(self.names):
            acc = sums.setdefault(param_group(name), [0.0, 0.0])
            acc[0] += float(u_sums[i])
            acc[1] += float(w_sums[i])
        return {group: math.sqrt(u) / math.sqrt(w) if w > 0 else math.inf
                for group, (u, w) in sums.items()}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """<state>.<param> for every parameter (what optimizer.safetensors holds)."""
        return {f"{k}.{n}": a for k in self.STATE for n, a in self.state[k].items()}

    def load_state_arrays(self, arrays: dict[str, np.ndarray], t: int) -> None:
        for kind in self.STATE:
            store = self.state[kind]
            for name in store:
                key = f"{kind}.{name}"
                if key not in arrays or arrays[key].shape != store[name].shape:
                    raise FabricError(
                        f"optimizer state {key} is missing or of the wrong shape: the saved "
                        f"state is not a {self.kind} optimizer's for these parameters"
                    )
                store[name][...] = arrays[key]  # into the flat buffer, never a new array
        self.t = int(t)


class SGD(_Optimizer):
    """Plain stochastic gradient descent: no memory, each step is -lr times the gradient."""

    kind = "sgd"

    def __init__(self, params: Params, *, lr: float, weight_decay: float = 0.0,
                 decay_embeddings: bool = False) -> None:
        super().__init__(params, lr, weight_decay, decay_embeddings)

    def _direction(self, s: slice, g: np.ndarray, lr: float, out: np.ndarray) -> np.ndarray:
        return np.multiply(g, lr, out=out)


class Momentum(_Optimizer):
    """SGD with a velocity: buf = momentum * buf + g, step lr * buf (buf starts at zero)."""

    kind = "momentum"
    STATE = ("m",)

    def __init__(self, params: Params, *, lr: float, momentum: float = 0.9,
                 weight_decay: float = 0.0, decay_embeddings: bool = False) -> None:
        super().__init__(params, lr, weight_decay, decay_embeddings)
        self.momentum = momentum

    def _direction(self, s: slice, g: np.ndarray, lr: float, out: np.ndarray) -> np.ndarray:
        buf = self._state_flat["m"][s]
        buf *= self.momentum
        buf += g
        return np.multiply(buf, lr, out=out)


class AdamW(_Optimizer):
    kind = "adamw"
    STATE = ("m", "v")

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
        super().__init__(params, lr, weight_decay, decay_embeddings)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    @property
    def m(self) -> Params:
        return self.state["m"]

    @property
    def v(self) -> Params:
        return self.state["v"]

    def _begin(self) -> None:
        self._m_correction = 1.0 - self.beta1**self.t  # bias correction of m, in the step
        self._v_correction = 1.0 / math.sqrt(1.0 - self.beta2**self.t)  # of v, as sqrt(v_hat)

    def _direction(self, s: slice, g: np.ndarray, lr: float, out: np.ndarray) -> np.ndarray:
        b1, b2 = self.beta1, self.beta2
        m, v = self._state_flat["m"][s], self._state_flat["v"][s]
        spare = self._spare[s]
        m *= b1  # momentum: running mean of the gradient
        m += np.multiply(g, 1.0 - b1, out=spare)
        v *= b2  # RMSprop: running mean of the squared gradient
        sq = np.multiply(g, g, out=spare)
        sq *= 1.0 - b2
        v += sq
        denom = np.sqrt(v, out=spare)
        denom *= self._v_correction
        denom += self.eps
        update = np.divide(m, denom, out=out)
        update *= lr / self._m_correction
        return update


OPTIMIZERS = {"adamw": AdamW, "sgd": SGD, "momentum": Momentum}


def make_optimizer(
    kind: str,
    params: Params,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    decay_embeddings: bool = False,
) -> _Optimizer:
    """The optimizer named `kind` ("adamw", "sgd", "momentum"); each takes the settings it uses
    (AdamW: betas and eps; momentum: momentum; all: lr, weight decay) and ignores the rest."""
    common = {"lr": lr, "weight_decay": weight_decay, "decay_embeddings": decay_embeddings}
    if kind == "adamw":
        return AdamW(params, beta1=beta1, beta2=beta2, eps=eps, **common)
    if kind == "momentum":
        return Momentum(params, momentum=momentum, **common)
    if kind == "sgd":
        return SGD(params, **common)
    raise ValueError(f"unknown optimizer {kind!r}; choose one of {', '.join(OPTIMIZERS)}")


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
