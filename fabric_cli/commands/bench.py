"""`fabric bench`: time one training step (forward, backward, clip, AdamW) on this machine."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated

import typer
from rich.table import Table

from fabric_cli.commands._common import cli_errors, stdout_console
from fabric_cli.errors import FabricError
from fabric_cli.nn.bench import FLOP_FORMULA, PRESETS, run_bench


# option -> the scenario key whose bound it shares (limits.SHAPE_LIMITS)
_BOUNDS = {"n_layers": "model.n_layers", "n_heads": "model.n_heads", "d_model": "model.d_model",
           "seq_len": "model.n_ctx", "batch": "training.batch_size"}


def _check_size(shape) -> None:
    """A shape beyond the bounds a scenario has, or beyond this machine's memory, is one
    line before anything is allocated (not a MemoryError, or the system killing the run)."""
    from fabric_cli import limits

    for name, key in _BOUNDS.items():
        value, most = getattr(shape, name), limits.SHAPE_LIMITS[key]
        if value > most:
            raise FabricError(f"--{name.replace('_', '-')} must be at most {most:,}, "
                              f"got {value:,}")
    limits.check_memory("fabric bench", shrink="--d-model, --n-layers, --seq-len, --batch or "
                        "--vocab", n_layers=shape.n_layers, d_model=shape.d_model,
                        d_mlp=4 * shape.d_model, n_heads=shape.n_heads, n_ctx=shape.seq_len,
                        d_vocab=shape.vocab, batch_size=shape.batch)


@cli_errors
def bench(
    preset: Annotated[
        str, typer.Option(help=f"Starting shape: {', '.join(PRESETS)} (options below override).")
    ] = "default",
    n_layers: Annotated[int | None, typer.Option(help="Blocks (default preset: 2).")] = None,
    n_heads: Annotated[int | None, typer.Option(help="Heads per block (4).")] = None,
    d_model: Annotated[int | None, typer.Option(help="Residual width (64); d_mlp is 4x.")] = None,
    batch: Annotated[int | None, typer.Option(help="Sequences per step (32).")] = None,
    seq_len: Annotated[int | None, typer.Option(help="Tokens per sequence (24).")] = None,
    vocab: Annotated[int | None, typer.Option(help="Vocabulary size (100).")] = None,
    dropout: Annotated[float | None, typer.Option(help="Dropout rate (0.1).")] = None,
    attn_dropout: Annotated[float | None, typer.Option(
        help="Attention dropout rate (0.1, as the default scenario).")] = None,
    repeats: Annotated[int, typer.Option(help="Timed steps; the median is reported.")] = 20,
    threads: Annotated[str, typer.Option(
        help="Threads: 1, or 2 (each step in two halves of the batch, one per core), or "
             "auto (time 1 and 2 on real steps, keep the faster)."
    )] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
) -> None:
    """Median milliseconds per training step, tokens/s, and GFLOP/s against this machine's
    float32 matmul peak. The machine may be busy: run it twice and trust the lower median."""
    if preset not in PRESETS:
        raise FabricError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    chosen = {"n_layers": n_layers, "n_heads": n_heads, "d_model": d_model, "batch": batch,
              "seq_len": seq_len, "vocab": vocab, "dropout": dropout,
              "attn_dropout": attn_dropout}
    overrides = {k: v for k, v in chosen.items() if v is not None}
    if threads != "auto" and not (threads.isdigit() and int(threads) >= 1):
        raise FabricError(f"--threads must be a positive number or auto, got {threads!r}")
    shape = replace(PRESETS[preset], **overrides)
    _check_size(shape)
    result = run_bench(shape, repeats=repeats, threads=threads)
    if as_json:
        typer.echo(json.dumps({"preset": preset, **result}, indent=1))
        return
    s = result["shape"]
    table = Table(
        title=(f"A training step of the Fabric ({preset}: {s['n_layers']} layers, {s['n_heads']} "
               f"heads, d_model {s['d_model']}, batch {s['batch']} x {s['seq_len']} tokens, "
               f"vocab {s['vocab']}, dropout {s['dropout']}, attention dropout {s['attn_dropout']}, "
               f"{result['params']:,} parameters)"),
        title_justify="left", show_header=False,
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row(f"ms per step (median of {result['repeats']})",
                  f"{result['ms_per_step']:.2f}  (min {result['ms_per_step_min']:.2f}, "
                  f"max {result['ms_per_step_max']:.2f})")
    table.add_row("CPU ms per step (all its processes)", f"{result['cpu_ms_per_step']:.2f}")
    tried = ", ".join(f"{n}: {ms:.1f} ms" for n, ms in result["blas_threads_tried_ms"].items())
    count = result["blas_threads"]
    threads_row = str(count) if count else "unknown"
    if result["in_halves"]:
        where = "child process" if result["upper_half_in_child_process"] else "helper thread"
        threads_row += f": in halves, one in a {where}"
    table.add_row("threads", threads_row)
    if tried:
        table.add_row("threads timed, ms per step", tried.replace(" ms", ""))
    table.add_row("tokens per second", f"{result['tokens_per_second']:,.0f}")
    table.add_row("GFLOP/s achieved", f"{result['gflops_per_second']:.1f}")
    table.add_row("float32 matmul peak, GFLOP/s", f"{result['peak_gflops_per_second']:.1f}")
    table.add_row("fraction of peak", f"{result['fraction_of_peak']:.1%}")
    console = stdout_console()
    console.print(table)
    console.print(f"FLOPs per step = {FLOP_FORMULA}", markup=False)
