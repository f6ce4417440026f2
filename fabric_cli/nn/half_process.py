"""The batch's upper half in a process of its own: a training step in halves
(nn/batch_halves.py) without Python's GIL between the two.

Why: two threads of one process take turns at the GIL between NumPy calls, hundreds of times
a step. On the default bench shape (2 layers, d_model 64, 32 x 24 tokens) the two halves
side by side in threads took 4.9 ms forward and 4.9 ms backward, where each half alone, in
two processes at once, took 2.8 and 3.4 ms. Twelve layers: 24.0 + 24.1 ms in threads,
17.7 + 20.9 ms in processes. (The large preset gains nothing: its halves are products, which
never held the GIL.)

How: the upper half's forward and backward run in a child process while this one runs the
lower half's. One anonymous memory file (os.memfd_create, Linux), mapped by both, holds
the weights (copied in before each forward), the upper half's tokens and targets, its
logits and token losses, and its gradients. Messages (nn/messages.py) carry the rest: the
run's generator state before the step's masks (the child finds where the upper half's rows
begin, `plan_masks`, while this process does the same, and draws them itself, `draw_half`),
the rates, LayerNorm statistics, units kept and gradient-flow rows.
Nothing is pickled.

What stays the same: the child runs the same `forward` and `backward` on the same rows,
masks and weights, with one BLAS thread, as the helper thread did, and its gradients are
added to the lower half's as before: a step is bit for bit the threads' step
(tests/test_half_process.py). Whenever the child cannot answer (no memfd, it did not start,
it died, it answered an error) it is closed and the upper half is computed here from the
same inputs: the same numbers, only slower.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import math
import mmap
import os
import select
import subprocess
import sys
import time
from typing import Any, NamedTuple

import numpy as np

from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.messages import (
    encode,
    error_answer,
    protocol_pipes,
    read_message,
    start_child,
    stop_process,
    unflatten,
    write_message,
)

START_SECONDS = 20.0  # how long the child may take to import and answer "ready"
# Waiting, each side first asks the pipe again and again for this long before it sleeps. A
# process asleep on a pipe took ~0.1-0.17 ms to wake on this 2-core virtual machine, four
# times a step: the default step's exchanges cost 0.5 ms of its 7.3. The parent waits for a
# half about as long as its own (a fraction of a millisecond); the child also bridges the
# optimizer's step and the next step's set-up.
PARENT_SPIN = 0.002
CHILD_SPIN = 0.005


def _soon_readable(fd: int, seconds: float) -> None:
    """Return as soon as `fd` has something to read, or after `seconds` of asking."""
    deadline = time.perf_counter() + seconds
    while not select.select([fd], [], [], 0)[0] and time.perf_counter() < deadline:
        pass


class Layout(NamedTuple):
    """Where each array lies in the shared memory: (name, offset in bytes, dtype, count)."""

    parts: list[tuple[str, int, str, int]]
    size: int

    @staticmethod
    def of(n_params: int, dtype: str, rows: int, cols: int, vocab: int) -> Layout:
        parts, offset = [], 0
        for name, kind, count in (("params", dtype, n_params), ("grads", dtype, n_params),
                                  ("tokens", "<i8", rows * cols),
                                  ("targets", "<i8", rows * cols),
                                  ("logits", dtype, rows * cols * vocab),
                                  ("losses", dtype, rows * cols)):
            parts.append((name, offset, kind, count))
            offset += -(-count * np.dtype(kind).itemsize // 64) * 64  # each on its own lines
        return Layout(parts, max(offset, 64))

    def views(self, buffer) -> dict[str, np.ndarray]:
        return {name: np.frombuffer(buffer, dtype=kind, count=count, offset=offset)
                for name, offset, kind, count in self.parts}


class UpperElsewhere(NamedTuple):
    """A half's cache when its forward ran in the child: which exchange, and how to compute
    the same half here if the child fails before its backward."""

    process: OtherHalf
    exchange: int
    recompute: Any  # () -> ForwardResult with its own cache


class OtherHalf:
    """The parent's handle on the child. `forward` and `backward` each send a request and
    `*_answer` waits for it; any failure closes the child and answers None."""

    def __init__(self, cfg: ModelConfig, shapes: dict[str, tuple[int, ...]], dtype: np.dtype,
                 rows: int, cols: int) -> None:
        self.key = (cfg, tuple(shapes.items()), np.dtype(dtype).str, rows, cols)
        self.names, self.shapes = list(shapes), shapes
        self.rows, self.cols, self.vocab = rows, cols, cfg.d_vocab
        self.proc: subprocess.Popen | None = None
        self.exchange = 0
        self.cpu_seconds = 0.0  # the child's CPU time so far, as its last answer said
        n_params = sum(math.prod(s) for s in shapes.values())
        self.layout = Layout.of(n_params, np.dtype(dtype).str, rows, cols, cfg.d_vocab)
        fd = os.memfd_create("fabric-half")
        try:
            os.ftruncate(fd, self.layout.size)
            self.memory = mmap.mmap(fd, self.layout.size)
            self.view = self.layout.views(self.memory)
            self.proc = start_child("fabric_cli.nn.half_process", pass_fds=(fd,))
            self._send({"cfg": cfg.to_dict(), "names": self.names,
                        "shapes": [list(shapes[n]) for n in self.names], "fd": fd,
                        "layout": [list(p) for p in self.layout.parts],
                        "size": self.layout.size})
            ready = self._answer(START_SECONDS)
            if ready is None or not ready.get("ready"):
                self.close()
        finally:
            os.close(fd)  # the mapping and the child's copy keep the memory

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _send(self, message: dict) -> bool:
        try:
            write_message(self.proc.stdin.fileno(), encode(message))
            return True
        except (OSError, ValueError, AttributeError):
            self.close()
            return False

    def _answer(self, timeout: float | None = None) -> dict | None:
        try:
            fd = self.proc.stdout.fileno()
            if timeout is not None and not select.select([fd], [], [], timeout)[0]:
                self.close()
                return None
            _soon_readable(fd, PARENT_SPIN)
            answer = json.loads(read_message(fd))
        except (OSError, EOFError, ValueError, AttributeError):
            self.close()
            return None
        except BaseException:  # Ctrl-C in the middle of an exchange: it cannot go on
            self.close()
            raise
        if not isinstance(answer, dict) or "error" in answer:
            self.close()
            return None
        self.cpu_seconds = float(answer.get("cpu", self.cpu_seconds))
        return answer

    @contextlib.contextmanager
    def closed_on_failure(self):
        """Whatever fails here (Ctrl-C too) leaves an exchange half done: the child goes."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def forward(self, params: dict[str, np.ndarray], tokens: np.ndarray, targets: np.ndarray,
                state: dict | None, split: tuple[int, int, int], *, dropout: float,
                attn_dropout: float, layernorm: bool) -> bool:
        """Send the upper half's forward: `state` is the run's generator's (PCG64) before
        this step's masks, `split` (batch, seq_len, middle) the whole batch's draw and where
        the upper half begins (`plan_masks`). False: nothing was sent."""
        b, w = tokens.shape
        if not self.alive or b > self.rows or w > self.cols:
            return False
        if any(params[n].dtype != self.view["params"].dtype or params[n].shape != s
               for n, s in self.shapes.items()):
            return False
        self.exchange += 1
        # the request first, so the child draws its masks while the weights are copied in;
        # then "go": they are
        if not self._send({"kind": "forward", "exchange": self.exchange, "rows": b,
                            "width": w, "state": state, "split": list(split),
                            "dropout": dropout, "attn_dropout": attn_dropout,
                            "layernorm": layernorm, "errors": np.geterr()}):
            return False
        np.concatenate([params[n].reshape(-1) for n in self.names], out=self.view["params"])
        self.view["tokens"][:b * w] = tokens.reshape(-1)
        self.view["targets"][:b * w] = targets.reshape(-1)
        return self._send({"go": self.exchange})

    def forward_answer(self, rows: int, width: int) -> dict | None:
        """{"logits", "token_losses" (copies), "layernorm", "kept": [kept, seen]} or None."""
        answer = self._answer()
        if answer is None or answer.get("exchange") != self.exchange:
            self.close()
            return None
        n = rows * width
        answer["logits"] = self.view["logits"][:n * self.vocab].reshape(rows, width, -1).copy()
        answer["token_losses"] = self.view["losses"][:n].reshape(rows, width).copy()
        return answer

    def backward(self, exchange: int, share: float, grad_flow: bool) -> bool:
        if not self.alive or exchange != self.exchange:
            return False
        return self._send({"kind": "backward", "exchange": exchange, "share": share,
                           "flow": grad_flow, "errors": np.geterr()})

    def backward_answer(self) -> tuple[dict[str, np.ndarray], list | None] | None:
        """The upper half's gradients (views of the shared memory, valid until the next
        exchange) and its gradient-flow rows; or None."""
        answer = self._answer()
        if answer is None or answer.get("exchange") != self.exchange:
            self.close()
            return None
        return unflatten(self.view["grads"], self.shapes), answer.get("flow")

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)


