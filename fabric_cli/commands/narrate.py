"""`fabric narrate`: a component tells the story of a run, read from its chronicle."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from fabric_cli.analysis.runs import latest_run_dir
from fabric_cli.chronicle import COMPONENTS, read_events
from fabric_cli.commands._common import (
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

EXPORTS = (".md", ".html", ".svg")


@cli_errors
def narrate(
    component: Annotated[str | None, typer.Option(
        "--component", "-c",
        help=f"Who tells it: {', '.join(COMPONENTS)}. Default: all voices in turn.")] = None,
    layer: Annotated[int | None, typer.Option(
        "--layer", help="With --head: the head's layer (0-indexed).")] = None,
    head: Annotated[int | None, typer.Option(
        "--head", help="With --layer: which head tells its story (0-indexed).")] = None,
    run: Annotated[Path | None, typer.Option(
        "--run", help="Run directory (default: the newest runs/*/ here).")] = None,
    plain: Annotated[bool, typer.Option(
        "--plain", help="The same moments as a factual log, one line each.")] = False,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Also write the story to story.md, .html or .svg.")] = None,
) -> None:
    """A component of the Fabric tells the story of a training run, every number measured."""
    # The narrators load here, not at start-up: `fabric infer` and `--help` do not need them.
    from fabric_cli.narrate import NARRATORS, plain_log, tell

    if component is not None and component not in NARRATORS:
        raise FabricError(f"unknown component {component!r}; choose one of: "
                          f"{', '.join(NARRATORS)}")
    if export is not None and export.suffix.lower() not in EXPORTS:
        raise FabricError(f"cannot export to {export.name!r}: the name must end in "
                          f"{', '.join(EXPORTS)}")
    events = read_events(find_chronicle(run))
    for message in getattr(events, "warnings", []):
        warn(message)
    if plain:
        lines = plain_log(list(events))
        for line in lines:
            typer.echo(literal(line))
        if export is not None:
            _write(export, "\n".join(lines) + "\n")
        return
    story = tell(list(events), component, layer=layer, head=head)
    console = Console(highlight=False, record=export is not None) if export else stdout_console()
    draw_story(console, story)
    if export is None:
        return
    suffix = export.suffix.lower()
    if suffix == ".md":
        _write(export, story.text())
    elif suffix == ".html":
        _write(export, console.export_html())
    else:
        _write(export, console.export_svg(title=literal(story.title)))


def find_chronicle(run: Path | None) -> Path:
    """The chronicle of `run` (a run directory or its chronicle.jsonl), else the newest one."""
    if run is None:
        run = latest_run_dir()
    if not run.exists():
        raise FabricError(f"run directory {literal(str(run))} does not exist; give a directory "
                          "made by `fabric train` (e.g. --run runs/pronouns)")
    if run.is_file():
        return run
    chronicle = run / "chronicle.jsonl"
    if not chronicle.is_file():
        raise FabricError(f"{literal(str(run))} has no chronicle.jsonl; create one with "
                          f"`fabric train` (its runs go under runs/)")
    return chronicle


def _colour(component: str) -> str:
    from fabric_cli.narrate import NARRATORS

    if re.fullmatch(r"L\d+H\d+", component):  # a head speaking in the ensemble
        component = "head"
    narrator = NARRATORS.get(component)
    return narrator.colour if narrator else "white"


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
                label = NARRATORS[speaker].speaker if speaker in NARRATORS else speaker
                label = label[:1].upper() + label[1:]
                body = Text.assemble(Text(f"{literal(label)}  ", style=f"bold {_colour(speaker)}"),
                                     body)
            console.print(body)
    console.print()


def _write(path: Path, content: str) -> None:
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as exc:
        raise FabricError(f"cannot write {literal(str(path))}: {exc.strerror or exc}") from None
