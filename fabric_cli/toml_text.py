"""TOML text from the plain data a scenario holds, read back by tomllib to the same data.

A scenario built on a `base` is kept in its run as this text of the merged tables: the two
files one after the other would declare [training] twice, which TOML forbids, and the copy
must load on its own when the run is resumed. Tables become [headers] (nested ones
[a.b]), arrays of tables one inline table per line, strings basic strings with every
character TOML forbids escaped.
"""

from __future__ import annotations

import math
import re

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _string(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _table(path: list[str], table: dict, lines: list[str]) -> None:
    if path:
        lines += ["", "[" + ".".join(_key(p) for p in path) + "]"]
    for key, value in table.items():
        if _table_array(value):
            lines.append(f"{_key(key)} = [")
            lines += [f"  {_value(v)}," for v in value]
            lines.append("]")
        elif not isinstance(value, dict):
            lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            _table([*path, key], value, lines)


def dumps(data: dict, header: str = "") -> str:
    """`data` as TOML text; `header` (lines) goes first, each line made a comment."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _table([], data, lines)
    return "\n".join(lines).lstrip("\n") + "\n"
