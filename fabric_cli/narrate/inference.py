"""The pronoun head tells one inference, from the numbers `fabric infer` measured.

Input is the inference document (`fabric infer --json`, docs/infer-json.md): plain dicts and
lists. Every number in the prose is one of the document's, written with `narrate.format`;
nothing is said that the numbers do not show (a head claims a loss under ablation only when
the probability the Fabric puts on the antecedent's own words fell, or its choice changed).
The phrasing is chosen deterministically from the sentence, so the same sentence on the same
run is told in the same words.
"""

from __future__ import annotations

import re
import zlib

from fabric_cli.narrate.claims import Bank
from fabric_cli.narrate.format import head_name, pct, sig
from fabric_cli.narrate.inference_ablation import ablation_paragraph
from fabric_cli.narrate.story import Told, Voice
from fabric_cli.typeset import as_typed, in_quotes

COMPONENT = "head"
_PLURAL_POSSESSIVE = re.compile(r"\b(\w+s)'s\b")
_FINISHED = re.compile(r"[.!?\u2026][\"')\]\u201d\u2019]*$")  # ends a sentence (maybe in quotes)

OPENING = [
    "I am Head {head} of Layer {layer}. You handed me *{sentence}*",
    ("*{sentence}* The Tokenizer cut it into {n} threads and passed them up to me, Head {head} "
    "of Layer {layer}."),
    "Head {head} of Layer {layer}, awake for one sentence: *{sentence}*",
    'Head {head} of Layer {layer}, reading once more: *{sentence}*',
]
PARTNER = [
    ("I do not work alone: {others} {verb} this role with me, and for each pronoun the surer "
    "of us speaks."),
    "{others} {verb} my calling; where one of us sees more clearly, that one answers.",
    '{others} {verb} this work with me; for each pronoun the surer gaze answers.',
    'I am not the only one: {others} {verb} the role, and whichever of us is surer speaks.',
]
UNKNOWN = [
    "The Tokenizer did not know {words}; {it} reached me as <unk>, a thread with no colour.",
    "{words} {was} not in the Tokenizer's vocabulary, so {it} arrived as <unk>, blank to me.",
    '{words} {was} unknown to the Tokenizer; {it} came to me as <unk>.',
    'The Tokenizer had never seen {words}, so {it} reached me blank, as <unk>.',
]
CORRECT = [
    ("From \"{pronoun}\" I reached back to \"{target}\" and laid {weight} of my attention "
    "there; the runner-up, {runner}, got {runner_weight}. The agreement is on my side: "
    "\"{target}\" is the only noun here that takes \"{pronoun}\"."),
    ("\"{pronoun}\" pulled my query back to \"{target}\" with weight {weight} (next came "
    "{runner} at {runner_weight}). No other noun before it agrees with \"{pronoun}\"."),
    'From "{pronoun}" my heaviest weight, {weight}, went to "{target}"; {runner} came next at {runner_weight}. Only "{target}" agrees with "{pronoun}" here.',
    '"{pronoun}": {weight} of my attention on "{target}", {runner_weight} on the runner-up {runner}. The agreement names "{target}" alone.',
]
TAUT = Bank("clear_margin", ["*A thread snapped taut.*", "*A knot tied fast.*",
    '*Bound fast.*',
    '*The right thread, pulled tight.*',
])
CORRECT_OTHER = [
    ("For \"{pronoun}\" it was {who}, not I, who answered: its gaze fell on \"{target}\" with "
    "weight {weight}, and the agreement names \"{target}\" too."),
    ("{who} took \"{pronoun}\": {weight} of its attention on \"{target}\", the one noun that "
    "agrees."),
    '"{pronoun}" was {who}\'s to answer: {weight} of its gaze on "{target}", the noun that agrees.',
    'For "{pronoun}", {who} spoke: "{target}", weight {weight}, and the agreement says the same.',
]
NEAREST = [
    "The lazy guess, the nearest noun, would have said \"{nearest}\".",
    "Picking the closest noun would have chosen \"{nearest}\", and been wrong.",
    'The nearest noun, "{nearest}", would have been the lazy answer.',
    'The closest noun was "{nearest}"; it was not the one.',
]
WRONG = Bank("wrong", [
    ("From \"{pronoun}\" my strongest weight, {weight}, fell on \"{target}\". The agreement "
    "points to \"{antecedent}\" instead. *I missed.*"),
    ("\"{pronoun}\" should have bound to \"{antecedent}\"; my heaviest pull, {weight}, went "
    "to \"{target}\". *A dropped stitch.*"),
    'My heaviest weight from "{pronoun}", {weight}, landed on "{target}"; the agreement says "{antecedent}". *I missed.*',
    '"{pronoun}" means "{antecedent}", but {weight} of my attention went to "{target}". *A dropped stitch.*',
])
NO_NOUN = [
    ("From \"{pronoun}\" I looked hardest at \"{target}\" ({weight}), but no noun before it "
    "in this sentence takes \"{pronoun}\". There is nothing here to bind it to, and I will "
    "not invent one."),
    ("\"{pronoun}\" finds no noun that agrees with it in this sentence. My attention settled "
    "on \"{target}\" with {weight}, which is a habit, not an answer."),
    'No noun before "{pronoun}" agrees with it. My gaze rested on "{target}" ({weight}), but there is nothing here to bind.',
    '"{pronoun}" has no agreeing noun in this sentence; I looked at "{target}" with {weight}, and bound nothing.',
]
# the same three verdicts when another tracker answered the pronoun: its figures, not mine
WRONG_OTHER = Bank("wrong", [
    ("For \"{pronoun}\" it was {who} that answered, and its heaviest weight, {weight}, fell on "
     "\"{target}\"; the agreement points to \"{antecedent}\". *A dropped stitch.*"),
    "{who} took \"{pronoun}\" and missed: {weight} on \"{target}\", where the agreement says \"{antecedent}\".",
    '"{pronoun}" was {who}\'s to answer; {weight} of its gaze went to "{target}", not to "{antecedent}".',
    'For "{pronoun}", {who} spoke: "{target}", weight {weight}. The agreement says "{antecedent}". *Missed.*',
])
AMBIGUOUS_OTHER = [
    ("{nouns} all take \"{pronoun}\"; {who} answered it, leaning to \"{target}\" with "
     "{weight}. The grammar cannot say whether that is right."),
    '"{pronoun}" could be {nouns}; {who}, whose turn it was, put {weight} on "{target}".',
    '{who} took "{pronoun}", which agrees with {nouns} alike: {weight} on "{target}".',
    'For "{pronoun}", open between {nouns}, {who} leaned to "{target}" ({weight}).',
]
NO_NOUN_OTHER = [
    ("\"{pronoun}\" was {who}'s to answer. It looked hardest at \"{target}\" ({weight}), but "
     "no noun before it in this sentence takes \"{pronoun}\"; there is nothing to bind."),
    '{who} took "{pronoun}": {weight} on "{target}", though no noun here agrees with it.',
    'No noun before "{pronoun}" agrees with it. {who}, whose turn it was, rested on "{target}" ({weight}).',
    'For "{pronoun}", {who} looked at "{target}" with {weight}, and found nothing that agrees.',
]
AMBIGUOUS = [
    ("{nouns} all take \"{pronoun}\", so the sentence does not decide between them. I leaned "
    "to \"{target}\" with {weight}; the grammar cannot say whether that is right."),
    ("\"{pronoun}\" could be {nouns}: the agreement allows each. My heaviest weight, {weight}, "
    "went to \"{target}\". *A guess, and I know it.*"),
    '"{pronoun}" agrees with {nouns} alike; the grammar cannot choose. I leaned to "{target}" ({weight}).',
    'Both readings are open: {nouns} each take "{pronoun}". My heaviest pull, {weight}, was on "{target}".',
]
EXPECTS = [
    ("The Fabric heard it: {mass} of its guess for the next word belongs to the {owner}'s own "
    "words, and its first choice is \"{top}\" ({top_p})."),
    ("Downstream the guess followed: \"{top}\" at {top_p}, and {mass} of the whole guess on "
    "words that belong to the {owner}."),
    'Downstream, {mass} of the Fabric\'s next-word guess went to the {owner}\'s own words; first choice "{top}" ({top_p}).',
    'The guess that followed: "{top}" first, at {top_p}, and {mass} of it on words that belong to the {owner}.',
]
END_GUESS = [
    "At the end it expects \"{top}\" ({top_p}).",
    "Where your sentence stops, the Fabric would say \"{top}\" next, with {top_p}.",
    'Its next word, if you let it go on: "{top}" ({top_p}).',
    'At your sentence\'s end it would say "{top}", with {top_p}.',
]
CONTINUES = [
    "Left to itself it would go on: *{words}*",
    "Given the shuttle, it weaves on: *{words}*",
    'Let it weave on, and it says: *{words}*',
    'Left running, it continues: *{words}*',
]
CLOSES = [  # the continuation is punctuation only: "…." would read as an ellipsis
    'Left to itself it would close the sentence there, with "{mark}".',
    'Given the shuttle, it would only add "{mark}" and stop.',
    'Let it weave on, and it ends the sentence: "{mark}".',
    'Left running, it closes the sentence with "{mark}".',
]
ENDED = [
    "The sentence ends with \".\", where every sentence I ever read ended; nothing follows.",
    "After \".\" there is nothing: no sentence I was taught went past it.",
    'It ends at ".", as every sentence I learned from did.',
    '"." closes it; nothing I learned goes past that.',
]
NO_PRONOUN = [
    ("There is no pronoun here for me to bind. My strongest pull from the last word, "
    "\"{query}\", went to \"{target}\" ({weight})."),
    ("No pronoun, so no work of mine. From \"{query}\" I drifted to \"{target}\" with "
    "{weight}, out of habit."),
    'No pronoun here, so nothing to bind. From the last word, "{query}", my gaze went to "{target}" ({weight}).',
    'Without a pronoun I have no work; from "{query}" I rested on "{target}", {weight}.',
]
UNPROVEN = [
    ("The probes found me the surest of the heads at this, though no ablation has proven that "
     "the Fabric needs me."),
    'The probes found me surest at this, though no ablation has proven the Fabric needs me.',
    "I am the probes' best guess for this work; no ablation has proven it.",
    'Surest by the probes, unproven by ablation.',
]
NO_TRACKER = [
    "No head of this Fabric was found tracking pronouns, so none can tell this sentence.",
    'This Fabric has no pronoun head that the probes could find; no one can tell this sentence.',
    'No head here tracks pronouns, so no head can tell you this sentence.',
    'The probes found no pronoun tracker in this Fabric.',
]


