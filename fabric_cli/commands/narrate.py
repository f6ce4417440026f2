"""`fabric narrate`: a component tells the story of a run, read from its chronicle."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.constrain import Constrain
from rich.rule import Rule
from rich.text import Text

from fabric_cli.chronicle import COMPONENTS
from fabric_cli.commands._common import (
    ThemeOption,
    cli_errors,
    literal,
    literal_text,
    paragraph_text,
    stdout_console,
    warn,
)
from fabric_cli.errors import FabricError

if TYPE_CHECKING:
    from fabric_cli.narrate import Story

EXPORTS = (".md", ".html", ".svg", ".txt")
MEASURE = 88  # prose lines stay this short on a wide terminal: a readable measure


@cli_errors
def narrate(
    component: Annotated[str | None, typer.Option(
        "--component", "-c",
        help=f"Who tells it: {', '.join(COMPONENTS)}; or ensemble, all voices in turn "
        "(the default).")] = None,
    layer: Annotated[int | None, typer.Option(
        "--layer", help="With --head: the head's layer (0-indexed).")] = None,
    head: Annotated[int | None, typer.Option(
        "--head", help="With --layer: which head tells its story (0-indexed).")] = None,
    run: Annotated[Path | None, typer.Option(
        "--run", help="Run directory (default: the newest runs/*/ here).")] = None,
    plain: Annotated[bool, typer.Option(
        "--plain", help="The same moments as a factual log, one line each.")] = False,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Also write the story to FILE.md, .html, .svg or .txt.")] = None,
    theme: ThemeOption = None,
) -> None:
    """A component of the Fabric tells the story of a training run, every number measured.

    \b
    Examples:
      fabric narrate
      fabric narrate --component gradient
      fabric narrate --component head --layer 0 --head 2
      fabric narrate --plain
      fabric narrate --export story.md
      fabric narrate --plain --export log.html --theme dark
    """
    # The narrators load here, not at start-up: `fabric infer` and `--help` do not need them.
    from fabric_cli.narrate import NARRATORS, plain_log, tell

    if component is not None and component not in NARRATORS:
        raise FabricError(f"unknown component {component!r}; choose one of: "
                          f"{', '.join(NARRATORS)}")
    from fabric_cli.commands._export import (
        check_export_file,
        check_theme,
        export_picture,
        write_file,
    )

    check_export_file(export, EXPORTS)
    theme = check_theme(theme, export)
    if plain and (component is not None or layer is not None or head is not None):
        given = "--component chooses" if component is not None else "--layer/--head choose"
        raise FabricError(f"--plain logs every moment of the run, whoever's it is; {given} "
                          "a voice for the story: give one or the other")
    from fabric_cli.commands._runs import note_if_training, read_chronicle

    chronicle = find_chronicle(run, "fabric narrate --run {}")
    events = read_chronicle(chronicle)
    for message in getattr(events, "warnings", []):
        warn(message)
    note_if_training(chronicle, list(events), "this tells it so far")
    if plain:
        lines = [literal(line) for line in plain_log(list(events))]
        for line in _on_screen(lines):
            typer.echo(line)
        if export is None:
            return
        if export.suffix.lower() == ".md":  # one line a line, as in the terminal
            write_file(export, fenced("\n".join(lines) + "\n"))
        elif export.suffix.lower() == ".txt":
            write_file(export, "\n".join(lines) + "\n")
        else:
            export_picture(lambda console: _print_plain(console, lines), export,
                           "fabric narrate --plain", theme)
        return
    story = tell(list(events), component, layer=layer, head=head)
    draw_story(stdout_console(), story)
    if export is None:
        return
    picture = qk_picture(list(events), layer, head) if story.component == "head" else None
    if export.suffix.lower() == ".md":
        text = story_markdown(story)
        if picture is not None:
            text += f"\n## {md_text(QK_HEADING)}\n\n{fenced(_plain(picture))}"
        write_file(export, text)
    else:
        def draw(console: Console) -> None:
            draw_story(console, story)
            if picture is not None:
                console.print(Rule(Text(QK_HEADING, style="bold"), align="left"))
                console.print(picture(console.width))

        export_picture(draw, export, literal(story.title), theme)


QK_HEADING = "My query/key space, early and late"


def qk_picture(events: list[dict], layer: int | None, head: int | None):
    """The Head's export carries the picture of its query/key space (views/qkspace.py), for
    the head the story followed; None when the chronicle has no map of it."""
    from fabric_cli.analysis.qkspace import qk_frames
    from fabric_cli.narrate.facts import collect
    from fabric_cli.views.qkspace import qk_scatter

    target = (layer, head) if layer is not None and head is not None else \
        collect(events).pronoun_head()
    frames = qk_frames(events, *target) if target is not None else []
    if not frames:
        return None
    return lambda width: qk_scatter(frames, target, max_width=width)


def _plain(picture) -> str:
    """The picture as plain text at 80 columns (a markdown code block)."""
    console = Console(file=io.StringIO(), record=True, width=80, color_system=None)
    console.print(picture(80))
    return "".join(line.rstrip() + "\n" for line in console.export_text().splitlines())


def _on_screen(lines: list[str]) -> list[str]:
    """The log as printed: one line a moment into a pipe or a file (to grep); in a terminal
    each wraps between words under its own text, past the step column, where the terminal
    would cut words in two."""
    import shutil
    import textwrap

    if not sys.stdout.isatty():
        return lines
    width = shutil.get_terminal_size().columns
    out = []
    for line in lines:
        indent = " " * min(len(line) - len(line.lstrip()) + 14, width // 2)
        out += textwrap.wrap(line, width=width, subsequent_indent=indent,
                             break_long_words=False, break_on_hyphens=False,
                             drop_whitespace=True) or [""]
    return out


def _print_plain(console: Console, lines: list[str]) -> None:
    for line in lines:
        console.print(Text(line), soft_wrap=False, overflow="fold")


def story_markdown(story: Story) -> str:
    """The story as Markdown, every paragraph under its speaker's name when it is not the
    story's own narrator (the ensemble's voices, a head speaking as L0H2)."""
    from fabric_cli.narrate import NARRATORS

    lines = [f"# {md_text(story.title)}", ""]
    if story.epigraph:
        lines += [f"*{md_text(story.epigraph)}*", ""]
    for chapter in story.chapters:
        lines += [f"## {md_text(chapter.title)}", ""]
        for i, paragraph in enumerate(chapter.paragraphs):
            speaker = chapter.voice_of(i, story.component)
            text = md_text(paragraph, italics=True)
            if speaker != story.component:
                lines += [f"**{md_text(_speaker_name(speaker, NARRATORS))}:** {text}", ""]
            else:
                lines += [text, ""]
    return "\n".join(lines).rstrip() + "\n"


_MD_ACTIVE = re.compile(r"([\\`*_<>\[\]~&|#])")  # tags, code, links, emphasis, strike, ATX
_MD_ACTIVE_BUT_STARS = re.compile(r"([\\`_<>\[\]~&|#])")
_MD_OPENING = re.compile(r"^([ \t]*)(?:([*+=-])|(\d+)([.)]))(?=[ \t*=-]|$)", re.MULTILINE)


def md_text(text: str, italics: bool = False) -> str:
    """Text as Markdown that renders as the terminal shows it: every character Markdown would
    read as a tag (<bos>), code, a link, emphasis or strike-through is escaped with a
    backslash, and so is a line's opening that would start a list or a rule.
    italics=True keeps a paragraph's *inner lines*, which the terminal shows in italics."""
    text = (_MD_ACTIVE_BUT_STARS if italics else _MD_ACTIVE).sub(r"\\\1", literal(text))
    return _MD_OPENING.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else
                                                   f"{m.group(3)}\\{m.group(4)}"), text)


