"""The compare voices: a component tells how its journeys through two runs differed, or, in a
`fabric why` lesson, speaks of its own absence.

Phrase banks are data: each phrase names the fact (narrate/compare_facts.py) it needs and is
said only when that fact holds, filled with that fact's measured values. Phrases are told in
bank order, at most one per fact. `{run}` facts (ratio_{run}, …) are told once per run.
"""

from __future__ import annotations

from fabric_cli.narrate.compare_facts import absence, derive, lessened

# Phrases every absent (or lessened) component may use, after its own. {With_me} and
# {without_me} are how it names its presence and absence: "with me" / "without me", "with
# us" for the Engineers, "with more of me" / "with less of me" when only its rate differs.
SELF = {"engineers": "us"}
SHARED_OUTCOME = [
    ("stalled_without", ("{Without_me} the Fabric stalled at {without_vof}× its entropy floor; "
                        "{with_me} it reached {with_vof}×.")),
    ("torn_loss_without", ("At its last probe before it tore, step {probe_step}, the Fabric "
                           "{without_me} stood at {without_vof} times its entropy floor.")),
    ("better_without", ("I will not claim more than was measured: {without_me} the Fabric ended "
                       "at {without_vof}× its floor, {with_me} at {with_vof}×.")),
    ("loss_unfinished", ("Not both runs finished, so I compare their last probes: the Fabric "
                         "{with_me} stood at {with_vof}× its floor at step {with_probe}, "
                         "{without_me} at {without_vof}× at step {without_probe}.")),
    ("same_loss", ("On the loss alone the two runs ended close: {with_vof}× the floor {with_me}, "
                  "{without_vof}× {without_me}.")),
    ("lessened", ("In run {with_name} I cut {with_rate} of the block outputs and {with_attn} "
                  "of the attention weights; in run {without_name} {without_rate} and "
                  "{without_attn}.")),
    ("tracker_only_with", ("{With_me} {with_trackers} became {with_became}; {without_me} no "
                          "head proved itself one.")),
    ("tracker_untested_without", ("{With_me} {with_trackers} became {with_became}; {without_me} "
                                 "the run {without_end}, before the ablation "
                                 "that proves a head.")),
    ("tracker_only_without", ("{Without_me} {without_trackers} still became {without_became}, "
                             "and {with_me} no head proved itself one.")),
    ("trackers_both", ("A pronoun tracker formed either way: {with_trackers} {with_me}, "
                      "{without_trackers} {without_me}.")),
    ("bar_never_without", ("{With_me} a head crossed the pronoun bar at step {with_step}; without "
                          "{me} none ever did.")),
    ("bar_later_without", ("{Without_me} the pronoun bar was crossed at step {without_step}, "
                          "{delay} steps later than {with_me} (step {with_step}).")),
    ("bar_sooner_without", ("{Without_me} the pronoun bar was crossed sooner, at step "
                           "{without_step} against {with_step}.")),
    ("acc_lower_without", ("On sentences whose nouns never met in training, the best head "
                          "found the antecedent {without_acc} of the time {without_me} and "
                          "{with_acc} {with_me} (guessing the nearest noun: {baseline}).")),
    ("acc_higher_without", ("On held-out sentences the best head did better {without_me}: "
                           "{without_acc} against {with_acc}.")),
]