@functools.lru_cache(maxsize=8)
def _shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    from fabric_cli.nn.model import param_shapes

    return param_shapes(cfg)


_current: OtherHalf | None = None
_failed: set = set()  # keys whose child failed to start or later: not started again


def other_half(cfg: ModelConfig, params: dict[str, np.ndarray], rows: int,
               cols: int) -> OtherHalf | None:
    """The child for this Fabric and batch (started once, on first use, and waited for), or
    None where there is none: no memfd here, or a child for it failed (to start or later;
    a child of another Fabric or batch size is closed and a new one started)."""
    global _current
    if not hasattr(os, "memfd_create"):
        return None
    shapes = _shapes(cfg)
    if len(shapes) != len(params) or any(n not in params for n in shapes):
        return None
    dtype = np.dtype(params[next(iter(shapes))].dtype)
    key = (cfg, tuple(shapes.items()), dtype.str, rows, cols)
    if _current is not None and _current.key == key and not _current.alive:
        _failed.add(key)  # it died or answered an error: this Fabric's halves stay here
    if _current is not None and (_current.key != key or not _current.alive):
        _current.close()
        _current = None
    if _current is None and key not in _failed:
        try:
            _current = OtherHalf(cfg, shapes, dtype, rows, cols)
        except OSError:
            _current = None
        if _current is None or not _current.alive:
            _failed.add(key)
            _current = None
    return _current


