"""What the compare voices may claim: facts derived from two runs' summaries by thresholds.

Input is the plain dict of analysis.compare.compare_runs (built from the two chronicles).
`absence(component, cmp)` says which run lacks the component; `derive(component, cmp)`
returns the facts that hold, each with the measured values (already formatted) its phrases
may use. A fact that does not hold is simply absent, so no phrase can claim it.
"""

from __future__ import annotations

import itertools
import math

from fabric_cli.narrate.format import and_list, pct, sig, step

# Thresholds: every comparative word is chosen by one of these.
ORDERS_LOST = 100.0  # "orders of magnitude": the absent run's bottom/top ratio ≥ 100× smaller
FADED = 10.0  # "faded": ≥ 10× smaller
STALLED_RATIO = 1.1  # "stalled above the floor": val/floor ≥ 1.1× the present run's
NEAR_FLOOR = 1.05  # "reached the floor": val/floor ≤ 1.05
ACC_DIFF = 0.05  # held-out accuracy differences of 5 points or more are told
STREAM_GREW = 2.0  # the stream's top/bottom growth ≥ 2× the present run's
FOCUS_DROP = 0.05  # a mask costs (or one Fabric keeps under it) ≥ 5 points of accuracy

# Who is absent in which run, from the switches each run was trained with.
ABSENT = {
    "residual": lambda s: not s["residual"],
    "layernorm": lambda s: s["layernorm"] == "none",
    "engineers": lambda s: not s.get("grad_clip"),
    "adam": lambda s: s["optimizer"] != "adamw",
    "dropout": lambda s: not s.get("dropout") and not s.get("attn_dropout"),
}
LESSON_COMPONENT = {"residual": "residual", "layernorm": "layernorm", "clipping": "engineers",
                    "adam": "adam", "dropout": "dropout"}


def lessened(component: str, cmp: dict) -> tuple[str, str] | None:
    """For Dropout in both runs at different rates: (heavier run, lighter run), else None."""
    if component != "dropout" or absence(component, cmp) is not None:
        return None
    rates = [(cmp[k]["switches"]["dropout"], cmp[k]["switches"]["attn_dropout"])
             for k in ("a", "b")]
    if rates[0] == rates[1] or not any(rates[0]) or not any(rates[1]):
        return None
    return ("a", "b") if rates[0] > rates[1] else ("b", "a")


def absence(component: str, cmp: dict) -> tuple[str, str] | None:
    """(key of the run with the component, key of the run without it), or None when the
    component is present in both runs or absent from both (or has no absence to speak of)."""
    rule = ABSENT.get(component)
    if rule is None:
        return None
    a, b = rule(cmp["a"]["switches"]), rule(cmp["b"]["switches"])
    if a == b:
        return None
    return ("b", "a") if a else ("a", "b")


def big(x: float) -> str:
    """A number a person can read at any size: 3.26, 1,230, 6.25 × 10^19."""
    if not math.isfinite(x) or abs(x) < 1e6:
        return sig(x)
    exponent = math.floor(math.log10(abs(x)))
    return f"{sig(x / 10 ** exponent)} × 10^{exponent}"


def times(n: int) -> str:
    """How often, in words a person uses: never, once, twice, 3 times."""
    return {0: "never", 1: "once", 2: "twice"}.get(n, f"{step(n)} times")


def _ratio(run: dict) -> float | None:
    return run["gradient"]["ratio_median"]


def _share(x: float | None) -> str:
    """1/300 for small shares, 0.82 for large, 1/(5.15 × 10^11) for vanishing ones."""
    if x is None or not math.isfinite(x):
        return "unknown"
    if x >= 0.1:
        return sig(x)
    if x <= 0:
        return "nothing"
    inverse = 1 / x
    if inverse < 1e6:
        return f"1/{sig(inverse)}"
    exponent = math.floor(math.log10(inverse))
    return f"1/({sig(inverse / 10 ** exponent)} × 10^{exponent})"


