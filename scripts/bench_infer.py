"""Time `fabric infer` from process start to exit: the median of N runs (a benchmark, not a test).

    python scripts/bench_infer.py --run runs/pronouns -n 9
    python scripts/bench_infer.py --run runs/pronouns --json   # also time --json

Numbers on a busy machine are noisy: run it when nothing else is training.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

SENTENCE = "The scientists published their findings after they completed the experiment."


def time_once(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
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
    args = parser.parse_args()
    base = [sys.executable, "-m", "fabric_cli", "infer", args.sentence]
    if args.run:
        base += ["--run", args.run]
    variants = {"picture": base}
    if args.json:
        variants["json"] = [*base, "--json"]
    baseline = [sys.executable, "-c", "pass"]
    time_once(baseline)
    python = statistics.median(time_once(baseline) for _ in range(args.n))
    print(f"python -c pass          median {python:.3f} s")
    for name, argv in variants.items():
        time_once(argv)  # warm the file cache
        times = [time_once(argv) for _ in range(args.n)]
        print(f"fabric infer ({name:7}) median {statistics.median(times):.3f} s  "
              f"min {min(times):.3f}  max {max(times):.3f}  (n={args.n})")


if __name__ == "__main__":
    main()
