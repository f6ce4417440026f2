"""The few ways a narrator writes a measured number, so a reader (or a test) can find it again.

Every number in the prose goes through one of these:

- `sig(x)`    3 significant digits: 0.000123, 2.35, 1,230; a power of ten below a millionth
              and from a million up ("6.86 × 10^-15"); up to 6 digits where 3 would round
              a figure that is not 1 to 1 (0.9996)
- `pct(x)`    a fraction as a percentage with 3 significant digits: 0.483 -> "48.3%" (more
              short of 100%: 0.9996 -> "99.96%")
- `whole_pct(x)` a fraction as a whole percentage for tables and maps, with the digits it
              takes never to call all what is not all: 0.483 -> "48%", 0.996 -> "99.6%"
- `step(n)`   a step or a count, with thousands separators: 1724 -> "1,724"
- `count(n)`  the same as `step`, for things counted from the chronicle

Non-finite values (the chronicle writes them as "nan"/"inf") come out as words, never digits.
"""

from __future__ import annotations

import math
from decimal import Decimal


def as_float(value: object) -> float:
    """A chronicle number as a float; "nan", "inf", "-inf" strings become the real thing."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def finite(value: object) -> bool:
    return math.isfinite(as_float(value))


def _nonfinite_word(x: float) -> str:
    if math.isnan(x):
        return "not-a-number"
    return "infinity" if x > 0 else "minus infinity"


TINY, HUGE = 1e-6, 1e6  # outside these a figure is written as a power of ten


def sig(value: object) -> str:
    """3 significant digits, plain positional notation, thousands separated above 999, and
    a power of ten below TINY and from HUGE up (the gradient of a Fabric without its residual
    reaches 1e-15, a storm's loss 1e11)."""
    x = as_float(value)
    if not math.isfinite(x):
        return _nonfinite_word(x)
    return _written(_short_of(x, 1.0))


def _written(rounded: float) -> str:
    """A number already rounded to the digits it shows, written out."""
    if rounded == 0:
        return "0"
    if abs(rounded) < TINY or abs(rounded) >= HUGE:  # "6.86 × 10^-15", "1.69 × 10^11"
        # exponent and mantissa from the decimal digits: log10 and 10 ** e lose them below
        # float's normal range (1e-320 read "10 × 10^-321"; 5e-324 divided by zero)
        digits = Decimal(repr(rounded))
        exponent = digits.adjusted()
        return f"{sig(float(digits.scaleb(-exponent)))} × 10^{exponent}"
    if abs(rounded) >= 1000:
        return f"{rounded:,.0f}"
    text = f"{Decimal(repr(rounded)):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _short_of(x: float, whole: float) -> float:
    """x to 3 significant digits, or as many more (up to 6) as it takes not to read as
    `whole` when it is not: a weight of 0.9996 is "0.9996", never "1"."""
    rounded = float(f"{x:.3g}")
    digits = 3
    while abs(rounded) == whole and abs(x) != whole and digits < 6:
        digits += 1
        rounded = float(f"{x:.{digits}g}")
    return rounded


def pct(value: object) -> str:
    """A fraction (0..1) as a percentage with 3 significant digits (more, short of 100%:
    0.9996 is "99.96%", not "100%")."""
    x = as_float(value) * 100  # a figure near float's largest overflows here
    if not math.isfinite(x):
        return _nonfinite_word(x)
    return f"{_written(_short_of(x, 100.0))}%"


def whole_pct(value: object) -> str:
    """A fraction (0..1) as a whole percentage, with as many decimals as it takes (up to 4)
    for a fraction short of 1 not to read "100%", nor one above 0 "0%"."""
    x = as_float(value)
    if not math.isfinite(x):
        return _nonfinite_word(x)
    for digits in range(5):
        text = f"{x * 100:.{digits}f}"
        if not (float(text) == 100 and x < 1 or float(text) == 0 and x > 0):
            return f"{text}%"
    return ">99.9999%" if x > 0.5 else "<0.0001%"


def step(value: object) -> str:
    """A step number with thousands separators."""
    x = as_float(value)
    if not math.isfinite(x):
        return _nonfinite_word(x)
    return f"{round(x):,}"


count = step


def head_name(layer: int, head: int) -> str:
    """The house name of a head: L0H2 (layer 0, head 2), 0-indexed."""
    return f"L{layer}H{head}"


def and_list(items: list[str]) -> str:
    """'L0H0', 'L0H0 and L0H2', 'L0H0, L0H1 and L0H2' ('' for none)."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
