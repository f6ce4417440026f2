"""Templates: a line of slots parsed from a pattern (see grammar.py for the syntax), with
the checks that every pronoun follows the nouns it may refer to and every frame object its
verb."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fabric_cli.errors import FabricError

REFS = ("a", "b", "p", "q", "o")
FIELDS = ("subj", "poss", "refl", "verb", "attr")
END = "."
MAX_OPTIONAL_GROUPS = 4
_PIECE = re.compile(r"\[|\]|\{[^{}\s]*\}|[{}]|[^\s\[\]{}]+")


@dataclass(frozen=True)
class Slot:
    kind: str  # "word", "class", "noun", "subj", "poss", "verb", "attr", "numbered",
    #            "frame" (a frame's verb) or "object" (that verb's object)
    name: str = ""  # the literal word, or the class / frame name
    ref: str = ""  # "a", "b", "p", "q" or "o" for the slots bound to a noun
    group: int = -1  # which optional [ ] part it belongs to; -1 = always present


@dataclass(frozen=True)
class Template:
    pattern: str
    weight: float
    slots: tuple[Slot, ...]
    n_groups: int
    kinds: tuple[str, str] = ("person", "person")  # kinds of {a} and {b}
    contrast_number: bool = False  # {a} and {b} always of different number


def _parse_slot(piece: str, group: int, parts: dict, words: dict, where: str) -> Slot:
    classes, frames, numbered = parts["classes"], parts["frames"], parts["numbered"]
    if piece in ("{", "}"):
        raise FabricError(
            f"{where}: stray {piece!r}; references are written {{a}}, {{p.subj}}, ..."
        )
    if piece.startswith("{"):
        inner = piece[1:-1]
        ref, dot, field_name = inner.partition(".")
        known_field = field_name in FIELDS or field_name in numbered
        if ref not in REFS or (field_name and not known_field) or (dot and not field_name) \
                or (ref == "o" and field_name not in ("subj", "poss")):
            raise FabricError(
                f"{where}: unknown reference {piece}; expected {{a}}, {{b}}, {{p}}, {{q}} or "
                "{x.subj}, {x.poss}, {x.verb}, {x.attr}, {x.CLASS} with x in a, b, p, q, "
                "or {o.subj}, {o.poss}"
            )
        if not field_name:
            return Slot("noun", ref=ref, group=group)
        if field_name in numbered:
            return Slot("numbered", name=field_name, ref=ref, group=group)
        return Slot(field_name, ref=ref, group=group)
    name, dot, tail = piece.partition(".")
    if dot and name in frames and tail == "obj":
        return Slot("object", name=name, group=group)
    if piece in frames:
        return Slot("frame", name=piece, group=group)
    if piece.isupper():
        if piece not in classes:
            known = ", ".join([*classes, *frames]) or "none defined"
            raise FabricError(
                f"{where}: names undefined class {piece!r}; grammar.classes and "
                f"grammar.frames have {known}"
            )
        return Slot("class", name=piece, group=group)
    if piece not in words:
        raise FabricError(
            f"{where}: word {piece!r} has no part of speech; add it to grammar.words "
            f'(e.g. {piece} = "DET")'
        )
    return Slot("word", name=piece, group=group)


def parse_template(pattern: str, weight: float, parts: dict, words: dict, where: str,
                   kinds: tuple[str, str] = ("person", "person")) -> Template:
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
        slot = _parse_slot(piece, group, parts, words, where)
        if slot.kind in ("noun", "frame") and group >= 0:
            raise FabricError(
                f"{where}: {piece} cannot be optional; candidate nouns and frame verbs are "
                "always present"
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
    _check_frames(slots, where)
    return Template(pattern, weight, tuple(slots), n_groups, kinds)


def _check_frames(slots: list[Slot], where: str) -> None:
    """A frame's verb appears once, before any of its objects."""
    seen: set[str] = set()
    for slot in slots:
        if slot.kind == "frame":
            if slot.name in seen:
                raise FabricError(f"{where}: frame {slot.name} is used twice; use it once")
            seen.add(slot.name)
        if slot.kind == "object" and slot.name not in seen:
            raise FabricError(f"{where}: {slot.name}.obj comes before its verb {slot.name}")


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
            slot.kind not in ("subj", "poss", "refl", "noun", "numbered")
            or slot.ref in ("", "o")
            or (slot.kind == "noun" and slot.ref not in ("p", "q"))
        ):
            continue
        needed = ("a", "b") if slot.ref in ("p", "q") else (slot.ref,)
        for ref in needed:
            if first[ref] > i:
                name = f"{{{slot.ref}.{slot.kind}}}" if slot.kind != "noun" else f"{{{slot.ref}}}"
                raise FabricError(
                    f"{where}: {name} comes before its possible antecedent {{{ref}}}; a pronoun "
                    "must follow the noun it refers to"
                )
