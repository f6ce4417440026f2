"""What the probe-time measures (fabric_cli/analysis/measures.py) cost against the probe
they ride on: the default scenario's Prober at its birth weights, alternating the two in
the same process, medians of N rounds.

    python scripts/measures_cost.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fabric_cli.analysis import measures
from fabric_cli.language.corpus import Corpus
from fabric_cli.nn.model import init_params
from fabric_cli.scenario import load_scenario
from fabric_cli.training.probing import Prober


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    scenario = load_scenario("pronouns")
    corpus = Corpus(scenario)
    cfg = corpus.model_config()
    params = init_params(cfg, np.random.default_rng(0))
    t = scenario.training
    prober = Prober(corpus, cfg, t.dropout, scenario.seed, getattr(t, "attn_dropout", 0.0))
    heads = prober.probe(params, 50, None)["heads"]
    probe, light, heavy = [], [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        prober.probe(params, 50, None)  # the whole probe, measures included
        probe.append(time.perf_counter() - start)
        start = time.perf_counter()
        measures.probe_measures(params, cfg, prober.measure_pb, heads, 50)
        light.append(time.perf_counter() - start)
        start = time.perf_counter()
        measures.probe_measures(params, cfg, prober.measure_pb, heads, 0)
        heavy.append(time.perf_counter() - start)
    p, m, g = (statistics.median(x) for x in (probe, light, heavy))
    every = t.probe_every
    n_probes = t.steps // every + 1
    n_heavy = t.steps // measures.GRADIENT_EVERY + 1
    total = (n_probes - n_heavy) * m + n_heavy * g
    print(f"probe (measures included): {p * 1e3:.1f} ms median of {args.rounds}")
    print(f"measures at a probe: {m * 1e3:.1f} ms ({m / p:.1%} of the probe)")
    print(f"with the Gradient's per-sentence passes: {g * 1e3:.1f} ms ({g / p:.1%})")
    print(f"a default run ({n_probes} probes, {n_heavy} with the Gradient's passes): "
          f"{total:.2f} s of measures against {n_probes * p:.2f} s of probes ({total / (n_probes * p):.1%})")


if __name__ == "__main__":
    main()