def _set_off(sentence: str) -> str:
    """The sentence in quotes, as typed; one that stops without a full stop, question or
    exclamation mark gets one after its closing quote, so the prose around it still reads:
    “Hello world”. (the user's own text is left as it was)."""
    quoted = in_quotes(sentence)
    return quoted if _FINISHED.search(sentence) else quoted + "."


def _cut_short(words: str) -> str:
    """A continuation in quotes; one the context cut off mid-sentence trails off (…)."""
    return in_quotes(words if _FINISHED.search(words) else words + "\u2026")


def _quote_list(words: list[str]) -> str:
    quoted = [f"\"{w}\"" for w in words]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _name(head: list[int] | tuple[int, int]) -> str:
    return head_name(int(head[0]), int(head[1]))


def tell_inference(doc: dict) -> list[str]:
    """Paragraphs in the tracker's voice; *inner lines* in asterisks (shown in italics)."""
    return inference_account(doc)[0]


def inference_account(doc: dict) -> tuple[list[str], list[Told]]:
    """The paragraphs and every phrase told in them, with the claim each stood on."""
    sentence = str(doc.get("sentence", ""))
    voice = Voice(zlib.crc32(sentence.encode("utf-8", "replace")), "head-infer")
    # the language's plural nouns end in s: "the scientists' own words", not "scientists's"
    return [_PLURAL_POSSESSIVE.sub(r"\1'", p) for p in _tell(doc, voice, sentence)], voice.told


