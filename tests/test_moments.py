"""Moments appear exactly when the numbers cross their thresholds, and never otherwise."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest

from fabric_cli.chronicle import ChronicleWriter, read_events, truncate_after, validate_event
from fabric_cli.training.moments import MomentDetector, MomentThresholds, make_moment

TH = MomentThresholds()
ROLES = ("pronoun", "verb", "noun", "prev", "self", "first")


def step_event(step, loss=2.0, grad_norm=1.0, clipped=False, bottom=1.0, top=1.0):
    return {"type": "step", "step": step, "loss": loss, "lr": 1e-3, "grad_norm": grad_norm,
            "grad_norm_clipped": min(grad_norm, 1.0) if clipped else grad_norm,
            "clipped": clipped,
            "grad_flow": [{"layer": 0, "arriving": bottom, "skip": bottom, "block": 0.1,
                           "leaving": bottom},
                          {"layer": 1, "arriving": top, "skip": top, "block": 0.1,
                           "leaving": top}]}


def probe_event(step, pronoun=None, snapshots=(), focus=None, val_loss=3.0, floor=1.0):
    """Two layers × two heads; `pronoun` maps (layer, head) to its pronoun score (0.1 else)."""
    pronoun = pronoun or {}
    heads = [{"layer": l_, "head": h, "pronoun_acc": 0.0, "pronoun_acc_heldout": 0.0,
              "scores": {**dict.fromkeys(ROLES, 0.1), "pronoun": pronoun.get((l_, h), 0.1)}}
             for l_ in range(2) for h in range(2)]
    return {"type": "probe", "step": step, "train_loss": val_loss, "val_loss": val_loss,
            "floor": {"train": floor, "heldout": floor}, "heads": heads,
            "baseline_acc": {"train": 0.5, "heldout": 0.5}, "role_shares": {"verb": 0.2,
                                                                          "noun": 0.3},
            "focus_under_dropout": focus, "snapshots": list(snapshots)}


def feed_steps(detector, events):
    return [m for e in events for m in detector.on_step(e)]


def kinds(moments):
    return [m["kind"] for m in moments]


# -- gradients -------------------------------------------------------------------------------
def _noisy_norms(n, seed=0):
    return 1.0 + 0.1 * np.random.default_rng(seed).standard_normal(n)


def test_a_gradient_spike_is_told_once_and_a_calm_stream_never():
    norms = _noisy_norms(200)
    calm = MomentDetector(TH, 2, 2)
    assert feed_steps(calm, [step_event(s, grad_norm=n) for s, n in enumerate(norms, 1)]) == []
    spiky = norms.copy()
    spiky[119:121] = 6.0  # two steps in a row: one spike
    spiky[160] = 3.0  # three times the median: not enough
    moments = feed_steps(MomentDetector(TH, 2, 2),
                         [step_event(s, grad_norm=n) for s, n in enumerate(spiky, 1)])
    assert kinds(moments) == ["gradient_spike"]
    assert moments[0]["step"] == 120 and moments[0]["data"]["grad_norm"] == 6.0
    assert moments[0]["data"]["factor"] == pytest.approx(6.0 / np.median(spiky[69:119]),
                                                         rel=1e-4)


def test_a_clipping_burst_is_one_moment_with_its_extent_and_scattered_clips_are_none():
    scattered = [step_event(s, grad_norm=1.5, clipped=(s % 60 == 0)) for s in range(1, 400)]
    assert feed_steps(MomentDetector(TH, 2, 2), scattered) == []
    burst = [step_event(s, grad_norm=1.5 + 0.1 * (s - 100) if 100 <= s <= 107 else 0.9,
                        clipped=100 <= s <= 107) for s in range(1, 300)]
    moments = feed_steps(MomentDetector(TH, 2, 2), burst)
    assert kinds(moments) == ["clipping_burst"]
    (m,) = moments
    assert m["step"] == 107 + TH.clip_window  # told once the engineers rest
    assert (m["data"]["start_step"], m["data"]["end_step"], m["data"]["count"]) == (100, 107, 8)
    assert m["data"]["max_norm"] == pytest.approx(2.2)
    assert m["data"]["clip"] == 1.0


def test_a_burst_still_going_at_the_end_is_closed_by_finish():
    detector = MomentDetector(TH, 2, 2)
    events = [step_event(s, grad_norm=3.0, clipped=True) for s in range(1, 31)]
    assert feed_steps(detector, events) == []
    (m,) = detector.finish()
    assert m["kind"] == "clipping_burst" and m["data"]["count"] == 30
    assert (m["data"]["start_step"], m["data"]["end_step"]) == (1, 30)


def test_vanishing_gradient_needs_a_sustained_gap_and_is_told_once_per_episode():
    def stream(ratios):
        return [step_event(s, bottom=r, top=1.0) for s, r in enumerate(ratios, 1)]

    healthy = [0.5] * 100 + [0.05] * 10 + [0.5] * 50  # a short dip is not an episode
    assert feed_steps(MomentDetector(TH, 2, 2), stream(healthy)) == []
    ratios = [0.5] * 49 + [0.05] * 30 + [0.15] * 20 + [0.05] * 30 + [0.5] * 5 + [0.05] * 25
    moments = feed_steps(MomentDetector(TH, 2, 2), stream(ratios))
    assert kinds(moments) == ["vanishing_gradient"] * 2  # 0.15 did not end the first one
    assert moments[0]["step"] == 49 + TH.vanishing_steps
    assert moments[0]["data"]["ratio"] == pytest.approx(0.05)
    assert moments[1]["step"] == 49 + 30 + 20 + 30 + 5 + TH.vanishing_steps
    one_layer = MomentDetector(TH, 1, 2)  # nothing to compare with a single layer
    assert feed_steps(one_layer, [{**e, "grad_flow": e["grad_flow"][:1]}
                                  for e in stream([0.01] * 50)]) == []


# -- the loss --------------------------------------------------------------------------------
def _plateau_then_drop(noise_seed=1):
    rng = np.random.default_rng(noise_seed)
    t = np.arange(1, 901)
    loss = np.where(t < 150, 4.0 - 2.5 * t / 150, 1.5)  # fall, then flat from step 150 ...
    loss = np.where((t >= 500) & (t < 600), 1.5 - 0.2 * (t - 500) / 100, loss)  # ... drop
    loss = np.where(t >= 600, 1.3, loss)
    return t, loss + 0.02 * rng.standard_normal(t.size)


def test_a_plateau_then_a_drop_is_told_with_the_best_head_of_the_moment():
    t, loss = _plateau_then_drop()
    detector = MomentDetector(TH, 2, 2)
    moments = []
    for s, value in zip(t, loss, strict=True):
        moments += detector.on_step(step_event(int(s), loss=float(value)))
        if s == 450:
            detector.on_probe(probe_event(450, pronoun={(1, 0): 0.55}))
    assert kinds(moments) == ["loss_plateau", "loss_drop"]
    plateau, drop = moments
    # the smoothed loss lags the raw one by some 20 steps, so the plateau starts a little late
    assert 150 <= plateau["data"]["start_step"] <= 230
    assert 495 <= plateau["data"]["end_step"] <= 560
    assert plateau["data"]["mean_loss"] == pytest.approx(1.5, abs=0.02)
    assert 1.44 < plateau["data"]["low"] < plateau["data"]["high"] < 1.6  # around 1.5 only
    assert plateau["data"]["spread"] == pytest.approx(
        plateau["data"]["high"] - plateau["data"]["low"], abs=1e-5)
    assert drop["data"]["start_step"] == plateau["data"]["end_step"]
    assert drop["data"]["to_loss"] <= drop["data"]["from_loss"] * (1 - TH.drop_fraction)
    assert drop["step"] == drop["data"]["end_step"] < 700
    assert drop["data"]["best_pronoun_score"] == 0.55


def test_a_steady_decline_has_neither_plateau_nor_drop():
    rng = np.random.default_rng(2)
    t = np.arange(1, 601)
    loss = 1.3 + 2.7 * np.exp(-t / 300) + 0.02 * rng.standard_normal(t.size)
    detector = MomentDetector(TH, 2, 2)
    assert feed_steps(detector, [step_event(int(s), loss=float(v)) for s, v in
                                 zip(t, loss, strict=True)]) == []


def test_a_plateau_lasting_to_the_end_is_told_by_finish():
    detector = MomentDetector(TH, 2, 2)
    assert feed_steps(detector, [step_event(s, loss=1.2) for s in range(1, 201)]) == []
    (m,) = detector.finish()
    assert m["kind"] == "loss_plateau"
    assert (m["data"]["start_step"], m["data"]["end_step"]) == (1, 200)


@pytest.mark.parametrize("floor, told", [(1.15, False), (0.8, True)])
def test_flattening_near_the_floor_is_arrival_not_a_plateau(floor, told):
    detector = MomentDetector(TH, 2, 2)
    detector.on_probe(probe_event(0, floor=floor))  # the probe at step 0 brings the floor
    assert feed_steps(detector, [step_event(s, loss=1.2) for s in range(1, 201)]) == []
    moments = detector.finish()
    assert kinds(moments) == (["loss_plateau"] if told else [])
    if told:
        assert moments[0]["data"]["above_floor"] == pytest.approx(0.4)


def test_non_finite_losses_do_not_poison_the_smoothing():
    detector = MomentDetector(TH, 2, 2)
    detector.on_step(step_event(1, loss=2.0))
    detector.on_step(step_event(2, loss=float("nan"), grad_norm=float("inf")))
    assert detector.loss_smooth == 2.0 and list(detector.grad_norms) == [1.0]


# -- heads ------------------------------------------------------------------------------------
SENTENCES = [
    ["<bos>", "the", "king", "met", "the", "maids", "because", "he", "lost", "his", "crown"],
    ["<bos>", "the", "maids", "met", "the", "king", "because", "they", "lost", "their", "keys"],
]
PRONOUNS = [[7, 2], [7, 2]]


def snapshot(sentence, pronoun_rows):
    """Uniform causal attention except each head's row for the pronoun at index 7."""
    n = len(sentence)
    patterns = {}
    for key, row in pronoun_rows.items():
        rows = [[1.0 / (q + 1) if k <= q else 0.0 for k in range(n)] for q in range(n)]
        rows[7] = row + [0.0] * (n - len(row))
        patterns[key] = rows
    for key in ("0.0", "0.1", "1.0", "1.1"):
        patterns.setdefault(key, [[1.0 / (q + 1) if k <= q else 0.0 for k in range(n)]
                                  for q in range(n)])
    return {"sentence": " ".join(sentence[1:]), "tokens": sentence, "pronouns": [[7, 2]],
            "patterns": patterns}


