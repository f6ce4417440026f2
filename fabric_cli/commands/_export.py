"""`--export FILE`: the picture a command drew, saved at a fixed width in a chosen palette.

Every export is drawn again into its own recording console, EXPORT_WIDTH columns wide, so a
piped or 80-column terminal never breaks an exported table apart. HTML and SVG use the light
palette unless `--theme dark`: every colour the views chose for a dark terminal has its
lightness mirrored (hue and saturation kept), so the brightest attention cells become the
darkest ink on white paper and no colour fades into the page. The command then says
"wrote FILE" on stderr (stdout may carry --json). Every export carries MARK; a file at the
chosen name without it was not written by fabric and is never replaced (check_destination,
called before the work is done).
"""

from __future__ import annotations

import colorsys
import io
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from rich.color import Color, ColorType
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.terminal_theme import DEFAULT_TERMINAL_THEME, MONOKAI, TerminalTheme
from rich.text import Text

from fabric_cli.errors import FabricError
from fabric_cli.views.palette import light_ramp, literal

_FONT_FACE = re.compile(r"@font-face\s*\{[^}]*\}")
EXPORT_WIDTH = 100  # columns of every exported picture, whatever the terminal
THEMES: dict[str, TerminalTheme] = {"light": DEFAULT_TERMINAL_THEME, "dark": MONOKAI}


def check_theme(theme: str | None, export: object = True) -> str:
    """The palette to draw in (light unless given). A --theme with no --export to colour was
    silently dropped: it is refused, naming what it goes with."""
    if theme is None:
        return "light"
    if theme not in THEMES:
        raise FabricError(f"--theme {literal(theme)!r}: expected light or dark")
    if export is None:
        raise FabricError(f"--theme {theme} colours an --export: give one too, e.g. "
                          f"--export picture.svg --theme {theme}")
    return theme


def check_export_file(export: Path | None, allowed: tuple[str, ...]) -> None:
    """The export's name ends in one of `allowed` and fabric may write there (checked before
    the work, so a story is not told only to fail at the end)."""
    if export is None:
        return
    if export.suffix.lower() not in allowed:
        raise FabricError(f"cannot export to {literal(export.name)!r}: the name must end in "
                          f"{', '.join(allowed)}")
    check_destination(export)


def recording_console(width: int = EXPORT_WIDTH) -> Console:
    """A console that draws in full colour into memory, for export only."""
    return Console(file=io.StringIO(), record=True, width=width, force_terminal=True,
                   color_system="truecolor", highlight=False, soft_wrap=False,
                   legacy_windows=False)


def export_picture(draw: Callable[[Console], None], export: Path, title: str,
                   theme: str = "light", figures: Sequence[str] = ()) -> None:
    """Draw again at EXPORT_WIDTH and save as .svg, .html or .txt (by the name's suffix).

    figures: standalone <svg> strings (e.g. attention arcs) that an .html or .svg export
    shows under the terminal picture; a .txt export has no room for them."""
    console = recording_console()
    draw(console)
    write_export(console, export, title, theme, figures)


def write_export(console: Console, export: Path, title: str, theme: str = "light",
                 figures: Sequence[str] = ()) -> None:
    suffix = export.suffix.lower()
    if suffix in (".svg", ".html") and theme == "light":
        to_light(console)
    terminal = THEMES[check_theme(theme)]
    if suffix == ".svg":
        if console.export_text(clear=False).rstrip("\n").rsplit("\n", 1)[-1].strip():
            console.line()  # rich's frame ends just under the last line, cutting its g, y, p
        # rich names a web font by URL; an export must open offline, in monospace if need be
        content = _FONT_FACE.sub("", console.export_svg(title=literal(title), theme=terminal))
        content = _stack_svgs([content, *figures]) if figures else content
    elif suffix == ".html":
        content = console.export_html(theme=terminal, inline_styles=True)
        if figures:
            block = "<div style=\"display:flex;flex-wrap:wrap;gap:16px;padding:8px\">" + \
                "".join(figures) + "</div>"
            content = content.replace("</body>", block + "</body>", 1)
    else:  # a wrapped line keeps no space at its end
        content = "".join(line.rstrip() + "\n" for line in console.export_text().splitlines())
    write_file(export, content)


_SIZE = re.compile(r'viewBox="0 0 ([\d.]+) ([\d.]+)"')


