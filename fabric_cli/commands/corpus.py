"""`fabric corpus`: sentences the Fabric will read, with what the grammar knows about them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.text import Text

from fabric_cli.commands._common import cli_errors, literal, literal_text, stdout_console
from fabric_cli.errors import FabricError
from fabric_cli.views.palette import ACCENT, MUTED

if TYPE_CHECKING:  # the corpus loads when the command runs, not at start-up
    from fabric_cli.language.corpus import Corpus, Sentence

# Parts of speech by colour; the tag row under each sentence says the same without colour.
POS_STYLES = {
    "NOUN": "bold #5fd7ff",
    "PRON": "bold #ff6fae",
    "VERB": "#afd75f",
    "ADJ": "#d7af5f",
    "ADV": "#d7af5f",
    "CONJ": "#b48cff",
    "PREP": "#b48cff",
    "DET": MUTED,
    "PUNCT": MUTED,
    "AUX": "#afd75f",
    "PART": MUTED,
}
MAX_SENTENCES = 1000


def sentence_lines(number: int, sentence: Sentence, width: int) -> list[Text]:
    """The sentence with a tag under each word, then its pronoun -> antecedent arrows, its
    objects' verbs and the nouns its words agree with.

    A sentence wider than the terminal is broken between words into several word/tag line
    pairs, each indented under the number, so no word loses its tag."""
    margin = f"{number:>3}  "
    cells = [max(len(literal(w)), len(t)) for w, t in zip(sentence.words, sentence.pos,
                                                          strict=True)]
    room = max(1, width - len(margin))
    chunks: list[list[int]] = [[]]
    used = 0
    for k, cell in enumerate(cells):  # greedy: a word joins the line while it fits
        if chunks[-1] and used + 1 + cell > room:
            chunks.append([])
            used = 0
        used += (1 if chunks[-1] else 0) + cell
        chunks[-1].append(k)
    lines: list[Text] = []
    for i, chunk in enumerate(chunks):
        words, tags = Text(margin if i == 0 else " " * len(margin)), Text(" " * len(margin))
        for j, k in enumerate(chunk):
            tag = sentence.pos[k]
            style = POS_STYLES.get(tag, "")
            gap = "" if j == len(chunk) - 1 else " "
            words.append(literal(sentence.words[k]).ljust(cells[k] if gap else 0) + gap,
                         style=style)
            tags.append((tag.ljust(cells[k]) if gap else tag) + gap, style=f"dim {style}".strip())
        lines += [words, tags]
    arrows = Text(" " * len(margin))
    for i in sentence.pronoun_positions():
        j = sentence.antecedent[i]
        if len(arrows) > len(margin):
            arrows.append("   ")
        arrows.append(literal(sentence.words[i]), style=POS_STYLES["PRON"])
        arrows.append(f"@{i + 1} → ", style=ACCENT)
        arrows.append(literal(sentence.words[j]), style=POS_STYLES["NOUN"])
        arrows.append(f"@{j + 1}", style=MUTED)
    if len(arrows) > len(margin):
        lines.append(arrows)
    # what the verb and noun heads look back to: an object's verb, and the noun a word
    # agrees with ("sing" with "children", "herself" with "nurse")
    for label, positions, cue in (
            ("object", sentence.object_positions(), sentence.object_verb),
            ("agrees", sentence.agreeing_positions(), sentence.subject_noun)):
        if not positions:
            continue
        row = Text(" " * len(margin))
        row.append(f"{label}: ", style=MUTED)
        for n, i in enumerate(positions):
            j = cue[i]
            row.append(("   " if n else "") + literal(sentence.words[i]),
                       style=POS_STYLES.get(sentence.pos[i], ""))
            row.append(f"@{i + 1} {'of' if label == 'object' else 'with'} ", style=MUTED)
            row.append(literal(sentence.words[j]), style=POS_STYLES.get(sentence.pos[j], ""))
            row.append(f"@{j + 1}", style=MUTED)
        lines.append(row)
    return lines


def corpus_view(corpus: Corpus, sentences: list[Sentence], split: str, width: int) -> Group:
    scenario = corpus.scenario
    parts: list[Text] = []
    head = Text()
    head.append(literal(scenario.name), style="bold")
    head.append(" — ")
    head.append_text(literal_text(scenario.description))
    parts.append(head)
    pairs = ", ".join(f"{a}+{b}" for a, b in corpus.heldout_pairs())
    split_name = "training" if split == "train" else "held-out"
    parts.append(
        literal_text(
            f"a sample of {len(sentences)} {split_name} sentences (the language makes as many "
            f"as training asks) · vocabulary {len(corpus.tokenizer)} tokens · "
            f"held-out noun pairs (never together in training): {pairs}",
            style=MUTED,
        )
    )
    parts.append(Text(""))
    for k, sentence in enumerate(sentences, start=1):
        parts.extend(sentence_lines(k, sentence, width))
        parts.append(Text(""))
    floor = corpus.floor_details()
    line = Text("Entropy floor", style="bold")
    line.append(" (the lowest loss any model could reach on this language): ")
    line.append(f"train {floor['train'].nats_per_token:.3f}", style="bold")
    line.append(" · ")
    line.append(f"held-out {floor['heldout'].nats_per_token:.3f}", style="bold")
    line.append(" nats/token")
    parts.append(line)
    parts.append(
        Text(
            f"({floor['train'].sentence_entropy:.2f} nats per training sentence over "
            f"{floor['train'].mean_length:.2f} tokens on average; a pronoun's arrow points to its "
            "antecedent; object: a verb's object and the verb that chose it; agrees: a word "
            "and the noun its form agrees with; @k is the word's position)",
            style=MUTED,
        )
    )
    return Group(*parts)


@cli_errors
def corpus(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            "-s",
            help="A bundled scenario name (see `fabric scenarios`) or a .toml path.",
        ),
    ] = "pronouns",
    n: Annotated[int, typer.Option("-n", "--n", help="How many sentences to show.")] = 10,
    seed: Annotated[
        int, typer.Option(help="Which sentences: the same seed shows the same ones.")
    ] = 0,
    split: Annotated[
        str,
        typer.Option(
            help="train (pairs seen in training) or heldout (noun pairs the Fabric never sees).",
        ),
    ] = "train",
) -> None:
    """Show sentences the Fabric will read: parts of speech, each pronoun's antecedent, and
    the entropy floor (the lowest loss any model could reach).

    \b
    Examples:
      fabric corpus -n 5
      fabric corpus --split heldout --seed 3
      fabric corpus --scenario tiny -n 3
    """
    if not 1 <= n <= MAX_SENTENCES:
        raise FabricError(f"-n: expected a number of sentences from 1 to {MAX_SENTENCES}, got {n}")
    if split not in ("train", "heldout"):
        raise FabricError(f"--split: expected train or heldout, got {split!r}")
    if seed < 0:
        raise FabricError(f"--seed: expected a non-negative integer, got {seed}")
    import numpy as np

    from fabric_cli.language.corpus import Corpus
    from fabric_cli.scenario import load_scenario

    the_corpus = Corpus(load_scenario(scenario))
    sentences = the_corpus.sample(np.random.default_rng(seed), n, split)
    console = stdout_console()
    console.print(corpus_view(the_corpus, sentences, split, console.width))
