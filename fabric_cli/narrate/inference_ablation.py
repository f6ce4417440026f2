"""The pronoun head's account of a silencing (`fabric infer --ablate L.H`): for each pronoun,
what share of the guess the antecedent's own words kept once the heads were zeroed, and the
Fabric's choices that changed. Told by narrate.inference, in the same voice.

Whose silence it was (the tracker's own, or other heads') is said once, with the first
pronoun it touched; each later pronoun gives its own figures, never a second "Silence me".
"""

from __future__ import annotations

from fabric_cli.narrate.claims import Bank
from fabric_cli.narrate.format import and_list, head_name, pct, sig
from fabric_cli.narrate.story import Voice

WITHOUT_ME = Bank("share_fell", [  # {me}: "me", or "me and L0H2" when others went silent too
    ("Without {me}, the thread frays: for \"{pronoun}\" the {noun}'s own words fell from "
     "{before} of the guess to {after}."),
    ("Silence {me} and watch: after \"{pronoun}\" the share of the {noun}'s own words dropped "
     "from {before} to {after}."),
    ('Silence {me}, and after "{pronoun}" the {noun}\'s own words hold {after} of the guess '
     'instead of {before}.'),
    ('Without {me} the {noun}\'s words fell from {before} to {after} of the guess after '
     '"{pronoun}".'),
])
WITHOUT_ME_AGAIN = Bank("share_fell", [  # a later pronoun: my silence is already told
    'For "{pronoun}" the {noun}\'s own words fell from {before} of the guess to {after}.',
    'After "{pronoun}" the {noun}\'s words fell from {before} to {after}.',
    '"{pronoun}": the {noun}\'s own words fell from {before} to {after} of the guess.',
    'The {noun}\'s words after "{pronoun}" fell from {before} to {after}.',
])
CHOICE_CHANGED = Bank("share_fell", [
    ("The Fabric's first choice after \"{after}\" turned from \"{top_before}\" to "
    "\"{top_after}\"."),
    "After \"{after}\" it now says \"{top_after}\" where it said \"{top_before}\".",
    'After "{after}" the first choice changed: "{top_after}" instead of "{top_before}".',
    'The Fabric\'s pick after "{after}" went from "{top_before}" to "{top_after}".',
])
OWNER_CHANGED = [
    ("It now expects the {owner_after}'s words, not the {owner_before}'s: *the wrong noun's "
    "belongings.*"),
    "Its guess now belongs to the {owner_after} instead of the {owner_before}.",
    'Its guess now belongs to the {owner_after}, where it belonged to the {owner_before}.',
    "The next word now comes from the {owner_after}'s belongings, not the {owner_before}'s.",
]
STILL_LOOK = [
    "I still look from \"{pronoun}\" to \"{target}\" ({weight}); silenced, no one hears it.",
    "My gaze has not moved, \"{pronoun}\" to \"{target}\" at {weight}, but my voice is cut.",
    'Silenced, I still look from "{pronoun}" to "{target}" ({weight}); nothing carries it on.',
    'My gaze holds, "{pronoun}" to "{target}" at {weight}; my output is cut.',
]
# share_kept: the share fell by under five points (claims.SHARE_DROP), which is what these say
NOTHING_LOST = Bank("share_kept", [
    ("They silenced {heads}, and the figures moved by under five points: for \"{pronoun}\" "
     "the {noun}'s own words went from {before} to {after}. Another thread carries this."),
    ("Zeroing {heads} cost little here: \"{pronoun}\" kept {after} on the {noun}'s words "
     "(it was {before})."),
    ('With {heads} silenced, "{pronoun}" moved by under five points: {before} to {after} on '
     'the {noun}\'s words.'),
    ('{heads} went silent and cost little: the {noun}\'s words kept {after} (from {before}) '
     'after "{pronoun}".'),
])
NOTHING_LOST_AGAIN = Bank("share_kept", [  # a later pronoun: the silenced heads are named
    ('For "{pronoun}" too the figures moved by under five points: {before} to {after} on the '
     '{noun}\'s words.'),
    '"{pronoun}" also kept {after} on the {noun}\'s own words (it was {before}); it cost little.',
    'After "{pronoun}", {before} became {after}: again it cost little.',
    'And "{pronoun}" moved by under five points: {before} to {after} on the {noun}\'s words.',
])
KEPT_AFTER_A_FALL = Bank("share_kept", [  # a later pronoun, after one whose share fell
    ('For "{pronoun}" the figures moved by under five points: {before} to {after} on the '
     '{noun}\'s words.'),
    'After "{pronoun}" the {noun}\'s own words moved by under five points: {before} to {after}.',
    '"{pronoun}" kept {after} on the {noun}\'s words (it was {before}); that cost little.',
    'The {noun}\'s words after "{pronoun}" moved by under five points, {before} to {after}.',
])
# where the two figures print the same (99.5% and 99.5%), "went from A to B" reads as a slip
NOTHING_MOVED = Bank("figures_equal", [
    ("They silenced {heads}, and for \"{pronoun}\" the {noun}'s own words stayed at {after}. "
     "Another thread carries this."),
    'Zeroing {heads} left "{pronoun}" where it was: {after} on the {noun}\'s words.',
    'With {heads} silenced, "{pronoun}" stayed at {after} on the {noun}\'s words.',
    '{heads} went silent, and the {noun}\'s words kept {after} after "{pronoun}".',
])
NOTHING_MOVED_AGAIN = Bank("figures_equal", [
    'For "{pronoun}" too the {noun}\'s words stayed at {after}.',
    '"{pronoun}" also kept {after} on the {noun}\'s own words, as before.',
    'After "{pronoun}", the {noun}\'s words stayed at {after} as well.',
    'And "{pronoun}" stayed at {after} on the {noun}\'s words.',
])
OTHERS_SILENCED = [  # once, before the first pronoun the others' silence touched
    "They silenced {heads}, not me.",
    "{heads} {was} silenced, not I.",
    "They cut {heads} and left me speaking.",
    "The silence fell to {heads}; I still speak.",
]
OTHERS_SHARE = [  # each pronoun after that introduction: no second "not me"
    'For "{pronoun}" the {noun}\'s own words went from {before} to {after}.',
    'After "{pronoun}" the {noun}\'s words went from {before} to {after} of the guess.',
    'The {noun}\'s own words after "{pronoun}" went from {before} to {after}.',
    '"{pronoun}": {before} to {after} on the {noun}\'s words.',
]
OTHERS_SAME = Bank("figures_equal", [
    'For "{pronoun}" the {noun}\'s own words stayed at {after}.',
    'After "{pronoun}" the {noun}\'s words stayed at {after} of the guess.',
    'The {noun}\'s own words after "{pronoun}" stayed at {after}.',
    '"{pronoun}": {after} on the {noun}\'s words, as before.',
])


