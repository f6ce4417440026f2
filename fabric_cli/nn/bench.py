"""How fast the Fabric learns on this machine: one training step, timed and counted.

A step is forward + backward + clip + AdamW, float32, on random tokens (no padding).
FLOPs are counted analytically (multiply-add = 2 FLOPs), per step:
    matmul weights N = n_layers * (4 * C^2 + 2 * C * d_mlp) + C * V   (embeddings are lookups)
    forward  = 2 * N * tokens + n_layers * 4 * B * T^2 * C   (scores q.k and pattern @ v,
               full T x T as computed, the masked half included)
    step     = 3 * forward   (the backward pass costs twice the forward)
LayerNorm, GELU, softmax, biases and the optimizer are left out (a few percent).
The peak is the best of a few float32 np.matmul of two 1024 x 1024 matrices.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

from fabric_cli.errors import FabricError
from fabric_cli.nn.batch_halves import backward_step, forward_step
from fabric_cli.nn.blas import blas_threads, choose_threads, set_blas_threads
from fabric_cli.nn.config import ModelConfig
from fabric_cli.nn.half_process import answering, other_cpu_seconds
from fabric_cli.nn.model import count_params, init_params
from fabric_cli.nn.optim import AdamW, clip_grad_norm


@dataclass(frozen=True)
class BenchShape:
    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    batch: int = 32
    seq_len: int = 24
    vocab: int = 100
    dropout: float = 0.1
    attn_dropout: float = 0.1  # as the default scenario trains


PRESETS = {
    "default": BenchShape(),
    "large": BenchShape(n_layers=6, n_heads=8, d_model=256, seq_len=32),  # bench_vs_torch's
}

FLOP_FORMULA = (
    "3 * (2 * N * B * T + n_layers * 4 * B * T^2 * C), "
    "N = n_layers * (4 * C^2 + 2 * C * d_mlp) + C * V"
)


def shape_config(shape: BenchShape) -> ModelConfig:
    for name in ("n_layers", "n_heads", "d_model", "batch", "seq_len", "vocab"):
        value = getattr(shape, name)
        if value < 1:
            raise FabricError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if shape.d_model % shape.n_heads:
        raise FabricError(
            f"--d-model {shape.d_model} must be divisible by --n-heads {shape.n_heads}"
        )
    if not 0.0 <= shape.dropout < 1.0:
        raise FabricError(f"--dropout must be in [0, 1), got {shape.dropout}")
    if not 0.0 <= shape.attn_dropout < 1.0:
        raise FabricError(f"--attn-dropout must be in [0, 1), got {shape.attn_dropout}")
    return ModelConfig(
        n_layers=shape.n_layers, n_heads=shape.n_heads, d_model=shape.d_model,
        d_head=shape.d_model // shape.n_heads, d_mlp=4 * shape.d_model,
        n_ctx=shape.seq_len, d_vocab=shape.vocab,
    )


def step_flops(cfg: ModelConfig, batch: int, seq_len: int) -> int:
    C, L = cfg.d_model, cfg.n_layers
    n_matmul = L * (4 * C * C + 2 * C * cfg.d_mlp) + C * cfg.d_vocab
    fwd = 2 * n_matmul * batch * seq_len + L * 4 * batch * seq_len**2 * C
    return 3 * fwd


MAX_REPEATS = 10_000  # timed steps: enough for any median, not a run that never ends

def matmul_peak_gflops(n: int = 1024, repeats: int = 3) -> float:
    """This machine's float32 matmul speed: the best of `repeats` n x n products."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm-up: threads started, pages touched
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cpu() -> float:
    """CPU seconds of this process, all its threads, and of its half process."""
    return time.process_time() + other_cpu_seconds()


def _timed_both(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its half process) of one call."""
    wall, cpu = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - wall, _cpu() - cpu


def run_bench(shape: BenchShape, repeats: int = 20, warmup: int = 3, seed: int = 0,
              threads: int | str = "auto") -> dict:
    """Median time of a training step of `shape`, with throughput and FLOP rate.

    `threads`: the BLAS thread count, or "auto" to time real steps at 1 and 2 threads
    first and keep the faster (nn/blas.py; at every size, where the trainer tunes only
    steps above TUNE_ABOVE_FLOPS). Both wall time (what a user waits) and this
    process's CPU time per step (robust to a busy machine) are reported."""
    if not 1 <= repeats <= MAX_REPEATS:
        raise FabricError(f"--repeats must be from 1 to {MAX_REPEATS:,}, got {repeats:,}")
    cfg = shape_config(shape)
    rng = np.random.default_rng(seed)
    params = init_params(cfg, rng)
    optimizer = AdamW(params, lr=1e-3, weight_decay=0.1)
    tokens = rng.integers(0, cfg.d_vocab, (shape.batch, shape.seq_len))
    targets = rng.integers(0, cfg.d_vocab, (shape.batch, shape.seq_len))

    def train_step() -> None:
        result = forward_step(params, cfg, tokens, targets, dropout=shape.dropout,
                              attn_dropout=shape.attn_dropout, rng=rng)
        grads, _ = backward_step(result)
        clip_grad_norm(grads, 1.0)
        optimizer.step(params, grads, 1e-3)

    found = blas_threads()
    try:
        return _timed_run(shape, cfg, params, train_step, repeats, warmup, threads)
    finally:  # the process's count as it was (a test, or a script, goes on after)
        if found is not None:
            set_blas_threads(found)


def _timed_run(shape: BenchShape, cfg: ModelConfig, params, train_step, repeats: int,
               warmup: int, threads: int | str) -> dict:
    for _ in range(warmup):
        train_step()
    if threads == "auto":
        # every size: a bare step shares the machine with no probe worker, unlike a
        # training run (nn/blas.py, TUNE_ABOVE_FLOPS); 5 steps at each count, not the
        # trainer's 3, since a bench is a measurement and a wrong pick is its whole result
        tuning = choose_threads(train_step, trials=5)
    else:
        set_blas_threads(int(threads))
        tuning = {"threads": blas_threads(), "ms": {}}
    both = [_timed_both(train_step) for _ in range(repeats)]
    times = [w for w, _ in both]
    seconds = statistics.median(times)
    flops = step_flops(cfg, shape.batch, shape.seq_len)
    # as batch_halves.step_in_halves decides: two threads and at least two sequences
    in_halves = bool(tuning["threads"] and tuning["threads"] >= 2 and shape.batch >= 2)
    peak = matmul_peak_gflops()
    gflops = flops / seconds / 1e9
    return {
        "shape": {**shape.__dict__, "d_head": cfg.d_head, "d_mlp": cfg.d_mlp},
        "params": count_params(params),
        "repeats": repeats,
        "ms_per_step": seconds * 1e3,
        "ms_per_step_min": min(times) * 1e3,
        "ms_per_step_max": max(times) * 1e3,
        "cpu_ms_per_step": statistics.median(c for _, c in both) * 1e3,
        "blas_threads": tuning["threads"],
        "in_halves": in_halves,
        "upper_half_in_child_process": in_halves and answering(),
        "blas_threads_tried_ms": {str(n): ms for n, ms in tuning["ms"].items()},
        "tokens_per_step": shape.batch * shape.seq_len,
        "tokens_per_second": shape.batch * shape.seq_len / seconds,
        "flops_per_step": flops,
        "flop_formula": FLOP_FORMULA,
        "gflops_per_second": gflops,
        "peak_gflops_per_second": peak,
        "fraction_of_peak": gflops / peak,
    }