BANKS: dict[str, list[tuple[str, str]]] = {
    "residual": [
        ("absent", ("I am the Residual, the thread each block writes beside instead of over. "
                   "In run {without_name} I was cut.")),
        ("gradient_faded", ("Without me, the correction that reached Layer {bottom} was "
                           "{without_share} of what arrived at Layer {top}; with me it was "
                           "{with_share_of_it}.")),
        ("gradient_orders", "That is at least {orders} orders of magnitude lost on the way down."),
        ("shrank_every_layer", ("It shrank at every layer on its way down, from Layer {top} to "
                               "Layer {bottom}: without me no layer could hand it on "
                               "untouched.")),
        ("gradient_held", ("Even without me the gradient reaching Layer {bottom} kept "
                          "{without_share} of its strength at Layer {top} (with me: "
                          "{with_share}): at this depth it did not need my thread to reach "
                          "the bottom.")),
    ],
    "layernorm": [
        ("absent", "I am LayerNorm, the leveller. In run {without_name} I was taken away."),
        ("stream_grew_without", ("Without me the residual stream's scale grew {growth_without}× "
                                "from the bottom of the Fabric to the top; with me "
                                "{growth_with}×.")),
        ("stream_similar", ("Without me the stream's scale grew {growth_without}× from bottom "
                           "to top, with me {growth_with}×: within a factor of two.")),
        ("stream_grew_with", ("The stream's scale grew more with me ({growth_with}×) than "
                             "without ({growth_without}×); I level what each layer reads, "
                             "not the stream itself.")),
        ("more_spikes_without", ("Without me the gradient spiked {spikes_without}, with me "
                                "{spikes_with}.")),
    ],
    "engineers": [
        ("absent", ("We are the Engineers. In run {without_name} our hands were tied: no "
                   "clipping.")),
        ("diverged_without", ("Without clipping the gradient norm reached {max_norm}, and at "
                              "step {torn_step} the Fabric tore: the {torn} turned "
                              "non-finite. We caught it within that step and kept the last "
                              "good checkpoint, step {good_step}.")),
        ("clipped_with", ("With clipping we cut the Gradient back on {count} steps, the "
                         "largest from {max_clipped} down to {clip}.")),
        ("survived_with", "With our hands free the same storm ran all {steps} steps."),
        ("survived_with_more", ("Run {with_name}, clipped, ran all {steps} steps; it also "
                                "differed from run {without_name} in other settings, so its "
                                "survival is not ours alone to claim.")),
        ("more_spikes_without", ("Unclipped, the gradient spiked {spikes_without}; clipped, "
                                "{spikes_with}.")),
    ],
    "adam": [
        ("absent", ("I am Adam, who remembers the gradient and gives each weight a step "
                   "sized to its own history. In run {without_name} {without_optimizer} at lr "
                   "{without_lr} took my place.")),
    ],
    "dropout": [
        ("absent", ("I am Dropout, who cuts threads so that no head may be the only one. In "
                   "run {without_name} I was switched off.")),
        ("more_heads_with", ("{With_me} {backups_with} heads learned the pronoun paths (score "
                            "at least {bar}); {without_me} {backups_without}.")),
        ("more_heads_without", ("{Without_me} more heads held the pronoun paths: "
                               "{backups_without}, against {backups_with} {with_me}.")),
        ("same_heads", ("{backups_with} heads held the pronoun paths {with_me}, and as many "
                       "{without_me}.")),
        ("more_near_with", ("{With_me} {near_with} heads came within {near_share} of the "
                           "best tracker's pronoun score ({near_heads_with}); {without_me} "
                           "{near_without} ({near_heads_without}).")),
        ("more_near_without", ("{Without_me} {near_without} heads came within {near_share} of "
                              "the best tracker's pronoun score ({near_heads_without}), against "
                              "{near_with} {with_me}.")),
        ("same_near", ("{near_with} heads came within {near_share} of the best tracker's "
                      "pronoun score {with_me}, and as many {without_me}.")),
        ("cut_kept_with", ("Cut alike, {rate} of every thread, the Fabric trained {with_me} "
                          "still resolved {masked_with} of the pronouns; the one trained "
                          "{without_me}, {masked_without} (clean, {clean_with} and "
                          "{clean_without}).")),
        ("cut_kept_without", ("Cut alike, {rate} of every thread, the Fabric trained "
                             "{without_me} resolved {masked_without} of the pronouns and the "
                             "one trained {with_me} {masked_with}; I claim no more than that.")),
        ("cut_alike", ("Cut alike, {rate} of every thread, both Fabrics resolved the pronouns "
                      "about as well: {masked_with} {with_me}, {masked_without} "
                      "{without_me}.")),
        ("mask_costs_with", ("Under one of my masks the pronouns were still resolved "
                            "{dropped} of the time, against {clean} clean.")),
        ("mask_harmless", ("Under one of my masks the pronouns were still resolved {dropped} "
                          "of the time ({clean} clean): the backups held.")),
        ("mask_harmless_alone", ("Under one of my masks the pronouns were still resolved "
                                "{dropped} of the time ({clean} clean).")),
    ],
    # Voices with no absence: each run's journey, A then B.
    "gradient": [
        ("ratio_{run}", ("In run {run} I reached Layer {bottom} with {share} of the strength I "
                        "had at Layer {top}.")),
        ("diverged_{run}", "In run {run} I tore the Fabric at step {torn_step}."),
    ],
    "loss": [
        ("loss_{run}", "In run {run} I ended at {vof}× the entropy floor."),
        ("diverged_{run}", "In run {run} my verdict became non-finite at step {torn_step}."),
    ],
    "head": [
        ("bar_{run}", "In run {run} a head first crossed the pronoun bar at step {step}."),
        ("no_bar_{run}", "In run {run} no head ever crossed the pronoun bar."),
    ],
}
COMPONENTS = tuple(BANKS)
ABSENCE_VOICES = ("residual", "layernorm", "engineers", "adam", "dropout")


