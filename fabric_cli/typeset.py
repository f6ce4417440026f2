"""Sentences as a reader typed them, from the words the Tokenizer cut (stdlib only).

    as_typed(["the", "professor", "finished", "her", "lecture", "."])
        -> "The professor finished her lecture."
    as_typed("she left the room , though it was n't clear why he stayed .")
        -> "She left the room, though it wasn't clear why he stayed."

Prose shows sentences this way; token strings appear only where tokens are the subject (the
Tokenizer's own cut). A sentence told inside prose is set off by typographic quotes
(`quoted`), so it reads as a quotation even where the italics cannot show (piped output, a
.txt export): In “The professor finished her lecture.” my heaviest weight ...
The functions are pure, so narrators and commands may both use them.
"""

from __future__ import annotations

from collections.abc import Iterable

# Tokens written against the word before them: punctuation that closes, and the second half
# of a contraction the Tokenizer split off ("was n't", "it 's", "they 're").
_CLOSING = {".", ",", "!", "?", ";", ":", ")", "]", "}", "%", "..."}
_OPENING = {"(", "[", "{"}
_CLITICS = {"n't", "'s", "'re", "'ve", "'ll", "'d", "'m", "’s", "n’t"}
_SPECIAL = {"<bos>", "<pad>"}  # sequence markers, never part of what was typed


def as_typed(words: Iterable[str] | str, *, capital: bool = True) -> str:
    """Words (or a space-separated token string) joined as typed: first letter capitalised
    (unless `capital` is False: a continuation of a sentence), no space before closing
    punctuation or after opening brackets, contractions joined."""
    tokens = words.split() if isinstance(words, str) else [str(w) for w in words]
    tokens = [t for t in tokens if t not in _SPECIAL]
    out = ""
    glue_next = False
    for tok in tokens:
        if not out:
            out = tok
        elif glue_next or tok in _CLOSING or tok.lower() in _CLITICS:
            out += tok
        else:
            out += " " + tok
        glue_next = tok in _OPENING
    # "i" alone is the pronoun; the grammar lower-cases everything it generates
    out = " ".join("I" if w == "i" else w for w in out.split(" "))
    return out[:1].upper() + out[1:] if capital else out


def in_quotes(text: str) -> str:
    """A sentence set off inside prose: “text” (the text as given, e.g. as a user typed it)."""
    return f"\u201c{text}\u201d"


def quoted(words: Iterable[str] | str) -> str:
    """The sentence as typed, in typographic quotes: “The professor finished her lecture.”"""
    return in_quotes(as_typed(words))