def _tell(doc: dict, voice: Voice, sentence: str) -> list[str]:
    trackers = [tuple(h) for h in doc.get("trackers", {}).get("heads", [])]
    if not trackers:
        return [voice.say("none", NO_TRACKER)]
    me = trackers[0]
    tokens = doc["tokens"]
    paragraphs = []
    opening = [voice.say("open", OPENING, head=me[1], layer=me[0],
                         sentence=_set_off(sentence.strip()),
                         n=len(tokens) - 1)]
    if doc.get("trackers", {}).get("source") == "probe":
        opening.append(voice.say("unproven", UNPROVEN))
    if len(trackers) > 1:
        others = [_name(h) for h in trackers[1:]]
        opening.append(voice.say("partner", PARTNER, others=" and ".join(others),
                                 verb="shares" if len(others) == 1 else "share"))
    unknown = list(dict.fromkeys(doc.get("unknown_words", [])))
    if unknown:
        many = len(unknown) > 1
        opening.append(voice.say("unknown", UNKNOWN, words=_quote_list(unknown),
                                 it="they" if many else "it", was="were" if many else "was"))
    paragraphs.append(" ".join(opening))
    predictions = {p["position"]: p for p in doc.get("predictions", [])}
    for i, r in enumerate(doc.get("resolutions", [])):
        paragraphs.append(_pronoun(voice, i, r, me, predictions.get(r["position"])))
    if not doc.get("resolutions"):
        paragraphs.append(_no_pronoun(voice, doc, me))
    paragraphs.append(_ending(voice, doc))
    if doc.get("ablation"):
        paragraphs.append(ablation_paragraph(voice, doc, me))
    return [p for p in paragraphs if p]


