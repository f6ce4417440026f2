"""The colours and glyphs every picture shares.

One colour per member of the cast (so the Gradient is the same orange in the bars, the
ticker and the narration), the shade ramps that carry an intensity without colour, and a
perceptual colour ramp (inferno, trimmed so its dark end stays visible on a dark terminal).

Every intensity is drawn twice: as a glyph (readable with NO_COLOR or in a pipe) and as a
colour (for the eye). Nothing here knows about models; it maps numbers to looks.
"""

from __future__ import annotations

import math
from functools import lru_cache

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.style import Style
from rich.text import Text

# The cast, in the order the story introduces them. Colours are chosen to be told apart on
# both dark and light backgrounds and to survive a downgrade to 256 colours.
COMPONENT_COLORS: dict[str, str] = {
    "head": "#5fd7ff",  # the attention head: clear cyan, the protagonist
    "gradient": "#ff8f3f",  # the Gradient: warm orange, it flows backward like heat
    "adam": "#b48cff",  # Adam: lavender, steady and remembering
    "dropout": "#8a8a8a",  # Dropout: grey, the one who switches lights off
    "layernorm": "#5fd7af",  # LayerNorm: sea green, the leveller
    "residual": "#6fa8ff",  # the Residual: blue, the river every layer writes into
    "ffn": "#d7af5f",  # the Feed-Forward network: ochre, the storehouse
    "softmax": "#ff6fae",  # Softmax: pink, it sharpens and chooses
    "tokenizer": "#afd75f",  # the Tokenizer: lime, the doorkeeper
    "loss": "#ff5f5f",  # the Loss, the Fabric's judgment: red
    "engineers": "#d0d0d0",  # the Engineers (clipping, schedule): light grey, outside hands
}

COMPONENT_NAMES: dict[str, str] = {
    "head": "Head",
    "gradient": "Gradient",
    "adam": "Adam",
    "dropout": "Dropout",
    "layernorm": "LayerNorm",
    "residual": "Residual",
    "ffn": "Feed-Forward",
    "softmax": "Softmax",
    "tokenizer": "Tokenizer",
    "loss": "Loss",
    "engineers": "Engineers",
}

UNKNOWN_COMPONENT_COLOR = "#a8a8a8"

# Subtle frame colour for panels and axes; dim enough to recede behind the data.
BORDER = "#5f5f7f"
AXIS = "#7f7f9f"
MUTED = "#8a8a8a"
ACCENT = "#5fd7ff"  # marks an expected cell (pronoun -> antecedent)

# Shade ramps: index 0 is "almost nothing", the last index is "all of it".
SHADES_1 = "·░▒▓█"  # one character per cell (mini maps, narrow heatmaps)
SHADES_2 = (" ·", "░░", "▒▒", "▓▓", "██")  # two characters per cell
# Upper edges of the shade levels for a weight in [0, 1]: < .05 is a dot, >= .6 is solid.
SHADE_EDGES = (0.05, 0.2, 0.4, 0.6)
SPARK = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"  # left-aligned partial blocks for horizontal bars

# inferno, sampled; x in [0, 1] is mapped onto its [0.2, 1] stretch.
_INFERNO = (
    (0x00, 0x00, 0x04), (0x1B, 0x0C, 0x41), (0x4A, 0x0C, 0x6B), (0x78, 0x1C, 0x6D),
    (0xA5, 0x2C, 0x60), (0xCF, 0x44, 0x46), (0xED, 0x69, 0x25), (0xFB, 0x9B, 0x06),
    (0xF7, 0xD1, 0x3D), (0xFC, 0xFF, 0xA4),
)
_RAMP_START = 0.2
_RAMP_LEVELS = 32  # colours are quantised so styles can be cached


def component_color(component: str) -> str:
    return COMPONENT_COLORS.get(component, UNKNOWN_COMPONENT_COLOR)


def component_name(component: str) -> str:
    """The name a component speaks under ("gradient" -> "Gradient"); unknown names as given."""
    return COMPONENT_NAMES.get(component, literal(component))