@atexit.register
def _close_at_exit() -> None:
    if _current is not None:
        _current.close()


# -- the child's side -----------------------------------------------------------------------
def main() -> int:
    answers, requests = protocol_pipes()
    try:
        setup = json.loads(read_message(requests))
        serve = _server(setup, requests)
    except EOFError:
        return 0
    except Exception as exc:  # noqa: BLE001 - told to the parent, which computes it itself
        write_message(answers, error_answer(exc))
        return 1
    write_message(answers, encode({"ready": True, "cpu": time.process_time()}))
    while True:
        try:
            _soon_readable(requests, CHILD_SPIN)
            request = json.loads(read_message(requests))
        except EOFError:
            return 0
        try:
            with np.errstate(**request["errors"]):
                answer = serve(request)
        except Exception as exc:  # noqa: BLE001
            write_message(answers, error_answer(exc))
            return 1
        answer["cpu"] = time.process_time()
        write_message(answers, encode(answer))


def answering() -> bool:
    """A child is up and has computed at least one half."""
    return _current is not None and _current.alive and _current.exchange > 0


def other_cpu_seconds() -> float:
    """The CPU time the child has used so far (0 with none): a step's cost is both
    processes'."""
    return _current.cpu_seconds if _current is not None else 0.0


def _server(setup: dict, requests: int):
    """The child's state (the shared memory's views, the last forward's result) and the
    function that answers each request (a forward reads its "go" from `requests` once its
    masks are drawn)."""
    from fabric_cli.nn.batch_halves import cut_masks, draw_half, plan_masks
    from fabric_cli.nn.model import Capture, backward, forward

    cfg = ModelConfig.from_dict(setup["cfg"])
    memory = mmap.mmap(int(setup["fd"]), int(setup["size"]))
    layout = Layout([tuple(p) for p in setup["layout"]], int(setup["size"]))
    view = layout.views(memory)
    params = unflatten(view["params"], {name: tuple(shape) for name, shape
                                        in zip(setup["names"], setup["shapes"], strict=True)})
    last: dict = {}

    def serve(request: dict) -> dict:
        if request["kind"] == "forward":
            b, w = int(request["rows"]), int(request["width"])
            drawn, units = [], []
            if request["state"] is not None:  # the upper half's rows of the step's masks
                bits = np.random.PCG64(0)
                bits.state = request["state"]
                batch, seq_len, middle = request["split"]
                plan = plan_masks(cfg, batch, seq_len, middle, request["dropout"],
                                  request["attn_dropout"], np.random.Generator(bits))
                drawn, units = cut_masks(draw_half(plan, 1), plan.units, w), plan.units
            unit_masks = [m for m, unit in zip(drawn, units, strict=True) if unit]
            if json.loads(read_message(requests)).get("go") != request["exchange"]:
                raise ValueError("the weights of another step")
            result = forward(params, cfg, view["tokens"][:b * w].reshape(b, w),
                             view["targets"][:b * w].reshape(b, w),
                             dropout=request["dropout"], attn_dropout=request["attn_dropout"],
                             capture=Capture(layernorm=request["layernorm"]), drawn=drawn)
            view["logits"][:result.logits.size] = result.logits.reshape(-1)
            view["losses"][:b * w] = result.token_losses.reshape(-1)
            last.clear()
            last.update(exchange=request["exchange"], result=result)
            return {"exchange": request["exchange"], "layernorm": result.layernorm,
                    "kept": [sum(int(np.count_nonzero(m)) for m in unit_masks),
                             sum(m.size for m in unit_masks)]}
        if last.get("exchange") != request["exchange"]:
            raise ValueError("a backward for a forward this process did not run")
        grads, flow = backward(last.pop("result"), request["flow"], request["share"])
        np.concatenate([grads[n].reshape(-1) for n in setup["names"]], out=view["grads"])
        return {"exchange": request["exchange"], "flow": flow}

    return serve


if __name__ == "__main__":
    sys.exit(main())
