"""The grammar's richer parts: verb frames, number-agreeing classes, noun kinds.

    [grammar.frames]    a frame class: verbs, each with the objects it takes. In a template
                        `TAKE` draws one verb and `TAKE.obj` (later) one of *that verb's*
                        objects, so what fills the object slot depends on the verb at a
                        distance: the reason a verb head pays.
    [grammar.numbered]  a class with a singular and a plural list: `{a.RUN}` draws from the
                        list of a's number (its pronouns' `number`), so the word agrees with
                        its governing noun across whatever stands between: the reason a noun
                        head pays.
    noun kinds          a noun is a "person" (default) or a "thing" (room, lecture,
                        findings); a template says which kinds its {a} and {b} are.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabric_cli.errors import FabricError
from fabric_cli.language import schema
from fabric_cli.language.tokenizer import split_words

NUMBERS = ("singular", "plural")
KINDS = ("person", "thing")


@dataclass(frozen=True)
class Frame:
    name: str
    verbs: tuple[str, ...]
    objects: tuple[tuple[str, ...], ...]  # objects[i]: what verbs[i] takes


@dataclass(frozen=True)
class NumberedClass:
    name: str
    pos: str
    forms: dict[str, tuple[str, ...]]  # "singular" / "plural" -> words


def check_word(word: str, source: str, key: str) -> str:
    if split_words(word) != [word]:
        raise schema.schema_error(
            source, key, "a lower-case word the Tokenizer keeps as one token", word
        )
    return word


def word_list(table: dict, key: str, source: str, prefix: str) -> tuple[str, ...]:
    words = schema.get_str_list(table, key, source, prefix)
    where = schema.key_path(prefix, key)
    for i, word in enumerate(words):
        check_word(word, source, f"{where}[{i}]")
    if len(set(words)) != len(words):
        duplicate = next(w for w in words if words.count(w) > 1)
        raise FabricError(f"{source}: {where}: {duplicate!r} is listed twice; list each word once")
    return tuple(words)


def _class_name(name: str, source: str, key: str) -> None:
    if not (name.isupper() and name.replace("_", "").isalnum() and name[0].isalpha()):
        raise FabricError(f"{source}: {key}: class names are UPPER_CASE (e.g. TAKE, RUN)")


def parse_frames(table: object, source: str) -> dict[str, Frame]:
    if not isinstance(table, dict):
        raise schema.schema_error(source, "grammar.frames", "a table of frame classes", table)
    frames = {}
    for name, spec in table.items():
        key = f"grammar.frames.{name}"
        _class_name(name, source, key)
        if not isinstance(spec, dict) or len(spec) < 2:
            raise schema.schema_error(
                source, key, 'a table of at least two verbs, like { read = ["book", "poem"] }',
                spec)
        verbs, objects = [], []
        for verb in spec:
            check_word(verb, source, f"{key}.{verb}")
            verbs.append(verb)
            objects.append(word_list(spec, verb, source, key))
        frames[name] = Frame(name, tuple(verbs), tuple(objects))
    return frames


def parse_numbered(table: object, source: str, pos_tags: tuple[str, ...]) -> dict:
    if not isinstance(table, dict):
        raise schema.schema_error(source, "grammar.numbered", "a table of numbered classes",
                                  table)
    classes = {}
    for name, spec in table.items():
        key = f"grammar.numbered.{name}"
        _class_name(name, source, key)
        if not isinstance(spec, dict):
            raise schema.schema_error(
                source, key, 'a table like { pos = "VERB", singular = [...], plural = [...] }',
                spec)
        schema.check_keys(spec, source, key, ("pos", *NUMBERS), ("pos", *NUMBERS))
        pos = schema.get_str(spec, "pos", source, key)
        if pos not in pos_tags:
            raise schema.schema_error(source, key + ".pos", f"one of {', '.join(pos_tags)}", pos)
        forms = {n: word_list(spec, n, source, key) for n in NUMBERS}
        if set(forms["singular"]) & set(forms["plural"]):
            raise FabricError(f"{source}: {key}: a word is both singular and plural; the two "
                              "lists must tell the numbers apart")
        classes[name] = NumberedClass(name, pos, forms)
    return classes


def parse_kind(value: object, source: str, key: str) -> str:
    if value not in KINDS:
        raise schema.schema_error(source, key, f"one of {', '.join(KINDS)}", value)
    return str(value)


def parse_number(value: object, source: str, key: str) -> str:
    if value not in NUMBERS:
        raise schema.schema_error(source, key, f"one of {', '.join(NUMBERS)}", value)
    return str(value)


def check_parts_of_speech(grammar, source: str) -> None:
    """A word has one part of speech wherever it appears, so annotations never disagree."""
    owners: dict[str, tuple[str, str]] = {}

    def claim(word: str, pos: str, key: str) -> None:
        if word in owners and owners[word][0] != pos:
            other_pos, other_key = owners[word]
            raise FabricError(
                f"{source}: {key}: {word!r} is {pos} here but {other_pos} in {other_key}; "
                "give each word one part of speech"
            )
        owners.setdefault(word, (pos, key))

    for word, pos in grammar.words.items():
        claim(word, pos, f"grammar.words.{word}")
    for cls in grammar.classes.values():
        for word in cls.words:
            claim(word, cls.pos, f"grammar.classes.{cls.name}")
    for agreement, forms in grammar.pronouns.items():
        for word in (*forms, *([grammar.reflexives[agreement]]
                               if agreement in grammar.reflexives else [])):
            claim(word, "PRON", f"grammar.pronouns.{agreement}")
    seen_nouns: set[str] = set()
    for noun in grammar.nouns:
        seen_nouns.add(noun.word)
        claim(noun.word, "NOUN", f"grammar.nouns.{noun.word}")
        for word in noun.verbs:
            claim(word, "VERB", f"grammar.nouns.{noun.word}.verbs")
        for word in noun.attributes:
            claim(word, "NOUN", f"grammar.nouns.{noun.word}.attributes")
    for frame in grammar.frames.values():
        for verb, objects in zip(frame.verbs, frame.objects, strict=True):
            claim(verb, "VERB", f"grammar.frames.{frame.name}")
            for word in objects:
                claim(word, "NOUN", f"grammar.frames.{frame.name}.{verb}")
    for cls in grammar.numbered.values():
        for forms in cls.forms.values():
            for word in forms:
                claim(word, cls.pos, f"grammar.numbered.{cls.name}")
    for cls in grammar.classes.values():
        if "." in cls.words:
            raise FabricError(
                f"{source}: grammar.classes.{cls.name}: '.' may only end a template"
            )
    for noun in grammar.nouns:
        if noun.word in {a for n in grammar.nouns for a in n.attributes}:
            raise FabricError(
                f"{source}: grammar.nouns.{noun.word}: is also listed as an attribute; a candidate "
                "noun cannot be something another noun owns"
            )