def component_label(component: str) -> Text:
    """The speaker's name in its colour, bold: used by the ticker and by narration."""
    return Text(component_name(component), style=Style(color=component_color(component), bold=True))


def shade_level(weight: float) -> int:
    """0..4: which shade a weight in [0, 1] gets (see SHADE_EDGES)."""
    for level, edge in enumerate(SHADE_EDGES):
        if weight < edge:
            return level
    return len(SHADE_EDGES)


def ramp_hex(x: float) -> str:
    """A colour for x in [0, 1] from the perceptual ramp ("#rrggbb")."""
    if not math.isfinite(x):
        return "#ff0000"
    x = min(1.0, max(0.0, x))
    q = round(x * (_RAMP_LEVELS - 1)) / (_RAMP_LEVELS - 1)
    return _ramp_hex_quantised(q)


@lru_cache(maxsize=_RAMP_LEVELS)
def _ramp_hex_quantised(x: float) -> str:
    t = (_RAMP_START + (1 - _RAMP_START) * x) * (len(_INFERNO) - 1)
    i = min(int(t), len(_INFERNO) - 2)
    f = t - i
    a, b = _INFERNO[i], _INFERNO[i + 1]
    r, g, bl = (round(a[k] + (b[k] - a[k]) * f) for k in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def light_ramp() -> dict[str, str]:
    """Each colour of the ramp -> its counterpart for white paper: the same inferno read the
    other way (pale yellow for almost nothing, deep purple for all of it), so the strongest
    attention is the darkest ink. Exports map the colours they recorded through this."""
    mapping = {}
    for level in range(_RAMP_LEVELS):
        x = level / (_RAMP_LEVELS - 1)
        mapping[_ramp_hex_quantised(x)] = _inferno_hex(0.97 - 0.87 * x)
    return mapping


def _inferno_hex(t: float) -> str:
    t = min(1.0, max(0.0, t)) * (len(_INFERNO) - 1)
    i = min(int(t), len(_INFERNO) - 2)
    f = t - i
    a, b = _INFERNO[i], _INFERNO[i + 1]
    r, g, bl = (round(a[k] + (b[k] - a[k]) * f) for k in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


@lru_cache(maxsize=4 * _RAMP_LEVELS)
def _ramp_style_quantised(q: int, bold: bool) -> Style:
    return Style(color=_ramp_hex_quantised(q / (_RAMP_LEVELS - 1)), bold=bold)


def ramp_style(x: float, *, bold: bool = False) -> Style:
    """A cached Style whose colour is ramp_hex(x)."""
    if not math.isfinite(x):
        return Style(color="red", bold=True)
    q = round(min(1.0, max(0.0, x)) * (_RAMP_LEVELS - 1))
    return _ramp_style_quantised(q, bold)


# Control characters (C0, DEL, C1) never reach the terminal; tabs and newlines become spaces so
# one token stays on one line. (Same rule as commands._common.literal, which views may not import.)
_CONTROL = {c: None for c in list(range(0x20)) + [0x7F] + list(range(0x80, 0xA0))}
_CONTROL.update({0x09: " ", 0x0A: " ", 0x0D: " "})


def literal(text: str) -> str:
    """Text made safe to show: control characters removed. Use with Text(), never markup."""
    return str(text).translate(_CONTROL)


FRAME_COLUMNS = 4  # a rounded panel costs two border columns and two padding columns


def frame(body: RenderableType, title: str = "") -> Panel:
    """The one frame every picture wears: rounded, muted border, bold title at the left."""
    return Panel(
        body,
        title=Text(title, style="bold") if title else None,
        title_align="left",
        box=box.ROUNDED,
        border_style=BORDER,
        padding=(0, 1),
        expand=False,
    )


def framed_lines(title: str, lines: list[Text], inner: int, framed: bool) -> RenderableType:
    """Lines cut to `inner` columns (never wrapped), in a frame, or under a bare title when
    the width is too narrow for one."""
    for line in lines:
        line.no_wrap = True
        line.truncate(inner, overflow="ellipsis")
    if not framed:
        return Group(Text(title, style="bold"), *lines)
    return frame(Group(*lines), title)
