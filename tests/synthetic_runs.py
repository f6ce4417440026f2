"""Synthetic chronicles for tests: whole runs as lists of event dicts (docs/chronicle.md).

Nothing is trained; the numbers are shaped like a real run (a loss that plateaus then drops
toward the floor, a pronoun head that snaps, clipping early, Adam's steps shrinking) so
narrators, views and commands can be tested quickly and for situations that are hard to get
on demand: no specialist, no clipping, divergence.

    events = build_run(seed=3)                       # healthy: specialist, clipping, dropout
    events = build_run(seed=3, specialist=False)     # the pronoun head never emerges
    events = build_run(seed=3, clipping=False)       # the gradient never exceeds the clip
    events = build_run(seed=3, diverge_at=120)       # the loss turns nan at step 120
    events = adrift_run(seed=3)                      # 8 layers, no residual: the gradient fades
    events = storm_run(seed=3)                       # no clipping, spikes, then divergence
    write_chronicle(tmp_path / "runs" / "demo", events)
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

STORY_SENTENCES = [
    "The professor finished her lecture.",
    "The scientists published their findings after they completed the experiment.",
]
# Tokens (with <bos>) and [pronoun_index, antecedent_index] pairs into those tokens.
_STORY_TOKENS = [
    (["<bos>", "the", "professor", "finished", "her", "lecture", "."], [[4, 2]]),
    (
        ["<bos>", "the", "scientists", "published", "their", "findings", "after", "they",
         "completed", "the", "experiment", "."],
        [[4, 2], [7, 2]],
    ),
]
_WORDS = [
    "the", "a", "professor", "scientists", "king", "queen", "dog", "experiment", "lecture",
    "findings", "crown", "she", "her", "he", "his", "they", "their", "it", "its", "finished",
    "published", "completed", "lost", "found", "after", "because", "and", "while", "room",
    "left", "stayed", ".", ",",
]
VOCAB = ["<pad>", "<bos>", "<unk>", *_WORDS]
PRONOUN_HEAD = (1, 2)
VERB_HEAD = (0, 1)
NOUN_HEAD = (0, 3)


def r6(x: float) -> float | str:
    """Round like the chronicle: 6 significant digits; non-finite as strings."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{x:.6g}")


def _loss_curve(t: int, steps: int, start: float, floor: float) -> float:
    # 4 phases: fall, plateau, drop (the pronoun head arrives), slow approach to the floor.
    a, b, c = steps * 0.07, steps * 0.27, steps * 0.53
    plateau = floor + 0.55 * (start - floor)
    if t < a:
        return start + (plateau - start) * t / a
    if t < b:
        return plateau
    if t < c:
        return plateau + (floor + 0.15 - plateau) * (t - b) / (c - b)
    return floor + 0.15 * math.exp(-(t - c) / (steps * 0.3)) + 0.03


def _pattern(rng: random.Random, n: int, focus: dict[int, tuple[int, float]]) -> list[list]:
    """A causal attention pattern; `focus[i] = (j, w)` puts weight w of row i on token j."""
    rows = []
    for i in range(n):
        raw = [rng.random() + 0.2 for _ in range(i + 1)]
        total = sum(raw)
        row = [x / total for x in raw]
        if i in focus and focus[i][0] <= i and i > 0:
            j, w = focus[i]
            rest = sum(row) - row[j]
            row = [(x / rest) * (1 - w) if k != j else w for k, x in enumerate(row)]
        rows.append([r6(x) for x in row] + [0.0] * (n - i - 1))
    return rows