def _share_of_it(x: float) -> str:
    """The same share, said of "it" (what arrived at the top): "1.58 times as much"."""
    return f"{sig(x)} times as much" if x >= 1 else f"{_share(x)} of it"


def _vof(run: dict) -> float | None:
    return run["val_over_floor"]


def _pronoun_step(run: dict) -> int | None:
    return (run["roles"].get("pronoun") or {}).get("threshold_step")


def _trackers(run: dict) -> list[str]:
    sps = (run["roles"].get("pronoun") or {}).get("specialists") or []
    return [f"L{s['layer']}H{s['head']}" for s in sps]


def _stream_growth(run: dict) -> float | None:
    scale = [x for x in run["stream"].get("scale") or [] if x is not None]
    if len(scale) < 2 or not scale[0]:
        return None
    return scale[-1] / scale[0]


def derive(component: str, cmp: dict) -> dict[str, dict]:
    """The facts that hold for `component` in this comparison, with their values."""
    sides = absence(component, cmp) or lessened(component, cmp)
    facts: dict[str, dict] = {}
    if sides is None:
        for key in ("a", "b"):
            _run_facts(facts, key.upper(), cmp[key])
        return facts
    w, wo = cmp[sides[0]], cmp[sides[1]]
    opt = {"sgd": "plain SGD", "momentum": "SGD with momentum", "adamw": "AdamW"}
    v = {"with_name": sides[0].upper(), "without_name": sides[1].upper(),
         "without_optimizer": opt.get(wo["switches"]["optimizer"], wo["switches"]["optimizer"]),
         "without_lr": sig(wo["switches"]["lr"] or 0)}
    if absence(component, cmp) is not None:
        facts["absent"] = dict(v)
    else:  # the component is in both runs, more of it in one
        facts["lessened"] = {**v, "with_rate": pct(w["switches"]["dropout"]),
                             "with_attn": pct(w["switches"]["attn_dropout"]),
                             "without_rate": pct(wo["switches"]["dropout"]),
                             "without_attn": pct(wo["switches"]["attn_dropout"])}
    rw, rwo = _ratio(w), _ratio(wo)
    if rw and rwo is not None and rw > 0:
        v.update(with_share=_share(rw), without_share=_share(rwo),
                 with_share_of_it=_share_of_it(rw), without_share_of_it=_share_of_it(rwo),
                 bottom=str(0), top=str(w["switches"]["n_layers"] - 1))
        if rwo * FADED <= rw:
            facts["gradient_faded"] = dict(v)
            orders = math.log10(rw / rwo) if rwo > 0 else math.inf
            if rw >= ORDERS_LOST * rwo:
                facts["gradient_orders"] = {**v, "orders": str(math.floor(orders))}
            per = [x["arriving"] for x in wo["gradient"]["per_layer"]]
            if len(per) >= 3 and all(lo < hi for lo, hi in itertools.pairwise(per)):
                facts["shrank_every_layer"] = {**v, "n_layers": str(len(per))}
        elif rwo >= rw / FADED:
            facts["gradient_held"] = dict(v)
    vw, vwo = _vof(w), _vof(wo)
    if vw is not None and vwo is not None and wo["divergence"]:
        # a torn run did not stall: its last figures are those of its last probe
        facts["torn_loss_without"] = {**v, "without_vof": big(vwo),
                                      "probe_step": step(wo["last_probe_step"] or 0)}
    elif vw is not None and vwo is not None and (
            w.get("status") != "finished" or wo.get("status") != "finished"):
        # a run stopped by hand did not end where its figures were measured: say when
        facts["loss_unfinished"] = {**v, "with_vof": sig(vw), "without_vof": sig(vwo),
                                    "with_probe": step(w.get("last_probe_step") or 0),
                                    "without_probe": step(wo.get("last_probe_step") or 0)}
    elif vw is not None and vwo is not None:
        v.update(with_vof=sig(vw), without_vof=sig(vwo))
        if vwo >= STALLED_RATIO * vw:
            facts["stalled_without"] = dict(v)
        elif vw >= STALLED_RATIO * vwo:
            facts["better_without"] = dict(v)
        else:
            facts["same_loss"] = dict(v)
        if vw <= NEAR_FLOOR:
            facts["with_near_floor"] = dict(v)
    sw, swo = _pronoun_step(w), _pronoun_step(wo)
    tw, two = _trackers(w), _trackers(wo)
    if tw:
        v.update(with_trackers=and_list(tw), with_n=str(len(tw)),
                 with_became="the pronoun tracker" if len(tw) == 1 else "pronoun trackers")
    if two:
        v.update(without_trackers=and_list(two), without_n=str(len(two)),
                 without_became="a pronoun tracker" if len(two) == 1 else "pronoun trackers")
    if sw is not None:
        v.update(with_step=step(sw))
    if swo is not None:
        v.update(without_step=step(swo))
    # the final ablation proves a head: a run that stopped or tore before it proved none, and
    # disproved none either
    if tw and not two:
        if wo["status"] == "finished":
            facts["tracker_only_with"] = dict(v)
        else:
            end = (f"tore at step {step(wo['divergence']['step'])}" if wo["divergence"] else
                   f"stopped at step {step(wo['steps'])}")
            facts["tracker_untested_without"] = {**v, "without_end": end}
    if two and not tw and w["status"] == "finished":
        facts["tracker_only_without"] = dict(v)
    if tw and two:
        facts["trackers_both"] = dict(v)
    if sw is not None and swo is None:
        facts["bar_never_without"] = dict(v)
    elif sw is not None and swo is not None:
        if swo > sw:
            facts["bar_later_without"] = {**v, "delay": step(swo - sw)}
        elif swo < sw:
            facts["bar_sooner_without"] = {**v, "lead": step(sw - swo)}
        else:
            facts["bar_same_step"] = dict(v)
    aw, awo = w["pronoun"]["heldout_acc"], wo["pronoun"]["heldout_acc"]
    if aw is not None and awo is not None:
        v.update(with_acc=pct(aw), without_acc=pct(awo),
                 baseline=pct(w["pronoun"]["baseline_acc"] or 0))
        if aw - awo >= ACC_DIFF:
            facts["acc_lower_without"] = dict(v)
        elif awo - aw >= ACC_DIFF:
            facts["acc_higher_without"] = dict(v)
    # "the same storm" only where the clip is all that differs; else the survivor had other help
    _storm_facts(facts, v, w, wo, alone=set(cmp.get("differences", {})) <= {"grad_clip"})
    _stream_facts(facts, v, w, wo)
    _dropout_facts(facts, v, w, wo)
    return facts


