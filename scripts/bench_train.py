"""Time `fabric train` and say where its seconds went (a benchmark, not a test).

    python scripts/bench_train.py                         # pronouns, seeds 0 1 2
    python scripts/bench_train.py --scenario tiny --seeds 0 1 2 3 4
    python scripts/bench_train.py --runs 1 --json

For each run (a child process, as a user starts it): wall seconds from process start to exit,
the run_end time split (forward, backward, optimizer, probes, checkpoints, drawing), the named
pronoun specialist, its held-out accuracy against the nearest-noun baseline, and the final
validation loss over the entropy floor. Then the cast, per seed: each role's best proven head
(pronoun, verb, noun, prev, ...), its held-out accuracy (or score) against its baseline and
what silencing it did (alone, or on top of its role's other heads), and how many roles are
held by distinct proven heads (`--cast-only` skips the time table and the live picture). Then the cost of the live picture: the first seed once
more in this process with the LivePicture drawing into a terminal-like console (width 120, to
/dev/null) and once with no subscriber at all.

Numbers on a busy machine are noisy (medians help, they do not cure): run it when nothing
else is training.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPLIT = ("forward", "backward", "optimizer", "probes", "checkpoints", "drawing")


def train_child(scenario: str, seed: int, run_dir: Path, steps: int | None) -> dict:
    """One `fabric train --json` in a child process; its summary plus the wall seconds."""
    argv = [sys.executable, "-m", "fabric_cli", "train", "--scenario", scenario,
            "--seed", str(seed), "--run-dir", str(run_dir), "--force", "--json"]
    if steps is not None:
        argv += ["--steps", str(steps)]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err, text=True, env=os.environ)
        _, status, usage = os.wait4(child.pid, 0)  # the child's own CPU time, not its siblings'
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        sys.exit(f"bench_train: {' '.join(argv)} failed ({child.returncode}): "
                 f"{stderr.strip()[-400:]}")
    summary = json.loads(stdout)
    cast = cast_of(summary["specialists"])
    pronoun = [sp for sp in summary["specialists"] if sp["role"] == "pronoun"]
    best = max(pronoun, key=lambda sp: sp["heldout_acc"] or 0.0) if pronoun else None
    floor = (summary.get("entropy_floor") or {}).get("train")
    val = summary.get("final_val_loss")
    return {
        "seed": seed,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,  # user + system seconds of the child
        "seconds": summary["seconds"],
        "steps": summary["steps"],
        "time_split": summary["time_split"],
        "specialist": [best["layer"], best["head"]] if best else None,
        "heldout_acc": best["heldout_acc"] if best else None,
        "baseline_acc": best["baseline_acc"] if best else None,
        "final_val_loss": val,
        "floor": floor,
        "val_over_floor": val / floor if val is not None and floor else None,
        "cast": cast,
        "distinct_roles": distinct_roles(summary["specialists"]),
    }


CAST_ROLES = ("pronoun", "verb", "noun", "prev", "self", "first")


def effect(sp: dict) -> dict:
    """What silencing the head did to its role: alone if that hurt, else on top of its team."""
    alone = sp.get("alone_hurts") is not False
    row = sp["ablation"] if alone or not sp.get("backup_effect") else sp["backup_effect"]
    return {"how": "alone" if alone else "on top of its team",
            "loss": [row["loss_before"], row["loss_after"]],
            "acc": [row["acc_before"], row["acc_after"]]}


def cast_of(specialists: list[dict]) -> dict:
    """Each role's best proven head: the one run_end marks best, else the best held-out
    accuracy (or score)."""
    out = {}
    for role in CAST_ROLES:
        mine = [sp for sp in specialists if sp["role"] == role]
        if not mine:
            continue
        best = next((sp for sp in mine if sp.get("best")), None) or max(
            mine, key=lambda sp: sp["heldout_acc"] if sp.get("heldout_acc") is not None
            else sp["score"])
        out[role] = {"head": [best["layer"], best["head"]], "score": best["score"],
                     "heldout_acc": best.get("heldout_acc"),
                     "baseline_acc": best.get("baseline_acc"),
                     "effect": effect(best), "proven_heads": len(mine)}
    return out


def distinct_roles(specialists: list[dict]) -> list[str]:
    """The largest set of roles among pronoun, verb, noun, prev that distinct proven heads can
    hold, one role per head (an exhaustive matching: there are at most four roles)."""
    import itertools

    heads = {role: {(sp["layer"], sp["head"]) for sp in specialists if sp["role"] == role}
             for role in ("pronoun", "verb", "noun", "prev")}
    roles = [r for r, hs in heads.items() if hs]
    for size in range(len(roles), 0, -1):
        for subset in itertools.combinations(roles, size):
            for pick in itertools.product(*(sorted(heads[r]) for r in subset)):
                if len(set(pick)) == size:
                    return list(subset)
    return []


def accepted(row: dict) -> bool:
    """Issue 10's bar: pronoun and two of verb / noun / prev held by distinct proven heads,
    the pronoun head's held-out accuracy >= 0.95, validation loss <= 1.03 x floor."""
    roles = row["distinct_roles"]
    pronoun = row["cast"].get("pronoun")
    return ("pronoun" in roles and len([r for r in roles if r != "pronoun"]) >= 2
            and pronoun is not None and (pronoun["heldout_acc"] or 0) >= 0.95
            and row["val_over_floor"] is not None and row["val_over_floor"] <= 1.03)


