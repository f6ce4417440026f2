"""The grammar of a scenario: nouns, pronouns, word classes and sentence templates.

A template is a line of slots, e.g.

    "the [ADJ] {a} MEET the {b} CONJ {p.subj} {p.verb} {p.poss} {p.attr} ."

- a lower-case word ("the", ".") is written as is; its part of speech comes from grammar.words
- an UPPER-CASE name (ADJ, MEET) is one word drawn uniformly from that grammar.classes entry
- {a} and {b} are the sentence's two candidate nouns (always of different agreement, in the
  order the noun pair was drawn; of the kinds the template's `a` and `b` keys name, "person"
  unless told; of different number too when the template says contrast = "number");
  {p} refers to one of them, chosen 50/50 per sentence: the antecedent the
  pronouns must track; {q} is the other one
- {x.subj} / {x.poss} / {x.refl} is x's subject / possessive / reflexive pronoun (a
  reflexive is told as agreeing with x, like a numbered word, for the noun role), {x.verb} one of x's own verbs,
  {x.attr} one of x's own attributes (x in a, b, p, q); {x.RUN} a word of the numbered class
  RUN in x's number (see parts.py)
- {o.subj} / {o.poss}: a pronoun pointing outside the sentence, of an agreement neither
  candidate noun has (drawn uniformly among those)
- TAKE draws a verb of the frame class TAKE, TAKE.obj (later in the template) one of the
  objects that verb takes
- [ ... ] marks an optional part, present with probability grammar.optional_probability
- "." ends every template and appears nowhere else, so a sentence's end is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from fabric_cli.errors import FabricError
from fabric_cli.language import schema
from fabric_cli.language.parts import (
    Frame,
    NumberedClass,
    check_parts_of_speech,
    check_word,
    parse_frames,
    parse_kind,
    parse_number,
    parse_numbered,
    word_list,
)
from fabric_cli.language.templates import (  # noqa: F401  (re-exported)
    END,
    FIELDS,
    MAX_OPTIONAL_GROUPS,
    REFS,
    Slot,
    Template,
    parse_template,
)

_CLASS_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
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
@dataclass(frozen=True)
class Noun:
    word: str
    agreement: str  # a key of grammar.pronouns: which pronouns refer to it
    verbs: tuple[str, ...]  # what it does after its subject pronoun ("she finished")
    attributes: tuple[str, ...]  # what it owns, after its possessive ("her lecture")
    kind: str = "person"  # "person" or "thing"


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
    numbers: dict[str, str] = field(default_factory=dict)  # agreement -> singular / plural
    reflexives: dict[str, str] = field(default_factory=dict)  # agreement -> "herself", ...
    frames: dict[str, Frame] = field(default_factory=dict)
    numbered: dict[str, NumberedClass] = field(default_factory=dict)

    def lexicon(self) -> dict[str, str]:
        """Every word the language knows, with its part of speech."""
        lexicon = dict(self.words)
        for cls in self.classes.values():
            lexicon.update({w: cls.pos for w in cls.words})
        for subject, possessive in self.pronouns.values():
            lexicon[subject] = lexicon[possessive] = "PRON"
        for reflexive in self.reflexives.values():
            lexicon[reflexive] = "PRON"
        for noun in self.nouns:
            lexicon[noun.word] = "NOUN"
            lexicon.update({w: "VERB" for w in noun.verbs})
            lexicon.update({w: "NOUN" for w in noun.attributes})
        for frame in self.frames.values():
            lexicon.update({w: "VERB" for w in frame.verbs})
            lexicon.update({w: "NOUN" for objects in frame.objects for w in objects})
        for cls in self.numbered.values():
            lexicon.update({w: cls.pos for forms in cls.forms.values() for w in forms})
        return lexicon

    def number_of(self, agreement: str) -> str:
        return self.numbers.get(agreement, "singular")

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


_check_word = check_word
_word_list = word_list


def _parse_pronouns(table: dict, source: str) -> tuple[dict, dict[str, str]]:
    pronouns: dict[str, tuple[str, str]] = {}
    numbers: dict[str, str] = {}
    reflexives: dict[str, str] = {}
    seen: dict[str, str] = {}
    for agreement, forms in table.items():
        key = f"grammar.pronouns.{agreement}"
        if not isinstance(forms, dict):
            raise schema.schema_error(
                source, key, 'a table like { subject = "she", possessive = "her" }', forms
            )
        schema.check_keys(forms, source, key, ("subject", "possessive", "number", "reflexive"),
                          ("subject", "possessive"))
        if "reflexive" in forms:
            reflexives[agreement] = _check_word(
                schema.get_str(forms, "reflexive", source, key), source, key + ".reflexive")
        numbers[agreement] = parse_number(forms.get("number", "singular"), source,
                                          key + ".number")
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
    return pronouns, numbers, reflexives


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
            ("agreement", "verbs", "attributes", "kind"),
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
        kind = parse_kind(spec.get("kind", "person"), source, key + ".kind")
        nouns.append(Noun(word, agreement, verbs, attributes, kind))
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


def parse_grammar(table: dict, source: str) -> Grammar:
    schema.check_keys(
        table,
        source,
        "grammar",
        ("pronouns", "classes", "nouns", "templates", "words", "optional_probability",
         "frames", "numbered"),
        ("pronouns", "nouns", "templates"),
    )
    pronouns, numbers, reflexives = _parse_pronouns(
        schema.get_table(table, "pronouns", source, "grammar"), source)
    nouns = _parse_nouns(schema.get_table(table, "nouns", source, "grammar"), pronouns, source)
    classes_table = table.get("classes", {})
    if not isinstance(classes_table, dict):
        raise schema.schema_error(
            source, "grammar.classes", "a table of word classes", classes_table
        )
    classes = _parse_classes(classes_table, source)
    parts = {"classes": classes, "frames": parse_frames(table.get("frames", {}), source),
             "numbered": parse_numbered(table.get("numbered", {}), source, POS_TAGS)}
    for name in parts["frames"]:
        if name in classes or name in parts["numbered"]:
            raise FabricError(f"{source}: grammar.frames.{name}: the name is also a class; "
                              "give each class its own name")
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
        schema.check_keys(raw, source, key, ("pattern", "weight", "a", "b", "contrast"),
                          ("pattern",))
        pattern = schema.get_str(raw, "pattern", source, key)
        weight = schema.get_float(
            raw, "weight", source, key, low=0.0, high=float("inf"), low_open=True, default=1.0
        )
        kinds = (parse_kind(raw.get("a", "person"), source, key + ".a"),
                 parse_kind(raw.get("b", "person"), source, key + ".b"))
        for ref, kind in zip("ab", kinds, strict=True):
            if not any(n.kind == kind for n in nouns):
                raise FabricError(f"{source}: {key}.{ref}: no noun is of kind {kind!r}")
        contrast = raw.get("contrast", "agreement")
        if contrast not in ("agreement", "number"):
            raise schema.schema_error(source, key + ".contrast", "agreement or number", contrast)
        template = parse_template(pattern, weight, parts, words, f"{source}: {key}.pattern",
                                  kinds)
        templates.append(replace(template, contrast_number=contrast == "number"))
    grammar = Grammar(pronouns, classes, nouns, tuple(templates), words, optional_probability,
                      numbers, reflexives, parts["frames"], parts["numbered"])
    if any(s.kind == "refl" for t in templates for s in t.slots) and \
            set(reflexives) != set(pronouns):
        raise FabricError(f"{source}: grammar.pronouns: a template uses {{x.refl}}, so every "
                          "agreement needs its reflexive (e.g. reflexive = \"herself\")")
    check_parts_of_speech(grammar, source)
    return grammar