def _storm_facts(facts: dict, v: dict, w: dict, wo: dict, alone: bool) -> None:
    d = wo["divergence"]
    if d:
        facts["diverged_without"] = {**v, "torn_step": step(d["step"]),
                                     "good_step": step(d["last_good_step"] or 0),
                                     "max_norm": big(wo["clipping"]["max_grad_norm"] or 0),
                                     "torn": d.get("non_finite") or "loss"}
    if d and not w["divergence"] and w["status"] == "finished":
        name = "survived_with" if alone else "survived_with_more"
        facts[name] = {**v, "steps": step(w["steps"])}
    c = w["clipping"]
    if c["enabled"] and c["count"]:
        facts["clipped_with"] = {**v, "count": step(c["count"]), "clip": sig(c["clip"]),
                                 "max_clipped": sig(c["max_norm"])}
    if wo["spikes"]["count"] > w["spikes"]["count"]:
        facts["more_spikes_without"] = {**v, "spikes_without": times(wo["spikes"]["count"]),
                                        "spikes_with": times(w["spikes"]["count"])}


def _stream_facts(facts: dict, v: dict, w: dict, wo: dict) -> None:
    gw, gwo = _stream_growth(w), _stream_growth(wo)
    if gw is None or gwo is None:
        return
    vals = {**v, "growth_with": sig(gw), "growth_without": sig(gwo)}
    if gwo >= STREAM_GREW * gw:
        facts["stream_grew_without"] = vals
    elif gw >= STREAM_GREW * gwo:
        facts["stream_grew_with"] = vals
    else:
        facts["stream_similar"] = vals