def print_cast(rows: list[dict]) -> None:
    print("\nthe cast: each role's best proven head, held-out accuracy (or score) vs baseline, "
          "and what silencing it did")
    for r in rows:
        print(f"seed {r['seed']}: {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, val/floor "
              f"{fmt(r['val_over_floor'])}, "
              f"distinct roles {', '.join(r['distinct_roles']) or '-'}"
              f"{'  [meets the bar]' if accepted(r) else ''}")
        for role, c in r["cast"].items():
            measure = (f"held-out {fmt(c['heldout_acc'])} vs {fmt(c['baseline_acc'])}"
                       if c["heldout_acc"] is not None else f"score {fmt(c['score'])}")
            e = c["effect"]
            print(f"  {role:8} L{c['head'][0]}H{c['head'][1]}  {measure:26}  silenced "
                  f"{e['how']}: loss {e['loss'][0]:.3f}->{e['loss'][1]:.3f}, acc "
                  f"{e['acc'][0]:.2f}->{e['acc'][1]:.2f}  ({c['proven_heads']} proven)")
    print(f"{sum(accepted(r) for r in rows)} of {len(rows)} seeds meet the bar")


def picture_cost(scenario: str, seed: int, steps: int | None, where: Path) -> dict:
    """The same run twice in this process: with the live picture drawn, and with nothing."""
    from rich.console import Console

    from fabric_cli.commands.live import LivePicture
    from fabric_cli.scenario import load_scenario
    from fabric_cli.training.trainer import Trainer

    sc = load_scenario(scenario)
    out = {}
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        for name in ("picture", "bare"):
            view = None
            if name == "picture":
                view = LivePicture(Console(file=devnull, force_terminal=True, width=120,
                                           height=40, color_system="truecolor"))
            trainer = Trainer(sc, where / name, steps=steps, seed=seed,
                              subscribers=[view.on_event] if view else [])
            trainer.prepare(force=True)
            start = time.perf_counter()
            if view is not None:
                view.start(trainer)
            try:
                result = trainer.run()
            finally:
                if view is not None:
                    view.stop()
            wall = time.perf_counter() - start
            drawing = result.summary["time_split"]["drawing"]
            out[name] = {"wall": wall, "seconds": result.seconds, "drawing": drawing,
                         "drawing_pct": 100.0 * drawing / result.seconds}
    out["wall_difference"] = out["picture"]["wall"] - out["bare"]["wall"]
    return out


