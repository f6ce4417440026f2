"""The grammar of a scenario: nouns, pronouns, word classes and sentence templates.

A template is a line of slots, e.g.

    "the [ADJ] {a} MEET the {b} CONJ {p.subj} {p.verb} {p.poss} {p.attr} ."

- a lower-case word ("the", ".") is written as is; its part of speech comes from grammar.words
- an UPPER-CASE name (ADJ, MEET) is one word drawn uniformly from that grammar.classes entry
- {a} and {b} are the sentence's two candidate nouns (always of different agreement, in the
  order the noun pair was drawn); {p} refers to one of them, chosen 50/50 per sentence: the
  antecedent the pronouns must track
- {x.subj} / {x.poss} is x's subject / possessive pronoun, {x.verb} one of x's own verbs,
  {x.attr} one of x's own attributes (x in a, b, p)
- [ ... ] marks an optional part, present with probability grammar.optional_probability
- "." ends every template and appears nowhere else, so a sentence's end is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fabric_cli.errors import FabricError
from fabric_cli.language import schema
from fabric_cli.language.tokenizer import split_words

POS_TAGS = (
    "DET",
    "NOUN",
    "PRON",
    "VERB",
    "ADJ",
    "ADV",
    "CONJ",
    "PREP",
    "AUX",
    "PART",
    "PUNCT",
    "NUM",
    "INTJ",
)
REFS = ("a", "b", "p")
FIELDS = ("subj", "poss", "verb", "attr")
END = "."
MAX_OPTIONAL_GROUPS = 4
_CLASS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PIECE = re.compile(r"\[|\]|\{[^{}\s]*\}|[{}]|[^\s\[\]{}]+")


@dataclass(frozen=True)
class Slot:
    kind: str  # "word", "class", "noun", "subj", "poss", "verb" or "attr"
    name: str = ""  # the literal word, or the class name
    ref: str = ""  # "a", "b" or "p" for the slots bound to a candidate noun
    group: int = -1  # which optional [ ] part it belongs to; -1 = always present


@dataclass(frozen=True)
class Template:
    pattern: str
    weight: float
    slots: tuple[Slot, ...]
    n_groups: int


@dataclass(frozen=True)
class Noun:
    word: str
    agreement: str  # a key of grammar.pronouns: which pronouns refer to it
    verbs: tuple[str, ...]  # what it does after its subject pronoun ("she finished")
    attributes: tuple[str, ...]  # what it owns, after its possessive ("her lecture")


@dataclass(frozen=True)
class WordClass:
    name: str
    pos: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Grammar:
    pronouns: dict[str, tuple[str, str]]  # agreement -> (subject form, possessive form)
    classes: dict[str, WordClass]
    nouns: tuple[Noun, ...]
    templates: tuple[Template, ...]
    words: dict[str, str]  # other known words -> part of speech
    optional_probability: float

    def lexicon(self) -> dict[str, str]:
        """Every word the language knows, with its part of speech."""
        lexicon = dict(self.words)
        for cls in self.classes.values():
            lexicon.update({w: cls.pos for w in cls.words})
        for subject, possessive in self.pronouns.values():
            lexicon[subject] = lexicon[possessive] = "PRON"
        for noun in self.nouns:
            lexicon[noun.word] = "NOUN"
            lexicon.update({w: "VERB" for w in noun.verbs})
            lexicon.update({w: "NOUN" for w in noun.attributes})
        return lexicon

    def max_length(self) -> int:
        """Tokens in the longest sentence (every optional part present), "." included."""
        return max(len(t.slots) for t in self.templates)

    def agreement_of(self, word: str) -> str | None:
        """The agreement class a pronoun form or a noun signals, None for other words."""
        for agreement, forms in self.pronouns.items():
            if word in forms:
                return agreement
        for noun in self.nouns:
            if noun.word == word:
                return noun.agreement
        return None


def _check_word(word: str, source: str, key: str) -> str:
    if split_words(word) != [word]:
        raise schema.schema_error(
            source, key, "a lower-case word the Tokenizer keeps as one token", word
        )
    return word


def _word_list(table: dict, key: str, source: str, prefix: str) -> tuple[str, ...]:
    words = schema.get_str_list(table, key, source, prefix)
    where = schema.key_path(prefix, key)
    for i, word in enumerate(words):
        _check_word(word, source, f"{where}[{i}]")
    if len(set(words)) != len(words):
        duplicate = next(w for w in words if words.count(w) > 1)
        raise FabricError(f"{source}: {where}: {duplicate!r} is listed twice; list each word once")
    return tuple(words)


def _parse_pronouns(table: dict, source: str) -> dict[str, tuple[str, str]]:
    pronouns: dict[str, tuple[str, str]] = {}
    seen: dict[str, str] = {}
    for agreement, forms in table.items():
        key = f"grammar.pronouns.{agreement}"
        if not isinstance(forms, dict):
            raise schema.schema_error(
                source, key, 'a table like { subject = "she", possessive = "her" }', forms
            )
        schema.check_keys(forms, source, key, ("subject", "possessive"), ("subject", "possessive"))
        subject = _check_word(
            schema.get_str(forms, "subject", source, key), source, key + ".subject"
        )
        possessive = _check_word(
            schema.get_str(forms, "possessive", source, key), source, key + ".possessive"
        )
        for form in (subject, possessive):
            if form in seen and seen[form] != agreement:
                raise FabricError(
                    f"{source}: {key}: {form!r} is also a pronoun of {seen[form]!r}, so it could "
                    "not tell the two antecedents apart; give every agreement its own pronouns"
                )
            seen[form] = agreement
        pronouns[agreement] = (subject, possessive)
    if len(pronouns) < 2:
        raise schema.schema_error(
            source, "grammar.pronouns", "at least two agreement classes (e.g. feminine, plural)"
        )
    return pronouns


def _parse_nouns(table: dict, pronouns: dict, source: str) -> tuple[Noun, ...]:
    nouns = []
    for word, spec in table.items():
        key = f"grammar.nouns.{word}"
        _check_word(word, source, key)
        if not isinstance(spec, dict):
            raise schema.schema_error(
                source, key, "a table with agreement, verbs and attributes", spec
            )
        schema.check_keys(
            spec,
            source,
            key,
            ("agreement", "verbs", "attributes"),
            ("agreement", "verbs", "attributes"),
        )
        agreement = schema.get_str(spec, "agreement", source, key)
        if agreement not in pronouns:
            raise schema.schema_error(
                source,
                key + ".agreement",
                f"one of the agreements in grammar.pronouns ({', '.join(pronouns)})",
                agreement,
            )
        verbs = _word_list(spec, "verbs", source, key)
        attributes = _word_list(spec, "attributes", source, key)
        nouns.append(Noun(word, agreement, verbs, attributes))
    agreements = {n.agreement for n in nouns}
    if len(agreements) < 2:
        only = f" (all are {next(iter(agreements))!r})" if agreements else ""
        raise schema.schema_error(
            source,
            "grammar.nouns",
            "nouns of at least two different agreements, so a sentence's two candidate nouns "
            f"can be told apart by their pronouns{only}",
        )
    return tuple(nouns)


def _parse_classes(table: dict, source: str) -> dict[str, WordClass]:
    classes = {}
    for name, spec in table.items():
        key = f"grammar.classes.{name}"
        if not _CLASS_NAME.match(name):
            raise FabricError(f"{source}: {key}: class names are UPPER_CASE (e.g. ADJ, MEET)")
        if not isinstance(spec, dict):
            raise schema.schema_error(
                source, key, 'a table like { pos = "ADJ", words = [...] }', spec
            )
        schema.check_keys(spec, source, key, ("pos", "words"), ("pos", "words"))
        pos = schema.get_str(spec, "pos", source, key)
        if pos not in POS_TAGS:
            raise schema.schema_error(source, key + ".pos", f"one of {', '.join(POS_TAGS)}", pos)
        classes[name] = WordClass(name, pos, _word_list(spec, "words", source, key))
    return classes


def _parse_words(table: dict, source: str) -> dict[str, str]:
    words = {}
    for word, pos in table.items():
        key = f"grammar.words.{word!r}" if not word.isalpha() else f"grammar.words.{word}"
        _check_word(word, source, key)
        if not isinstance(pos, str) or pos not in POS_TAGS:
            raise schema.schema_error(
                source, key, f"a part of speech, one of {', '.join(POS_TAGS)}", pos
            )
        words[word] = pos
    return words


def _parse_slot(piece: str, group: int, classes: dict, words: dict, where: str) -> Slot:
    if piece in ("{", "}"):
        raise FabricError(
            f"{where}: stray {piece!r}; references are written {{a}}, {{p.subj}}, ..."
        )
    if piece.startswith("{"):
        inner = piece[1:-1]
        ref, _, field = inner.partition(".")
        if ref not in REFS or (field and field not in FIELDS) or (_ and not field):
            raise FabricError(
                f"{where}: unknown reference {piece}; expected {{a}}, {{b}}, {{p}} or "
                "{x.subj}, {x.poss}, {x.verb}, {x.attr} with x in a, b, p"
            )
        if not field:
            return Slot("noun", ref=ref, group=group)
        return Slot(field, ref=ref, group=group)
    if piece.isupper():
        if piece not in classes:
            known = ", ".join(classes) or "none defined"
            raise FabricError(
                f"{where}: names undefined class {piece!r}; grammar.classes has {known}"
            )
        return Slot("class", name=piece, group=group)
    if piece not in words:
        raise FabricError(
            f"{where}: word {piece!r} has no part of speech; add it to grammar.words "
            f'(e.g. {piece} = "DET")'
        )
    return Slot("word", name=piece, group=group)


def parse_template(pattern: str, weight: float, classes: dict, words: dict, where: str) -> Template:
    pieces = _PIECE.findall(pattern)
    slots: list[Slot] = []
    group = -1
    n_groups = 0
    for piece in pieces:
        if piece == "[":
            if group >= 0:
                raise FabricError(f"{where}: optional parts [ ] cannot be nested")
            group, n_groups = n_groups, n_groups + 1
            continue
        if piece == "]":
            if group < 0:
                raise FabricError(f"{where}: ']' without a matching '['")
            if not slots or slots[-1].group != group:
                raise FabricError(f"{where}: empty optional part []")
            group = -1
            continue
        slot = _parse_slot(piece, group, classes, words, where)
        if slot.kind == "noun" and group >= 0:
            raise FabricError(
                f"{where}: {piece} cannot be optional; the candidate nouns are always present"
            )
        slots.append(slot)
    if group >= 0:
        raise FabricError(f"{where}: '[' without a matching ']'")
    if n_groups > MAX_OPTIONAL_GROUPS:
        raise FabricError(
            f"{where}: at most {MAX_OPTIONAL_GROUPS} optional parts [ ], got {n_groups}"
        )
    if not slots or slots[-1] != Slot("word", name=END):
        raise FabricError(f"{where}: every template must end with {END!r}")
    if any(s.kind == "word" and s.name == END for s in slots[:-1]):
        raise FabricError(f"{where}: {END!r} may only end the template, not appear inside it")
    _check_references(slots, where)
    return Template(pattern, weight, tuple(slots), n_groups)


def _check_references(slots: list[Slot], where: str) -> None:
    """Both candidate nouns appear, and every pronoun comes after the noun(s) it may refer to."""
    first: dict[str, int] = {}
    for i, slot in enumerate(slots):
        if slot.kind == "noun" and slot.ref in ("a", "b"):
            first.setdefault(slot.ref, i)
    for ref in ("a", "b"):
        if ref not in first:
            raise FabricError(
                f"{where}: must name both candidate nouns {{a}} and {{b}} (missing {{{ref}}})"
            )
    for i, slot in enumerate(slots):
        if (
            slot.kind not in ("subj", "poss", "noun")
            or slot.ref == ""
            or (slot.kind == "noun" and slot.ref != "p")
        ):
            continue
        needed = ("a", "b") if slot.ref == "p" else (slot.ref,)
        for ref in needed:
            if first[ref] > i:
                name = f"{{{slot.ref}.{slot.kind}}}" if slot.kind != "noun" else "{p}"
                raise FabricError(
                    f"{where}: {name} comes before its possible antecedent {{{ref}}}; a pronoun "
                    "must follow the noun it refers to"
                )


def parse_grammar(table: dict, source: str) -> Grammar:
    schema.check_keys(
        table,
        source,
        "grammar",
        ("pronouns", "classes", "nouns", "templates", "words", "optional_probability"),
        ("pronouns", "nouns", "templates"),
    )
    pronouns = _parse_pronouns(schema.get_table(table, "pronouns", source, "grammar"), source)
    nouns = _parse_nouns(schema.get_table(table, "nouns", source, "grammar"), pronouns, source)
    classes_table = table.get("classes", {})
    if not isinstance(classes_table, dict):
        raise schema.schema_error(
            source, "grammar.classes", "a table of word classes", classes_table
        )
    classes = _parse_classes(classes_table, source)
    words_table = table.get("words", {})
    if not isinstance(words_table, dict):
        raise schema.schema_error(
            source, "grammar.words", "a table of word = part of speech", words_table
        )
    words = _parse_words(words_table, source)
    optional_probability = schema.get_float(
        table,
        "optional_probability",
        source,
        "grammar",
        low=0.0,
        high=1.0,
        low_open=True,
        high_open=True,
        default=0.5,
    )
    raw_templates = table["templates"]
    if not isinstance(raw_templates, list) or not raw_templates:
        raise schema.schema_error(
            source,
            "grammar.templates",
            "a non-empty array of tables ([[grammar.templates]])",
            raw_templates,
        )
    templates = []
    for i, raw in enumerate(raw_templates):
        key = f"grammar.templates[{i}]"
        if not isinstance(raw, dict):
            raise schema.schema_error(source, key, "a table with pattern and weight", raw)
        schema.check_keys(raw, source, key, ("pattern", "weight"), ("pattern",))
        pattern = schema.get_str(raw, "pattern", source, key)
        weight = schema.get_float(
            raw, "weight", source, key, low=0.0, high=float("inf"), low_open=True, default=1.0
        )
        templates.append(
            parse_template(pattern, weight, classes, words, f"{source}: {key}.pattern")
        )
    grammar = Grammar(pronouns, classes, nouns, tuple(templates), words, optional_probability)
    _check_parts_of_speech(grammar, source)
    return grammar


def _check_parts_of_speech(grammar: Grammar, source: str) -> None:
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
        for word in forms:
            claim(word, "PRON", f"grammar.pronouns.{agreement}")
    seen_nouns: set[str] = set()
    for noun in grammar.nouns:
        seen_nouns.add(noun.word)
        claim(noun.word, "NOUN", f"grammar.nouns.{noun.word}")
        for word in noun.verbs:
            claim(word, "VERB", f"grammar.nouns.{noun.word}.verbs")
        for word in noun.attributes:
            claim(word, "NOUN", f"grammar.nouns.{noun.word}.attributes")
    for cls in grammar.classes.values():
        if END in cls.words:
            raise FabricError(
                f"{source}: grammar.classes.{cls.name}: {END!r} may only end a template"
            )
    for noun in grammar.nouns:
        if noun.word in {a for n in grammar.nouns for a in n.attributes}:
            raise FabricError(
                f"{source}: grammar.nouns.{noun.word}: is also listed as an attribute; a candidate "
                "noun cannot be something another noun owns"
            )