def _dropout_facts(facts: dict, v: dict, w: dict, wo: dict) -> None:
    hw, hwo = w["pronoun"]["heads_over_bar"], wo["pronoun"]["heads_over_bar"]
    vals = {**v, "backups_with": step(hw), "backups_without": step(hwo),
            "bar": sig(w["pronoun"]["bar"])}
    if hw > hwo:
        facts["more_heads_with"] = vals
    elif hwo > hw:
        facts["more_heads_without"] = vals
    else:
        facts["same_heads"] = vals
    near_w, near_wo = w["pronoun"].get("near_best") or [], wo["pronoun"].get("near_best") or []
    if near_w and near_wo:
        near = {**v, "near_with": step(len(near_w)), "near_without": step(len(near_wo)),
                "near_share": pct(w["pronoun"]["near_share"]), "near_heads_with": _heads(near_w),
                "near_heads_without": _heads(near_wo)}
        facts["more_near_with" if len(near_w) > len(near_wo) else
              "more_near_without" if len(near_wo) > len(near_w) else "same_near"] = near
    tw, two = w["pronoun"].get("mask_test"), wo["pronoun"].get("mask_test")
    if tw and two and None not in (tw["masked"], two["masked"]) and tw["rate"] == two["rate"]:
        cut = {**v, "rate": pct(tw["rate"]), "masked_with": pct(tw["masked"]),
               "masked_without": pct(two["masked"]), "clean_with": pct(tw["clean"]),
               "clean_without": pct(two["clean"])}
        gap = tw["masked"] - two["masked"]
        facts["cut_kept_with" if gap >= FOCUS_DROP else
              "cut_kept_without" if -gap >= FOCUS_DROP else "cut_alike"] = cut
    f = w["pronoun"]["focus"]
    if f and f["clean"] is not None and f["dropped"] is not None:
        vals = {**v, "clean": pct(f["clean"]), "dropped": pct(f["dropped"])}
        if f["clean"] - f["dropped"] >= FOCUS_DROP:
            key = "mask_costs_with"
        else:  # the mask did not hurt: with backups, they held; alone, the tracker did
            key = "mask_harmless" if hw >= 2 else "mask_harmless_alone"
        facts[key] = vals


def _heads(heads: list[dict]) -> str:
    return and_list([f"L{h['layer']}H{h['head']}" for h in heads])


def _run_facts(facts: dict, name: str, run: dict) -> None:
    """Facts about one run, for voices with no absence (gradient, loss, head)."""
    v = {"run": name}
    r = _ratio(run)
    if r is not None:
        facts[f"ratio_{name}"] = {**v, "share": _share(r), "bottom": "0",
                                  "top": str(run["switches"]["n_layers"] - 1)}
    vof = _vof(run)
    if vof is not None:
        facts[f"loss_{name}"] = {**v, "vof": sig(vof)}
    s = _pronoun_step(run)
    if s is not None:
        facts[f"bar_{name}"] = {**v, "step": step(s)}
    else:
        facts[f"no_bar_{name}"] = dict(v)
    if run["divergence"]:
        facts[f"diverged_{name}"] = {**v, "torn_step": step(run["divergence"]["step"])}
    c = run["clipping"]
    if c["enabled"] and c["count"]:
        facts[f"clipped_{name}"] = {**v, "count": step(c["count"]), "clip": sig(c["clip"])}