def build_run(
    seed: int = 0,
    *,
    specialist: bool = True,
    clipping: bool = True,
    diverge_at: int | None = None,
    dropout: float = 0.1,
    steps: int = 300,
    probe_every: int = 50,
    n_layers: int = 2,
    n_heads: int = 4,
    residual: bool = True,
    grad_clip: float = 1.0,
    fade: float = 1.0,
    spikes: tuple[int, ...] = (),
    diverge_loss: float = math.nan,
    new_measures: bool = True,
    optimizer: str = "adamw",
) -> list[dict]:
    """`fade` < 1 multiplies the gradient by that factor at every layer on its way down (no
    residual to carry it); `spikes` are steps where the norm jumps tenfold. Without
    `new_measures` the chronicle lacks `weight_change` and `qk_space`, as older ones do."""
    rng = random.Random(seed)
    wrng = random.Random(seed * 7919 + 1)  # its own stream: the other numbers stay as they were
    late_size = [0.6, 0.1, 0.33][seed % 3]  # grown, shrunk, much the same (against the first)
    d_model, lr, warmup = 64, 3e-3, steps // 10
    floor = {"train": r6(1.1 + rng.random() * 0.05), "heldout": r6(1.15 + rng.random() * 0.05)}
    model = {"n_layers": n_layers, "n_heads": n_heads, "d_model": d_model,
             "d_head": d_model // n_heads, "d_mlp": 4 * d_model, "n_ctx": 24,
             "d_vocab": len(VOCAB), "act_fn": "gelu_new", "normalization_type": "LN",
             "init_range": 0.02, "residual": residual}
    training = {"steps": steps, "batch_size": 32, "lr": lr, "warmup_steps": warmup,
                "min_lr_ratio": 0.1, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.01,
                "grad_clip": grad_clip, "dropout": dropout, "probe_every": probe_every,
                "optimizer": optimizer}
    events: list[dict] = [{
        "v": 1, "type": "run_start", "step": 0, "scenario": "pronouns",
        "scenario_path": "scenarios/pronouns.toml", "description": "who does 'her' mean?",
        "seed": seed, "model": model, "training": training, "n_params": 70000 + seed,
        "vocab": VOCAB, "floor": floor, "story_sentences": STORY_SENTENCES,
        "resumed_from": None, "started_at": "2025-01-01T00:00:00",
    }]
    start_loss = math.log(len(VOCAB)) + 0.05
    snap_step = int(steps * 0.5) if specialist else None
    end_step = steps if diverge_at is None else diverge_at
    moment = _moment_maker(events)

    def probe_event(t: int, strength: float) -> dict:
        heads = []
        for layer in range(n_layers):
            for head in range(n_heads):
                scores = {r: r6(rng.random() * 0.2) for r in
                          ("pronoun", "verb", "noun", "prev", "self", "first")}
                grown = min(1.0, t / (steps * 0.4))
                if (layer, head) == PRONOUN_HEAD:
                    scores["pronoun"] = r6(0.1 + 0.8 * strength)
                if (layer, head) == VERB_HEAD:
                    scores["verb"] = r6(0.15 + 0.6 * grown)
                if (layer, head) == NOUN_HEAD:
                    scores["noun"] = r6(0.12 + 0.55 * grown)
                acc = scores["pronoun"] if (layer, head) == PRONOUN_HEAD else rng.random() * .4
                heads.append({"layer": layer, "head": head, "scores": scores,
                              "pronoun_acc": r6(acc), "pronoun_acc_heldout": r6(acc * 0.95)})
        snapshots = []
        for sentence, (tokens, pronouns) in zip(STORY_SENTENCES, _STORY_TOKENS):
            patterns = {}
            for layer in range(n_layers):
                for head in range(n_heads):
                    focus = {}
                    if (layer, head) == PRONOUN_HEAD and strength > 0.05:
                        focus = {p: (a, 0.3 + 0.65 * strength) for p, a in pronouns}
                    if (layer, head) == VERB_HEAD and t > 0:
                        focus = {len(tokens) - 1: (3, 0.4 + 0.4 * strength)}
                    patterns[f"{layer}.{head}"] = _pattern(rng, len(tokens), focus)
            snapshots.append({"sentence": sentence, "tokens": tokens, "pronouns": pronouns,
                              "patterns": patterns})
        focus = None
        if dropout > 0:
            clean = heads[PRONOUN_HEAD[0] * n_heads + PRONOUN_HEAD[1]]["scores"]["pronoun"]
            focus = {"layer": PRONOUN_HEAD[0], "head": PRONOUN_HEAD[1], "clean": clean,
                     "dropped": r6(clean * (0.8 + 0.15 * strength)), "rate": dropout}
        loss = _loss_curve(t, steps, start_loss, floor["train"])
        lens, p = [], 0.03 + 0.01 * rng.random()
        for layer in range(n_layers):  # attention points, the MLP names the word
            attn, mlp = p * strength * 0.3, p * strength * (0.8 + rng.random())
            lens.append({"layer": layer, "before": r6(p), "after_attn": r6(p + attn),
                         "after_mlp": r6(p + attn + mlp), "attn_gain": r6(attn),
                         "mlp_gain": r6(mlp)})
            p = p + attn + mlp
        ante = 0.2 + 3.0 * strength + rng.random() * 0.1
        others = 0.1 - 0.5 * strength + rng.random() * 0.1
        measures = {
            "logit_lens": {"where": "the word after each pronoun",
                           "measure": "probability of the true word", "n": 56, "layers": lens,
                           "final": lens[-1]["after_mlp"]},
            "qk_alignment": {"layer": PRONOUN_HEAD[0], "head": PRONOUN_HEAD[1],
                             "antecedent": r6(ante), "others": r6(others),
                             "gap": r6(ante - others), "cosine": r6(0.1 + 0.6 * strength)},
            "head_share": {"layer": PRONOUN_HEAD[0], "head": PRONOUN_HEAD[1],
                           "head_norm": r6(0.2 + strength), "resid_norm": r6(2.5 + t / steps),
                           "ratio": r6((0.2 + strength) / (2.5 + t / steps))},
        }
        if new_measures:
            measures["qk_space"] = _qk_space(wrng, n_layers, n_heads, strength,
                                             measures["qk_alignment"])
        if t % 100 == 0:
            measures["gradient_spread"] = {"n": 4, "mean": r6(0.9 - 0.5 * strength),
                                           "min": r6(0.5 - 0.2 * strength), "max": r6(1.6),
                                           "batch": r6(0.5 - 0.2 * strength)}
            measures["gradient_reach"] = {"n": 4, "antecedent": r6(0.02 + 0.1 * strength),
                                          "others": r6(0.03), "distance": 2.5}
        return {"v": 1, "type": "probe", "step": t, "train_loss": r6(loss), **measures,
                "val_loss": r6(loss + 0.08), "floor": floor, "heads": heads,
                "baseline_acc": {"train": 0.5, "heldout": 0.5},
                "focus_under_dropout": focus, "snapshots": snapshots}

    def strength_at(t: int) -> float:
        if snap_step is None:
            return 0.05
        return 0.05 if t < snap_step else min(1.0, 0.6 + 0.4 * (t - snap_step) / steps)

    events.append(probe_event(0, 0.0))
    clipped_count, burst = 0, []
    median_norm = 0.55
    for t in range(1, end_step + 1):
        diverged = diverge_at is not None and t == diverge_at
        loss = diverge_loss if diverged else _loss_curve(t, steps, start_loss, floor["train"])
        loss += 0 if diverged else (rng.random() - 0.5) * 0.04
        lr_t = lr * t / warmup if t <= warmup else lr * (0.1 + 0.9 * 0.5 * (
            1 + math.cos(math.pi * (t - warmup) / max(1, steps - warmup))))
        norm = median_norm * (1.4 if t < steps * 0.1 else 0.8) * (0.8 + 0.4 * rng.random())
        if clipping and grad_clip > 0 and steps * 0.03 <= t < steps * 0.06:
            norm = grad_clip * (1.5 + rng.random())
        if t in spikes:
            norm *= 10
        if diverged:
            norm = math.inf
        clipped = grad_clip > 0 and norm > grad_clip
        clipped_count += clipped
        if clipped and not diverged:
            burst.append((t, norm))
        top = norm * 0.35
        flow, arriving = [], top
        for layer in reversed(range(n_layers)):
            block = arriving * (0.3 + 0.3 * rng.random()) * (1.5 if t < steps * 0.1 else 1)
            leaving = math.sqrt(arriving**2 + block**2)
            if fade < 1:  # no skip path: all that leaves went through the block, and fades
                block, leaving = arriving * fade, arriving * fade
            flow.append({"layer": layer, "arriving": r6(arriving),
                         "skip": r6(arriving if fade >= 1 else 0.0),
                         "block": r6(block), "leaving": r6(leaving)})
            arriving = leaving
        flow.reverse()
        decay = 1 / (1 + t / (steps * 0.2))
        ratios = {g: r6(lr_t * 3 * decay * (0.5 + rng.random())) for g in
                  ["embed", "pos_embed", *[f"blocks.{i}" for i in range(n_layers)],
                   "ln_final", "unembed"]}
        lns = []
        for name in [*[f"blocks.{i}.ln{k}" for i in range(n_layers) for k in (1, 2)],
                     "ln_final"]:
            lns.append({"name": name, "in_mean": r6((rng.random() - 0.5) * 0.02),
                        "in_std": r6(0.02 + t / steps * (0.5 + rng.random())),
                        "out_mean": r6((rng.random() - 0.5) * 0.01),
                        "out_std": r6(0.98 + rng.random() * 0.04)})
        events.append({
            "v": 1, "type": "step", "step": t, "loss": r6(loss), "lr": r6(lr_t),
            "grad_norm": r6(norm), "grad_norm_clipped": r6(min(norm, grad_clip)),
            "clipped": clipped, "grad_flow": flow, "grad_embed": r6(arriving),
            "update_ratio": ratios, "dropout_rate": dropout,
            "dropout_keep": r6(1 - dropout + (rng.random() - 0.5) * 0.01) if dropout else 1.0,
            "layernorm": lns, "tokens": 400 + rng.randrange(40), "elapsed": r6(t * 0.15),
        })
        if new_measures and (t == 1 or t % probe_every == 0 or t == steps):
            events[-1]["weight_change"] = _weight_change(wrng, n_layers, n_heads, lr_t,
                                                         1.0 if t == 1 else late_size, t == 1)
        if burst and (not clipped or diverged) and not diverged:
            moment("clipping_burst", "engineers", t - 1, start_step=burst[0][0],
                   end_step=burst[-1][0], count=len(burst),
                   max_norm=r6(max(n for _, n in burst)), clip=grad_clip)
            burst = []
        if diverged:
            moment("diverged", "engineers", t, loss=r6(diverge_loss), last_good_step=t - 1,
                   lr=r6(lr_t), grad_norm="inf")
            break
        if t in spikes:
            moment("gradient_spike", "gradient", t, grad_norm=r6(norm), median=r6(norm / 10),
                   factor=r6(10.0), threshold=4.0, window=50)
        _scripted_moments(moment, events, t, steps, snap_step, dropout, specialist, rng,
                          vanishing=fade >= 1, flow=flow)
        if t % probe_every == 0 or t == steps:
            events.append(probe_event(t, strength_at(t)))
    if diverge_at is None:
        _closing(events, moment, steps, floor, specialist, dropout)
    status = "finished" if diverge_at is None else "diverged"
    last = events[-1]["step"]
    specialists = []
    if specialist and diverge_at is None:
        spec = next(e for e in events if e.get("kind") == "specialist")
        specialists = [{"layer": spec["layer"], "head": spec["head"],
                        **{k: v for k, v in spec["data"].items() if k != "group_ablation"}}]
    final = [e for e in events if e["type"] == "probe"][-1]
    events.append({
        "v": 1, "type": "run_end", "step": last, "status": status, "steps": last,
        "seconds": r6(last * 0.15), "final_train_loss": final["train_loss"],
        "final_val_loss": final["val_loss"], "floor": floor, "specialists": specialists,
        "time_split": {"forward": 10.0, "backward": 20.0, "optimizer": 3.0, "probes": 4.0,
                       "drawing": 1.0},
    })
    return events