def _stack_svgs(svgs: Sequence[str]) -> str:
    """One SVG holding several, one under another (each keeps its own viewBox and style)."""
    sizes = []
    for svg in svgs:
        match = _SIZE.search(svg)
        sizes.append((float(match.group(1)), float(match.group(2))) if match else (800.0, 600.0))
    width = max(w for w, _ in sizes)
    height = sum(h for _, h in sizes)
    parts, y = [], 0.0
    for svg, (w, h) in zip(svgs, sizes, strict=True):
        opening = re.match(r"\s*(<svg\b[^>]*>)", svg)
        tag = opening.group(1) if opening else "<svg>"
        bare = re.sub(r'\s(?:width|height|x|y)="[^"]*"', "", tag)  # set again below
        placed = bare.replace("<svg", f'<svg x="0" y="{y:g}" width="{w:g}" height="{h:g}"', 1)
        inner = svg.replace(tag, placed, 1)
        parts.append(inner)
        y += h
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" '
            f'width="{width:g}" height="{height:g}">' + "".join(parts) + "</svg>\n")


# -- where an export goes ----------------------------------------------------------------
# Every file fabric writes here carries MARK, so that writing it again may replace it; a file
# without it (or the report's generator tag) is the user's, and is never replaced.
MARK = "written by fabric, which may replace this file"
_OURS = (MARK, '<meta name="generator" content="fabric report">')  # report.GENERATOR
_PEEK = 4096  # the mark sits in a file's first or last few KiB


def check_destination(path: Path, option: str = "--export") -> None:
    """Refuse, before any work is done, a file fabric may not write: one that is not fabric's,
    a directory, or a name in a directory that does not exist or cannot be written."""
    shown = literal(str(path))
    if path.is_dir():
        raise FabricError(f"{shown} is a directory; name a file with {option}")
    if path.is_symlink() or (path.exists() and not (path.is_file() and _ours(path))):
        raise FabricError(f"{shown} exists and was not written by fabric; name another file "
                          f"with {option}, or delete it first")
    parent = path.parent
    if parent.exists() and not parent.is_dir():  # `-o notes.txt/page.html`
        raise FabricError(f"cannot write {shown}: {literal(str(parent))} is a file, not a "
                          "directory; name another file")
    if not parent.is_dir():
        raise FabricError(f"cannot write {shown}: there is no directory "
                          f"{literal(str(parent))}; create it first or name another file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FabricError(f"cannot write {shown}: the directory {literal(str(parent))} is "
                          "not writable")


