"""The corpus: annotated sentences of a scenario, and the batches the Fabric reads.

Alignment of a batch (B sentences, width n_ctx):

    tokens[i]  = <bos> w1 w2 ... wn <pad> ...        (cut to n_ctx)
    targets[i] = w1   w2 ... wn  -1   -1  ...        (cut to n_ctx)

so targets[:, t] is the word that follows tokens[:, t]; "." is the last target and padding
targets are -1 (ignored by the loss). Word index k of a Sentence sits at token position k + 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from fabric_cli.errors import FabricError
from fabric_cli.language.floor import ExactModel, Floor, entropy_floor
from fabric_cli.language.floors import known_floors, language_key
from fabric_cli.language.generator import SPLITS, CompiledGrammar, split_pairs
from fabric_cli.language.tokenizer import BOS, PAD, Tokenizer, split_words
from fabric_cli.nn.config import ModelConfig

if TYPE_CHECKING:
    from fabric_cli.scenario import Scenario

# Floors are exact but cost seconds for the default language; compute each language's once
# per process, and not at all for the bundled languages (language/floors.py).
_FLOOR_CACHE: dict[str, dict[str, Floor]] = {}


@dataclass(frozen=True)
class Sentence:
    words: list[str]  # lower-case, punctuation split: ["the", "professor", ..., "."]
    pos: list[str]  # part of speech of each word: DET NOUN PRON VERB ADJ ADV CONJ PREP PUNCT ...
    antecedent: list[int]  # for a pronoun, the index in words of its antecedent noun; else -1
    nouns: tuple[str, ...]  # the candidate nouns, in order of appearance
    noun_positions: tuple[int, ...]  # index in words of each candidate noun's first mention
    split: str = "train"  # "train", "heldout", or "story" for annotated free text
    agreement: list[str | None] = field(default_factory=list)  # pronouns' and nouns' agreement
    # for a frame verb's object, the index of its verb (what a verb head looks back to)
    object_verb: list[int] = field(default_factory=list)
    # for a word agreeing in number with its noun ("the dog near the kings WAITS"), the index
    # of that noun (what a noun head looks back to)
    subject_noun: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def text(self) -> str:
        from fabric_cli.language.tokenizer import join_words

        return join_words(self.words)

    def pronoun_positions(self) -> list[int]:
        """Indices of the pronouns whose antecedent is known."""
        return [i for i, a in enumerate(self.antecedent) if a >= 0]

    def object_positions(self) -> list[int]:
        """Indices of the objects whose verb chose them."""
        return [i for i, v in enumerate(self.object_verb) if v >= 0]

    def agreeing_positions(self) -> list[int]:
        """Indices of the words that agree in number with a noun further back."""
        return [i for i, n in enumerate(self.subject_noun) if n >= 0]

    def verb_positions(self) -> list[int]:
        return [i for i, tag in enumerate(self.pos) if tag == "VERB"]

    def noun_positions_all(self) -> list[int]:
        """Every NOUN token: the candidate nouns and the attributes they own."""
        return [i for i, tag in enumerate(self.pos) if tag == "NOUN"]

    def nearest_noun_before(self, i: int) -> int:
        """Baseline guess for the pronoun at i: the closest candidate noun before it, or -1."""
        before = [k for k, w in enumerate(self.words[:i]) if w in self.nouns]
        return before[-1] if before else -1


class Corpus:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.grammar = scenario.grammar
        self.lexicon = self.grammar.lexicon()
        story_words = {w for s in scenario.probes.story_sentences for w in split_words(s)}
        self.tokenizer = Tokenizer(set(self.lexicon) | story_words)
        self.n_ctx = scenario.model.n_ctx
        self.pairs = split_pairs(self.grammar, scenario.heldout_fraction, scenario.seed)
        self.compiled = CompiledGrammar(self.grammar, self.tokenizer.ids, self.pairs)
        self._probe_sets: dict[str, list[Sentence]] = {}

    # -- what the trainer reads -----------------------------------------------------------

    def train_batch(
        self, rng: np.random.Generator, batch_size: int, split: str = "train"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, targets), each (B, n_ctx), of fresh sentences; a pure function of `rng`."""
        self._check_split(split)
        drawn = self.compiled.sample(rng, batch_size, split)
        return self._align(drawn.ids)

    def batch(self, sentences: list[Sentence]) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, targets), each (B, T), for given sentences (cut to n_ctx if longer): T is
        <bos> and the longest sentence's words, at most n_ctx, so the probes and `infer`
        compute no column that is padding in every sentence (a causal Fabric computes the
        real tokens the same at any width)."""
        width = max((len(s.words) for s in sentences), default=0)
        ids = np.full((len(sentences), max(width, 1)), PAD, dtype=np.int64)
        for i, sentence in enumerate(sentences):
            ids[i, : len(sentence.words)] = self.tokenizer.encode_words(sentence.words)
        tokens, targets = self._align(ids)
        keep = min(width + 1, self.n_ctx)
        return np.ascontiguousarray(tokens[:, :keep]), np.ascontiguousarray(targets[:, :keep])

    def _align(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, width = ids.shape
        seq = np.full((n, max(width + 1, self.n_ctx + 1)), PAD, dtype=np.int64)
        seq[:, 0] = BOS
        seq[:, 1 : width + 1] = ids
        tokens = seq[:, : self.n_ctx].copy()
        targets = seq[:, 1 : self.n_ctx + 1].copy()
        targets[targets == PAD] = -1
        return tokens, targets

    def sample(self, rng: np.random.Generator, n: int, split: str = "train") -> list[Sentence]:
        """n annotated sentences of the split."""
        self._check_split(split)
        drawn = self.compiled.sample(rng, n, split)
        vocab, tags = self.tokenizer.vocab, self.compiled.pos_tags
        nouns = self.grammar.nouns
        sentences = []
        for i in range(n):
            length = int(drawn.length[i])
            words = [vocab[t] for t in drawn.ids[i, :length].tolist()]
            a, b = nouns[int(drawn.a[i])], nouns[int(drawn.b[i])]
            sentences.append(
                Sentence(
                    words=words,
                    pos=[tags[t] for t in drawn.pos[i, :length].tolist()],
                    antecedent=drawn.antecedent[i, :length].tolist(),
                    nouns=(a.word, b.word),
                    noun_positions=tuple(drawn.noun_slots[i].tolist()),
                    split=split,
                    agreement=[self.grammar.agreement_of(w) for w in words],
                    object_verb=drawn.object_verb[i, :length].tolist(),
                    subject_noun=drawn.subject_noun[i, :length].tolist(),
                )
            )
        return sentences

    def probe_set(self, split: str) -> list[Sentence]:
        """The fixed probe sentences of a split: the same for every run of this scenario."""
        self._check_split(split)
        if split not in self._probe_sets:
            rng = np.random.default_rng([self.scenario.seed, 1 + SPLITS.index(split)])
            self._probe_sets[split] = self.sample(rng, self.scenario.probes.n_sentences, split)
        return self._probe_sets[split]

    def story_set(self) -> list[Sentence]:
        return [self.annotate(text) for text in self.scenario.probes.story_sentences]

    def model_config(self) -> ModelConfig:
        m = self.scenario.model
        return ModelConfig(
            n_layers=m.n_layers,
            n_heads=m.n_heads,
            d_model=m.d_model,
            d_head=m.d_model // m.n_heads,
            d_mlp=m.d_mlp,
            n_ctx=m.n_ctx,
            d_vocab=len(self.tokenizer),
            # the scenario's switches: [model] residual, layernorm = "pre" | "none"
            residual=m.residual,
            normalization_type="LN" if m.layernorm == "pre" else None,
        )

    # -- the entropy floor ----------------------------------------------------------------

    @property
    def floor(self) -> dict[str, float]:
        """{"train": nats/token, "heldout": nats/token}: the lowest reachable loss."""
        return {split: f.nats_per_token for split, f in self.floor_details().items()}

    def language_key(self) -> str:
        """What the floor depends on, digested: the grammar, the held-out pairs, the vocab."""
        return language_key(self.grammar, self.pairs, self.tokenizer.vocab)

    def floor_details(self) -> dict[str, Floor]:
        key = self.language_key()
        if key not in _FLOOR_CACHE:
            _FLOOR_CACHE[key] = known_floors(key) or {
                s: entropy_floor(self.compiled, s) for s in SPLITS}
        return _FLOOR_CACHE[key]

    def computed_floor_details(self) -> dict[str, Floor]:
        """The floors walked out now, never read from the table (for its test and script)."""
        return {s: entropy_floor(self.compiled, s) for s in SPLITS}

    def exact_model(self, split: str = "train") -> ExactModel:
        """Exact next-word probabilities of the generator (for tests and the Loss's story)."""
        self._check_split(split)
        return ExactModel(self.compiled, split, len(self.tokenizer))

    # -- free text ------------------------------------------------------------------------

    def annotate(self, text: str) -> Sentence:
        """A typed sentence, annotated from the lexicon (see language/annotate.py)."""
        from fabric_cli.language.annotate import annotate_words

        return annotate_words(self, split_words(text))

    def heldout_pairs(self) -> list[tuple[str, str]]:
        nouns = self.grammar.nouns
        return [(nouns[i].word, nouns[j].word) for i, j in self.pairs["heldout"]]

    @staticmethod
    def _check_split(split: str) -> None:
        if split not in SPLITS:
            raise FabricError(f"unknown split {split!r}; expected train or heldout")
