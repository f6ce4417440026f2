"""Time `fabric infer` from process start to exit: the median of N runs (a benchmark, not a test).

    python scripts/bench_infer.py --run runs/pronouns -n 9
    python scripts/bench_infer.py --run runs/pronouns --json   # also time --json

Numbers on a busy machine are noisy: run it when nothing else is training.

Every run reads its bytecode from a cache of its own (PYTHONPYCACHEPREFIX, a temporary
directory that the warm-up run fills), as an installed package runs: pip compiles bytecode
at install. Where PYTHONDONTWRITEBYTECODE is set and no bytecode lies beside the sources (an
editable install on such a machine) every run would otherwise compile fabric's sources
again, ~80 ms here. `--as-is` times the environment as it is.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SENTENCE = "The scientists published their findings after they completed the experiment."


def time_once(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
                          env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench_infer: {' '.join(argv)} failed: {done.stderr.decode()[-300:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="run directory (default: the newest under runs/)")
    parser.add_argument("-n", type=int, default=9, help="timed runs (one warm-up run first)")
    parser.add_argument("--sentence", default=SENTENCE)
    parser.add_argument("--json", action="store_true", help="time `fabric infer --json` too")
    parser.add_argument("--as-is", action="store_true",
                        help="no bytecode cache of its own: time the environment as it is")
    args = parser.parse_args()
    if args.as_is:
        measure(args, None)
        return
    with tempfile.TemporaryDirectory(prefix="fabric-bytecode-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        measure(args, {**env, "PYTHONPYCACHEPREFIX": cache})


def measure(args, env: dict | None) -> None:
    # -P: the installed fabric, as the `fabric` command runs it, not a checkout in the
    # working directory (which `-m` would put first on the path)
    base = [sys.executable, "-P", "-m", "fabric_cli", "infer", args.sentence]
    if args.run:
        base += ["--run", args.run]
    variants = {"picture": base}
    if args.json:
        variants["json"] = [*base, "--json"]
    baseline = [sys.executable, "-c", "pass"]
    time_once(baseline, env)
    python = statistics.median(time_once(baseline, env) for _ in range(args.n))
    print(f"python -c pass          median {python:.3f} s")
    for name, argv in variants.items():
        time_once(argv, env)  # warm the file cache (and fill the bytecode cache)
        times = [time_once(argv, env) for _ in range(args.n)]
        print(f"fabric infer ({name:7}) median {statistics.median(times):.3f} s  "
              f"min {min(times):.3f}  max {max(times):.3f}  (n={args.n})")


if __name__ == "__main__":
    main()
