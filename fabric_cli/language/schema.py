"""Typed reading of a parsed TOML table, with one-line errors naming the file and the key.

Every check raises FabricError("<file>: <key>: expected <what>, got <value>") so a user can
find the line to fix without reading a traceback.
"""

from __future__ import annotations

import math
from typing import Any

from fabric_cli.errors import FabricError

_MISSING = object()


def shown(value: Any) -> str:
    """A short, one-line rendering of a TOML value for an error message."""
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def schema_error(source: str, key: str, expected: str, got: Any = _MISSING) -> FabricError:
    if got is _MISSING:
        return FabricError(f"{source}: {key}: expected {expected}")
    return FabricError(f"{source}: {key}: expected {expected}, got {shown(got)}")


def check_keys(
    table: dict, source: str, prefix: str, allowed: tuple[str, ...], required: tuple[str, ...]
) -> None:
    """Unknown keys are an error (a typo must not be silently ignored); so are missing ones."""
    for key in table:
        if key not in allowed:
            where = f"{prefix}.{key}" if prefix else key
            raise FabricError(
                f"{source}: {where}: unknown key; expected one of {', '.join(allowed)}"
            )
    for key in required:
        if key not in table:
            where = f"{prefix}.{key}" if prefix else key
            raise FabricError(f"{source}: {where}: missing; this key is required")


def key_path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def get_table(table: dict, key: str, source: str, prefix: str = "") -> dict:
    value = table.get(key, _MISSING)
    if value is _MISSING:
        raise FabricError(f"{source}: {key_path(prefix, key)}: missing; this table is required")
    if not isinstance(value, dict):
        raise schema_error(source, key_path(prefix, key), "a table", value)
    return value


def get_int(
    table: dict,
    key: str,
    source: str,
    prefix: str = "",
    *,
    minimum: int = 1,
    default: Any = _MISSING,
) -> int:
    value = table.get(key, default)
    where = key_path(prefix, key)
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    if value is _MISSING:
        raise FabricError(f"{source}: {where}: missing; expected {what}")
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise schema_error(source, where, what, value)
    return value


def get_float(
    table: dict,
    key: str,
    source: str,
    prefix: str = "",
    *,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
    default: Any = _MISSING,
) -> float:
    """A number in an interval; TOML integers are accepted (lr = 1 means 1.0)."""
    value = table.get(key, default)
    where = key_path(prefix, key)
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    hi = "inf" if high == float("inf") else f"{high:g}"
    what = f"a number in {left}{low:g}, {hi}{right}"
    if value is _MISSING:
        raise FabricError(f"{source}: {where}: missing; expected {what}")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise schema_error(source, where, what, value)
    number = float(value)
    too_low = number <= low if low_open else number < low
    too_high = number >= high if high_open else number > high
    if math.isnan(number) or too_low or too_high:
        raise schema_error(source, where, what, value)
    return number


def get_str(table: dict, key: str, source: str, prefix: str = "", default: Any = _MISSING) -> str:
    value = table.get(key, default)
    where = key_path(prefix, key)
    if value is _MISSING:
        raise FabricError(f"{source}: {where}: missing; expected a non-empty string")
    if not isinstance(value, str) or not value.strip():
        raise schema_error(source, where, "a non-empty string", value)
    return value


def get_str_list(
    table: dict,
    key: str,
    source: str,
    prefix: str = "",
    *,
    allow_empty: bool = False,
    default: Any = _MISSING,
) -> list[str]:
    value = table.get(key, default)
    where = key_path(prefix, key)
    what = "a list of strings" if allow_empty else "a non-empty list of strings"
    if value is _MISSING:
        raise FabricError(f"{source}: {where}: missing; expected {what}")
    if not isinstance(value, list) or (not value and not allow_empty):
        raise schema_error(source, where, what, value)
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise schema_error(source, f"{where}[{i}]", "a non-empty string", item)
    return list(value)
