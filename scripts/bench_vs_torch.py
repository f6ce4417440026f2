"""Fabric's training step against a PyTorch eager CPU reference of the same architecture.

    python scripts/bench_vs_torch.py                  # the three shapes, 3 alternating rounds
    python scripts/bench_vs_torch.py --rounds 5 --json
    python scripts/bench_vs_torch.py --shape default --rounds 1

PyTorch is a development-only extra: `pip install ".[bench]"` (it pins torch==2.13.0; an
unpinned `pip install torch` may pull a multi-GB CUDA build, the CPU wheel is
`pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`).

Both sides train the same Fabric: pre-LN decoder, learned positions, GELU (tanh), untied
unembed, dropout on each attention and MLP output and attention dropout (as the default
scenario trains), forward + backward + clip the global grad norm to 1 + AdamW (decay 0.1 on
the matrices only), float32, random tokens. The PyTorch side is idiomatic eager code: one
fused QKV Linear, F.scaled_dot_product_attention (causal, with its dropout), AdamW with
PyTorch's fastest CPU path (fused=True). Each measurement is a child process
(`fabric bench --json` for the Fabric at its own BLAS thread choice; this script's worker for
PyTorch at 1 and at 2 threads), the three run one after another in every round and the
rounds alternate, so a busy machine slows all of them alike. Each child reports the median of
its timed steps; the table shows, per shape, the median over rounds and the ratio
fabric / best(PyTorch 1 thread, PyTorch 2 threads). Below 1 the Fabric is faster.

Wall time is what a user waits, but on a machine shared with other work it measures the
queue as much as the code; each child also reports its own CPU time per step (all its
threads, and for the Fabric its half process too, nn/half_process.py), and the table shows
that ratio beside the wall-time one.

The matmul floor is the step's matrix-product FLOPs (fabric bench's count) at this machine's
float32 matmul peak on all its cores (fabric bench's 1024 x 1024 products, best round): what
the step would take if everything but the products were free. Beside it, that floor over
the best PyTorch time: a ratio target below it cannot be met on this machine, and one just
above it leaves LayerNorm, GELU, softmax, Dropout, clipping and AdamW next to nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SHAPES = {  # name: (n_layers, n_heads, d_model, batch, seq_len)
    "default": (2, 4, 64, 32, 24),
    "deep": (12, 8, 64, 32, 24),
    "large": (6, 8, 256, 32, 32),
}
LABELS = {
    "default": "L2 H4 d64 B32 T24 (default)",
    "deep": "L12 H8 d64 B32 T24 (the stories' depth)",
    "large": "L6 H8 d256 B32 T32 (large preset)",
}
VOCAB, DROPOUT, ATTN_DROPOUT = 100, 0.1, 0.1
TIMED_SECONDS = 2.5  # each child times about this long (at least 5 steps)
INSTALL = ('PyTorch is not installed: pip install ".[bench]"  (torch==2.13.0, CPU; an unpinned '
           "torch may download a multi-GB CUDA build)")


# -- the PyTorch reference (a child process) ---------------------------------------------


def torch_worker(shape: tuple[int, ...], threads: int, repeats: int, warmup: int) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    L, NH, C, B, T = shape
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.qkv, self.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc_in, self.fc_out = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, NH, C // NH).permute(2, 0, 3, 1, 4)
            z = F.scaled_dot_product_attention(q, k, v, dropout_p=ATTN_DROPOUT, is_causal=True)
            a = self.proj(z.transpose(1, 2).reshape(B, T, C))
            x = x + F.dropout(a, DROPOUT, training=True)
            m = self.fc_out(F.gelu(self.fc_in(self.ln2(x)), approximate="tanh"))
            return x + F.dropout(m, DROPOUT, training=True)

    class Fabric(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.pos = nn.Embedding(VOCAB, C), nn.Embedding(T, C)
            self.blocks = nn.ModuleList(Block() for _ in range(L))
            self.ln_final, self.unembed = nn.LayerNorm(C), nn.Linear(C, VOCAB)

        def forward(self, tokens):
            x = self.embed(tokens) + self.pos.weight[:T]
            for block in self.blocks:
                x = block(x)
            return self.unembed(self.ln_final(x))

    model = Fabric()
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.normal_(p, 0.0, 0.02)
    decayed = [p for n, p in model.named_parameters()
               if p.dim() > 1 and "embed." not in n and "pos." not in n]
    rest = [p for n, p in model.named_parameters()
            if not (p.dim() > 1 and "embed." not in n and "pos." not in n)]
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}], lr=1e-3, fused=True)
    tokens = torch.randint(0, VOCAB, (B, T))
    targets = torch.randint(0, VOCAB, (B, T))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(tokens).view(-1, VOCAB), targets.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(warmup):
        step()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"ms_per_step": statistics.median(times) * 1e3,
            "cpu_ms_per_step": statistics.median(cpu) * 1e3, "threads": threads,
            "torch": torch.__version__, "repeats": repeats}


# -- the parent: alternate children, collect medians --------------------------------------


def child_text(argv: list[str], env: dict | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        sys.exit(f"bench_vs_torch: {' '.join(argv)} failed ({done.returncode}): "
                 f"{done.stderr.strip()[-600:]}")
    return done.stdout


def child(argv: list[str], env: dict | None = None) -> dict:
    return json.loads(child_text(argv, env))


def fabric_run(shape: tuple[int, ...], repeats: int, threads: str) -> dict:
    L, NH, C, B, T = shape
    argv = [sys.executable, "-m", "fabric_cli", "bench", "--json", "--n-layers", str(L),
            "--n-heads", str(NH), "--d-model", str(C), "--batch", str(B), "--seq-len", str(T),
            "--vocab", str(VOCAB), "--dropout", str(DROPOUT), "--attn-dropout",
            str(ATTN_DROPOUT), "--repeats", str(repeats)]
    if threads != "default":
        argv += ["--threads", threads]
    out = child(argv)
    return {"ms_per_step": out["ms_per_step"], "cpu_ms_per_step": out.get("cpu_ms_per_step"),
            "threads": out.get("blas_threads"), "flops": out["flops_per_step"]}


def peak_run() -> float:
    """This machine's float32 matmul peak on all its cores, GFLOP/s (fabric bench's measure)."""
    code = ("import os; from fabric_cli.nn.blas import set_blas_threads; "
            "from fabric_cli.nn.bench import matmul_peak_gflops; "
            "set_blas_threads(os.cpu_count() or 1); print(matmul_peak_gflops(repeats=5))")
    return float(child_text([sys.executable, "-c", code]))


def torch_run(shape: tuple[int, ...], threads: int, repeats: int) -> dict:
    argv = [sys.executable, __file__, "--worker", ",".join(map(str, shape)), "--threads",
            str(threads), "--repeats", str(repeats)]
    return child(argv)


def repeats_for(shape: tuple[int, ...]) -> int:
    """About TIMED_SECONDS of steps, from a rough cost model (FLOPs at ~10 GFLOP/s)."""
    L, _, C, B, T = shape
    flops = 3 * (2 * (L * 12 * C * C + C * VOCAB) * B * T + L * 4 * B * T * T * C)
    return max(5, min(40, int(TIMED_SECONDS / (flops / 10e9 + 2e-3))))


def measure(names: list[str], rounds: int, progress: bool, fabric_threads: str) -> dict:
    runs: dict[str, dict[str, list]] = {n: {"fabric": [], "torch1": [], "torch2": []}
                                        for n in names}
    cpu: dict[str, dict[str, list]] = {n: {"fabric": [], "torch1": [], "torch2": []}
                                       for n in names}
    chosen_threads: dict[str, object] = {}
    peaks: list[float] = []
    flops: dict[str, int] = {}
    torch_version = None
    for r in range(rounds):
        peaks.append(peak_run())
        for name in names:
            shape = SHAPES[name]
            n = repeats_for(shape)
            # the order rotates with the round, so none of the three always runs first
            order = [("fabric", None), ("torch1", 1), ("torch2", 2)]
            order = order[r % 3:] + order[:r % 3]
            for who, threads in order:
                if who == "fabric":
                    out = fabric_run(shape, n, fabric_threads)
                    chosen_threads.setdefault(name, []).append(out["threads"])
                    flops[name] = out["flops"]
                else:
                    out = torch_run(shape, threads, n)
                    torch_version = out["torch"]
                runs[name][who].append(out["ms_per_step"])
                if out.get("cpu_ms_per_step") is not None:
                    cpu[name][who].append(out["cpu_ms_per_step"])
                if progress:
                    print(f"  round {r + 1}/{rounds} {name:8} {who:7} "
                          f"{out['ms_per_step']:8.1f} ms/step", file=sys.stderr)
    # the floor: the step's matmul FLOPs at the machine's peak, best of the rounds' peaks
    peak = max(peaks)
    table = {}
    for name in names:
        floor_ms = flops[name] / peak / 1e6
        med = {who: statistics.median(v) for who, v in runs[name].items()}
        best = min(med["torch1"], med["torch2"])
        cmed = {who: statistics.median(v) if v else None for who, v in cpu[name].items()}
        cpu_ratio = (cmed["fabric"] / min(cmed["torch1"], cmed["torch2"])
                     if None not in cmed.values() else None)
        table[name] = {"label": LABELS[name], "shape": dict(zip(
            ("n_layers", "n_heads", "d_model", "batch", "seq_len"), SHAPES[name], strict=True)),
            "fabric_ms": med["fabric"], "torch_1_thread_ms": med["torch1"],
            "torch_2_threads_ms": med["torch2"], "ratio": med["fabric"] / best,
            "matmul_floor_ms": floor_ms, "floor_ratio": floor_ms / best,
            "fabric_blas_threads": chosen_threads.get(name), "runs_ms": runs[name],
            "cpu_ms": cmed, "cpu_ratio": cpu_ratio, "runs_cpu_ms": cpu[name]}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"rounds": rounds, "torch": torch_version, "fabric_threads": fabric_threads,
            "peak_gflops_per_second": peak, "peaks_gflops_per_second": peaks,
            "load_average_at_end": load, "shapes": table}


def print_table(result: dict) -> None:
    print(f"fabric bench vs PyTorch {result['torch']} eager CPU: median ms/step of "
          f"{result['rounds']} alternating round(s), each the median of its own steps; "
          f"load average at the end {result['load_average_at_end']:.1f} on "
          f"{os.cpu_count()} cores; float32 matmul peak {result['peak_gflops_per_second']:.0f} "
          "GFLOP/s on all cores")
    print("| shape | fabric ms/step | PyTorch 2 threads | PyTorch 1 thread | "
          "fabric / best PyTorch | matmul floor ms (/ best PyTorch) | fabric BLAS threads | "
          "CPU ms/step fabric, PyTorch 1t, 2t | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in result["shapes"].values():
        c = row["cpu_ms"]
        cpu = (f"{c['fabric']:.1f}, {c['torch1']:.1f}, {c['torch2']:.1f}"
               if None not in c.values() else "-")
        ratio = f"{row['cpu_ratio']:.2f}" if row["cpu_ratio"] is not None else "-"
        threads = row["fabric_blas_threads"]
        print(f"| {row['label']} | {row['fabric_ms']:.1f} | {row['torch_2_threads_ms']:.1f} | "
              f"{row['torch_1_thread_ms']:.1f} | {row['ratio']:.2f} | "
              f"{row['matmul_floor_ms']:.1f} ({row['floor_ratio']:.2f}) | "
              f"{'/'.join(map(str, threads)) if threads else '?'} | {cpu} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=list(SHAPES), action="append",
                        help="only this shape (repeatable; default: all three)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--fabric-threads", default="default",
                        help="passed to fabric bench --threads (default: its own, auto)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        shape = tuple(int(x) for x in args.worker.split(","))
        print(json.dumps(torch_worker(shape, args.threads, args.repeats, warmup=3)))
        return
    try:
        import torch  # noqa: F401  (only to say how to install it before any run starts)
    except ImportError:
        sys.exit(f"bench_vs_torch: {INSTALL}")
    if args.rounds < 1:
        sys.exit("bench_vs_torch: --rounds must be at least 1")
    result = measure(args.shape or list(SHAPES), args.rounds, progress=not args.json,
                     fabric_threads=args.fabric_threads)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