def _weight_change(rng: random.Random, n_layers: int, n_heads: int, lr: float, size: float,
                   first: bool) -> list[dict]:
    """Shaped like Adam's: the first step moves every weight by about the learning rate."""
    rows, d_model = [], 64
    for layer in range(n_layers):
        for head in range(n_heads):
            mean = lr * (0.95 + 0.04 * rng.random()) if first else lr * size * (
                0.9 + 0.2 * rng.random())
            up = lr if first else mean * (3 + 3 * rng.random())
            down = lr * (0.98 + 0.02 * rng.random()) if first else mean * (3 + 3 * rng.random())
            rows.append({"layer": layer, "head": head,
                         "rise": {"matrix": rng.choice(["W_Q", "W_K", "W_V", "W_O"]),
                                  "index": [rng.randrange(d_model), rng.randrange(16)],
                                  "change": r6(up)},
                         "fall": {"matrix": rng.choice(["W_Q", "W_K", "W_V", "W_O"]),
                                  "index": [rng.randrange(16), rng.randrange(d_model)],
                                  "change": r6(-down)},
                         "mean_abs": r6(mean)})
    return rows


def _qk_space(rng: random.Random, n_layers: int, n_heads: int, strength: float,
              align: dict) -> dict:
    """Six pronouns' queries, antecedent keys and other keys, pulled apart as `strength`
    grows for the pronoun head (the followed one), a loose cloud for the others."""
    heads = {}
    for layer in range(n_layers):
        for head in range(n_heads):
            s = strength if (layer, head) == PRONOUN_HEAD else 0.05

            def cloud(n, cx, cy, spread=0.3):
                return [[r6(cx + rng.gauss(0, spread)), r6(cy + rng.gauss(0, spread))]
                        for _ in range(n)]

            mine = (layer, head) == PRONOUN_HEAD
            a = {k: align[k] for k in ("antecedent", "others", "gap")} if mine else {
                "antecedent": r6(0.1 + rng.random() * 0.1), "others": r6(0.1),
                "gap": r6(rng.random() * 0.1)}
            heads[f"{layer}.{head}"] = {
                "queries": cloud(6, 0.5 + 2 * s, 0.0), "antecedents": cloud(6, 0.2 + 2 * s, 1.5 * s),
                "others": cloud(30, 0.0, -0.5 * s), "kept": r6(0.3 + 0.4 * s), "alignment": a}
    return {"pronouns": 6, "heads": heads}