def attention_row(antecedent: float, rival: float) -> list[float]:
    """Row 7 (keys 0..7): `antecedent` on index 2, `rival` on index 5, the rest shared."""
    rest = (1.0 - antecedent - rival) / 6
    return [rest, rest, antecedent, rest, rest, rival, rest, rest]


def test_a_rising_pronoun_score_crosses_its_threshold_exactly_once():
    detector = MomentDetector(TH, 2, 2)
    moments = []
    for i, score in enumerate([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.4, 0.9]):
        moments += detector.on_probe(probe_event(50 * i, pronoun={(1, 0): score}))
    assert kinds(moments) == ["role_threshold"]
    (m,) = moments
    assert (m["step"], m["layer"], m["head"]) == (200, 1, 0)
    assert m["data"] == {"role": "pronoun", "score": 0.5, "threshold": 0.5,
                         "previous_score": 0.4, "previous_step": 150}


def test_noun_heads_are_measured_against_spreading_attention_evenly():
    th = MomentThresholds()
    assert th.role_threshold("noun", {"noun": 0.5}) == pytest.approx(0.65)
    assert th.role_threshold("noun") == 0.5  # without shares, the fixed bar
    detector = MomentDetector(th, 2, 2)
    probe = probe_event(10)
    probe["role_shares"] = {"verb": 0.5, "noun": 0.5}
    probe["heads"][0]["scores"]["noun"] = 0.6  # above 0.5 but under the 0.65 the share sets
    probe["heads"][1]["scores"]["noun"] = 0.7
    (m,) = detector.on_probe(probe)
    assert (m["layer"], m["head"], m["data"]["role"]) == (0, 1, "noun")