def ablation_paragraph(voice: Voice, doc: dict, me: tuple) -> str:
    after = doc["ablation"]
    silenced = [tuple(h) for h in after["heads"]]
    heads = and_list([head_name(int(h[0]), int(h[1])) for h in silenced])
    parts = []
    # whose silence it was, said once: with the first pronoun whose share fell ("fell") or
    # held ("kept"), or before the first the others' silence touched ("others")
    introduced: str | None = None
    for i, (a, b) in enumerate(zip(doc["resolutions"], after["resolutions"], strict=False)):
        noun = (a.get("antecedent") or {}).get("token") or a.get("expects_owner")
        if not noun:
            continue
        before_m, after_m = a["owner_mass"].get(noun), b["owner_mass"].get(noun)
        if before_m is None or after_m is None:
            continue
        others = [head_name(int(h[0]), int(h[1])) for h in silenced if h != me]
        values = {"pronoun": a["pronoun"], "noun": noun, "before": pct(before_m),
                  "after": pct(after_m), "heads": heads,
                  "me": and_list(["me", *others])}
        fell = voice.claim("share_fell", before=before_m, after=after_m)
        kept = voice.claim("share_kept", before=before_m, after=after_m)
        moved = b["expects_owner"] != a["expects_owner"]
        if me in silenced and (fell or moved):
            if fell:
                bank = WITHOUT_ME_AGAIN if introduced else WITHOUT_ME
                parts.append(voice.say(f"without{i}", bank, claim=fell, **values))
                introduced = introduced or "fell"
            if moved and b["expects_owner"]:
                parts.append(voice.say(f"owner{i}", OWNER_CHANGED, owner_before=a["expects_owner"],
                                       owner_after=b["expects_owner"]))
            if not b["heard"] and tuple(b["head"]) == me:
                parts.append(voice.say(f"still{i}", STILL_LOOK, pronoun=a["pronoun"],
                                       target=b["attended"]["token"],
                                       weight=sig(b["attended"]["weight"])))
        elif me in silenced and kept:
            same = voice.claim("figures_equal", before=values["before"], after=values["after"])
            if introduced == "fell":  # "too" and "also" would say the first one held as well
                bank, claim = (OTHERS_SAME, same) if same else (KEPT_AFTER_A_FALL, kept)
            elif same:
                bank, claim = (NOTHING_MOVED_AGAIN if introduced else NOTHING_MOVED), same
            else:
                bank, claim = (NOTHING_LOST_AGAIN if introduced else NOTHING_LOST), kept
            parts.append(voice.say(f"nothing{i}", bank, claim=claim, **values))
            introduced = introduced or "kept"
        elif me not in silenced:
            if not introduced:
                parts.append(voice.say("others", OTHERS_SILENCED, heads=heads,
                                       was="was" if len(silenced) == 1 else "were"))
                introduced = "others"
            same = voice.claim("figures_equal", before=values["before"], after=values["after"])
            parts.append(voice.say(f"others{i}", OTHERS_SAME, claim=same, **values) if same
                         else voice.say(f"others{i}", OTHERS_SHARE, **values))
    for i, (a, b) in enumerate(zip(doc["predictions"], after["predictions"], strict=False)):
        old = a["top"][0]
        kept = next((t["prob"] for t in b["top"] if t["token"] == old["token"]), 0.0)
        # A swap between two near-equal guesses is not a loss; say it only when it cost.
        cost = voice.claim("share_fell", before=old["prob"], after=kept)
        if old["token"] != b["top"][0]["token"] and cost:
            parts.append(voice.say(f"choice{i}", CHOICE_CHANGED, claim=cost, after=a["after"],
                                   top_before=a["top"][0]["token"],
                                   top_after=b["top"][0]["token"]))
    return " ".join(parts)