def _moment_maker(events: list[dict]):
    def moment(kind: str, component: str, step: int, layer=None, head=None, **data) -> None:
        events.append({"v": 1, "type": "moment", "step": step, "kind": kind,
                       "component": component, "layer": layer, "head": head, "data": data})
    return moment


def _scripted_moments(moment, events, t, steps, snap_step, dropout, specialist, rng, *,
                      vanishing=True, flow=None) -> None:
    plateau_end = int(steps * 0.27)
    if t == plateau_end:
        moment("loss_plateau", "loss", t, start_step=int(steps * 0.07), end_step=t,
               mean_loss=r6(2.6 + rng.random() * 0.1), spread=r6(0.02 + rng.random() * 0.01))
    if t == int(steps * 0.53):
        moment("loss_drop", "loss", t, start_step=plateau_end, end_step=t,
               from_loss=r6(2.6 + rng.random() * 0.1), to_loss=r6(1.5 + rng.random() * 0.1),
               best_pronoun_score=r6(0.8) if specialist else None)
    if t == int(steps * 0.33):
        for role, (layer, head) in (("verb", VERB_HEAD), ("noun", NOUN_HEAD)):
            moment("role_threshold", "head", t, layer, head, role=role,
                   score=r6(0.5 + rng.random() * 0.1), threshold=0.4,
                   previous_score=r6(0.3 + rng.random() * 0.05), previous_step=t - 50)
    if t == int(steps * 0.2) and vanishing:
        moment("vanishing_gradient", "gradient", t, bottom=r6(0.01), top=r6(0.4),
               ratio=r6(0.025), threshold=0.05)
    if t == 40 and not vanishing:  # the fade measured in this very step's grad_flow
        bottom, top = flow[0]["arriving"], flow[-1]["arriving"]
        moment("vanishing_gradient", "gradient", t, bottom=bottom, top=top,
               ratio=r6(bottom / top), threshold=0.1, start_step=21, bottom_layer=0,
               top_layer=len(flow) - 1)
    if t == int(steps * 0.45):
        moment("gradient_spike", "gradient", t, grad_norm=r6(0.9 + rng.random() * 0.05),
               median=r6(0.45), factor=r6(2.0 + rng.random() * 0.1))
    if snap_step is not None and t == snap_step:
        moment("first_snap", "head", t, *PRONOUN_HEAD, sentence=STORY_SENTENCES[0],
               pronoun="her", pronoun_index=4, antecedent="professor", antecedent_index=2,
               weight=r6(0.6 + rng.random() * 0.1), runner_up="the",
               runner_up_weight=r6(0.1 + rng.random() * 0.05))
        moment("role_threshold", "head", t, *PRONOUN_HEAD, role="pronoun",
               score=r6(0.62 + rng.random() * 0.05), threshold=0.4,
               previous_score=r6(0.12 + rng.random() * 0.05), previous_step=t - 50)
    if dropout > 0 and specialist and t == int(steps * 0.6):
        moment("dropout_knock", "dropout", t, *PRONOUN_HEAD, clean=r6(0.7),
               dropped=r6(0.41 + rng.random() * 0.05), rate=dropout)
    if dropout > 0 and specialist and t == int(steps * 0.8):
        moment("dropout_recovered", "dropout", t, *PRONOUN_HEAD, clean=r6(0.85),
               dropped=r6(0.78 + rng.random() * 0.04), rate=dropout, knock_step=int(steps * .6))