def _pronoun(voice: Voice, i: int, r: dict, me: tuple, prediction: dict | None) -> str:
    values = {
        "pronoun": r["pronoun"], "target": r["attended"]["token"],
        "weight": sig(r["attended"]["weight"]),
        # the runner-up quoted; the pronoun's own position is itself, not a second "their"
        "runner": f'"{r["runner_up"]["token"]}"' + (
            " itself" if r["runner_up"].get("position") == r.get("position") else ""),
        "runner_weight": sig(r["runner_up"]["weight"]), "who": _name(r["head"]),
    }
    verdict = r["verdict"]
    mine = tuple(r["head"]) == tuple(me)  # else another tracker answered: its figures
    ante = (r.get("antecedent") or {}).get("token")
    parts = []
    if verdict == "correct":
        bank = CORRECT if mine else CORRECT_OTHER
        parts.append(voice.say(f"correct{i}", bank, **values))
        taut = voice.claim("clear_margin", weight=r["attended"]["weight"],
                           runner_up=r["runner_up"]["weight"])
        if taut and bank is CORRECT:
            parts.append(voice.pick(f"taut{i}", TAUT, claim=taut))
        nearest = (r.get("nearest_noun") or {}).get("token")
        if nearest and nearest != ante:
            parts.append(voice.say(f"nearest{i}", NEAREST, nearest=nearest))
    elif verdict == "wrong":
        missed = voice.claim("wrong", target=values["target"], antecedent=ante)
        if missed:
            parts.append(voice.say(f"wrong{i}", WRONG if mine else WRONG_OTHER, claim=missed,
                                   antecedent=ante, **values))
    elif verdict == "ambiguous":
        nouns = _quote_list([n["token"] for n in r["agreeing_nouns"]])
        parts.append(voice.say(f"ambiguous{i}", AMBIGUOUS if mine else AMBIGUOUS_OTHER,
                               nouns=nouns, **values))
    else:
        parts.append(voice.say(f"none{i}", NO_NOUN if mine else NO_NOUN_OTHER, **values))
    owner = r.get("expects_owner")
    if owner and prediction and verdict in ("correct", "wrong", "ambiguous"):
        top = prediction["top"][0]
        parts.append(voice.say(f"expects{i}", EXPECTS, owner=owner,
                               mass=pct(r["owner_mass"][owner]), top=top["token"],
                               top_p=pct(top["prob"])))
    return " ".join(parts)


def _no_pronoun(voice: Voice, doc: dict, me: tuple) -> str:
    pattern = doc["attention"].get(f"{me[0]}.{me[1]}")
    tokens = doc["tokens"]
    if not pattern:
        return ""
    q = len(tokens) - 1
    row = pattern[q][: q + 1]
    k = max(range(len(row)), key=lambda j: row[j])
    return voice.say("nopron", NO_PRONOUN, query=tokens[q], target=tokens[k], weight=sig(row[k]))


def _ending(voice: Voice, doc: dict) -> str:
    parts = []
    tokens = doc["tokens"]
    last = len(tokens) - 1
    end = next((p for p in doc.get("predictions", []) if p["position"] == last), None)
    resolved_here = any(r["position"] == last for r in doc.get("resolutions", []))
    if end is not None and not resolved_here:
        top = end["top"][0]
        parts.append(voice.say("end", END_GUESS, top=top["token"], top_p=pct(top["prob"])))
    continuation = doc.get("continuation", {})
    if continuation.get("stopped") == "ended":
        parts.append(voice.say("ended", ENDED))
    elif continuation.get("tokens") and not any(
            t[:1].isalnum() for t in continuation["tokens"]):
        parts.append(voice.say("cont", CLOSES, mark="".join(continuation["tokens"])))
    elif continuation.get("tokens"):
        parts.append(voice.say("cont", CONTINUES, words=_cut_short(
            "\u2026" + as_typed(continuation["tokens"], capital=False))))
    return " ".join(parts)