def fenced(text: str) -> str:
    """A code block that shows text as it is (its fence longer than any run of backticks)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.rstrip(chr(10))}\n{fence}\n"


def _speaker_name(speaker: str, narrators: dict) -> str:
    label = narrators[speaker].speaker if speaker in narrators else speaker
    return literal(label[:1].upper() + label[1:])


def find_chronicle(run: Path | None, usage: str) -> Path:
    """The chronicle of `run` (a run directory or its chronicle.jsonl), else the newest one's;
    `usage` is how the command names a run, {} for the directory (commands/_runs.py)."""
    from fabric_cli.commands._runs import run_to_read

    return chronicle_of(run_to_read(run, usage))


def chronicle_of(run: Path) -> Path:
    """A fabric run's chronicle.jsonl (or the chronicle file given)."""
    from fabric_cli.commands._runs import how_to_retrain

    if run.is_file():
        if run.suffix != ".jsonl":  # scenario.toml, a log: not a chronicle to call damaged
            raise FabricError(f"{literal(str(run))} is a file, not a run directory or its "
                              "chronicle.jsonl; give the run's directory")
        return run
    chronicle = run / "chronicle.jsonl"
    whole = run.resolve()
    if not chronicle.is_file() and re.fullmatch(r"step-\d+(\.\d+)?", whole.name) and \
            (whole.parent / "chronicle.jsonl").is_file():  # runs/x/checkpoint, runs/x/step-…
        parent = run.parent if run.name not in ("", ".", "..") else whole.parent
        raise FabricError(f"{literal(str(run))} is a checkpoint inside the run "
                          f"{literal(str(parent))}; give the run's own directory")
    from fabric_cli.analysis.rundir import writer_pid

    writer = None if chronicle.is_file() else writer_pid(run)
    if writer is not None:  # starting (or started over with --force): not lost
        raise FabricError(f"{literal(str(run))} is training now (process {writer}) and has "
                          "told nothing yet; try again in a moment")
    if not chronicle.is_file():
        again = how_to_retrain(run)
        raise FabricError(f"{literal(str(run))} has no chronicle.jsonl, so its story is lost; "
                          f"train it again with `{literal(again)}`")
    return chronicle


def _colour(component: str) -> str:
    """A voice's colour: the cast's own (views.palette), as in the ticker, the bars and the
    report, so a speaker wears one colour everywhere; a head speaking in the ensemble wears
    the heads' colour, the ensemble's own headings plain white."""
    from fabric_cli.views.palette import COMPONENT_COLORS

    if re.fullmatch(r"L\d+H\d+", component):
        component = "head"
    return COMPONENT_COLORS.get(component, "white")


def draw_story(console: Console, story: Story) -> None:
    from fabric_cli.narrate import NARRATORS

    colour = _colour(story.component)
    console.print()
    console.print(literal_text(story.title, style=f"bold {colour}"))
    if story.epigraph:
        console.print(literal_text(story.epigraph, style="italic"))
    for chapter in story.chapters:
        console.print()
        console.print(Rule(literal_text(chapter.title, style=f"bold {colour}"),
                           style=colour, align="left"))
        for i, paragraph in enumerate(chapter.paragraphs):
            console.print()
            speaker = chapter.voice_of(i, story.component)
            body = paragraph_text(paragraph)
            if speaker != story.component:
                label = _speaker_name(speaker, NARRATORS)
                body = Text.assemble(Text(f"{label}  ", style=f"bold {_colour(speaker)}"), body)
            console.print(Constrain(body, MEASURE))
    console.print()