def _closing(events, moment, steps, floor, specialist, dropout) -> None:
    final = [e for e in events if e["type"] == "probe"][-1]
    moment("near_floor", "loss", steps, val_loss=final["val_loss"], floor=floor["train"],
           ratio=r6(final["val_loss"] / floor["train"]))
    rows = []
    if specialist:
        row = final["heads"][PRONOUN_HEAD[0] * 4 + PRONOUN_HEAD[1]]
        ablation = {"loss_before": 0.41, "loss_after": 1.37, "acc_before": 0.93,
                    "acc_after": 0.52}
        moment("specialist", "head", steps, *PRONOUN_HEAD, role="pronoun",
               score=row["scores"]["pronoun"], heldout_acc=row["pronoun_acc_heldout"],
               baseline_acc=0.5, ablation=ablation, redundant_with=[],
               group_ablation=ablation)
        rows.append({"heads": [list(PRONOUN_HEAD)], "role": "pronoun", **ablation})
    rows.append({"heads": [list(VERB_HEAD)], "role": "verb", "loss_before": 0.9,
                 "loss_after": 0.97, "acc_before": 0.6, "acc_after": 0.57})
    events.append({"v": 1, "type": "ablation", "step": steps, "rows": rows})


def write_chronicle(run_dir: Path, events: list[dict]) -> Path:
    """Write events as runs/<name>/chronicle.jsonl; returns the file's path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "chronicle.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def adrift_run(seed: int = 0) -> list[dict]:
    """An adrift-like run: 8 layers, residual off, the gradient losing 40% at every layer on
    the way down; no pronoun head forms."""
    return build_run(seed, n_layers=8, residual=False, fade=0.4, specialist=False)


def storm_run(seed: int = 0) -> list[dict]:
    """A storm-like run: clipping off (grad_clip 0), spikes, then the loss turns nan."""
    # as the real storm ends: the gradient turns infinite while the loss is still a (huge) number
    return build_run(seed, grad_clip=0.0, spikes=(40, 70), diverge_at=100, specialist=False,
                     diverge_loss=4.3e21, optimizer="momentum")


# Every synthetic chronicle the narrators are tested over, by name (each call builds afresh).
CHRONICLES = {
    "healthy0": lambda: build_run(0),
    "healthy1": lambda: build_run(1),
    "healthy2": lambda: build_run(2),
    "no_specialist": lambda: build_run(2, specialist=False),
    "no_clipping": lambda: build_run(3, clipping=False),
    "diverged": lambda: build_run(4, diverge_at=120),
    "no_dropout": lambda: build_run(5, dropout=0.0),
    "adrift": lambda: adrift_run(6),
    "storm": lambda: storm_run(7),
    "older": lambda: build_run(8, new_measures=False),
}


def resumed_run(events: list[dict], *at: int) -> list[dict]:
    """The run interrupted with Ctrl-C at each step in `at`, then resumed from there (the
    chronicle a real resume leaves: docs/chronicle.md, `interrupted`)."""
    import copy

    out = copy.deepcopy(events)
    for s in at:
        i = next(i for i, e in enumerate(out) if e["type"] == "step" and e["step"] > s)
        again = {**out[0], "step": s, "resumed_from": s}
        out[i:i] = [{"v": 1, "type": "interrupted", "step": s, "reason": "ctrl-c",
                     "checkpoint_step": s}, again]
    return out