def test_first_snap_comes_at_the_first_probe_where_every_pronoun_peaks_on_its_antecedent():
    history = [  # (antecedent weight, rival weight) for head 1.0, in both sentences
        ((0.10, 0.20), (0.10, 0.20)),
        ((0.25, 0.10), (0.25, 0.10)),  # peaks on the antecedent, but too faintly
        ((0.40, 0.10), (0.30, 0.45)),  # strong in one sentence, wrong in the other
        ((0.45, 0.15), (0.35, 0.20)),  # the snap: 0.35 is the weaker of the two
        ((0.70, 0.10), (0.70, 0.10)),
    ]
    detector = MomentDetector(TH, 2, 2)
    moments = []
    for i, rows in enumerate(history):
        shots = [snapshot(s, {"1.0": attention_row(*r)}) for s, r in zip(SENTENCES, rows,
                                                                         strict=True)]
        moments += detector.on_probe(probe_event(100 * i, snapshots=shots))
    assert kinds(moments) == ["first_snap"]
    (m,) = moments
    assert (m["step"], m["layer"], m["head"]) == (300, 1, 0)
    d = m["data"]
    assert (d["pronoun"], d["antecedent"], d["runner_up"]) == ("they", "maids", "king")
    assert (d["pronoun_index"], d["antecedent_index"]) == (7, 2)
    assert d["weight"] == pytest.approx(0.35) and d["runner_up_weight"] == pytest.approx(0.2)
    assert d["sentence"] == " ".join(SENTENCES[1][1:])


