"""`fabric compare RUN_A RUN_B`: two runs side by side, then a component tells how its two
journeys differed. Everything is read from the two chronicles."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from fabric_cli.commands._common import (
    ExportOption,
    ThemeOption,
    cli_errors,
    literal,
    paragraph_text,
    stdout_console,
)
from fabric_cli.commands.infer import check_export
from fabric_cli.errors import FabricError


@cli_errors
def compare(
    run_a: Annotated[Path, typer.Argument(
        help="The first run directory (A).", metavar="RUN_A", show_default=False)],
    run_b: Annotated[Path, typer.Argument(
        help="The second run directory (B).", metavar="RUN_B", show_default=False)],
    component: Annotated[str | None, typer.Option(
        "--component", "-c",
        help="Who tells the difference: residual, layernorm, engineers, adam, dropout, "
        "gradient, loss, head (default: the switch that differs, else gradient).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    export: ExportOption = None,
    theme: ThemeOption = None,
) -> None:
    """Two runs on the same axes: loss over the floor, the gradient at each layer, when each
    specialist emerged, clipping, held-out accuracy; then a component's two voices.

    \b
    Examples:
      fabric compare runs/why-residual/with runs/why-residual/without
      fabric compare runs/pronouns runs/storm --component engineers --json
    """
    check_export(export)
    from fabric_cli.commands._export import check_theme

    theme = check_theme(theme, export)
    from fabric_cli.analysis.compare import compare_dirs
    from fabric_cli.narrate.compare_voices import COMPONENTS

    if component is not None and component not in COMPONENTS:
        raise FabricError(f"unknown component {literal(component)!r}; choose one of: "
                          f"{', '.join(COMPONENTS)}")
    from fabric_cli.commands._runs import run_to_read

    for run in (run_a, run_b):
        run_to_read(run, "")
    cmp = compare_dirs(run_a, run_b)
    show_comparison(cmp, component, as_json=as_json, export=export,
                    command=f"fabric compare {run_a} {run_b}", theme=theme)


def show_comparison(cmp: dict, component: str | None, *, as_json: bool, export: Path | None,
                    command: str, title: str = "Two runs side by side",
                    theme: str = "light") -> None:
    """Draw (or print as JSON) a comparison and the chosen voice; shared with `fabric why`."""
    from fabric_cli.commands._export import export_picture
    from fabric_cli.narrate.compare_voices import default_component, speak
    from fabric_cli.views.compare import comparison_view, notes_text
    from fabric_cli.views.palette import component_label

    voice = component or default_component(cmp)
    said = speak(voice, cmp)
    if as_json:
        doc = {**cmp, "component": voice, "said": said}
        sys.stdout.write(json.dumps(_finite(doc), ensure_ascii=False, allow_nan=False) + "\n")

    def draw(console: Console) -> None:
        console.print(comparison_view(cmp, max_width=console.width, title=title))
        notes = notes_text(cmp)
        if notes is not None:
            console.print(notes)
        console.print()
        for line in said:
            text = Text()
            text.append_text(component_label(voice))
            text.append(": ")
            text.append_text(paragraph_text(line["text"]))
            console.print(text, soft_wrap=False)

    if not as_json:
        draw(stdout_console())
    if export is not None:
        export_picture(draw, export, command, theme)


def _finite(value):
    """JSON without NaN: non-finite numbers become null (the chronicle keeps the strings)."""
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
