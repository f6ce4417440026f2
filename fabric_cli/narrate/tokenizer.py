"""The Tokenizer's voice: the first hand on every sentence, cutting it into threads.

Numbers: the vocabulary (its size counted from run_start.vocab, d_vocab), the story sentences
and their tokens (from the probe snapshots), tokens per batch at the first step, n_ctx.
"""

from __future__ import annotations

from fabric_cli.narrate.facts import RunFacts
from fabric_cli.narrate.format import count, step
from fabric_cli.narrate.story import Chapter, Story, Voice
from fabric_cli.typeset import quoted

SPEAKER = "the Tokenizer"

TITLES = ["The Tokenizer: Cutting the Thread", "The Tokenizer: Where Every Sentence Begins",
    'The Tokenizer: The First Hand',
    'The Tokenizer: Pieces Small Enough to Weave',
]
EPIGRAPH = [
    "I am the Tokenizer. Nothing reaches the Fabric that has not passed through my hands.",
    "I am the Tokenizer: I cut language into pieces small enough to weave.",
    'I am the Tokenizer. Before anything learns, I cut.',
    'I am the Tokenizer: the same cut, every time, for every sentence.',
]
VOCAB = [
    ("I know {n} tokens, no more. Three are mine alone: {specials}. The rest are the "
    "words of this small language, lower-case, punctuation split off like loose ends. *If I "
    "do not know a word, the Fabric never will.*"),
    ("My whole vocabulary is {n} tokens, the special ones {specials} among them. Every "
    "sentence the Fabric will ever read is spelled in these."),
    '{n} tokens make my whole world, among them {specials}. Lower-case words, punctuation split away: that is all the Fabric will ever see.',
    'I hold {n} tokens, {specials} among them. Every word outside them becomes <unk>.',
]
# {n} and {tokens}: the sentence's own tokens, the <bos> that opens every sequence apart (as
# `fabric infer` counts them: "cut it into 11 threads")
STORY = [
    ("The story sentence *{sentence}* becomes {n} tokens in my hands, after the <bos> that "
     "opens it: {tokens}."),
    "I cut *{sentence}* into {n} pieces and set <bos> before them: {tokens}.",
    "*{sentence}* In my hands: <bos>, then {n} tokens, {tokens}.",
    "From *{sentence}* I made {n} threads, with <bos> set ahead of them: {tokens}.",
]
UNKNOWN = ["In it, {n} word(s) were strangers to me and became <unk>.",
    '{n} word(s) here were not mine to know; they became <unk>.',
    'I did not know {n} word(s) of it: <unk>, blank threads.',
    '<unk> stands in for {n} word(s) I was never taught.',
]
BATCH = [
    ("At step {at} I fed the Fabric a batch of {batch} sentences holding {tokens} real "
    "targets, every sequence opened with <bos> and padded to at most {n_ctx} places."),
    ("Step {at}: {batch} sentences, {tokens} tokens to predict, none longer than {n_ctx} "
    "positions once <bos> leads the way."),
    'My first batch, step {at}: {batch} sentences, {tokens} targets, each sequence led by <bos> and no longer than {n_ctx}.',
    'At step {at} I handed over {batch} sentences, {tokens} words to predict, at most {n_ctx} positions each.',
]
LAST_BATCH = [
    ("By step {at} I had handed over the last batch: {tokens} targets. *The same words, cut "
    "the same way, every time. That is my whole virtue.*"),
    ("My last batch went out at step {at}, {tokens} targets in it. I never change; that is why "
    "the Fabric can learn from me."),
    'The last batch, step {at}, held {tokens} targets. *Cut the same way as the first.*',
    'At step {at} my last {tokens} targets went up the loom. *I do not learn; I stay the same.*',
]
STORM = [("Even at step {at}, when the Fabric tore, my pieces were whole; the tearing was not "
         "mine."), "At step {at} the Fabric tore. My cuts were the same as ever.",
    'At step {at} the Fabric broke, but not my cut: every piece was whole.',
    'The tear at step {at} was above me; my tokens were as ever.',
]

MOMENT_LINES: dict[str, list[str]] = {}


def _specials(vocab: list[str]) -> str:
    special = [t for t in vocab if t.startswith("<") and t.endswith(">")]
    return ", ".join(special) if special else "none"


def tell(run: RunFacts, voice: Voice, **_: object) -> Story:
    vocab = run.vocab
    paras = [voice.say("vocab", VOCAB, n=count(len(vocab) or run.model.get("d_vocab", 0)),
                       specials=_specials(vocab))]
    chapters = [Chapter("The First Cut", paras)]
    paras = []
    for i, snap in enumerate(run.snapshots(run.last_probe or run.first_probe)):
        tokens = [str(t) for t in snap.get("tokens") or []]
        if tokens[:1] == ["<bos>"]:
            tokens = tokens[1:]
        if not tokens:
            continue
        paras.append(voice.say(f"story:{i}", STORY, sentence=quoted(snap.get("sentence", "")),
                               n=count(len(tokens)), tokens=", ".join(f'"{t}"' for t in tokens)))
        unknown = tokens.count("<unk>")
        if unknown:
            paras.append(voice.say(f"unk:{i}", UNKNOWN, n=count(unknown)))
    chapters.append(Chapter("The Story Sentences", paras))
    first, last = run.first_step, run.last_step
    paras = []
    if first is not None:
        paras.append(voice.say("batch", BATCH, at=step(first["step"]),
                               batch=count(run.training.get("batch_size", 0)),
                               tokens=count(first.get("tokens", 0)),
                               n_ctx=count(run.model.get("n_ctx", 0))))
    if last is not None and last is not first:
        paras.append(voice.say("last", LAST_BATCH, at=step(last["step"]),
                               tokens=count(last.get("tokens", 0))))
    diverged = run.first_moment("diverged")
    if diverged is not None:
        paras.append(voice.say("storm", STORM, at=step(diverged["step"])))
    chapters.append(Chapter("Batches", paras))
    return Story(voice.pick("title", TITLES), "tokenizer", [c for c in chapters if c.paragraphs],
                 voice.pick("epigraph", EPIGRAPH))