# -- the floor and dropout ------------------------------------------------------------------
def test_near_floor_is_told_the_first_time_only():
    detector = MomentDetector(TH, 2, 2)
    moments = []
    for i, val in enumerate([2.0, 1.5, 1.12, 1.04, 1.02, 1.2, 1.01]):
        moments += detector.on_probe(probe_event(100 * i, val_loss=val, floor=1.0))
    assert kinds(moments) == ["near_floor"]
    assert moments[0]["step"] == 300 and moments[0]["data"]["ratio"] == pytest.approx(1.04)


def test_dropout_knocks_the_specialist_then_it_recovers():
    def focus(clean, dropped):
        return {"layer": 1, "head": 0, "clean": clean, "dropped": dropped, "rate": 0.1}

    detector = MomentDetector(TH, 2, 2)
    moments = []
    for i, f in enumerate([None, focus(0.2, 0.05), focus(0.6, 0.45), focus(0.7, 0.62),
                           focus(0.8, 0.77), focus(0.8, 0.5)]):
        moments += detector.on_probe(probe_event(100 * i, focus=f))
    assert kinds(moments) == ["dropout_knock", "dropout_recovered"]
    knock, back = moments
    assert (knock["step"], knock["layer"], knock["head"]) == (200, 1, 0)
    assert knock["data"] == {"clean": 0.6, "dropped": 0.45, "rate": 0.1}
    assert back["step"] == 400 and back["data"]["knock_step"] == 200


def test_divergence_is_a_valid_moment_with_its_non_finite_loss_as_text(tmp_path):
    detector = MomentDetector(TH, 2, 2)
    moment = detector.on_divergence(41, float("nan"), 3e-3, float("inf"), 40)
    with ChronicleWriter(tmp_path / "c.jsonl") as writer:
        record = writer.emit(moment)
    assert validate_event(record) == []
    assert record["data"] == {"loss": "nan", "last_good_step": 40, "lr": 0.003,
                              "grad_norm": "inf"}
    with pytest.raises(ValueError):
        make_moment("eureka", 1, "head", {})


def test_thresholds_from_the_scenario():
    given = SimpleNamespace(probes=SimpleNamespace(specialist_threshold=0.7))
    assert MomentThresholds.from_scenario(given).role_threshold("pronoun") == 0.7
    table = SimpleNamespace(probes=SimpleNamespace(specialist_threshold={"prev": 0.8}))
    th = MomentThresholds.from_scenario(table)
    assert th.role_threshold("prev") == 0.8 and th.role_threshold("pronoun") == 0.5


# -- resuming -------------------------------------------------------------------------------
def _long_run():
    """Steps and probes with a plateau, a drop, a clipping burst, a spike and a snapping head,
    values unrounded as the trainer hands them over."""
    t, loss = _plateau_then_drop(noise_seed=3)
    norms = _noisy_norms(t.size, seed=4)
    norms[300] = 8.0
    events = []
    for s, value, norm in zip(t, loss, norms, strict=True):
        s = int(s)
        clipped = 420 <= s < 440
        events.append(step_event(s, loss=float(value), grad_norm=float(norm) + clipped,
                                 clipped=clipped))
        if s % 50 == 0:
            w = min(0.9, s / 1000)
            shots = [snapshot(sent, {"1.0": attention_row(w, 0.05)}) for sent in SENTENCES]
            events.append(probe_event(s, pronoun={(1, 0): w * 1.01}, snapshots=shots,
                                      val_loss=float(value) + 0.01, floor=1.25))
    return events


def _feed(detector, event):
    if event["type"] == "step":
        return detector.on_step(event)
    return detector.on_probe(event)


def test_replay_after_a_resume_gives_the_state_and_moments_of_an_uninterrupted_run(tmp_path):
    events = _long_run()
    cut = 430  # mid-plateau watch, mid clipping burst
    live = MomentDetector(TH, 2, 2)
    path = tmp_path / "chronicle.jsonl"
    written, state_at_cut = [], None
    with ChronicleWriter(path) as writer:
        for event in events:
            written.append(writer.emit(event))
            for moment in _feed(live, event):
                written.append(writer.emit(moment))
            if event["type"] == "step" and event["step"] == cut:
                state_at_cut = copy.deepcopy(live.state())
    live_moments = [e for e in written if e["type"] == "moment"]
    assert set(kinds(live_moments)) >= {"loss_plateau", "loss_drop", "clipping_burst",
                                        "gradient_spike", "first_snap", "role_threshold",
                                        "near_floor"}

    truncate_after(path, cut)
    resumed = MomentDetector(TH, 2, 2)
    resumed.replay(read_events(path))
    assert resumed.state() == state_at_cut
    later = [m for e in events if e["step"] > cut for m in _feed(resumed, e)]
    with ChronicleWriter(tmp_path / "later.jsonl") as writer:
        later = [writer.emit(m) for m in later]
    assert later == [m for m in live_moments if m["step"] > cut]
    assert all(math.isfinite(m["step"]) for m in later)
