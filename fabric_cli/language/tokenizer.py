"""The Tokenizer: text in, word ids out, and back.

Word-level and case-folded. Punctuation marks are tokens of their own; the contraction "n't"
is split from its verb ("wasn't" -> "was", "n't") and "'s", "'re", ... likewise. Ids 0, 1, 2
are the specials <pad>, <bos>, <unk>; every other word has a fixed id given by sorted order, so
the same scenario always yields the same vocabulary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fabric_cli.errors import FabricError

PAD, BOS, UNK = 0, 1, 2
SPECIALS = ("<pad>", "<bos>", "<unk>")
VOCAB_FORMAT = "fabric-vocab"

# One token: a word with its "n't" split off, a clitic ('s, 're, 've, 'll, 'd, 'm), a word,
# a number, or any other single visible character (punctuation, symbols).
_TOKEN = re.compile(
    r"[^\W\d_]+(?=n't\b)|n't\b|'(?:s|re|ve|ll|d|m)\b|[^\W\d_]+(?:-[^\W\d_]+)*|\d+|\S",
    re.IGNORECASE,
)
# Tokens that attach to the word before them when text is written back out.
_ATTACHED = re.compile(r"^(?:n't|'(?:s|re|ve|ll|d|m)|[.,;:!?)\]}%])$")
_OPENING = {"(", "[", "{"}


def split_words_as_typed(text: str) -> list[str]:
    """The tokens of `text` exactly as the user typed them (case kept)."""
    return _TOKEN.findall(text)


def split_words(text: str) -> list[str]:
    """The tokens of `text`, case-folded: "Wasn't it?" -> ["was", "n't", "it", "?"]."""
    return [token.casefold() for token in split_words_as_typed(text)]


def join_words(words: Iterable[str]) -> str:
    """Words back to readable text: punctuation and clitics attach to the word before."""
    out = ""
    for word in words:
        if out and not _ATTACHED.match(word) and out[-1] not in _OPENING:
            out += " "
        out += word
    return out


@dataclass(frozen=True)
class Encoded:
    ids: list[int]  # <bos> first, then one id per token
    tokens: list[str]  # the token strings, "<bos>" first; unknown words show as typed, folded
    unknown: list[str] = field(default_factory=list)  # words not in the vocabulary, as typed


class Tokenizer:
    def __init__(self, words: Iterable[str]) -> None:
        body = sorted(set(words) - set(SPECIALS))
        self.vocab: list[str] = [*SPECIALS, *body]
        self.ids: dict[str, int] = {word: i for i, word in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def __contains__(self, word: str) -> bool:
        return word in self.ids

    def split(self, text: str) -> list[str]:
        return split_words(text)

    def token_id(self, word: str) -> int:
        """The id of one (already split, lower-case) word; <unk> if it is not known."""
        return self.ids.get(word, UNK)

    id_of = token_id

    def encode(self, text: str) -> Encoded:
        typed = split_words_as_typed(text)
        ids = [BOS]
        tokens = ["<bos>"]
        unknown: list[str] = []
        for raw in typed:
            word = raw.casefold()
            token_id = self.ids.get(word, UNK)
            if token_id == UNK:
                unknown.append(raw)
            ids.append(token_id)
            tokens.append(word)
        return Encoded(ids=ids, tokens=tokens, unknown=unknown)

    def encode_words(self, words: Sequence[str]) -> list[int]:
        """Ids of already-split words, without <bos>."""
        return [self.ids.get(word, UNK) for word in words]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids; <pad> and <bos> are dropped, <unk> is shown as "<unk>"."""
        words = []
        for token_id in ids:
            token_id = int(token_id)
            if token_id in (PAD, BOS):
                continue
            if not 0 <= token_id < len(self.vocab):
                raise FabricError(
                    f"token id {token_id} is outside the vocabulary (0..{len(self) - 1})"
                )
            words.append(self.vocab[token_id])
        return join_words(words)

    def to_dict(self) -> dict:
        return {"format": VOCAB_FORMAT, "version": 1, "tokens": list(self.vocab)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: object, source: str = "vocab.json") -> Tokenizer:
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise FabricError(
                f"{source}: not a fabric vocabulary (expected format {VOCAB_FORMAT!r})"
            )
        if data.get("version") != 1:
            raise FabricError(f"{source}: unsupported vocabulary version {data.get('version')!r}")
        tokens = data.get("tokens")
        if (
            not isinstance(tokens, list)
            or not all(isinstance(t, str) and t for t in tokens)
            or tuple(tokens[:3]) != SPECIALS
            or len(set(tokens)) != len(tokens)
        ):
            raise FabricError(
                f"{source}: tokens must be a list of distinct strings starting with "
                "<pad>, <bos>, <unk>"
            )
        tokenizer = cls(tokens[3:])
        if tokenizer.vocab != tokens:
            raise FabricError(
                f"{source}: tokens are not in fabric's sorted order; the file was edited"
            )
        return tokenizer

    @classmethod
    def from_json(cls, text: str, source: str = "vocab.json") -> Tokenizer:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FabricError(
                f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
        return cls.from_dict(data, source)