def speak(component: str, cmp: dict) -> list[dict]:
    """[{"fact", "text"}, …]: what `component` says of the two runs, in bank order."""
    facts = derive(component, cmp)
    bank = list(BANKS.get(component, []))
    if component in ABSENCE_VOICES and (absence(component, cmp) or lessened(component, cmp)):
        bank = bank[:1] + [p for p in SHARED_OUTCOME if p[0] == "lessened"] + bank[1:] + [
            p for p in SHARED_OUTCOME if p[0] != "lessened"]
    me = SELF.get(component, "me")
    selves = {"With_me": f"With {me}", "with_me": f"with {me}",
             "Without_me": f"Without {me}", "without_me": f"without {me}"}
    if "lessened" in facts:
        selves = {"With_me": f"With more of {me}", "with_me": f"with more of {me}",
                 "Without_me": f"With less of {me}", "without_me": f"with less of {me}"}
    said = []
    for fact, text in bank:
        names = [fact.format(run=r) for r in ("A", "B")] if "{run}" in fact else [fact]
        for name in dict.fromkeys(names):
            if name in facts:
                values = {"me": me, **selves, **facts[name]}
                said.append({"fact": name, "text": text.format(**values)})
    if said and component in ABSENCE_VOICES and cmp.get("mixed_settings"):
        # what a voice credits to itself is only its share where other settings moved too
        mine = "our" if me == "us" else "my"
        said.insert(1, {"fact": "mixed_settings", "text": (
            f"The two runs differ in more than {me} (" + ", ".join(cmp["mixed_settings"]) +
            f"), so what follows is not {mine} doing alone.")})
    if component in ABSENCE_VOICES and absence(component, cmp) is None and not said:
        said.insert(0, {"fact": "no_absence", "text": _no_absence(component, cmp)})
    return said


def default_component(cmp: dict) -> str:
    """The voice a comparison calls for: the switched component that differs, else the
    Gradient."""
    for key, component in (("residual", "residual"), ("layernorm", "layernorm"),
                           ("grad_clip", "engineers"), ("optimizer", "adam"),
                           ("dropout", "dropout"), ("attn_dropout", "dropout")):
        if key in cmp.get("differences", {}) and absence(component, cmp) is not None:
            return component
    return "gradient"


def _no_absence(component: str, cmp: dict) -> str:
    """Said when both runs had the component, or neither: there is no absence to speak of."""
    from fabric_cli.narrate.compare_facts import ABSENT

    gone = ABSENT[component](cmp["a"]["switches"])
    where = "absent from both runs" if gone else "present in both runs"
    return f"I was {where}, so I cannot tell what my absence did here."
