"""Sentences appear in prose as a reader typed them, not as the Tokenizer cut them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fabric_cli.typeset import as_typed


def test_a_token_string_reads_as_typed() -> None:
    assert as_typed("the professor finished her lecture .") == "The professor finished her lecture."
    assert (as_typed("she left the room , though it was n't clear why he stayed .")
            == "She left the room, though it wasn't clear why he stayed.")
    assert as_typed(["<bos>", "the", "dog", "'s", "tail", "!"]) == "The dog's tail!"
    assert as_typed(["(", "quietly", ")", "he", "left", "."]) == "(quietly) he left."


def test_an_already_typed_sentence_is_left_as_it_was() -> None:
    typed = "The scientists published their findings after they completed the experiment."
    assert as_typed(typed) == typed


words = st.lists(st.sampled_from(["the", "cat", "was", "n't", ",", ".", "it", "'s", "fast"]),
                 min_size=1, max_size=12)


@given(words)
def test_no_space_ever_stands_before_punctuation_and_the_words_are_kept(tokens) -> None:
    text = as_typed(tokens)
    assert " ." not in text and " ," not in text and " n't" not in text
    assert text.replace(" ", "").lower() == "".join(tokens).lower()