def median_of(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(scenario: str, rows: list[dict], medians: dict, cost: dict | None) -> None:
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"fabric train --scenario {scenario}: {len(rows)} run(s), {rows[0]['steps']} steps "
          f"each, BLAS threads {threads} (child processes; a shared machine is noisy)")
    head = (f"{'seed':>5} {'wall s':>7} {'train s':>7} " + " ".join(f"{k[:8]:>8}" for k in SPLIT)
            + f" {'head':>5} {'heldout':>7} {'nearest':>7} {'val/floor':>9}")
    print(head)
    print("-" * len(head))
    for r in rows + [{"seed": "median", **medians}]:
        split = r["time_split"]
        head_name = f"L{r['specialist'][0]}H{r['specialist'][1]}" if r.get("specialist") else "-"
        print(f"{r['seed']!s:>5} {fmt(r['wall'], '.2f'):>7} {fmt(r['seconds'], '.2f'):>7} "
              + " ".join(f"{fmt(split.get(k), '.2f'):>8}" for k in SPLIT)
              + f" {head_name:>5} {fmt(r['heldout_acc']):>7} {fmt(r['baseline_acc']):>7} "
              f"{fmt(r['val_over_floor']):>9}")
    if cost:
        p, b = cost["picture"], cost["bare"]
        print(f"\nlive picture (seed {rows[0]['seed']}, in process, terminal console width 120): "
              f"drawing {p['drawing']:.2f} s = {p['drawing_pct']:.1f}% of a {p['seconds']:.2f} s "
              f"run; the same run with no subscriber took {b['seconds']:.2f} s "
              f"(difference {cost['wall_difference']:+.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="pronouns")
    parser.add_argument("--runs", type=int, default=3, help="runs when --seeds is not given")
    parser.add_argument("--seeds", type=int, nargs="+", help="one run per seed")
    parser.add_argument("--steps", type=int, help="override the scenario's steps")
    parser.add_argument("--no-picture", action="store_true", help="skip the live-picture cost")
    parser.add_argument("--keep", type=Path, help="train into DIR/seedN and keep the runs "
                        "(for `fabric heads --run DIR/seed0`)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="seeds trained at once (wall times then include the contention)")
    parser.add_argument("--cast-only", action="store_true",
                        help="only the per-role table (no time split, no live picture)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--blas-threads", type=int,
                        help="OPENBLAS/OMP/MKL thread count for every run (default: as set)")
    args = parser.parse_args()
    if args.blas_threads is not None:
        # before numpy is imported here (picture_cost imports it late) and for the children
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(args.blas_threads)
    seeds = args.seeds if args.seeds else list(range(args.runs))
    if not seeds or args.runs < 1:
        sys.exit("bench_train: need at least one run")

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        where = args.keep if args.keep is not None else Path(tmp)
        rows = []
        if args.jobs > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(args.jobs) as pool:
                rows = list(pool.map(lambda seed: train_child(
                    args.scenario, seed, where / f"seed{seed}", args.steps), seeds))
        for seed in seeds if args.jobs <= 1 else ():
            rows.append(train_child(args.scenario, seed, where / f"seed{seed}", args.steps))
            if not args.json:
                print(f"  seed {seed}: {rows[-1]['wall']:.1f} s", file=sys.stderr)
        cost = None if args.no_picture or args.cast_only else picture_cost(args.scenario, seeds[0], args.steps,
                                                          where)
    medians = {key: median_of(rows, key) for key in
               ("wall", "seconds", "heldout_acc", "baseline_acc", "final_val_loss",
                "val_over_floor")}
    medians["time_split"] = {k: statistics.median(r["time_split"][k] for r in rows)
                             for k in SPLIT}
    if args.json:
        print(json.dumps({"scenario": args.scenario,
                          "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                          "runs": rows, "median": medians,
                          "live_picture": cost}, indent=2))
    else:
        if not args.cast_only:
            print_table(args.scenario, rows, medians, cost)
        print_cast(rows)


if __name__ == "__main__":
    main()
