"""Measure every hardship scenario against its twin (a measurement, not a test).

    python scripts/measure_storms.py                    # every scenario, one run each
    python scripts/measure_storms.py --repeats 3        # wall time: median of 3 runs
    python scripts/measure_storms.py --only adrift storm --json

The twin of a scenario is the run *with* the component its lesson (scenarios/lessons/)
teaches: adrift/residual, storm/clipping, no-adam/adam, no-dropout/dropout,
no-layernorm/layernorm; heavy-dropout's twin is the default scenario; twelve-layers has
none. Each row: the measured effect (from the two chronicles, analysis/compare.py), the
scenario's time (median of --repeats: CPU seconds, which with one BLAS thread is the time on
an idle machine, and wall seconds inside the trainer), and whether a pronoun specialist
emerged in each run. Numbers on a busy machine are noisy; medians help.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fabric_cli.analysis.compare import compare_dirs
from fabric_cli.lessons import load_lesson
from fabric_cli.scenario import load_scenario
from fabric_cli.training.trainer import Trainer

SCENARIOS = {  # scenario -> its lesson (the twin is the lesson's "with" run)
    "adrift": "residual", "storm": "clipping", "no-adam": "adam", "no-dropout": "dropout",
    "heavy-dropout": None, "no-layernorm": "layernorm", "twelve-layers": None,
}


def train(scenario, run_dir: Path) -> tuple[str, float, float]:
    """(status, wall seconds, CPU seconds). With one BLAS thread the CPU seconds are what the
    run takes on an idle machine; the wall seconds grow with whatever else is running."""
    cpu = time.process_time()
    trainer = Trainer(scenario, run_dir)
    trainer.prepare(force=True)
    result = trainer.run()
    return result.status, result.seconds, time.process_time() - cpu


def effect(name: str, cmp: dict | None, run: dict) -> str:
    """The one-line effect the scenario exists to show, in measured numbers."""
    def pro(r):
        return (r["roles"].get("pronoun") or {})

    if cmp is None:
        s = run
        return (f"{s['switches']['n_layers']}x{s['switches']['n_heads']} heads; val/floor "
                f"{s['val_over_floor']:.3f}; pronoun bar at {pro(s).get('threshold_step')}")
    w, wo = cmp["a"], cmp["b"]
    if name == "adrift":
        rw, rwo = w["gradient"]["ratio_median"], wo["gradient"]["ratio_median"]
        return (f"bottom/top gradient {rwo:.3g} vs twin {rw:.3g} ({rwo / rw:.2g}x); "
                f"val/floor {wo['val_over_floor']:.2f} vs {w['val_over_floor']:.3f}")
    if name == "storm":
        d = wo["divergence"] or {}
        return (f"{wo['status']} at step {d.get('step')} (kept {d.get('last_good_step')}), "
                f"{wo['spikes']['count']} spikes, max norm {wo['clipping']['max_grad_norm']:.3g};"
                f" twin {w['status']}, clipped {w['clipping']['count']} steps "
                f"(max {w['clipping']['max_norm']:.3g} -> {w['clipping']['clip']:g})")
    if name == "no-adam":
        return (f"pronoun bar at {pro(wo).get('threshold_step')} vs AdamW "
                f"{pro(w).get('threshold_step')}; val/floor {wo['val_over_floor']:.3f} vs "
                f"{w['val_over_floor']:.3f}")
    if name in ("no-dropout", "heavy-dropout"):
        def d(r):
            f = r["pronoun"]["focus"]
            focus = f"{f['clean']:.2f}->{f['dropped']:.2f}" if f else "n/a"
            t = r["pronoun"].get("mask_test")
            cut = f"{t['clean']:.2f}->{t['masked']:.2f}" if t else "n/a"
            return (f"{r['pronoun']['heads_over_bar']} heads over the bar, "
                    f"{len(r['pronoun'].get('near_best') or [])} within 80% of the best, "
                    f"held-out {r['pronoun']['heldout_acc']:.3f}, focus under its own mask "
                    f"{focus}, under the fixed 0.3 mask {cut}")
        return f"{d(wo)}; twin: {d(w)}"
    if name == "no-layernorm":
        def g(r):
            sc = r["stream"]["scale"]
            return f"{sc[-1] / sc[0]:.3g}x" if len(sc) > 1 and sc[0] else "n/a"
        return (f"stream top/bottom {g(wo)} vs {g(w)}; val/floor {wo['val_over_floor']:.3f} "
                f"vs {w['val_over_floor']:.3f}; spikes {wo['spikes']['count']} vs "
                f"{w['spikes']['count']}")
    return ""


def specialist(run: dict) -> str:
    sps = (run["roles"].get("pronoun") or {}).get("specialists") or []
    return ", ".join(f"L{s['layer']}H{s['head']}" for s in sps) or "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), default=list(SCENARIOS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="fabric-storms-") as tmp:
        root = Path(tmp)
        for name in args.only:
            lesson = SCENARIOS[name]
            scenario = load_scenario(name)
            if lesson:
                twin = load_lesson(lesson).with_scenario
                twin_name = f"{name} with {lesson}"
            elif name == "heavy-dropout":
                twin, twin_name = load_scenario("pronouns"), "pronouns"
            else:
                twin, twin_name = None, "-"
            times, cpus, status = [], [], None
            for i in range(args.repeats):
                status, seconds, cpu = train(scenario, root / name / f"run{i}")
                times.append(seconds)
                cpus.append(cpu)
            cmp = None
            twin_cpu = None
            if twin is not None:
                twin_cpu = train(twin, root / name / "twin")[2]
                cmp = compare_dirs(root / name / "twin", root / name / "run0")
            from fabric_cli.analysis.compare import load_run, run_summary

            run = cmp["b"] if cmp else run_summary(load_run(root / name / "run0"), name)
            rows.append({
                "scenario": name, "twin": twin_name, "status": status,
                "effect": effect(name, cmp, run),
                "seconds_median": statistics.median(times), "seconds": times,
                "cpu_seconds_median": statistics.median(cpus), "twin_cpu_seconds": twin_cpu,
                "specialist": specialist(run),
                "twin_specialist": specialist(cmp["a"]) if cmp else "-",
            })
            print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("| scenario | twin | measured effect | CPU s (wall s), median | pronoun specialist "
              "(scenario / twin) |")
        print("|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['scenario']} | {r['twin']} | {r['effect']} | "
                  f"{r['cpu_seconds_median']:.0f} ({r['seconds_median']:.0f}) | "
                  f"{r['specialist']} / {r['twin_specialist']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