def _ours(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            head = f.read(_PEEK)
            f.seek(max(0, f.seek(0, os.SEEK_END) - _PEEK))
            tail = f.read(_PEEK)
    except OSError:
        return False
    return any(mark.encode() in part for mark in _OURS for part in (head, tail))


def marked(content: str, suffix: str) -> str:
    """The content with MARK where it is harmless: an HTML/XML comment (after the doctype of a
    page, inside the outer <svg>, the last line of Markdown), or the last line of a .txt."""
    if any(mark in content[:_PEEK] for mark in _OURS):
        return content
    comment = f"<!-- {MARK} -->"
    suffix = suffix.lower()
    if suffix in (".html", ".htm"):
        doctype = re.match(r"\s*<!DOCTYPE[^>]*>\n?", content, re.IGNORECASE)
        at = doctype.end() if doctype else 0
        return content[:at] + comment + "\n" + content[at:]
    if suffix == ".svg":
        opening = re.match(r"\s*<svg\b[^>]*>", content)
        at = opening.end() if opening else 0
        return content[:at] + comment + content[at:]
    line = comment if suffix == ".md" else f"({MARK})"
    return content.rstrip("\n") + "\n\n" + line + "\n"


def write_file(path: Path, content: str, option: str = "--export") -> None:
    """Write an export, marked as fabric's (atomically: a temp file beside it, then a
    rename), and say so. A file that is not fabric's is never replaced."""
    from fabric_cli.commands._common import stderr_console

    check_destination(path, option)  # again: the file may have appeared while the work was done
    try:
        _atomic_write(path, marked(content, path.suffix).encode("utf-8"))
    except OSError as exc:
        raise FabricError(f"cannot write {literal(str(path))}: {exc.strerror or exc}") from None
    stderr_console().print(Text(f"wrote {literal(str(path))}"))


def _sweep_stale(path: Path) -> None:
    """Remove the temp files an earlier write of this very export left when it was killed
    mid-write (kill -9): `.NAME.tmp-PID` beside it, whose process is gone."""
    import glob

    from fabric_cli.analysis import rundir

    ours = re.compile(rf"^\.{re.escape(path.name)}\.tmp-(\d+)(?:-\d+)?$")
    for entry in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        found = ours.match(entry.name)
        if found and not rundir.process_alive(int(found[1])) and entry.is_file() \
                and not entry.is_symlink():
            entry.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    """A new temp file beside path (never one that is already there), then one rename."""
    _sweep_stale(path)
    for attempt in range(100):
        again = f"-{attempt}" if attempt else ""
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{again}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"no free temporary name beside {path.name}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def palette_pair() -> dict[str, dict[str, str]]:
    """Every component's colour for a dark page (the terminal's) and for paper (mirrored)."""
    from fabric_cli.views.palette import COMPONENT_COLORS

    light = {}
    for name, hexcode in COMPONENT_COLORS.items():
        r, g, b = _ink_on_paper(Color.parse(hexcode)).get_truecolor()
        light[name] = f"#{r:02x}{g:02x}{b:02x}"
    return {"light": light, "dark": dict(COMPONENT_COLORS)}


def to_light(console: Console) -> None:
    """Mirror the lightness of every explicit colour in the console's recording."""
    with console._record_buffer_lock:  # rich keeps the recording here; no public setter
        console._record_buffer[:] = [
            Segment(text, _light_style(style), control)
            for text, style, control in console._record_buffer
        ]


@lru_cache(maxsize=1024)
def _light_style(style: Style | None) -> Style | None:
    if style is None:
        return None
    color = _ink_on_paper(style.color)
    bgcolor = _light_color(style.bgcolor)
    if color is style.color and bgcolor is style.bgcolor:
        return style
    return style + Style.from_color(color, bgcolor)


INK_CONTRAST = 4.5  # the least contrast text keeps against white paper (WCAG AA)


def _ink_on_paper(color: Color | None) -> Color | None:
    """A foreground colour for white paper. A named ANSI colour is read as the light terminal
    theme draws it, any other is mirrored (_light_color); then, hue kept, it is darkened
    until it reads against the page (INK_CONTRAST): the dark terminal's bright cyan and
    yellow, its white, would otherwise all but vanish. The attention ramp is left as it is:
    its paleness is the weight it shows."""
    if color is None or color.type == ColorType.DEFAULT:
        return color
    if color.type == ColorType.STANDARD:
        light = color
        rgb = color.get_truecolor(DEFAULT_TERMINAL_THEME)
    else:
        if color.get_truecolor() in _ramp_on_paper():
            return _ramp_on_paper()[color.get_truecolor()]
        light = _light_color(color)
        rgb = light.get_truecolor()
    h, lightness, s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    if _contrast_on_white(rgb) >= INK_CONTRAST:
        return light
    while lightness > 0 and _contrast_on_white(rgb) < INK_CONTRAST:
        lightness = max(0.0, lightness - 0.01)
        rgb = tuple(round(c * 255) for c in colorsys.hls_to_rgb(h, lightness, s))
    return Color.from_rgb(*rgb)


def _contrast_on_white(rgb: Sequence[int]) -> float:
    def linear(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


@lru_cache(maxsize=1)
def _ramp_on_paper() -> dict[tuple[int, int, int], Color]:
    return {Color.parse(dark).get_truecolor(): Color.parse(light)
            for dark, light in light_ramp().items()}


def _light_color(color: Color | None) -> Color | None:
    """The attention ramp read the other way (palette.light_ramp); any other colour keeps
    its hue with its lightness l mirrored to 0.92 - 0.8·l (a dark colour turns pale, a bright
    one deep). ANSI colours are left to the light terminal theme."""
    if color is None or color.type in (ColorType.DEFAULT, ColorType.STANDARD):
        return color
    r, g, b = color.get_truecolor()
    if (r, g, b) in _ramp_on_paper():
        return _ramp_on_paper()[(r, g, b)]
    h, lightness, s = colorsys.rgb_to_hls(r / 255, g / 255, b / 255)
    r2, g2, b2 = colorsys.hls_to_rgb(h, 0.92 - 0.8 * lightness, s)
    return Color.from_rgb(round(r2 * 255), round(g2 * 255), round(b2 * 255))
